/*
 * forward.c - the c-ares backend of one upstream group.
 *
 * c-ares facts this relies on (see API-NOTES): 1.18 sends our packet's ID
 * unchanged and newer versions write their own, so IDs are ours and unique
 * per channel; the reply buffer lives only during the callback; callbacks
 * may run inside ares_send; sockets are reported through the state
 * callback and driven with ares_process_fd, never ares_fds/select.
 */
#include <config.h>

#define CARES_NO_DEPRECATED 1
#include <ares.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "conf.h"
#include "forward.h"
#include "log.h"
#include "loop.h"

#define FORWARD_RCVBUF (4 * 1024 * 1024)

/* c-ares before 1.20 keeps one UDP socket (one source port) per server
 * while a channel is busy.  To keep source ports unpredictable (RFC 5452
 * 9.2) a channel takes at most this many queries or this long before a
 * fresh one replaces it; the old one finishes its queries first. */
#define FORWARD_ROTATE_QUERIES 256
#define FORWARD_ROTATE_MS 10000

struct chan {
	ares_channel ch;
	struct forward *fw;
	struct fwatch *watches;
	size_t pending;
	size_t sent;
	uint64_t born_ms;
	struct chan *next; /* retired channels, draining */
};

struct fwatch {
	struct loop_watch w; /* first: the loop hands us this pointer */
	struct chan *chan;
	struct fwatch *next;
};

struct forward {
	struct upstream up;          /* first: the interface */
	struct chan *cur;            /* new queries go here */
	struct chan *spare;          /* the next cur, made outside queries */
	struct chan *retired;        /* older channels with queries left */
	struct loop *loop;
	struct ares_options opts;
	int optmask;
	char *servers;               /* "ip:port,[ip6]:port" */
	size_t pending;
	uint8_t inflight[65536 / 8]; /* IDs in use */
	uint16_t random[256];        /* getrandom() pool */
	size_t nrandom;
	struct loop_timer timer;     /* c-ares' next timeout */
	struct loop_task chores;     /* spare channel, retired channels */
	bool in_send;                /* inside ares_send: defer completions */
	bool freeing;
};

static void rearm(struct forward *fw);

static uint16_t next_random(struct forward *fw)
{
	if (fw->nrandom == 0) {
		if (getrandom(fw->random, sizeof(fw->random), 0) !=
		    (ssize_t)sizeof(fw->random)) {
			/* Not expected on Linux >= 3.17; keep going with a
			 * weaker source rather than fail queries. */
			for (size_t i = 0; i < 256; i++)
				fw->random[i] = (uint16_t)random();
		}
		fw->nrandom = 256;
	}
	return fw->random[--fw->nrandom];
}

static uint16_t take_id(struct forward *fw)
{
	uint16_t id = next_random(fw);
	/* The in-flight set is far from full (it is capped by the caller's
	 * pool), so this loop ends quickly. */
	while (fw->inflight[id >> 3] & (1u << (id & 7)))
		id = next_random(fw);
	fw->inflight[id >> 3] |= (uint8_t)(1u << (id & 7));
	return id;
}

static void release_id(struct forward *fw, uint16_t id)
{
	fw->inflight[id >> 3] &= (uint8_t)~(1u << (id & 7));
}

static void on_event(struct loop_watch *w, uint32_t events)
{
	struct fwatch *fwt = (struct fwatch *)w;
	ares_socket_t fd = w->fd;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		rfd = fd;
	if (events & EPOLLOUT)
		wfd = fd;
	struct forward *fw = fwt->chan->fw;
	ares_process_fd(fwt->chan->ch, rfd, wfd);
	rearm(fw);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable,
			  int writable)
{
	struct chan *c = data;
	struct forward *fw = c->fw;
	struct fwatch **pp = &c->watches, *fwt;
	uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);

	while (*pp && (*pp)->w.fd != fd)
		pp = &(*pp)->next;
	fwt = *pp;
	if (!ev) {
		if (fwt) {
			*pp = fwt->next;
			loop_del(fw->loop, &fwt->w);
			loop_defer_free(fw->loop, fwt, free);
		}
		return;
	}
	if (fwt) {
		loop_mod(fw->loop, &fwt->w, ev);
		return;
	}
	fwt = calloc(1, sizeof(*fwt));
	if (!fwt)
		return; /* the query times out: SERVFAIL, not a crash */
	fwt->w.fd = fd;
	fwt->w.cb = on_event;
	fwt->chan = c;
	if (loop_add(fw->loop, &fwt->w, ev) < 0) {
		free(fwt);
		return;
	}
	fwt->next = c->watches;
	c->watches = fwt;
}

/* A new channel with fw's options and servers; NULL with err set. */
static struct chan *chan_new(struct forward *fw, char *err, size_t errlen)
{
	struct chan *c = calloc(1, sizeof(*c));
	struct ares_options o = fw->opts;
	int rc;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fw = fw;
	c->born_ms = loop_now_ms();
	o.sock_state_cb_data = c;
	rc = ares_init_options(&c->ch, &o, fw->optmask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(c);
		return NULL;
	}
	rc = ares_set_servers_ports_csv(c->ch, fw->servers);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: setting servers '%s': %s",
			 fw->servers, ares_strerror(rc));
		ares_destroy(c->ch);
		free(c);
		return NULL;
	}
	return c;
}

/* Destroy a channel: queries still in it complete with
 * FORWARD_CANCELLED.  Never from inside a c-ares callback. */
static void chan_free(struct chan *c)
{
	struct forward *fw = c->fw;

	ares_destroy(c->ch);
	while (c->watches) {
		struct fwatch *fwt = c->watches;
		c->watches = fwt->next;
		loop_del(fw->loop, &fwt->w);
		loop_defer_free(fw->loop, fwt, free);
	}
	free(c);
}

/*
 * How many tries c-ares may make.  Without ARES_OPT_MAXTIMEOUTMS (before
 * 1.22) each pass over the servers waits twice as long as the one before,
 * so "tries" tries can outlast the client's deadline (timeout * tries) by
 * far, keeping queries alive long after the client got SERVFAIL.  Keep the
 * tries whose schedule ends within 1.5 times the deadline (at least one).
 */
static int fit_tries(int timeout_ms, int tries, size_t nservers)
{
#ifdef ARES_OPT_MAXTIMEOUTMS
	(void)timeout_ms;
	(void)nservers;
	return tries;
#else
	/* c-ares 1.18 makes tries passes over the servers; in pass r each
	 * server gets timeout << r. */
	long budget = (long)timeout_ms * tries * 3 / 2, spent = 0;
	int passes = 0;
	while (passes < tries) {
		long t = (long)nservers * ((long)timeout_ms << passes);
		if (passes > 0 && spent + t > budget)
			break;
		spent += t;
		passes++;
	}
	return passes;
#endif
}

static const struct upstream_ops forward_ops;
static void on_timer(struct loop_timer *t, uint64_t now_ms);
static void on_chores(struct loop_task *t);

struct upstream *forward_new(struct loop *loop,
			     const struct conf_addr *servers, size_t n,
			     int timeout_ms, int tries, char *err,
			     size_t errlen)
{
	struct forward *fw = calloc(1, sizeof(*fw));
	size_t len = 0, cap = 72 * (n ? n : 1);

	if (!fw || !(fw->servers = calloc(cap, 1))) {
		free(fw);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (n == 0) {
		snprintf(err, errlen, "no upstream servers");
		goto fail;
	}
	fw->up.ops = &forward_ops;
	fw->loop = loop;
	fw->timer.cb = on_timer;
	fw->chores.cb = on_chores;
	/* No ARES_FLAG_EDNS, no ARES_FLAG_IGNTC: on 1.18 both corrupt
	 * relayed packets.  TC replies are refetched over TCP. */
	fw->opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	/* tcp:// servers: every query over TCP (c-ares keeps the
	 * connection open and pipelines on it). */
	if (servers[0].kind == CONF_TCP)
		fw->opts.flags |= ARES_FLAG_USEVC;
	fw->opts.timeout = timeout_ms;
	fw->opts.tries = fit_tries(timeout_ms, tries, n);
	fw->opts.sock_state_cb = on_sock_state;
	fw->opts.socket_receive_buffer_size = FORWARD_RCVBUF;
	fw->optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		      ARES_OPT_SOCK_STATE_CB | ARES_OPT_SOCK_RCVBUF |
		      ARES_OPT_NOROTATE;
#ifdef ARES_OPT_QUERY_CACHE
	/* The built-in cache (1.31+) ignores EDNS and answers with a stale
	 * ID inside ares_send. */
	fw->opts.qcache_max_ttl = 0;
	fw->optmask |= ARES_OPT_QUERY_CACHE;
#endif
#ifdef ARES_OPT_MAXTIMEOUTMS
	fw->opts.maxtimeout = timeout_ms;
	fw->optmask |= ARES_OPT_MAXTIMEOUTMS;
#endif
#ifdef ARES_OPT_UDP_MAX_QUERIES
	/* 1.20+: a new UDP socket (source port) every so many queries. */
	fw->opts.udp_max_queries = 64;
	fw->optmask |= ARES_OPT_UDP_MAX_QUERIES;
#endif
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(fw->servers + len, cap - len, "%s%s",
					i ? "," : "", servers[i].addr);
	if (!(fw->cur = chan_new(fw, err, errlen)))
		goto fail;
	return &fw->up;
fail:
	free(fw->servers);
	free(fw);
	return NULL;
}

static void forward_free(struct upstream *u)
{
	struct forward *fw = (struct forward *)u;

	/* ares_destroy completes what is in flight with ARES_EDESTRUCTION:
	 * reported at once, this is the one documented exception. */
	fw->freeing = true;
	loop_timer_del(fw->loop, &fw->timer);
	loop_unpost(fw->loop, &fw->chores);
	while (fw->retired) {
		struct chan *c = fw->retired;
		fw->retired = c->next;
		chan_free(c);
	}
	chan_free(fw->cur);
	if (fw->spare)
		chan_free(fw->spare);
	free(fw->servers);
	free(fw);
}

/* Start a fresh channel for new queries when the current one has served
 * its share; the old one drains. */
static void maybe_rotate(struct forward *fw)
{
	char err[256];
	struct chan *c = fw->cur;

#ifdef ARES_OPT_UDP_MAX_QUERIES
	(void)err;
	(void)c;
	return; /* c-ares does it per socket */
#else
	if (c->sent < FORWARD_ROTATE_QUERIES &&
	    loop_now_ms() - c->born_ms < FORWARD_ROTATE_MS)
		return;
	/* The spare was made by the chores task, so that ares_init_options
	 * (which reads resolv.conf) stays off the query path. */
	struct chan *fresh = fw->spare;
	fw->spare = NULL;
	if (!fresh && !(fresh = chan_new(fw, err, sizeof(err))))
		return; /* keep the old one: still correct, less random */
	fresh->born_ms = loop_now_ms();
	c->next = fw->retired;
	fw->retired = c;
	fw->cur = fresh;
#endif
}

/* A completion that happened inside ares_send, run after the batch. */
static void run_deferred(struct loop_task *t)
{
	struct upstream_req *req =
		(struct upstream_req *)((char *)t -
					offsetof(struct upstream_req, task));
	enum upstream_status st = req->cancelled ? UPSTREAM_CANCELLED
						 : req->deferred;
	req->done(req, st, NULL, 0);
}

static void on_answer(void *arg, int status, int timeouts,
		      unsigned char *abuf, int alen)
{
	struct upstream_req *req = arg;
	struct chan *c = req->chan;
	struct forward *fw = c->fw;
	enum upstream_status st = UPSTREAM_OK;

	(void)timeouts;
	release_id(fw, req->id);
	fw->pending--;
	c->pending--;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED)
		st = UPSTREAM_CANCELLED;
	else if (status != ARES_SUCCESS || !abuf || alen <= 0)
		st = UPSTREAM_FAILED;
	if (req->cancelled)
		st = UPSTREAM_CANCELLED;
	if (fw->in_send && !fw->freeing) {
		/* Inside the ares_send that started it (an immediate error,
		 * or a cache hit on newer c-ares): report it after the batch.
		 * A reply here could only be a c-ares cache hit, which is off;
		 * treat it as a failure rather than copy it. */
		req->deferred = st == UPSTREAM_OK ? UPSTREAM_FAILED : st;
		req->task.cb = run_deferred;
		loop_post(fw->loop, &req->task);
		return;
	}
	req->done(req, st, st == UPSTREAM_OK ? abuf : NULL,
		  st == UPSTREAM_OK ? (size_t)alen : 0);
}

static void forward_send(struct upstream *u, struct upstream_req *req,
			 uint8_t *pkt, size_t len)
{
	struct forward *fw = (struct forward *)u;
	struct chan *c;

	maybe_rotate(fw);
	c = fw->cur;
	req->chan = c;
	req->id = take_id(fw);
	pkt[0] = (uint8_t)(req->id >> 8);
	pkt[1] = (uint8_t)req->id;
	fw->pending++;
	c->pending++;
	c->sent++;
	fw->in_send = true;
	ares_send(c->ch, pkt, (int)len, on_answer, req);
	fw->in_send = false;
	rearm(fw);
	loop_post(fw->loop, &fw->chores);
}

static void forward_cancel(struct upstream *u, struct upstream_req *req)
{
	(void)u;
	/* c-ares cancels only whole channels: the answer, when it comes, is
	 * reported as cancelled. */
	req->cancelled = true;
}

static size_t forward_pending(const struct upstream *u)
{
	return ((const struct forward *)u)->pending;
}

/* Off the query path: make the next channel, free drained ones (here,
 * outside any c-ares callback). */
static void on_chores(struct loop_task *t)
{
	struct forward *fw =
		(struct forward *)((char *)t - offsetof(struct forward, chores));
	char err[256];

#ifndef ARES_OPT_UDP_MAX_QUERIES
	if (!fw->spare && fw->cur->sent > 0)
		fw->spare = chan_new(fw, err, sizeof(err));
#else
	(void)err;
#endif
	for (struct chan **pp = &fw->retired; *pp;) {
		struct chan *c = *pp;
		if (c->pending == 0) {
			*pp = c->next;
			chan_free(c);
		} else {
			pp = &c->next;
		}
	}
}

static long chan_timeout(struct chan *c)
{
	struct timeval tv, *t;

	if (!c->pending || !(t = ares_timeout(c->ch, NULL, &tv)))
		return -1;
	/* Round up: waking a little early only spins. */
	return (long)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
}

/* Arm the loop timer at the earliest c-ares timeout of any channel. */
static void rearm(struct forward *fw)
{
	long best = -1;

	if (fw->pending)
		for (struct chan *c = fw->cur; c;
		     c = c == fw->cur ? fw->retired : c->next) {
			long ms = chan_timeout(c);
			if (ms >= 0 && (best < 0 || ms < best))
				best = ms;
		}
	if (best < 0)
		loop_timer_del(fw->loop, &fw->timer);
	else
		loop_timer_set(fw->loop, &fw->timer,
			       loop_now(fw->loop) + (uint64_t)best);
}

/* c-ares does not report timeouts through the socket callback: let it
 * see the time, then arm for the next one. */
static void on_timer(struct loop_timer *t, uint64_t now_ms)
{
	struct forward *fw =
		(struct forward *)((char *)t - offsetof(struct forward, timer));

	(void)now_ms;
	for (struct chan *c = fw->cur; c;
	     c = c == fw->cur ? fw->retired : c->next)
		if (c->pending)
			ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm(fw);
	loop_post(fw->loop, &fw->chores);
}

static const struct upstream_ops forward_ops = {
	.kind = "udp",
	.send = forward_send,
	.cancel = forward_cancel,
	.pending = forward_pending,
	.free = forward_free,
};
