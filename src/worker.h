/*
 * worker.h - one serving loop in a thread of its own: its event loop,
 * its sockets (SO_REUSEPORT when there are several workers), its
 * pipeline and upstreams, its counters.
 *
 * Workers share nothing writable but the reply cache.  main hands each
 * one snapshots (worker_publish) and asks them to stop; everything else a
 * worker does happens in its own thread.
 */
#ifndef SPLITDNS_WORKER_H
#define SPLITDNS_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query.h"

struct cache;
struct conf;
struct server_budget;
struct pause_state;
struct query_observer;
struct query_stats;
struct snapshot;
struct worker;

/*
 * A worker bound to cfg's listen addresses, serving snap (the caller's
 * reference is taken over in every case) with the shared cache.  Not
 * running yet.  budget (borrowed, shared by all workers) bounds their
 * TCP connections (see server_new_shared).  Returns NULL with a message
 * in err.
 */
struct worker *worker_new(unsigned id, struct snapshot *snap,
			  struct cache *cache, struct server_budget *budget,
			  char *err, size_t errlen);

/* Start its thread.  Returns false with errno set. */
bool worker_start(struct worker *w);

/* Add an observer of its pipeline (query_env_add_observer): between
 * worker_new and worker_start.  False when there are too many. */
bool worker_add_observer(struct worker *w, const struct query_observer *obs);

/* Hand the worker a new snapshot (takes over the caller's reference);
 * it adopts it between two batches.  Any thread. */
void worker_publish(struct worker *w, struct snapshot *snap);

/* Ask the worker to stop taking queries, answer those in flight (at
 * most until their deadline), and end its thread.  Any thread. */
void worker_stop(struct worker *w);

/* Wait for the thread and free everything (a worker never started is
 * only freed). */
void worker_free(struct worker *w);

/* Add the worker's counters to *sum; its hits of the block source
 * name.  Any thread. */
void worker_stats(struct worker *w, struct query_stats *sum);
uint64_t worker_hits(struct worker *w, const char *name);

/* The worker reads blocking's pause state from p (borrowed for its life)
 * from now on.  Before worker_start. */
void worker_set_pause(struct worker *w, const struct pause_state *p);

/* Its top-list sketch of kind (query_env_top).  Any thread. */
size_t worker_top(struct worker *w, enum query_top kind,
		  struct topk_entry *out, size_t cap, uint64_t *total);

/* Add the worker's queries and blocking answers of the client group
 * called name.  Any thread. */
void worker_group_stats(struct worker *w, const char *name, uint64_t *queries,
			uint64_t *blocked);

/* The worker's pipeline, for the readers of its counters that any
 * thread may call (query_env_kind, query_env_rcode,
 * query_env_upstream_stats, query_env_top); and its TCP connections
 * open with TLS. */
struct query_env *worker_env(struct worker *w);
size_t worker_tls_open(const struct worker *w);

#endif
