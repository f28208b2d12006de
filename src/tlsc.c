/*
 * tlsc.c - GnuTLS client sessions for the encrypted upstreams.
 *
 * Each session is set up with the default priorities, the shared trust,
 * the name to verify (RFC 8310 8.1: SNI and the certificate both name
 * it) or the address, and the previous session's data; GnuTLS checks
 * the certificate during the handshake, so that nothing is ever sent
 * to a server that did not prove who it is.  The reasons GnuTLS gives
 * are turned into words for the log here, once, for both backends.
 */
#include <config.h>

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "tlsc.h"

#define TLSC_RECORD 16384 /* at most one TLS record a send */
#define TLSC_BACKOFF_MIN_MS 1000
#define TLSC_BACKOFF_MAX_MS 60000
#define TLSC_LOG_EVERY_MS 10000

struct tlsc_trust {
	atomic_uint refs;
	gnutls_certificate_credentials_t cred;
};

struct tlsc {
	gnutls_session_t tls;
	struct tlsc_trust *trust;
	gnutls_typed_vdata_st vdata; /* verify by IP: must outlive tls */
	unsigned char ip[16];
	bool saved;
};

/* ---- trust ---- */

struct tlsc_trust *tlsc_trust_new(const char *ca, char *err, size_t errlen)
{
	struct tlsc_trust *t = calloc(1, sizeof(*t));
	int rc;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&t->refs, 1);
	rc = gnutls_certificate_allocate_credentials(&t->cred);
	if (rc < 0) {
		snprintf(err, errlen, "TLS: %s", gnutls_strerror(rc));
		free(t);
		return NULL;
	}
	if (ca)
		rc = gnutls_certificate_set_x509_trust_file(
		    t->cred, ca, GNUTLS_X509_FMT_PEM);
	else
		rc = gnutls_certificate_set_x509_system_trust(t->cred);
	if (rc <= 0) {
		if (ca)
			snprintf(err, errlen, "tls.ca '%s': %s", ca,
				 rc < 0 ? gnutls_strerror(rc)
					: "no PEM certificate in it");
		else
			snprintf(err, errlen,
				 "tls:// and https:// upstreams: no CA "
				 "certificates in the system store (%s); "
				 "install ca-certificates or set tls.ca",
				 rc < 0 ? gnutls_strerror(rc) : "it is empty");
		gnutls_certificate_free_credentials(t->cred);
		free(t);
		return NULL;
	}
	return t;
}

struct tlsc_trust *tlsc_trust_ref(struct tlsc_trust *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void tlsc_trust_unref(struct tlsc_trust *t)
{
	if (!t ||
	    atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	gnutls_certificate_free_credentials(t->cred);
	free(t);
}

void tlsc_ticket_clear(struct tlsc_ticket *t)
{
	gnutls_free(t->data);
	t->data = NULL;
	t->size = 0;
}

/* ---- sessions ---- */

/* Verify against the address: the certificate must carry it. */
static void verify_ip(struct tlsc *s, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		memcpy(s->ip, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		s->vdata.size = 4;
	} else {
		memcpy(s->ip, &((const struct sockaddr_in6 *)ss)->sin6_addr,
		       16);
		s->vdata.size = 16;
	}
	s->vdata.type = GNUTLS_DT_IP_ADDRESS;
	s->vdata.data = s->ip;
	gnutls_session_set_verify_cert2(s->tls, &s->vdata, 1, 0);
}

struct tlsc *tlsc_new(struct tlsc_trust *trust, int fd, const char *name,
		      const struct sockaddr_storage *ss, const char *alpn,
		      const struct tlsc_ticket *resume, char *why,
		      size_t whylen)
{
	struct tlsc *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	rc = gnutls_init(&s->tls,
			 GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (rc == 0)
		rc = gnutls_set_default_priority(s->tls);
	if (rc == 0)
		rc = gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE,
					    trust->cred);
	if (rc == 0 && name[0]) {
		rc = gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, name,
					    strlen(name));
		gnutls_session_set_verify_cert(s->tls, name, 0);
	} else if (rc == 0) {
		verify_ip(s, ss);
	}
	if (rc == 0 && alpn) {
		gnutls_datum_t p = {(unsigned char *)(uintptr_t)alpn,
				    (unsigned)strlen(alpn)};
		rc = gnutls_alpn_set_protocols(s->tls, &p, 1, 0);
	}
	if (rc == 0 && resume && resume->data)
		(void)gnutls_session_set_data(s->tls, resume->data,
					      resume->size);
	if (rc != 0) {
		snprintf(why, whylen, "TLS: %s", gnutls_strerror(rc));
		if (s->tls)
			gnutls_deinit(s->tls);
		free(s);
		return NULL;
	}
	gnutls_transport_set_int(s->tls, fd);
	s->trust = tlsc_trust_ref(trust);
	return s;
}

/* Why a handshake failed, in words for the log. */
static void handshake_why(struct tlsc *s, int rc, char *why, size_t len)
{
	gnutls_datum_t out = {NULL, 0};

	if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
	    gnutls_certificate_verification_status_print(
		gnutls_session_get_verify_cert_status(s->tls), GNUTLS_CRT_X509,
		&out, 0) == 0) {
		size_t n = out.size;
		while (n && (out.data[n - 1] == ' ' || out.data[n - 1] == '\n'))
			n--;
		snprintf(why, len, "certificate rejected: %.*s", (int)n,
			 (const char *)out.data);
		gnutls_free(out.data);
		return;
	}
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
		snprintf(why, len, "TLS handshake: alert from the server: %s",
			 gnutls_alert_get_name(gnutls_alert_get(s->tls)));
	else
		snprintf(why, len, "TLS handshake: %s", gnutls_strerror(rc));
}

int tlsc_handshake(struct tlsc *s, char *why, size_t whylen)
{
	int rc;

	/* A warning alert or an interruption: go on at once, the socket
	 * may not signal again. */
	do
		rc = gnutls_handshake(s->tls);
	while (rc < 0 && rc != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(rc));
	if (rc == 0)
		return 1;
	if (rc == GNUTLS_E_AGAIN)
		return 0;
	handshake_why(s, rc, why, whylen);
	return -1;
}

bool tlsc_want_write(const struct tlsc *s)
{
	return gnutls_record_get_direction(s->tls) != 0;
}

ssize_t tlsc_send(struct tlsc *s, const void *buf, size_t len, char *why,
		  size_t whylen)
{
	ssize_t k = gnutls_record_send(s->tls, buf, len);

	/* GnuTLS wants the same call again. */
	if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
		return 0;
	if (k < 0) {
		snprintf(why, whylen, "TLS write: %s", gnutls_strerror((int)k));
		return -1;
	}
	return k;
}

ssize_t tlsc_recv(struct tlsc *s, void *buf, size_t len, char *why,
		  size_t whylen)
{
	for (;;) {
		ssize_t k = gnutls_record_recv(s->tls, buf, len);
		if (k > 0)
			return k;
		if (k == GNUTLS_E_AGAIN)
			return 0;
		if (k == GNUTLS_E_INTERRUPTED ||
		    (k < 0 && !gnutls_error_is_fatal((int)k)))
			continue; /* a warning alert, a ticket */
		if (k == 0 || k == GNUTLS_E_PREMATURE_TERMINATION)
			snprintf(why, whylen,
				 "the server closed the connection%s",
				 k ? " (no TLS close_notify)" : "");
		else
			snprintf(why, whylen, "TLS read: %s",
				 gnutls_strerror((int)k));
		return -1;
	}
}

bool tlsc_save(struct tlsc *s, struct tlsc_ticket *t)
{
	gnutls_datum_t data;

	if (s->saved)
		return true;
	if (gnutls_protocol_get_version(s->tls) == GNUTLS_TLS1_3 &&
	    !(gnutls_session_get_flags(s->tls) & GNUTLS_SFLAGS_SESSION_TICKET))
		return false;
	s->saved = true;
	if (gnutls_session_get_data2(s->tls, &data) < 0)
		return true;
	gnutls_free(t->data);
	t->data = data.data;
	t->size = data.size;
	return true;
}

bool tlsc_resumed(const struct tlsc *s)
{
	return gnutls_session_is_resumed(s->tls) != 0;
}

bool tlsc_alpn_is(const struct tlsc *s, const char *proto)
{
	gnutls_datum_t p;
	size_t n = strlen(proto);

	return gnutls_alpn_get_selected_protocol(s->tls, &p) == 0 &&
	       p.size == n && memcmp(p.data, proto, n) == 0;
}

void tlsc_describe(const struct tlsc *s, char *buf, size_t len)
{
	char *desc = gnutls_session_get_desc(s->tls);

	snprintf(buf, len, "%s", desc ? desc : "?");
	gnutls_free(desc);
}

void tlsc_free(struct tlsc *s, bool bye)
{
	if (!s)
		return;
	if (bye)
		(void)gnutls_bye(s->tls, GNUTLS_SHUT_WR); /* best effort */
	gnutls_deinit(s->tls);
	tlsc_trust_unref(s->trust);
	free(s);
}

int tlsc_write(struct tlsc *s, const uint8_t *buf, size_t *off, size_t len,
	       size_t *again, char *why, size_t whylen)
{
	while (*off < len) {
		size_t n = *again;
		if (!n)
			n = len - *off < TLSC_RECORD ? len - *off : TLSC_RECORD;
		ssize_t k = tlsc_send(s, buf + *off, n, why, whylen);
		if (k == 0) {
			*again = n;
			return 0;
		}
		if (k < 0)
			return -1;
		*again = 0;
		*off += (size_t)k;
	}
	return 1;
}

/* ---- around a session ---- */

int tlsc_connect(const struct sockaddr_storage *ss, socklen_t len, char *why,
		 size_t whylen)
{
	int one = 1;
	int fd = socket(ss->ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)ss, len) < 0 &&
	    errno != EINPROGRESS) {
		snprintf(why, whylen, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

bool tlsc_connected(int fd, uint32_t events, char *why, size_t whylen)
{
	int e = 0;
	socklen_t el = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		e = errno;
	if (!e && !(events & (EPOLLERR | EPOLLHUP)))
		return true;
	snprintf(why, whylen, "connect: %s", strerror(e ? e : ECONNRESET));
	return false;
}

void tlsc_back_off(struct tlsc_health *h, uint64_t now)
{
	h->backoff_ms = h->backoff_ms ? h->backoff_ms * 2 : TLSC_BACKOFF_MIN_MS;
	if (h->backoff_ms > TLSC_BACKOFF_MAX_MS)
		h->backoff_ms = TLSC_BACKOFF_MAX_MS;
	h->retry_at = now + h->backoff_ms;
}

/* A dead server must not flood the log at the query rate. */
void tlsc_log_failure(struct tlsc_health *h, uint64_t now, const char *server,
		      const char *why)
{
	if (h->logged_at && now - h->logged_at < TLSC_LOG_EVERY_MS) {
		h->unlogged++;
		return;
	}
	if (h->unlogged)
		log_warn("upstream %s: %s (and %u more failures since the "
			 "last report)",
			 server, why, h->unlogged);
	else
		log_warn("upstream %s: %s", server, why);
	h->logged_at = now;
	h->unlogged = 0;
}
