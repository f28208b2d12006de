/*
 * dohup.c - DNS over HTTPS to one server: an nghttp2 client session
 * over a tlsc.c session over a non-blocking socket watched by the loop.
 *
 * The server has one current connection.  Each query takes a slot of a
 * fixed table (its own buffers for the query and the response body,
 * grown once to the largest seen, never freed per query) and becomes a
 * POST request on a stream of its own (RFC 8484 4.1, with ID 0 in the
 * message); nghttp2 queues the requests until the handshake is done and
 * past the server's concurrent stream limit, and what it has to send is
 * written after each batch, so that one TLS record carries a batch.  A
 * response is matched by its stream, so replies come in any order and a
 * late one can never be taken for another query's.  A query that times
 * out resets its stream (RST_STREAM, CANCEL) and keeps its slot until
 * the stream has closed.
 *
 * nghttp2's callbacks only record what came (the status, the content
 * type, the body, how the stream ended); the queries end after
 * nghttp2_session_mem_recv returns, so that a caller's callback, which
 * may send again, never runs inside nghttp2.
 *
 * Connections are made on demand and kept as dot.c's are: closed after
 * idle_timeout_ms without queries, replaced after max_queries (or a
 * GOAWAY from the server) while the old one drains, resumed with the
 * previous session's data, and a connection that fails before it was
 * usable (lookup, refused, handshake, certificate, a timeout) starts a
 * backoff of 1 s doubling to 60 s during which queries fail at once.
 * The address of a server without #ADDR comes from hostaddr.c: a
 * connection to be made when none is known (or its TTL has passed, or
 * a connection to it failed) waits for a lookup through the resolver.
 * Failures are logged at most once per 10 s per server, with the reason.
 */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "conf.h"
#include "dohup.h"
#include "hostaddr.h"
#include "log.h"
#include "loop.h"
#include "tlsc.h"
#include "wire.h"

#define DOHUP_SLOTS 1024	  /* queries in flight per server */
#define DOHUP_OUT_CAP (64 * 1024) /* bytes from nghttp2 not yet sent */
#define DOHUP_IN_CAP 16384	  /* one TLS record */
#define DOHUP_MSG_MAX 65535	  /* a DNS message (RFC 8484 6) */
#define DOHUP_ORPHANS_MAX 64	  /* unanswered timed-out queries: it is gone */
#define DOHUP_WINDOW (1 << 20)	  /* HTTP/2 receive window per stream */

static const char dns_type[] = "application/dns-message";

struct hconn;

enum slot_state {
	SLOT_FREE,
	SLOT_BUSY,   /* the caller waits */
	SLOT_ENDED,  /* the stream closed; the query ends after the read */
	SLOT_ORPHAN, /* timed out: the stream was reset, not closed yet */
};

struct hslot {
	struct upstream_req *req; /* BUSY, ENDED: the caller's */
	struct hconn *conn;
	enum slot_state state;
	int32_t stream;
	uint64_t deadline;
	uint8_t *q; /* the query: [qoff, qlen) to send */
	size_t qlen, qoff, qcap;
	uint8_t *r; /* the response body */
	size_t rlen, rcap;
	bool rbig;		  /* more than a DNS message */
	int status;		  /* :status, 0 before it came */
	bool type_ok;		  /* content-type application/dns-message */
	uint32_t reset;		  /* RST_STREAM's error code, 0: none */
	char clen[8];		  /* content-length, text */
	TAILQ_ENTRY(hslot) link;  /* free, busy by deadline, or ended */
	TAILQ_ENTRY(hslot) clink; /* the connection's slots */
};

enum conn_state {
	CONN_RESOLVING, /* waiting for the server's address */
	CONN_CONNECTING,
	CONN_HANDSHAKE,
	CONN_READY,
};

struct hconn {
	struct loop_watch w; /* first: the loop hands us this */
	struct dohup *d;
	struct tlsc *tls;
	nghttp2_session *h2;
	enum conn_state state;
	uint32_t events;
	uint64_t handshake_by;
	uint64_t last_reply;
	unsigned sent, inflight, orphans;
	bool saved;   /* its session data is kept */
	bool goaway;  /* the server sent GOAWAY */
	uint8_t *out; /* [out_off, out_len) to send */
	size_t out_off, out_len, out_try;
	const uint8_t *spill; /* nghttp2's bytes that did not fit */
	size_t spill_len;
	TAILQ_HEAD(, hslot) slots;
	TAILQ_ENTRY(hconn) link; /* retired connections */
};

struct dohup {
	struct upstream up; /* first: the interface */
	struct loop *loop;
	struct conf_addr server; /* ss: the address in use, if any */
	char authority[sizeof(((struct conf_addr *)0)->host) + 8];
	struct tlsc_trust *trust;
	int timeout_ms, idle_ms;
	unsigned max_queries;
	struct hconn *cur;	     /* takes new queries; NULL: none */
	TAILQ_HEAD(, hconn) retired; /* draining */
	TAILQ_HEAD(, hslot) free, busy, ended;
	size_t pending;
	uint64_t last_used;
	struct tlsc_health health;
	struct tlsc_ticket resume;
	struct hostaddr *addr; /* owned; NULL: #ADDR */
	struct loop_timer timer;
	struct loop_task flush;
	struct hslot slot[DOHUP_SLOTS];
};

/* ---- logs, backoff, the timer ---- */

static void log_failure(struct dohup *d, const char *why)
{
	tlsc_log_failure(&d->health, loop_now(d->loop), d->server.text, why);
}

static void back_off(struct dohup *d)
{
	tlsc_back_off(&d->health, loop_now(d->loop));
}

/* The connection after c: the current one first, then the retired. */
static struct hconn *next_conn(struct dohup *d, struct hconn *c)
{
	if (!c)
		return d->cur ? d->cur : TAILQ_FIRST(&d->retired);
	return c == d->cur ? TAILQ_FIRST(&d->retired) : TAILQ_NEXT(c, link);
}

static void rearm(struct dohup *d)
{
	uint64_t when = UINT64_MAX;
	struct hconn *c;

	if (!TAILQ_EMPTY(&d->busy))
		when = TAILQ_FIRST(&d->busy)->deadline;
	if ((c = d->cur) && c->state == CONN_READY && c->inflight == 0 &&
	    d->last_used + (uint64_t)d->idle_ms < when)
		when = d->last_used + (uint64_t)d->idle_ms;
	for (c = next_conn(d, NULL); c; c = next_conn(d, c))
		if (c->state != CONN_READY && c->handshake_by < when)
			when = c->handshake_by;
	if (when == UINT64_MAX)
		loop_timer_del(d->loop, &d->timer);
	else
		loop_timer_set(d->loop, &d->timer, when);
}

/* ---- slots ---- */

static void slot_release(struct dohup *d, struct hslot *s)
{
	TAILQ_REMOVE(&s->conn->slots, s, clink);
	if (s->conn->h2 && s->stream > 0)
		(void)nghttp2_session_set_stream_user_data(s->conn->h2,
							   s->stream, NULL);
	s->state = SLOT_FREE;
	s->req = NULL;
	TAILQ_INSERT_TAIL(&d->free, s, link);
}

/* The one place a query ends: its caller hears exactly once.  With
 * orphan (a timeout on a stream still open), the stream is reset and
 * the slot kept until it closes; else the slot is free once the caller
 * has the reply (s->r stays untouched until then). */
static void finish(struct dohup *d, struct hslot *s, enum upstream_status st,
		   bool orphan)
{
	struct upstream_req *req = s->req;
	struct hconn *c = s->conn;

	if (s->state == SLOT_BUSY || s->state == SLOT_ENDED)
		TAILQ_REMOVE(s->state == SLOT_BUSY ? &d->busy : &d->ended, s,
			     link);
	d->pending--;
	c->inflight--;
	s->req = NULL;
	if (orphan) {
		s->state = SLOT_ORPHAN;
		c->orphans++;
		(void)nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE,
						s->stream, NGHTTP2_CANCEL);
		loop_post(d->loop, &d->flush);
	} else {
		s->state = SLOT_FREE; /* off every list for the call */
	}
	if (req->cancelled)
		st = UPSTREAM_CANCELLED;
	req->done(req, st, st == UPSTREAM_OK ? s->r : NULL,
		  st == UPSTREAM_OK ? s->rlen : 0);
	if (!orphan)
		slot_release(d, s);
}

/* What the stream's end says (RFC 8484 4.2.1, 6): the reply, or why
 * not. */
static void end_slot(struct dohup *d, struct hslot *s)
{
	char why[128];

	why[0] = '\0';
	if (s->reset)
		snprintf(why, sizeof(why), "stream reset by the server (%s)",
			 nghttp2_http2_strerror(s->reset));
	else if (s->status != 200)
		snprintf(why, sizeof(why), "HTTP status %d", s->status);
	else if (!s->type_ok)
		snprintf(why, sizeof(why),
			 "the response is not application/dns-message");
	else if (s->rbig || s->rlen < WIRE_HEADER_LEN ||
		 !(wire_get16(s->r + 2) & WIRE_QR))
		snprintf(why, sizeof(why),
			 "malformed DNS message in the response");
	if (why[0]) {
		log_failure(d, why);
		finish(d, s, UPSTREAM_FAILED, false);
		return;
	}
	s->conn->last_reply = d->last_used = loop_now(d->loop);
	wire_set16(s->r, 0); /* the ID the request had */
	finish(d, s, UPSTREAM_OK, false);
}

/* The queries whose streams closed during the last read. */
static void end_streams(struct dohup *d)
{
	struct hslot *s;

	while ((s = TAILQ_FIRST(&d->ended)))
		end_slot(d, s);
}

/* ---- nghttp2's callbacks: record, never end a query ---- */

static struct hslot *stream_slot(nghttp2_session *h2, int32_t stream)
{
	return nghttp2_session_get_stream_user_data(h2, stream);
}

static ssize_t body_read(nghttp2_session *h2, int32_t stream, uint8_t *buf,
			 size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *user)
{
	struct hslot *s = src->ptr;
	size_t n = s->qlen - s->qoff;

	(void)h2;
	(void)stream;
	(void)user;
	if (n > length)
		n = length;
	memcpy(buf, s->q + s->qoff, n);
	s->qoff += n;
	if (s->qoff == s->qlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame,
		     const uint8_t *name, size_t namelen, const uint8_t *value,
		     size_t valuelen, uint8_t flags, void *user)
{
	struct hslot *s;

	(void)flags;
	(void)user;
	if (frame->hd.type != NGHTTP2_HEADERS ||
	    !(s = stream_slot(h2, frame->hd.stream_id)) ||
	    s->state != SLOT_BUSY)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		int st = valuelen == 3 ? 0 : -1;
		for (size_t i = 0; st >= 0 && i < 3; i++)
			st = value[i] >= '0' && value[i] <= '9'
				 ? st * 10 + (value[i] - '0')
				 : -1;
		s->status = st;
	} else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
		/* The media type, parameters aside (RFC 9110 8.3.1). */
		size_t n = strlen(dns_type);
		s->type_ok =
		    valuelen >= n &&
		    strncasecmp((const char *)value, dns_type, n) == 0 &&
		    (valuelen == n || value[n] == ';' || value[n] == ' ');
	}
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t stream,
		   const uint8_t *data, size_t len, void *user)
{
	struct hslot *s = stream_slot(h2, stream);

	(void)flags;
	(void)user;
	if (!s || s->state != SLOT_BUSY || s->rbig)
		return 0;
	if (s->rlen + len > DOHUP_MSG_MAX) {
		s->rbig = true;
		return 0;
	}
	if (s->rlen + len > s->rcap) {
		size_t cap = s->rcap ? s->rcap : 512;
		while (cap < s->rlen + len)
			cap *= 2;
		uint8_t *r = realloc(s->r, cap);
		if (!r) {
			s->rbig = true;
			return 0;
		}
		s->r = r;
		s->rcap = cap;
	}
	memcpy(s->r + s->rlen, data, len);
	s->rlen += len;
	return 0;
}

static int on_frame(nghttp2_session *h2, const nghttp2_frame *frame, void *user)
{
	struct hconn *c = user;

	(void)h2;
	if (frame->hd.type == NGHTTP2_GOAWAY)
		c->goaway = true; /* no new streams on it */
	return 0;
}

static int on_close(nghttp2_session *h2, int32_t stream, uint32_t error,
		    void *user)
{
	struct hconn *c = user;
	struct hslot *s = stream_slot(h2, stream);

	if (!s)
		return 0;
	(void)nghttp2_session_set_stream_user_data(h2, stream, NULL);
	s->stream = 0;
	if (s->state == SLOT_ORPHAN) {
		c->orphans--;
		slot_release(c->d, s);
		return 0;
	}
	if (s->state != SLOT_BUSY)
		return 0;
	s->reset = error;
	TAILQ_REMOVE(&c->d->busy, s, link);
	s->state = SLOT_ENDED;
	TAILQ_INSERT_TAIL(&c->d->ended, s, link);
	return 0;
}

/* ---- connections ---- */

static void want(struct hconn *c, uint32_t events)
{
	if (c->w.fd >= 0 && c->events != events &&
	    loop_mod(c->d->loop, &c->w, events) == 0)
		c->events = events;
}

static bool fill(struct hconn *c, char *why, size_t len);

/* GOAWAY with NO_ERROR (RFC 9113 6.8) before closing a connection that
 * has nothing left on it: best effort, one write, no wait. */
static void say_goaway(struct hconn *c)
{
	char why[160];

	if (c->out_try ||
	    nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR) != 0)
		return;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (fill(c, why, sizeof(why)))
		(void)tlsc_write(c->tls, c->out, &c->out_off, c->out_len,
				 &c->out_try, why, sizeof(why));
}

/* Close c; a failure (before c was usable) starts the backoff and, for
 * a looked-up address, a new lookup next time.  Its queries fail (the
 * caller tries the next server) or, those whose streams ended, end. */
static void conn_close(struct hconn *c, bool failure, const char *why)
{
	struct dohup *d = c->d;
	struct hslot *s;

	if (d->cur == c)
		d->cur = NULL;
	else
		TAILQ_REMOVE(&d->retired, c, link);
	if (failure) {
		back_off(d);
		if (d->addr && c->state != CONN_RESOLVING)
			hostaddr_forget(d->addr);
	}
	if (why && (failure || c->inflight))
		log_failure(d, why);
	else if (why)
		log_debug("upstream %s: %s", d->server.text, why);
	if (c->w.fd >= 0) {
		loop_del(d->loop, &c->w);
		if (!failure && c->state == CONN_READY &&
		    TAILQ_EMPTY(&c->slots))
			say_goaway(c);
		tlsc_free(c->tls, !failure && c->state == CONN_READY);
		c->tls = NULL;
		close(c->w.fd);
	}
	c->w.cb = NULL;
	while ((s = TAILQ_FIRST(&c->slots))) {
		if (s->state == SLOT_BUSY)
			finish(d, s, UPSTREAM_FAILED, false);
		else if (s->state == SLOT_ENDED)
			end_slot(d, s);
		else
			slot_release(d, s);
	}
	nghttp2_session_del(c->h2);
	c->h2 = NULL;
	free(c->out);
	loop_defer_free(d->loop, c, free);
	rearm(d);
}

/* Take what nghttp2 has to send into c->out, as far as it fits; false
 * on an HTTP/2 error (why). */
static bool fill(struct hconn *c, char *why, size_t len)
{
	while (c->out_len < DOHUP_OUT_CAP) {
		if (!c->spill_len) {
			ssize_t n = nghttp2_session_mem_send(c->h2, &c->spill);
			if (n < 0) {
				snprintf(why, len, "HTTP/2: %s",
					 nghttp2_strerror((int)n));
				return false;
			}
			if (n == 0)
				break;
			c->spill_len = (size_t)n;
		}
		size_t k = DOHUP_OUT_CAP - c->out_len;
		if (k > c->spill_len)
			k = c->spill_len;
		memcpy(c->out + c->out_len, c->spill, k);
		c->out_len += k;
		c->spill += k;
		c->spill_len -= k;
	}
	return true;
}

/* Send what nghttp2 has, as far as the socket takes it; false when c
 * was closed. */
static bool conn_write(struct hconn *c)
{
	char why[160], line[200];

	for (;;) {
		if (c->out_off == c->out_len) {
			c->out_off = c->out_len = 0;
			if (!fill(c, why, sizeof(why))) {
				conn_close(c, false, why);
				return false;
			}
			if (c->out_len == 0)
				break;
		}
		int rc = tlsc_write(c->tls, c->out, &c->out_off, c->out_len,
				    &c->out_try, why, sizeof(why));
		if (rc == 0) {
			want(c, EPOLLIN | EPOLLOUT);
			return true;
		}
		if (rc < 0) {
			snprintf(line, sizeof(line),
				 "%s; queries in flight: %u", why, c->inflight);
			conn_close(c, false, line);
			return false;
		}
	}
	want(c, EPOLLIN);
	return true;
}

/* Read what is there into nghttp2, then end the queries whose streams
 * closed; false when c was closed. */
static bool conn_read(struct hconn *c)
{
	struct dohup *d = c->d;
	uint8_t buf[DOHUP_IN_CAP];
	char why[160], line[200];

	for (;;) {
		ssize_t k =
		    tlsc_recv(c->tls, buf, sizeof(buf), why, sizeof(why));
		if (k == 0)
			break;
		if (k < 0) {
			end_streams(d);
			snprintf(line, sizeof(line),
				 "%s; queries in flight: %u", why, c->inflight);
			conn_close(c, false, line);
			return false;
		}
		if (!c->saved)
			c->saved = tlsc_save(c->tls, &d->resume);
		ssize_t n = nghttp2_session_mem_recv(c->h2, buf, (size_t)k);
		if (n < 0) {
			end_streams(d);
			snprintf(line, sizeof(line),
				 "HTTP/2: %s; queries in flight: %u",
				 nghttp2_strerror((int)n), c->inflight);
			conn_close(c, false, line);
			return false;
		}
	}
	end_streams(d);
	return true;
}

static void conn_ready(struct hconn *c)
{
	struct dohup *d = c->d;
	char desc[256];

	c->state = CONN_READY;
	tlsc_healthy(&d->health);
	d->last_used = loop_now(d->loop);
	tlsc_describe(c->tls, desc, sizeof(desc));
	log_debug("upstream %s: HTTPS connection up, %s handshake (%s)%s",
		  d->server.text, tlsc_resumed(c->tls) ? "resumed" : "full",
		  desc, tlsc_alpn_is(c->tls, "h2") ? "" : ", no ALPN h2");
	(void)conn_write(c);
}

static void on_conn(struct loop_watch *w, uint32_t events)
{
	struct hconn *c = (struct hconn *)w;
	struct dohup *d = c->d;
	char why[512];

	if (c->state == CONN_CONNECTING) {
		if (!tlsc_connected(w->fd, events, why, sizeof(why))) {
			conn_close(c, true, why);
			return;
		}
		c->state = CONN_HANDSHAKE;
	}
	if (c->state == CONN_HANDSHAKE) {
		int rc = tlsc_handshake(c->tls, why, sizeof(why));
		if (rc > 0)
			conn_ready(c);
		else if (rc == 0)
			want(c, tlsc_want_write(c->tls) ? EPOLLOUT : EPOLLIN);
		else
			conn_close(c, true, why);
		return;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !conn_read(c))
		return;
	if (!conn_write(c))
		return;
	if (!nghttp2_session_want_read(c->h2) &&
	    !nghttp2_session_want_write(c->h2)) {
		conn_close(c, false,
			   c->goaway ? "the server ended the HTTP/2 "
				       "session (GOAWAY)"
				     : "HTTP/2 session over");
		return;
	}
	if (c != d->cur && c->inflight == 0)
		conn_close(c, false, NULL); /* retired, all answered */
	else
		rearm(d);
}

/* A socket and a TLS session to the address now known. */
static bool conn_connect(struct hconn *c, char *why, size_t len)
{
	struct dohup *d = c->d;
	const struct conf_addr *a = &d->server;

	if ((c->w.fd = tlsc_connect(&a->ss, a->len, why, len)) < 0)
		return false;
	/* RFC 8484 5.2: HTTP/2, chosen in ALPN (RFC 7301). */
	if (!(c->tls = tlsc_new(d->trust, c->w.fd, a->tls_name, &a->ss, "h2",
				&d->resume, why, len))) {
		close(c->w.fd);
		c->w.fd = -1;
		return false;
	}
	c->w.cb = on_conn;
	c->events = EPOLLOUT;
	c->state = CONN_CONNECTING;
	c->handshake_by = loop_now(d->loop) + (uint64_t)d->timeout_ms;
	if (loop_add(d->loop, &c->w, EPOLLOUT) < 0) {
		snprintf(why, len, "epoll: %s", strerror(errno));
		tlsc_free(c->tls, false);
		c->tls = NULL;
		close(c->w.fd);
		c->w.fd = -1;
		return false;
	}
	return true;
}

/* A connection with its HTTP/2 session; it connects now, or once the
 * address is known. */
static struct hconn *conn_open(struct dohup *d, char *why, size_t len)
{
	struct hconn *c = calloc(1, sizeof(*c));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, DOHUP_WINDOW},
	};

	if (!c || !(c->out = malloc(DOHUP_OUT_CAP)) ||
	    nghttp2_session_callbacks_new(&cb) != 0) {
		snprintf(why, len, "out of memory");
		goto fail;
	}
	c->w.fd = -1;
	c->d = d;
	TAILQ_INIT(&c->slots);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	int rc = nghttp2_session_client_new(&c->h2, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (rc == 0)
		rc = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv,
					     sizeof(iv) / sizeof(iv[0]));
	if (rc == 0)
		rc = nghttp2_session_set_local_window_size(
		    c->h2, NGHTTP2_FLAG_NONE, 0, 16 * DOHUP_WINDOW);
	if (rc != 0) {
		snprintf(why, len, "HTTP/2: %s", nghttp2_strerror(rc));
		goto fail;
	}
	c->handshake_by = loop_now(d->loop) + (uint64_t)d->timeout_ms;
	if (!d->addr || hostaddr_get(d->addr, d->server.port, &d->server.ss,
				     &d->server.len)) {
		if (!conn_connect(c, why, len))
			goto fail;
		return c;
	}
	c->state = CONN_RESOLVING;
	hostaddr_ask(d->addr);
	return c;
fail:
	if (c) {
		nghttp2_session_del(c->h2);
		free(c->out);
		free(c);
	}
	return NULL;
}

/* ---- the server's name looked up ---- */

/* A round of lookups is over (from the loop): connect, or fail the
 * connections that waited. */
static void on_resolved(void *ctx, const char *failed)
{
	struct dohup *d = ctx;
	char why[512];
	struct hconn *c, *next;
	bool found = !failed && hostaddr_get(d->addr, d->server.port,
					     &d->server.ss, &d->server.len);

	if (found)
		log_debug("upstream %s: %s looked up", d->server.text,
			  d->server.host);
	else
		snprintf(why, sizeof(why),
			 "looking %s up through the plain servers: %s",
			 d->server.host, failed ? failed : "expired");
	for (c = next_conn(d, NULL); c; c = next) {
		next = next_conn(d, c);
		if (c->state != CONN_RESOLVING)
			continue;
		if (!found || !conn_connect(c, why, sizeof(why)))
			conn_close(c, true, why);
	}
	rearm(d);
}

/* ---- the timer and the flush ---- */

static void on_timer(struct loop_timer *t, uint64_t now)
{
	struct dohup *d =
	    (struct dohup *)((char *)t - offsetof(struct dohup, timer));
	struct hslot *s;
	struct hconn *c, *next;

	while ((s = TAILQ_FIRST(&d->busy)) && s->deadline <= now) {
		c = s->conn;
		/* The stream is reset; the slot waits for it to close. */
		finish(d, s, UPSTREAM_FAILED, s->stream > 0 && c->h2);
		if (c->orphans > DOHUP_ORPHANS_MAX)
			conn_close(
			    c, now - c->last_reply >= (uint64_t)d->timeout_ms,
			    "the server leaves queries unanswered");
		else if (c != d->cur && c->inflight == 0)
			conn_close(c, false, NULL);
	}
	for (c = next_conn(d, NULL); c; c = next) {
		next = next_conn(d, c);
		if (c->state != CONN_READY && c->handshake_by <= now)
			conn_close(c, true,
				   c->state == CONN_RESOLVING
				       ? "looking the name up timed out"
				   : c->state == CONN_CONNECTING
				       ? "connect: timed out"
				       : "TLS handshake timed out");
	}
	c = d->cur;
	if (c && c->state == CONN_READY && c->inflight == 0 &&
	    d->last_used + (uint64_t)d->idle_ms <= now)
		conn_close(c, false, "idle connection closed");
	rearm(d);
}

static void on_flush(struct loop_task *t)
{
	struct dohup *d =
	    (struct dohup *)((char *)t - offsetof(struct dohup, flush));
	struct hconn *c, *next;

	if (d->cur && d->cur->state == CONN_READY && !d->cur->out_try)
		(void)conn_write(d->cur);
	for (c = TAILQ_FIRST(&d->retired); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->inflight == 0)
			conn_close(c, false, NULL);
		else if (c->state == CONN_READY && !c->out_try)
			(void)conn_write(c);
	}
}

/* ---- the interface ---- */

static struct hconn *current(struct dohup *d)
{
	struct hconn *c = d->cur;
	char why[256];

	if (c && (c->sent >= d->max_queries || c->goaway)) {
		d->cur = NULL;
		TAILQ_INSERT_TAIL(&d->retired, c, link);
		loop_post(d->loop, &d->flush);
		c = NULL;
	}
	if (c)
		return c;
	if (loop_now(d->loop) < d->health.retry_at)
		return NULL;
	if (!(c = conn_open(d, why, sizeof(why)))) {
		back_off(d);
		log_failure(d, why);
		return NULL;
	}
	d->cur = c;
	return c;
}

/* Copy the query into the slot, with ID 0 (RFC 8484 4.1). */
static bool slot_take(struct hslot *s, const uint8_t *pkt, size_t len)
{
	if (len > s->qcap) {
		uint8_t *q = realloc(s->q, len < 512 ? 512 : len);
		if (!q)
			return false;
		s->q = q;
		s->qcap = len < 512 ? 512 : len;
	}
	memcpy(s->q, pkt, len);
	wire_set16(s->q, 0);
	s->qlen = len;
	s->qoff = 0;
	s->rlen = 0;
	s->rbig = false;
	s->status = 0;
	s->type_ok = false;
	s->reset = 0;
	snprintf(s->clen, sizeof(s->clen), "%zu", len);
	return true;
}

#define NV(n, v)                                                               \
	{                                                                      \
		(uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v),          \
		    sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
	}

static void dohup_send(struct upstream *u, struct upstream_req *req,
		       uint8_t *pkt, size_t len)
{
	struct dohup *d = (struct dohup *)u;
	struct hconn *c = current(d);
	struct hslot *s = TAILQ_FIRST(&d->free);

	wire_set16(pkt, 0);
	req->id = 0;
	if (!c || !s || !slot_take(s, pkt, len))
		goto failed;
	nghttp2_nv nva[] = {
	    NV(":method", "POST"),	    NV(":scheme", "https"),
	    NV(":authority", d->authority), NV(":path", d->server.path),
	    NV("accept", dns_type),	    NV("content-type", dns_type),
	    NV("content-length", s->clen),
	};
	nghttp2_data_provider body = {.source.ptr = s,
				      .read_callback = body_read};
	int32_t id = nghttp2_submit_request(
	    c->h2, NULL, nva, sizeof(nva) / sizeof(nva[0]), &body, s);
	if (id < 0)
		goto failed;
	TAILQ_REMOVE(&d->free, s, link);
	s->stream = id;
	s->state = SLOT_BUSY;
	s->req = req;
	s->conn = c;
	s->deadline = loop_now(d->loop) + (uint64_t)d->timeout_ms;
	TAILQ_INSERT_TAIL(&d->busy, s, link);
	TAILQ_INSERT_TAIL(&c->slots, s, clink);
	req->chan = s;
	c->sent++;
	c->inflight++;
	d->pending++;
	d->last_used = loop_now(d->loop);
	if (c->state == CONN_READY)
		loop_post(d->loop, &d->flush);
	rearm(d);
	return;
failed:
	upstream_fail_later(d->loop, req);
}

static void dohup_cancel(struct upstream *u, struct upstream_req *req)
{
	(void)u;
	req->cancelled = true; /* it ends with its stream, or its timeout */
}

static size_t dohup_pending(const struct upstream *u)
{
	return ((const struct dohup *)u)->pending;
}

static void dohup_free(struct upstream *u)
{
	struct dohup *d = (struct dohup *)u;
	struct hslot *s;

	hostaddr_free(d->addr); /* a round under way ends unheard */
	d->addr = NULL;
	while ((s = TAILQ_FIRST(&d->busy))) {
		s->req->cancelled = true;
		finish(d, s, UPSTREAM_CANCELLED, false);
	}
	while ((s = TAILQ_FIRST(&d->ended))) {
		s->req->cancelled = true;
		finish(d, s, UPSTREAM_CANCELLED, false);
	}
	if (d->cur)
		conn_close(d->cur, false, NULL);
	while (!TAILQ_EMPTY(&d->retired))
		conn_close(TAILQ_FIRST(&d->retired), false, NULL);
	loop_timer_del(d->loop, &d->timer);
	loop_unpost(d->loop, &d->flush);
	for (size_t i = 0; i < DOHUP_SLOTS; i++) {
		free(d->slot[i].q);
		free(d->slot[i].r);
	}
	tlsc_ticket_clear(&d->resume);
	tlsc_trust_unref(d->trust);
	free(d);
}

static const struct upstream_ops dohup_ops = {
    .kind = "https",
    .send = dohup_send,
    .cancel = dohup_cancel,
    .pending = dohup_pending,
    .free = dohup_free,
};

struct upstream *dohup_new(struct loop *loop, const struct conf_addr *server,
			   const struct dohup_conf *conf, char *err,
			   size_t errlen)
{
	struct dohup *d = calloc(1, sizeof(*d));

	if (!d || (server->lookup && !conf->resolver)) {
		snprintf(err, errlen, "%s: %s", server->text,
			 d ? "nowhere to look its name up" : "out of memory");
		upstream_free(conf->resolver);
		free(d);
		return NULL;
	}
	d->up.ops = &dohup_ops;
	d->loop = loop;
	d->server = *server;
	if (!server->lookup)
		upstream_free(conf->resolver); /* not needed */
	else if (!(d->addr = hostaddr_new(loop, server->host, conf->resolver,
					  on_resolved, d, err, errlen))) {
		free(d);
		return NULL;
	}
	if (server->port == 443)
		snprintf(d->authority, sizeof(d->authority), "%s",
			 server->host);
	else
		snprintf(d->authority, sizeof(d->authority), "%s:%u",
			 server->host, server->port);
	d->trust = tlsc_trust_ref(conf->trust);
	d->timeout_ms = conf->timeout_ms;
	d->idle_ms = conf->idle_timeout_ms;
	d->max_queries = conf->max_queries ? conf->max_queries : 1;
	d->timer.cb = on_timer;
	d->flush.cb = on_flush;
	TAILQ_INIT(&d->retired);
	TAILQ_INIT(&d->free);
	TAILQ_INIT(&d->busy);
	TAILQ_INIT(&d->ended);
	for (size_t i = 0; i < DOHUP_SLOTS; i++)
		TAILQ_INSERT_TAIL(&d->free, &d->slot[i], link);
	return &d->up;
}
