/*
 * daemon.h - the running daemon: main's state (struct daemon, one, on
 * main's stack, passed down explicitly) and what its pieces call on each
 * other.  main.c starts it and reads signals; reload.c reloads,
 * refreshes and publishes; daemon.c sums the workers' figures (for the
 * SIGUSR1 line, status and metrics); ops.c answers the control socket;
 * expo.c writes the Prometheus body.  All of it runs on main's thread,
 * except the reload build, which reads only what build_snapshot in
 * reload.c says.
 */
#ifndef SPLITDNS_DAEMON_H
#define SPLITDNS_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "loop.h"
#include "pause.h"
#include "query.h"
#include "server.h"

struct block_source;
struct cache;
struct control;
struct dnstap;
struct fetch_sched;
struct metrics;
struct qlog;
struct query_upstream_stats;
struct snapshot;
struct worker;

#define MAX_LISTEN_ARGS 64

/* The command line, as parse_args (main.c) reads it. */
struct options {
	const char *conf;
	const char *pidfile;
	const char *listen[MAX_LISTEN_ARGS];
	size_t nlisten;
	bool check;
	const char *explain_name; /* --explain NAME [TYPE] */
	const char *explain_type;
	const char *explain_client; /* --client ADDR */
	bool detach;
	bool verbose;
};

/* The running daemon: main's state, passed down explicitly. */
struct daemon {
	struct options *o;
	struct loop *loop;          /* main's: signals and reload results */
	struct worker **workers;
	size_t nworkers;
	struct cache *cache;        /* shared by the workers */
	struct server_budget budget; /* their TCP connections */
	struct snapshot *snap;      /* the newest published */
	uint64_t generation;
	struct loop_watch sigw;
	/* The reload thread: one at a time, one more if asked meanwhile.
	 * It also runs refreshes of the subscribed lists: then job_from is
	 * the snapshot (a reference) whose configuration it refreshes. */
	pthread_t reloader;
	bool reloading;
	bool reload_again;
	bool refresh_again;         /* a refresh asked during a build */
	bool refresh_force;         /* ... of every URL, not the due ones */
	struct snapshot *job_from;
	bool job_force;
	atomic_bool cancel;         /* shutting down: downloads give up */
	struct fetch_sched *sched;  /* the build thread's while it runs */
	struct loop_timer refresh_timer;
	_Atomic(struct snapshot *) built; /* its result, NULL on failure */
	atomic_bool reload_done;
	char reload_err[CONF_ERR_MAX];
	bool stop;
	/* The control socket (splitdnsctl) and what it sets and shows. */
	struct control *ctl;
	struct pause_state pause;   /* read by the workers */
	uint64_t started_ms;        /* monotonic */
	uint64_t published_ms;      /* when d->snap was published */
	uint64_t reloads, reload_failures;
	uint64_t refreshes, refresh_failures; /* of subscribed lists */
	struct qlog *qlog;          /* the query log; NULL: off */
	uint64_t refresh_unchanged;  /* refreshes that changed no list */
	uint64_t job_started_ms;     /* of the build running */
	uint64_t reload_last_ms, refresh_last_ms; /* how long the last took */
	struct metrics *metrics;     /* GET /metrics; NULL: off */
	struct dnstap *dnstap;      /* dnstap = "...", or NULL */
};

/* ---- daemon.c: figures summed over the workers ---- */

/* Call fn for every block source of d's snapshot, each name once, with
 * its hits summed over the workers.  src is borrowed for the call. */
void daemon_each_list(const struct daemon *d,
		      void (*fn)(void *ctx, const struct block_source *src,
				 uint64_t hits),
		      void *ctx);

/* Set *queries and *blocked to the client group name's counts, summed
 * over the workers. */
void daemon_group_counts(const struct daemon *d, const char *name,
			 uint64_t *queries, uint64_t *blocked);

/* One upstream label (query_upstream_name) and its figures. */
struct daemon_upstream {
	char *name;
	size_t first; /* the first upstream group of d->snap with it */
	struct query_upstream_stats st; /* summed over the workers */
};

/* Every upstream label of d->snap once, in the order of the groups, with
 * its figures summed over the workers: sorted once, so that a scrape with
 * thousands of forward rules costs n log n, not n squared.  Sets *n
 * (0 when there is none); NULL only when out of memory, and then the
 * callers show no upstream figures.  daemon_upstreams_free frees. */
struct daemon_upstream *daemon_upstreams(const struct daemon *d, size_t *n);
void daemon_upstreams_free(struct daemon_upstream *u, size_t n);

/* ---- reload.c: reloads and refreshes, for the control commands ---- */

/* Reload the configuration on the build thread; if a build runs, one
 * more after it.  The result is published (or logged) by main's loop. */
void daemon_start_reload(struct daemon *d);

/* Download the subscribed lists that are due (force: all of them) on
 * the build thread, and publish a new block set if one changed; queued
 * after a build that runs. */
void daemon_start_refresh(struct daemon *d, bool force);

#endif
