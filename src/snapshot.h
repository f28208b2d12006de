/*
 * snapshot.h - everything one load of the configuration produces, frozen:
 * the configuration, zone store, policy and blocklists, with a reference
 * count.
 *
 * A snapshot is built once (at start, or by the reload thread), never
 * written afterwards, and read by every worker loop at once without
 * locks.  Whoever holds a reference may read it; the last unref frees it.
 * Counters do not live here: they belong to the loops that write them.
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

struct conf;
struct policy;
struct tls_creds;
struct zone;

struct snapshot {
	atomic_uint refs;
	uint64_t generation;        /* 1, 2, ... per successful load */
	struct conf *cfg;
	struct zone *zone;
	struct policy *policy;
	struct block_set *blocks;   /* NULL: nothing blocked */
	const struct lists *lists;  /* blocks->lists, or NULL */
	struct answer_block block;  /* how blocked names are answered */
	uint16_t edns_size;         /* our EDNS UDP payload size */
	int deadline_ms;            /* a client gets SERVFAIL after this */
	size_t ngroups;             /* upstream groups: [0] default, [i]
				       forward rule i - 1 */
	struct limit_conf limits;   /* what one client may take */
	struct tls_creds *tls;      /* tls.cert and tls.key as read for this
				       load; NULL: none */
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

/* Take one more reference (any thread). */
struct snapshot *snapshot_ref(struct snapshot *s);

/* Drop one reference (any thread); the last one frees.  NULL is fine. */
void snapshot_unref(struct snapshot *s);

/* The servers of upstream group g (0: default), n in *n. */
const struct conf_addr *snapshot_servers(const struct snapshot *s, size_t g,
					 size_t *n);

/* Do a and b have the same upstream groups, servers and timing, so that
 * a loop may keep its upstream connections across them? */
bool snapshot_same_upstreams(const struct snapshot *a,
			     const struct snapshot *b);

#endif
