/*
 * reload.c - reloads and refreshes: the build thread, the refresh timer
 * of the subscribed lists, and the publishing of their snapshots.
 *
 * A reload (SIGHUP, splitdnsctl reload) builds a whole new snapshot from
 * the configuration on a thread of its own; a refresh (the timer, or
 * splitdnsctl refresh) downloads the subscribed lists that are due on the
 * same thread and makes a new block set only when one of them changed.
 * One build runs at a time, one more is queued if asked meanwhile.  When
 * it is done it wakes main's loop, whose wake callback here publishes
 * the result to the workers (warning about what only a restart changes,
 * keeping the pauses with their groups) or logs why it failed.  All of it
 * runs on main's thread but build_snapshot, which reads only what
 * start_build set in struct daemon (daemon.h).
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "conf.h"
#include "daemon.h"
#include "fetch.h"
#include "log.h"
#include "loop.h"
#include "pause.h"
#include "reload.h"
#include "snapshot.h"
#include "worker.h"
#include "zone.h"

/* ---- shared with main.c's start-up (its first snapshot and cache) ---- */

void reload_report_log(void *ctx, int warning, const char *line)
{
	(void)ctx;
	if (warning)
		log_warn("%s", line);
	else
		log_info("%s", line);
}

void reload_cache_limits(const struct conf *cfg, struct cache_limits *lim)
{
	lim->size = (size_t)cfg->cache_size;
	lim->min_ttl = (uint32_t)cfg->cache_min_ttl;
	lim->max_ttl = (uint32_t)cfg->cache_max_ttl;
	lim->negative_ttl = (uint32_t)cfg->cache_negative_ttl;
	lim->serve_stale = (uint32_t)cfg->cache_serve_stale;
}

/* ---- reloads: built on a thread of their own, published by main ---- */

static void *build_snapshot(void *arg)
{
	struct daemon *d = arg;
	struct snapshot *s = NULL;

	/* Background work: where it competes for a CPU with the serving
	 * loops, they come first (nice 10 has a tenth of their weight). */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
	d->reload_err[0] = '\0';
	if (d->job_from) {
		/* A refresh: the configuration and zones stay; only a list
		 * that changed makes a new block set. */
		if (fetch_sched_run(d->sched, d->job_from->cfg, d->job_force,
				    loop_now_ms(), &d->cancel, reload_report_log,
				    NULL))
			s = snapshot_refresh(d->job_from, reload_report_log, NULL,
					     d->generation + 1, d->reload_err,
					     sizeof(d->reload_err));
	} else {
		s = snapshot_build(d->o->conf, d->o->listen, d->o->nlisten,
				   reload_report_log, NULL, d->generation + 1,
				   d->reload_err, sizeof(d->reload_err));
		if (s && !fetch_sched_sync(d->sched, s->cfg, loop_now_ms(),
					   (int64_t)time(NULL)))
			log_err("reload: out of memory for the refresh times "
				"of the subscribed lists; keeping the old ones");
	}
	atomic_store(&d->built, s);
	atomic_store(&d->reload_done, true);
	loop_wake(d->loop);
	return NULL;
}

static bool start_build(struct daemon *d, struct snapshot *from, bool force)
{
	d->job_from = from;
	d->job_force = force;
	d->job_started_ms = loop_now_ms();
	atomic_store(&d->reload_done, false);
	int rc = pthread_create(&d->reloader, NULL, build_snapshot, d);
	if (rc) {
		log_err("%s: cannot start a thread: %s",
			from ? "refresh" : "reload", strerror(rc));
		snapshot_unref(from);
		d->job_from = NULL;
		return false;
	}
	d->reloading = true;
	return true;
}

void daemon_start_reload(struct daemon *d)
{
	if (d->reloading) {
		d->reload_again = true; /* one more after this one */
		return;
	}
	d->reload_again = false;
	start_build(d, NULL, false);
}

/*
 * Download the subscribed lists that are due (force: all of them) on the
 * build thread, and publish a new block set if one changed.  This is what
 * the refresh timer and a control command call.
 */
void daemon_start_refresh(struct daemon *d, bool force)
{
	if (d->reloading) {
		d->refresh_again = true;
		d->refresh_force = d->refresh_force || force;
		return;
	}
	d->refresh_again = false;
	d->refresh_force = false;
	if (fetch_sched_next(d->sched) == UINT64_MAX) {
		if (force)
			log_info("refresh: block.lists names no URL");
		return;
	}
	if (!start_build(d, snapshot_ref(d->snap), force))
		loop_timer_set(d->loop, &d->refresh_timer,
			       loop_now(d->loop) + 60000);
}

void reload_on_refresh_timer(struct loop_timer *t, uint64_t now_ms)
{
	struct daemon *d = (struct daemon *)((char *)t -
					     offsetof(struct daemon,
						      refresh_timer));
	(void)now_ms;
	daemon_start_refresh(d, false);
}

/* Arm the timer for the next list that is due; only between builds. */
void reload_arm_refresh(struct daemon *d)
{
	uint64_t next = fetch_sched_next(d->sched);

	if (next == UINT64_MAX)
		loop_timer_del(d->loop, &d->refresh_timer);
	else
		loop_timer_set(d->loop, &d->refresh_timer, next);
}

/* A reload may add, drop or reorder client groups: a group's pause stays
 * with its name, and the pause of a group that is gone ends. */
static void pause_remap(struct daemon *d, const struct snapshot *old,
			const struct snapshot *s)
{
	uint64_t until[PAUSE_MAX_GROUPS + 1] = {0};

	for (size_t i = 0; i < old->ncgroups && i < PAUSE_MAX_GROUPS; i++)
		for (size_t j = 0; j < s->ncgroups && j < PAUSE_MAX_GROUPS; j++)
			if (strcmp(old->cgroups[i].name, s->cgroups[j].name) ==
			    0)
				until[pause_slot(j)] =
				    pause_until(&d->pause, pause_slot(i));
	for (size_t k = 1; k <= PAUSE_MAX_GROUPS; k++)
		if (pause_until(&d->pause, k) != until[k])
			pause_set(&d->pause, k, until[k]);
}

/* ---- publishing: what a reload cannot change, then the hand-over ---- */

static bool same_sockets(const struct conf *a, const struct conf *b)
{
	if (a->nlisten != b->nlisten ||
	    a->tcp_max_connections != b->tcp_max_connections ||
	    a->tcp_idle_timeout_ms != b->tcp_idle_timeout_ms ||
	    a->tcp_query_timeout_ms != b->tcp_query_timeout_ms ||
	    a->tcp_write_timeout_ms != b->tcp_write_timeout_ms ||
	    a->tcp_max_per_client != b->tcp_max_per_client ||
	    a->tcp_max_output != b->tcp_max_output ||
	    a->tcp_max_output_total != b->tcp_max_output_total ||
	    a->tls_handshake_timeout_ms != b->tls_handshake_timeout_ms ||
	    a->tls_max_handshakes != b->tls_max_handshakes ||
	    a->https_max_streams != b->https_max_streams)
		return false;
	for (size_t i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i].text, b->listen[i].text) != 0)
			return false;
	return true;
}

static bool same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_control(const struct conf *a, const struct conf *b)
{
	return same_text(a->control, b->control) &&
	       same_text(a->control_group, b->control_group) &&
	       a->control_mode == b->control_mode;
}

static bool same_query_log(const struct conf *a, const struct conf *b)
{
	return same_text(a->log_queries, b->log_queries) &&
	       a->log_max_size == b->log_max_size &&
	       a->log_keep == b->log_keep && a->log_queue == b->log_queue &&
	       a->log_privacy == b->log_privacy;
}

/* dnstap's output is made once, at start. */
static bool same_dnstap(const struct conf *a, const struct conf *b)
{
	return same_text(a->dnstap, b->dnstap) &&
	       same_text(a->dnstap_identity, b->dnstap_identity) &&
	       same_text(a->dnstap_version, b->dnstap_version);
}

/* Hand the new snapshot to every worker, each with its own reference. */
static void publish(struct daemon *d, struct snapshot *s)
{
	struct snapshot *old = d->snap;

	if (s->base == old->base)
		goto hand_over; /* a refresh: nothing but the block set */
	if (!same_sockets(old->cfg, s->cfg))
		log_warn("listen, tcp or tls limits changed: they take effect "
			 "after a restart");
	if (old->cfg->threads != s->cfg->threads)
		log_warn("threads changed: it takes effect after a restart");
	if ((old->cfg->user == NULL) != (s->cfg->user == NULL) ||
	    (s->cfg->user && strcmp(old->cfg->user, s->cfg->user) != 0))
		log_warn("user changed: it takes effect after a restart");
	if (!same_control(old->cfg, s->cfg))
		log_warn("control settings changed: they take effect after a "
			 "restart");
	if (!same_query_log(old->cfg, s->cfg))
		log_warn("log_queries, log_max_size, log_keep, log_queue or "
			 "log_privacy changed: they take effect after a "
			 "restart");
	if (old->cfg->metrics_on != s->cfg->metrics_on ||
	    strcmp(old->cfg->metrics.addr, s->cfg->metrics.addr) != 0)
		log_warn("metrics changed: it takes effect after a restart");
	if (!same_dnstap(old->cfg, s->cfg))
		log_warn("dnstap settings changed: they take effect after a "
			 "restart");
	/* Answers of servers that are gone never match again (the key
	 * holds the upstream generation); free their memory now. */
	if (!snapshot_same_upstreams(old, s))
		cache_clear(d->cache);
	pause_remap(d, old, s);
	struct cache_limits lim;
	reload_cache_limits(s->cfg, &lim);
	cache_set_limits(d->cache, &lim);
hand_over:
	d->generation = s->generation;
	for (size_t i = 0; i < d->nworkers; i++)
		worker_publish(d->workers[i], snapshot_ref(s));
	d->snap = s;
	d->published_ms = loop_now_ms();
	if (s->base == old->base) {
		d->refreshes++;
		log_info("refreshed the block lists of %s", d->o->conf);
	} else {
		d->reloads++;
		log_info("reloaded %s: %zu local names, %zu forward rules",
			 d->o->conf, zone_size(s->zone), s->cfg->nforwards);
	}
	snapshot_unref(old);
}

void reload_on_main_wake(void *ctx)
{
	struct daemon *d = ctx;

	if (!d->reloading || !atomic_load(&d->reload_done))
		return;
	pthread_join(d->reloader, NULL);
	d->reloading = false;
	struct snapshot *s = atomic_exchange(&d->built, NULL);
	struct snapshot *from = d->job_from;
	d->job_from = NULL;
	if (from)
		d->refresh_last_ms = loop_now_ms() - d->job_started_ms;
	else
		d->reload_last_ms = loop_now_ms() - d->job_started_ms;
	if (!s && from && !d->reload_err[0])
		d->refresh_unchanged++;
	if (s) {
		publish(d, s);
	} else if (!from) {
		d->reload_failures++;
		log_err("reload failed, still serving the previous "
			"configuration: %s", d->reload_err);
	} else if (d->reload_err[0]) {
		d->refresh_failures++;
		log_err("refresh failed, still serving the previous block "
			"lists: %s", d->reload_err);
	}
	snapshot_unref(from);
	reload_arm_refresh(d);
	if (d->stop)
		return;
	if (d->reload_again)
		daemon_start_reload(d);
	else if (d->refresh_again)
		daemon_start_refresh(d, d->refresh_force);
}
