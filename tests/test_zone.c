/*
 * test_zone.c - unit tests for the zone store (src/zone.c), local answers
 * (src/answer.c) and record data (src/rdata.c).
 *
 * The configuration is built by hand in memory (no files): struct conf
 * with its conf_zone and conf_record arrays, all on the heap so that
 * conf_free() releases them.  Replies are read back with a small parser
 * of our own built on wire_read_name and wire_skip_rr.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/answer.h"
#include "../src/conf.h"
#include "../src/rdata.h"
#include "../src/wire.h"
#include "../src/zone.h"
#include "tap.h"

/* A name literal as (pointer, length), its NUL being the root label. */
#define N(s) (const uint8_t *)(s), sizeof(s)

/* ---- building a configuration by hand ---------------------------------- */

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

static struct conf *cfg_new(void)
{
	struct conf *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->path = xstrdup("/test/splitdns.conf");
	return c;
}

/* Add a zone; returns its index (pointers move as zones are added). */
static size_t add_zone(struct conf *c, const char *path, const char *origin,
		       bool authoritative, int64_t ttl, int origin_line)
{
	struct conf_zone *z = realloc(c->zones, (c->nzones + 1) * sizeof(*z));
	if (!z)
		abort();
	c->zones = z;
	z = &c->zones[c->nzones];
	memset(z, 0, sizeof(*z));
	z->path = xstrdup(path);
	z->line = (int)c->nzones + 1;
	z->origin = xstrdup(origin);
	z->origin_line = origin_line;
	z->ttl = ttl;
	z->authoritative = authoritative;
	return c->nzones++;
}

static void rec(struct conf *c, size_t zi, int line, const char *name,
		const char *type, const char *data, int64_t ttl)
{
	struct conf_zone *z = &c->zones[zi];
	struct conf_record *r =
	    realloc(z->records, (z->nrecords + 1) * sizeof(*r));
	if (!r)
		abort();
	z->records = r;
	r = &z->records[z->nrecords++];
	r->name = xstrdup(name);
	r->type = xstrdup(type);
	r->data = xstrdup(data);
	r->ttl = ttl;
	r->line = line;
}

/* ---- lookups ----------------------------------------------------------- */

static void lookup(const struct zone *z, const char *text,
		   struct zone_result *r)
{
	uint8_t name[WIRE_NAME_MAX];
	const char *why;
	int n = wire_name_from_text(text, NULL, 0, name, &why);
	if (n < 0) {
		diag("bad test name %s: %s", text, why);
		abort();
	}
	zone_lookup(z, name, (size_t)n, r);
}

static const char *const match_names[] = {"NOT_LOCAL", "EXISTS", "WILDCARD",
					  "NXDOMAIN"};

/* Look text up, expect match; returns the result for further checks. */
static struct zone_result expect_match(const struct zone *z, const char *text,
				       enum zone_match want)
{
	struct zone_result r;
	char name[300];

	lookup(z, text, &r);
	snprintf(name, sizeof(name), "lookup %s -> %s", text,
		 match_names[want]);
	if (!ok(r.match == want, "%s", name))
		diag("got %s", match_names[r.match]);
	return r;
}

static bool apex_is(const struct zone_result *r, const uint8_t *name,
		    size_t len)
{
	return r->apex &&
	       wire_name_equal(r->apex->name, r->apex->name_len, name, len);
}

/* ---- queries and replies ----------------------------------------------- */

struct query {
	uint8_t pkt[512];
	size_t len;
	struct wire_query q;
};

/* A query for text/type with flags; opt_size < 0: no OPT. */
static void make_query(struct query *qq, unsigned id, unsigned flags,
		       const char *text, unsigned type, unsigned qclass,
		       int opt_size, bool do_bit)
{
	uint8_t name[WIRE_NAME_MAX];
	const char *why;
	int n = wire_name_from_text(text, NULL, 0, name, &why);
	uint8_t *p = qq->pkt;

	if (n < 0)
		abort();
	memset(p, 0, 12);
	wire_set16(p, (uint16_t)id);
	wire_set16(p + 2, (uint16_t)flags);
	wire_set16(p + 4, 1);
	wire_set16(p + 10, opt_size >= 0 ? 1 : 0);
	memcpy(p + 12, name, (size_t)n);
	size_t o = 12 + (size_t)n;
	wire_set16(p + o, (uint16_t)type);
	wire_set16(p + o + 2, (uint16_t)qclass);
	o += 4;
	if (opt_size >= 0) {
		/* Root owner, type OPT, size, ext-rcode 0, version 0, DO,
		 * no options. */
		uint8_t fixed[11] = {0, 0, 41};
		wire_set16(fixed + 3, (uint16_t)opt_size);
		fixed[7] = do_bit ? 0x80 : 0;
		memcpy(p + o, fixed, sizeof(fixed));
		o += sizeof(fixed);
	}
	qq->len = o;
	if (wire_parse_query(qq->pkt, qq->len, &qq->q) != WIRE_OK)
		abort();
}

struct rr {
	uint8_t owner[WIRE_NAME_MAX];
	size_t owner_len;
	uint16_t type, rclass;
	uint32_t ttl;
	const uint8_t *rdata;
	uint16_t rdlen;
};

struct reply {
	struct wire_header h;
	size_t len;
	const uint8_t *msg;
	uint8_t qname[WIRE_NAME_MAX];
	size_t qname_len;
	size_t question_end;
	struct rr rr[64];
	size_t nrr;
};

/* Read a whole reply; false when any part is malformed or bytes are left
 * over.  Counts above 64 records are refused. */
static bool parse_reply(const uint8_t *m, size_t len, struct reply *r)
{
	size_t off = WIRE_HEADER_LEN;

	memset(r, 0, sizeof(*r));
	r->msg = m;
	r->len = len;
	if (!wire_read_header(m, len, &r->h))
		return false;
	if (r->h.qdcount > 1)
		return false;
	if (r->h.qdcount == 1) {
		int n = wire_read_name(m, len, &off, r->qname);
		if (n < 0 || len - off < 4)
			return false;
		r->qname_len = (size_t)n;
		off += 4;
	}
	r->question_end = off;
	size_t total = (size_t)r->h.ancount + r->h.nscount + r->h.arcount;
	if (total > 64)
		return false;
	for (size_t i = 0; i < total; i++) {
		struct rr *x = &r->rr[i];
		size_t start = off, name_off = off, rd;
		int n = wire_read_name(m, len, &name_off, x->owner);
		if (n < 0 ||
		    !wire_skip_rr(m, len, &off, &x->type, &rd, &x->rdlen))
			return false;
		x->owner_len = (size_t)n;
		x->rclass = wire_get16(m + name_off + 2);
		x->ttl = wire_get32(m + name_off + 4);
		x->rdata = m + rd;
		(void)start;
	}
	r->nrr = total;
	return off == len;
}

/* Ask z; parse the reply into r.  Returns answer_local's length. */
static size_t ask(const struct zone *z, const struct query *qq, uint8_t *out,
		  size_t cap, struct reply *r, struct answer_chase *chase)
{
	size_t n = answer_local(z, &qq->q, qq->pkt, 1232, out, cap, chase);
	if (n && !parse_reply(out, n, r))
		diag("reply of %zu bytes does not parse", n);
	return n;
}

static bool rr_is(const struct rr *x, const uint8_t *owner, size_t olen,
		  uint16_t type, uint32_t ttl, const void *rd, size_t rdlen)
{
	bool good = x->owner_len == olen &&
		    memcmp(x->owner, owner, olen) == 0 && x->type == type &&
		    x->rclass == WIRE_CLASS_IN && x->ttl == ttl &&
		    x->rdlen == rdlen && memcmp(x->rdata, rd, rdlen) == 0;
	if (!good) {
		char t[1100];
		wire_name_to_text(x->owner, x->owner_len, t, sizeof(t));
		diag("record: owner %s type %u class %u ttl %u rdlen %u", t,
		     x->type, x->rclass, x->ttl, x->rdlen);
		tap_hex("rdata", x->rdata, x->rdlen);
	}
	return good;
}

#define RCODE(r) ((r).h.flags & 0xf)

/* ---- the test data ----------------------------------------------------- */

#define HOME "\4Home\3Lab" /* the origin as written, with its case */
#define CORP "\4corp\3lab"

/* "Home.Lab. hostmaster.Home.Lab. 1 3600 600 86400 300" */
static const uint8_t home_soa[] = HOME "\0"
				       "\12hostmaster" HOME "\0"
				       "\0\0\0\1"
				       "\0\0\16\20"
				       "\0\0\2\130"
				       "\0\1\121\200"
				       "\0\0\1\54";

/* "ns1 hostmaster 2024010101 7200 900 1209600 60" under corp.lab. */
static const uint8_t corp_soa[] = "\3ns1" CORP "\0"
				  "\12hostmaster" CORP "\0"
				  "\170\243\361\165"
				  "\0\0\34\40"
				  "\0\0\3\204"
				  "\0\22\165\0"
				  "\0\0\0\74";

static struct conf *main_config(void)
{
	struct conf *c = cfg_new();
	size_t h = add_zone(c, "/zones/home.zone", "Home.Lab", false, 300, 1);
	rec(c, h, 3, "@", "A", "192.168.1.1", -1);
	rec(c, h, 4, "nas", "A", "192.168.1.10", 60);
	rec(c, h, 5, "nas", "A", "192.168.1.11", 120);
	rec(c, h, 6, "NAS", "A", "192.168.1.10", -1); /* duplicate */
	rec(c, h, 7, "www", "CNAME", "nas", -1);
	rec(c, h, 8, "x.sub.k8s", "A", "10.0.0.1", -1);
	rec(c, h, 9, "*.k8s", "A", "10.0.0.2", -1);
	rec(c, h, 10, "ext", "CNAME", "www.example.com.", -1);
	rec(c, h, 11, "loop1", "CNAME", "loop2", -1);
	rec(c, h, 12, "loop2", "CNAME", "LOOP1", -1);
	rec(c, h, 13, "c1", "CNAME", "c2", -1);
	rec(c, h, 14, "c2", "CNAME", "www", -1);
	rec(c, h, 15, "txt1", "TXT", "v=spf1 -all", -1);
	rec(c, h, 17, "txt3", "TXT", "\"a b\" \"c\"", -1);
	rec(c, h, 18, "mail", "MX", "10 mx1", -1);
	rec(c, h, 19, "_sip._udp", "SRV", "0 5 5060 sip", -1);
	rec(c, h, 20, "@", "CAA", "0 issue \"letsencrypt.org\"", -1);
	rec(c, h, 21, "nas", "AAAA", "fd00::10", -1);
	rec(c, h, 22, "tocorp", "CNAME", "nothere.corp.lab.", -1);
	rec(c, h, 23, "tocorphost", "CNAME", "host.corp.lab.", -1);
	rec(c, h, 24, "wc", "CNAME", "foo.k8s", -1);
	{
		char long_txt[301];
		memset(long_txt, 'x', 300);
		long_txt[300] = '\0';
		rec(c, h, 16, "txt2", "TXT", long_txt, -1);
	}

	size_t k = add_zone(c, "/zones/corp.zone", "corp.lab.", true, 600, 1);
	rec(c, k, 3, "@", "SOA",
	    "ns1 hostmaster 2024010101 7200 900 1209600 60", 3600);
	rec(c, k, 4, "host", "A", "10.1.1.2", -1);
	rec(c, k, 5, "*.wild", "A", "10.1.1.3", -1);
	rec(c, k, 6, "x.sub.wild", "A", "10.1.1.4", -1);
	rec(c, k, 7, "a.b.c", "AAAA", "::1", -1);
	rec(c, k, 8, "host", "TXT", "hello", 10);

	size_t t = add_zone(c, "/zones/tiny.zone", "tiny.lab", true, 120, 1);
	rec(c, t, 2, "@", "SOA", "ns hm 1 2 3 4 300", 30);

	add_zone(c, "/zones/empty.zone", "empty.lab", false, 45, 1);
	return c;
}

/* ---- zone_build and zone_lookup ---------------------------------------- */

static void test_lookup(const struct zone *z)
{
	struct zone_result r;
	const struct zone_rrset *set;

	r = expect_match(z, "NAS.home.LAB.", ZONE_EXISTS);
	set = r.node ? zone_find_rrset(r.node, WIRE_T_A) : NULL;
	ok(set != NULL, "nas: has an A RRset");
	if (set) {
		is_int(set->count, 2, "nas: duplicate record collapsed: 2 A");
		is_int(set->ttl, 60, "nas: RRset TTL is the smallest (60)");
		ok(set->count == 2 && set->rdata[0].len == 4 &&
		       memcmp(set->rdata[0].data, "\300\250\1\12", 4) == 0 &&
		       memcmp(set->rdata[1].data, "\300\250\1\13", 4) == 0,
		   "nas: 192.168.1.10 and .11 in file order");
		is_int(set->rdata[0].line, 4, "nas: first record's line");
	}
	ok(apex_is(&r, N(HOME)), "nas: apex Home.Lab");
	ok(r.node && zone_find_rrset(r.node, WIRE_T_MX) == NULL,
	   "nas: no MX RRset");
	ok(r.node && zone_find_rrset(r.node, WIRE_T_AAAA) != NULL,
	   "nas: AAAA RRset");
	if (r.node) {
		const struct zone_rrset *all;
		is_int(zone_rrsets(r.node, &all), 2, "nas: two RRsets");
	}

	expect_match(z, "nas.home.lab.", ZONE_EXISTS);
	expect_match(z, "nAs.HoMe.LaB.", ZONE_EXISTS);

	/* Empty non-terminals. */
	const char *ents[] = {"sub.k8s.home.lab.", "k8s.home.lab.",
			      "SUB.K8S.HOME.LAB.", "sub.wild.corp.lab.",
			      "wild.corp.lab.",	   "b.c.corp.lab.",
			      "c.corp.lab.",	   "_udp.home.lab."};
	for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
		r = expect_match(z, ents[i], ZONE_EXISTS);
		const struct zone_rrset *all;
		ok(r.node && zone_rrsets(r.node, &all) == 0,
		   "%s is an ENT: no RRsets", ents[i]);
	}

	/* Wildcards (RFC 4592). */
	r = expect_match(z, "foo.k8s.home.lab.", ZONE_WILDCARD);
	ok(r.node && zone_find_rrset(r.node, WIRE_T_A) &&
	       zone_find_rrset(r.node, WIRE_T_A)->rdata[0].data[3] == 2,
	   "foo.k8s: the *.k8s node's A 10.0.0.2");
	ok(apex_is(&r, N(HOME)), "foo.k8s: apex Home.Lab");
	expect_match(z, "FOO.K8S.home.lab.", ZONE_WILDCARD);
	expect_match(z, "a.b.foo.k8s.home.lab.", ZONE_WILDCARD);
	expect_match(z, "*.k8s.home.lab.", ZONE_EXISTS);
	/* sub.k8s exists (ENT): the wildcard does not reach below it. */
	expect_match(z, "a.sub.k8s.home.lab.", ZONE_NOT_LOCAL);
	expect_match(z, "y.x.sub.k8s.home.lab.", ZONE_NOT_LOCAL);
	r = expect_match(z, "a.sub.wild.corp.lab.", ZONE_NXDOMAIN);
	ok(apex_is(&r, N(CORP)), "a.sub.wild: apex corp.lab");
	expect_match(z, "a.x.sub.wild.corp.lab.", ZONE_NXDOMAIN);
	r = expect_match(z, "any.wild.corp.lab.", ZONE_WILDCARD);
	ok(r.node && zone_find_rrset(r.node, WIRE_T_A) &&
	       zone_find_rrset(r.node, WIRE_T_A)->rdata[0].data[3] == 3,
	   "any.wild: the *.wild node");
	expect_match(z, "x.sub.wild.corp.lab.", ZONE_EXISTS);
	/* The wildcard does not cover its own parent. */
	expect_match(z, "wild.corp.lab.", ZONE_EXISTS);
	expect_match(z, "k8s.home.lab.", ZONE_EXISTS);

	/* Unknown names. */
	r = expect_match(z, "unknown.home.lab.", ZONE_NOT_LOCAL);
	r = expect_match(z, "unknown.corp.lab.", ZONE_NXDOMAIN);
	ok(apex_is(&r, N(CORP)), "unknown.corp.lab: apex corp.lab");
	ok(r.node == NULL, "unknown.corp.lab: no node");
	expect_match(z, "deep.er.unknown.corp.lab.", ZONE_NXDOMAIN);
	expect_match(z, "x.b.c.corp.lab.", ZONE_NXDOMAIN);
	r = expect_match(z, "example.com.", ZONE_NOT_LOCAL);
	ok(r.apex == NULL, "example.com: no apex");
	expect_match(z, "lab.", ZONE_NOT_LOCAL);
	expect_match(z, ".", ZONE_NOT_LOCAL);
	expect_match(z, "xhome.lab.", ZONE_NOT_LOCAL);
	expect_match(z, "home.lab.example.", ZONE_NOT_LOCAL);

	/* Apexes. */
	r = expect_match(z, "home.lab.", ZONE_EXISTS);
	ok(r.node && zone_find_rrset(r.node, WIRE_T_A) &&
	       zone_find_rrset(r.node, WIRE_T_SOA) &&
	       zone_find_rrset(r.node, WIRE_T_CAA),
	   "home.lab apex: A, CAA and the synthesized SOA");
	if (r.apex) {
		ok(!r.apex->authoritative, "home.lab: not authoritative");
		is_mem(r.apex->name, r.apex->name_len, N(HOME),
		       "home.lab: apex name as written (Home.Lab)");
		is_mem(r.apex->soa, r.apex->soa_len, home_soa,
		       sizeof(home_soa) - 1, "home.lab: synthesized SOA rdata");
		is_int(r.apex->soa_ttl, 300, "home.lab: SOA TTL = zone TTL");
		is_int(r.apex->negative_ttl, 300, "home.lab: negative TTL 300");
		is_str(r.apex->file, "/zones/home.zone", "home.lab: file");
	}
	r = expect_match(z, "corp.lab.", ZONE_EXISTS);
	if (r.apex) {
		ok(r.apex->authoritative, "corp.lab: authoritative");
		is_mem(r.apex->soa, r.apex->soa_len, corp_soa,
		       sizeof(corp_soa) - 1, "corp.lab: its own SOA rdata");
		is_int(r.apex->soa_ttl, 3600, "corp.lab: SOA TTL 3600");
		is_int(r.apex->negative_ttl, 60,
		       "corp.lab: negative TTL = min(3600, minimum 60)");
	}
	r = expect_match(z, "tiny.lab.", ZONE_EXISTS);
	if (r.apex)
		is_int(r.apex->negative_ttl, 30,
		       "tiny.lab: negative TTL = min(SOA TTL 30, minimum 300)");
	r = expect_match(z, "empty.lab.", ZONE_EXISTS);
	if (r.apex) {
		is_int(r.apex->soa_ttl, 45, "empty.lab: SOA TTL 45");
		is_int(r.apex->negative_ttl, 45, "empty.lab: negative TTL 45");
		ok(r.apex->soa_len >= 4 &&
		       wire_get32(r.apex->soa + r.apex->soa_len - 4) == 45,
		   "empty.lab: synthesized SOA minimum = zone TTL");
	}
	expect_match(z, "x.empty.lab.", ZONE_NOT_LOCAL);

	/* RRset TTLs. */
	r = expect_match(z, "host.corp.lab.", ZONE_EXISTS);
	if (r.node) {
		set = zone_find_rrset(r.node, WIRE_T_A);
		ok(set && set->ttl == 600, "host A: zone default TTL 600");
		set = zone_find_rrset(r.node, WIRE_T_TXT);
		ok(set && set->ttl == 10, "host TXT: its own TTL 10");
	}
}

/* The smaller case: node count and the TTL of duplicates. */
static void test_small(void)
{
	char err[CONF_ERR_MAX] = "";
	struct conf *c = cfg_new();
	size_t h = add_zone(c, "/z/s.zone", "s.lab", false, 300, 1);
	rec(c, h, 2, "nas", "A", "192.0.2.1", 100);
	rec(c, h, 3, "x.sub.k8s", "A", "192.0.2.2", -1);
	struct zone *z = zone_build(c, err, sizeof(err));
	conf_free(c);
	ok(z != NULL, "small zone builds");
	if (!z)
		diag("%s", err);
	/* s.lab, nas, x.sub.k8s, sub.k8s, k8s. */
	is_int(z ? zone_size(z) : 0, 5, "zone_size counts names and ENTs");
	zone_free(z);

	/* A duplicate with a smaller TTL: one record; the RRset TTL should
	 * not depend on which of the two comes first. */
	uint32_t ttl[2] = {0, 0};
	for (int order = 0; order < 2; order++) {
		c = cfg_new();
		h = add_zone(c, "/z/d.zone", "d.lab", false, 300, 1);
		rec(c, h, 2, "nas", "A", "192.0.2.1", order ? 30 : 60);
		rec(c, h, 3, "nas", "A", "192.0.2.1", order ? 60 : 30);
		z = zone_build(c, err, sizeof(err));
		conf_free(c);
		struct zone_result r;
		if (z) {
			lookup(z, "nas.d.lab.", &r);
			const struct zone_rrset *set =
			    r.node ? zone_find_rrset(r.node, WIRE_T_A) : NULL;
			ok(set && set->count == 1,
			   "duplicate records collapse (order %d)", order);
			ttl[order] = set ? set->ttl : 0;
		}
		zone_free(z);
	}
	is_int(ttl[1], 30, "duplicates: TTL 30 then 60 -> 30");
	is_int(ttl[0], 30, "duplicates: TTL 60 then 30 -> 30");

	/* zone_free(NULL) does nothing; an empty configuration builds. */
	zone_free(NULL);
	c = cfg_new();
	z = zone_build(c, err, sizeof(err));
	conf_free(c);
	ok(z != NULL, "no zones: an empty store");
	if (z) {
		struct zone_result r;
		lookup(z, "anything.example.", &r);
		is_int(r.match, ZONE_NOT_LOCAL, "empty store: NOT_LOCAL");
		is_int(zone_size(z), 0, "empty store: 0 names");
	}
	zone_free(z);
}

/* ---- build errors ------------------------------------------------------ */

/* Build c (which is freed) and expect an error starting with prefix and
 * containing what. */
static void build_fails(struct conf *c, const char *prefix, const char *what,
			const char *name)
{
	char err[CONF_ERR_MAX] = "";
	struct zone *z = zone_build(c, err, sizeof(err));
	conf_free(c);
	ok(z == NULL, "%s: zone_build fails", name);
	zone_free(z);
	bool good = strncmp(err, prefix, strlen(prefix)) == 0 &&
		    strstr(err, what) != NULL;
	ok(good, "%s: error '%s...' naming '%s'", name, prefix, what);
	if (!good)
		diag("error was '%s'", err);
}

static struct conf *err_config(void)
{
	struct conf *c = cfg_new();
	size_t h = add_zone(c, "/zones/err.zone", "err.lab", true, 300, 1);
	rec(c, h, 3, "ok", "A", "192.0.2.1", -1);
	return c;
}

static void test_errors(void)
{
	struct conf *c;

	c = err_config();
	rec(c, 0, 7, "bad", "A", "300.1.1.1", -1);
	build_fails(c, "/zones/err.zone:7: ", "300.1.1.1", "bad A data");
	c = err_config();
	rec(c, 0, 7, "bad", "AAAA", "192.0.2.1", -1);
	build_fails(c, "/zones/err.zone:7: ", "AAAA", "AAAA data");
	c = err_config();
	rec(c, 0, 8, "x", "SPF", "v=spf1", -1);
	build_fails(c, "/zones/err.zone:8: ", "SPF", "unknown type");
	c = err_config();
	rec(c, 0, 8, "x", "OPT", "", -1);
	build_fails(c, "/zones/err.zone:8: ", "OPT", "type OPT");
	c = err_config();
	rec(c, 0, 9, "foo.other.", "A", "192.0.2.1", -1);
	build_fails(c, "/zones/err.zone:9: ", "outside", "name outside origin");
	c = err_config();
	rec(c, 0, 9, "lab.", "A", "192.0.2.1", -1);
	build_fails(c, "/zones/err.zone:9: ", "outside", "the origin's parent");
	c = err_config();
	rec(c, 0, 9, "xerr.lab.", "A", "192.0.2.1", -1);
	build_fails(c, "/zones/err.zone:9: ", "outside", "xerr.lab is outside");
	c = err_config();
	rec(c, 0, 10, "a..b", "A", "192.0.2.1", -1);
	build_fails(c, "/zones/err.zone:10: ", "empty label", "bad owner name");
	c = err_config();
	rec(c, 0, 11, "m", "MX", "ten mx", -1);
	build_fails(c, "/zones/err.zone:11: ", "preference", "bad MX data");

	/* Text from the zone file is data, never a format (a '%' in it
	 * crashed the loader): the message quotes it as written. */
	c = err_config();
	rec(c, 0, 7, "pct", "A", "1.2.3.4 %s%s%s%s", -1);
	build_fails(c, "/zones/err.zone:7: ", "\"1.2.3.4 %s%s%s%s\"",
		    "'%s' in A data is quoted, not expanded");
	c = err_config();
	rec(c, 0, 8, "pct", "CNAME", "a%n%s..b", -1);
	build_fails(c, "/zones/err.zone:8: ", "'a%n%s..b'",
		    "'%n' in a CNAME target is quoted, not expanded");
	c = err_config();
	rec(c, 0, 9, "p%s%s", "MX", "x%s 100%", -1);
	build_fails(c, "/zones/err.zone:9: ", "MX data \"x%s 100%\"",
		    "'%' in MX data and owner");
	c = err_config();
	rec(c, 0, 10, "%s%s%s%s.other.", "A", "192.0.2.1", -1);
	build_fails(c, "/zones/err.zone:10: ", "'%s%s%s%s.other.'",
		    "'%s' in an owner outside the origin");

	/* RFC 1034 3.6.2. */
	c = err_config();
	rec(c, 0, 4, "dup", "CNAME", "ok", -1);
	rec(c, 0, 5, "dup", "A", "192.0.2.2", -1);
	build_fails(c, "/zones/err.zone:4: ", "CNAME", "CNAME plus other data");
	c = err_config();
	rec(c, 0, 4, "dup", "A", "192.0.2.2", -1);
	rec(c, 0, 5, "DUP", "CNAME", "ok", -1);
	build_fails(c, "/zones/err.zone:5: ", "CNAME",
		    "other data plus CNAME (the CNAME's line)");
	c = err_config();
	rec(c, 0, 4, "two", "CNAME", "ok", -1);
	rec(c, 0, 6, "two", "CNAME", "other", -1);
	build_fails(c, "/zones/err.zone:6: ", "second CNAME", "two CNAMEs");

	c = err_config();
	rec(c, 0, 12, "sub", "SOA", "ns hm 1 2 3 4 5", -1);
	build_fails(c, "/zones/err.zone:12: ", "SOA", "SOA not at the apex");

	/* A CNAME at the apex would stand beside the zone's SOA (RFC 1034
	 * 3.6.2, RFC 2181 10.1); a zone has exactly one SOA (RFC 2181 6.1). */
	c = err_config();
	rec(c, 0, 13, "@", "CNAME", "elsewhere.example.", -1);
	build_fails(c, "/zones/err.zone:13: ", "CNAME", "CNAME at the apex");
	c = err_config();
	rec(c, 0, 14, "@", "SOA", "ns hm 1 2 3 4 5", -1);
	rec(c, 0, 15, "@", "SOA", "ns hm 2 2 3 4 5", -1);
	build_fails(c, "/zones/err.zone:15: ", "SOA", "two SOA records");

	/* Origins. */
	c = err_config();
	add_zone(c, "/zones/two.zone", "ERR.lab.", false, 300, 2);
	build_fails(c, "/zones/two.zone:2: ", "twice", "duplicate origin");
	c = cfg_new();
	add_zone(c, "/zones/o.zone", "a..b", false, 300, 3);
	build_fails(c, "/zones/o.zone:3: ", "origin", "bad origin");

	/* The first error wins, with its own file. */
	c = err_config();
	size_t h =
	    add_zone(c, "/zones/second.zone", "second.lab", false, 300, 1);
	rec(c, h, 5, "x", "A", "nope", -1);
	build_fails(c, "/zones/second.zone:5: ", "nope",
		    "error in a second zone names that zone's file");
}

/* ---- answer_local ------------------------------------------------------ */

static void test_answers(const struct zone *z)
{
	uint8_t out[WIRE_MSG_MAX];
	struct query qq;
	struct reply r;
	struct answer_chase ch;
	size_t n;

	/* A data answer, with the client's case. */
	make_query(&qq, 0xabcd, WIRE_RD, "NaS.hOmE.lab.", WIRE_T_A,
		   WIRE_CLASS_IN, -1, false);
	memset(&ch, 0xff, sizeof(ch));
	n = ask(z, &qq, out, sizeof(out), &r, &ch);
	ok(n > 0, "nas A: answered locally");
	is_int(r.h.id, 0xabcd, "nas A: id copied");
	ok((r.h.flags & (WIRE_QR | WIRE_AA | WIRE_RD | WIRE_RA)) ==
	       (WIRE_QR | WIRE_AA | WIRE_RD | WIRE_RA),
	   "nas A: QR AA RD RA");
	ok(!(r.h.flags & WIRE_TC), "nas A: TC clear");
	is_int(RCODE(r), WIRE_NOERROR, "nas A: NOERROR");
	ok(r.h.qdcount == 1 && r.h.ancount == 2 && r.h.nscount == 0 &&
	       r.h.arcount == 0,
	   "nas A: counts 1/2/0/0");
	is_mem(out + 12, qq.q.question_end - 12, qq.pkt + 12,
	       qq.q.question_end - 12, "nas A: question echoed as sent");
	ok(r.nrr == 2 &&
	       rr_is(&r.rr[0], N("\3NaS\4hOmE\3lab"), WIRE_T_A, 60,
		     "\300\250\1\12", 4) &&
	       rr_is(&r.rr[1], N("\3NaS\4hOmE\3lab"), WIRE_T_A, 60,
		     "\300\250\1\13", 4),
	   "nas A: two A records, owner in the client's case, TTL 60");
	ok(ch.target == NULL, "nas A: chase target NULL");
	is_int(n, r.len, "nas A: length");

	make_query(&qq, 1, 0, "nas.home.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(!(r.h.flags & WIRE_RD) && (r.h.flags & WIRE_RA),
	   "no RD in the query: RD clear, RA set");
	make_query(&qq, 1, WIRE_CD | WIRE_AD, "nas.home.lab.", WIRE_T_A,
		   WIRE_CLASS_IN, -1, false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.flags & WIRE_CD, "CD copied");

	/* ANY: every RRset. */
	make_query(&qq, 1, 0, "nas.home.lab.", WIRE_T_ANY, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	is_int(r.h.ancount, 3, "nas ANY: 2 A + 1 AAAA");

	/* CNAME followed through local data. */
	make_query(&qq, 2, WIRE_RD, "WWW.home.lab.", WIRE_T_A, WIRE_CLASS_IN,
		   -1, false);
	ask(z, &qq, out, sizeof(out), &r, &ch);
	is_int(r.h.ancount, 3, "www A: CNAME + 2 A");
	ok(r.nrr == 3 &&
	       rr_is(&r.rr[0], N("\3WWW\4home\3lab"), WIRE_T_CNAME, 300,
		     N("\3nas" HOME)) &&
	       rr_is(&r.rr[1], N("\3nas" HOME), WIRE_T_A, 60, "\300\250\1\12",
		     4),
	   "www A: CNAME to nas.Home.Lab, then nas's A records");
	ok(ch.target == NULL, "www A: complete, no chase");
	ok(r.h.flags & WIRE_AA, "www A: AA");

	make_query(&qq, 2, 0, "www.home.lab.", WIRE_T_CNAME, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.ancount == 1 && r.nrr == 1 && r.rr[0].type == WIRE_T_CNAME,
	   "www CNAME: just the CNAME");

	make_query(&qq, 3, 0, "c1.home.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.ancount == 5 && r.nrr == 5 && r.rr[0].type == WIRE_T_CNAME &&
	       r.rr[1].type == WIRE_T_CNAME && r.rr[2].type == WIRE_T_CNAME &&
	       r.rr[3].type == WIRE_T_A &&
	       rr_is(&r.rr[2], N("\3www" HOME), WIRE_T_CNAME, 300,
		     N("\3nas" HOME)),
	   "c1 A: c1 -> c2 -> www -> nas: 3 CNAMEs + 2 A");

	make_query(&qq, 3, 0, "c1.home.lab.", WIRE_T_MX, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(RCODE(r) == WIRE_NOERROR && r.h.ancount == 3 && r.h.nscount == 1 &&
	       r.nrr == 4 && r.rr[3].type == WIRE_T_SOA,
	   "c1 MX: the CNAME chain, then NODATA (SOA in authority)");

	/* A CNAME to a wildcard. */
	make_query(&qq, 3, 0, "wc.home.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.ancount == 2 && r.nrr == 2 &&
	       rr_is(&r.rr[1], N("\3foo\3k8s" HOME), WIRE_T_A, 300, "\12\0\0\2",
		     4),
	   "wc A: CNAME to foo.k8s, answered by *.k8s under that name");

	/* Across zones. */
	make_query(&qq, 3, 0, "tocorphost.home.lab.", WIRE_T_A, WIRE_CLASS_IN,
		   -1, false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.ancount == 2 && r.nrr == 2 &&
	       rr_is(&r.rr[1], N("\4host" CORP), WIRE_T_A, 600, "\12\1\1\2", 4),
	   "tocorphost A: CNAME into corp.lab and its A");
	make_query(&qq, 3, 0, "tocorp.home.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(RCODE(r) == WIRE_NXDOMAIN && r.h.ancount == 1 && r.h.nscount == 1 &&
	       r.nrr == 2 && r.rr[0].type == WIRE_T_CNAME &&
	       rr_is(&r.rr[1], N(CORP), WIRE_T_SOA, 60, corp_soa,
		     sizeof(corp_soa) - 1),
	   "tocorp A: CNAME, then NXDOMAIN with corp.lab's SOA (RFC 6604)");

	/* A CNAME whose target is not local: the chain alone. */
	make_query(&qq, 4, WIRE_RD, "ext.home.lab.", WIRE_T_A, WIRE_CLASS_IN,
		   -1, false);
	memset(&ch, 0, sizeof(ch));
	n = ask(z, &qq, out, sizeof(out), &r, &ch);
	ok(r.h.ancount == 1 && r.nrr == 1 &&
	       rr_is(&r.rr[0], N("\3ext\4home\3lab"), WIRE_T_CNAME, 300,
		     N("\3www\7example\3com")),
	   "ext A: just the CNAME to www.example.com");
	is_int(RCODE(r), WIRE_NOERROR, "ext A: NOERROR");
	ok(ch.target && wire_name_equal(ch.target, ch.target_len,
					N("\3www\7example\3com")),
	   "ext A: chase target www.example.com");
	is_int(ch.ancount, 1, "ext A: chase ancount 1");
	is_int(ch.body_len, n, "ext A: chase body_len = the reply (no OPT)");
	make_query(&qq, 4, WIRE_RD, "ext.home.lab.", WIRE_T_A, WIRE_CLASS_IN,
		   1232, false);
	memset(&ch, 0, sizeof(ch));
	n = ask(z, &qq, out, sizeof(out), &r, &ch);
	is_int(ch.body_len, n - 11, "ext A with OPT: body_len excludes OPT");
	ok(r.h.arcount == 1, "ext A with OPT: OPT in the reply");
	n = ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(n > 0 && r.h.ancount == 1, "ext A: chase NULL is allowed");

	/* A CNAME loop. */
	make_query(&qq, 5, WIRE_RD, "Loop1.home.lab.", WIRE_T_A, WIRE_CLASS_IN,
		   -1, false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	is_int(RCODE(r), WIRE_SERVFAIL, "CNAME loop: SERVFAIL");
	ok(r.h.id == 5 && r.h.qdcount == 1 && r.h.ancount == 0 &&
	       wire_name_equal(r.qname, r.qname_len, N("\5Loop1\4home\3lab")) &&
	       memcmp(r.qname, "\5Loop1", 6) == 0,
	   "CNAME loop: id, question as sent, no answers");

	/* NODATA. */
	make_query(&qq, 6, 0, "nas.home.lab.", WIRE_T_MX, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(RCODE(r) == WIRE_NOERROR && r.h.ancount == 0 && r.h.nscount == 1 &&
	       (r.h.flags & WIRE_AA),
	   "nas MX: NODATA, AA");
	ok(r.nrr == 1 && rr_is(&r.rr[0], N(HOME), WIRE_T_SOA, 300, home_soa,
			       sizeof(home_soa) - 1),
	   "nas MX: synthesized SOA in authority, negative TTL");
	make_query(&qq, 6, 0, "sub.k8s.home.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(RCODE(r) == WIRE_NOERROR && r.h.ancount == 0 && r.h.nscount == 1,
	   "ENT sub.k8s A: NODATA");
	make_query(&qq, 6, 0, "empty.lab.", WIRE_T_A, WIRE_CLASS_IN, -1, false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(RCODE(r) == WIRE_NOERROR && r.h.ancount == 0 && r.h.nscount == 1 &&
	       r.nrr == 1 && r.rr[0].ttl == 45,
	   "empty.lab A: NODATA, SOA TTL 45");
	make_query(&qq, 6, 0, "host.corp.lab.", WIRE_T_AAAA, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.nscount == 1 && r.nrr == 1 && r.rr[0].ttl == 60,
	   "host.corp.lab AAAA: NODATA, SOA TTL min(3600, 60)");
	make_query(&qq, 6, 0, "tiny.lab.", WIRE_T_A, WIRE_CLASS_IN, -1, false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.nscount == 1 && r.nrr == 1 && r.rr[0].ttl == 30,
	   "tiny.lab A: NODATA, SOA TTL min(30, 300)");

	/* The SOA itself. */
	make_query(&qq, 6, 0, "home.lab.", WIRE_T_SOA, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.ancount == 1 && r.nrr == 1 &&
	       rr_is(&r.rr[0], N("\4home\3lab"), WIRE_T_SOA, 300, home_soa,
		     sizeof(home_soa) - 1),
	   "home.lab SOA: the synthesized SOA as an answer");
	make_query(&qq, 6, 0, "corp.lab.", WIRE_T_SOA, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.ancount == 1 && r.nrr == 1 && r.rr[0].ttl == 3600 &&
	       r.rr[0].rdlen == sizeof(corp_soa) - 1,
	   "corp.lab SOA: its own SOA, TTL 3600");

	/* NXDOMAIN. */
	make_query(&qq, 7, WIRE_RD, "nope.CORP.lab.", WIRE_T_A, WIRE_CLASS_IN,
		   -1, false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	is_int(RCODE(r), WIRE_NXDOMAIN, "nope.corp.lab: NXDOMAIN");
	ok((r.h.flags & (WIRE_AA | WIRE_RD | WIRE_RA)) ==
	       (WIRE_AA | WIRE_RD | WIRE_RA),
	   "nope.corp.lab: AA RD RA");
	ok(r.h.ancount == 0 && r.h.nscount == 1 && r.nrr == 1 &&
	       rr_is(&r.rr[0], N(CORP), WIRE_T_SOA, 60, corp_soa,
		     sizeof(corp_soa) - 1),
	   "nope.corp.lab: SOA in authority, TTL 60");
	make_query(&qq, 7, 0, "a.sub.wild.corp.lab.", WIRE_T_A, WIRE_CLASS_IN,
		   -1, false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	is_int(RCODE(r), WIRE_NXDOMAIN,
	       "a.sub.wild.corp.lab: NXDOMAIN (ENT stops the wildcard)");

	/* Wildcard answer: the owner is the question name. */
	make_query(&qq, 8, 0, "Foo.Wild.corp.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.ancount == 1 && r.nrr == 1 &&
	       rr_is(&r.rr[0], N("\3Foo\4Wild\4corp\3lab"), WIRE_T_A, 600,
		     "\12\1\1\3", 4),
	   "Foo.Wild.corp.lab: synthesized from *.wild, owner as asked");
	make_query(&qq, 8, 0, "Foo.Wild.corp.lab.", WIRE_T_TXT, WIRE_CLASS_IN,
		   -1, false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(RCODE(r) == WIRE_NOERROR && r.h.ancount == 0 && r.h.nscount == 1,
	   "Foo.Wild.corp.lab TXT: NODATA");

	/* Not local: forward. */
	make_query(&qq, 9, 0, "unknown.home.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	is_int(ask(z, &qq, out, sizeof(out), &r, NULL), 0,
	       "unknown.home.lab (non-authoritative): 0, forward");
	make_query(&qq, 9, 0, "example.com.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	is_int(ask(z, &qq, out, sizeof(out), &r, NULL), 0,
	       "example.com: 0, forward");
	/* Local names never leave: CH is refused, ANY answered as IN. */
	make_query(&qq, 9, 0, "nas.home.lab.", WIRE_T_A, 3, -1, false);
	ok(ask(z, &qq, out, sizeof(out), &r, NULL) > 0 &&
		   WIRE_RCODE(wire_get16(out + 2)) == WIRE_REFUSED,
	   "nas.home.lab class CH: REFUSED, not forwarded");
	make_query(&qq, 9, 0, "nas.home.lab.", WIRE_T_A, WIRE_T_ANY, -1,
		   false);
	ok(ask(z, &qq, out, sizeof(out), &r, NULL) > 0 &&
		   WIRE_RCODE(wire_get16(out + 2)) == WIRE_NOERROR &&
		   wire_get16(out + 6) > 0,
	   "nas.home.lab class ANY: answered as IN");

	/* EDNS. */
	make_query(&qq, 10, 0, "nas.home.lab.", WIRE_T_A, WIRE_CLASS_IN, 4096,
		   true);
	n = ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.h.arcount == 1 && r.nrr == 3, "OPT asked: OPT in the reply");
	if (r.nrr == 3) {
		const struct rr *o = &r.rr[2];
		ok(o->owner_len == 1 && o->type == WIRE_T_OPT &&
		       o->rclass == 1232 && o->ttl == 0x8000 && o->rdlen == 0,
		   "OPT: root, our size 1232, version 0, DO copied");
	}
	make_query(&qq, 10, 0, "nas.home.lab.", WIRE_T_A, WIRE_CLASS_IN, 512,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.nrr == 3 && r.rr[2].type == WIRE_T_OPT && r.rr[2].ttl == 0,
	   "OPT without DO: DO clear");
	make_query(&qq, 10, 0, "nope.corp.lab.", WIRE_T_A, WIRE_CLASS_IN, 1232,
		   true);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(RCODE(r) == WIRE_NXDOMAIN && r.h.nscount == 1 && r.h.arcount == 1 &&
	       r.nrr == 2 && r.rr[1].type == WIRE_T_OPT &&
	       r.rr[1].ttl == 0x8000,
	   "NXDOMAIN with OPT: SOA then OPT, ext-rcode 0");
	make_query(&qq, 10, 0, "nas.home.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   true);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	is_int(r.h.arcount, 0, "no OPT asked: none in the reply");

	/* Record data in answers. */
	make_query(&qq, 11, 0, "txt1.home.lab.", WIRE_T_TXT, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.nrr == 1 && rr_is(&r.rr[0], N("\4txt1\4home\3lab"), WIRE_T_TXT,
			       300, "\13v=spf1 -all", 12),
	   "txt1: one unquoted string 'v=spf1 -all'");
	make_query(&qq, 11, 0, "txt2.home.lab.", WIRE_T_TXT, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	{
		uint8_t want[302];
		want[0] = 255;
		memset(want + 1, 'x', 255);
		want[256] = 45;
		memset(want + 257, 'x', 45);
		ok(r.nrr == 1 && r.rr[0].rdlen == 302 &&
		       memcmp(r.rr[0].rdata, want, 302) == 0,
		   "txt2: 300 unquoted octets as 255 + 45");
	}
	make_query(&qq, 11, 0, "txt3.home.lab.", WIRE_T_TXT, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.nrr == 1 && r.rr[0].rdlen == 6 &&
	       memcmp(r.rr[0].rdata, "\3a b\1c", 6) == 0,
	   "txt3: two quoted strings 'a b' and 'c'");
	make_query(&qq, 11, 0, "mail.home.lab.", WIRE_T_MX, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.nrr == 1 && rr_is(&r.rr[0], N("\4mail\4home\3lab"), WIRE_T_MX, 300,
			       N("\0\12\3mx1" HOME)),
	   "mail MX: 10 mx1.Home.Lab");
	make_query(&qq, 11, 0, "_sip._udp.home.lab.", WIRE_T_SRV, WIRE_CLASS_IN,
		   -1, false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.nrr == 1 && r.rr[0].type == WIRE_T_SRV &&
	       r.rr[0].rdlen == 6 + 14 &&
	       memcmp(r.rr[0].rdata, "\0\0\0\5\23\304\3sip" HOME, 20) == 0,
	   "_sip._udp SRV: 0 5 5060 sip.Home.Lab");
	make_query(&qq, 11, 0, "home.lab.", WIRE_T_CAA, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.nrr == 1 && r.rr[0].type == WIRE_T_CAA &&
	       r.rr[0].rdlen == 2 + 5 + 15 &&
	       memcmp(r.rr[0].rdata, "\0\5issueletsencrypt.org", 22) == 0,
	   "home.lab CAA: 0 issue letsencrypt.org");
	make_query(&qq, 11, 0, "nas.home.lab.", WIRE_T_AAAA, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, sizeof(out), &r, NULL);
	ok(r.nrr == 1 && r.rr[0].rdlen == 16 &&
	       memcmp(r.rr[0].rdata, "\375\0\0\0\0\0\0\0\0\0\0\0\0\0\0\20",
		      16) == 0,
	   "nas AAAA: fd00::10");
}

/* CNAME chains at the limit, a reply over 64 KiB, a small buffer. */
static void test_limits(void)
{
	char err[CONF_ERR_MAX] = "", name[32], target[32];
	struct conf *c = cfg_new();
	size_t h = add_zone(c, "/z/chain.zone", "chain.lab", false, 300, 1);
	uint8_t *out = malloc(WIRE_MSG_MAX);
	struct query qq;
	struct reply r;
	size_t n;

	/* n0 -> ... -> n16 (16 CNAMEs), m0 -> ... -> m17 (17 CNAMEs). */
	for (int i = 0; i < 17; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		snprintf(target, sizeof(target), "n%d", i + 1);
		if (i < 16)
			rec(c, h, i + 2, name, "CNAME", target, -1);
		else
			rec(c, h, i + 2, name, "A", "192.0.2.16", -1);
	}
	for (int i = 0; i < 18; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		snprintf(target, sizeof(target), "m%d", i + 1);
		if (i < 17)
			rec(c, h, i + 30, name, "CNAME", target, -1);
		else
			rec(c, h, i + 30, name, "A", "192.0.2.17", -1);
	}
	/* 5000 A records: more than 64 KiB. */
	for (int i = 0; i < 5000; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256, i % 256);
		rec(c, h, 100 + i, "big", "A", addr, -1);
	}
	struct zone *z = zone_build(c, err, sizeof(err));
	conf_free(c);
	ok(z != NULL, "chain zone builds");
	if (!z || !out) {
		diag("%s", err);
		free(out);
		zone_free(z);
		return;
	}

	make_query(&qq, 1, 0, "n0.chain.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, WIRE_MSG_MAX, &r, NULL);
	ok(RCODE(r) == WIRE_NOERROR && r.h.ancount == 17 && r.nrr == 17 &&
	       r.rr[16].type == WIRE_T_A,
	   "16 CNAMEs (ANSWER_MAX_CHAIN) are followed: 16 CNAME + A");
	make_query(&qq, 1, 0, "m0.chain.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	ask(z, &qq, out, WIRE_MSG_MAX, &r, NULL);
	ok(RCODE(r) == WIRE_SERVFAIL && r.h.ancount == 0,
	   "17 CNAMEs: SERVFAIL");

	make_query(&qq, 2, 0, "big.chain.lab.", WIRE_T_A, WIRE_CLASS_IN, 1232,
		   false);
	n = ask(z, &qq, out, WIRE_MSG_MAX, &r, NULL);
	ok(n <= WIRE_MSG_MAX && (r.h.flags & WIRE_TC) && r.h.ancount == 0 &&
	       r.h.arcount == 1 && n == qq.q.question_end + 11,
	   "5000 A records: TC, question and OPT only");

	/* cap smaller than header + question: the reply must still fit. */
	make_query(&qq, 3, 0, "n16.chain.lab.", WIRE_T_A, WIRE_CLASS_IN, -1,
		   false);
	n = answer_local(z, &qq.q, qq.pkt, 1232, out, 64, NULL);
	ok(n > 0 && n <= 64, "cap 64: a reply within the cap");
	n = answer_local(z, &qq.q, qq.pkt, 1232, out, 20, NULL);
	ok(n <= 20, "cap 20 (< header+question): length %zu within the cap", n);

	zone_free(z);
	free(out);
}

/* ---- rdata_from_text --------------------------------------------------- */

static void rdata_is(uint16_t type, const char *text, const void *want,
		     size_t wlen)
{
	uint8_t *out = malloc(RDATA_MAX);
	char why[256] = "", name[400];
	const uint8_t origin[] = HOME;

	if (!out)
		abort();
	int n = rdata_from_text(type, text, origin, sizeof(origin), out, why,
				sizeof(why));
	snprintf(name, sizeof(name), "rdata %s '%.60s'", rdata_type_name(type),
		 text);
	if (!is_mem(out, n > 0 ? (size_t)n : 0, want, wlen, name))
		diag("returned %d: %s", n, why);
	free(out);
}

static void rdata_fails(uint16_t type, const char *text, const char *reason)
{
	uint8_t *out = malloc(RDATA_MAX);
	char why[256] = "";
	const uint8_t origin[] = HOME;

	if (!out)
		abort();
	int n = rdata_from_text(type, text, origin, sizeof(origin), out, why,
				sizeof(why));
	ok(n == -1 && strstr(why, reason), "rdata type %u '%.60s' fails (%s)",
	   type, text, reason);
	if (n != -1 || !strstr(why, reason))
		diag("returned %d, why '%s'", n, why);
	free(out);
}

static void test_rdata(void)
{
	is_int(rdata_type_from_text("A"), WIRE_T_A, "type A");
	is_int(rdata_type_from_text("aaaa"), WIRE_T_AAAA, "type aaaa");
	is_int(rdata_type_from_text("Caa"), WIRE_T_CAA, "type Caa");
	is_int(rdata_type_from_text("SPF"), 0, "type SPF unknown");
	is_int(rdata_type_from_text("OPT"), 0, "type OPT not for zones");
	is_int(rdata_type_from_text(""), 0, "empty type");
	is_str(rdata_type_name(WIRE_T_SRV), "SRV", "type name SRV");
	ok(rdata_type_name(99) == NULL, "type name 99: NULL");

	rdata_is(WIRE_T_A, "192.0.2.1", "\300\0\2\1", 4);
	rdata_is(WIRE_T_A, "  192.0.2.1  ", "\300\0\2\1", 4);
	rdata_is(WIRE_T_AAAA, "2001:db8::1",
		 "\40\1\15\270\0\0\0\0\0\0\0\0\0\0\0\1", 16);
	rdata_is(WIRE_T_CNAME, "target", N("\6target" HOME));
	rdata_is(WIRE_T_CNAME, "Target.Example.", N("\6Target\7Example"));
	rdata_is(WIRE_T_CNAME, "@", N(HOME));
	rdata_is(WIRE_T_NS, "ns1.example.com.", N("\3ns1\7example\3com"));
	rdata_is(WIRE_T_PTR, "host", N("\4host" HOME));
	rdata_is(WIRE_T_MX, "10 mail.example.com.",
		 N("\0\12\4mail\7example\3com"));
	rdata_is(WIRE_T_MX, "65535 @", N("\377\377" HOME));
	rdata_is(WIRE_T_MX, "0 .", N("\0\0"));
	rdata_is(WIRE_T_SRV, "10 60 5060 sip.example.com.",
		 N("\0\12\0\74\23\304\3sip\7example\3com"));
	rdata_is(WIRE_T_SOA,
		 "ns1.example.com. admin.example.com. 4294967295 3600 600 "
		 "86400 300",
		 N("\3ns1\7example\3com\0\5admin\7example\3com\0"
		   "\377\377\377\377\0\0\16\20\0\0\2\130\0\1\121\200\0\0\1\54"
		   "") -
		     1);
	rdata_is(WIRE_T_SOA, "ns hm 1 2 3 4 5",
		 N("\2ns" HOME "\0\2hm" HOME "\0"
		   "\0\0\0\1\0\0\0\2\0\0\0\3\0\0\0\4\0\0\0\5") -
		     1);
	rdata_is(WIRE_T_CAA, "0 issue \"letsencrypt.org\"",
		 "\0\5issueletsencrypt.org", 22);
	rdata_is(WIRE_T_CAA, "128 iodef mailto:sec@example.com",
		 "\200\5iodefmailto:sec@example.com", 29);
	rdata_is(WIRE_T_CAA, "0 issue \";\"", "\0\5issue;", 8);
	rdata_is(WIRE_T_TXT, "v=spf1 -all", "\13v=spf1 -all", 12);
	rdata_is(WIRE_T_TXT, "\"a b\" \"c\"", "\3a b\1c", 6);
	rdata_is(WIRE_T_TXT, "\"a\\\"b\"", "\3a\"b", 4);
	rdata_is(WIRE_T_TXT, "\"\\065\\\\\"", "\2A\\", 3);
	rdata_is(WIRE_T_TXT, "\"\"", "\0", 1);
	rdata_is(WIRE_T_TXT, "", "\0", 1);
	{
		char text[520];
		uint8_t want[520];
		memset(text, 'y', 255);
		text[255] = '\0';
		want[0] = 255;
		memset(want + 1, 'y', 255);
		rdata_is(WIRE_T_TXT, text, want, 256);
		text[255] = 'y';
		text[256] = '\0';
		want[256] = 1;
		want[257] = 'y';
		rdata_is(WIRE_T_TXT, text, want, 258);
		memset(text, 'y', 510);
		text[510] = '\0';
		want[256] = 255;
		memset(want + 257, 'y', 255);
		rdata_is(WIRE_T_TXT, text, want, 512);
		/* A quoted string of exactly 255 octets, then one of 256. */
		text[0] = '"';
		memset(text + 1, 'q', 255);
		strcpy(text + 256, "\"");
		want[0] = 255;
		memset(want + 1, 'q', 255);
		rdata_is(WIRE_T_TXT, text, want, 256);
		text[256] = 'q';
		strcpy(text + 257, "\"");
		rdata_fails(WIRE_T_TXT, text, "255");
	}

	rdata_fails(WIRE_T_A, "192.0.2", "address");
	rdata_fails(WIRE_T_A, "", "address");
	rdata_fails(WIRE_T_A, "192.0.2.1 192.0.2.2", "after the data");
	rdata_fails(WIRE_T_A, "::1", "address");
	rdata_fails(WIRE_T_AAAA, "192.0.2.1", "address");
	rdata_fails(WIRE_T_AAAA, "2001:db8::g", "address");
	rdata_fails(WIRE_T_CNAME, "", "missing");
	rdata_fails(WIRE_T_CNAME, "a..b", "empty label");
	rdata_fails(WIRE_T_CNAME, "a b", "after the data");
	rdata_fails(WIRE_T_MX, "mail", "preference");
	rdata_fails(WIRE_T_MX, "65536 mail", "preference");
	rdata_fails(WIRE_T_MX, "-1 mail", "preference");
	rdata_fails(WIRE_T_MX, "10", "exchange");
	rdata_fails(WIRE_T_SRV, "1 2 sip", "port");
	rdata_fails(WIRE_T_SRV, "1 2 3", "target");
	rdata_fails(WIRE_T_SRV, "1 2 70000 sip", "port");
	rdata_fails(WIRE_T_SOA, "ns hm 1 2 3 4", "minimum");
	rdata_fails(WIRE_T_SOA, "ns hm 1 2 3 4 4294967296", "minimum");
	rdata_fails(WIRE_T_SOA, "ns", "rname");
	rdata_fails(WIRE_T_SOA, "ns hm 1 2 3 4 5 6", "after the data");
	rdata_fails(WIRE_T_TXT, "\"abc", "closing quote");
	rdata_fails(WIRE_T_TXT, "\"a\" b", "outside quotes");
	rdata_fails(WIRE_T_TXT, "\"\\256\"", "255");
	rdata_fails(WIRE_T_CAA, "256 issue x", "flags");
	rdata_fails(WIRE_T_CAA, "0 is-sue x", "tag");
	rdata_fails(WIRE_T_CAA, "0", "tag");
	rdata_fails(WIRE_T_CAA, "0 issue \"x", "closing quote");
	rdata_fails(99, "anything", "unsupported");

	/* Tokens longer than the parser's buffers must not change meaning. */
	{
		uint8_t *out = malloc(RDATA_MAX);
		char why[256] = "", text[200];
		if (!out)
			abort();
		int n = rdata_from_text(WIRE_T_MX,
					"000000000000000000000000000000010 mx.",
					NULL, 0, out, why, sizeof(why));
		ok(n == -1 || wire_get16(out) == 10,
		   "MX preference 0...010 (33 digits): 10 or an error, got %d",
		   n > 0 ? wire_get16(out) : -1);
		strcpy(text, "0 ");
		memset(text + 2, 't', 70);
		strcpy(text + 72, " value");
		n = rdata_from_text(WIRE_T_CAA, text, NULL, 0, out, why,
				    sizeof(why));
		ok(n == -1 || out[1] == 70,
		   "CAA tag of 70 characters: kept or refused, tag length %d",
		   n > 0 ? out[1] : -1);
		free(out);
	}
	{
		/* Names in RDATA obey the name limits. */
		char text[300];
		memset(text, 'x', 64);
		text[64] = '\0';
		rdata_fails(WIRE_T_CNAME, text, "63");
	}
}

/* ---- error replies (issue 8) ------------------------------------------- */

static void test_error_flags(void)
{
	uint8_t pkt[64], out[512];
	struct wire_query q;
	struct reply r;

	/* genreport's opcodeflg: opcode 15 with AA TC RD RA Z AD CD set. */
	memset(pkt, 0, 12);
	wire_set16(pkt, 0x0bad);
	wire_set16(pkt + 2, (uint16_t)((15u << 11) | 0x07f0u));
	is_int(wire_parse_query(pkt, 12, &q), WIRE_BAD_OPCODE,
	       "opcode 15 header only: BAD_OPCODE");
	size_t n = answer_error(&q, pkt, WIRE_NOTIMP, 1232, out, sizeof(out));
	ok(n == 12 && parse_reply(out, n, &r), "NOTIMP: a 12-octet reply");
	is_int(r.h.id, 0x0bad, "NOTIMP: the client's ID");
	is_int(r.h.flags, 0x8000 | (15 << 11) | WIRE_NOTIMP,
	       "NOTIMP: QR, opcode 15, NOTIMP; no RA, RD, CD, AD, AA, TC "
	       "(RFC 8906 3.1.4)");

	/* FORMERR to a QUERY: RD and CD copied, RA set. */
	struct query qq;
	make_query(&qq, 0x0bee, WIRE_RD | WIRE_CD | WIRE_AD | 0x0040, "x.",
		   WIRE_T_A, WIRE_CLASS_IN, -1, false);
	n = answer_error(&qq.q, qq.pkt, WIRE_FORMERR, 1232, out, sizeof(out));
	ok(n && parse_reply(out, n, &r), "FORMERR parses");
	is_int(r.h.flags, WIRE_QR | WIRE_RA | WIRE_RD | WIRE_CD | WIRE_FORMERR,
	       "FORMERR: QR RA RD CD; no AD, no Z");
}

static void test_tsig_error(void)
{
	uint8_t pkt[256], out[512];
	size_t len;
	struct wire_query q;
	struct reply r;
	static const uint8_t alg[] = "\013hmac-sha256";
	static const uint8_t mac[4] = {1, 2, 3, 4};

	/* www.home.lab A, OPT, then a TSIG whose key name is compressed
	 * (a pointer to "home.lab" in the question). */
	memset(pkt, 0, 12);
	wire_set16(pkt, 0x7777);
	wire_set16(pkt + 2, WIRE_RD);
	wire_set16(pkt + 4, 1);
	wire_set16(pkt + 10, 2);
	len = 12;
	memcpy(pkt + len, "\3www\4home\3lab", 14);
	len += 14;
	wire_set16(pkt + len, WIRE_T_A);
	wire_set16(pkt + len + 2, WIRE_CLASS_IN);
	len += 4;
	static const uint8_t optrr[11] = {0, 0, 41, 4, 0};
	memcpy(pkt + len, optrr, 11);
	len += 11;
	size_t tsig_at = len;
	memcpy(pkt + len, "\3key\300\020", 6); /* key.home.lab. */
	len += 6;
	wire_set16(pkt + len, WIRE_T_TSIG);
	wire_set16(pkt + len + 2, WIRE_CLASS_ANY);
	wire_set32(pkt + len + 4, 0);
	wire_set16(pkt + len + 8,
		   (uint16_t)(sizeof(alg) + 10 + sizeof(mac) + 6));
	len += 10;
	memcpy(pkt + len, alg, sizeof(alg));
	len += sizeof(alg);
	static const uint8_t tf[8] = {0, 0, 0x65, 0x53, 0xf1, 0x00, 1, 0x2c};
	memcpy(pkt + len, tf, 8); /* time signed, fudge 300 */
	len += 8;
	wire_set16(pkt + len, sizeof(mac));
	len += 2;
	memcpy(pkt + len, mac, sizeof(mac));
	len += sizeof(mac);
	wire_set16(pkt + len, 0x7777); /* original ID */
	wire_set16(pkt + len + 2, 0);
	wire_set16(pkt + len + 4, 0);
	len += 6;
	if (!ok(wire_parse_query(pkt, len, &q) == WIRE_OK && q.has_tsig &&
		    q.tsig_off == tsig_at,
		"signed query parses"))
		return;
	size_t n = answer_tsig_error(&q, pkt, WIRE_TSIG_BADKEY, 1232, out,
				     sizeof(out));
	if (!ok(n && parse_reply(out, n, &r), "BADKEY reply parses"))
		return;
	is_int(r.h.id, 0x7777, "BADKEY: the client's ID");
	is_int(RCODE(r), WIRE_NOTAUTH,
	       "BADKEY: RCODE NOTAUTH (RFC 8945 5.2.2)");
	ok(r.h.qdcount == 1 && r.h.ancount == 0 && r.h.nscount == 0 &&
	       r.h.arcount == 2,
	   "BADKEY: question, OPT and TSIG");
	is_mem(r.qname, r.qname_len, N("\3www\4home\3lab"),
	       "BADKEY: the question echoed");
	is_int(r.rr[0].type, WIRE_T_OPT, "BADKEY: OPT first");
	const struct rr *t = &r.rr[1];
	is_int(t->type, WIRE_T_TSIG, "BADKEY: TSIG last");
	is_mem(t->owner, t->owner_len, N("\3key\4home\3lab"),
	       "BADKEY: the key name, written out whole");
	ok(t->rclass == WIRE_CLASS_ANY && t->ttl == 0,
	   "BADKEY: class ANY, TTL 0");
	is_int(t->rdlen, sizeof(alg) + 16, "BADKEY: RDATA without MAC");
	is_mem(t->rdata, sizeof(alg), alg, sizeof(alg),
	       "BADKEY: the request's algorithm");
	is_mem(t->rdata + sizeof(alg), 8, tf, 8,
	       "BADKEY: the request's time signed and fudge");
	const uint8_t *f = t->rdata + sizeof(alg) + 8;
	ok(wire_get16(f) == 0 && wire_get16(f + 2) == 0x7777 &&
	       wire_get16(f + 4) == WIRE_TSIG_BADKEY && wire_get16(f + 6) == 0,
	   "BADKEY: MAC size 0, original ID, error 17, no other data");
	ok(wire_check_message(out, n), "BADKEY: a whole message");

	is_int(answer_tsig_error(&q, pkt, WIRE_TSIG_BADKEY, 1232, out, 40), 0,
	       "BADKEY: 0 when it does not fit");
	q.has_tsig = false;
	is_int(answer_tsig_error(&q, pkt, WIRE_TSIG_BADKEY, 1232, out,
				 sizeof(out)),
	       0, "BADKEY: 0 for an unsigned query");
}

int main(void)
{
	char err[CONF_ERR_MAX] = "";
	struct conf *c = main_config();
	struct zone *z = zone_build(c, err, sizeof(err));

	conf_free(c); /* the store keeps its own copies */
	if (!ok(z != NULL, "the test zones build")) {
		diag("%s", err);
		return done_testing();
	}
	test_lookup(z);
	test_answers(z);
	zone_free(z);
	test_small();
	test_errors();
	test_limits();
	test_rdata();
	test_error_flags();
	test_tsig_error();
	return done_testing();
}
