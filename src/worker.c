/*
 * worker.c - a serving loop and its thread.
 *
 * The thread runs the loop; main talks to it through two atomics and the
 * loop's wake-up: the next snapshot to adopt, and a stop request.  A
 * snapshot arrives with its own reference, so the worker never reads a
 * pointer that another thread may free.  On stop, the listeners close at
 * once and the loop keeps running until no client waits for an answer
 * or the longest deadline has passed.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "conf.h"
#include "direct.h"
#include "dohup.h"
#include "dot.h"
#include "failover.h"
#include "forward.h"
#include "log.h"
#include "loop.h"
#include "query.h"
#include "server.h"
#include "snapshot.h"
#include "upstream.h"
#include "worker.h"

/* The TCP sweep (timeouts, paused listeners) wakes the loop at least
 * this often. */
#define WORKER_SWEEP_MS 1000

struct worker {
	unsigned id;
	struct loop *loop;
	struct server *srv;
	struct query_env *env;
	pthread_t thread;
	bool started;
	_Atomic(struct snapshot *) next; /* published, not adopted yet */
	atomic_bool stop;
	bool stopping;                   /* this thread saw stop */
	uint64_t stop_by;                /* drain until then */
	int deadline_ms;                 /* of the snapshot in use */
	struct loop_timer sweep;
};

/* How the legs of a mixed list are made: plain servers through forward
 * (or direct, for signed queries), tls servers through dot. */
struct legs {
	const struct snapshot *snap;
	bool signed_queries;
};

static struct upstream *make_upstream(void *ctx, struct loop *loop,
				      const struct snapshot *snap,
				      const struct conf_addr *servers, size_t n,
				      int timeout_ms, int tries, char *err,
				      size_t errlen);

/* An https:// server; one without #ADDR gets a resolver of its own over
 * the plain servers of upstream.servers (conf.c made sure there is
 * one), so that its name is never looked up through itself. */
static struct upstream *make_https(const struct legs *l, struct loop *loop,
				   const struct conf_addr *server,
				   int timeout_ms, char *err, size_t errlen)
{
#ifdef HAVE_TLS
	const struct conf *cfg = l->snap->cfg;
	struct dohup_conf hc = {l->snap->dot_trust, timeout_ms,
				cfg->tls_idle_timeout_ms,
				(unsigned)cfg->tls_max_queries, NULL};
	if (server->lookup) {
		struct conf_addr *plain = calloc(cfg->nservers, sizeof(*plain));
		size_t n = 0;
		if (!plain) {
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		for (size_t i = 0; i < cfg->nservers; i++)
			if (cfg->servers[i].kind == CONF_UDP ||
			    cfg->servers[i].kind == CONF_TCP)
				plain[n++] = cfg->servers[i];
		hc.resolver =
		    n ? make_upstream(NULL, loop, l->snap, plain, n, timeout_ms,
				      cfg->tries, err, errlen)
		      : NULL;
		free(plain);
		if (!hc.resolver) {
			if (!n)
				snprintf(err, errlen,
					 "%s: no plain upstream server to "
					 "look its name up",
					 server->text);
			return NULL;
		}
	}
	return dohup_new(loop, server, &hc, err, errlen);
#else
	(void)l;
	(void)loop;
	(void)timeout_ms;
	snprintf(err, errlen, "%s: built without TLS", server->text);
	return NULL;
#endif
}

static struct upstream *make_leg(void *ctx, struct loop *loop,
				 const struct conf_addr *server,
				 int timeout_ms, char *err, size_t errlen)
{
	const struct legs *l = ctx;

	if (server->kind == CONF_TLS) {
#ifdef HAVE_TLS
		const struct conf *cfg = l->snap->cfg;
		struct dot_conf dc = {l->snap->dot_trust, timeout_ms,
				      cfg->tls_idle_timeout_ms,
				      (unsigned)cfg->tls_max_queries};
		return dot_new(loop, server, &dc, err, errlen);
#else
		snprintf(err, errlen, "%s: built without TLS", server->text);
		return NULL;
#endif
	}
	if (server->kind == CONF_HTTPS)
		return make_https(l, loop, server, timeout_ms, err, errlen);
	if (l->signed_queries)
		return direct_new(loop, server, 1, timeout_ms, 1, err, errlen);
	return forward_new(loop, server, 1, timeout_ms, 1, err, errlen);
}

static bool all_kind(const struct conf_addr *servers, size_t n,
		     enum conf_transport kind)
{
	for (size_t i = 0; i < n; i++)
		if (servers[i].kind != kind)
			return false;
	return true;
}

/* A list of one kind goes to c-ares whole (its own failover and TCP
 * handling); a list with tls:// servers, or udp and tcp mixed, is tried
 * server by server in its order. */
static struct upstream *make_upstream(void *ctx, struct loop *loop,
				      const struct snapshot *snap,
				      const struct conf_addr *servers,
				      size_t n, int timeout_ms, int tries,
				      char *err, size_t errlen)
{
	struct legs l = {snap, false};

	(void)ctx;
	if (all_kind(servers, n, CONF_UDP) || all_kind(servers, n, CONF_TCP))
		return forward_new(loop, servers, n, timeout_ms, tries, err,
				   errlen);
	return failover_new(loop, servers, n, timeout_ms, tries, make_leg, &l,
			    err, errlen);
}

/* Signed queries: direct speaks udp and tcp servers itself; tls and
 * https servers take their turn through dot and dohup, never in the
 * clear. */
static struct upstream *make_direct(void *ctx, struct loop *loop,
				    const struct snapshot *snap,
				    const struct conf_addr *servers, size_t n,
				    int timeout_ms, int tries, char *err,
				    size_t errlen)
{
	struct legs l = {snap, true};
	bool plain = true;

	(void)ctx;
	for (size_t i = 0; i < n; i++)
		plain = plain && servers[i].kind != CONF_TLS &&
			servers[i].kind != CONF_HTTPS;
	if (plain)
		return direct_new(loop, servers, n, timeout_ms, tries, err,
				  errlen);
	return failover_new(loop, servers, n, timeout_ms, tries, make_leg, &l,
			    err, errlen);
}

static void adopt(struct worker *w, struct snapshot *snap)
{
	char err[256];
	int deadline = snap->deadline_ms;
	uint64_t gen = snap->generation;
	/* Read before the env takes snap over; once it serves snap, snap
	 * (and so its credentials) stays alive for the call below. */
	struct tls_creds *snap_tls = snap->tls;

	if (!query_env_adopt(w->env, snap, err, sizeof(err))) {
		log_err("worker %u: cannot use configuration %llu, still "
			"serving the previous one: %s",
			w->id, (unsigned long long)gen, err);
		return;
	}
	w->deadline_ms = deadline;
	server_set_tls(w->srv, snap_tls);
}

static void on_wake(void *ctx)
{
	struct worker *w = ctx;
	struct snapshot *snap = atomic_exchange(&w->next, NULL);

	if (snap)
		adopt(w, snap);
	if (atomic_load(&w->stop) && !w->stopping) {
		w->stopping = true;
		w->stop_by = loop_now(w->loop) + (uint64_t)w->deadline_ms;
		server_close_listeners(w->srv);
	}
}

/* The TCP timeouts and connections waiting for output room, before every
 * wait; the timer only makes sure the loop wakes when one is due. */
static void sweep(void *ctx)
{
	struct worker *w = ctx;
	uint64_t now = loop_now(w->loop);
	int ms = server_expire(w->srv, now);

	if (ms < 0 || ms > WORKER_SWEEP_MS)
		ms = WORKER_SWEEP_MS;
	loop_timer_set(w->loop, &w->sweep, now + (uint64_t)ms);
}

static void on_sweep(struct loop_timer *t, uint64_t now_ms)
{
	(void)t;
	(void)now_ms; /* sweep runs before the next wait */
}

struct worker *worker_new(unsigned id, struct snapshot *snap,
			  struct cache *cache, struct server_budget *budget,
			  char *err, size_t errlen)
{
	struct worker *w = calloc(1, sizeof(*w));
	struct query_backend backend = {make_upstream, make_direct, NULL};
	struct query_io io;

	if (!w) {
		snprintf(err, errlen, "out of memory");
		snapshot_unref(snap);
		return NULL;
	}
	w->id = id;
	atomic_init(&w->next, NULL);
	atomic_init(&w->stop, false);
	w->sweep.cb = on_sweep;
	if (!(w->loop = loop_new())) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		goto fail;
	}
	if (!(w->srv = server_new_shared(snap->cfg, w->loop, budget, err,
					  errlen)))
		goto fail;
	server_io(w->srv, &io);
	if (!(w->env = query_env_new(w->loop, &io, cache, &backend))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	w->deadline_ms = snap->deadline_ms;
	struct snapshot *s = snap;
	snap = NULL;
	if (!query_env_adopt(w->env, s, err, errlen) ||
	    server_start(w->srv, w->env) < 0) {
		if (!err[0])
			snprintf(err, errlen, "epoll: %s", strerror(errno));
		worker_free(w);
		return NULL;
	}
	server_set_tls(w->srv, s->tls); /* the env holds s now */
	/* Outsiders may not hold a TCP slot: refused at accept. */
	server_set_access(w->srv, query_env_client_allowed, w->env);
	loop_on_wake(w->loop, on_wake, w);
	loop_before_wait(w->loop, sweep, w);
	return w;
fail:
	snapshot_unref(snap);
	worker_free(w);
	return NULL;
}

static void *run(void *arg)
{
	struct worker *w = arg;

	/* Stopping: until every client has its answer, TCP replies
	 * included, or the longest deadline has passed. */
	while (!w->stopping ||
	       ((query_env_waiting(w->env) > 0 || server_unsent(w->srv) > 0) &&
		loop_now(w->loop) < w->stop_by)) {
		if (loop_run_once(w->loop, w->stopping ? 50 : -1) < 0) {
			log_err("worker %u: epoll_wait: %s", w->id,
				strerror(errno));
			break;
		}
	}
	return NULL;
}

bool worker_start(struct worker *w)
{
	int rc = pthread_create(&w->thread, NULL, run, w);
	if (rc) {
		errno = rc;
		return false;
	}
	w->started = true;
	return true;
}

void worker_publish(struct worker *w, struct snapshot *snap)
{
	struct snapshot *old = atomic_exchange(&w->next, snap);
	/* One the worker never saw: nobody else reads it. */
	snapshot_unref(old);
	loop_wake(w->loop);
}

void worker_stop(struct worker *w)
{
	atomic_store(&w->stop, true);
	loop_wake(w->loop);
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	if (w->started)
		pthread_join(w->thread, NULL);
	if (w->loop)
		loop_timer_del(w->loop, &w->sweep);
	/* Clients still waiting get SERVFAIL while the sockets are open. */
	query_env_free(w->env);
	server_free(w->srv);
	snapshot_unref(atomic_exchange(&w->next, NULL));
	loop_free(w->loop);
	free(w);
}

bool worker_add_observer(struct worker *w, const struct query_observer *obs)
{
	return query_env_add_observer(w->env, obs);
}

void worker_stats(struct worker *w, struct query_stats *sum)
{
	query_env_stats(w->env, sum);
}

uint64_t worker_hits(struct worker *w, const char *name)
{
	return query_env_hits(w->env, name);
}

void worker_set_pause(struct worker *w, const struct pause_state *p)
{
	query_env_set_pause(w->env, p);
}

size_t worker_top(struct worker *w, enum query_top kind,
		  struct topk_entry *out, size_t cap, uint64_t *total)
{
	return query_env_top(w->env, kind, out, cap, total);
}

void worker_group_stats(struct worker *w, const char *name, uint64_t *queries,
			uint64_t *blocked)
{
	query_env_group_stats(w->env, name, queries, blocked);
}

struct query_env *worker_env(struct worker *w) { return w->env; }

size_t worker_tls_open(const struct worker *w)
{
	return server_tls_open(w->srv);
}
