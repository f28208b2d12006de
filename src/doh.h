/*
 * doh.h - the HTTP/2 side of one DNS over HTTPS connection (RFC 8484):
 * requests in, DNS queries out to a handler, replies back as responses.
 *
 * A session is fed the bytes the TLS layer decrypted and yields the
 * bytes to encrypt and send; it never touches a socket.  HTTP/2 itself is
 * nghttp2's (this is the only module that includes <nghttp2/nghttp2.h>);
 * this module checks what RFC 8484 asks of a request: the path, GET with
 * a base64url "dns" parameter or POST with an application/dns-message
 * body, and answers the others with 400, 404, 405, 413 or 415.  Used by
 * its loop's thread only.
 */
#ifndef SPLITDNS_DOH_H
#define SPLITDNS_DOH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The largest DNS message a request may carry (RFC 8484 6: the DNS
 * message size limit of RFC 1035 over TCP). */
#define DOH_MSG_MAX 65535

struct doh_session;

/* Where the queries go: query(ctx, stream, msg, len) for each request
 * that passes the checks (msg valid during the call).  The handler
 * answers with doh_reply or doh_error, then or later, and returns true;
 * false when it has no room for the query now: the request waits, in
 * order, for doh_resume. */
struct doh_handler {
	bool (*query)(void *ctx, int32_t stream, const uint8_t *msg,
		      size_t len);
	void *ctx;
};

/* A server session for requests to path (borrowed; it must outlive the
 * session), at most max_streams at once (SETTINGS_MAX_CONCURRENT_STREAMS,
 * RFC 9113 6.5.2).  NULL when out of memory. */
struct doh_session *doh_session_new(const char *path, unsigned max_streams,
				    const struct doh_handler *h);

/* Take len bytes from the client.  False on an HTTP/2 connection error:
 * send what doh_output still yields (a GOAWAY) and close. */
bool doh_input(struct doh_session *s, const uint8_t *data, size_t len);

/* Answer stream with the DNS message msg (copied): 200,
 * application/dns-message, and Cache-Control max-age from its smallest
 * TTL (RFC 8484 5.1).  Dropped when the stream has gone. */
void doh_reply(struct doh_session *s, int32_t stream, const uint8_t *msg,
	       size_t len);

/* Answer stream with status and no body. */
void doh_error(struct doh_session *s, int32_t stream, int status);

/* Hand the waiting requests to the handler again, in order, until it
 * refuses one.  True when none waits any more. */
bool doh_resume(struct doh_session *s);

/* Whether requests wait for the handler's room. */
bool doh_waiting(const struct doh_session *s);

/* Whether stream has been answered (doh_reply or doh_error). */
bool doh_answered(struct doh_session *s, int32_t stream);

/* The next bytes to send in *data (valid until the next call into the
 * session): their length, 0 when there is nothing, -1 on error. */
ssize_t doh_output(struct doh_session *s, const uint8_t **data);

/* End the session: GOAWAY with NO_ERROR (RFC 9113 6.8), sent by the
 * next doh_output. */
void doh_goaway(struct doh_session *s);

/* Whether the session is over (both sides sent GOAWAY, or an error):
 * the connection closes once its output is sent. */
bool doh_done(struct doh_session *s);

/* Decode base64url without padding (RFC 4648 5, RFC 8484 4.1) from
 * text (n chars) into out (at most cap bytes).  Returns the length, or
 * -1 for a character outside the alphabet, a bad length, or more than
 * cap bytes.  Exported for the unit test. */
long doh_base64url_decode(const char *text, size_t n, uint8_t *out,
			  size_t cap);

/* The smallest TTL of msg's answer section, or of its authority section
 * when the answer is empty (RFC 8484 5.1, RFC 2308 5); 0 when it has
 * none or is malformed. */
uint32_t doh_min_ttl(const uint8_t *msg, size_t len);

void doh_session_free(struct doh_session *s);

#endif
