/*
 * tls.h - the server side of TLS for the tls:// and https:// listeners:
 * the certificate and key (credentials), and one GnuTLS session over a
 * non-blocking connected socket.
 *
 * Credentials are read from PEM files (the chain in the certificate
 * file) when a snapshot is built, at start and at every reload, and are
 * reference counted: each session holds the credentials it started with,
 * so that a reload that brings a renewed certificate gives new
 * handshakes the new one while sessions already open keep theirs.
 * A session is used by its loop's thread only; credentials by any.
 * This is the only module that includes <gnutls/gnutls.h> for listeners.
 */
#ifndef SPLITDNS_TLS_H
#define SPLITDNS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_creds;
struct tls_session;

/* Read cert (PEM: the server's certificate first, then its chain) and
 * key (PEM) and check that they belong together.  Returns credentials
 * holding one reference, or NULL with the reason in err. */
struct tls_creds *tls_creds_new(const char *cert, const char *key, char *err,
				size_t errlen);

/* One more reference (any thread). */
struct tls_creds *tls_creds_ref(struct tls_creds *c);

/* Drop one (any thread); the last frees.  NULL is fine. */
void tls_creds_unref(struct tls_creds *c);

/* What a listener offers in ALPN (RFC 7301): "dot" (RFC 7858 does not
 * require it; RFC 8310 names it) or "h2" (RFC 8484 5.2: HTTP/2). */
enum tls_alpn { TLS_ALPN_DOT, TLS_ALPN_H2 };

/* A server session on fd (borrowed: the caller closes it after
 * tls_session_free) holding a reference to creds.  NULL when out of
 * memory or when GnuTLS refuses. */
struct tls_session *tls_session_new(struct tls_creds *creds, int fd,
				    enum tls_alpn alpn);

/* Go on with the handshake: 1 when done, 0 when it waits for the
 * network (tls_want_write says which way), -1 when it failed. */
int tls_handshake(struct tls_session *s);

/* Decrypted bytes into buf: > 0 bytes, 0 at the client's close_notify
 * or EOF, -1 with errno EAGAIN (nothing yet) or EPROTO/ECONNRESET. */
ssize_t tls_recv(struct tls_session *s, void *buf, size_t len);

/* Encrypt and send from buf: > 0 bytes taken, -1 with errno EAGAIN (call
 * again with the same bytes) or EPIPE. */
ssize_t tls_send(struct tls_session *s, const void *buf, size_t len);

/* Whether the last call that returned EAGAIN waits to write (else to
 * read): the epoll interest while a handshake or a send is pending. */
bool tls_want_write(const struct tls_session *s);

/* Bytes tls_recv has not returned yet that the socket will not signal:
 * decrypted ones GnuTLS holds, and those read ahead from the socket. */
size_t tls_pending(const struct tls_session *s);

/* Free the session and its reference to the credentials (no
 * close_notify: the connection is going away).  NULL is fine. */
void tls_session_free(struct tls_session *s);

#endif
