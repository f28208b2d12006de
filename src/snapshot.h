/*
 * snapshot.h - everything one load of the configuration produces, frozen:
 * the configuration, zone store, policy and blocklists, with a reference
 * count.
 *
 * A snapshot is built once (at start, or by the reload thread), never
 * written afterwards, and read by every worker loop at once without
 * locks.  Whoever holds a reference may read it; the last unref frees it.
 * Counters do not live here: they belong to the loops that write them.
 *
 * The configuration, zone store and policy sit in a base with a count of
 * its own, so that a refresh of the subscribed lists (snapshot_refresh)
 * makes a new snapshot with a new block set beside the same base,
 * without reading the configuration or the zones again.
 */
#ifndef SPLITDNS_SNAPSHOT_H
#define SPLITDNS_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "answer.h"
#include "block.h"
#include "limit.h"

struct sockaddr;

struct conf;
struct conf_block;
struct conf_client;
struct conf_prefix;
struct tlsc_trust;
struct policy;
struct tls_creds;
struct zone;

/* What one configuration load produces and its refreshes share. */
struct snapshot_base {
	atomic_uint refs;           /* snapshots pointing at it */
	struct conf *cfg;
	struct zone *zone;
	struct policy *policy;
	struct tlsc_trust *dot_trust; /* trust for tls:// and https:// servers,
					loaded by
					the first snapshot that needs it;
					NULL: none */
	struct tls_creds *tls;      /* tls.cert and tls.key as read for this
				       load; NULL: none */
};

/*
 * A client group as route() uses it.  [0] is "default", everyone whom no
 * group of clients = ( ... ) matches, with the top-level settings.
 */
struct snapshot_group {
	const char *name;               /* "default", or the group's name */
	const struct conf_client *conf; /* NULL for [0] */
	const struct conf_block *bconf; /* the block settings it uses */
	struct block_set *blocks;       /* one of sets[] (shared between
					   groups with the same names);
					   NULL: nothing blocked */
	const struct lists *lists;      /* blocks->lists, or NULL */
	unsigned set;                   /* that index in sets[] */
	struct answer_block block;      /* how its blocked names are answered */
	bool cname;                     /* block.cname */
	bool firefox_canary;            /* block.firefox_canary */
	bool icloud_private_relay;      /* as conf_block_icloud decided */
	size_t upstream;                /* upstream group of its default
					   servers (forward rules still win) */
};

struct snapshot {
	atomic_uint refs;
	uint64_t generation;        /* 1, 2, ... per successful load */
	struct snapshot_base *base; /* shared with its refreshes */
	struct conf *cfg;           /* base->cfg, base->zone, base->policy */
	struct zone *zone;
	struct policy *policy;
	struct block_set *blocks;   /* group 0's; NULL: nothing blocked */
	const struct lists *lists;  /* blocks->lists, or NULL */
	struct answer_block block;  /* how group 0's blocked names are
				       answered */
	struct snapshot_group *cgroups; /* client groups, [0] default */
	size_t ncgroups;
	struct block_set **sets;    /* [nsets] distinct block sets (owned;
				       an entry may be NULL) */
	size_t nsets;
	struct conf_prefix *match;  /* every group's match prefixes, in
				       order; match_group[i] is the group */
	unsigned *match_group;
	size_t nmatch;
	uint16_t edns_size;         /* our EDNS UDP payload size */
	int deadline_ms;            /* a client gets SERVFAIL after this */
	size_t ngroups;             /* upstream groups: [0] default, [i]
				       forward rule i - 1, then one per
				       client group with servers of its
				       own */
	struct limit_conf limits;   /* what one client may take */
	struct tlsc_trust *dot_trust; /* base->dot_trust (borrowed) */
	struct tls_creds *tls;      /* base->tls (borrowed): the listeners'
				       certificate; NULL: none */
};

/*
 * Load the configuration at path (listen_override: see conf_load) and
 * everything it names.  report (may be NULL) hears one line per
 * blocklist.  Returns a snapshot holding one reference, or NULL with
 * "file:line: message" in err.
 */
struct snapshot *snapshot_build(const char *path,
				const char *const *listen_override,
				size_t n_override, block_report_fn report,
				void *ctx, uint64_t generation, char *err,
				size_t errlen);

/*
 * A snapshot like old (same base: configuration, zones, policy) with its
 * block set built again from the lists, as they are on disk now (list
 * files and the cached copies of URL lists).  old is borrowed.  Returns
 * one reference, or NULL with a message in err.
 */
struct snapshot *snapshot_refresh(const struct snapshot *old,
				  block_report_fn report, void *ctx,
				  uint64_t generation, char *err,
				  size_t errlen);

/* Take one more reference (any thread). */
struct snapshot *snapshot_ref(struct snapshot *s);

/* Drop one reference (any thread); the last one frees.  NULL is fine. */
void snapshot_unref(struct snapshot *s);

/*
 * The client group of the client at sockaddr (NULL: group 0): the first
 * group with a prefix that holds its address.  *match (may be NULL) gets
 * the index of that prefix in the group's conf->match.  A scan over
 * every group's prefixes; no allocation, no lock.
 */
unsigned snapshot_client_group(const struct snapshot *s,
			       const struct sockaddr *sa, size_t *match);

/* The servers of upstream group g (0: default), n in *n. */
const struct conf_addr *snapshot_servers(const struct snapshot *s, size_t g,
					 size_t *n);

/* Do a and b have the same upstream groups, servers and timing, so that
 * a loop may keep its upstream connections across them? */
bool snapshot_same_upstreams(const struct snapshot *a,
			     const struct snapshot *b);

#endif
