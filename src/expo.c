/*
 * expo.c - the Prometheus endpoint's body (metrics.h), on main's thread.
 *
 * metrics_write sets out the running daemon's figures as the text
 * exposition format: queries by transport and kind, answers by RCODE,
 * the block lists' hits, the client groups, the cache, the upstreams'
 * health and latency histograms, the snapshot and its reloads, the
 * connections.  It reads the counters the workers keep (relaxed
 * atomics) and writes nothing; the HTTP side is metrics.c's.
 */
#include <config.h>

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>

#include "block.h"
#include "cache.h"
#include "conf.h"
#include "daemon.h"
#include "expo.h"
#include "lists.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "policy.h"
#include "query.h"
#include "snapshot.h"
#include "worker.h"
#include "zone.h"

/* RFC 1035 4.1.1 and RFC 2136 2.2: the header RCODEs with a name. */
static const char *const rcode_names[16] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"};

static void metric_u64(FILE *f, const char *name, uint64_t v)
{
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

/* A family of one sample without labels: its HELP, TYPE and value. */
static void metric_one(FILE *f, const char *name, const char *type,
		       const char *help, uint64_t v)
{
	metrics_family(f, name, type, help);
	metric_u64(f, name, v);
}

/* One sample with one label. */
static void metric_l1(FILE *f, const char *name, const char *label,
		      const char *value, uint64_t v)
{
	fprintf(f, "%s{%s=", name, label);
	metrics_label(f, value);
	fprintf(f, "} %" PRIu64 "\n", v);
}

static void metrics_queries(const struct daemon *d, FILE *f)
{
	metrics_family(f, "splitdns_queries_total", "counter",
		       "Client queries by transport and by how they ended.");
	for (int t = 0; t < QUERY_TRANSPORTS; t++)
		for (int k = 0; k < QUERY_NKINDS; k++) {
			uint64_t n = 0;
			for (size_t w = 0; w < d->nworkers; w++)
				n += query_env_kind(worker_env(d->workers[w]),
						    (enum query_transport)t,
						    (enum query_kind)k);
			fprintf(f,
				"splitdns_queries_total{transport=\"%s\","
				"kind=\"%s\"} %" PRIu64 "\n",
				query_transport_name((enum query_transport)t),
				query_kind_name((enum query_kind)k), n);
		}
	metrics_family(f, "splitdns_answers_total", "counter",
		       "Replies sent to clients, by header RCODE.");
	for (unsigned r = 0; r < 16; r++) {
		uint64_t n = 0;
		char other[16];
		for (size_t w = 0; w < d->nworkers; w++)
			n += query_env_rcode(worker_env(d->workers[w]), r);
		if (!rcode_names[r] && !n)
			continue; /* unnamed and never sent */
		snprintf(other, sizeof(other), "RCODE%u", r);
		metric_l1(f, "splitdns_answers_total", "rcode",
			  rcode_names[r] ? rcode_names[r] : other, n);
	}
}

static void metrics_list(void *ctx, const struct block_source *src,
			 uint64_t hits)
{
	metric_l1(ctx, "splitdns_list_hits_total", "list", src->name, hits);
}

static void metrics_groups(const struct daemon *d, FILE *f,
			   const struct query_stats *all)
{
	const struct snapshot *s = d->snap;
	uint64_t q[CONF_MAX_CLIENTS + 1], b[CONF_MAX_CLIENTS + 1];
	size_t n = s->ncgroups < CONF_MAX_CLIENTS + 1 ? s->ncgroups
						       : CONF_MAX_CLIENTS + 1;

	for (size_t i = 0; i < n; i++) {
		q[i] = all->queries;
		b[i] = all->blocked;
		if (s->ncgroups > 1)
			daemon_group_counts(d, s->cgroups[i].name, &q[i],
					    &b[i]);
	}
	metrics_family(f, "splitdns_group_queries_total", "counter",
		       "Queries of each client group (default: the rest).");
	for (size_t i = 0; i < n; i++)
		metric_l1(f, "splitdns_group_queries_total", "group",
			  s->cgroups[i].name, q[i]);
	metrics_family(f, "splitdns_group_blocked_total", "counter",
		       "Blocking answers to each client group.");
	for (size_t i = 0; i < n; i++)
		metric_l1(f, "splitdns_group_blocked_total", "group",
			  s->cgroups[i].name, b[i]);
}

static void metrics_upstreams(const struct daemon *d, FILE *f)
{
	static const char *const fam[3] = {"splitdns_upstream_queries_total",
					   "splitdns_upstream_errors_total",
					   "splitdns_upstream_duration_seconds"};
	size_t nup;
	struct daemon_upstream *ups = daemon_upstreams(d, &nup);

	metrics_family(f, fam[0], "counter",
		       "Queries sent to each upstream server list.");
	metrics_family(f, fam[1], "counter",
		       "Upstream timeouts, failures and unusable replies.");
	metrics_family(f, fam[2], "histogram",
		       "Time from sending to the answer, per server list.");
	for (int part = 0; part < 3; part++)
		for (size_t i = 0; i < nup; i++) {
			const char *name = ups[i].name;
			const struct query_upstream_stats u = ups[i].st;
			if (part < 2) {
				metric_l1(f, fam[part], "server", name,
					  part ? u.errors : u.queries);
				continue;
			}
			uint64_t cum = 0;
			for (size_t b = 0; b <= QUERY_LATENCY_BUCKETS; b++) {
				cum += u.bucket[b];
				fprintf(f, "%s_bucket{server=", fam[2]);
				metrics_label(f, name);
				if (b < QUERY_LATENCY_BUCKETS)
					fprintf(f, ",le=\"%g\"} %" PRIu64 "\n",
						query_latency_ms[b] / 1000.0,
						cum);
				else
					fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n",
						cum);
			}
			fprintf(f, "%s_sum{server=", fam[2]);
			metrics_label(f, name);
			fprintf(f, "} %.3f\n%s_count{server=", u.sum_ms / 1000.0,
				fam[2]);
			metrics_label(f, name);
			fprintf(f, "} %" PRIu64 "\n", cum);
		}
	daemon_upstreams_free(ups, nup);
}

static void metrics_cache(const struct daemon *d, FILE *f)
{
	struct cache_stats cs;

	cache_get_stats(d->cache, &cs);
	metric_one(f, "splitdns_cache_entries", "gauge", "Answers in the cache.", cs.entries);
	metric_one(f, "splitdns_cache_memory_bytes", "gauge", "Bytes the cached answers take.", cs.bytes);
	metric_one(f, "splitdns_cache_hits_total", "counter", "Cache lookups that found an answer.", cs.hits);
	metric_one(f, "splitdns_cache_misses_total", "counter", "Cache lookups that found none.", cs.misses);
	metric_one(f, "splitdns_cache_evictions_total", "counter", "Answers pushed out of the cache to make room.", cs.evicted);
}

static void metrics_snapshot(const struct daemon *d, FILE *f)
{
	const struct snapshot *s = d->snap;
	size_t names = 0, bytes = 0;
	uint64_t now = loop_now_ms();

	for (size_t k = 0; k < s->nsets; k++)
		if (s->sets[k] && s->sets[k]->lists) {
			names += lists_count(s->sets[k]->lists);
			bytes += lists_memory(s->sets[k]->lists);
		}
	metric_one(f, "splitdns_snapshot_generation", "gauge", "Generation of the snapshot being served.", d->generation);
	metric_one(f, "splitdns_snapshot_age_seconds", "gauge", "Seconds since the snapshot was published.",
		   (now - d->published_ms) / 1000);
	metric_one(f, "splitdns_snapshot_local_names", "gauge", "Names with local data in the snapshot.", zone_size(s->zone));
	metric_one(f, "splitdns_snapshot_blocked_names", "gauge", "Blocked names over every block set of the snapshot.", names);
	metric_one(f, "splitdns_snapshot_block_memory_bytes", "gauge", "Heap bytes the snapshot's block sets hold.", bytes);
	metrics_family(f, "splitdns_reloads_total", "counter",
		       "Configuration reloads, by result.");
	metric_l1(f, "splitdns_reloads_total", "result", "success", d->reloads);
	metric_l1(f, "splitdns_reloads_total", "result", "failure",
		  d->reload_failures);
	metrics_family(f, "splitdns_refreshes_total", "counter",
		       "Refreshes of subscribed lists, by result.");
	metric_l1(f, "splitdns_refreshes_total", "result", "success",
		  d->refreshes);
	metric_l1(f, "splitdns_refreshes_total", "result", "unchanged",
		  d->refresh_unchanged);
	metric_l1(f, "splitdns_refreshes_total", "result", "failure",
		  d->refresh_failures);
	metrics_family(f, "splitdns_reload_duration_seconds", "gauge",
		       "How long the last reload took (0: none yet).");
	fprintf(f, "splitdns_reload_duration_seconds %.3f\n",
		d->reload_last_ms / 1000.0);
	metrics_family(f, "splitdns_refresh_duration_seconds", "gauge",
		       "How long the last list refresh took (0: none yet).");
	fprintf(f, "splitdns_refresh_duration_seconds %.3f\n",
		d->refresh_last_ms / 1000.0);
}

static void metrics_write(void *ctx, FILE *f)
{
	const struct daemon *d = ctx;
	struct query_stats s = {0};
	uint64_t inflight = 0, tls = 0;

	for (size_t w = 0; w < d->nworkers; w++) {
		worker_stats(d->workers[w], &s);
		inflight += query_env_waiting(worker_env(d->workers[w]));
		tls += worker_tls_open(d->workers[w]);
	}
	metrics_family(f, "splitdns_build_info", "gauge",
		       "The version running (always 1).");
	fprintf(f, "splitdns_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	metric_one(f, "splitdns_uptime_seconds", "gauge", "Seconds since the daemon started.",
		   (loop_now_ms() - d->started_ms) / 1000);
	metrics_queries(d, f);
	metric_one(f, "splitdns_truncated_total", "counter", "UDP replies cut to the client's size (TC=1).", s.truncated);
	metric_one(f, "splitdns_joined_total", "counter", "Queries that waited for an identical one upstream.", s.joined);
	metric_one(f, "splitdns_prefetches_total", "counter", "Background refreshes of popular cached answers.", s.prefetched);
	metric_one(f, "splitdns_inflight_queries", "gauge", "Client queries waiting for an upstream answer.", inflight);
	metrics_family(f, "splitdns_list_hits_total", "counter",
		       "Blocking decisions made by each block list.");
	daemon_each_list(d, metrics_list, f);
	metrics_groups(d, f, &s);
	metrics_cache(d, f);
	metrics_upstreams(d, f);
	metrics_snapshot(d, f);
	metric_one(f, "splitdns_tcp_connections", "gauge", "Client TCP connections open (TLS ones included).",
		   atomic_load(&((struct daemon *)ctx)->budget.open));
	metric_one(f, "splitdns_tls_connections", "gauge", "Client connections open with TLS (DoT and DoH).", tls);
}

/* access.allow of the snapshot being served, as for queries. */
static bool metrics_allowed(void *ctx, const struct sockaddr *sa)
{
	const struct daemon *d = ctx;
	return policy_client_allowed(d->snap->policy, sa);
}

/* Listen for scrapes (before the privilege drop, like the sockets). */
bool expo_start_metrics(struct daemon *d, char *err, size_t errlen)
{
	const struct conf *cfg = d->snap->cfg;
	const struct metrics_ops ops = {d, metrics_allowed, metrics_write};

	if (!cfg->metrics_on)
		return true;
	if (!(d->metrics = metrics_new(d->loop, &cfg->metrics, &ops, err,
				       errlen)))
		return false;
	log_info("metrics on http://%s/metrics", cfg->metrics.addr);
	return true;
}
