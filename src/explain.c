/*
 * explain.c - the --explain report.
 *
 * The query goes through route(), the very function the daemon's pipeline
 * calls, so the report cannot drift from what the daemon does.  Only the
 * printing is particular to this file.
 */
#include <config.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "answer.h"
#include "block.h"
#include "conf.h"
#include "explain.h"
#include "lists.h"
#include "policy.h"
#include "rdata.h"
#include "route.h"
#include "snapshot.h"
#include "wire.h"
#include "zone.h"

static const char *const rcodes[] = {"NOERROR", "FORMERR", "SERVFAIL",
				     "NXDOMAIN", "NOTIMP", "REFUSED"};

static void print_name(FILE *out, const uint8_t *msg, size_t len,
		       size_t *off)
{
	uint8_t name[WIRE_NAME_MAX];
	char text[1100];
	int n = wire_read_name(msg, len, off, name);
	fputs(n < 0 ? "?" : wire_name_to_text(name, (size_t)n, text,
					       sizeof(text)),
	      out);
}

static void print_string(FILE *out, const uint8_t *p, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			fprintf(out, "\\%c", p[i]);
		else if (p[i] < ' ' || p[i] > '~')
			fprintf(out, "\\%03u", p[i]);
		else
			fputc(p[i], out);
	}
	fputc('"', out);
}

/* RDATA in presentation form for the types zone files hold; RFC 3597
 * generic form for the rest. */
static void print_rdata(FILE *out, const uint8_t *msg, size_t len,
			uint16_t type, size_t rd, uint16_t rdlen)
{
	char addr[INET6_ADDRSTRLEN];
	size_t p = rd, end = rd + rdlen;

	switch (type) {
	case WIRE_T_A:
	case WIRE_T_AAAA:
		if (rdlen == (type == WIRE_T_A ? 4 : 16)) {
			inet_ntop(type == WIRE_T_A ? AF_INET : AF_INET6,
				  msg + rd, addr, sizeof(addr));
			fputs(addr, out);
			return;
		}
		break;
	case WIRE_T_NS:
	case WIRE_T_CNAME:
	case WIRE_T_PTR:
		print_name(out, msg, len, &p);
		return;
	case WIRE_T_MX:
		fprintf(out, "%u ", wire_get16(msg + p));
		p += 2;
		print_name(out, msg, len, &p);
		return;
	case WIRE_T_SRV:
		fprintf(out, "%u %u %u ", wire_get16(msg + p),
			wire_get16(msg + p + 2), wire_get16(msg + p + 4));
		p += 6;
		print_name(out, msg, len, &p);
		return;
	case WIRE_T_SOA:
		print_name(out, msg, len, &p);
		fputc(' ', out);
		print_name(out, msg, len, &p);
		for (int i = 0; i < 5 && p + 4 <= end; i++, p += 4)
			fprintf(out, " %u", wire_get32(msg + p));
		return;
	case WIRE_T_TXT:
		while (p < end && p + 1 + msg[p] <= end) {
			print_string(out, msg + p + 1, msg[p]);
			p += 1 + (size_t)msg[p];
			if (p < end)
				fputc(' ', out);
		}
		return;
	case WIRE_T_CAA:
		if (rdlen >= 2 && 2u + msg[p + 1] <= rdlen) {
			fprintf(out, "%u %.*s ", msg[p], msg[p + 1],
				(const char *)msg + p + 2);
			print_string(out, msg + p + 2 + msg[p + 1],
				     rdlen - 2u - msg[p + 1]);
			return;
		}
		break;
	}
	fprintf(out, "\\# %u", rdlen);
	for (size_t i = rd; i < end; i++)
		fprintf(out, " %02x", msg[i]);
}

static void print_reply(FILE *out, const uint8_t *msg, size_t len)
{
	struct wire_rrs it;
	struct wire_rr rr;

	if (!wire_rrs_begin(&it, msg, len))
		return;
	unsigned rc = WIRE_RCODE(it.hdr.flags);
	fprintf(out, "  reply:  %s%s\n", rc < 6 ? rcodes[rc] : "?",
		(it.hdr.flags & WIRE_AA) ? ", authoritative (AA)" : "");
	while (wire_rrs_next(&it, &rr) && rr.section != WIRE_ADDITIONAL) {
		const char *tn = rdata_type_name(rr.type);
		size_t owner = rr.start;
		fprintf(out, "    %s",
			rr.section == WIRE_ANSWER ? "" : "(authority) ");
		print_name(out, msg, len, &owner);
		fprintf(out, " %u IN ", wire_get32(msg + rr.ttl_at));
		if (tn)
			fputs(tn, out);
		else
			fprintf(out, "TYPE%u", rr.type);
		fputc(' ', out);
		print_rdata(out, msg, len, rr.type, rr.rdata, rr.rdlen);
		fputc('\n', out);
	}
}

static void print_servers(FILE *out, const struct conf_addr *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : "", a[i].text);
}

/* Where the records used for the name come from: its own, then those of
 * each local CNAME target in turn (as answer_local follows them). */
static void print_sources(FILE *out, const struct zone *zone,
			  const uint8_t *name, size_t len, uint16_t qtype)
{
	struct zone_result r;
	const struct zone_rrset *set;

	zone_lookup(zone, name, len, &r);
	if (r.match == ZONE_NOT_LOCAL)
		return;
	fprintf(out, "  zone:   %s (%s%s)\n", r.apex->file,
		r.apex->authoritative ? "authoritative" : "not authoritative",
		r.match == ZONE_WILDCARD ? ", matched by a wildcard" : "");
	for (int step = 0; step <= ANSWER_MAX_CHAIN; step++) {
		if (r.match != ZONE_EXISTS && r.match != ZONE_WILDCARD)
			return;
		const struct zone_rrset *cname = NULL;
		size_t n = zone_rrsets(r.node, &set);
		bool direct = qtype == WIRE_T_ANY ||
			      zone_find_rrset(r.node, qtype) != NULL;
		for (size_t i = 0; i < n; i++) {
			if (set[i].type == WIRE_T_CNAME && !direct)
				cname = &set[i];
			else if (set[i].type != qtype && qtype != WIRE_T_ANY)
				continue;
			for (size_t j = 0; j < set[i].count; j++) {
				if (set[i].rdata[j].line == 0)
					fprintf(out, "  record: (synthesized "
						     "%s)\n",
						rdata_type_name(set[i].type));
				else
					fprintf(out, "  record: %s:%d (%s)\n",
						r.apex->file,
						set[i].rdata[j].line,
						rdata_type_name(set[i].type));
			}
		}
		if (!cname || qtype == WIRE_T_CNAME)
			return;
		zone_lookup(zone, cname->rdata[0].data, cname->rdata[0].len,
			    &r);
	}
}

static void print_policy(FILE *out, const struct snapshot *s,
			 const struct route_decision *rd)
{
	const struct conf *cfg = s->cfg;
	struct policy_decision d = rd->policy;
	const struct conf_client *c = s->cgroups[rd->client_group].conf;

	if (d.action == POLICY_PRIVATE) {
		fprintf(out, "  rule:   private name (private_local = true): "
			     "NXDOMAIN, never forwarded\n");
		return;
	}
	if (d.group == 0 && c && c->nservers) {
		fprintf(out,
			"  rule:   upstreams of client group '%s' "
			"(%s:%d): ",
			c->name, cfg->path, c->line);
		print_servers(out, c->servers, c->nservers);
		fprintf(out, "\n");
		return;
	}
	if (d.group == 0) {
		fprintf(out, "  rule:   default upstreams%s: ",
			cfg->servers_from_resolv ? " (from /etc/resolv.conf)"
						 : "");
		print_servers(out, cfg->servers, cfg->nservers);
		fprintf(out, "\n");
		return;
	}
	const struct conf_forward *f = &cfg->forwards[d.group - 1];
	fprintf(out, "  rule:   forward rule for '%s' (%s:%d): ", f->domain,
		cfg->path, f->line);
	if (d.action == POLICY_REFUSE)
		fprintf(out, "refuse = true: REFUSED, never forwarded");
	else
		print_servers(out, f->servers, f->nservers);
	fprintf(out, "\n");
}

/* The query packet for name and type, as a client would send it. */
static int make_query(FILE *errs, const char *name, const char *type,
		      uint8_t *pkt, size_t cap, size_t *len)
{
	struct wire_buf b = {pkt, 0, cap, false};
	char text[1100];
	uint8_t wname[WIRE_NAME_MAX];
	unsigned long qtype = WIRE_T_A;
	const char *why;

	snprintf(text, sizeof(text), "%s%s", name,
		 name[0] && name[strlen(name) - 1] == '.' ? "" : ".");
	int n = wire_name_from_text(text, NULL, 0, wname, &why);
	if (n < 0) {
		fprintf(errs, "splitdns: --explain '%s': %s\n", name, why);
		return -1;
	}
	if (type) {
		char *end;
		qtype = rdata_type_from_text(type);
		if (!qtype && strcasecmp(type, "ANY") == 0)
			qtype = WIRE_T_ANY;
		if (!qtype && (qtype = strtoul(type, &end, 10), *end || !qtype ||
					       qtype > 65535)) {
			fprintf(errs, "splitdns: --explain: unknown type "
					"'%s'\n", type);
			return -1;
		}
	}
	wire_put16(&b, 0);
	wire_put16(&b, WIRE_RD);
	wire_put16(&b, 1);
	wire_put16(&b, 0);
	wire_put16(&b, 0);
	wire_put16(&b, 0);
	wire_put_bytes(&b, wname, (size_t)n);
	wire_put16(&b, (uint16_t)qtype);
	wire_put16(&b, WIRE_CLASS_IN);
	*len = b.len;
	return 0;
}

static void print_blocked(FILE *out, const struct snapshot *s,
			  const struct wire_query *q, const uint8_t *pkt,
			  const struct route_decision *d, uint8_t *reply)
{
	const uint8_t *name = d->on_target ? d->chase.target : q->qname;
	size_t len = d->on_target ? d->chase.target_len : q->qname_len;

	const struct snapshot_group *g = &s->cgroups[d->client_group];

	fprintf(out, "  rule:   blocked%s\n",
		d->on_target ? " (the local CNAME's target)" : "");
	block_explain_conf(out, s->cfg, g->bconf, name, len, q->qtype);
	size_t n = answer_blocked(&g->block, q, pkt, s->edns_size, reply,
				  WIRE_MSG_MAX);
	print_reply(out, reply, n);
}

static void print_allowed(FILE *out, const struct snapshot *s,
			  const struct wire_query *q,
			  const struct route_decision *d)
{
	if (d->verdict != LISTS_ALLOWED)
		return;
	fprintf(out, "  allow:  an allow entry overrides the block lists\n");
	block_explain_conf(out, s->cfg, s->cgroups[d->client_group].bconf,
			   d->on_target ? d->chase.target : q->qname,
			   d->on_target ? d->chase.target_len : q->qname_len,
			   q->qtype);
}

/* With client groups: which one decided for the client at ss. */
static void print_group(FILE *out, const struct snapshot *s,
			const struct sockaddr_storage *ss,
			const struct route_decision *d)
{
	size_t m = 0;

	if (s->ncgroups < 2 || d->outsider)
		return;
	if (snapshot_client_group(s, (const struct sockaddr *)ss, &m) == 0) {
		fprintf(out, "  group:  default (no client group matches)\n");
		return;
	}
	const struct conf_client *c = s->cgroups[d->client_group].conf;
	fprintf(out, "  group:  client group %s (match %s, %s:%d)\n", c->name,
		c->match_text[m], s->cfg->path, c->line);
}

/* The client line: which address asked, and whether access let it. */
static int parse_client(FILE *errs, const char *client,
			struct sockaddr_storage *ss)
{
	struct conf_addr a;
	const char *why;

	if (!conf_parse_addr(client, 53, &a, &why)) {
		fprintf(errs, "splitdns: --client '%s': %s\n", client, why);
		return -1;
	}
	*ss = a.ss;
	return 0;
}

/* Blocking paused: what the block list would have said, and for how
 * long it does not. */
static void print_paused(FILE *out, const struct snapshot *s,
			 const struct wire_query *q,
			 const struct route_decision *d,
			 const struct pause_state *p, uint64_t now_ms)
{
	uint64_t all = pause_until(p, PAUSE_ALL);
	uint64_t group = pause_until(p, pause_slot(d->client_group));
	/* Paused for everyone and for the group: the later end counts. */
	uint64_t until = all > group ? all : group;

	if (!d->paused)
		return;
	if (until == PAUSE_FOREVER)
		fprintf(out, "  pause:  blocking paused (until resume): "
			     "the block list's answer is not given\n");
	else
		fprintf(out, "  pause:  blocking paused (%llu s left): the "
			     "block list's answer is not given\n",
			(unsigned long long)((until - now_ms + 999) / 1000));
	block_explain_conf(out, s->cfg, s->cgroups[d->client_group].bconf,
			   d->on_target ? d->chase.target : q->qname,
			   d->on_target ? d->chase.target_len : q->qname_len,
			   q->qtype);
}

int explain(FILE *out, const struct snapshot *s, const char *name,
	    const char *type, const char *client)
{
	return explain_running(out, stderr, s, name, type, client, NULL, 0,
			       NULL);
}

int explain_running(FILE *out, FILE *errs, const struct snapshot *s,
		    const char *name, const char *type, const char *client,
		    const struct pause_state *p, uint64_t now_ms,
		    struct route_decision *dout)
{
	uint8_t pkt[WIRE_HEADER_LEN + WIRE_NAME_MAX + 4];
	struct sockaddr_storage ss;
	struct route_ctx ctx = {.pkt = pkt, .transport = ROUTE_UDP,
				.pause = p, .now_ms = now_ms};
	struct route_decision d;
	struct wire_query q;
	char text[1100];

	if (make_query(errs, name, type, pkt, sizeof(pkt), &ctx.len) < 0 ||
	    (client && parse_client(errs, client, &ss) < 0))
		return 1;
	if (client)
		ctx.client = (const struct sockaddr *)&ss;
	uint8_t *reply = malloc(WIRE_MSG_MAX);
	if (!reply || !(ctx.scratch = lists_scratch_new())) {
		free(reply);
		return 1;
	}
	/* The daemon's own decision, from the daemon's own function. */
	route(s, &ctx, &q, reply, WIRE_MSG_MAX, &d);
	lists_scratch_free(ctx.scratch);
	wire_name_to_text(q.qname, q.qname_len, text, sizeof(text));
	fprintf(out, "%s %s\n", text,
		rdata_type_name(q.qtype) ? rdata_type_name(q.qtype) : type);
	if (client) {
		fprintf(out, "  client: %s, %s\n", client,
			d.outsider ? "not in access.allow"
				   : "allowed by access.allow");
		print_group(out, s, &ss, &d);
	}
	switch (d.kind) {
	case ROUTE_DROP:
	case ROUTE_ERROR:
	case ROUTE_BADKEY:
		fprintf(out, "  rule:   %s\n", d.why);
		break;
	case ROUTE_REFUSED:
		if (d.outsider || d.policy.action != POLICY_REFUSE) {
			fprintf(out, "  rule:   %s: REFUSED\n", d.why);
			break;
		}
		print_policy(out, s, &d); /* refuse = true */
		break;
	case ROUTE_PRIVATE:
	case ROUTE_FORWARD:
		print_allowed(out, s, &q, &d);
		print_paused(out, s, &q, &d, p, now_ms);
		print_policy(out, s, &d);
		break;
	case ROUTE_BLOCKED:
		if (d.on_target) {
			fprintf(out, "  rule:   local data\n");
			print_sources(out, s->zone, q.qname, q.qname_len,
				      q.qtype);
		}
		print_blocked(out, s, &q, pkt, &d, reply);
		break;
	case ROUTE_LOCAL:
	case ROUTE_CHASE:
		if (d.canary) {
			fprintf(out, "  rule:   %s\n", d.why);
			print_reply(out, reply, d.len);
			break;
		}
		fprintf(out, "  rule:   local data\n");
		print_sources(out, s->zone, q.qname, q.qname_len, q.qtype);
		print_reply(out, reply, d.len);
		if (!d.chase.target)
			break;
		fprintf(out, "  chain:  leaves local data at %s, %s:\n",
			wire_name_to_text(d.chase.target, d.chase.target_len,
					  text, sizeof(text)),
			d.kind == ROUTE_CHASE ? "resolved upstream"
					      : "not forwarded");
		print_allowed(out, s, &q, &d);
		print_paused(out, s, &q, &d, p, now_ms);
		print_policy(out, s, &d);
		break;
	}
	free(reply);
	if (dout)
		*dout = d;
	return 0;
}
