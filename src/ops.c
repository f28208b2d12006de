/*
 * ops.c - the control socket's commands (control.h), on main's thread.
 *
 * Each op_* answers one splitdnsctl command from the running daemon's
 * state (struct daemon, daemon.h): status and top read the workers'
 * counters, pause and resume set the pauses the workers read, flush
 * empties the shared cache, reload and refresh start a build that
 * reload.c publishes, explain walks the rules of the snapshot being
 * served.  The socket itself is control.c's.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "block.h"
#include "cache.h"
#include "conf.h"
#include "control.h"
#include "daemon.h"
#include "explain.h"
#include "fetch.h"
#include "log.h"
#include "loop.h"
#include "ops.h"
#include "pause.h"
#include "qlog.h"
#include "query.h"
#include "route.h"
#include "snapshot.h"
#include "topk.h"
#include "wire.h"
#include "worker.h"
#include "zone.h"

/* The pause slot of the client group called name ("default": the
 * clients of no group), or -1. */
_Static_assert(PAUSE_MAX_GROUPS >= CONF_MAX_CLIENTS + 1,
	       "a pause slot for every client group and default");

static long group_slot(const struct daemon *d, const char *name)
{
	const struct snapshot *s = d->snap;

	for (size_t i = 0; i < s->ncgroups && i < PAUSE_MAX_GROUPS; i++)
		if (strcmp(s->cgroups[i].name, name) == 0)
			return (long)pause_slot(i);
	return -1;
}

/* The name of pause slot i (>= 1), for status. */
static const char *slot_group(const struct daemon *d, size_t slot)
{
	const struct snapshot *s = d->snap;

	if (slot < 1 || slot - 1 >= s->ncgroups)
		return NULL;
	return s->cgroups[slot - 1].name;
}


/* Seconds left of a pause that ends at until (0: none, -1: until
 * resume). */
static long long pause_left(uint64_t until, uint64_t now)
{
	if (until <= now)
		return 0;
	if (until == PAUSE_FOREVER)
		return -1;
	return (long long)((until - now + 999) / 1000);
}

/* Zero the pauses that have ended, so that the workers stop reading the
 * clock for them (pause_any); on each pause and status command. */
static void pause_tidy(struct daemon *d)
{
	uint64_t now = loop_now_ms();

	for (size_t i = 0; i <= PAUSE_MAX_GROUPS; i++) {
		uint64_t until = pause_until(&d->pause, i);
		if (until && until <= now)
			pause_set(&d->pause, i, 0);
	}
}

static void print_left(FILE *f, bool json, long long left)
{
	if (json)
		fprintf(f, left < 0 ? "null" : "%lld", left);
	else if (left < 0)
		fprintf(f, "until resume");
	else
		fprintf(f, "%lld s left", left);
}

static void status_pause(const struct daemon *d, FILE *f, bool json)
{
	uint64_t now = loop_now_ms();
	bool any = false;

	fprintf(f, json ? "\"pause\": {" : "blocking: ");
	for (size_t i = 0; i <= PAUSE_MAX_GROUPS; i++) {
		long long left = pause_left(pause_until(&d->pause, i), now);
		const char *g = i == PAUSE_ALL ? NULL : slot_group(d, i);
		if (left == 0 || (i != PAUSE_ALL && !g))
			continue;
		if (json) {
			fprintf(f, "%s", any ? ", " : "");
			control_json_str(f, g ? g : "*");
			fprintf(f, ": ");
		} else {
			fprintf(f, "%spaused for %s%s (", any ? "; " : "",
				g ? "group " : "everyone", g ? g : "");
		}
		print_left(f, json, left);
		fprintf(f, json ? "" : ")");
		any = true;
	}
	fprintf(f, json ? "}" : any ? "\n" : "on\n");
}

struct status_out {
	FILE *f;
	bool json, first;
};

static void status_list(void *ctx, const struct block_source *src,
			uint64_t hits)
{
	struct status_out *o = ctx;

	if (o->json) {
		fprintf(o->f, "%s{\"name\": ", o->first ? "" : ", ");
		control_json_str(o->f, src->name);
		fprintf(o->f,
			", \"names\": %zu, \"allowed\": %zu, "
			"\"bad_lines\": %zu, \"hits\": %" PRIu64 "}",
			src->entries, src->allows, src->bad, hits);
	} else {
		fprintf(o->f,
			"list %s: %zu names, %zu allowed, %zu bad lines, "
			"%" PRIu64 " hits\n",
			src->name, src->entries, src->allows, src->bad, hits);
	}
	o->first = false;
}

static void status_lists(const struct daemon *d, FILE *f, bool json)
{
	struct status_out o = {f, json, true};

	fprintf(f, json ? "\"lists\": [" : "");
	daemon_each_list(d, status_list, &o);
	fprintf(f, json ? "]" : "");
}

/* Queries and blocking answers per client group, default first. */
static void status_groups(const struct daemon *d, FILE *f, bool json,
			  const struct query_stats *all)
{
	const struct snapshot *s = d->snap;

	fprintf(f, json ? ", \"groups\": [" : "");
	for (size_t i = 0; i < s->ncgroups; i++) {
		const char *name = s->cgroups[i].name;
		uint64_t queries = all->queries, blocked = all->blocked;
		if (s->ncgroups > 1)
			daemon_group_counts(d, name, &queries, &blocked);
		if (json) {
			fprintf(f, "%s{\"name\": ", i ? ", " : "");
			control_json_str(f, name);
			fprintf(f,
				", \"queries\": %" PRIu64
				", \"blocked\": %" PRIu64 "}",
				queries, blocked);
		} else {
			fprintf(f,
				"group %s: %" PRIu64 " queries, %" PRIu64
				" blocked\n",
				name, queries, blocked);
		}
	}
	fprintf(f, json ? "]" : "");
}

/* The query log's counters, for status. */
static void status_query_log(const struct daemon *d, FILE *f, bool json)
{
	uint64_t written, dropped;

	if (!d->qlog) {
		fprintf(f, json ? ", \"query_log\": null" : "");
		return;
	}
	qlog_counts(d->qlog, &written, &dropped);
	if (json) {
		fprintf(f, ", \"query_log\": {\"path\": ");
		control_json_str(f, qlog_path(d->qlog));
		fprintf(f, ", \"written\": %" PRIu64 ", \"dropped\": %" PRIu64
			   "}",
			written, dropped);
	} else {
		fprintf(f, "query log %s: %" PRIu64 " lines written, %" PRIu64
			   " dropped\n",
			qlog_path(d->qlog), written, dropped);
	}
}

/*
 * The q-quantile (0..1) of an upstream histogram, in ms, as Prometheus'
 * histogram_quantile estimates it: linear within the bucket that holds
 * it.  Past the last bound it is that bound.  -1: no answers.
 */
static double upstream_quantile(const struct query_upstream_stats *u,
				double q)
{
	uint64_t total = 0, cum = 0;

	for (size_t b = 0; b <= QUERY_LATENCY_BUCKETS; b++)
		total += u->bucket[b];
	if (!total)
		return -1;
	double rank = q * (double)total;
	for (size_t b = 0; b < QUERY_LATENCY_BUCKETS; b++) {
		if (u->bucket[b] && (double)(cum + u->bucket[b]) >= rank) {
			double lo = b ? query_latency_ms[b - 1] : 0;
			double hi = query_latency_ms[b];
			return lo + (hi - lo) * (rank - (double)cum) /
					(double)u->bucket[b];
		}
		cum += u->bucket[b];
	}
	return query_latency_ms[QUERY_LATENCY_BUCKETS - 1];
}

/* Upstream health: per server list, queries, errors, median and p90. */
static void status_upstreams(const struct daemon *d, FILE *f, bool json)
{
	size_t nup;
	struct daemon_upstream *ups = daemon_upstreams(d, &nup);
	bool first = true;

	fprintf(f, json ? ", \"health\": [" : "");
	for (size_t i = 0; i < nup; i++) {
		const char *name = ups[i].name;
		const struct query_upstream_stats u = ups[i].st;
		double p50 = upstream_quantile(&u, 0.5);
		double p90 = upstream_quantile(&u, 0.9);
		if (json) {
			fprintf(f, "%s{\"server\": ", first ? "" : ", ");
			control_json_str(f, name);
			fprintf(f, ", \"queries\": %" PRIu64 ", \"errors\": %"
				   PRIu64 ", \"answers\": %" PRIu64,
				u.queries, u.errors, u.queries - u.errors);
			if (p50 < 0)
				fprintf(f, ", \"median_ms\": null, "
					   "\"p90_ms\": null}");
			else
				fprintf(f, ", \"median_ms\": %.1f, "
					   "\"p90_ms\": %.1f}",
					p50, p90);
		} else {
			fprintf(f, "server %s: %" PRIu64 " queries, %" PRIu64
				   " errors",
				name, u.queries, u.errors);
			if (p50 >= 0)
				fprintf(f, ", median %.1f ms, p90 %.1f ms",
					p50, p90);
			fprintf(f, "\n");
		}
		first = false;
	}
	fprintf(f, json ? "]" : "");
	daemon_upstreams_free(ups, nup);
}

static void op_status(void *ctx, struct control_reply *r)
{
	struct daemon *d = ctx;
	struct query_stats s = {0};
	struct cache_stats cs;
	uint64_t now = loop_now_ms();
	FILE *f = r->f;

	pause_tidy(d);
	for (size_t i = 0; i < d->nworkers; i++)
		worker_stats(d->workers[i], &s);
	cache_get_stats(d->cache, &cs);
	double ratio = cs.hits + cs.misses
			       ? (double)cs.hits / (double)(cs.hits + cs.misses)
			       : 0.0;
	const struct conf *cfg = d->snap->cfg;
	if (!r->json) {
		fprintf(f, "splitdns %s: up %" PRIu64 " s, %zu workers\n",
			PACKAGE_VERSION, (now - d->started_ms) / 1000,
			d->nworkers);
		fprintf(f, "snapshot: generation %" PRIu64 ", %" PRIu64
			   " s old, %zu local names, %zu forward rules; "
			   "%" PRIu64 " reloads, %" PRIu64 " failed\n",
			d->generation, (now - d->published_ms) / 1000,
			zone_size(d->snap->zone), cfg->nforwards, d->reloads,
			d->reload_failures);
		status_pause(d, f, false);
		fprintf(f, "queries: %" PRIu64 "; answers: local %" PRIu64
			   ", blocked %" PRIu64 ", cached %" PRIu64
			   ", stale %" PRIu64 ", forwarded %" PRIu64
			   ", refused %" PRIu64 ", private %" PRIu64
			   ", servfail %" PRIu64 ", malformed %" PRIu64
			   ", dropped %" PRIu64 "\n",
			s.queries, s.local, s.blocked, s.cached, s.stale,
			s.forwarded, s.refused, s.private_nx, s.servfail,
			s.malformed, s.dropped);
		fprintf(f, "cache: %zu entries, %zu bytes, %" PRIu64
			   " hits, %" PRIu64 " misses, hit ratio %.1f%%\n",
			cs.entries, cs.bytes, cs.hits, cs.misses, 100 * ratio);
		/* No per-server figures exist yet: the upstream's health is
		 * what the pipeline counts for all of them. */
		fprintf(f, "upstream: %zu servers%s; %" PRIu64
			   " answers, %" PRIu64 " failures (servfail), %"
			   PRIu64 " joined, %" PRIu64 " prefetched\n",
			cfg->nservers,
			cfg->servers_from_resolv ? " (resolv.conf)" : "",
			s.answered, s.servfail, s.joined, s.prefetched);
		status_upstreams(d, f, false);
		status_lists(d, f, false);
		status_groups(d, f, false, &s);
		status_query_log(d, f, false);
		return;
	}
	fprintf(f, "{\"version\": \"%s\", \"uptime\": %" PRIu64
		   ", \"workers\": %zu, \"snapshot\": {\"generation\": %"
		   PRIu64 ", \"age\": %" PRIu64 ", \"local_names\": %zu, "
		   "\"forward_rules\": %zu, \"reloads\": %" PRIu64
		   ", \"reload_failures\": %" PRIu64 "}, ",
		PACKAGE_VERSION, (now - d->started_ms) / 1000, d->nworkers,
		d->generation, (now - d->published_ms) / 1000,
		zone_size(d->snap->zone), cfg->nforwards, d->reloads,
		d->reload_failures);
	status_pause(d, f, true);
	fprintf(f, ", \"counters\": {");
	const char *sep = "";
#define STATUS_JSON(name)                                                 \
	fprintf(f, "%s\"" #name "\": %" PRIu64, sep, s.name);             \
	sep = ", ";
	QUERY_STATS(STATUS_JSON)
#undef STATUS_JSON
	fprintf(f, "}, \"cache\": {\"entries\": %zu, \"bytes\": %zu, "
		   "\"hits\": %" PRIu64 ", \"misses\": %" PRIu64
		   ", \"stored\": %" PRIu64 ", \"evicted\": %" PRIu64
		   ", \"hit_ratio\": %.4f}, \"upstream\": {\"servers\": [",
		cs.entries, cs.bytes, cs.hits, cs.misses, cs.stored,
		cs.evicted, ratio);
	for (size_t i = 0; i < cfg->nservers; i++) {
		fprintf(f, "%s", i ? ", " : "");
		control_json_str(f, cfg->servers[i].text);
	}
	fprintf(f, "], \"answers\": %" PRIu64 ", \"failures\": %" PRIu64,
		s.answered, s.servfail);
	status_upstreams(d, f, true);
	fprintf(f, "}, ");
	status_lists(d, f, true);
	status_groups(d, f, true, &s);
	status_query_log(d, f, true);
	fprintf(f, "}\n");
}

/* The pause slot that group names (NULL: everyone), or -1 with an error
 * answer. */
static long pause_target(const struct daemon *d, struct control_reply *r,
			 const char *group)
{
	long slot = group ? group_slot(d, group) : PAUSE_ALL;

	if (slot < 0) {
		char names[400] = "";
		size_t at = 0;
		for (size_t i = 0; i < d->snap->ncgroups && at < sizeof(names);
		     i++)
			at += (size_t)snprintf(names + at, sizeof(names) - at,
					       "%s%s", i ? ", " : "",
					       d->snap->cgroups[i].name);
		control_error(r, "no client group '%s' (there is: %s)", group,
			      names);
	}
	return slot;
}

static void op_pause(void *ctx, struct control_reply *r, uint32_t seconds,
		     const char *group)
{
	struct daemon *d = ctx;
	long slot = pause_target(d, r, group);
	long long left = seconds ? (long long)seconds : -1;

	if (slot < 0)
		return;
	pause_tidy(d);
	pause_set(&d->pause, (size_t)slot,
		  seconds ? loop_now_ms() + (uint64_t)seconds * 1000
			  : PAUSE_FOREVER);
	if (r->json) {
		fprintf(r->f, "{\"paused\": ");
		control_json_str(r->f, group ? group : "*");
		fprintf(r->f, ", \"seconds\": ");
		print_left(r->f, true, left);
		fprintf(r->f, "}\n");
	} else {
		fprintf(r->f, "blocking paused for %s%s (",
			group ? "group " : "everyone", group ? group : "");
		print_left(r->f, false, left);
		fprintf(r->f, ")\n");
	}
	log_info("control: blocking paused for %s%s, %s", group ? "group " : "",
		 group ? group : "everyone",
		 seconds ? "for a time" : "until resume");
}

static void op_resume(void *ctx, struct control_reply *r, const char *group)
{
	struct daemon *d = ctx;
	long slot = pause_target(d, r, group);

	if (slot < 0)
		return;
	/* Without a group every pause ends, everyone's and each group's. */
	for (size_t i = 0; i <= PAUSE_MAX_GROUPS; i++)
		if (!group || i == (size_t)slot)
			pause_set(&d->pause, i, 0);
	log_info("control: blocking resumed for %s%s", group ? "group " : "",
		 group ? group : "everyone");
	bool still = group && pause_left(pause_until(&d->pause, PAUSE_ALL),
					 loop_now_ms()) != 0;
	if (r->json) {
		fprintf(r->f, "{\"resumed\": ");
		control_json_str(r->f, group ? group : "*");
		fprintf(r->f, ", \"paused_for_everyone\": %s}\n",
			still ? "true" : "false");
	} else {
		fprintf(r->f, "blocking resumed for %s%s%s\n",
			group ? "group " : "everyone", group ? group : "",
			still ? " (still paused for everyone)" : "");
	}
}

static void op_flush(void *ctx, struct control_reply *r, const char *name)
{
	struct daemon *d = ctx;
	char text[1100];
	uint8_t wname[WIRE_NAME_MAX];
	const char *why;
	size_t n;

	if (!name) {
		n = cache_flush(d->cache);
	} else {
		snprintf(text, sizeof(text), "%s%s", name,
			 name[strlen(name) - 1] == '.' ? "" : ".");
		int len = wire_name_from_text(text, NULL, 0, wname, &why);
		if (len < 0) {
			control_error(r, "flush '%s': %s", name, why);
			return;
		}
		n = cache_flush_name(d->cache, wname, (size_t)len);
	}
	if (r->json) {
		fprintf(r->f, "{\"flushed\": %zu, \"name\": ", n);
		if (name)
			control_json_str(r->f, name);
		else
			fprintf(r->f, "null");
		fprintf(r->f, "}\n");
	} else {
		fprintf(r->f, "flushed %zu cache entr%s%s%s\n", n,
			n == 1 ? "y" : "ies", name ? " of " : "",
			name ? name : "");
	}
}

static void reload_reply(struct daemon *d, struct control_reply *r,
			 const char *what, const char *note)
{
	bool queued = d->reloading;

	daemon_start_reload(d);
	if (r->json) {
		fprintf(r->f, "{\"%s\": \"%s\", \"generation\": %" PRIu64 "}\n",
			what, queued ? "queued" : "started", d->generation);
		return;
	}
	fprintf(r->f, "%s %s%s (serving generation %" PRIu64 "; status "
		      "shows the new one once it is published)\n",
		what, queued ? "queued after the one running" : "started", note,
		d->generation);
}

static void op_reload(void *ctx, struct control_reply *r)
{
	reload_reply(ctx, r, "reload", "");
}

/* Download every subscribed list now (conditional requests), and
 * publish a new block set if one changed; lists that are files are read
 * at reloads only. */
static void op_refresh(void *ctx, struct control_reply *r)
{
	struct daemon *d = ctx;
	bool queued = d->reloading;
	/* The build thread owns d->sched while it runs (a reload replaces
	 * its entries): then the refresh is queued, and daemon_start_refresh
	 * asks the schedule once the build is done. */
	bool urls = queued || fetch_sched_next(d->sched) != UINT64_MAX;

	if (urls)
		daemon_start_refresh(d, true);
	const char *what = !urls  ? "nothing to do"
			   : queued ? "queued after the build running"
				    : "started";
	if (r->json) {
		fprintf(r->f,
			"{\"refresh\": \"%s\", \"generation\": %" PRIu64
			", \"refreshes\": %" PRIu64
			", \"refresh_failures\": %" PRIu64 "}\n",
			urls ? (queued ? "queued" : "started") : "none", d->generation,
			d->refreshes, d->refresh_failures);
		return;
	}
	fprintf(r->f,
		"refresh %s%s (serving generation %" PRIu64 "; %" PRIu64
		" refreshes published so far, %" PRIu64 " failed)\n",
		what, urls ? "" : ": block.lists names no URL", d->generation,
		d->refreshes, d->refresh_failures);
}

static void op_explain(void *ctx, struct control_reply *r, const char *name,
		       const char *type, const char *client)
{
	struct daemon *d = ctx;
	char *text = NULL, *errs = NULL;
	size_t tlen = 0, elen = 0;
	FILE *out = r->json ? open_memstream(&text, &tlen) : r->f;
	FILE *ef = open_memstream(&errs, &elen);
	struct route_decision dec;
	int rc = 1;

	if (out && ef)
		rc = explain_running(out, ef, d->snap, name, type, client,
				     &d->pause, loop_now_ms(), &dec);
	if (ef)
		fclose(ef);
	if (r->json && out)
		fclose(out);
	if (rc != 0) {
		/* "splitdns: --explain 'x': why" reads as the daemon's own
		 * option: keep only the why. */
		const char *m = errs && elen ? errs : "out of memory\n";
		const char *colon = strstr(m, ": ");
		control_error(r, "explain %s", colon ? colon + 2 : m);
		r->msg[strcspn(r->msg, "\n")] = '\0';
	} else if (r->json) {
		fprintf(r->f, "{\"name\": ");
		control_json_str(r->f, name);
		fprintf(r->f, ", \"decision\": \"%s\", \"why\": ",
			route_kind_name(dec.kind));
		control_json_str(r->f, dec.why ? dec.why : "");
		fprintf(r->f, ", \"blocking_paused\": %s, \"text\": ",
			dec.paused ? "true" : "false");
		control_json_str(r->f, text ? text : "");
		fprintf(r->f, "}\n");
	}
	free(text);
	free(errs);
}

/* A sketch's key as text: a wire name, or (busiest clients) the 4 or
 * 16 octets of an address. */
static void top_key(enum query_top kind, const struct topk_entry *e,
		    char *text, size_t cap)
{
	if (kind != QUERY_TOP_CLIENTS) {
		wire_name_to_text(e->key, e->len, text, cap);
		return;
	}
	if (!inet_ntop(e->len == 16 ? AF_INET6 : AF_INET, e->key, text,
		       (socklen_t)cap))
		snprintf(text, cap, "?");
}

/* One top list over every worker: merged sketches, largest first.  The
 * slowest names count milliseconds upstream, the others queries. */
static void top_list(struct daemon *d, struct control_reply *r,
		     enum query_top kind, const char *title, unsigned n,
		     struct topk_entry *e)
{
	uint64_t total = 0, max_error = 0;
	size_t k = 0;
	char text[1100];
	bool ms = kind == QUERY_TOP_SLOW;
	const char *key = kind == QUERY_TOP_CLIENTS ? "client" : "name";

	for (size_t i = 0; i < d->nworkers; i++)
		k += worker_top(d->workers[i], kind, e + k, TOPK_CAP, &total);
	k = topk_merge(e, k);
	topk_sort(e, k);
	for (size_t i = 0; i < k; i++)
		if (e[i].error > max_error)
			max_error = e[i].error;
	if (r->json)
		fprintf(r->f, "\"%s\": {\"total\": %" PRIu64 ", \"bound\": %"
			      PRIu64 ", \"%s\": [",
			title, total, total / TOPK_CAP,
			kind == QUERY_TOP_CLIENTS ? "clients" : "names");
	else if (ms)
		fprintf(r->f, "slowest (ms upstream, of %" PRIu64 " ms; a sum "
			      "may be high by at most %" PRIu64 " ms):\n",
			total, max_error);
	else if (kind == QUERY_TOP_CLIENTS)
		fprintf(r->f, "busiest clients (of %" PRIu64 " queries; a count "
			      "may be high by at most %" PRIu64 "):\n",
			total, max_error);
	else
		fprintf(r->f, "most %s (of %" PRIu64 "; a count may be high by "
			      "at most %" PRIu64 "):\n",
			title, total, max_error);
	for (size_t i = 0; i < k && i < n; i++) {
		top_key(kind, &e[i], text, sizeof(text));
		if (!r->json) {
			fprintf(r->f, "%10" PRIu64 "  %s\n", e[i].count, text);
			continue;
		}
		fprintf(r->f, "%s{\"%s\": ", i ? ", " : "", key);
		control_json_str(r->f, text);
		fprintf(r->f, ", \"%s\": %" PRIu64 ", \"error\": %" PRIu64
			      "}",
			ms ? "ms" : "count", e[i].count, e[i].error);
	}
	fprintf(r->f, r->json ? "]}" : "");
}

static void op_top(void *ctx, struct control_reply *r, unsigned n)
{
	struct daemon *d = ctx;
	struct topk_entry *e = calloc(d->nworkers * TOPK_CAP, sizeof(*e));

	if (!e) {
		control_error(r, "out of memory");
		return;
	}
	fprintf(r->f, r->json ? "{" : "");
	top_list(d, r, QUERY_TOP_ASKED, "asked", n, e);
	fprintf(r->f, r->json ? ", " : "");
	top_list(d, r, QUERY_TOP_BLOCKED, "blocked", n, e);
	fprintf(r->f, r->json ? ", " : "");
	top_list(d, r, QUERY_TOP_SLOW, "slowest", n, e);
	fprintf(r->f, r->json ? ", " : "");
	top_list(d, r, QUERY_TOP_CLIENTS, "clients", n, e);
	fprintf(r->f, r->json ? "}\n" : "");
	free(e);
}

/* Bind the control socket (before the privilege drop: it is then owned by
 * the user the daemon becomes). */
bool ops_start_control(struct daemon *d, char *err, size_t errlen)
{
	const struct conf *cfg = d->snap->cfg;
	const struct control_ops ops = {
		.ctx = d,
		.status = op_status,
		.pause = op_pause,
		.resume = op_resume,
		.flush = op_flush,
		.reload = op_reload,
		.refresh = op_refresh,
		.explain = op_explain,
		.top = op_top,
	};
	const struct control_settings set = {
		.path = cfg->control,
		.mode = cfg->control_mode,
		.user = cfg->user,
		.group = cfg->control_group,
	};

	if (!cfg->control)
		return true;
	/* The example configuration names /run/splitdns/control, which the
	 * unit's RuntimeDirectory makes: started some other way, without
	 * that folder, the daemon serves on without the socket. */
	struct stat st;
	const char *slash = strrchr(cfg->control, '/');
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - cfg->control),
		 cfg->control);
	if (slash != cfg->control && stat(dir, &st) < 0 && errno == ENOENT) {
		log_warn("control %s: folder %s does not exist; no control "
			 "socket", cfg->control, dir);
		return true;
	}
	if (!(d->ctl = control_new(d->loop, &set, &ops, err, errlen)))
		return false;
	log_info("control socket %s (mode %04o)", cfg->control,
		 cfg->control_mode);
	return true;
}
