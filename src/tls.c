/*
 * tls.c - GnuTLS for the listeners: credentials read from PEM files and
 * server sessions over non-blocking sockets.
 *
 * GnuTLS writes the socket itself (its default push, sendmsg on the
 * descriptor) and reads it through pull below, which reads ahead so
 * that a record costs one recv, not two; this module turns its status
 * codes into the errno convention tcp.c uses for plain sockets.  TLS 1.2
 * and 1.3 only (RFC 8310 9, RFC 8484 5.2 after RFC 7525); session
 * tickets (RFC 5077, TLS 1.3 PSK) so that clients resume, with a key
 * per credentials object: a reload starts a new key.
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>

#include "tls.h"

#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct tls_creds {
	atomic_uint refs;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	gnutls_datum_t ticket_key;
};

/* Socket bytes read ahead per session: GnuTLS asks for a record's
 * 5-byte header and then for its body, two recv calls per record; one
 * recv into this buffer usually takes both, and several records of
 * pipelined queries. */
#define TLS_READAHEAD 4096

struct tls_session {
	gnutls_session_t s;
	struct tls_creds *creds;
	int fd;
	size_t send_pending; /* bytes of a send that returned EAGAIN */
	size_t ra_off, ra_len; /* ra[ra_off..ra_len) not yet given to GnuTLS */
	uint8_t ra[TLS_READAHEAD];
};

struct tls_creds *tls_creds_new(const char *cert, const char *key, char *err,
				size_t errlen)
{
	struct tls_creds *c = calloc(1, sizeof(*c));
	int rc;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&c->refs, 1);
	if ((rc = gnutls_certificate_allocate_credentials(&c->cred)) < 0)
		goto fail;
	/* The key is checked against the certificate here
	 * (GNUTLS_E_CERTIFICATE_KEY_MISMATCH). */
	if ((rc = gnutls_certificate_set_x509_key_file(
		 c->cred, cert, key, GNUTLS_X509_FMT_PEM)) < 0)
		goto fail;
	if ((rc = gnutls_priority_init(&c->prio, TLS_PRIORITY, NULL)) < 0)
		goto fail;
	if ((rc = gnutls_session_ticket_key_generate(&c->ticket_key)) < 0)
		goto fail;
	return c;
fail:
	snprintf(err, errlen, "%s", gnutls_strerror(rc));
	tls_creds_unref(c);
	return NULL;
}

struct tls_creds *tls_creds_ref(struct tls_creds *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void tls_creds_unref(struct tls_creds *c)
{
	if (!c ||
	    atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (c->ticket_key.data) {
		gnutls_memset(c->ticket_key.data, 0, c->ticket_key.size);
		gnutls_free(c->ticket_key.data);
	}
	if (c->prio)
		gnutls_priority_deinit(c->prio);
	if (c->cred)
		gnutls_certificate_free_credentials(c->cred);
	free(c);
}

/* GnuTLS' pull: from the read-ahead buffer, refilled with one recv;
 * a read as large as the buffer goes straight to the caller. */
static ssize_t pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct tls_session *t = ptr;

	if (t->ra_off == t->ra_len) {
		if (len >= sizeof(t->ra))
			return recv(t->fd, data, len, MSG_DONTWAIT);
		ssize_t n = recv(t->fd, t->ra, sizeof(t->ra), MSG_DONTWAIT);
		if (n <= 0)
			return n; /* errno is GnuTLS' to read */
		t->ra_off = 0;
		t->ra_len = (size_t)n;
	}
	size_t n = t->ra_len - t->ra_off;
	if (n > len)
		n = len;
	memcpy(data, t->ra + t->ra_off, n);
	t->ra_off += n;
	return (ssize_t)n;
}

/* Whether pull has something within ms (GnuTLS' pull timeout, which
 * must know about the read-ahead buffer). */
static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct tls_session *t = ptr;
	struct pollfd p = {.fd = t->fd, .events = POLLIN};

	if (t->ra_off < t->ra_len)
		return 1;
	return poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

struct tls_session *tls_session_new(struct tls_creds *creds, int fd,
				    enum tls_alpn alpn)
{
	static const char *const names[] = {"dot", "h2"};
	struct tls_session *t = calloc(1, sizeof(*t));
	gnutls_datum_t proto;

	if (!t)
		return NULL;
	if (gnutls_init(&t->s, GNUTLS_SERVER | GNUTLS_NONBLOCK) < 0) {
		free(t);
		return NULL;
	}
	proto.data = (unsigned char *)(uintptr_t)names[alpn];
	proto.size = (unsigned)strlen(names[alpn]);
	if (gnutls_priority_set(t->s, creds->prio) < 0 ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE,
				   creds->cred) < 0 ||
	    gnutls_session_ticket_enable_server(t->s, &creds->ticket_key) <
		0 ||
	    gnutls_alpn_set_protocols(t->s, &proto, 1,
				      GNUTLS_ALPN_SERVER_PRECEDENCE) < 0) {
		gnutls_deinit(t->s);
		free(t);
		return NULL;
	}
	/* No client certificates: DNS clients are not authenticated by
	 * TLS (RFC 7858 4.2 leaves it to the server; access.allow does). */
	gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_IGNORE);
	/* Our pull, GnuTLS' own push (sendmsg on the descriptor). */
	t->fd = fd;
	gnutls_transport_set_ptr2(t->s, t,
				  (gnutls_transport_ptr_t)(intptr_t)fd);
	gnutls_transport_set_pull_function(t->s, pull);
	gnutls_transport_set_pull_timeout_function(t->s, pull_timeout);
	t->creds = tls_creds_ref(creds);
	return t;
}

int tls_handshake(struct tls_session *s)
{
	int rc = gnutls_handshake(s->s);
	if (rc == GNUTLS_E_SUCCESS)
		return 1;
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ||
	    !gnutls_error_is_fatal(rc))
		return 0;
	return -1;
}

/* errno for a GnuTLS status that is not a byte count. */
static ssize_t fail_errno(int rc)
{
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		errno = EAGAIN;
	else if (rc == GNUTLS_E_PUSH_ERROR || rc == GNUTLS_E_PULL_ERROR ||
		 rc == GNUTLS_E_PREMATURE_TERMINATION)
		errno = ECONNRESET;
	else
		errno = EPROTO;
	return -1;
}

ssize_t tls_recv(struct tls_session *s, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = gnutls_record_recv(s->s, buf, len);
		if (n >= 0)
			return n; /* 0: close_notify */
		/* A TLS 1.3 key update or a ticket is not data; a
		 * rehandshake request from a client is refused (TLS 1.2). */
		if (n == GNUTLS_E_REHANDSHAKE) {
			gnutls_alert_send(s->s, GNUTLS_AL_WARNING,
					  GNUTLS_A_NO_RENEGOTIATION);
			continue;
		}
		if (!gnutls_error_is_fatal((int)n) && n != GNUTLS_E_AGAIN &&
		    n != GNUTLS_E_INTERRUPTED)
			continue;
		return fail_errno((int)n);
	}
}

ssize_t tls_send(struct tls_session *s, const void *buf, size_t len)
{
	/* After GNUTLS_E_AGAIN the record is already encrypted in
	 * GnuTLS' buffer: NULL and 0 flush it and return its length. */
	ssize_t n = s->send_pending ? gnutls_record_send(s->s, NULL, 0)
				    : gnutls_record_send(s->s, buf, len);
	if (n >= 0) {
		s->send_pending = 0;
		return n;
	}
	if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED) {
		errno = EPIPE;
		return -1;
	}
	s->send_pending = len;
	errno = EAGAIN;
	return -1;
}

bool tls_want_write(const struct tls_session *s)
{
	return gnutls_record_get_direction(s->s) == 1;
}

size_t tls_pending(const struct tls_session *s)
{
	return gnutls_record_check_pending(s->s) + (s->ra_len - s->ra_off);
}

void tls_session_free(struct tls_session *s)
{
	if (!s)
		return;
	gnutls_deinit(s->s);
	tls_creds_unref(s->creds);
	free(s);
}
