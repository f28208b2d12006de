/*
 * snapshot.c - build, share and free the frozen result of one
 * configuration load.
 *
 * The reference count is the only thing in a snapshot that changes after
 * it is built.  Each holder (a worker loop, the reload thread, main) owns
 * its references explicitly; there is no global "current" pointer to race
 * on, because the publisher hands every loop a reference of its own.
 * The base (configuration, zones, policy) is counted by the snapshots
 * that share it, and freed with the last of them.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "conf.h"
#include "policy.h"
#include "snapshot.h"
#include "zone.h"

static void base_unref(struct snapshot_base *b)
{
	if (!b || atomic_fetch_sub_explicit(&b->refs, 1,
					    memory_order_acq_rel) != 1)
		return;
	policy_free(b->policy);
	zone_free(b->zone);
	conf_free(b->cfg);
	free(b);
}

/* A new snapshot on base (whose reference it takes over), with a block
 * set loaded now. */
static struct snapshot *assemble(struct snapshot_base *base,
				 block_report_fn report, void *ctx,
				 uint64_t generation, char *err, size_t errlen)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	struct conf *cfg = base->cfg;

	if (!s) {
		base_unref(base);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->generation = generation;
	s->base = base;
	s->cfg = cfg;
	s->zone = base->zone;
	s->policy = base->policy;
	s->blocks = block_load(cfg, report, ctx, err, errlen);
	if (!s->blocks && err[0]) {
		snapshot_unref(s);
		return NULL;
	}
	s->lists = s->blocks ? s->blocks->lists : NULL;
	block_answer_init(cfg, &s->block);
	s->edns_size = (uint16_t)cfg->edns_size;
	s->deadline_ms = cfg->timeout_ms * cfg->tries;
	s->ngroups = cfg->nforwards + 1;
	s->limits = (struct limit_conf){cfg->limit_qps, cfg->limit_burst,
					cfg->limit_inflight, cfg->limit_slip};
	return s;
}

struct snapshot *snapshot_build(const char *path,
				const char *const *listen_override,
				size_t n_override, block_report_fn report,
				void *ctx, uint64_t generation, char *err,
				size_t errlen)
{
	struct snapshot_base *b = calloc(1, sizeof(*b));

	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&b->refs, 1);
	err[0] = '\0';
	if (!(b->cfg = conf_load(path, listen_override, n_override, err,
				 errlen)) ||
	    !(b->zone = zone_build(b->cfg, err, errlen)) ||
	    !(b->policy = policy_build(b->cfg, err, errlen))) {
		base_unref(b);
		return NULL;
	}
	return assemble(b, report, ctx, generation, err, errlen);
}

struct snapshot *snapshot_refresh(const struct snapshot *old,
				  block_report_fn report, void *ctx,
				  uint64_t generation, char *err,
				  size_t errlen)
{
	atomic_fetch_add_explicit(&old->base->refs, 1, memory_order_relaxed);
	err[0] = '\0';
	return assemble(old->base, report, ctx, generation, err, errlen);
}

struct snapshot *snapshot_ref(struct snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void snapshot_unref(struct snapshot *s)
{
	if (!s)
		return;
	/* Release: our reads of s happen before the free in another
	 * thread; acquire on the last one: theirs happen before ours. */
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	block_set_free(s->blocks);
	base_unref(s->base);
	free(s);
}

const struct conf_addr *snapshot_servers(const struct snapshot *s, size_t g,
					 size_t *n)
{
	if (g == 0) {
		*n = s->cfg->nservers;
		return s->cfg->servers;
	}
	*n = s->cfg->forwards[g - 1].nservers;
	return s->cfg->forwards[g - 1].servers;
}

bool snapshot_same_upstreams(const struct snapshot *a,
			     const struct snapshot *b)
{
	if (a->cfg->timeout_ms != b->cfg->timeout_ms ||
	    a->cfg->tries != b->cfg->tries || a->ngroups != b->ngroups)
		return false;
	for (size_t g = 0; g < a->ngroups; g++) {
		size_t na, nb;
		const struct conf_addr *sa = snapshot_servers(a, g, &na);
		const struct conf_addr *sb = snapshot_servers(b, g, &nb);
		if (na != nb)
			return false;
		for (size_t i = 0; i < na; i++)
			if (strcmp(sa[i].text, sb[i].text) != 0)
				return false;
	}
	return true;
}
