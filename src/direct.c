/*
 * direct.c - the raw relay backend: our ID on the client's bytes, one
 * server at a time, UDP first and TCP for a truncated reply.
 *
 * Requests wait in one list in the order of their deadlines (each try
 * lasts timeout_ms, so a new or retried request always goes to the tail)
 * and one loop timer fires for the first.  A reply is taken when it comes
 * from the server the request was sent to and carries its ID; everything
 * else about it is the caller's to check.  Completions run from the
 * loop's watches and timer, never inside direct_send.
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
#include "direct.h"
#include "loop.h"
#include "wire.h"

struct direct;

/* One request on its way, with its TCP connection when it has one. */
struct dreq {
	struct loop_watch tw;       /* first: the TCP watch */
	struct upstream_req *req;
	struct direct *d;
	uint8_t *pkt;
	size_t len;
	uint16_t id;
	size_t server;
	unsigned attempt;
	uint64_t deadline;
	TAILQ_ENTRY(dreq) link;     /* the list of requests, by deadline */
	/* TCP: sending out_off of the framed query, then reading. */
	size_t out_off;
	uint8_t lenbuf[2];
	size_t in_len, in_need;
	uint8_t *in;
};

struct dsock {
	struct loop_watch w;        /* first: the loop hands us this */
	struct direct *d;
};

struct direct {
	struct upstream up;         /* first: the interface */
	struct loop *loop;
	struct conf_addr *servers;
	size_t n;
	int timeout_ms;
	unsigned max_attempts;
	struct dsock udp4, udp6;    /* fd -1 until needed */
	TAILQ_HEAD(, dreq) reqs;    /* in flight, by deadline */
	size_t pending;
	struct loop_timer timer;
	uint8_t buf[WIRE_MSG_MAX];
};

/* Put r at the tail (a fresh try's deadline is the latest). */
static void requeue(struct direct *d, struct dreq *r)
{
	TAILQ_REMOVE(&d->reqs, r, link);
	TAILQ_INSERT_TAIL(&d->reqs, r, link);
}

static void rearm(struct direct *d)
{
	if (!TAILQ_EMPTY(&d->reqs))
		loop_timer_set(d->loop, &d->timer,
			       TAILQ_FIRST(&d->reqs)->deadline);
	else
		loop_timer_del(d->loop, &d->timer);
}

static void tcp_close(struct direct *d, struct dreq *r)
{
	if (r->tw.fd < 0)
		return;
	loop_del(d->loop, &r->tw);
	close(r->tw.fd);
	r->tw.fd = -1;
	free(r->in);
	r->in = NULL;
}

/* The one place a request ends: its caller hears exactly once. */
static void finish(struct dreq *r, enum upstream_status st,
		   const uint8_t *reply, size_t len)
{
	struct direct *d = r->d;
	struct upstream_req *req = r->req;

	TAILQ_REMOVE(&d->reqs, r, link);
	d->pending--;
	r->tw.cb = NULL;
	if (req->cancelled)
		st = UPSTREAM_CANCELLED;
	req->done(req, st, st == UPSTREAM_OK ? reply : NULL,
		  st == UPSTREAM_OK ? len : 0);
	/* The TCP watch may still have an event in this batch. */
	if (r->tw.fd >= 0) {
		loop_del(d->loop, &r->tw);
		close(r->tw.fd);
		r->tw.fd = -1;
	}
	free(r->in);
	free(r->pkt);
	loop_defer_free(d->loop, r, free);
	rearm(d);
}

static void on_udp(struct loop_watch *w, uint32_t events);

static int udp_socket(struct direct *d, int family)
{
	struct dsock *s = family == AF_INET6 ? &d->udp6 : &d->udp4;

	if (s->w.fd >= 0)
		return s->w.fd;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	s->w.fd = fd;
	s->w.cb = on_udp;
	s->d = d;
	if (loop_add(d->loop, &s->w, EPOLLIN) < 0) {
		close(fd);
		s->w.fd = -1;
		return -1;
	}
	return fd;
}

static void start_tcp(struct direct *d, struct dreq *r);

/* Send r to its current server; a failure is left to the timer, which
 * moves on to the next server. */
static void transmit(struct direct *d, struct dreq *r)
{
	const struct conf_addr *a = &d->servers[r->server];

	if (a->kind == CONF_TCP) {
		start_tcp(d, r); /* tcp://: never over UDP */
		return;
	}
	int fd = udp_socket(d, a->ss.ss_family);

	r->deadline = loop_now(d->loop) + (uint64_t)d->timeout_ms;
	requeue(d, r);
	if (fd >= 0)
		(void)sendto(fd, r->pkt, r->len, 0,
			     (const struct sockaddr *)&a->ss, a->len);
	rearm(d);
}

static void next_try(struct direct *d, struct dreq *r)
{
	tcp_close(d, r);
	if (++r->attempt >= d->max_attempts) {
		finish(r, UPSTREAM_FAILED, NULL, 0);
		return;
	}
	r->server = r->attempt % d->n;
	transmit(d, r);
}

static void on_timer(struct loop_timer *t, uint64_t now_ms)
{
	struct direct *d =
		(struct direct *)((char *)t - offsetof(struct direct, timer));

	struct dreq *r;
	while ((r = TAILQ_FIRST(&d->reqs)) && r->deadline <= now_ms)
		next_try(d, r);
	rearm(d);
}

static bool same_addr(const struct sockaddr_storage *a,
		      const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static void on_tcp(struct loop_watch *w, uint32_t events);

/* A truncated UDP reply: ask the same server again over TCP (RFC 7766
 * 5), within a fresh try's time. */
static void start_tcp(struct direct *d, struct dreq *r)
{
	const struct conf_addr *a = &d->servers[r->server];
	int fd = socket(a->ss.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	r->deadline = loop_now(d->loop) + (uint64_t)d->timeout_ms;
	requeue(d, r);
	rearm(d);
	if (fd < 0)
		return; /* the timer moves on */
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return;
	}
	r->tw.fd = fd;
	r->tw.cb = on_tcp;
	r->out_off = 0;
	r->in_len = 0;
	r->in_need = 0;
	wire_set16(r->lenbuf, (uint16_t)r->len);
	if (loop_add(d->loop, &r->tw, EPOLLOUT) < 0) {
		close(fd);
		r->tw.fd = -1;
	}
}

static struct dreq *find(struct direct *d, uint16_t id)
{
	struct dreq *r;
	TAILQ_FOREACH(r, &d->reqs, link)
		if (r->id == id && r->tw.fd < 0)
			return r;
	return NULL;
}

static void on_udp(struct loop_watch *w, uint32_t events)
{
	struct direct *d = ((struct dsock *)w)->d;
	struct sockaddr_storage from;

	(void)events;
	for (int i = 0; i < 64; i++) {
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(w->fd, d->buf, sizeof(d->buf), 0,
				     (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		if ((size_t)n < WIRE_HEADER_LEN)
			continue;
		struct dreq *r = find(d, wire_get16(d->buf));
		if (!r || !same_addr(&from, &d->servers[r->server].ss) ||
		    !(wire_get16(d->buf + 2) & WIRE_QR))
			continue; /* not an answer to us: RFC 5452 9.1 */
		if (wire_get16(d->buf + 2) & WIRE_TC) {
			/* The move to TCP counts as a try, so that forged
			 * TC replies cannot keep a request alive forever. */
			if (++r->attempt >= d->max_attempts)
				finish(r, UPSTREAM_FAILED, NULL, 0);
			else
				start_tcp(d, r);
		} else
			finish(r, UPSTREAM_OK, d->buf, (size_t)n);
	}
}

static void on_tcp(struct loop_watch *w, uint32_t events)
{
	struct dreq *r = (struct dreq *)w;
	struct direct *d = r->d;

	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		tcp_close(d, r); /* the timer moves on */
		return;
	}
	if (r->out_off < 2 + r->len) {
		uint8_t frame[2 + WIRE_MSG_MAX];
		memcpy(frame, r->lenbuf, 2);
		memcpy(frame + 2, r->pkt, r->len);
		ssize_t k = write(w->fd, frame + r->out_off,
				  2 + r->len - r->out_off);
		if (k < 0 && errno != EAGAIN && errno != EINTR) {
			tcp_close(d, r);
			return;
		}
		if (k > 0)
			r->out_off += (size_t)k;
		if (r->out_off == 2 + r->len)
			loop_mod(d->loop, w, EPOLLIN);
		return;
	}
	if (!r->in) {
		/* The two length octets, then the message. */
		ssize_t k = read(w->fd, r->lenbuf + r->in_len, 2 - r->in_len);
		if (k <= 0) {
			if (k == 0 || (errno != EAGAIN && errno != EINTR))
				tcp_close(d, r);
			return;
		}
		r->in_len += (size_t)k;
		if (r->in_len < 2)
			return;
		r->in_need = wire_get16(r->lenbuf);
		r->in_len = 0;
		if (r->in_need < WIRE_HEADER_LEN ||
		    !(r->in = malloc(r->in_need))) {
			tcp_close(d, r);
			return;
		}
	}
	ssize_t k = read(w->fd, r->in + r->in_len, r->in_need - r->in_len);
	if (k <= 0) {
		if (k == 0 || (errno != EAGAIN && errno != EINTR))
			tcp_close(d, r);
		return;
	}
	r->in_len += (size_t)k;
	if (r->in_len < r->in_need)
		return;
	if (wire_get16(r->in) != r->id) {
		tcp_close(d, r);
		return;
	}
	memcpy(d->buf, r->in, r->in_len);
	finish(r, UPSTREAM_OK, d->buf, r->in_len);
}

/* An ID no request in flight has, on UDP or TCP (one that went to TCP
 * may come back to UDP on the next try). */
static bool id_taken(const struct direct *d, uint16_t id)
{
	const struct dreq *r;
	TAILQ_FOREACH(r, &d->reqs, link)
		if (r->id == id)
			return true;
	return false;
}

static uint16_t fresh_id(struct direct *d)
{
	uint16_t id;

	do {
		if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
			id = (uint16_t)random();
	} while (id_taken(d, id));
	return id;
}

/* An allocation failed inside send: report it after the batch. */

static void direct_send(struct upstream *u, struct upstream_req *req,
			uint8_t *pkt, size_t len)
{
	struct direct *d = (struct direct *)u;
	struct dreq *r = calloc(1, sizeof(*r));

	if (!r || !(r->pkt = malloc(len))) {
		free(r);
		upstream_fail_later(d->loop, req);
		return;
	}
	r->tw.fd = -1;
	r->req = req;
	r->d = d;
	r->len = len;
	r->id = fresh_id(d);
	memcpy(r->pkt, pkt, len);
	wire_set16(r->pkt, r->id);
	req->chan = r;
	req->id = r->id;
	d->pending++;
	TAILQ_INSERT_TAIL(&d->reqs, r, link);
	transmit(d, r);
}

static void direct_cancel(struct upstream *u, struct upstream_req *req)
{
	(void)u;
	req->cancelled = true;
}

static size_t direct_pending(const struct upstream *u)
{
	return ((const struct direct *)u)->pending;
}

static void direct_free(struct upstream *u)
{
	struct direct *d = (struct direct *)u;

	struct dreq *r;
	while ((r = TAILQ_FIRST(&d->reqs))) {
		r->req->cancelled = true;
		finish(r, UPSTREAM_CANCELLED, NULL, 0);
	}
	loop_timer_del(d->loop, &d->timer);
	for (int i = 0; i < 2; i++) {
		struct dsock *s = i ? &d->udp6 : &d->udp4;
		if (s->w.fd >= 0) {
			loop_del(d->loop, &s->w);
			close(s->w.fd);
		}
	}
	free(d->servers);
	/* A UDP event of this batch may still name the sockets. */
	loop_defer_free(d->loop, d, free);
}

static const struct upstream_ops direct_ops = {
	.kind = "direct",
	.send = direct_send,
	.cancel = direct_cancel,
	.pending = direct_pending,
	.free = direct_free,
};

struct upstream *direct_new(struct loop *loop,
			    const struct conf_addr *servers, size_t n,
			    int timeout_ms, int tries, char *err,
			    size_t errlen)
{
	struct direct *d = calloc(1, sizeof(*d));

	if (!d || n == 0 || !(d->servers = calloc(n, sizeof(*servers)))) {
		free(d);
		snprintf(err, errlen, n ? "out of memory" : "no upstream servers");
		return NULL;
	}
	memcpy(d->servers, servers, n * sizeof(*servers));
	d->up.ops = &direct_ops;
	d->loop = loop;
	d->n = n;
	d->timeout_ms = timeout_ms;
	d->max_attempts = (unsigned)(n * (size_t)(tries > 0 ? tries : 1));
	d->udp4.w.fd = d->udp6.w.fd = -1;
	d->timer.cb = on_timer;
	TAILQ_INIT(&d->reqs);
	return &d->up;
}
