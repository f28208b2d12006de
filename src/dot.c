/*
 * dot.c - DNS over TLS to one server: a GnuTLS client session over a
 * non-blocking socket watched by the loop.
 *
 * The server has one current connection; queries are framed with two
 * length octets (RFC 7858 3.3, RFC 1035 4.2.2), queued in the
 * connection's output buffer until the handshake is done and written
 * after each batch, so that one TLS record carries all the queries of a
 * batch.  Each query has a slot in a fixed table and an ID of ours,
 * unique among those the server may still answer; a reply is matched by
 * ID alone (any order, RFC 7766 7).  A slot that times out keeps its ID
 * until the server answers or the connection goes, so a late reply can
 * never be taken for a newer query's.
 *
 * Connections are opened on demand and kept until idle_timeout_ms without
 * queries, or max_queries, after which a fresh one takes new queries and
 * the old one closes when its last query in time is answered.  Session data from each
 * connection resumes the next handshake (RFC 7858 3.4).  A connection
 * that fails before it was usable (refused, handshake, certificate, a
 * timeout) starts a backoff of 1 s doubling to 60 s during which queries
 * fail at once: the caller asks its next server instead of waiting.  A
 * usable connection that the server closes only fails what was in
 * flight.  Failures are logged at most once per 10 s per server, with
 * the reason.  Buffers and slots are allocated when the server or a
 * connection is made, never per query.
 */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "dot.h"
#include "log.h"
#include "loop.h"
#include "tlsc.h"
#include "wire.h"

#define DOT_SLOTS 1024                   /* queries in flight per server */
#define DOT_OUT_CAP (128 * 1024)         /* framed queries not yet sent */
#define DOT_IN_CAP (2 + 65535 + 16384)   /* one whole frame and more */
#define DOT_LATE_MAX 64 /* unanswered timed-out queries: the server is gone */

struct dconn;

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_LATE };

struct dslot {
	struct upstream_req *req;   /* SLOT_BUSY: the caller's */
	struct dconn *conn;
	enum slot_state state;
	uint16_t id;
	uint64_t deadline;
	TAILQ_ENTRY(dslot) link;    /* free list, or busy list by deadline */
	TAILQ_ENTRY(dslot) clink;   /* the connection's slots */
};

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKE, CONN_READY };

struct dconn {
	struct loop_watch w;        /* first: the loop hands us this */
	struct dot *d;
	struct tlsc *tls;
	enum conn_state state;
	uint32_t events;
	uint64_t handshake_by;
	uint64_t last_reply;        /* when the server last answered */
	unsigned sent;              /* queries put on this connection */
	unsigned inflight, late;
	bool saved;                 /* its session data is kept */
	uint8_t *out;               /* framed queries: [out_off, out_len) */
	size_t out_off, out_len, out_try; /* out_try: a send to repeat */
	uint8_t *in;
	size_t in_len;
	TAILQ_HEAD(, dslot) slots;
	TAILQ_ENTRY(dconn) link;    /* retired connections */
};

struct dot {
	struct upstream up;         /* first: the interface */
	struct loop *loop;
	struct conf_addr server;
	struct tlsc_trust *trust;
	int timeout_ms, idle_ms;
	unsigned max_queries;
	struct dconn *cur;          /* takes new queries; NULL: none */
	TAILQ_HEAD(, dconn) retired; /* past max_queries, draining */
	TAILQ_HEAD(, dslot) free, busy;
	size_t pending;
	uint64_t last_used;         /* the current connection's last query */
	struct tlsc_health health;  /* backoff, log lines */
	struct tlsc_ticket resume;  /* session data for the next handshake */
	struct loop_timer timer;
	struct loop_task flush;
	uint16_t random[256];
	size_t nrandom;
	uint16_t owner[65536];      /* ID -> slot index + 1; 0: unused */
	struct dslot slot[DOT_SLOTS];
};

/* ---- IDs, logs, the timer ---- */

static uint16_t fresh_id(struct dot *d)
{
	uint16_t id;

	do {
		if (d->nrandom == 0) {
			if (getrandom(d->random, sizeof(d->random), 0) !=
			    (ssize_t)sizeof(d->random))
				for (size_t i = 0; i < 256; i++)
					d->random[i] = (uint16_t)random();
			d->nrandom = 256;
		}
		id = d->random[--d->nrandom];
	} while (d->owner[id]);
	return id;
}

static void log_failure(struct dot *d, const char *why)
{
	tlsc_log_failure(&d->health, loop_now(d->loop), d->server.text, why);
}

/* After a connection that could not be used: leave the server alone
 * for a while, longer each time. */
static void back_off(struct dot *d)
{
	tlsc_back_off(&d->health, loop_now(d->loop));
}

static void rearm(struct dot *d)
{
	uint64_t when = UINT64_MAX;
	struct dconn *c;

	if (!TAILQ_EMPTY(&d->busy))
		when = TAILQ_FIRST(&d->busy)->deadline;
	if ((c = d->cur) && c->state == CONN_READY && c->inflight == 0 &&
	    d->last_used + (uint64_t)d->idle_ms < when)
		when = d->last_used + (uint64_t)d->idle_ms;
	for (c = d->cur ? d->cur : TAILQ_FIRST(&d->retired); c;
	     c = c == d->cur ? TAILQ_FIRST(&d->retired) : TAILQ_NEXT(c, link))
		if (c->state != CONN_READY && c->handshake_by < when)
			when = c->handshake_by;
	if (when == UINT64_MAX)
		loop_timer_del(d->loop, &d->timer);
	else
		loop_timer_set(d->loop, &d->timer, when);
}

/* ---- slots ---- */

/* The one place a query ends: its caller hears exactly once.  A slot
 * that timed out stays on its connection, holding its ID. */
static void finish(struct dot *d, struct dslot *s, enum upstream_status st,
		   const uint8_t *reply, size_t len)
{
	struct upstream_req *req = s->req;

	TAILQ_REMOVE(&d->busy, s, link);
	s->req = NULL;
	d->pending--;
	s->conn->inflight--;
	/* Timed out: the query is written, or will be, with this ID. */
	if (st == UPSTREAM_FAILED && s->conn->tls) {
		s->state = SLOT_LATE;
		s->conn->late++;
	} else {
		TAILQ_REMOVE(&s->conn->slots, s, clink);
		d->owner[s->id] = 0;
		s->state = SLOT_FREE;
		TAILQ_INSERT_TAIL(&d->free, s, link);
	}
	if (req->cancelled)
		st = UPSTREAM_CANCELLED;
	req->done(req, st, st == UPSTREAM_OK ? reply : NULL,
		  st == UPSTREAM_OK ? len : 0);
}

/* ---- connections ---- */

static void on_conn(struct loop_watch *w, uint32_t events);

static void want(struct dconn *c, uint32_t events)
{
	if (c->events != events && loop_mod(c->d->loop, &c->w, events) == 0)
		c->events = events;
}

/* Close c; a failure (before c was usable) starts the backoff.  Its
 * queries fail (the caller tries the next server), late slots are let
 * go.  The callers' callbacks may send again: c is off the server by
 * then, so a new query opens a new connection or meets the backoff. */
static void conn_close(struct dconn *c, bool failure, const char *why)
{
	struct dot *d = c->d;

	if (d->cur == c)
		d->cur = NULL;
	else
		TAILQ_REMOVE(&d->retired, c, link);
	if (failure)
		back_off(d);
	if (why && (failure || c->inflight))
		log_failure(d, why);
	else if (why)
		log_debug("upstream %s: %s", d->server.text, why);
	loop_del(d->loop, &c->w);
	if (c->tls) {
		tlsc_free(c->tls, !failure && c->state == CONN_READY);
		c->tls = NULL;
	}
	close(c->w.fd);
	c->w.cb = NULL;
	struct dslot *s;
	while ((s = TAILQ_FIRST(&c->slots))) {
		if (s->state == SLOT_BUSY) {
			finish(d, s, UPSTREAM_FAILED, NULL, 0);
			continue;
		}
		TAILQ_REMOVE(&c->slots, s, clink);
		d->owner[s->id] = 0;
		s->state = SLOT_FREE;
		TAILQ_INSERT_TAIL(&d->free, s, link);
	}
	free(c->out);
	free(c->in);
	/* An event of this batch may still name the watch. */
	loop_defer_free(d->loop, c, free);
	rearm(d);
}

/* Keep this connection's session data for the next handshake (in TLS
 * 1.3, once the server's ticket has come: after the handshake, before
 * or with the first reply). */
static void save_session(struct dconn *c)
{
	if (!c->saved)
		c->saved = tlsc_save(c->tls, &c->d->resume);
}

/* Write what is queued, as far as the socket takes it; false when c was
 * closed. */
static bool conn_write(struct dconn *c)
{
	char why[160], line[200];
	int rc = tlsc_write(c->tls, c->out, &c->out_off, c->out_len,
			    &c->out_try, why, sizeof(why));

	if (rc == 0) {
		/* The same bytes again, when the socket takes them. */
		want(c, EPOLLIN | EPOLLOUT);
		return true;
	}
	if (rc < 0) {
		snprintf(line, sizeof(line), "%s; queries in flight: %u", why,
			 c->inflight);
		conn_close(c, false, line);
		return false;
	}
	c->out_off = c->out_len = 0;
	want(c, EPOLLIN);
	return true;
}

/* A whole message from the server (RFC 7766 7: any order). */
static bool deliver(struct dconn *c, const uint8_t *msg, size_t len)
{
	struct dot *d = c->d;

	if (len < WIRE_HEADER_LEN || !(wire_get16(msg + 2) & WIRE_QR))
		return false;
	unsigned idx = d->owner[wire_get16(msg)];
	if (!idx)
		return true; /* not ours to take: drop it */
	struct dslot *s = &d->slot[idx - 1];
	if (s->conn != c)
		return true;
	if (s->state == SLOT_LATE) {
		c->last_reply = loop_now(d->loop);
		TAILQ_REMOVE(&c->slots, s, clink);
		c->late--;
		d->owner[s->id] = 0;
		s->state = SLOT_FREE;
		TAILQ_INSERT_TAIL(&d->free, s, link);
		return true;
	}
	d->last_used = c->last_reply = loop_now(d->loop);
	finish(d, s, UPSTREAM_OK, msg, len);
	return true;
}

/* Read every whole frame that is there; false when c was closed. */
static bool conn_read(struct dconn *c)
{
	for (;;) {
		char why[160], line[200];
		ssize_t k = tlsc_recv(c->tls, c->in + c->in_len,
				      DOT_IN_CAP - c->in_len, why, sizeof(why));
		if (k == 0)
			break;
		if (k < 0) {
			snprintf(line, sizeof(line),
				 "%s; queries in flight: %u", why,
				 c->inflight);
			conn_close(c, false, line);
			return false;
		}
		c->in_len += (size_t)k;
		size_t off = 0;
		while (c->in_len - off >= 2) {
			size_t n = wire_get16(c->in + off);
			if (c->in_len - off - 2 < n)
				break;
			save_session(c);
			if (!deliver(c, c->in + off + 2, n)) {
				conn_close(c, false,
					   "malformed message from the server");
				return false;
			}
			off += 2 + n;
		}
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return true;
}

static void conn_ready(struct dconn *c)
{
	struct dot *d = c->d;
	char desc[256];

	c->state = CONN_READY;
	tlsc_healthy(&d->health);
	d->last_used = loop_now(d->loop);
	tlsc_describe(c->tls, desc, sizeof(desc));
	log_debug("upstream %s: TLS connection up, %s handshake (%s)",
		  d->server.text, tlsc_resumed(c->tls) ? "resumed" : "full",
		  desc);
	(void)conn_write(c); /* c may be gone: nothing follows */
}

static void conn_handshake(struct dconn *c)
{
	char why[512];
	int rc = tlsc_handshake(c->tls, why, sizeof(why));

	if (rc > 0)
		conn_ready(c);
	else if (rc == 0)
		want(c, tlsc_want_write(c->tls) ? EPOLLOUT : EPOLLIN);
	else
		conn_close(c, true, why);
}

static void on_conn(struct loop_watch *w, uint32_t events)
{
	struct dconn *c = (struct dconn *)w;

	if (c->state == CONN_CONNECTING) {
		char why[160];
		if (!tlsc_connected(w->fd, events, why, sizeof(why))) {
			conn_close(c, true, why);
			return;
		}
		c->state = CONN_HANDSHAKE;
	}
	if (c->state == CONN_HANDSHAKE) {
		conn_handshake(c);
		return;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !conn_read(c))
		return;
	if (c->out_len > c->out_off && !conn_write(c))
		return;
	struct dot *d = c->d;
	if (c != d->cur && c->inflight == 0)
		conn_close(c, false, NULL); /* retired, all answered */
	else
		rearm(d);
}

static struct dconn *conn_open(struct dot *d, char *why, size_t len)
{
	const struct conf_addr *a = &d->server;
	struct dconn *c = calloc(1, sizeof(*c));

	if (c)
		c->w.fd = -1;
	if (!c || !(c->out = malloc(DOT_OUT_CAP)) ||
	    !(c->in = malloc(DOT_IN_CAP))) {
		snprintf(why, len, "out of memory");
		goto fail;
	}
	TAILQ_INIT(&c->slots);
	c->d = d;
	if ((c->w.fd = tlsc_connect(&a->ss, a->len, why, len)) < 0)
		goto fail;
	/* RFC 8310 8.1: SNI and the certificate both name the server;
	 * without a name the certificate must carry its address. */
	if (!(c->tls = tlsc_new(d->trust, c->w.fd, a->tls_name, &a->ss, NULL,
				&d->resume, why, len)))
		goto fail;
	c->w.cb = on_conn;
	c->events = EPOLLOUT;
	c->state = CONN_CONNECTING;
	c->handshake_by = loop_now(d->loop) + (uint64_t)d->timeout_ms;
	if (loop_add(d->loop, &c->w, EPOLLOUT) < 0) {
		snprintf(why, len, "epoll: %s", strerror(errno));
		goto fail;
	}
	return c;
fail:
	if (c) {
		tlsc_free(c->tls, false);
		if (c->w.fd >= 0)
			close(c->w.fd);
		free(c->out);
		free(c->in);
		free(c);
	}
	return NULL;
}

/* ---- the timer and the flush ---- */

static void on_timer(struct loop_timer *t, uint64_t now)
{
	struct dot *d = (struct dot *)((char *)t - offsetof(struct dot, timer));
	struct dslot *s;

	while ((s = TAILQ_FIRST(&d->busy)) && s->deadline <= now) {
		struct dconn *c = s->conn;
		finish(d, s, UPSTREAM_FAILED, NULL, 0);
		/* Many unanswered: a server that answers nothing at all is
		 * left alone for a while; one that is only slow for some
		 * names gets a fresh connection. */
		if (c->late > DOT_LATE_MAX)
			conn_close(c,
				   now - c->last_reply >= (uint64_t)d->timeout_ms,
				   "the server leaves queries unanswered");
		else if (c != d->cur && c->inflight == 0)
			conn_close(c, false, NULL);
	}
	struct dconn *c, *next;
	for (c = TAILQ_FIRST(&d->retired); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state != CONN_READY && c->handshake_by <= now)
			conn_close(c, true, "TLS handshake timed out");
	}
	c = d->cur;
	if (c && c->state != CONN_READY && c->handshake_by <= now)
		conn_close(c, true, c->state == CONN_CONNECTING
					    ? "connect: timed out"
					    : "TLS handshake timed out");
	else if (c && c->state == CONN_READY && c->inflight == 0 &&
		 d->last_used + (uint64_t)d->idle_ms <= now)
		conn_close(c, false, "idle connection closed");
	rearm(d);
}

/* After the batch: write what the batch queued, in as few records as
 * fit. */
static void on_flush(struct loop_task *t)
{
	struct dot *d = (struct dot *)((char *)t - offsetof(struct dot, flush));
	struct dconn *c, *next;

	if (d->cur && d->cur->state == CONN_READY && !d->cur->out_try)
		(void)conn_write(d->cur);
	for (c = TAILQ_FIRST(&d->retired); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->inflight == 0)
			conn_close(c, false, NULL);
	}
}

/* ---- the interface ---- */

/* The current connection, a fresh one past the cap or none. */
static struct dconn *current(struct dot *d)
{
	struct dconn *c = d->cur;
	char why[160];

	if (c && c->sent >= d->max_queries) {
		/* It drains; the flush closes it once nothing is left (not
		 * here: this may run inside its own read). */
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

static void dot_send(struct upstream *u, struct upstream_req *req,
		     uint8_t *pkt, size_t len)
{
	struct dot *d = (struct dot *)u;
	struct dconn *c = current(d);
	struct dslot *s = TAILQ_FIRST(&d->free);

	if (c && c->out_off && !c->out_try) {
		/* Room at the front; a send to repeat keeps its bytes. */
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (!c || !s || c->out_len + 2 + len > DOT_OUT_CAP) {
		upstream_fail_later(d->loop, req);
		return;
	}
	TAILQ_REMOVE(&d->free, s, link);
	s->id = fresh_id(d);
	d->owner[s->id] = (uint16_t)(s - d->slot + 1);
	s->state = SLOT_BUSY;
	s->req = req;
	s->conn = c;
	s->deadline = loop_now(d->loop) + (uint64_t)d->timeout_ms;
	TAILQ_INSERT_TAIL(&d->busy, s, link);
	TAILQ_INSERT_TAIL(&c->slots, s, clink);
	req->chan = s;
	req->id = s->id;
	wire_set16(pkt, s->id);
	wire_set16(c->out + c->out_len, (uint16_t)len);
	memcpy(c->out + c->out_len + 2, pkt, len);
	c->out_len += 2 + len;
	c->sent++;
	c->inflight++;
	d->pending++;
	d->last_used = loop_now(d->loop);
	if (c->state == CONN_READY)
		loop_post(d->loop, &d->flush);
	rearm(d);
}

static void dot_cancel(struct upstream *u, struct upstream_req *req)
{
	(void)u;
	req->cancelled = true; /* its slot goes when the reply comes */
}

static size_t dot_pending(const struct upstream *u)
{
	return ((const struct dot *)u)->pending;
}

static void dot_free(struct upstream *u)
{
	struct dot *d = (struct dot *)u;
	struct dslot *s;

	while ((s = TAILQ_FIRST(&d->busy))) {
		s->req->cancelled = true;
		finish(d, s, UPSTREAM_CANCELLED, NULL, 0);
	}
	if (d->cur)
		conn_close(d->cur, false, NULL);
	while (!TAILQ_EMPTY(&d->retired))
		conn_close(TAILQ_FIRST(&d->retired), false, NULL);
	loop_timer_del(d->loop, &d->timer);
	loop_unpost(d->loop, &d->flush);
	tlsc_ticket_clear(&d->resume);
	tlsc_trust_unref(d->trust);
	free(d);
}

static const struct upstream_ops dot_ops = {
	.kind = "tls",
	.send = dot_send,
	.cancel = dot_cancel,
	.pending = dot_pending,
	.free = dot_free,
};

struct upstream *dot_new(struct loop *loop, const struct conf_addr *server,
			 const struct dot_conf *conf, char *err,
			 size_t errlen)
{
	struct dot *d = calloc(1, sizeof(*d));

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->up.ops = &dot_ops;
	d->loop = loop;
	d->server = *server;
	d->trust = tlsc_trust_ref(conf->trust);
	d->timeout_ms = conf->timeout_ms;
	d->idle_ms = conf->idle_timeout_ms;
	d->max_queries = conf->max_queries ? conf->max_queries : 1;
	d->timer.cb = on_timer;
	d->flush.cb = on_flush;
	TAILQ_INIT(&d->retired);
	TAILQ_INIT(&d->free);
	TAILQ_INIT(&d->busy);
	for (size_t i = 0; i < DOT_SLOTS; i++)
		TAILQ_INSERT_TAIL(&d->free, &d->slot[i], link);
	return &d->up;
}
