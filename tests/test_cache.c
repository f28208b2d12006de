/*
 * test_cache.c - unit tests for the reply cache (src/cache.c): how long a
 * reply is kept (RFC 2181 8, RFC 2308 5), which TTLs a client sees, and
 * what is never kept.
 *
 * Replies are written out by hand, names uncompressed, so that each test
 * says what the upstream sent.  Time is the now_ms argument: no sleeping.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../src/cache.h"
#include "../src/wire.h"
#include "pkt.h"
#include "tap.h"

#define N(s) (const uint8_t *)(s), sizeof(s)
#define QNAME "\3www\7example\3net"
#define TARGET "\6target\7example\3net"
#define ZONE "\7example\3net"

#define T0 1000000u /* a start time, in ms */

/* Header and the question for QNAME/qtype. */
static void start(struct pkt *p, unsigned rcode, unsigned qtype, unsigned an,
		  unsigned ns, unsigned ar)
{
	p->len = 0;
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode);
	put16(p, 1);
	put16(p, an);
	put16(p, ns);
	put16(p, ar);
	put(p, N(QNAME));
	put16(p, qtype);
	put16(p, WIRE_CLASS_IN);
}

static void rr(struct pkt *p, const uint8_t *owner, size_t olen, unsigned type,
	       unsigned rclass, unsigned long ttl, const void *rd, size_t rdlen)
{
	put(p, owner, olen);
	put16(p, type);
	put16(p, rclass);
	put32(p, ttl);
	put16(p, (unsigned)rdlen);
	put(p, rd, rdlen);
}

static void a_rr(struct pkt *p, const uint8_t *owner, size_t olen,
		 unsigned long ttl)
{
	const uint8_t addr[4] = {192, 0, 2, 7};
	rr(p, owner, olen, WIRE_T_A, WIRE_CLASS_IN, ttl, addr, 4);
}

static void cname_rr(struct pkt *p, unsigned long ttl)
{
	rr(p, N(QNAME), WIRE_T_CNAME, WIRE_CLASS_IN, ttl, N(TARGET));
}

/* SOA of example.net with the given TTL and minimum. */
static void soa_rr(struct pkt *p, unsigned long ttl, unsigned long minimum)
{
	struct pkt rd = {{0}, 0};
	put(&rd, N("\2ns" ZONE));
	put(&rd, N("\4host" ZONE));
	put32(&rd, 1);
	put32(&rd, 3600);
	put32(&rd, 600);
	put32(&rd, 86400);
	put32(&rd, minimum);
	rr(p, N(ZONE), WIRE_T_SOA, WIRE_CLASS_IN, ttl, rd.b, rd.len);
}

/* The TTL of record i (in message order) of m. */
static long ttl_of(const uint8_t *m, size_t len, unsigned i)
{
	struct wire_rrs it;
	struct wire_rr r;

	if (!wire_rrs_begin(&it, m, len))
		return -1;
	for (unsigned k = 0; wire_rrs_next(&it, &r); k++)
		if (k == i)
			return (long)wire_get32(m + r.ttl_at);
	return -1;
}

static const uint8_t KEY[] = "\3www\7example\3net\0\1\0\1\0\0\0";

static struct cache *new_cache(uint32_t min_ttl, uint32_t max_ttl, uint32_t neg)
{
	struct cache_limits lim = {100, min_ttl, max_ttl, neg, 0};
	return cache_new(&lim);
}

/* Store p at T0, then ask at T0 + after_ms; returns the hit's length. */
static size_t store_ask(struct cache *c, struct pkt *p, unsigned after_ms,
			uint8_t *out)
{
	cache_store(c, KEY, sizeof(KEY), p->b, p->len, T0);
	return cache_lookup(c, KEY, sizeof(KEY), T0 + after_ms, out, 1024, NULL);
}

static void test_positive(void)
{
	struct cache *c = new_cache(0, 86400, 300);
	struct pkt p;
	uint8_t out[1024];

	start(&p, 0, WIRE_T_A, 1, 0, 0);
	a_rr(&p, N(QNAME), 300);
	ok(store_ask(c, &p, 299000, out) == p.len, "A 300: a hit at 299 s");
	is_int(ttl_of(out, p.len, 0), 1, "A 300: TTL 1 left at 299 s");
	ok(cache_lookup(c, KEY, sizeof(KEY), T0 + 300000, out, 1024, NULL) == 0,
	   "A 300: gone at 300 s");

	/* A CNAME asked for is an answer, not a chain. */
	start(&p, 0, WIRE_T_CNAME, 1, 0, 0);
	cname_rr(&p, 3600);
	ok(store_ask(c, &p, 3599000, out) == p.len,
	   "CNAME asked for: kept for its TTL");
	/* The chain with the type asked at its end is positive too. */
	start(&p, 0, WIRE_T_A, 2, 0, 0);
	cname_rr(&p, 3600);
	a_rr(&p, N(TARGET), 100);
	ok(store_ask(c, &p, 99000, out) == p.len &&
	       cache_lookup(c, KEY, sizeof(KEY), T0 + 100000, out, 1024, NULL) == 0,
	   "CNAME then A: kept for the smaller TTL");
	cache_free(c);
}

/* Defect 3 of issue 8: CNAME (TTL 3600) then NODATA (SOA minimum 5). */
static void test_cname_nodata(void)
{
	struct pkt p;
	uint8_t out[1024];

	for (int with_min = 0; with_min < 2; with_min++) {
		struct cache *c = new_cache(with_min ? 60 : 0, 86400, 300);
		const char *tag = with_min ? "min_ttl 60" : "min_ttl 0";
		start(&p, 0, WIRE_T_A, 1, 1, 0);
		cname_rr(&p, 3600);
		soa_rr(&p, 3600, 5);
		ok(store_ask(c, &p, 4000, out) == p.len,
		   "CNAME+NODATA (%s): a hit at 4 s", tag);
		ok(cache_lookup(c, KEY, sizeof(KEY), T0 + 5000, out, 1024, NULL) == 0,
		   "CNAME+NODATA (%s): gone at 5 s (the negative TTL)", tag);
		ok(ttl_of(p.b, p.len, 1) == 5,
		   "CNAME+NODATA (%s): the SOA's TTL is 5, not raised", tag);
		ok(ttl_of(p.b, p.len, 0) <= 5,
		   "CNAME+NODATA (%s): the CNAME's TTL within the entry's life",
		   tag);
		cache_free(c);
	}

	/* The same with NXDOMAIN at the chain's end (RFC 6604). */
	struct cache *c = new_cache(60, 86400, 300);
	start(&p, WIRE_NXDOMAIN, WIRE_T_A, 1, 1, 0);
	cname_rr(&p, 3600);
	soa_rr(&p, 3600, 5);
	ok(store_ask(c, &p, 4000, out) == p.len &&
	       cache_lookup(c, KEY, sizeof(KEY), T0 + 5000, out, 1024, NULL) == 0,
	   "CNAME+NXDOMAIN: kept 5 s");
	is_int(ttl_of(p.b, p.len, 1), 5, "CNAME+NXDOMAIN: SOA TTL 5");

	/* Plain NODATA: min_ttl does not raise it, negative_ttl caps it. */
	start(&p, 0, WIRE_T_A, 0, 1, 0);
	soa_rr(&p, 30, 20);
	ok(store_ask(c, &p, 19000, out) == p.len &&
	       cache_lookup(c, KEY, sizeof(KEY), T0 + 20000, out, 1024, NULL) == 0,
	   "NODATA: kept min(SOA TTL, minimum) = 20 s despite min_ttl 60");
	is_int(ttl_of(p.b, p.len, 0), 20, "NODATA: SOA TTL 20");
	cache_free(c);
	c = new_cache(60, 86400, 10);
	start(&p, 0, WIRE_T_A, 0, 1, 0);
	soa_rr(&p, 30, 20);
	ok(store_ask(c, &p, 9000, out) == p.len &&
	       cache_lookup(c, KEY, sizeof(KEY), T0 + 10000, out, 1024, NULL) == 0,
	   "NODATA: negative_ttl 10 caps it");
	/* A chain without a SOA at its end is not kept (RFC 2308 5). */
	start(&p, 0, WIRE_T_A, 1, 0, 0);
	cname_rr(&p, 3600);
	ok(store_ask(c, &p, 0, out) == 0, "CNAME, no data, no SOA: not kept");
	cache_free(c);
}

/* Defect 4 of issue 8: TTLs of 2^31 and more (RFC 2181 8). */
static void test_huge_ttl(void)
{
	static const unsigned long ttls[] = {0x80000000ul, 0xfffffffful};
	struct pkt p;
	uint8_t out[1024];

	for (size_t i = 0; i < 2; i++) {
		struct cache *c = new_cache(60, 86400, 300);
		start(&p, 0, WIRE_T_A, 2, 0, 0);
		a_rr(&p, N(QNAME), 300);
		a_rr(&p, N(QNAME), ttls[i]);
		ok(store_ask(c, &p, 0, out) == 0,
		   "TTL %#lx in the answer: not kept", ttls[i]);
		ok(ttl_of(p.b, p.len, 1) == (long)ttls[i],
		   "TTL %#lx: not turned into min_ttl", ttls[i]);
		start(&p, 0, WIRE_T_A, 1, 0, 1);
		a_rr(&p, N(QNAME), 300);
		a_rr(&p, N(TARGET), ttls[i]);
		ok(store_ask(c, &p, 0, out) == 0,
		   "TTL %#lx in the additional section: not kept", ttls[i]);
		start(&p, 0, WIRE_T_A, 0, 1, 0);
		soa_rr(&p, ttls[i], 5);
		ok(store_ask(c, &p, 0, out) == 0,
		   "TTL %#lx on a negative answer's SOA: not kept", ttls[i]);
		cache_free(c);
	}
	struct cache *c = new_cache(60, 86400, 300);
	start(&p, 0, WIRE_T_A, 1, 0, 0);
	a_rr(&p, N(QNAME), 0x7fffffffu);
	ok(store_ask(c, &p, 0, out) == p.len,
	   "TTL 2^31-1: kept (capped by max_ttl)");
	is_int(ttl_of(out, p.len, 0), 86400, "TTL 2^31-1: max_ttl");
	cache_free(c);
}

/* A signed reply answers one request only (RFC 8945 5.3). */
static void test_tsig(void)
{
	struct cache *c = new_cache(0, 86400, 300);
	struct pkt p, rd = {{0}, 0};
	uint8_t out[1024];

	put(&rd, N("\013hmac-sha256"));
	put16(&rd, 0);
	put32(&rd, 1700000000ul);
	put16(&rd, 300);
	put16(&rd, 0); /* MAC size */
	put16(&rd, 0x1234);
	put16(&rd, 0);
	put16(&rd, 0);
	start(&p, 0, WIRE_T_A, 1, 0, 1);
	a_rr(&p, N(QNAME), 300);
	rr(&p, N("\3key"), 250, 255, 0, rd.b, rd.len);
	ok(store_ask(c, &p, 0, out) == 0, "a reply with a TSIG: not kept");
	cache_free(c);
}

static void test_key(void)
{
	struct wire_query q;
	uint8_t k1[CACHE_KEY_MAX], k2[CACHE_KEY_MAX];

	memset(&q, 0, sizeof(q));
	memcpy(q.qname, QNAME, sizeof(QNAME));
	q.qname_len = sizeof(QNAME);
	q.qtype = WIRE_T_A;
	q.qclass = WIRE_CLASS_IN;
	size_t n1 = cache_key(k1, &q, 0, 0);
	q.has_tsig = true;
	size_t n2 = cache_key(k2, &q, 0, 0);
	ok(n1 != n2 || memcmp(k1, k2, n1) != 0,
	   "a signed query has keys of its own");
}

/* serve_stale keeps an expired answer for cache_lookup_stale (TTLs
 * set to the stale TTL) while cache_lookup misses and says so. */
static void test_stale(void)
{
	struct cache_limits lim = {100, 0, 86400, 300, 60};
	struct cache *c = cache_new(&lim);
	struct cache_hit hit;
	struct pkt p;
	uint8_t out[1024];

	start(&p, 0, WIRE_T_A, 1, 0, 0);
	a_rr(&p, N(QNAME), 10);
	cache_store(c, KEY, sizeof(KEY), p.b, p.len, T0);
	ok(cache_lookup(c, KEY, sizeof(KEY), T0 + 11000, out, 1024, &hit) == 0,
	   "stale: a miss past the TTL");
	ok(hit.stale, "stale: the miss says a stale answer is there");
	is_int((long)cache_lookup_stale(c, KEY, sizeof(KEY), T0 + 11000, 30,
					out, 1024),
	       (long)p.len, "stale: served past the TTL");
	is_int(ttl_of(out, p.len, 0), 30, "stale: with TTL 30");
	ok(cache_lookup_stale(c, KEY, sizeof(KEY), T0 + 70000, 30, out,
			      1024) == 0,
	   "stale: gone once serve_stale has passed too");
	ok(cache_lookup(c, KEY, sizeof(KEY), T0 + 70000, out, 1024, &hit) == 0 &&
		   !hit.stale,
	   "stale: and the miss says none is left");
	cache_free(c);

	lim.serve_stale = 0;
	c = cache_new(&lim);
	cache_store(c, KEY, sizeof(KEY), p.b, p.len, T0);
	ok(cache_lookup_stale(c, KEY, sizeof(KEY), T0 + 10000, 30, out,
			      1024) == 0,
	   "serve_stale = 0: nothing past the TTL");
	cache_free(c);
}

/* A hit in the last tenth of the TTL asks for a prefetch; TTLs under 10
 * seconds never do. */
static void test_prefetch_hint(void)
{
	struct cache *c = new_cache(0, 86400, 300);
	struct cache_hit hit;
	struct pkt p;
	uint8_t out[1024];

	start(&p, 0, WIRE_T_A, 1, 0, 0);
	a_rr(&p, N(QNAME), 100);
	cache_store(c, KEY, sizeof(KEY), p.b, p.len, T0);
	cache_lookup(c, KEY, sizeof(KEY), T0 + 89000, out, 1024, &hit);
	ok(!hit.prefetch, "prefetch: not at 89 of 100 s");
	cache_lookup(c, KEY, sizeof(KEY), T0 + 91000, out, 1024, &hit);
	ok(hit.prefetch, "prefetch: at 91 of 100 s");
	start(&p, 0, WIRE_T_A, 1, 0, 0);
	a_rr(&p, N(QNAME), 5);
	cache_store(c, KEY, sizeof(KEY), p.b, p.len, T0);
	cache_lookup(c, KEY, sizeof(KEY), T0 + 4900, out, 1024, &hit);
	ok(!hit.prefetch, "prefetch: never for a TTL under 10 s");
	cache_free(c);
}

/* A large cache is striped; its size bound still holds overall and the
 * counters add up over the stripes. */
static void test_stripes(void)
{
	struct cache_limits lim = {2048, 0, 86400, 300, 0};
	struct cache *c = cache_new(&lim);
	struct cache_stats st;
	struct pkt p;
	uint8_t key[sizeof(KEY) + 4];

	start(&p, 0, WIRE_T_A, 1, 0, 0);
	a_rr(&p, N(QNAME), 300);
	for (uint32_t i = 0; i < 5000; i++) {
		memcpy(key, KEY, sizeof(KEY));
		wire_set32(key + sizeof(KEY), i);
		cache_store(c, key, sizeof(key), p.b, p.len, T0);
	}
	cache_get_stats(c, &st);
	ok(st.entries <= 2048 + 16, "stripes: at most size entries (%zu)",
	   st.entries);
	ok(st.entries >= 1800, "stripes: the stripes are used evenly (%zu)",
	   st.entries);
	is_int((long)st.stored, 5000, "stripes: every store counted");
	is_int((long)(st.entries + st.evicted), 5000,
	       "stripes: entries + evicted = stored");
	cache_free(c);
}

/* splitdnsctl flush NAME: every entry of the name, in any stripe and
 * letter case, and nothing of its parent, its children or another name. */
static void store_under(struct cache *c, const uint8_t *name, size_t nlen,
			uint32_t n, struct pkt *p)
{
	uint8_t key[CACHE_KEY_MAX];

	for (uint32_t i = 0; i < n; i++) {
		memcpy(key, name, nlen);
		memcpy(key + nlen, "\0\1\0\1\0\0\0", 7);
		wire_set32(key + nlen + 7, i);
		cache_store(c, key, nlen + 11, p->b, p->len, T0);
	}
}

static void test_flush(void)
{
	struct cache_limits lim = {4096, 0, 86400, 300, 0};
	struct cache *c = cache_new(&lim);
	struct cache_stats st;
	struct pkt p;

	start(&p, 0, WIRE_T_A, 1, 0, 0);
	a_rr(&p, N(QNAME), 300);
	store_under(c, N(QNAME), 100, &p);
	store_under(c, N("\3sub" QNAME), 50, &p);
	store_under(c, N(ZONE), 50, &p);
	store_under(c, N("\3www\7example\3org"), 50, &p);
	is_int(cache_flush_name(c, N("\3WwW\7EXAMPLE\3nEt")), 100,
	       "flush NAME: its 100 entries, in any case and stripe");
	cache_get_stats(c, &st);
	is_int(st.entries, 150, "flush NAME: its parent, child and others stay");
	ok(cache_lookup(c, KEY, sizeof(KEY), T0, (uint8_t[1024]){0}, 1024,
			NULL) == 0,
	   "flush NAME: no hit for it afterwards");
	is_int(cache_flush_name(c, N("\3www\7example\3net")), 0,
	       "flush NAME again: nothing left");
	is_int(cache_flush_name(c, (const uint8_t *)"", 0), 0,
	       "flush of an empty name: nothing");
	is_int(cache_flush(c), 150, "flush: every entry");
	cache_get_stats(c, &st);
	is_int(st.entries, 0, "flush: the cache is empty");
	is_int(st.bytes, 0, "flush: its bytes too");
	cache_free(c);
}

int main(void)
{
	test_positive();
	test_cname_nodata();
	test_huge_ttl();
	test_tsig();
	test_key();
	test_stale();
	test_prefetch_hint();
	test_stripes();
	test_flush();
	return done_testing();
}
