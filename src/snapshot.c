/*
 * snapshot.c - build, share and free the frozen result of one
 * configuration load.
 *
 * The reference count is the only thing in a snapshot that changes after
 * it is built.  Each holder (a worker loop, the reload thread, main) owns
 * its references explicitly; there is no global "current" pointer to race
 * on, because the publisher hands every loop a reference of its own.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "conf.h"
#include "policy.h"
#include "errf.h"
#include "snapshot.h"
#ifdef HAVE_TLS
#include "tls.h"
#endif
#include "zone.h"

/* The listeners' certificate and key, read anew at every load so that a
 * reload picks up renewed files; a bad one fails the load, and a reload
 * that fails keeps the previous snapshot, certificate included. */
static bool load_tls(struct snapshot *s, char *err, size_t errlen)
{
#ifdef HAVE_TLS
	const struct conf *cfg = s->cfg;
	char why[256];
	if (!cfg->tls_cert)
		return true;
	if (!(s->tls = tls_creds_new(cfg->tls_cert, cfg->tls_key, why,
				     sizeof(why))))
		return errf(err, errlen,
			    "%s:%d: tls.cert '%s', tls.key '%s': %s",
			    cfg->path, cfg->tls_cert_line, cfg->tls_cert,
			    cfg->tls_key, why);
#else
	(void)s;
	(void)err;
	(void)errlen;
#endif
	return true;
}

struct snapshot *snapshot_build(const char *path,
				const char *const *listen_override,
				size_t n_override, block_report_fn report,
				void *ctx, uint64_t generation, char *err,
				size_t errlen)
{
	struct snapshot *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->generation = generation;
	err[0] = '\0';
	if (!(s->cfg = conf_load(path, listen_override, n_override, err,
				 errlen)) ||
	    !(s->zone = zone_build(s->cfg, err, errlen)) ||
	    !(s->policy = policy_build(s->cfg, err, errlen)) ||
	    !load_tls(s, err, errlen))
		goto fail;
	s->blocks = block_load(s->cfg, report, ctx, err, errlen);
	if (!s->blocks && err[0])
		goto fail;
	s->lists = s->blocks ? s->blocks->lists : NULL;
	block_answer_init(s->cfg, &s->block);
	s->edns_size = (uint16_t)s->cfg->edns_size;
	s->deadline_ms = s->cfg->timeout_ms * s->cfg->tries;
	s->ngroups = s->cfg->nforwards + 1;
	s->limits = (struct limit_conf){s->cfg->limit_qps, s->cfg->limit_burst,
					s->cfg->limit_inflight,
					s->cfg->limit_slip};
	return s;
fail:
	snapshot_unref(s);
	return NULL;
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
#ifdef HAVE_TLS
	tls_creds_unref(s->tls);
#endif
	block_set_free(s->blocks);
	policy_free(s->policy);
	zone_free(s->zone);
	conf_free(s->cfg);
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
