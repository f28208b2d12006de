/*
 * route.c - the routing decision of one query, as a pure function of the
 * packet, the client and the snapshot.
 *
 * Each step is a small function that either decides (and returns true)
 * or passes the query on.  Nothing here writes to the snapshot or keeps
 * state; counting hits and building the non-local replies is the
 * pipeline's business.
 */
#include <config.h>

#include "answer.h"
#include "conf.h"
#include "lists.h"
#include "policy.h"
#include "route.h"
#include "snapshot.h"
#include "wire.h"

static void decide(struct route_decision *d, enum route_kind k,
		   unsigned rcode, const char *why)
{
	d->kind = k;
	d->rcode = rcode;
	d->why = why;
}

/* The header and question: drop or an RCODE for what cannot be served. */
static bool check_format(enum wire_verdict st, struct route_decision *d)
{
	switch (st) {
	case WIRE_OK:
		return false;
	case WIRE_DROP:
		decide(d, ROUTE_DROP, 0, "not a query");
		return true;
	case WIRE_BAD_FORMAT:
		decide(d, ROUTE_ERROR, WIRE_FORMERR, "malformed query");
		return true;
	case WIRE_BAD_OPCODE:
		decide(d, ROUTE_ERROR, WIRE_NOTIMP, "opcode not supported");
		return true;
	case WIRE_BAD_VERSION:
		decide(d, ROUTE_ERROR, WIRE_BADVERS, "EDNS version not "
						      "supported");
		return true;
	}
	return false;
}

/* RFC-less but universal: an open resolver is an amplifier.  Outsiders
 * get REFUSED whatever they sent, malformed queries included. */
static bool check_access(const struct snapshot *s,
			 const struct route_ctx *ctx,
			 struct route_decision *d)
{
	if (!ctx->client || policy_client_allowed(s->policy, ctx->client))
		return false;
	decide(d, ROUTE_REFUSED, WIRE_REFUSED, "client not in access.allow");
	d->outsider = true;
	return true;
}

/* Is name equal to suffix or below it (both wire form; name is a parsed
 * query name, so its labels are well formed)? */
static bool name_under(const uint8_t *name, size_t len, const uint8_t *suf,
		       size_t slen)
{
	size_t off = 0;

	if (len < slen)
		return false;
	while (len - off > slen)
		off += 1u + name[off];
	return len - off == slen &&
	       wire_name_equal(name + off, slen, suf, slen);
}

/* The wire forms (sizeof includes the root label). */
static const uint8_t firefox_name[] = "\x13use-application-dns\x03net";
static const uint8_t mask_name[] = "\x04mask\x06icloud\x03"
				   "com";
static const uint8_t mask_h2_name[] = "\x07mask-h2\x06icloud\x03"
				      "com";
static const uint8_t ddr_name[] = "\x08resolver\x04"
				  "arpa";

static bool is_name(const struct wire_query *q, const uint8_t *n, size_t len)
{
	return q->qname_len == len && wire_name_equal(q->qname, len, n, len);
}

/*
 * Names that devices ask to learn whether this network wants them to use
 * it, answered here whatever the block lists say (an operator's own zone
 * data for them came first):
 * - Firefox turns its DNS over HTTPS by default off when
 *   use-application-dns.net gets NXDOMAIN (Mozilla's "canary domain").
 * - Apple devices turn iCloud Private Relay off on this network when
 *   mask.icloud.com and mask-h2.icloud.com get NXDOMAIN.
 * - RFC 9462 6.1: a forwarder does not forward resolver.arpa (the
 *   upstream's designated resolvers would not name our address); 6.4:
 *   a resolver that does not serve DDR answers every name under it NODATA.
 *   So a device cannot learn the upstream's encrypted resolver from
 *   _dns.resolver.arpa SVCB and go around us.
 */
static bool check_canary(const struct snapshot *s,
			 const struct snapshot_group *g,
			 const struct wire_query *q, const uint8_t *pkt,
			 uint8_t *out, size_t cap, struct route_decision *d)
{
	struct answer_block a = {.mode = CONF_BLOCK_NXDOMAIN,
				 .ttl = g->block.ttl};

	if (g->firefox_canary &&
	    is_name(q, firefox_name, sizeof(firefox_name))) {
		d->canary = ROUTE_CANARY_FIREFOX;
		d->why =
		    "canary: use-application-dns.net (block.firefox_canary)";
	} else if (g->icloud_private_relay &&
		   (is_name(q, mask_name, sizeof(mask_name)) ||
		    is_name(q, mask_h2_name, sizeof(mask_h2_name)))) {
		d->canary = ROUTE_CANARY_ICLOUD;
		d->why = "canary: iCloud Private Relay "
			 "(block.icloud_private_relay)";
	} else if (name_under(q->qname, q->qname_len, ddr_name,
			      sizeof(ddr_name))) {
		d->canary = ROUTE_CANARY_DDR;
		d->why = "resolver.arpa: not forwarded (RFC 9462 6.1), NODATA";
		a.mode = CONF_BLOCK_NODATA;
	} else {
		return false;
	}
	d->kind = ROUTE_LOCAL;
	d->len = answer_blocked(&a, q, pkt, s->edns_size, out, cap);
	return true;
}

/* The client group's block lists for name, asked with the query's type: a
 * blocked name is blocked for every type (the answer then depends on the
 * type, see answer_blocked), except where a $dnstype rule says
 * otherwise. */
static bool check_blocked(const struct snapshot_group *g,
			  const struct route_ctx *ctx, const uint8_t *name,
			  size_t len, uint16_t qtype, struct route_decision *d)
{
	if (!g->lists)
		return false;
	d->verdict = lists_match_source(g->lists, name, len, qtype,
					ctx->scratch, &d->src);
	if (d->verdict != LISTS_BLOCKED)
		return false;
	/* A paused block list answers nothing: the name goes on to the
	 * forward rules as if no list held it. */
	if (pause_active(ctx->pause, d->client_group, ctx->now_ms)) {
		d->paused = true;
		return false;
	}
	decide(d, ROUTE_BLOCKED, 0, "block list");
	return true;
}

/* The forward rules for name: refuse, private, or an upstream group (a
 * forward rule's, else the client group's default servers). */
static void check_policy(const struct snapshot *s,
			 const struct snapshot_group *g, const uint8_t *name,
			 size_t len, uint16_t qtype, struct route_decision *d)
{
	d->policy = (struct policy_decision){POLICY_FORWARD, 0};
	policy_decide(s->policy, name, len, qtype, &d->policy);
	switch (d->policy.action) {
	case POLICY_REFUSE:
		decide(d, ROUTE_REFUSED, WIRE_REFUSED, "forward rule with "
						       "refuse = true");
		return;
	case POLICY_PRIVATE:
		decide(d, ROUTE_PRIVATE, WIRE_NXDOMAIN, "private name");
		return;
	case POLICY_FORWARD:
		d->group = d->policy.group ? d->policy.group : g->upstream;
		decide(d, ROUTE_FORWARD, 0,
		       d->policy.group ? "forward rule"
		       : d->group      ? "client group's upstreams"
				       : "default upstreams");
		return;
	}
}

/* What splitdns does not serve, whoever asks: zone transfers (a proxy
 * has no zone to transfer, and must not relay one it is not configured
 * for) and classes other than IN (version.bind in CH must not leak to the
 * upstream; local data is IN only). */
static bool check_meta(const struct wire_query *q, struct route_decision *d)
{
	if (q->zone_transfer) {
		decide(d, ROUTE_REFUSED, WIRE_REFUSED, "zone transfer (AXFR/"
						       "IXFR) not served");
		return true;
	}
	if (q->qclass != WIRE_CLASS_IN) {
		decide(d, ROUTE_REFUSED, WIRE_REFUSED, "class other than IN");
		return true;
	}
	return false;
}

/* RFC 8945 5.2.2: we hold no TSIG keys, so a signed query that we would
 * answer ourselves is for an unknown key.  Forwarded ones go as they are. */
static void check_signed(const struct wire_query *q, struct route_decision *d)
{
	if (!q->has_tsig || d->kind == ROUTE_FORWARD || d->kind == ROUTE_CHASE ||
	    d->kind == ROUTE_REFUSED)
		return;
	decide(d, ROUTE_BADKEY, WIRE_NOTAUTH, "TSIG-signed query for local "
					      "data: unknown key");
}

/* A local chain that leaves local data: route its target. */
static void route_target(const struct snapshot *s,
			 const struct snapshot_group *g,
			 const struct route_ctx *ctx,
			 const struct wire_query *q, struct route_decision *d)
{
	const uint8_t *t = d->chase.target;
	size_t tlen = d->chase.target_len;

	d->on_target = true;
	if (check_blocked(g, ctx, t, tlen, q->qtype, d))
		return;
	check_policy(s, g, t, tlen, q->qtype, d);
	if (d->kind == ROUTE_FORWARD) {
		decide(d, ROUTE_CHASE, 0, "local CNAME, target upstream");
		return;
	}
	/* Refused or private target: the chain is the answer. */
	decide(d, ROUTE_LOCAL, 0, "local data (CNAME target not forwarded)");
}

void route(const struct snapshot *s, const struct route_ctx *ctx,
	   struct wire_query *q, uint8_t *out, size_t cap,
	   struct route_decision *d)
{
	enum wire_verdict st = wire_parse_query(ctx->pkt, ctx->len, q);

	*d = (struct route_decision){.kind = ROUTE_DROP};
	if (st == WIRE_DROP) {
		check_format(st, d);
		return;
	}
	if (check_access(s, ctx, d) || check_format(st, d) ||
	    check_meta(q, d))
		return;
	/* Without client groups this is one test of s->nmatch. */
	d->client_group = snapshot_client_group(s, ctx->client, NULL);
	const struct snapshot_group *g = &s->cgroups[d->client_group];
	d->len = answer_local(s->zone, q, ctx->pkt, s->edns_size, out, cap,
			      &d->chase);
	if (d->len) {
		decide(d, ROUTE_LOCAL, 0, "local data");
		if (d->chase.target)
			route_target(s, g, ctx, q, d);
	} else if (!check_canary(s, g, q, ctx->pkt, out, cap, d) &&
		   !check_blocked(g, ctx, q->qname, q->qname_len, q->qtype,
				  d)) {
		check_policy(s, g, q->qname, q->qname_len, q->qtype, d);
	}
	check_signed(q, d);
}

const char *route_kind_name(enum route_kind k)
{
	static const char *const names[] = {
		[ROUTE_DROP] = "drop",       [ROUTE_ERROR] = "error",
		[ROUTE_REFUSED] = "refused", [ROUTE_LOCAL] = "local",
		[ROUTE_CHASE] = "chase",     [ROUTE_BLOCKED] = "blocked",
		[ROUTE_PRIVATE] = "private", [ROUTE_FORWARD] = "forward",
		[ROUTE_BADKEY] = "badkey",
	};
	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}
