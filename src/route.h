/*
 * route.h - the one routing decision: what happens to a query.
 *
 * route() looks at a packet, the client that sent it, the snapshot and
 * whether blocking is paused (runtime state, see pause.h), and decides; it changes nothing and counts nothing.  The pipeline
 * (query.c) acts on the decision; --explain (explain.c) prints it.  Both
 * call this function, so what --explain says is what the daemon does.
 *
 * Order (splitdns.conf(5), ANSWER RULES): a packet that must not be
 * answered is dropped; a client outside access.allow is refused whatever
 * it sent; a malformed query gets FORMERR/NOTIMP/BADVERS; zone transfers
 * and classes other than IN are refused; then local data and local zones;
 * then the canaries (use-application-dns.net, mask.icloud.com,
 * resolver.arpa); then the block lists (allow entries punch holes); then
 * the forward rules (refuse, private names) and the upstream groups.  The
 * client's group (clients = ( ... )) chooses the block lists, the
 * canaries, the blocking answer and the default upstreams; forward rules
 * are the same for every group and win over a group's servers.  A
 * local CNAME chain that leaves local data is routed again for its
 * target: blocked, refused/private (the chain is answered as it is), or
 * forwarded (CHASE).  A TSIG-signed query is forwarded as it is (the
 * upstream may hold the key), but one that we would answer ourselves gets
 * BADKEY.
 */
#ifndef SPLITDNS_ROUTE_H
#define SPLITDNS_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "answer.h"
#include "lists.h"
#include "pause.h"
#include "policy.h"
#include "wire.h"

struct snapshot;

enum route_kind {
	ROUTE_DROP,    /* never answer (too short, QR=1) */
	ROUTE_ERROR,   /* answer d->rcode (FORMERR, NOTIMP, BADVERS) */
	ROUTE_REFUSED, /* answer REFUSED: d->why says which rule */
	ROUTE_LOCAL,   /* the reply is in out, d->len bytes */
	ROUTE_CHASE,   /* out holds a local CNAME chain; its target goes to
			  upstream group d->group */
	ROUTE_BLOCKED, /* answer with the blocking answer */
	ROUTE_PRIVATE, /* private name: NXDOMAIN, never forwarded */
	ROUTE_FORWARD, /* relay to upstream group d->group */
	ROUTE_BADKEY,  /* a TSIG-signed query for data we serve: NOTAUTH
			  with BADKEY (RFC 8945 5.2.2), we hold no keys */
};

enum route_transport { ROUTE_UDP, ROUTE_TCP };

/* The names devices ask to learn what this network wants (ROUTE_LOCAL). */
enum route_canary {
	ROUTE_CANARY_NONE,
	ROUTE_CANARY_FIREFOX, /* use-application-dns.net: NXDOMAIN */
	ROUTE_CANARY_ICLOUD,  /* mask.icloud.com, mask-h2.icloud.com */
	ROUTE_CANARY_DDR,     /* resolver.arpa and below: NODATA */
};

/* What route() looks at; borrowed for the call. */
struct route_ctx {
	const uint8_t *pkt;
	size_t len;
	const struct sockaddr *client; /* NULL: no access check */
	enum route_transport transport;
	struct lists_scratch *scratch; /* the caller's, for block regexes;
					  NULL: regexes not consulted */
	/* Runtime state beside the snapshot: blocking paused (NULL: never)
	 * as of now_ms, the loop's monotonic clock. */
	const struct pause_state *pause;
	uint64_t now_ms;
};

/* The decision and the trail that led to it (for --explain and logs). */
struct route_decision {
	enum route_kind kind;
	unsigned rcode;            /* ROUTE_ERROR, ROUTE_REFUSED */
	const char *why;           /* one phrase: which rule decided */
	size_t len;                /* ROUTE_LOCAL, ROUTE_CHASE: in out */
	size_t group;              /* ROUTE_FORWARD, ROUTE_CHASE */
	struct answer_chase chase; /* ROUTE_CHASE (and a LOCAL chain end) */
	/* The block lists' word on the name they were asked about (the
	 * chain's target when d->on_target): the deciding source in src. */
	enum lists_verdict verdict;
	unsigned src;
	bool on_target;
	bool outsider;             /* refused by access.allow */
	bool paused;               /* blocked by src, but blocking is
				      paused: routed as if not blocked */
	struct policy_decision policy;
	unsigned client_group;     /* index in the snapshot's cgroups */
	enum route_canary canary;  /* ROUTE_LOCAL: a canary answered */
};

/*
 * Decide for ctx->pkt.  The parsed query goes to *q (valid unless
 * ROUTE_DROP).  Local answers and chains are built into out (cap bytes,
 * WIRE_MSG_MAX is always enough).  Never fails: every packet gets a
 * decision.  Allocates nothing; safe from many threads at once, each
 * with its own ctx->scratch.
 */
void route(const struct snapshot *s, const struct route_ctx *ctx,
	   struct wire_query *q, uint8_t *out, size_t cap,
	   struct route_decision *d);

/* "drop", "error", "refused", "local", ... for logs. */
const char *route_kind_name(enum route_kind k);

#endif
