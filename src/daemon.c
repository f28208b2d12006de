/*
 * daemon.c - the running daemon's figures summed over its workers: the
 * block lists' hits, the client groups' counts and the upstream labels'
 * health, for the SIGUSR1 line (main.c), status (ops.c) and the metrics
 * (expo.c).  It reads the counters the workers keep and owns nothing.
 */
#include <config.h>

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

/* The upstream group labels of the snapshot, each once. */
bool daemon_upstream_seen(const struct snapshot *s, size_t g, const char *name)
{
	char other[4096];

	for (size_t e = 0; e < g; e++)
		if (strcmp(query_upstream_name(s, e, other, sizeof(other)),
			   name) == 0)
			return true;
	return false;
}

void daemon_upstream_sum(const struct daemon *d, const char *name,
			 struct query_upstream_stats *u)
{
	memset(u, 0, sizeof(*u));
	for (size_t w = 0; w < d->nworkers; w++)
		query_env_upstream_stats(worker_env(d->workers[w]), name, u);
}
