/*
 * doh.c - DNS over HTTPS requests and responses (RFC 8484) on an nghttp2
 * server session.
 *
 * nghttp2 does HTTP/2 (framing, HPACK, flow control, stream states and
 * the concurrent stream limit); this file keeps one small object per
 * request stream with what RFC 8484 needs: the method, whether the path
 * is ours, the content type and the DNS message, bounded as it arrives
 * (DOH_MSG_MAX per stream, DOH_CONN_BODY_MAX per connection, header
 * bytes per stream), and the reply until nghttp2 has sent it.  The
 * object goes with the stream (on_stream_close).  Responses submitted
 * while nghttp2 is calling us are sent by the caller's next doh_output
 * (nghttp2 must not send from its own callbacks).
 */
#include <config.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "doh.h"
#include "wire.h"

/* Request bodies held per connection, all streams together: past it a
 * request is answered 503 instead of being buffered. */
#define DOH_CONN_BODY_MAX (4 * (size_t)DOH_MSG_MAX)
/* Header bytes per stream: a GET carries the query base64url-encoded
 * in :path (4/3 of DOH_MSG_MAX), the rest is small. */
#define DOH_HEADER_MAX (DOH_MSG_MAX / 3 * 4 + 8192)
/* Queries and replies up to this size stay in the stream object, and a
 * session keeps up to DOH_SPARE closed stream objects for the next
 * requests: a request of the usual size allocates nothing of ours. */
#define DOH_INLINE 512
#define DOH_SPARE 8

enum doh_method { DOH_OTHER, DOH_GET, DOH_POST };

struct doh_stream {
	struct doh_stream *prev, *next; /* the session's streams */
	struct doh_stream *wnext;       /* waiting for the handler's room */
	bool waiting;
	int32_t id;
	enum doh_method method;
	bool have_method;
	bool path_ok;      /* :path's path is ours */
	bool have_dns;     /* GET: a dns= parameter (decoded into body) */
	bool type_ok;      /* POST: content-type application/dns-message */
	bool answered;
	int status;        /* decided while receiving (400, 413, 503); 0 */
	size_t header_bytes;
	uint8_t *body;     /* the DNS query, body_len bytes (body_in or
			      allocated) */
	size_t body_len, body_cap;
	uint8_t *resp;     /* the reply being sent (resp_in or allocated) */
	size_t resp_len, resp_off;
	uint8_t body_in[DOH_INLINE], resp_in[DOH_INLINE];
};

struct doh_session {
	nghttp2_session *h2;
	const char *path;
	size_t path_len;
	struct doh_handler h;
	size_t body_total; /* request body bytes held, all streams */
	struct doh_stream *streams; /* nghttp2_session_del does not close
				       them: freed by doh_session_free */
	struct doh_stream *whead, **wtail; /* complete requests, in order,
					      that the handler had no room
					      for */
	struct doh_stream *spare; /* closed stream objects to reuse */
	unsigned nspare;
	bool failed;
};

/* Take st off the waiting queue (a stream reset while it waited). */
static void unwait(struct doh_session *s, struct doh_stream *st)
{
	struct doh_stream **p = &s->whead;
	while (*p && *p != st)
		p = &(*p)->wnext;
	if (!*p)
		return;
	*p = st->wnext;
	if (!*p)
		s->wtail = p;
	st->wnext = NULL;
	st->waiting = false;
}

static void stream_free(struct doh_session *s, struct doh_stream *st)
{
	if (st->waiting)
		unwait(s, st);
	if (st->prev)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	s->body_total -= st->body_len;
	if (st->body != st->body_in)
		free(st->body);
	if (st->resp != st->resp_in)
		free(st->resp);
	if (s->nspare < DOH_SPARE) {
		st->next = s->spare;
		s->spare = st;
		s->nspare++;
	} else {
		free(st);
	}
}

/* A stream object as new: a spare one, or allocated. */
static struct doh_stream *stream_new(struct doh_session *s)
{
	struct doh_stream *st = s->spare;

	if (st) {
		s->spare = st->next;
		s->nspare--;
	} else if (!(st = malloc(sizeof(*st)))) {
		return NULL;
	}
	/* The fields; the inline buffers are written before read. */
	memset(st, 0, offsetof(struct doh_stream, body_in));
	st->body = st->body_in;
	st->body_cap = sizeof(st->body_in);
	return st;
}

/* ------------------------------------------------------- base64url */

static int b64url_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

long doh_base64url_decode(const char *text, size_t n, uint8_t *out,
			  size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t len = 0;

	/* RFC 8484 4.1: padding MUST NOT be sent; tolerate it anyway. */
	while (n > 0 && text[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1; /* 6 bits cannot end a byte */
	if (n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value((unsigned char)text[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[len++] = (uint8_t)(acc >> bits);
		}
	}
	/* RFC 4648 3.5: the bits left over must be zero. */
	if (acc & ((1u << bits) - 1))
		return -1;
	return (long)len;
}

uint32_t doh_min_ttl(const uint8_t *msg, size_t len)
{
	struct wire_rrs it;
	struct wire_rr rr;
	uint32_t best[2] = {UINT32_MAX, UINT32_MAX};

	if (!wire_rrs_begin(&it, msg, len))
		return 0;
	while (wire_rrs_next(&it, &rr)) {
		if (rr.section == WIRE_ADDITIONAL)
			break;
		uint32_t ttl = wire_get32(msg + rr.ttl_at);
		if (ttl < best[rr.section])
			best[rr.section] = ttl;
	}
	if (it.bad)
		return 0;
	if (best[WIRE_ANSWER] != UINT32_MAX)
		return best[WIRE_ANSWER];
	return best[WIRE_AUTHORITY] != UINT32_MAX ? best[WIRE_AUTHORITY] : 0;
}

/* ------------------------------------------------------- requests */

static bool header_is(const uint8_t *name, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* The "dns" parameter of a GET's query string (RFC 8484 4.1), decoded
 * into st->body. */
static void get_param(struct doh_session *s, struct doh_stream *st,
		      const char *q, size_t n)
{
	while (n > 0) {
		const char *amp = memchr(q, '&', n);
		size_t plen = amp ? (size_t)(amp - q) : n;
		if (plen >= 4 && memcmp(q, "dns=", 4) == 0 && !st->have_dns) {
			size_t vlen = plen - 4;
			if (vlen / 4 * 3 > DOH_MSG_MAX + 3) {
				st->status = 413;
				return;
			}
			if (s->body_total + vlen > DOH_CONN_BODY_MAX) {
				st->status = 503;
				return;
			}
			size_t cap = vlen / 4 * 3 + 3;
			if (cap > st->body_cap) {
				uint8_t *b = malloc(cap);
				if (!b) {
					st->status = 503;
					return;
				}
				if (st->body != st->body_in)
					free(st->body); /* an earlier bad dns= */
				st->body = b;
				st->body_cap = cap;
			}
			long got = doh_base64url_decode(q + 4, vlen, st->body,
							cap);
			if (got < 0 || got > DOH_MSG_MAX) {
				st->status = got < 0 ? 400 : 413;
				return;
			}
			st->body_len = (size_t)got;
			s->body_total += st->body_len;
			st->have_dns = true;
		}
		if (!amp)
			break;
		n -= plen + 1;
		q = amp + 1;
	}
}

static void on_path(struct doh_session *s, struct doh_stream *st,
		    const uint8_t *v, size_t n)
{
	const char *q = memchr(v, '?', n);
	size_t plen = q ? (size_t)(q - (const char *)v) : n;
	st->path_ok = plen == s->path_len && memcmp(v, s->path, plen) == 0;
	if (st->path_ok && q)
		get_param(s, st, q + 1, n - plen - 1);
}

/* "application/dns-message", optionally with parameters (RFC 9110
 * 8.3.1: the type is case-insensitive). */
static bool dns_message_type(const uint8_t *v, size_t n)
{
	static const char want[] = "application/dns-message";
	size_t w = sizeof(want) - 1;
	return n >= w && strncasecmp((const char *)v, want, w) == 0 &&
	       (n == w || v[w] == ';' || v[w] == ' ');
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f,
			    void *ctx)
{
	struct doh_session *s = ctx;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct doh_stream *st = stream_new(s);
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
	st->id = f->hd.stream_id;
	st->next = s->streams;
	if (s->streams)
		s->streams->prev = st;
	s->streams = st;
	nghttp2_session_set_stream_user_data(h2, st->id, st);
	return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f,
		     const uint8_t *name, size_t namelen, const uint8_t *value,
		     size_t valuelen, uint8_t flags, void *ctx)
{
	struct doh_session *s = ctx;
	struct doh_stream *st;

	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS ||
	    !(st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id)))
		return 0;
	st->header_bytes += namelen + valuelen;
	if (st->header_bytes > DOH_HEADER_MAX)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (header_is(name, namelen, ":method")) {
		st->have_method = true;
		st->method = header_is(value, valuelen, "GET")	  ? DOH_GET
			     : header_is(value, valuelen, "POST") ? DOH_POST
								  : DOH_OTHER;
	} else if (header_is(name, namelen, ":path")) {
		on_path(s, st, value, valuelen);
	} else if (header_is(name, namelen, "content-type")) {
		st->type_ok = dns_message_type(value, valuelen);
	}
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id,
		   const uint8_t *data, size_t len, void *ctx)
{
	struct doh_session *s = ctx;
	struct doh_stream *st = nghttp2_session_get_stream_user_data(h2, id);

	(void)flags;
	if (!st || st->status || st->method != DOH_POST)
		return 0; /* a decided or GET request: its body is dropped */
	if (st->body_len + len > DOH_MSG_MAX) {
		st->status = 413; /* RFC 8484 4.1 */
		return 0;
	}
	if (s->body_total + len > DOH_CONN_BODY_MAX) {
		st->status = 503;
		return 0;
	}
	if (st->body_len + len > st->body_cap) {
		/* Grown as the body comes: a stream that sent a byte holds
		 * little. */
		size_t cap = st->body_cap;
		while (cap < st->body_len + len)
			cap *= 2;
		if (cap > DOH_MSG_MAX)
			cap = DOH_MSG_MAX;
		uint8_t *b = st->body == st->body_in ? malloc(cap)
						     : realloc(st->body, cap);
		if (!b) {
			st->status = 503;
			return 0;
		}
		if (st->body == st->body_in)
			memcpy(b, st->body_in, st->body_len);
		st->body = b;
		st->body_cap = cap;
	}
	memcpy(st->body + st->body_len, data, len);
	st->body_len += len;
	s->body_total += len;
	return 0;
}

/* The status a complete request gets without going to the pipeline, or
 * 0 when its query goes on. */
static int check_request(const struct doh_stream *st)
{
	if (st->status)
		return st->status;
	if (!st->path_ok)
		return 404;
	if (!st->have_method || st->method == DOH_OTHER)
		return 405;
	if (st->method == DOH_POST && !st->type_ok)
		return 415; /* RFC 8484 4.1 */
	if (st->method == DOH_GET && !st->have_dns)
		return 400;
	if (st->body_len < WIRE_HEADER_LEN)
		return 400; /* not a DNS message */
	return 0;
}

static int on_frame(nghttp2_session *h2, const nghttp2_frame *f, void *ctx)
{
	struct doh_session *s = ctx;
	struct doh_stream *st;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
	    !(st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id)))
		return 0;
	int status = check_request(st);
	if (status) {
		doh_error(s, st->id, status);
		return 0;
	}
	/* Behind others that wait, a request waits too: in order. */
	if (s->whead || !s->h.query(s->h.ctx, st->id, st->body, st->body_len)) {
		st->waiting = true;
		*s->wtail = st;
		s->wtail = &st->wnext;
	}
	return 0;
}

bool doh_resume(struct doh_session *s)
{
	struct doh_stream *st;

	while ((st = s->whead)) {
		if (!s->h.query(s->h.ctx, st->id, st->body, st->body_len))
			return false;
		/* The handler may have answered and nghttp2 not yet closed
		 * the stream: it is still st, still first. */
		unwait(s, st);
	}
	return true;
}

bool doh_waiting(const struct doh_session *s)
{
	return s->whead != NULL;
}

static int on_close(nghttp2_session *h2, int32_t id, uint32_t code,
		    void *ctx)
{
	struct doh_stream *st = nghttp2_session_get_stream_user_data(h2, id);

	(void)code;
	if (st) {
		nghttp2_session_set_stream_user_data(h2, id, NULL);
		stream_free(ctx, st);
	}
	return 0;
}

/* ------------------------------------------------------ responses */

static ssize_t read_resp(nghttp2_session *h2, int32_t id, uint8_t *buf,
			 size_t len, uint32_t *flags, nghttp2_data_source *src,
			 void *ctx)
{
	struct doh_stream *st = src->ptr;
	size_t n = st->resp_len - st->resp_off;

	(void)h2;
	(void)id;
	(void)ctx;
	if (n > len)
		n = len;
	memcpy(buf, st->resp + st->resp_off, n);
	st->resp_off += n;
	if (st->resp_off == st->resp_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

#define NV(n, v, vl)                                                      \
	{(uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v), sizeof(n) - 1, \
	 (vl), NGHTTP2_NV_FLAG_NONE}

/* The decimal digits of v after prefix, in buf (at least 32 bytes);
 * returns the length (snprintf costs a good part of a reply). */
static size_t put_uint(char *buf, const char *prefix, uint32_t v)
{
	char digits[10];
	size_t n = 0, len = strlen(prefix);

	memcpy(buf, prefix, len);
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		buf[len++] = digits[--n];
	return len;
}

void doh_reply(struct doh_session *s, int32_t id, const uint8_t *msg,
	       size_t len)
{
	struct doh_stream *st = nghttp2_session_get_stream_user_data(s->h2, id);
	char clen[32], cache[32];

	if (!st || st->answered)
		return;
	st->resp = len <= sizeof(st->resp_in) ? st->resp_in : malloc(len);
	if (!st->resp) {
		doh_error(s, id, 503);
		return;
	}
	memcpy(st->resp, msg, len);
	st->resp_len = len;
	st->answered = true;
	/* len is at most DOH_MSG_MAX (a DNS message). */
	size_t cl = put_uint(clen, "", (uint32_t)len);
	size_t cc = put_uint(cache, "max-age=", doh_min_ttl(msg, len));
	const nghttp2_nv nv[] = {
		NV(":status", "200", 3),
		NV("content-type", "application/dns-message", 23),
		NV("content-length", clen, cl),
		NV("cache-control", cache, cc),
	};
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_resp};
	if (nghttp2_submit_response(s->h2, id, nv, 4, &prd) != 0)
		nghttp2_submit_rst_stream(s->h2, NGHTTP2_FLAG_NONE, id,
					  NGHTTP2_INTERNAL_ERROR);
}

void doh_error(struct doh_session *s, int32_t id, int status)
{
	struct doh_stream *st = nghttp2_session_get_stream_user_data(s->h2, id);
	char code[8];

	if (!st || st->answered)
		return;
	st->answered = true;
	int n = snprintf(code, sizeof(code), "%d", status);
	const nghttp2_nv nv[] = {
		NV(":status", code, (size_t)n),
		NV("content-length", "0", 1),
		NV("allow", "GET, POST", 9), /* RFC 9110 15.5.6 for 405 */
	};
	if (nghttp2_submit_response(s->h2, id, nv, status == 405 ? 3 : 2,
				    NULL) != 0)
		nghttp2_submit_rst_stream(s->h2, NGHTTP2_FLAG_NONE, id,
					  NGHTTP2_INTERNAL_ERROR);
}

bool doh_answered(struct doh_session *s, int32_t id)
{
	struct doh_stream *st = nghttp2_session_get_stream_user_data(s->h2, id);
	return !st || st->answered;
}

/* -------------------------------------------------------- session */

struct doh_session *doh_session_new(const char *path, unsigned max_streams,
				    const struct doh_handler *h)
{
	struct doh_session *s = calloc(1, sizeof(*s));
	nghttp2_session_callbacks *cb = NULL;

	if (!s)
		return NULL;
	s->path = path;
	s->path_len = strlen(path);
	s->h = *h;
	s->wtail = &s->whead;
	if (nghttp2_session_callbacks_new(&cb) != 0) {
		free(s);
		return NULL;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
								on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	int rc = nghttp2_session_server_new(&s->h2, cb, s);
	nghttp2_session_callbacks_del(cb);
	if (rc != 0) {
		free(s);
		return NULL;
	}
	/* RFC 9113 6.5.2; a request body needs no more window than one
	 * DNS message. */
	const nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, DOH_MSG_MAX},
	};
	if (nghttp2_submit_settings(s->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0) {
		doh_session_free(s);
		return NULL;
	}
	return s;
}

bool doh_input(struct doh_session *s, const uint8_t *data, size_t len)
{
	ssize_t n = nghttp2_session_mem_recv(s->h2, data, len);
	if (n < 0 || (size_t)n != len) {
		s->failed = true;
		return false;
	}
	return true;
}

ssize_t doh_output(struct doh_session *s, const uint8_t **data)
{
	ssize_t n = nghttp2_session_mem_send(s->h2, data);
	if (n < 0)
		s->failed = true;
	return n;
}

void doh_goaway(struct doh_session *s)
{
	if (nghttp2_session_terminate_session(s->h2, NGHTTP2_NO_ERROR) != 0)
		s->failed = true;
}

bool doh_done(struct doh_session *s)
{
	return s->failed || (!nghttp2_session_want_read(s->h2) &&
			     !nghttp2_session_want_write(s->h2));
}

void doh_session_free(struct doh_session *s)
{
	if (!s)
		return;
	nghttp2_session_del(s->h2);
	while (s->streams)
		stream_free(s, s->streams);
	while (s->spare) {
		struct doh_stream *st = s->spare;
		s->spare = st->next;
		free(st);
	}
	free(s);
}
