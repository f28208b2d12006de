/*
 * failover.c - one query at a time through the servers of a mixed list,
 * in their order.
 *
 * Each query has a try record (a pool that grows to the most in flight
 * and is reused) holding the request the current leg works on.  The
 * caller's packet is borrowed for the whole query: every leg copies it
 * when it sends, after writing its own ID into it (upstream.h).
 * A try that fails, times out, or gets SERVFAIL or REFUSED moves on to
 * the next server; the last try's reply is passed on as it is.
 * Completions come from the legs, never inside failover_send; this
 * module owns no socket and no timer.
 */
#include <config.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "conf.h"
#include "failover.h"
#include "loop.h"
#include "wire.h"

struct failover;

struct ftry {
	struct upstream_req sub;     /* first: the leg hands us this */
	struct upstream_req *outer;  /* the caller's */
	struct failover *f;
	uint8_t *pkt;                /* borrowed from the caller */
	size_t len;
	unsigned attempt;
	TAILQ_ENTRY(ftry) link;      /* busy, or spare */
};

struct failover {
	struct upstream up;          /* first: the interface */
	struct loop *loop;
	struct upstream **legs;
	size_t n;
	unsigned max_attempts;
	TAILQ_HEAD(, ftry) busy, spare;
	size_t pending;
	bool freeing;
};

static void on_leg(struct upstream_req *sub, enum upstream_status st,
		   const uint8_t *reply, size_t len);

static void finish(struct ftry *t, enum upstream_status st,
		   const uint8_t *reply, size_t len)
{
	struct failover *f = t->f;
	struct upstream_req *outer = t->outer;

	TAILQ_REMOVE(&f->busy, t, link);
	TAILQ_INSERT_HEAD(&f->spare, t, link);
	f->pending--;
	outer->id = t->sub.id;
	if (outer->cancelled)
		st = UPSTREAM_CANCELLED;
	outer->done(outer, st, st == UPSTREAM_OK ? reply : NULL,
		    st == UPSTREAM_OK ? len : 0);
}

static void on_leg(struct upstream_req *sub, enum upstream_status st,
		   const uint8_t *reply, size_t len)
{
	struct ftry *t = (struct ftry *)sub;
	struct failover *f = t->f;

	/* SERVFAIL and REFUSED move on too, as c-ares does with a list;
	 * the last try's reply is passed on as it is. */
	if (st == UPSTREAM_OK && len >= WIRE_HEADER_LEN &&
	    t->attempt + 1 < f->max_attempts) {
		unsigned rc = WIRE_RCODE(wire_get16(reply + 2));
		if (rc == WIRE_SERVFAIL || rc == WIRE_REFUSED)
			st = UPSTREAM_FAILED;
	}
	/* A leg that is being freed cancels: so does the query. */
	if (st != UPSTREAM_FAILED || t->outer->cancelled || f->freeing ||
	    ++t->attempt >= f->max_attempts) {
		finish(t, st, reply, len);
		return;
	}
	upstream_send(f->legs[t->attempt % f->n], &t->sub, t->pkt, t->len,
		      on_leg);
}

static void failover_send(struct upstream *u, struct upstream_req *req,
			  uint8_t *pkt, size_t len)
{
	struct failover *f = (struct failover *)u;
	struct ftry *t = TAILQ_FIRST(&f->spare);

	if (t)
		TAILQ_REMOVE(&f->spare, t, link);
	else if (!(t = calloc(1, sizeof(*t)))) {
		req->chan = NULL;
		upstream_fail_later(f->loop, req);
		return;
	}
	t->f = f;
	t->outer = req;
	t->pkt = pkt;
	t->len = len;
	t->attempt = 0;
	req->chan = t;
	TAILQ_INSERT_TAIL(&f->busy, t, link);
	f->pending++;
	upstream_send(f->legs[0], &t->sub, pkt, len, on_leg);
}

static void failover_cancel(struct upstream *u, struct upstream_req *req)
{
	struct ftry *t = req->chan;

	(void)u;
	req->cancelled = true;
	if (t)
		upstream_cancel(&t->sub);
}

static size_t failover_pending(const struct upstream *u)
{
	return ((const struct failover *)u)->pending;
}

static void failover_free(struct upstream *u)
{
	struct failover *f = (struct failover *)u;
	struct ftry *t;

	f->freeing = true;
	/* Each leg completes what it holds (cancelled), which ends those
	 * queries; a completion a leg had queued for after the batch is
	 * taken back here and the query ends too. */
	for (size_t i = 0; i < f->n; i++)
		if (f->legs[i]) {
			struct upstream *leg = f->legs[i];
			f->legs[i] = NULL;
			upstream_free(leg);
		}
	while ((t = TAILQ_FIRST(&f->busy))) {
		loop_unpost(f->loop, &t->sub.task);
		t->outer->cancelled = true;
		finish(t, UPSTREAM_CANCELLED, NULL, 0);
	}
	while ((t = TAILQ_FIRST(&f->spare))) {
		TAILQ_REMOVE(&f->spare, t, link);
		free(t);
	}
	free(f->legs);
	free(f);
}

static const struct upstream_ops failover_ops = {
	.kind = "failover",
	.send = failover_send,
	.cancel = failover_cancel,
	.pending = failover_pending,
	.free = failover_free,
};

struct upstream *failover_new(struct loop *loop,
			      const struct conf_addr *servers, size_t n,
			      int timeout_ms, int tries, failover_leg_fn leg,
			      void *ctx, char *err, size_t errlen)
{
	struct failover *f = calloc(1, sizeof(*f));

	if (!f || n == 0 || !(f->legs = calloc(n, sizeof(*f->legs)))) {
		free(f);
		snprintf(err, errlen, n ? "out of memory" : "no upstream servers");
		return NULL;
	}
	f->up.ops = &failover_ops;
	f->loop = loop;
	f->n = n;
	f->max_attempts = (unsigned)(n * (size_t)(tries > 0 ? tries : 1));
	TAILQ_INIT(&f->busy);
	TAILQ_INIT(&f->spare);
	for (size_t i = 0; i < n; i++)
		if (!(f->legs[i] = leg(ctx, loop, &servers[i], timeout_ms, err,
				       errlen))) {
			failover_free(&f->up);
			return NULL;
		}
	return &f->up;
}
