/*
 * test_doh.c - the parts of doh.c that are ours rather than nghttp2's:
 * the base64url decoder of GET requests (RFC 4648 5, RFC 8484 4.1) and
 * the smallest TTL behind Cache-Control max-age (RFC 8484 5.1).  The
 * HTTP/2 side is tested against real clients in t_tls_listen.py.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../src/doh.h"
#include "pkt.h"
#include "tap.h"

static void decodes(const char *text, const char *want)
{
	uint8_t out[64];
	long n = doh_base64url_decode(text, strlen(text), out, sizeof(out));
	ok(n == (long)strlen(want) && memcmp(out, want, strlen(want)) == 0,
	   "base64url '%s' -> '%s' (got %ld)", text, want, n);
}

static void refused(const char *text, size_t cap, const char *why)
{
	uint8_t out[64];
	ok(doh_base64url_decode(text, strlen(text), out, cap) == -1,
	   "base64url '%s' refused: %s", text, why);
}

static void test_base64url(void)
{
	/* RFC 4648 10, without padding. */
	decodes("", "");
	decodes("Zg", "f");
	decodes("Zm8", "fo");
	decodes("Zm9v", "foo");
	decodes("Zm9vYg", "foob");
	decodes("Zm9vYmE", "fooba");
	decodes("Zm9vYmFy", "foobar");
	decodes("Zg==", "f"); /* padding tolerated */
	uint8_t out[64];
	ok(doh_base64url_decode("-_8", 3, out, sizeof(out)) == 2 &&
	       out[0] == 0xfb && out[1] == 0xff,
	   "'-' and '_' are 62 and 63 (URL alphabet)");
	refused("+/8", 64, "'+' and '/' are not base64url");
	refused("Z", 64, "one character cannot end a byte");
	refused("Zh", 64, "bits left over are not zero (RFC 4648 3.5)");
	refused("Zm9v!", 64, "a character outside the alphabet");
	refused("Zm9vYmFy", 5, "more bytes than the room");
	ok(doh_base64url_decode("Zm9vYmFy", 8, out, 6) == 6,
	   "exactly the room is fine");
	/* RFC 8484 4.1.1: the GET example, www.example.com A. */
	const char *ex = "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
	long n = doh_base64url_decode(ex, strlen(ex), out, sizeof(out));
	ok(n == 33 && out[2] == 0x01 && out[5] == 1 && out[12] == 3 &&
	       memcmp(out + 13, "www", 3) == 0 && out[32] == 1,
	   "RFC 8484's example decodes to its 33-octet query (got %ld)", n);
}

/* A reply to www.example. A with the given answer and authority TTLs
 * (0 records when the array's first value is 0) and an OPT record. */
static void reply(struct pkt *p, const uint32_t *an, unsigned nan,
		  const uint32_t *ns, unsigned nns)
{
	static const uint8_t name[] = "\3www\7example";
	p->len = 0;
	put16(p, 0);
	put16(p, 0x8180);
	put16(p, 1);
	put16(p, nan);
	put16(p, nns);
	put16(p, 1);
	put(p, name, sizeof(name)); /* with the root label */
	put16(p, 1);
	put16(p, 1);
	for (unsigned i = 0; i < nan; i++) {
		put16(p, 0xc00c);
		put16(p, 1);
		put16(p, 1);
		put32(p, an[i]);
		put16(p, 4);
		put32(p, 0xc0000201);
	}
	for (unsigned i = 0; i < nns; i++) {
		put16(p, 0xc010); /* example. */
		put16(p, 2);
		put16(p, 1);
		put32(p, ns[i]);
		put16(p, 2);
		put16(p, 0xc00c);
	}
	put(p, "", 1); /* OPT: its "TTL" is flags, never a TTL */
	put16(p, 41);
	put16(p, 1232);
	put32(p, 7);
	put16(p, 0);
}

static void test_min_ttl(void)
{
	struct pkt p;
	const uint32_t an[] = {300, 42, 3600}, ns[] = {900, 60};

	reply(&p, an, 3, ns, 2);
	is_int(doh_min_ttl(p.b, p.len), 42, "smallest answer TTL");
	reply(&p, NULL, 0, ns, 2);
	is_int(doh_min_ttl(p.b, p.len), 60,
	       "no answer: smallest authority TTL (RFC 2308)");
	reply(&p, NULL, 0, NULL, 0);
	is_int(doh_min_ttl(p.b, p.len), 0, "no records (OPT not counted): 0");
	reply(&p, an, 3, ns, 2);
	is_int(doh_min_ttl(p.b, p.len - 20), 0, "a cut message: 0");
	is_int(doh_min_ttl(p.b, 5), 0, "less than a header: 0");
}

int main(void)
{
	test_base64url();
	test_min_ttl();
	return done_testing();
}
