/*
 * daemon.c - the running daemon's figures summed over its workers: the
 * block lists' hits, the client groups' counts and the upstream labels'
 * health, for the SIGUSR1 line (main.c), status (ops.c) and the metrics
 * (expo.c).  It reads the counters the workers keep and owns nothing.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "daemon.h"
#include "query.h"
#include "snapshot.h"
#include "worker.h"

/* Does a block set before set k hold a source called name? */
static bool named_before(const struct snapshot *s, size_t k, const char *name)
{
	for (size_t e = 0; e < k; e++)
		for (unsigned j = 0; s->sets[e] && j < s->sets[e]->nsrc; j++)
			if (strcmp(s->sets[e]->src[j].name, name) == 0)
				return true;
	return false;
}

/* Every block source of every set, each name once (a list that several
 * client groups' block sets hold is counted over all of them), with its
 * hits summed over the workers. */
void daemon_each_list(const struct daemon *d,
		      void (*fn)(void *ctx, const struct block_source *src,
				 uint64_t hits),
		      void *ctx)
{
	const struct snapshot *s = d->snap;

	for (size_t k = 0; k < s->nsets; k++) {
		const struct block_set *b = s->sets[k];
		for (unsigned i = 0; b && i < b->nsrc; i++) {
			if (named_before(s, k, b->src[i].name))
				continue;
			uint64_t hits = 0;
			for (size_t w = 0; w < d->nworkers; w++)
				hits += worker_hits(d->workers[w],
						    b->src[i].name);
			fn(ctx, &b->src[i], hits);
		}
	}
}

/* Queries and blocking answers of the client group called name, summed
 * over the workers. */
void daemon_group_counts(const struct daemon *d, const char *name,
			 uint64_t *queries, uint64_t *blocked)
{
	*queries = *blocked = 0;
	for (size_t w = 0; w < d->nworkers; w++)
		worker_group_stats(d->workers[w], name, queries, blocked);
}

static int by_name(const void *a, const void *b)
{
	const struct daemon_upstream *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->first > y->first) - (x->first < y->first);
}

static int by_first(const void *a, const void *b)
{
	const struct daemon_upstream *x = a, *y = b;
	return (x->first > y->first) - (x->first < y->first);
}

struct adding {
	struct daemon_upstream *u;
	size_t n;
};

/* A worker's counters of one upstream group, added to its label. */
static void add_group(void *ctx, const char *name,
		      const struct query_upstream_stats *st)
{
	struct adding *a = ctx;
	size_t lo = 0, hi = a->n;

	/* The first entry whose name is not below name. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(a->u[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == a->n || strcmp(a->u[lo].name, name) != 0)
		return; /* a label of another snapshot */
	struct query_upstream_stats *t = &a->u[lo].st;
	t->queries += st->queries;
	t->errors += st->errors;
	t->sum_ms += st->sum_ms;
	for (size_t b = 0; b <= QUERY_LATENCY_BUCKETS; b++)
		t->bucket[b] += st->bucket[b];
}

struct daemon_upstream *daemon_upstreams(const struct daemon *d, size_t *n)
{
	const struct snapshot *s = d->snap;
	struct daemon_upstream *u = calloc(s->ngroups ? s->ngroups : 1,
					   sizeof(*u));
	char name[4096];
	size_t k = 0;

	*n = 0;
	if (!u)
		return NULL;
	for (size_t g = 0; g < s->ngroups; g++) {
		query_upstream_name(s, g, name, sizeof(name));
		if (!name[0])
			continue;
		if (!(u[k].name = strdup(name))) {
			daemon_upstreams_free(u, k);
			return NULL;
		}
		u[k++].first = g;
	}
	qsort(u, k, sizeof(*u), by_name);
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		if (m && strcmp(u[m - 1].name, u[i].name) == 0) {
			free(u[i].name); /* a later group with that label */
			continue;
		}
		u[m++] = u[i];
	}
	struct adding a = {u, m};
	for (size_t w = 0; w < d->nworkers; w++)
		query_env_upstream_each(worker_env(d->workers[w]), add_group,
					&a);
	qsort(u, m, sizeof(*u), by_first);
	*n = m;
	return u;
}

void daemon_upstreams_free(struct daemon_upstream *u, size_t n)
{
	for (size_t i = 0; u && i < n; i++)
		free(u[i].name);
	free(u);
}
