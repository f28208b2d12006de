/*
 * test_qlog.c - unit tests for the query log (src/qlog.c): the JSON text
 * escaping (quotes, backslashes, control characters, valid and invalid
 * UTF-8), the line format (every field, types and rcodes without a
 * mnemonic, privacy mask and hide, a query without a question, the
 * longest name), and the ring (order, full, wrap-around, a producer and
 * a consumer on two threads).
 */
#include <config.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../src/qlog.h"
#include "../src/query.h"
#include "../src/wire.h"
#include "tap.h"

static const char *esc(const char *s, size_t n)
{
	static char buf[512];
	size_t len = qlog_json_text(buf, sizeof(buf) - 1, s, n);
	buf[len] = '\0';
	return buf;
}

static void test_escape(void)
{
	is_str(esc("plain.example", 13), "plain.example", "plain text kept");
	is_str(esc("a\"b", 3), "a\\\"b", "quote");
	is_str(esc("a\\b", 3), "a\\\\b", "backslash");
	is_str(esc("a\nb\tc\rd", 7), "a\\nb\\tc\\rd", "newline, tab, CR");
	is_str(esc("\x01\x1f\x7f", 3), "\\u0001\\u001f\\u007f",
	       "other control characters as \\u");
	is_str(esc("a\0b", 3), "a\\u0000b", "a NUL byte is data");
	is_str(esc("caf\xc3\xa9", 5), "caf\xc3\xa9", "valid UTF-8 kept");
	is_str(esc("\xe2\x82\xac\xf0\x9f\x98\x80", 7),
	       "\xe2\x82\xac\xf0\x9f\x98\x80", "3- and 4-byte UTF-8 kept");
	is_str(esc("\xff", 1), "\\ufffd", "an invalid byte: U+FFFD");
	is_str(esc("\xc3", 1), "\\ufffd", "a cut sequence");
	is_str(esc("\xc0\xaf", 2), "\\ufffd\\ufffd", "overlong: each byte");
	is_str(esc("\xed\xa0\x80", 3), "\\ufffd\\ufffd\\ufffd",
	       "a surrogate is not UTF-8");
	is_str(esc("\xf4\x90\x80\x80", 4), "\\ufffd\\ufffd\\ufffd\\ufffd",
	       "past U+10FFFF");
	char small[6];
	size_t n = qlog_json_text(small, sizeof(small), "ab\"\"\"", 5);
	is_int(n, 6, "only whole escapes fit: ab\\\"\\\"");
	ok(memcmp(small, "ab\\\"\\\"", 6) == 0, "... and they are right");
}

static struct qlog_entry base_entry(void)
{
	struct qlog_entry e;
	const char *why;

	memset(&e, 0, sizeof(e));
	e.received.tv_sec = 1796216400; /* 2026-12-02T13:00:00Z */
	e.received.tv_nsec = 123456789;
	e.duration_us = 1234;
	e.qtype = WIRE_T_AAAA;
	e.qclass = 1;
	e.answers = 2;
	e.rcode = 0;
	e.kind = QUERY_KIND_FORWARDED;
	e.transport = QUERY_TCP;
	e.family = AF_INET;
	inet_pton(AF_INET, "192.0.2.77", e.addr);
	e.port = 5353;
	int len =
	    wire_name_from_text("www.example.com.", NULL, 0, e.qname, &why);
	e.qname_len = (uint16_t)len;
	return e;
}

static const char *line(const struct qlog_entry *e, enum qlog_privacy p)
{
	static char buf[QLOG_LINE_MAX];
	size_t n = qlog_format(e, p, buf, sizeof(buf));
	ok(n > 0 && buf[n - 1] == '\n' && memchr(buf, '\n', n) == buf + n - 1,
	   "one line, newline-terminated");
	buf[n - 1] = '\0';
	return buf;
}

static void test_format(void)
{
	struct qlog_entry e = base_entry();

	is_str(
	    line(&e, QLOG_PRIVACY_NONE),
	    "{\"time\":\"2026-12-02T13:00:00.123Z\",\"client\":\"192.0.2.77\""
	    ",\"port\":5353,\"transport\":\"tcp\",\"name\":\"www.example.com.\""
	    ",\"type\":\"AAAA\",\"class\":\"IN\",\"kind\":\"forwarded\""
	    ",\"rcode\":\"NOERROR\",\"answers\":2,\"duration_ms\":1.234}",
	    "every field");
	is_str(line(&e, QLOG_PRIVACY_MASK),
	       "{\"time\":\"2026-12-02T13:00:00.123Z\",\"client\":\"192.0.2.0\""
	       ",\"transport\":\"tcp\",\"name\":\"www.example.com.\""
	       ",\"type\":\"AAAA\",\"class\":\"IN\",\"kind\":\"forwarded\""
	       ",\"rcode\":\"NOERROR\",\"answers\":2,\"duration_ms\":1.234}",
	       "mask: /24, no port");
	like(line(&e, QLOG_PRIVACY_HIDE),
	     "{\"time\":\"2026-12-02T13:00:00.123Z\",\"transport\":\"tcp\",",
	     "hide: no client");

	e.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:abcd:1234::99", e.addr);
	like(line(&e, QLOG_PRIVACY_NONE),
	     "\"client\":\"2001:db8:abcd:1234::99\","
	     "\"port\":5353,",
	     "IPv6");
	like(line(&e, QLOG_PRIVACY_MASK),
	     "\"client\":\"2001:db8:abcd::\","
	     "\"transport\"",
	     "IPv6 mask: /48");

	e.qtype = 999;
	e.qclass = 3;
	e.rcode = 3;
	e.kind = QUERY_KIND_BLOCKED;
	e.transport = QUERY_HTTPS;
	e.duration_us = 7;
	snprintf(e.group, sizeof(e.group), "kids");
	snprintf(e.list, sizeof(e.list), "/etc/lists/\"odd\\\x01.txt");
	like(
	    line(&e, QLOG_PRIVACY_HIDE),
	    "\"transport\":\"https\",\"name\":\"www.example.com.\","
	    "\"type\":\"TYPE999\",\"class\":\"CH\",\"kind\":\"blocked\","
	    "\"group\":\"kids\",\"list\":\"/etc/lists/\\\"odd\\\\\\u0001.txt\","
	    "\"rcode\":\"NXDOMAIN\",\"answers\":2,\"duration_ms\":0.007}",
	    "RFC 3597 type, CH, group, list escaped, NXDOMAIN, https");
	e.qclass = 77;
	e.rcode = 12;
	like(line(&e, QLOG_PRIVACY_HIDE), "\"class\":\"CLASS77\"",
	     "RFC 3597 class");
	like(line(&e, QLOG_PRIVACY_HIDE), "\"rcode\":\"RCODE12\"",
	     "an rcode without a name");
	e.qtype = WIRE_T_HTTPS;
	like(line(&e, QLOG_PRIVACY_HIDE), "\"type\":\"HTTPS\"", "HTTPS");

	/* The name's bytes are data: RFC 1035 escapes, then JSON's. */
	static const uint8_t odd[] = {9,    'w',  'e',	'"', 'i', 'r',
				      'd',  '\\', '.',	'%', 4,	  0x01,
				      0xff, 'n',  0xc3, 0};
	memcpy(e.qname, odd, sizeof(odd));
	e.qname_len = sizeof(odd);
	like(line(&e, QLOG_PRIVACY_HIDE),
	     "\"name\":\"we\\\\\\\"ird\\\\\\\\\\\\.%.\\\\001\\\\255n\\\\195.\"",
	     "quote, backslash, dot, control and non-ASCII bytes of a label");

	/* The longest name, every byte escaped: still one whole line. */
	for (size_t i = 0; i < 3; i++) {
		e.qname[i * 64] = 63;
		memset(e.qname + i * 64 + 1, '"', 63);
	}
	e.qname[192] = 61; /* 3 x 64 + 62 + the root = 255 */
	memset(e.qname + 193, '\\', 61);
	e.qname[254] = 0;
	e.qname_len = 255;
	snprintf(e.list, sizeof(e.list), "%255s", "");
	memset(e.list, 0x01, 255);
	const char *l = line(&e, QLOG_PRIVACY_NONE);
	ok(strlen(l) > 2000 && l[strlen(l) - 1] == '}',
	   "the longest name and list escaped fit (%zu bytes)", strlen(l));

	/* No question (FORMERR for a packet without one). */
	e = base_entry();
	e.qname_len = 0;
	e.kind = QUERY_KIND_MALFORMED;
	e.rcode = 1;
	l = line(&e, QLOG_PRIVACY_NONE);
	ok(!strstr(l, "\"name\"") && !strstr(l, "\"type\"") &&
	       strstr(l, "\"kind\":\"malformed\",\"rcode\":\"FORMERR\""),
	   "no question: no name, type, class");
	e.family = 0;
	ok(!strstr(line(&e, QLOG_PRIVACY_NONE), "client"),
	   "no address: no client");
}

/* The time field against gmtime_r, over dates from 1970 to past 2200
 * (leap years, centuries, the 400-year rule) and every millisecond digit. */
static void test_time(void)
{
	struct qlog_entry e = base_entry();
	char want[64], buf[QLOG_LINE_MAX];
	unsigned bad = 0;
	uint64_t x = 88172645463325252ull;
	static const time_t edges[] = {0,	   951782400,  951868799,
				       4107542400, 4107628799, 1735689599,
				       1709164800};

	for (unsigned i = 0; i < 100000 + 7; i++) {
		struct tm tm;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		e.received.tv_sec =
		    i < 7 ? edges[i] : (time_t)(x % 7300000000ull);
		e.received.tv_nsec = (long)(x % 1000000000ull);
		gmtime_r(&e.received.tv_sec, &tm);
		size_t n = strftime(want, sizeof(want),
				    "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(want + n, sizeof(want) - n, ".%03ldZ\",",
			 e.received.tv_nsec / 1000000);
		qlog_format(&e, QLOG_PRIVACY_NONE, buf, sizeof(buf));
		if (strncmp(buf, want, strlen(want)) != 0 && bad++ < 3)
			diag("got %.40s, want %s", buf, want);
	}
	is_int(bad, 0, "time: RFC 3339 UTC with ms, as gmtime_r says");
}

static void test_ring(void)
{
	struct qlog_ring *r = qlog_ring_new(3); /* rounds up to 4 */
	unsigned pushed = 0, popped = 0;
	bool order = true;

	ok(r != NULL, "ring: made");
	ok(qlog_ring_peek(r) == NULL, "ring: empty at first");
	for (unsigned i = 0; i < 4; i++) {
		struct qlog_entry *e = qlog_ring_slot(r);
		if (!e)
			break;
		e->port = (uint16_t)i;
		qlog_ring_push(r);
		pushed++;
	}
	is_int(pushed, 4, "ring: 3 rounded up to 4 slots");
	ok(qlog_ring_slot(r) == NULL && qlog_ring_slot(r) == NULL,
	   "ring: full");
	is_int((long long)qlog_ring_dropped(r), 2, "ring: both counted");
	/* Around the end, several times. */
	for (unsigned i = 4; i < 40; i++) {
		const struct qlog_entry *e = qlog_ring_peek(r);
		order = order && e && e->port == popped;
		qlog_ring_pop(r);
		popped++;
		struct qlog_entry *s = qlog_ring_slot(r);
		if (s) {
			s->port = (uint16_t)i;
			qlog_ring_push(r);
		}
	}
	while (qlog_ring_peek(r)) {
		order = order && qlog_ring_peek(r)->port == popped;
		qlog_ring_pop(r);
		popped++;
	}
	ok(order, "ring: first in, first out across wrap-arounds");
	is_int(popped, 40, "ring: everything pushed came out");
	qlog_ring_free(r);
	qlog_ring_free(NULL);
}

/* A producer and a consumer thread: every entry comes out once, whole
 * and in order (the producer tries again while the ring is full, so each
 * try counts as dropped). */
#define RACE_N 200000
struct race {
	struct qlog_ring *r;
	uint64_t sent;
};

static void *producer(void *arg)
{
	struct race *x = arg;
	for (uint32_t i = 0; i < RACE_N; i++) {
		struct qlog_entry *e;
		while (!(e = qlog_ring_slot(x->r)))
			sched_yield();
		e->duration_us = i;
		e->qname_len = (uint16_t)(i & 0xff);
		memset(e->qname, (int)(i & 0xff), 8);
		qlog_ring_push(x->r);
		x->sent++;
	}
	return NULL;
}

static void test_race(void)
{
	struct race x = {qlog_ring_new(64), 0};
	pthread_t t;
	uint64_t got = 0;
	bool order = true, whole = true;
	int64_t last = -1;

	pthread_create(&t, NULL, producer, &x);
	for (;;) {
		const struct qlog_entry *e = qlog_ring_peek(x.r);
		if (!e) {
			if (got == RACE_N)
				break;
			continue;
		}
		order = order && (int64_t)e->duration_us > last;
		last = e->duration_us;
		for (int i = 0; i < 8; i++)
			whole = whole && e->qname[i] == (e->duration_us & 0xff);
		qlog_ring_pop(x.r);
		got++;
	}
	pthread_join(t, NULL);
	ok(order, "race: in order");
	ok(whole, "race: every entry whole when read");
	is_int((long long)got, (long long)x.sent, "race: all pushed were read");
	diag("%llu read, %llu tries on a full ring", (unsigned long long)got,
	     (unsigned long long)qlog_ring_dropped(x.r));
	qlog_ring_free(x.r);
}

int main(void)
{
	test_escape();
	test_format();
	test_time();
	test_ring();
	test_race();
	return done_testing();
}
