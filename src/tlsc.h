/*
 * tlsc.h - the client side of TLS for the tls:// and https:// upstreams:
 * the certificates servers must chain to (the trust), and one GnuTLS
 * client session over a non-blocking connected socket, verified against
 * a name or an address, resuming an earlier session when it can.
 *
 * This is the only module that includes <gnutls/gnutls.h> for upstreams;
 * dot.c (DNS over TLS) and dohup.c (DNS over HTTPS) own the connections'
 * life and the DNS on top, with a few helpers from here that both need:
 * the non-blocking connect, the backoff and the rate-limited log.  A session is
 * used by its loop's thread only; the trust by any.
 */
#ifndef SPLITDNS_TLSC_H
#define SPLITDNS_TLSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The CA certificates of tls:// and https:// servers: shared, read-only,
 * by every loop, with a reference count. */
struct tlsc_trust;

/*
 * Trust the CA certificates in the PEM file ca, or the system's store
 * when ca is NULL.  Returns a reference, or NULL with a message in err.
 */
struct tlsc_trust *tlsc_trust_new(const char *ca, char *err, size_t errlen);
struct tlsc_trust *tlsc_trust_ref(struct tlsc_trust *t);
/* Any thread; NULL is fine. */
void tlsc_trust_unref(struct tlsc_trust *t);

/* Session data kept from one connection to resume the next (RFC 8446
 * 2.2, RFC 7858 3.4).  Zeroed is empty; the owner clears it. */
struct tlsc_ticket {
	unsigned char *data;
	unsigned size;
};

void tlsc_ticket_clear(struct tlsc_ticket *t);

struct tlsc;

/*
 * A client session on fd (borrowed: the caller closes it after
 * tlsc_free), trusting trust (a reference is taken).  The certificate
 * must carry name (sent as SNI too) or, when name is "", the address
 * in ss as an IP address entry.  alpn (NULL: none) is offered
 * (RFC 7301).  resume (NULL or empty: a full handshake) is tried.
 * Returns NULL with the reason in why.
 */
struct tlsc *tlsc_new(struct tlsc_trust *trust, int fd, const char *name,
		      const struct sockaddr_storage *ss, const char *alpn,
		      const struct tlsc_ticket *resume, char *why,
		      size_t whylen);

/* Go on with the handshake: 1 done, 0 waiting for the network
 * (tlsc_want_write says which way), -1 failed with the reason (a
 * certificate rejected and why, an alert, ...) in why. */
int tlsc_handshake(struct tlsc *s, char *why, size_t whylen);

/* Whether the last call that waited wants to write (else to read). */
bool tlsc_want_write(const struct tlsc *s);

/* Encrypt and send: > 0 bytes taken; 0: the socket is full, call again
 * with the same bytes; -1: the connection failed (why). */
ssize_t tlsc_send(struct tlsc *s, const void *buf, size_t len, char *why,
		  size_t whylen);

/* Decrypted bytes into buf: > 0 bytes; 0: nothing now; -1: the server
 * closed the connection or it failed (why). */
ssize_t tlsc_recv(struct tlsc *s, void *buf, size_t len, char *why,
		  size_t whylen);

/* Keep this session's data in t for the next handshake, once there is
 * some to keep (in TLS 1.3, after the server's ticket came).  True when
 * it was kept (or will never be). */
bool tlsc_save(struct tlsc *s, struct tlsc_ticket *t);

/* Whether the handshake resumed a session. */
bool tlsc_resumed(const struct tlsc *s);

/* Whether the server chose proto in ALPN; false when it chose none. */
bool tlsc_alpn_is(const struct tlsc *s, const char *proto);

/* The protocol and ciphers, for a debug line, into buf. */
void tlsc_describe(const struct tlsc *s, char *buf, size_t len);

/* Free the session and its trust reference; with bye, a close_notify
 * is attempted first (best effort).  NULL is fine. */
void tlsc_free(struct tlsc *s, bool bye);

/*
 * Send buf[*off, len) as far as the socket takes it, at most one TLS
 * record per call into GnuTLS: 1 when all is sent (*off == len), 0 when
 * the socket is full (*again holds the size of the send to repeat, as
 * GnuTLS asks; pass it back unchanged), -1 when the connection failed
 * (why).
 */
int tlsc_write(struct tlsc *s, const uint8_t *buf, size_t *off, size_t len,
	       size_t *again, char *why, size_t whylen);

/* ---- what the encrypted upstreams share around a session ---- */

/* A non-blocking TCP socket (TCP_NODELAY) connecting to ss: the fd, or
 * -1 with the reason in why. */
int tlsc_connect(const struct sockaddr_storage *ss, socklen_t len, char *why,
		 size_t whylen);

/* Whether the connect on fd succeeded, when the loop reported events
 * (epoll) on it; false with the reason in why. */
bool tlsc_connected(int fd, uint32_t events, char *why, size_t whylen);

/* A server's record of failures: the backoff after connections that
 * could not be used (1 s, doubling to 60 s), and log lines at most
 * once per 10 s.  Zeroed is healthy. */
struct tlsc_health {
	uint64_t retry_at; /* backing off until then */
	unsigned backoff_ms;
	uint64_t logged_at;
	unsigned unlogged; /* failures since the last log line */
};

/* A connection could not be used: back off longer. */
void tlsc_back_off(struct tlsc_health *h, uint64_t now);

/* A connection is up: no backoff the next time. */
static inline void tlsc_healthy(struct tlsc_health *h) { h->backoff_ms = 0; }

/* A warning "upstream SERVER: WHY", unless one was logged in the last
 * 10 s (then it is counted, and the next line says how many). */
void tlsc_log_failure(struct tlsc_health *h, uint64_t now, const char *server,
		      const char *why);

#endif
