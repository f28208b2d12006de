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
#include "tlsc.h"
#include "errf.h"
#include "policy.h"
#include "snapshot.h"
#ifdef HAVE_TLS
#include "tls.h"
#endif
#include "zone.h"

/* The listeners' certificate and key, read anew at every load (not at a
 * refresh of the block lists, which shares the base) so that a reload
 * picks up renewed files; a bad one fails the load, and a reload
 * that fails keeps the previous snapshot, certificate included. */
static bool load_tls(struct snapshot_base *b, char *err, size_t errlen)
{
#ifdef HAVE_TLS
	const struct conf *cfg = b->cfg;
	char why[256];
	if (!cfg->tls_cert)
		return true;
	if (!(b->tls = tls_creds_new(cfg->tls_cert, cfg->tls_key, why,
				     sizeof(why))))
		return errf(err, errlen,
			    "%s:%d: tls.cert '%s', tls.key '%s': %s",
			    cfg->path, cfg->tls_cert_line, cfg->tls_cert,
			    cfg->tls_key, why);
#else
	(void)b;
	(void)err;
	(void)errlen;
#endif
	return true;
}


/* Load the trust for tls:// and https:// servers once per configuration load, here
 * (off the worker loops), when some upstream group names one; a refresh
 * of the block lists shares its base's. */
static bool snapshot_tls(struct snapshot *s, char *err, size_t errlen)
{
	const struct conf *cfg = s->cfg;
	bool any = false;

	if (s->base->dot_trust) {
		s->dot_trust = s->base->dot_trust;
		return true;
	}
	for (size_t g = 0; g < s->ngroups && !any; g++) {
		size_t n;
		const struct conf_addr *a = snapshot_servers(s, g, &n);
		for (size_t i = 0; i < n; i++)
			any = any || a[i].kind == CONF_TLS ||
			      a[i].kind == CONF_HTTPS;
	}
	if (!any)
		return true;
#ifdef HAVE_TLS
	char why[512];
	if ((s->dot_trust = s->base->dot_trust =
		 tlsc_trust_new(cfg->tls_ca, why, sizeof(why))))
		return true;
	if (cfg->tls_ca)
		errf(err, errlen, "%s:%d: %s", cfg->path, cfg->tls_ca_line, why);
	else
		errf(err, errlen, "%s: %s", cfg->path, why);
#else
	/* conf_parse_server refuses tls:// in such a build. */
	errf(err, errlen, "%s: tls:// upstreams need TLS support", cfg->path);
#endif
	return false;
}

static void group_settings(struct snapshot_group *g, const struct conf_block *b)
{
	g->bconf = b;
	block_answer_of(b, &g->block);
	g->cname = b->cname;
	g->firefox_canary = b->firefox_canary;
	g->icloud_private_relay = conf_block_icloud(b);
}

/* One block set per distinct list of names: a client group whose lists,
 * domains and allow entries are those of an earlier group shares its
 * set (a guest group with other servers costs no memory for lists). */
static bool build_sets(struct snapshot *s, block_report_fn report, void *ctx,
		       char *err, size_t errlen)
{
	for (size_t i = 0; i < s->ncgroups; i++) {
		struct snapshot_group *g = &s->cgroups[i];
		size_t j = 0;
		while (j < i &&
		       !conf_block_same_names(s->cgroups[j].bconf, g->bconf))
			j++;
		if (j < i) {
			g->set = s->cgroups[j].set;
		} else {
			g->set = (unsigned)s->nsets;
			err[0] = '\0';
			s->sets[s->nsets] = block_load_conf(
			    s->cfg, g->bconf, report, ctx, err, errlen);
			if (!s->sets[s->nsets] && err[0])
				return false;
			s->nsets++;
		}
		g->blocks = s->sets[g->set];
		g->lists = g->blocks ? g->blocks->lists : NULL;
	}
	return true;
}

/* Group 0 and one per clients entry; their prefixes in one array for
 * route()'s scan; an upstream group for each that has servers. */
static bool build_groups(struct snapshot *s, block_report_fn report, void *ctx,
			 char *err, size_t errlen)
{
	const struct conf *cfg = s->cfg;
	size_t nmatch = 0;

	s->ncgroups = cfg->nclients + 1;
	for (size_t i = 0; i < cfg->nclients; i++)
		nmatch += cfg->clients[i].nmatch;
	if (!(s->cgroups = calloc(s->ncgroups, sizeof(*s->cgroups))) ||
	    !(s->sets = calloc(s->ncgroups, sizeof(*s->sets))) ||
	    !(s->match = calloc(nmatch + 1, sizeof(*s->match))) ||
	    !(s->match_group = calloc(nmatch + 1, sizeof(*s->match_group)))) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	s->cgroups[0].name = "default";
	group_settings(&s->cgroups[0], &cfg->block);
	s->ngroups = cfg->nforwards + 1;
	for (size_t i = 0; i < cfg->nclients; i++) {
		const struct conf_client *c = &cfg->clients[i];
		struct snapshot_group *g = &s->cgroups[i + 1];
		g->name = c->name;
		g->conf = c;
		group_settings(g, &c->block);
		if (c->nservers)
			g->upstream = s->ngroups++;
		for (size_t j = 0; j < c->nmatch; j++) {
			s->match[s->nmatch] = c->match[j];
			s->match_group[s->nmatch++] = (unsigned)i + 1;
		}
	}
	return build_sets(s, report, ctx, err, errlen);
}

static void base_unref(struct snapshot_base *b)
{
	if (!b || atomic_fetch_sub_explicit(&b->refs, 1,
					    memory_order_acq_rel) != 1)
		return;
#ifdef HAVE_TLS
	tlsc_trust_unref(b->dot_trust);
	tls_creds_unref(b->tls);
#endif
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
	s->tls = base->tls;
	if (!build_groups(s, report, ctx, err, errlen)) {
		snapshot_unref(s);
		return NULL;
	}
	if (!snapshot_tls(s, err, errlen)) {
		snapshot_unref(s);
		return NULL;
	}
	s->blocks = s->cgroups[0].blocks;
	s->lists = s->cgroups[0].lists;
	s->block = s->cgroups[0].block;
	s->edns_size = (uint16_t)cfg->edns_size;
	s->deadline_ms = cfg->timeout_ms * cfg->tries;
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
	    !(b->policy = policy_build(b->cfg, err, errlen)) ||
	    !load_tls(b, err, errlen)) {
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
	for (size_t i = 0; i < s->nsets; i++)
		block_set_free(s->sets[i]);
	free(s->sets);
	free(s->cgroups);
	free(s->match);
	free(s->match_group);
	base_unref(s->base);
	free(s);
}

unsigned snapshot_client_group(const struct snapshot *s,
			       const struct sockaddr *sa, size_t *match)
{
	if (!sa || s->nmatch == 0)
		return 0;
	size_t i = policy_prefix_find(s->match, s->nmatch, sa);
	if (i == s->nmatch)
		return 0;
	unsigned g = s->match_group[i];
	if (match) {
		/* The group's prefixes sit together, in order. */
		size_t first = i;
		while (first > 0 && s->match_group[first - 1] == g)
			first--;
		*match = i - first;
	}
	return g;
}

const struct conf_addr *snapshot_servers(const struct snapshot *s, size_t g,
					 size_t *n)
{
	if (g == 0) {
		*n = s->cfg->nservers;
		return s->cfg->servers;
	}
	if (g <= s->cfg->nforwards) {
		*n = s->cfg->forwards[g - 1].nservers;
		return s->cfg->forwards[g - 1].servers;
	}
	for (size_t i = 1; i < s->ncgroups; i++)
		if (s->cgroups[i].upstream == g) {
			*n = s->cgroups[i].conf->nservers;
			return s->cgroups[i].conf->servers;
		}
	*n = 0;
	return NULL;
}

bool snapshot_same_upstreams(const struct snapshot *a,
			     const struct snapshot *b)
{
	if (a->cfg->timeout_ms != b->cfg->timeout_ms ||
	    a->cfg->tries != b->cfg->tries || a->ngroups != b->ngroups)
		return false;
	/* tls:// upstreams are made with the trust and limits of tls. */
	if (a->cfg->tls_idle_timeout_ms != b->cfg->tls_idle_timeout_ms ||
	    a->cfg->tls_max_queries != b->cfg->tls_max_queries ||
	    !a->cfg->tls_ca != !b->cfg->tls_ca ||
	    (a->cfg->tls_ca && strcmp(a->cfg->tls_ca, b->cfg->tls_ca) != 0))
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
