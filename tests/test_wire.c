/*
 * test_wire.c - unit tests for the DNS message codec (src/wire.c).
 *
 * Every packet is written out by hand, byte by byte, so that a test says
 * exactly what is on the wire; the codec under test is never used to build
 * its own input.  Octal escapes in name literals are split ("\3" "192")
 * wherever a digit follows, so that they read as intended.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../src/wire.h"
#include "pkt.h"
#include "tap.h"

/* A name literal as (pointer, length): the literal's own NUL is the root
 * label. */
#define N(s) (const uint8_t *)(s), sizeof(s)

#define WWW "\3www\7example\3com"	/* 17 octets with the root */
#define WWW_MIXED "\3wWw\7ExAmPlE\3CoM" /* the same name, other case */

static void header(struct pkt *p, unsigned id, unsigned flags, unsigned qd,
		   unsigned an, unsigned ns, unsigned ar)
{
	p->len = 0;
	put16(p, id);
	put16(p, flags);
	put16(p, qd);
	put16(p, an);
	put16(p, ns);
	put16(p, ar);
}

static void question(struct pkt *p, const uint8_t *name, size_t len,
		     unsigned type)
{
	put(p, name, len);
	put16(p, type);
	put16(p, WIRE_CLASS_IN);
}

/* An OPT record (RFC 6891 6.1.2): root owner, size, ext-rcode, version,
 * DO, then rdlen and options (already encoded). */
static void opt(struct pkt *p, unsigned size, unsigned version, int do_bit,
		const void *options, size_t olen)
{
	uint8_t root = 0;
	put(p, &root, 1);
	put16(p, WIRE_T_OPT);
	put16(p, size);
	put32(p, ((unsigned long)version << 16) | (do_bit ? 0x8000u : 0));
	put16(p, (unsigned)olen);
	if (olen)
		put(p, options, olen);
}

/* An A record whose owner is a pointer to the question name. */
static void answer_a(struct pkt *p, const uint8_t addr[4])
{
	put16(p, 0xc00c);
	put16(p, WIRE_T_A);
	put16(p, WIRE_CLASS_IN);
	put32(p, 300);
	put16(p, 4);
	put(p, addr, 4);
}

/* ---- wire_read_name ---------------------------------------------------- */

static void test_read_name(void)
{
	uint8_t out[WIRE_NAME_MAX];
	size_t off;
	int n;

	/* Plain, after a header's worth of bytes. */
	{
		struct pkt p = {{0}, WIRE_HEADER_LEN};
		put(&p, N(WWW));
		off = WIRE_HEADER_LEN;
		n = wire_read_name(p.b, p.len, &off, out);
		is_int(n, 17, "read_name plain: length 17");
		is_int(off, WIRE_HEADER_LEN + 17,
		       "read_name plain: off past name");
		is_mem(out, n > 0 ? (size_t)n : 0, N(WWW),
		       "read_name plain: the name");
		off = WIRE_HEADER_LEN;
		is_int(wire_read_name(p.b, p.len, &off, NULL), 17,
		       "read_name out=NULL only skips");
		is_int(off, WIRE_HEADER_LEN + 17, "read_name skip: off moved");
	}

	/* Root alone. */
	{
		const uint8_t m[] = {0};
		off = 0;
		is_int(wire_read_name(m, 1, &off, out), 1, "read_name root: 1");
		is_int(off, 1, "read_name root: off 1");
	}

	/* Compression: example.com at 12, www + pointer at 25, a + pointer
	 * to the www name at 31 (two hops). */
	{
		struct pkt p = {{0}, WIRE_HEADER_LEN};
		put(&p, N("\7example\3com")); /* 12..24 */
		put(&p, "\3www\xc0\x0c", 6);  /* 25..30 */
		put(&p, "\1a\xc0\x19", 4);    /* 31..34 */
		put(&p, "\xc0\x1f", 2);	      /* 35..36: pointer only */
		off = 25;
		n = wire_read_name(p.b, p.len, &off, out);
		is_int(n, 17, "read_name backward pointer: length");
		is_mem(out, n > 0 ? (size_t)n : 0, N(WWW),
		       "read_name backward pointer: name decompressed");
		is_int(off, 31,
		       "read_name backward pointer: off just past "
		       "the pointer");
		off = 31;
		n = wire_read_name(p.b, p.len, &off, out);
		is_mem(out, n > 0 ? (size_t)n : 0, N("\1a" WWW),
		       "read_name two hops: a.www.example.com");
		is_int(off, 35,
		       "read_name two hops: off past the first "
		       "pointer");
		off = 35;
		n = wire_read_name(p.b, p.len, &off, out);
		is_mem(out, n > 0 ? (size_t)n : 0, N("\1a" WWW),
		       "read_name name that is only a pointer");
		is_int(off, 37, "read_name pointer only: off + 2");
	}

	/* Pointer loops and bad pointers. */
	{
		struct pkt p = {{0}, WIRE_HEADER_LEN};
		put(&p, "\xc0\x0e\xc0\x0c", 4); /* 12 -> 14 -> 12 */
		off = 14;
		is_int(wire_read_name(p.b, p.len, &off, out), -1,
		       "read_name pointer loop (14 -> 12 -> 14)");
		is_int(off, 14, "read_name failure leaves off alone");
		off = 12;
		is_int(wire_read_name(p.b, p.len, &off, out), -1,
		       "read_name forward pointer (12 -> 14)");
	}
	{
		struct pkt p = {{0}, WIRE_HEADER_LEN};
		put(&p, "\xc0\x0c", 2);
		off = 12;
		is_int(wire_read_name(p.b, p.len, &off, out), -1,
		       "read_name pointer to itself");
	}
	{
		struct pkt p = {{0}, WIRE_HEADER_LEN};
		put(&p, "\1a\xc0\x0c", 4); /* label, then back to its start */
		off = 12;
		is_int(wire_read_name(p.b, p.len, &off, out), -1,
		       "read_name pointer to its own first label");
	}
	{
		/* A pointer into the middle of the labels just read. */
		struct pkt p = {{0}, WIRE_HEADER_LEN};
		put(&p, N("\3com"));	      /* 12..16 */
		put(&p, "\1a\1b\xc0\x1a", 6); /* 17..22: -> 0x1a = 26 */
		put(&p, "\1c\xc0\x11", 4);    /* 23..26 */
		off = 23;
		is_int(wire_read_name(p.b, p.len, &off, out), -1,
		       "read_name pointer that goes forward after a hop");
	}
	{
		/* A long chain of pointers, each strictly backward: bounded. */
		struct pkt p = {{0}, 0};
		uint8_t root = 0;
		put(&p, &root, 1);
		size_t prev = 0;
		for (int i = 0; i < 300; i++) {
			size_t here = p.len;
			put16(&p, 0xc000u | (unsigned)prev);
			prev = here;
		}
		off = 1 + 2 * 5; /* a short chain: 6 hops */
		is_int(wire_read_name(p.b, p.len, &off, out), 1,
		       "read_name chain of 6 backward pointers");
		off = prev;
		is_int(wire_read_name(p.b, p.len, &off, out), -1,
		       "read_name chain of 300 pointers hits the hop limit");
	}

	/* Label lengths and types. */
	{
		struct pkt p = {{0}, 0};
		uint8_t l = 63;
		put(&p, &l, 1);
		memset(p.b + p.len, 'x', 63);
		p.len += 63;
		p.b[p.len++] = 0;
		off = 0;
		is_int(wire_read_name(p.b, p.len, &off, out), 65,
		       "read_name label of 63 octets");
		p.b[0] = 64;
		p.b[p.len++] = 0;
		off = 0;
		is_int(wire_read_name(p.b, p.len, &off, out), -1,
		       "read_name label of 64 octets (0x40: a label type)");
	}
	{
		const uint8_t t40[] = {0x41, 'a', 0};
		const uint8_t t80[] = {0x81, 'a', 0};
		const uint8_t tbf[] = {0xbf, 'a', 0};
		off = 0;
		is_int(wire_read_name(t40, sizeof(t40), &off, out), -1,
		       "read_name 0x40 label type refused");
		off = 0;
		is_int(wire_read_name(t80, sizeof(t80), &off, out), -1,
		       "read_name 0x80 label type refused");
		off = 0;
		is_int(wire_read_name(tbf, sizeof(tbf), &off, out), -1,
		       "read_name 0xbf label type refused");
	}

	/* 255 octets (63+63+63+61 and the root) and 256. */
	{
		struct pkt p = {{0}, 0};
		const int labs[] = {63, 63, 63, 61};
		for (int i = 0; i < 4; i++) {
			p.b[p.len++] = (uint8_t)labs[i];
			memset(p.b + p.len, 'a' + i, (size_t)labs[i]);
			p.len += (size_t)labs[i];
		}
		p.b[p.len++] = 0;
		off = 0;
		n = wire_read_name(p.b, p.len, &off, out);
		is_int(n, 255, "read_name name of exactly 255 octets");
		is_mem(out, n > 0 ? (size_t)n : 0, p.b, 255,
		       "read_name 255: copied whole");

		p.b[192] = 62; /* the last label one longer: 256 */
		memmove(p.b + 193 + 62, p.b + 193 + 61, 1);
		p.b[193 + 61] = 'd';
		p.len = 256;
		off = 0;
		is_int(wire_read_name(p.b, p.len, &off, out), -1,
		       "read_name name of 256 octets");
	}
	{
		/* 256 octets only once decompressed: 2 + 254. */
		struct pkt p = {{0}, 0};
		const int labs[] = {63, 63, 63, 60};
		for (int i = 0; i < 4; i++) {
			p.b[p.len++] = (uint8_t)labs[i];
			memset(p.b + p.len, 'a' + i, (size_t)labs[i]);
			p.len += (size_t)labs[i];
		}
		p.b[p.len++] = 0; /* 254 octets at 0 */
		size_t at = p.len;
		put(&p, "\1z\xc0\x00", 4);
		off = 0;
		is_int(wire_read_name(p.b, p.len, &off, NULL), 254,
		       "read_name 254-octet base name");
		off = at;
		is_int(wire_read_name(p.b, p.len, &off, out), -1,
		       "read_name 256 octets through a pointer");
		p.len = at;
		put(&p, "\xc0\x00", 2);
		off = at;
		is_int(wire_read_name(p.b, p.len, &off, out), 254,
		       "read_name 254 octets through a pointer");
	}

	/* Cut short. */
	{
		const uint8_t m[] = {3, 'w', 'w', 'w', 7, 'e', 'x'};
		off = 0;
		is_int(wire_read_name(m, sizeof(m), &off, out), -1,
		       "read_name truncated label");
		const uint8_t noroot[] = {3, 'w', 'w', 'w'};
		off = 0;
		is_int(wire_read_name(noroot, sizeof(noroot), &off, out), -1,
		       "read_name missing root label");
		const uint8_t half[] = {0, 1, 'a', 0xc0};
		off = 1;
		is_int(wire_read_name(half, sizeof(half), &off, out), -1,
		       "read_name pointer cut after its first octet");
		off = sizeof(half);
		is_int(wire_read_name(half, sizeof(half), &off, out), -1,
		       "read_name at the end of the message");
		off = sizeof(half) + 10;
		is_int(wire_read_name(half, sizeof(half), &off, out), -1,
		       "read_name past the end of the message");
		off = 0;
		is_int(wire_read_name(half, 0, &off, out), -1,
		       "read_name in an empty message");
	}
}

/* ---- wire_skip_rr, wire_copy_rr --------------------------------------- */

static void test_rr(void)
{
	struct pkt p;
	uint16_t type = 0, rdlen = 0;
	size_t off, rd = 0;
	const uint8_t addr[4] = {192, 0, 2, 1};

	header(&p, 1, 0x8180, 1, 1, 0, 0);
	question(&p, N(WWW), WIRE_T_A);
	size_t start = p.len;
	answer_a(&p, addr);
	off = start;
	ok(wire_skip_rr(p.b, p.len, &off, &type, &rd, &rdlen),
	   "skip_rr: an A record");
	is_int(type, WIRE_T_A, "skip_rr: type A");
	is_int(rdlen, 4, "skip_rr: rdlen 4");
	is_int(rd, start + 12, "skip_rr: rdata offset");
	is_int(off, p.len, "skip_rr: off at the end");
	off = start;
	ok(!wire_skip_rr(p.b, p.len - 1, &off, &type, &rd, &rdlen),
	   "skip_rr: rdata cut short");
	off = start;
	ok(!wire_skip_rr(p.b, start + 11, &off, NULL, NULL, NULL),
	   "skip_rr: fixed fields cut short");

	/* wire_copy_rr writes compressed names out in full. */
	header(&p, 1, 0x8180, 1, 2, 0, 0);
	question(&p, N(WWW), WIRE_T_MX);
	start = p.len;
	put16(&p, 0xc00c); /* MX 10 mail.<question name> */
	put16(&p, WIRE_T_MX);
	put16(&p, WIRE_CLASS_IN);
	put32(&p, 60);
	put16(&p, 2 + 7);
	put16(&p, 10);
	put(&p, "\4mail\xc0\x0c", 7);
	uint8_t buf[512];
	struct wire_buf b = {buf, 0, sizeof(buf), false};
	off = start;
	ok(wire_copy_rr(p.b, p.len, &off, &b), "copy_rr: MX record");
	is_int(off, p.len, "copy_rr: off past the record");
	struct pkt want = {{0}, 0};
	put(&want, N(WWW));
	put16(&want, WIRE_T_MX);
	put16(&want, WIRE_CLASS_IN);
	put32(&want, 60);
	put16(&want, 2 + 5 + 17);
	put16(&want, 10);
	put(&want, N("\4mail" WWW));
	is_mem(buf, b.len, want.b, want.len, "copy_rr: names in full");

	/* A name inside RDATA that runs past the RDATA. */
	header(&p, 1, 0x8180, 1, 1, 0, 0);
	question(&p, N(WWW), WIRE_T_CNAME);
	start = p.len;
	put16(&p, 0xc00c);
	put16(&p, WIRE_T_CNAME);
	put16(&p, WIRE_CLASS_IN);
	put32(&p, 60);
	put16(&p, 2);
	put(&p, N("\1x"));
	b.len = 0;
	off = start;
	ok(!wire_copy_rr(p.b, p.len, &off, &b),
	   "copy_rr: a name longer than its RDATA is refused");
}

/* ---- wire_parse_query -------------------------------------------------- */

static void base_query(struct pkt *p, unsigned flags)
{
	header(p, 0x1234, flags, 1, 0, 0, 0);
	question(p, N(WWW_MIXED), WIRE_T_AAAA);
}

static void set_arcount(struct pkt *p, unsigned n)
{
	wire_set16(p->b + 10, (uint16_t)n);
}

static void test_parse_query(void)
{
	struct wire_query q;
	struct pkt p;
	char name[100];

	base_query(&p, WIRE_RD);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_OK, "query: plain OK");
	is_int(q.hdr.id, 0x1234, "query: id");
	is_int(q.hdr.flags, WIRE_RD, "query: flags");
	is_int(q.qname_len, 17, "query: qname_len");
	is_mem(q.qname, q.qname_len, N(WWW_MIXED),
	       "query: qname kept in the client's case");
	is_int(q.qtype, WIRE_T_AAAA, "query: qtype");
	is_int(q.qclass, WIRE_CLASS_IN, "query: qclass");
	is_int(q.question_end, 12 + 17 + 4, "query: question_end");
	ok(!q.has_opt, "query: no OPT");

	is_int(wire_parse_query(p.b, 11, &q), WIRE_DROP,
	       "query: 11 bytes -> DROP");
	is_int(wire_parse_query(p.b, 0, &q), WIRE_DROP,
	       "query: 0 bytes -> DROP");
	base_query(&p, WIRE_QR | WIRE_RD);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_DROP,
	       "query: QR=1 -> DROP");
	base_query(&p, WIRE_QR | (4u << 11));
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_DROP,
	       "query: QR=1 with opcode NOTIFY -> DROP");

	const unsigned opcodes[] = {1, 2, 4, 5, 15};
	for (size_t i = 0; i < sizeof(opcodes) / sizeof(opcodes[0]); i++) {
		base_query(&p, (opcodes[i] << 11) | WIRE_RD);
		snprintf(name, sizeof(name), "query: opcode %u -> BAD_OPCODE",
			 opcodes[i]);
		is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_OPCODE, name);
		snprintf(name, sizeof(name),
			 "query: opcode %u keeps id and question", opcodes[i]);
		ok(q.hdr.id == 0x1234 && q.qname_len == 17 &&
		       q.question_end == 33,
		   "%s", name);
	}

	/* QDCOUNT. */
	header(&p, 0x1234, 0, 0, 0, 0, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: qdcount 0 -> BAD_FORMAT");
	is_int(q.qname_len, 0, "query: qdcount 0: no question to echo");
	is_int(q.hdr.id, 0x1234, "query: qdcount 0: id kept");
	header(&p, 0x1234, 0, 2, 0, 0, 0);
	question(&p, N(WWW), WIRE_T_A);
	question(&p, N(WWW), WIRE_T_AAAA);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: qdcount 2 -> BAD_FORMAT");
	is_int(q.qname_len, 0, "query: qdcount 2: no question echoed");
	header(&p, 0x1234, 0, 2, 0, 0, 0);
	question(&p, N(WWW), WIRE_T_A);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: qdcount 2 with one question -> BAD_FORMAT");

	/* Answer and authority records in a query. */
	{
		const uint8_t addr[4] = {192, 0, 2, 1};
		header(&p, 0x1234, 0, 1, 1, 0, 0);
		question(&p, N(WWW), WIRE_T_A);
		answer_a(&p, addr);
		is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
		       "query: ancount 1 -> BAD_FORMAT");
		is_int(q.hdr.id, 0x1234, "query: ancount 1: id kept");
		header(&p, 0x1234, 0, 1, 0, 1, 0);
		question(&p, N(WWW), WIRE_T_A);
		answer_a(&p, addr);
		is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
		       "query: nscount 1 -> BAD_FORMAT");
	}

	/* Question cut short, or its name malformed. */
	base_query(&p, 0);
	is_int(wire_parse_query(p.b, p.len - 1, &q), WIRE_BAD_FORMAT,
	       "query: QCLASS cut short -> BAD_FORMAT");
	is_int(q.qname_len, 0, "query: cut question: nothing to echo");
	is_int(wire_parse_query(p.b, 12 + 10, &q), WIRE_BAD_FORMAT,
	       "query: name cut short -> BAD_FORMAT");
	base_query(&p, 2u << 11);
	is_int(wire_parse_query(p.b, p.len - 3, &q), WIRE_BAD_OPCODE,
	       "query: opcode 2, cut question -> BAD_OPCODE");
	is_int(q.qname_len, 0, "query: opcode 2, cut question: no qname");
	header(&p, 0x1234, 0, 1, 0, 0, 0);
	question(&p,
		 N("\x41"
		   "a"),
		 WIRE_T_A);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: 0x40 label type in the question -> BAD_FORMAT");

	/* A compressed question name (the pointer can only go backward,
	 * into the header, which here begins with a root label). */
	header(&p, 0x0000, 0, 1, 0, 0, 0);
	put(&p, "\3www\xc0\x00", 6);
	put16(&p, WIRE_T_A);
	put16(&p, WIRE_CLASS_IN);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: compressed question name -> BAD_FORMAT");
	header(&p, 0x0000, 0, 1, 0, 0, 0);
	put(&p, "\xc0\x00", 2);
	put16(&p, WIRE_T_A);
	put16(&p, WIRE_CLASS_IN);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: question name that is only a pointer -> BAD_FORMAT");

	/* Trailing bytes. */
	base_query(&p, 0);
	p.b[p.len++] = 0;
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: one trailing byte -> BAD_FORMAT");

	/* EDNS. */
	base_query(&p, 0);
	set_arcount(&p, 1);
	opt(&p, 4096, 0, 1, NULL, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_OK, "opt: OK");
	ok(q.has_opt, "opt: has_opt");
	is_int(q.udp_size, 4096, "opt: udp_size 4096");
	ok(q.do_bit, "opt: DO set");
	is_int(q.edns_version, 0, "opt: version 0");
	is_int(q.opt_off, 33, "opt: opt_off after the question");
	is_int(q.opt_len, 11, "opt: opt_len 11");

	base_query(&p, 0);
	set_arcount(&p, 1);
	opt(&p, 100, 0, 0, NULL, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_OK, "opt: size 100 OK");
	is_int(q.udp_size, 100, "opt: udp_size as sent (100)");
	ok(!q.do_bit, "opt: DO clear");

	base_query(&p, 0);
	set_arcount(&p, 1);
	opt(&p, 1232, 1, 1, NULL, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_VERSION,
	       "opt: version 1 -> BAD_VERSION");
	ok(q.has_opt && q.edns_version == 1 && q.qname_len == 17 &&
	       q.hdr.id == 0x1234 && q.do_bit,
	   "opt: BAD_VERSION keeps header, question and OPT fields");

	base_query(&p, 0);
	set_arcount(&p, 2);
	opt(&p, 1232, 0, 0, NULL, 0);
	opt(&p, 1232, 0, 0, NULL, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "opt: two OPT records -> BAD_FORMAT");

	base_query(&p, 0);
	set_arcount(&p, 1);
	put(&p, N("\1a"));
	put16(&p, WIRE_T_OPT);
	put16(&p, 1232);
	put32(&p, 0);
	put16(&p, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "opt: owner not the root -> BAD_FORMAT");

	{
		const uint8_t cookie[] = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
		base_query(&p, 0);
		set_arcount(&p, 1);
		opt(&p, 1232, 0, 0, cookie, sizeof(cookie));
		is_int(wire_parse_query(p.b, p.len, &q), WIRE_OK,
		       "opt: with a cookie option OK");
		is_int(q.opt_len, 11 + 12, "opt: opt_len covers the options");

		/* The option claims 8 octets, the RDATA holds 2 of them. */
		base_query(&p, 0);
		set_arcount(&p, 1);
		opt(&p, 1232, 0, 0, cookie, 6);
		is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
		       "opt: option longer than the RDATA -> BAD_FORMAT");
		base_query(&p, 0);
		set_arcount(&p, 1);
		opt(&p, 1232, 0, 0, cookie, 3);
		is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
		       "opt: 3 octets of option header -> BAD_FORMAT");

		/* RDLEN beyond the message. */
		base_query(&p, 0);
		set_arcount(&p, 1);
		opt(&p, 1232, 0, 0, cookie, sizeof(cookie));
		is_int(wire_parse_query(p.b, p.len - 1, &q), WIRE_BAD_FORMAT,
		       "opt: RDATA cut short -> BAD_FORMAT");
	}

	base_query(&p, 0);
	set_arcount(&p, 1);
	opt(&p, 1232, 0, 0, NULL, 0);
	p.b[p.len++] = 0xff;
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "opt: trailing byte after the OPT -> BAD_FORMAT");

	base_query(&p, 0);
	set_arcount(&p, 2);
	opt(&p, 1232, 0, 0, NULL, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: arcount 2 with one record -> BAD_FORMAT");
	base_query(&p, 0);
	set_arcount(&p, 1);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: arcount 1 with no record -> BAD_FORMAT");
	base_query(&p, 0);
	set_arcount(&p, 0xffff);
	opt(&p, 1232, 0, 0, NULL, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "query: arcount 65535 with one record -> BAD_FORMAT");
}

/* ---- names in text ----------------------------------------------------- */

static void from_text_is(const char *text, const uint8_t *origin, size_t olen,
			 const uint8_t *want, size_t wlen)
{
	uint8_t out[WIRE_NAME_MAX];
	const char *why = NULL;
	char name[200];
	int n = wire_name_from_text(text, origin, olen, out, &why);

	snprintf(name, sizeof(name), "from_text '%s'%s", text,
		 origin ? " with origin" : "");
	if (!is_mem(out, n > 0 ? (size_t)n : 0, want, wlen, name))
		diag("returned %d, why %s", n, why ? why : "(none)");
}

static void from_text_fails(const char *text, const uint8_t *origin,
			    size_t olen, const char *reason)
{
	uint8_t out[WIRE_NAME_MAX];
	const char *why = NULL;
	char name[600];
	int n = wire_name_from_text(text, origin, olen, out, &why);

	snprintf(name, sizeof(name), "from_text '%.60s%s' fails (%s)", text,
		 strlen(text) > 60 ? "..." : "", reason);
	ok(n == -1 && why && strstr(why, reason), "%s", name);
	if (n != -1 || !why || !strstr(why, reason))
		diag("returned %d, why '%s'", n, why ? why : "(null)");
}

static void round_trip(const uint8_t *name, size_t len, const char *want)
{
	char text[1010], t[200];
	uint8_t back[WIRE_NAME_MAX];
	const char *why;

	wire_name_to_text(name, len, text, sizeof(text));
	snprintf(t, sizeof(t), "to_text gives '%.150s'", want);
	is_str(text, want, t);
	int n = wire_name_from_text(text, NULL, 0, back, &why);
	snprintf(t, sizeof(t), "to_text/from_text round trip '%.150s'", want);
	is_mem(back, n > 0 ? (size_t)n : 0, name, len, t);
}

static void test_text(void)
{
	const uint8_t origin[] = "\4home\3lab";
	const size_t olen = sizeof(origin);
	char buf[1010];

	from_text_is("www.example.com.", NULL, 0, N(WWW));
	from_text_is("www.example.com", NULL, 0, N(WWW));
	from_text_is("www.example.com.", origin, olen, N(WWW));
	from_text_is("nas", origin, olen, N("\3nas\4home\3lab"));
	from_text_is("a.b", origin, olen, N("\1a\1b\4home\3lab"));
	from_text_is("@", origin, olen, N("\4home\3lab"));
	from_text_is(".", NULL, 0, N(""));
	from_text_is(".", origin, olen, N(""));
	from_text_is("wWw.ExAmPlE.CoM.", NULL, 0, N(WWW_MIXED));
	from_text_is("a\\.b.example.", NULL, 0, N("\3a.b\7example"));
	from_text_is("\\065bc.", NULL, 0, N("\3Abc"));
	from_text_is("\\000x.", NULL, 0, N("\2\0x"));
	from_text_is("a\\\\b.", NULL, 0, N("\3a\\b"));
	from_text_is("\\@.", NULL, 0, N("\1@"));
	from_text_is("\\255.", NULL, 0, N("\1\377"));

	from_text_fails("@", NULL, 0, "origin");
	from_text_fails("", NULL, 0, "empty");
	from_text_fails("a..b", NULL, 0, "empty label");
	from_text_fails("a..b", origin, olen, "empty label");
	from_text_fails(".a", NULL, 0, "empty label");
	from_text_fails("a..", NULL, 0, "empty label");
	from_text_fails("\\256.", NULL, 0, "255");
	from_text_fails("a\\", NULL, 0, "backslash");

	{
		char text[600];
		uint8_t want[WIRE_NAME_MAX];
		memset(text, 'x', 63);
		strcpy(text + 63, ".");
		want[0] = 63;
		memset(want + 1, 'x', 63);
		want[64] = 0;
		from_text_is(text, NULL, 0, want, 65);
		memset(text, 'x', 64);
		strcpy(text + 64, ".");
		from_text_fails(text, NULL, 0, "63");
		memset(text, 'x', 61);
		memcpy(text + 61, "\\.\\.", 4); /* escaped: 63 octets */
		strcpy(text + 65, ".");
		want[0] = 63;
		memset(want + 1, 'x', 61);
		want[62] = want[63] = '.';
		want[64] = 0;
		from_text_is(text, NULL, 0, want, 65);

		/* 63.63.63.61. = 255 octets; one more = 256. */
		size_t o = 0, w = 0;
		const int labs[] = {63, 63, 63, 61};
		for (int i = 0; i < 4; i++) {
			memset(text + o, 'a' + i, (size_t)labs[i]);
			o += (size_t)labs[i];
			text[o++] = '.';
			want[w++] = (uint8_t)labs[i];
			memset(want + w, 'a' + i, (size_t)labs[i]);
			w += (size_t)labs[i];
		}
		text[o] = '\0';
		want[w++] = 0;
		from_text_is(text, NULL, 0, want, w);
		text[o - 1] = 'd';
		text[o] = '.';
		text[o + 1] = '\0';
		from_text_fails(text, NULL, 0, "255");
		/* The same 255 octets as a relative name under the root. */
		text[o - 1] = '\0'; /* 63.63.63.61 without the final dot */
		const uint8_t root[] = {0};
		from_text_is(text, root, 1, want, w);
		/* 63.63.63.k + "home.lab." (10 octets): 203 + k octets. */
		text[192 + 53] = '\0';
		from_text_fails(text, origin, olen, "255");
		text[192 + 52] = '\0';
		{
			uint8_t out[WIRE_NAME_MAX];
			const char *why;
			is_int(
			    wire_name_from_text(text, origin, olen, out, &why),
			    255, "from_text 63.63.63.52 + home.lab = 255");
		}
	}

	/* to_text. */
	round_trip(N(WWW), "www.example.com.");
	round_trip(N(WWW_MIXED), "wWw.ExAmPlE.CoM.");
	round_trip(N(""), ".");
	round_trip(N("\3a.b\7example"), "a\\.b.example.");
	round_trip(N("\3a b"), "a\\032b.");
	round_trip(N("\2\0x"), "\\000x.");
	round_trip(N("\1\377"), "\\255.");
	round_trip(N("\3a\\b"), "a\\\\b.");
	round_trip(N("\1\""), "\\\".");
	round_trip(N("\1@\1;"), "\\@.\\;.");
	round_trip(N("\1*\3k8s"), "*.k8s.");
	{
		/* The longest text: 255 octets that all need \DDD. */
		uint8_t name[WIRE_NAME_MAX];
		size_t o = 0;
		const int labs[] = {63, 63, 63, 61};
		for (int i = 0; i < 4; i++) {
			name[o++] = (uint8_t)labs[i];
			memset(name + o, 0x01, (size_t)labs[i]);
			o += (size_t)labs[i];
		}
		name[o++] = 0;
		wire_name_to_text(name, o, buf, sizeof(buf));
		is_int(strlen(buf), 250 * 4 + 4,
		       "to_text 255 escaped octets fit 1010 bytes");
		uint8_t back[WIRE_NAME_MAX];
		const char *why;
		int n = wire_name_from_text(buf, NULL, 0, back, &why);
		is_mem(back, n > 0 ? (size_t)n : 0, name, o,
		       "to_text/from_text round trip of 255 escaped octets");
	}
	{
		/* A buffer too small: cut, terminated, within bounds. */
		char small[8];
		memset(small, 'Z', sizeof(small));
		wire_name_to_text(N(WWW), small, sizeof(small));
		ok(memchr(small, '\0', sizeof(small)) != NULL,
		   "to_text small buffer: terminated");
		char one[1] = {'Z'};
		wire_name_to_text(N(WWW), one, 1);
		is_int(one[0], 0, "to_text 1-byte buffer: empty string");
	}

	/* Comparison and friends. */
	ok(wire_name_equal(N(WWW), N(WWW_MIXED)),
	   "name_equal ignores ASCII case");
	ok(!wire_name_equal(N(WWW), N("\3www\7example\3org")),
	   "name_equal: other name");
	ok(!wire_name_equal(N(WWW), N("\3www\7example")),
	   "name_equal: other length");
	ok(!wire_name_equal(N("\1["), N("\1{")),
	   "name_equal: '[' and '{' differ (only A-Z fold)");
	ok(!wire_name_equal(N("\1\xc1"), N("\1\xe1")),
	   "name_equal: no folding above ASCII");
	ok(wire_name_equal(N(""), N("")), "name_equal: root");
	{
		uint8_t low[17];
		wire_name_lower(low, (const uint8_t *)WWW_MIXED, sizeof(low));
		is_mem(low, sizeof(low), N(WWW), "name_lower");
		const uint8_t odd[] = "\1[\1Z";
		uint8_t lodd[sizeof(odd)];
		wire_name_lower(lodd, odd, sizeof(odd));
		is_mem(lodd, sizeof(lodd), N("\1[\1z"),
		       "name_lower touches only A-Z");
	}
	is_int(wire_name_labels(N(WWW)), 3, "name_labels www.example.com: 3");
	is_int(wire_name_labels(N("")), 0, "name_labels root: 0");
	is_int(wire_name_labels(N("\1*\3k8s")), 2, "name_labels *.k8s: 2");
}

/* ---- wire_check_reply -------------------------------------------------- */

static void reply_for(struct pkt *p, unsigned flags, const uint8_t *name,
		      size_t len, unsigned type, unsigned qclass)
{
	const uint8_t addr[4] = {192, 0, 2, 80};
	header(p, 0x4321, flags, 1, 1, 0, 0);
	put(p, name, len);
	put16(p, type);
	put16(p, qclass);
	answer_a(p, addr);
}

static void test_check_reply(void)
{
	struct pkt p;
	const uint8_t *cn = (const uint8_t *)WWW_MIXED;
	const size_t cl = sizeof(WWW_MIXED);

	reply_for(&p, 0x8180, N(WWW), WIRE_T_A, WIRE_CLASS_IN);
	struct pkt before = p;
	ok(wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: good reply");
	is_mem(p.b + 12, 17, cn, cl,
	       "check_reply: question name in the client's case");
	ok(memcmp(p.b, before.b, 12) == 0 &&
	       memcmp(p.b + 29, before.b + 29, p.len - 29) == 0,
	   "check_reply: nothing else changed");

	/* The root name asked, and the question a pointer to the header's
	 * last byte (arcount 0 reads as the root): found by fuzzing; the
	 * client's name would be copied over the two-byte pointer. */
	header(&p, 0x4321, 0x8180, 1, 0, 0, 0);
	put(&p, (const uint8_t *)"\300\013", 2);
	put16(&p, WIRE_T_A);
	put16(&p, WIRE_CLASS_IN);
	ok(!wire_check_reply(p.b, p.len, (const uint8_t *)"", 1, WIRE_T_A,
			     WIRE_CLASS_IN),
	   "check_reply: a compressed question refused");

	reply_for(&p, 0x0180, N(WWW), WIRE_T_A, WIRE_CLASS_IN);
	ok(!wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: QR=0 refused");
	reply_for(&p, 0x8180 | (1u << 11), N(WWW), WIRE_T_A, WIRE_CLASS_IN);
	ok(!wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: opcode 1 refused");
	reply_for(&p, 0x8180 | (4u << 11), N(WWW), WIRE_T_A, WIRE_CLASS_IN);
	ok(!wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: opcode 4 refused");
	reply_for(&p, 0x8180, N("\3www\7example\3org"), WIRE_T_A,
		  WIRE_CLASS_IN);
	ok(!wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: other name refused");
	reply_for(&p, 0x8180, N("\4wwww\7example\3com"), WIRE_T_A,
		  WIRE_CLASS_IN);
	ok(!wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: longer name refused");
	reply_for(&p, 0x8180, N(WWW), WIRE_T_AAAA, WIRE_CLASS_IN);
	ok(!wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: other type refused");
	reply_for(&p, 0x8180, N(WWW), WIRE_T_A, 3);
	ok(!wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: other class refused");
	reply_for(&p, 0x8180, N(WWW), WIRE_T_A, WIRE_CLASS_IN);
	wire_set16(p.b + 4, 0);
	ok(!wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: qdcount 0 refused");
	wire_set16(p.b + 4, 2);
	ok(!wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: qdcount 2 refused");
	reply_for(&p, 0x8180, N(WWW), WIRE_T_A, WIRE_CLASS_IN);
	ok(!wire_check_reply(p.b, 11, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: 11 bytes refused");
	ok(!wire_check_reply(p.b, 12 + 17 + 3, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: question cut short refused");
	/* An error reply (SERVFAIL) that echoes the question is a reply. */
	reply_for(&p, 0x8182, N(WWW), WIRE_T_A, WIRE_CLASS_IN);
	ok(wire_check_reply(p.b, p.len, cn, cl, WIRE_T_A, WIRE_CLASS_IN),
	   "check_reply: SERVFAIL with the question accepted");
}

/* ---- wire_truncate ----------------------------------------------------- */

/* A reply: question, two A answers, an NS-section record, OPT with a
 * cookie.  Offsets: question ends at 33; OPT is the last 23 bytes. */
static void big_reply(struct pkt *p, bool with_opt)
{
	const uint8_t a1[4] = {192, 0, 2, 1}, a2[4] = {192, 0, 2, 2};
	const uint8_t cookie[] = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};

	header(p, 0xbeef, 0x8183, 1, 2, 1, with_opt ? 1 : 0);
	question(p, N(WWW), WIRE_T_A);
	answer_a(p, a1);
	answer_a(p, a2);
	answer_a(p, a1); /* stands in for an authority record */
	if (with_opt)
		opt(p, 1232, 0, 1, cookie, sizeof(cookie));
}

static void test_truncate(void)
{
	struct pkt p, orig;
	size_t n;

	big_reply(&p, true);
	orig = p;
	is_int(p.len, 12 + 21 + 48 + 23, "truncate: test reply is 104 bytes");
	n = wire_truncate(p.b, p.len, 60);
	is_int(n, 12 + 21 + 23, "truncate: header+question+OPT = 56");
	ok(n <= 60, "truncate: fits the limit");
	ok(wire_get16(p.b + 2) == (0x8183 | WIRE_TC),
	   "truncate: TC set, other flags and rcode kept");
	ok(wire_get16(p.b) == 0xbeef, "truncate: id kept");
	ok(wire_get16(p.b + 4) == 1 && wire_get16(p.b + 6) == 0 &&
	       wire_get16(p.b + 8) == 0 && wire_get16(p.b + 10) == 1,
	   "truncate: counts 1/0/0/1");
	is_mem(p.b + 12, 21, orig.b + 12, 21, "truncate: question kept");
	is_mem(p.b + 33, 23, orig.b + orig.len - 23, 23,
	       "truncate: OPT moved after the question, intact");
	{
		struct wire_query q;
		/* Flip QR off to read it back as a query: it must parse. */
		uint8_t copy[128];
		memcpy(copy, p.b, n);
		wire_set16(copy + 2, 0);
		wire_set16(copy + 6, 0);
		is_int(wire_parse_query(copy, n, &q), WIRE_OK,
		       "truncate: result is a well-formed message");
	}

	p = orig;
	n = wire_truncate(p.b, p.len, 56);
	is_int(n, 56, "truncate: limit exactly header+question+OPT");
	p = orig;
	n = wire_truncate(p.b, p.len, 55);
	is_int(n, 33, "truncate: OPT does not fit: header+question");
	is_int(wire_get16(p.b + 10), 0, "truncate: no OPT: arcount 0");
	p = orig;
	n = wire_truncate(p.b, p.len, 33);
	is_int(n, 33, "truncate: limit exactly header+question");
	p = orig;
	n = wire_truncate(p.b, p.len, 32);
	is_int(n, 0, "truncate: limit below the question -> 0");
	p = orig;
	is_int(wire_truncate(p.b, p.len, 0), 0, "truncate: limit 0 -> 0");

	big_reply(&p, false);
	n = wire_truncate(p.b, p.len, 60);
	is_int(n, 33, "truncate without OPT: header+question");
	ok(wire_get16(p.b + 2) & WIRE_TC, "truncate without OPT: TC");
	ok(wire_get16(p.b + 6) == 0 && wire_get16(p.b + 8) == 0 &&
	       wire_get16(p.b + 10) == 0,
	   "truncate without OPT: counts 0/0/0");

	/* Records that do not parse: the header and question still do. */
	big_reply(&p, true);
	wire_set16(p.b + 6, 40);
	n = wire_truncate(p.b, p.len, 512);
	is_int(n, 33, "truncate malformed records: header+question");
	ok((wire_get16(p.b + 2) & WIRE_TC) && wire_get16(p.b + 6) == 0 &&
	       wire_get16(p.b + 10) == 0,
	   "truncate malformed records: TC, counts 0");
	big_reply(&p, true);
	n = wire_truncate(p.b, p.len - 5, 512);
	is_int(n, 33, "truncate record cut short: header+question");

	/* A question that does not parse: nothing to send. */
	big_reply(&p, true);
	n = wire_truncate(p.b, 12 + 10, 512);
	is_int(n, 0, "truncate malformed question -> 0");
	is_int(wire_truncate(p.b, 8, 512), 0, "truncate 8 bytes -> 0");
}

/* ---- wire_strip_edns_option -------------------------------------------- */

static void test_strip(void)
{
	struct pkt p, want;
	size_t n;
	const uint8_t a1[4] = {192, 0, 2, 1};
	/* cookie (10, 16 octets), padding (12, 2 octets), NSID (3, 0). */
	const uint8_t opts[] = {0, 10, 0, 16, 1,  2,  3,  4,  5,  6,
				7, 8,  9, 10, 11, 12, 13, 14, 15, 16,
				0, 12, 0, 2,  0,  0,  0,  3,  0,  0};
	const uint8_t kept[] = {0, 12, 0, 2, 0, 0, 0, 3, 0, 0};

	header(&p, 7, 0x8180, 1, 1, 0, 1);
	question(&p, N(WWW), WIRE_T_A);
	answer_a(&p, a1);
	opt(&p, 1232, 0, 0, opts, sizeof(opts));
	header(&want, 7, 0x8180, 1, 1, 0, 1);
	question(&want, N(WWW), WIRE_T_A);
	answer_a(&want, a1);
	opt(&want, 1232, 0, 0, kept, sizeof(kept));
	n = wire_strip_edns_option(p.b, p.len, WIRE_EDNS_COOKIE);
	is_int(n, p.len - 20, "strip: 20 bytes less");
	is_mem(p.b, n, want.b, want.len,
	       "strip: cookie gone, others kept, rdlen adjusted");

	/* Two cookies, first and last, around another option. */
	{
		const uint8_t two[] = {0, 10, 0, 8, 1, 2, 3,   4, 5,  6,
				       7, 8,  0, 3, 0, 1, 'x', 0, 10, 0,
				       8, 1,  2, 3, 4, 5, 6,   7, 8};
		const uint8_t one[] = {0, 3, 0, 1, 'x'};
		header(&p, 7, 0x8180, 1, 0, 0, 1);
		question(&p, N(WWW), WIRE_T_A);
		opt(&p, 4096, 0, 1, two, sizeof(two));
		header(&want, 7, 0x8180, 1, 0, 0, 1);
		question(&want, N(WWW), WIRE_T_A);
		opt(&want, 4096, 0, 1, one, sizeof(one));
		n = wire_strip_edns_option(p.b, p.len, WIRE_EDNS_COOKIE);
		is_mem(p.b, n, want.b, want.len, "strip: both cookies removed");
	}

	/* Only a cookie: rdlen 0 remains. */
	{
		const uint8_t only[] = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
		header(&p, 7, 0x8180, 1, 0, 0, 1);
		question(&p, N(WWW), WIRE_T_A);
		opt(&p, 4096, 0, 0, only, sizeof(only));
		header(&want, 7, 0x8180, 1, 0, 0, 1);
		question(&want, N(WWW), WIRE_T_A);
		opt(&want, 4096, 0, 0, NULL, 0);
		n = wire_strip_edns_option(p.b, p.len, WIRE_EDNS_COOKIE);
		is_mem(p.b, n, want.b, want.len,
		       "strip: lone cookie leaves an empty OPT");
	}

	/* A record after the OPT moves up with it. */
	{
		const uint8_t only[] = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
		header(&p, 7, 0x8180, 1, 0, 0, 2);
		question(&p, N(WWW), WIRE_T_A);
		opt(&p, 4096, 0, 0, only, sizeof(only));
		answer_a(&p, a1);
		header(&want, 7, 0x8180, 1, 0, 0, 2);
		question(&want, N(WWW), WIRE_T_A);
		opt(&want, 4096, 0, 0, NULL, 0);
		answer_a(&want, a1);
		n = wire_strip_edns_option(p.b, p.len, WIRE_EDNS_COOKIE);
		is_mem(p.b, n, want.b, want.len,
		       "strip: a record after the OPT is kept");
	}

	/* Nothing to strip. */
	header(&p, 7, 0x8180, 1, 1, 0, 0);
	question(&p, N(WWW), WIRE_T_A);
	answer_a(&p, a1);
	want = p;
	n = wire_strip_edns_option(p.b, p.len, WIRE_EDNS_COOKIE);
	is_mem(p.b, n, want.b, want.len, "strip: no OPT: unchanged");
	header(&p, 7, 0x8180, 1, 0, 0, 1);
	question(&p, N(WWW), WIRE_T_A);
	opt(&p, 1232, 0, 0, kept, sizeof(kept));
	want = p;
	n = wire_strip_edns_option(p.b, p.len, WIRE_EDNS_COOKIE);
	is_mem(p.b, n, want.b, want.len,
	       "strip: OPT without a cookie: unchanged");
	header(&p, 7, 0x8180, 1, 0, 0, 1);
	question(&p, N(WWW), WIRE_T_A);
	opt(&p, 1232, 0, 0, NULL, 0);
	want = p;
	n = wire_strip_edns_option(p.b, p.len, WIRE_EDNS_COOKIE);
	is_mem(p.b, n, want.b, want.len, "strip: empty OPT: unchanged");

	/* Malformed: an option running past the RDATA stays put. */
	{
		const uint8_t bad[] = {0, 3, 0, 1, 'x', 0, 10, 0, 30, 1, 2};
		header(&p, 7, 0x8180, 1, 0, 0, 1);
		question(&p, N(WWW), WIRE_T_A);
		opt(&p, 1232, 0, 0, bad, sizeof(bad));
		want = p;
		n = wire_strip_edns_option(p.b, p.len, WIRE_EDNS_COOKIE);
		is_mem(p.b, n, want.b, want.len,
		       "strip: option past the RDATA: unchanged");
	}
	/* Malformed message: unchanged. */
	header(&p, 7, 0x8180, 1, 3, 0, 1);
	question(&p, N(WWW), WIRE_T_A);
	opt(&p, 1232, 0, 0, opts, sizeof(opts));
	want = p;
	n = wire_strip_edns_option(p.b, p.len, WIRE_EDNS_COOKIE);
	is_mem(p.b, n, want.b, want.len,
	       "strip: records that do not parse: unchanged");
}

/* ---- issue 8: meta-queries and TSIG in queries ------------------------- */

/* A TSIG record (RFC 8945 4.2) for key "\3key" with hmac-sha256, a MAC of
 * mac_len octets, original ID orig. */
static void tsig(struct pkt *p, size_t mac_len, unsigned orig)
{
	static const uint8_t alg[] = "\013hmac-sha256";
	put(p, N("\3key"));
	put16(p, WIRE_T_TSIG);
	put16(p, WIRE_CLASS_ANY);
	put32(p, 0);
	put16(p, (unsigned)(sizeof(alg) + 10 + mac_len + 6));
	put(p, alg, sizeof(alg));
	put16(p, 0);
	put32(p, 1700000000ul); /* time signed, 48 bits */
	put16(p, 300);		/* fudge */
	put16(p, (unsigned)mac_len);
	for (size_t i = 0; i < mac_len; i++)
		p->b[p->len++] = (uint8_t)(0xa0 + i);
	put16(p, orig);
	put16(p, 0); /* error */
	put16(p, 0); /* other len */
}

static void test_meta_query(void)
{
	struct wire_query q;
	struct pkt p;
	static const unsigned bad[] = {WIRE_T_OPT, WIRE_T_TSIG, WIRE_T_TKEY};

	for (size_t i = 0; i < 3; i++) {
		header(&p, 9, WIRE_RD, 1, 0, 0, 0);
		question(&p, N(WWW), bad[i]);
		ok(wire_parse_query(p.b, p.len, &q) == WIRE_BAD_FORMAT,
		   "meta: QTYPE %u -> BAD_FORMAT", bad[i]);
		ok(q.qname_len == 17, "meta: QTYPE %u: question kept to echo",
		   bad[i]);
	}
	/* A TKEY question with its TKEY record is a key negotiation. */
	header(&p, 9, 0, 1, 0, 0, 1);
	question(&p, N(WWW), WIRE_T_TKEY);
	put(&p, N(WWW));
	put16(&p, WIRE_T_TKEY);
	put16(&p, WIRE_CLASS_ANY);
	put32(&p, 0);
	put16(&p, 2);
	put16(&p, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_OK,
	       "meta: TKEY question with a TKEY record -> OK");
	ok(q.has_tkey, "meta: has_tkey");

	header(&p, 9, 0, 1, 0, 0, 0);
	question(&p, N(WWW), WIRE_T_AXFR);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_OK, "AXFR parses");
	ok(q.zone_transfer, "AXFR: zone_transfer");
	header(&p, 9, 0, 1, 0, 0, 0);
	question(&p, N(WWW), WIRE_T_A);
	wire_parse_query(p.b, p.len, &q);
	ok(!q.zone_transfer && !q.has_tsig && !q.has_tkey,
	   "A: no zone_transfer, has_tsig, has_tkey");
	/* IXFR carries the client's SOA in the authority section. */
	{
		const uint8_t soa[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
				       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
		header(&p, 9, 0, 1, 0, 1, 0);
		question(&p, N(WWW), WIRE_T_IXFR);
		put16(&p, 0xc00c);
		put16(&p, WIRE_T_SOA);
		put16(&p, WIRE_CLASS_IN);
		put32(&p, 0);
		put16(&p, sizeof(soa));
		put(&p, soa, sizeof(soa));
		is_int(wire_parse_query(p.b, p.len, &q), WIRE_OK,
		       "IXFR with its SOA parses");
		ok(q.zone_transfer, "IXFR: zone_transfer");
		wire_set16(p.b + 12 + 17, WIRE_T_A);
		is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
		       "A with an authority record -> BAD_FORMAT");
	}
	header(&p, 9, 0, 1, 0, 0, 0);
	p.len = 12;
	put(&p, N(WWW));
	put16(&p, 16);
	put16(&p, WIRE_CLASS_CH);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_OK, "class CH parses");
	is_int(q.qclass, WIRE_CLASS_CH, "class CH: qclass 3");
}

static void test_tsig_query(void)
{
	struct wire_query q;
	struct pkt p;

	header(&p, 9, WIRE_RD, 1, 0, 0, 2);
	question(&p, N(WWW), WIRE_T_A);
	opt(&p, 1232, 0, 0, NULL, 0);
	size_t at = p.len;
	tsig(&p, 32, 9);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_OK,
	       "tsig: OPT then TSIG -> OK");
	ok(q.has_tsig && q.has_opt, "tsig: has_tsig and has_opt");
	is_int(q.tsig_off, at, "tsig: tsig_off at the key name");
	is_int(q.tsig_len, p.len - at, "tsig: tsig_len the whole record");

	header(&p, 9, WIRE_RD, 1, 0, 0, 2);
	question(&p, N(WWW), WIRE_T_A);
	tsig(&p, 32, 9);
	opt(&p, 1232, 0, 0, NULL, 0);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "tsig: TSIG before the OPT -> BAD_FORMAT (RFC 8945 5.1)");
	header(&p, 9, WIRE_RD, 1, 0, 0, 2);
	question(&p, N(WWW), WIRE_T_A);
	tsig(&p, 0, 9);
	tsig(&p, 0, 9);
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "tsig: two TSIGs -> BAD_FORMAT");
	header(&p, 9, WIRE_RD, 1, 0, 0, 1);
	question(&p, N(WWW), WIRE_T_A);
	at = p.len;
	tsig(&p, 16, 9);
	wire_set16(p.b + at + 5 + 8, 13); /* rdlen cuts the MAC */
	p.len = at + 5 + 10 + 13;
	is_int(wire_parse_query(p.b, p.len, &q), WIRE_BAD_FORMAT,
	       "tsig: MAC past the RDATA -> BAD_FORMAT");
}

/* ---- issue 8: the whole reply is checked ------------------------------- */

static bool check(struct pkt *p)
{
	return wire_check_reply(p->b, p->len, N(WWW), WIRE_T_A, WIRE_CLASS_IN);
}

/* A reply header and question for WWW/A, rcode NOERROR. */
static void rhead(struct pkt *p, unsigned an, unsigned ns, unsigned ar)
{
	header(p, 0x4321, 0x8180, 1, an, ns, ar);
	question(p, N(WWW), WIRE_T_A);
}

/* A record at the question name with raw RDATA. */
static void rrd(struct pkt *p, unsigned type, const void *rd, size_t n)
{
	put16(p, 0xc00c);
	put16(p, type);
	put16(p, WIRE_CLASS_IN);
	put32(p, 300);
	put16(p, (unsigned)n);
	put(p, rd, n);
}

static void test_check_whole(void)
{
	struct pkt p;
	const uint8_t a[4] = {192, 0, 2, 1};

	rhead(&p, 1, 0, 0);
	answer_a(&p, a);
	ok(check(&p), "whole: one A answer passes");

	/* The two of issue 8's defect 13. */
	rhead(&p, 1, 0, 0);
	size_t at = p.len;
	put16(&p, 0xc000u | (unsigned)at); /* owner points at itself */
	put16(&p, WIRE_T_A);
	put16(&p, WIRE_CLASS_IN);
	put32(&p, 300);
	put16(&p, 4);
	put(&p, a, 4);
	ok(!check(&p), "whole: owner name pointing at itself refused");
	rhead(&p, 0xffff, 0, 0);
	answer_a(&p, a);
	ok(!check(&p), "whole: ANCOUNT 65535 with one record refused");
	rhead(&p, 1, 0, 1);
	answer_a(&p, a);
	ok(!check(&p), "whole: ARCOUNT 1 with no record refused");
	rhead(&p, 1, 0, 0);
	answer_a(&p, a);
	p.b[p.len++] = 0;
	ok(!check(&p), "whole: a byte after the last record refused");
	rhead(&p, 1, 0, 0);
	answer_a(&p, a);
	p.len -= 1;
	ok(!check(&p), "whole: RDATA cut short refused");

	rrd((rhead(&p, 1, 0, 0), &p), WIRE_T_A, "\1\2\3\4\5", 5);
	ok(!check(&p), "whole: A with 5 octets refused");
	rrd((rhead(&p, 1, 0, 0), &p), WIRE_T_AAAA, "\1\2\3\4", 4);
	ok(!check(&p), "whole: AAAA with 4 octets refused");
	rrd((rhead(&p, 1, 0, 0), &p), WIRE_T_CNAME, "\3foo\300\014", 6);
	ok(check(&p), "whole: CNAME foo.<qname> passes");
	rhead(&p, 1, 0, 0);
	at = p.len + 12;
	rrd(&p, WIRE_T_CNAME, "\3foo\300\000", 6);
	wire_set16(p.b + at + 4, (uint16_t)(0xc000u | at));
	ok(!check(&p), "whole: CNAME data pointing at itself refused");
	rrd((rhead(&p, 1, 0, 0), &p), WIRE_T_CNAME, "\3foo\300\014\0", 7);
	ok(!check(&p), "whole: CNAME data longer than its name refused");
	rhead(&p, 2, 0, 0);
	rrd(&p, WIRE_T_CNAME, "\3foo", 4); /* the name runs on */
	answer_a(&p, a);
	ok(!check(&p), "whole: CNAME name past its RDATA refused");
	rrd((rhead(&p, 1, 0, 0), &p), WIRE_T_MX, "\0\12\300\014", 4);
	ok(check(&p), "whole: MX passes");
	rrd((rhead(&p, 1, 0, 0), &p), WIRE_T_MX, "\0", 1);
	ok(!check(&p), "whole: MX of one octet refused");
	rrd((rhead(&p, 1, 0, 0), &p), WIRE_T_SRV, "\0\0\0\0\0\0\0", 7);
	ok(check(&p), "whole: SRV passes");
	{
		uint8_t soa[22] = {0};
		rrd((rhead(&p, 0, 1, 0), &p), WIRE_T_SOA, soa, 22);
		ok(check(&p), "whole: SOA . . and 20 octets passes");
		rrd((rhead(&p, 0, 1, 0), &p), WIRE_T_SOA, soa, 21);
		ok(!check(&p), "whole: SOA one octet short refused");
	}
	rrd((rhead(&p, 1, 0, 0), &p), 99, "\1\2\3", 3);
	ok(check(&p), "whole: other types are opaque");

	/* OPT: one, additional, root owner, whole options. */
	rhead(&p, 0, 0, 1);
	opt(&p, 1232, 0, 0, "\0\12\0\0", 4);
	ok(check(&p), "whole: OPT passes");
	rhead(&p, 0, 0, 2);
	opt(&p, 1232, 0, 0, NULL, 0);
	opt(&p, 1232, 0, 0, NULL, 0);
	ok(!check(&p), "whole: two OPTs refused");
	rhead(&p, 1, 0, 0);
	opt(&p, 1232, 0, 0, NULL, 0);
	ok(!check(&p), "whole: OPT in the answer section refused");
	rhead(&p, 0, 0, 1);
	p.b[p.len++] = 1;
	p.b[p.len++] = 'x';
	opt(&p, 1232, 0, 0, NULL, 0);
	ok(!check(&p), "whole: OPT owned by x. refused (RFC 6891 6.1.1)");
	rhead(&p, 0, 0, 1);
	opt(&p, 1232, 0, 0, "\0\12\0\5\1", 5);
	ok(!check(&p), "whole: OPT option past its RDATA refused");

	/* TSIG: last, and the signed-query variant's error reply. */
	rhead(&p, 1, 0, 1);
	answer_a(&p, a);
	tsig(&p, 32, 0x4321);
	ok(check(&p), "whole: a signed reply passes");
	rhead(&p, 0, 0, 2);
	tsig(&p, 32, 0x4321);
	opt(&p, 1232, 0, 0, NULL, 0);
	ok(!check(&p), "whole: TSIG not last refused");
	header(&p, 0x4321, 0x8189, 0, 0, 0, 1); /* NOTAUTH, no question */
	tsig(&p, 0, 0x4321);
	wire_set16(p.b + p.len - 4, WIRE_TSIG_BADKEY);
	ok(!check(&p), "whole: BADKEY reply without question: plain check "
		       "refuses it");
	ok(wire_check_reply_signed(p.b, p.len, N(WWW), WIRE_T_A, WIRE_CLASS_IN),
	   "whole: BADKEY reply without question: signed check takes it");
	wire_set16(p.b + 2, 0x8182);
	ok(!wire_check_reply_signed(p.b, p.len, N(WWW), WIRE_T_A,
				    WIRE_CLASS_IN),
	   "whole: SERVFAIL without question refused even for signed");
	header(&p, 0x4321, 0x8189, 0, 0, 0, 0);
	ok(!wire_check_reply_signed(p.b, p.len, N(WWW), WIRE_T_A,
				    WIRE_CLASS_IN),
	   "whole: NOTAUTH without question or TSIG refused");
	rhead(&p, 1, 0, 0);
	answer_a(&p, a);
	ok(wire_check_reply_signed(p.b, p.len, N(WWW), WIRE_T_A, WIRE_CLASS_IN),
	   "whole: signed check takes ordinary replies");
}

/* ---- issue 8: the relayed OPT ------------------------------------------ */

static void test_relay_opt(void)
{
	struct pkt p, want;
	size_t n;
	const uint8_t a[4] = {192, 0, 2, 1};
	/* NSID "up1", a cookie, EDE 15 (kept), keepalive, padding (kept) */
	const uint8_t opts[] = {0, 3, 0,  3, 'u', 'p', '1', 0, 10, 0, 8, 1,
				2, 3, 4,  5, 6,	  7,   8,   0, 15, 0, 2, 0,
				6, 0, 11, 0, 2,	  0,   9,   0, 12, 0, 1, 0};
	const uint8_t kept[] = {0, 15, 0, 2, 0, 6, 0, 12, 0, 1, 0};

	header(&p, 7, 0x8180, 1, 0, 0, 2);
	question(&p, N(WWW), WIRE_T_A);
	opt(&p, 4096, 0, 1, opts, sizeof(opts));
	answer_a(&p, a);
	header(&want, 7, 0x8180, 1, 0, 0, 2);
	question(&want, N(WWW), WIRE_T_A);
	opt(&want, 1232, 0, 1, kept, sizeof(kept));
	answer_a(&want, a);
	n = wire_relay_opt(p.b, p.len, 1232);
	is_mem(p.b, n, want.b, want.len,
	       "relay_opt: NSID, COOKIE and keepalive gone, our size, the "
	       "rest kept");

	/* An owner that is not the root (defect 5): edited in place all
	 * the same, its fields found from the RDATA. */
	header(&p, 7, 0x8180, 1, 0, 0, 1);
	question(&p, N(WWW), WIRE_T_A);
	put(&p, "\3abc", 4);
	opt(&p, 4096, 0, 0, opts, sizeof(opts));
	header(&want, 7, 0x8180, 1, 0, 0, 1);
	question(&want, N(WWW), WIRE_T_A);
	put(&want, "\3abc", 4);
	opt(&want, 1232, 0, 0, kept, sizeof(kept));
	n = wire_relay_opt(p.b, p.len, 1232);
	is_mem(p.b, n, want.b, want.len,
	       "relay_opt: OPT owned by abc. edited right");
	header(&p, 7, 0x8180, 1, 0, 0, 1);
	question(&p, N(WWW), WIRE_T_A);
	put16(&p, 0xc00c);
	opt(&p, 4096, 0, 0, "\0\12\0\0", 4);
	p.len--; /* opt() wrote a root label: drop it behind the pointer */
	memmove(p.b + 12 + 21 + 2, p.b + 12 + 21 + 3, p.len - 35);
	header(&want, 7, 0x8180, 1, 0, 0, 1);
	want.len = p.len;
	memcpy(want.b, p.b, p.len);
	n = wire_relay_opt(p.b, p.len, 1232);
	is_int(n, want.len - 4, "relay_opt: compressed owner: 4 octets less");
	is_int(wire_get16(p.b + 12 + 21 + 2 + 2), 1232,
	       "relay_opt: compressed owner: our size");
	is_int(wire_get16(p.b + 12 + 21 + 2 + 8), 0,
	       "relay_opt: compressed owner: rdlen 0");

	/* 16,368 empty cookies in a 64 KB reply: all gone, one pass. */
	{
		static uint8_t big[65535];
		size_t len = 12;
		memset(big, 0, 12);
		big[2] = 0x81;
		big[3] = 0x80;
		big[5] = 1;
		big[11] = 1;
		memcpy(big + len,
		       "\0\0\1\0\1"
		       "\0\0\51\20\0\0\0\0\0",
		       14);
		len += 14;
		wire_set16(big + len, 16368 * 4);
		len += 2;
		for (int i = 0; i < 16368; i++, len += 4)
			memcpy(big + len, "\0\12\0\0", 4);
		n = wire_relay_opt(big, len, 1232);
		is_int(n, 12 + 5 + 11, "relay_opt: 16,368 cookies all gone");
		is_int(wire_get16(big + n - 2), 0, "relay_opt: rdlen 0");
		ok(wire_check_message(big, n),
		   "relay_opt: the result is whole");
	}
}

int main(void)
{
	test_read_name();
	test_rr();
	test_parse_query();
	test_text();
	test_check_reply();
	test_truncate();
	test_strip();
	test_meta_query();
	test_tsig_query();
	test_check_whole();
	test_relay_opt();
	return done_testing();
}
