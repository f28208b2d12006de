/*
 * policy.c - forward rules, private names and rebind protection.
 *
 * Private names (like dnsmasq's domain-needed and bogus-priv): single-label
 * names, the reverse zones of RFC 1918, RFC 6598, loopback, link-local and
 * RFC 4193 addresses, and the special-use domains that exist only on a
 * local network (RFC 6761, RFC 6762, RFC 8375).  Their queries would only
 * leak local information to the internet, so unless a forward rule claims
 * them they are answered NXDOMAIN here.
 */
#include <config.h>

#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "nameset.h"
#include "policy.h"
#include "wire.h"

struct policy {
	struct nameset *rules;     /* domain -> forward rule index + 1 */
	bool *refuse;              /* per rule */
	size_t nrules;
	struct nameset *private;   /* NULL when private_local is off */
	struct nameset *rebind_ok; /* NULL when rebind protection is off */
	struct conf_prefix *access;
	size_t naccess;
};

static const char *const private_domains[] = {
	"10.in-addr.arpa",	"168.192.in-addr.arpa", "127.in-addr.arpa",
	"254.169.in-addr.arpa", "0.in-addr.arpa",	"d.f.ip6.arpa",
	"c.f.ip6.arpa",		"8.e.f.ip6.arpa",	"9.e.f.ip6.arpa",
	"a.e.f.ip6.arpa",	"b.e.f.ip6.arpa",
	("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	 "ip6.arpa"),
	"home.arpa",		"local",		"localhost",
	"invalid",		"test",			"lan",
	"internal",
};

static bool add_private(struct nameset *s)
{
	const char *why;
	char name[64];

	for (size_t i = 0; i < sizeof(private_domains) / sizeof(*private_domains); i++)
		if (!nameset_add_text(s, private_domains[i], 0, &why))
			return false;
	/* 172.16.0.0/12 and 100.64.0.0/10. */
	for (int i = 16; i < 32; i++) {
		snprintf(name, sizeof(name), "%d.172.in-addr.arpa", i);
		if (!nameset_add_text(s, name, 0, &why))
			return false;
	}
	for (int i = 64; i < 128; i++) {
		snprintf(name, sizeof(name), "%d.100.in-addr.arpa", i);
		if (!nameset_add_text(s, name, 0, &why))
			return false;
	}
	return true;
}

struct policy *policy_build(const struct conf *cfg, char *err,
			    size_t errlen)
{
	struct policy *p = calloc(1, sizeof(*p));
	const char *why = "out of memory";

	if (!p || !(p->rules = nameset_new()) ||
	    !(p->refuse = calloc(cfg->nforwards + 1, sizeof(bool))))
		goto fail;
	p->nrules = cfg->nforwards;
	if (!(p->access = calloc(cfg->naccess + 1, sizeof(*p->access))))
		goto fail;
	memcpy(p->access, cfg->access, cfg->naccess * sizeof(*p->access));
	p->naccess = cfg->naccess;
	for (size_t i = 0; i < cfg->nforwards; i++) {
		p->refuse[i] = cfg->forwards[i].refuse;
		if (!nameset_add_text(p->rules, cfg->forwards[i].domain,
				      (uint32_t)i + 1, &why))
			goto fail;
	}
	if (cfg->private_local &&
	    (!(p->private = nameset_new()) || !add_private(p->private)))
		goto fail;
	if (cfg->rebind_protection) {
		if (!(p->rebind_ok = nameset_new()))
			goto fail;
		for (size_t i = 0; i < cfg->nrebind_ok; i++)
			if (!nameset_add_text(p->rebind_ok, cfg->rebind_ok[i],
					      0, &why)) {
				snprintf(err, errlen, "%s: rebind_ok '%s': %s",
					 cfg->path, cfg->rebind_ok[i], why);
				policy_free(p);
				return NULL;
			}
	}
	return p;
fail:
	snprintf(err, errlen, "%s: %s", cfg->path, why);
	policy_free(p);
	return NULL;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	nameset_free(p->rules);
	nameset_free(p->private);
	nameset_free(p->rebind_ok);
	free(p->refuse);
	free(p->access);
	free(p);
}

void policy_decide(const struct policy *p, const uint8_t *name, size_t len,
		   uint16_t qtype, struct policy_decision *d)
{
	uint32_t rule;

	d->action = POLICY_FORWARD;
	d->group = 0;
	if (nameset_match(p->rules, name, len, &rule, NULL)) {
		d->group = rule;
		if (p->refuse[rule - 1])
			d->action = POLICY_REFUSE;
		return;
	}
	/* Single-label names only for address lookups (like dnsmasq's
	 * domain-needed): "com NS" or ". DNSKEY" from a validating client
	 * must still go out. */
	bool address = qtype == WIRE_T_A || qtype == WIRE_T_AAAA ||
		       qtype == WIRE_T_ANY;
	if (p->private &&
	    ((address && wire_name_labels(name, len) == 1) ||
	     nameset_match(p->private, name, len, &rule, NULL)))
		d->action = POLICY_PRIVATE;
}

/* Addresses that a public name must not resolve to (RFC 1918, RFC 6598,
 * RFC 1122 loopback and "this network", RFC 3927, RFC 4193, RFC 4291). */
static bool private_v4(const uint8_t *a)
{
	return a[0] == 10 || a[0] == 127 || a[0] == 0 ||
	       (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	       (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
	       (a[0] == 100 && (a[1] & 0xc0) == 64);
}

static bool private_v6(const uint8_t *a)
{
	static const uint8_t zero[15] = {0};
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					   0xff, 0xff};
	static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
	if (memcmp(a, zero, 15) == 0 && a[15] <= 1)
		return true; /* :: and ::1 */
	/* An IPv4 address in IPv6 clothes: mapped (RFC 4291 2.5.5.2),
	 * compatible (2.5.5.1, deprecated), or behind the well-known NAT64
	 * prefix 64:ff9b::/96 (RFC 6052 2.1), which a DNS64 resolver
	 * synthesizes from the A record. */
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, zero, 12) == 0 ||
	    memcmp(a, nat64, 12) == 0)
		return private_v4(a + 12);
	/* ULA fc00::/7, link-local fe80::/10, site-local fec0::/10 (RFC
	 * 3879: deprecated, still routed inside some sites). */
	return (a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0x80) == 0x80);
}

/* The ipv4hint and ipv6hint of a SVCB or HTTPS record (RFC 9460 7.3):
 * a client may connect to them instead of the A/AAAA answer. */
static bool private_hints(const uint8_t *m, size_t mlen,
			  const struct wire_rr *rr)
{
	size_t p = rr->rdata, end = rr->rdata + rr->rdlen;

	if (end > mlen || rr->rdlen < 3)
		return false;
	p += 2; /* SvcPriority */
	/* TargetName, never compressed (RFC 9460 2.2). */
	for (int hops = 0; p < end && m[p] != 0; hops++) {
		if (m[p] > 63 || hops > 127)
			return false;
		p += 1u + m[p];
	}
	p++;
	while (p + 4 <= end) {
		uint16_t key = wire_get16(m + p), vlen = wire_get16(m + p + 2);
		p += 4;
		if (vlen > end - p)
			return false;
		for (size_t i = 0; key == 4 && i + 4 <= vlen; i += 4)
			if (private_v4(m + p + i))
				return true;
		for (size_t i = 0; key == 6 && i + 16 <= vlen; i += 16)
			if (private_v6(m + p + i))
				return true;
		p += vlen;
	}
	return false;
}

bool policy_rebind(const struct policy *p, size_t group, const uint8_t *name,
		   size_t len, const uint8_t *reply, size_t rlen)
{
	struct wire_rrs it;
	struct wire_rr rr;
	uint32_t v;

	if (!p->rebind_ok || (group != 0 && group <= p->nrules) ||
	    nameset_match(p->rebind_ok, name, len, &v, NULL) ||
	    !wire_rrs_begin(&it, reply, rlen))
		return false;
	while (wire_rrs_next(&it, &rr) && rr.section == WIRE_ANSWER)
		if ((rr.type == WIRE_T_A && rr.rdlen == 4 &&
		     private_v4(reply + rr.rdata)) ||
		    (rr.type == WIRE_T_AAAA && rr.rdlen == 16 &&
		     private_v6(reply + rr.rdata)) ||
		    ((rr.type == WIRE_T_SVCB || rr.type == WIRE_T_HTTPS) &&
		     private_hints(reply, rlen, &rr)))
			return true;
	return false;
}

static bool in_prefix(const struct conf_prefix *pf, const uint8_t *a)
{
	int full = pf->bits / 8, rest = pf->bits % 8;
	if (memcmp(pf->addr, a, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (pf->addr[full] & mask) == (a[full] & mask);
}

size_t policy_prefix_find(const struct conf_prefix *prefixes, size_t n,
			  const void *sockaddr)
{
	const struct sockaddr_storage *ss = sockaddr;
	const uint8_t *a;
	int family = ss->ss_family;
	uint8_t v4[4];

	if (family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sockaddr)->sin_addr;
	} else if (family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sockaddr)->sin6_addr.s6_addr;
		/* An IPv4 client on a dual-stack socket. */
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0,
						   0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(a, mapped, 12) == 0) {
			memcpy(v4, a + 12, 4);
			a = v4;
			family = AF_INET;
		}
	} else {
		return n;
	}
	for (size_t i = 0; i < n; i++)
		if (prefixes[i].family == family && in_prefix(&prefixes[i], a))
			return i;
	return n;
}

bool policy_client_allowed(const struct policy *p, const void *sockaddr)
{
	return policy_prefix_find(p->access, p->naccess, sockaddr) < p->naccess;
}
