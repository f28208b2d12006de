/*
 * test_lists.c - unit tests for the blocklist store (src/lists.c): each
 * list format, mixed files, hostile lines, the messages about bad lines,
 * block/allow/subdomain semantics, the source each verdict is credited
 * to, and a scale run whose time and memory are printed as TAP
 * diagnostics (only correctness is asserted).
 *
 * List files are written to a temporary folder under $TMPDIR (or /tmp)
 * and removed at the end.
 */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/lists.h"
#include "../src/wire.h"
#include "tap.h"

static char tmpdir[256];
static int nfiles;

/* Write len bytes to a new file in tmpdir; returns its path (static). */
static const char *write_file(const char *data, size_t len)
{
	static char path[300];
	snprintf(path, sizeof(path), "%s/list%d.txt", tmpdir, nfiles++);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	return path;
}

#define WRITE(s) write_file((s), sizeof(s) - 1)

static void remove_files(void)
{
	char path[300];
	for (int i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "%s/list%d.txt", tmpdir, i);
		unlink(path);
	}
	rmdir(tmpdir);
}

/* The verdict for a name given as text. */
static enum lists_verdict match(const struct lists *l, const char *text)
{
	uint8_t wire[WIRE_NAME_MAX];
	const char *why;
	int n = wire_name_from_text(text, NULL, 0, wire, &why);
	if (n < 0) {
		diag("bad test name '%s': %s", text, why);
		return (enum lists_verdict)-1;
	}
	return lists_match(l, wire, (size_t)n);
}

#define BLOCKED(l, name) is_int(match((l), (name)), LISTS_BLOCKED, name)
#define ALLOWED(l, name) is_int(match((l), (name)), LISTS_ALLOWED, name)
#define NONE(l, name) is_int(match((l), (name)), LISTS_NONE, name)

/* A frozen set from one file's contents, with its stats and messages. */
static struct lists *load(const char *data, size_t len,
			  struct lists_file_stats *st, char *msgs,
			  size_t msgslen)
{
	struct lists *l = lists_new();
	if (!l || !lists_load_file(l, write_file(data, len), st, msgs,
				   msgslen) ||
	    !lists_finish(l)) {
		diag("load failed: %s", msgs);
		exit(2);
	}
	return l;
}

#define LOAD(s, st, m) load((s), sizeof(s) - 1, (st), (m), sizeof(m))

static void test_add(void)
{
	struct lists *l = lists_new();
	const char *why;
	char long_label[80], long_name[300];

	ok(lists_add(l, "ads.example.com", LISTS_BLOCK, &why), "add a name");
	ok(lists_add(l, "UPPER.Example.NET.", LISTS_BLOCK, &why),
	   "add: upper case and trailing dot");
	ok(lists_add(l, "xn--bcher-kva.example", LISTS_BLOCK, &why),
	   "add: punycode");
	ok(lists_add(l, "_dmarc.under_score.test", LISTS_BLOCK, &why),
	   "add: underscores");
	ok(lists_add(l, "*.wild.test", LISTS_BLOCK, &why),
	   "add: *. means subdomains");
	ok(lists_add(l, "subs.test", LISTS_BLOCK_SUBS, &why),
	   "add: LISTS_BLOCK_SUBS");
	ok(lists_add(l, "cdn.ads.example.com", LISTS_ALLOW, &why), "add allow");
	ok(lists_add(l, "tld", LISTS_BLOCK, &why), "add: a single label");

	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".test");
	static const struct {
		const char *name;
		enum lists_kind kind;
		const char *why;
	} bad[] = {
		{"", LISTS_BLOCK, "empty name"},
		{".", LISTS_BLOCK, "empty name"},
		{"a..b.test", LISTS_BLOCK, "empty label"},
		{".a.test", LISTS_BLOCK, "empty label"},
		{"a.test..", LISTS_BLOCK, "empty label"},
		{"1.2.3.4", LISTS_BLOCK, "IP address"},
		{"host.123", LISTS_BLOCK, "numeric top-level"},
		{"a*b.test", LISTS_BLOCK, "wildcard"},
		{"a.*.test", LISTS_BLOCK, "wildcard"},
		{"*.", LISTS_BLOCK, "empty name"},
		{"b\xc3\xbc" "cher.test", LISTS_BLOCK, "xn--"},
		{"a b.test", LISTS_BLOCK, "invalid character"},
		{"http://x.test", LISTS_BLOCK, "URL"},
		{"*.allow.test", LISTS_ALLOW, "not supported"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		ok(!lists_add(l, bad[i].name, bad[i].kind, &why),
		   "add refuses '%s'", bad[i].name);
		like(why, bad[i].why, "  with a reason");
	}
	ok(!lists_add(l, long_label, LISTS_BLOCK, &why), "label of 64 refused");
	like(why, "63", "  reason names the limit");

	/* 253 characters is the longest name; 254 is one too many. */
	for (int i = 0; i < 63 * 4; i += 63) {
		memset(long_name + i, 'x', 62);
		long_name[i + 62] = '.';
	}
	long_name[252] = 'z';
	long_name[253] = '\0';
	ok(lists_add(l, long_name, LISTS_BLOCK, &why), "253 characters");
	strcpy(long_name + 253, ".");
	ok(lists_add(l, long_name, LISTS_BLOCK, &why),
	   "253 characters and a trailing dot");
	strcpy(long_name + 252, "zz");
	ok(!lists_add(l, long_name, LISTS_BLOCK, &why), "254 refused");
	like(why, "253", "  reason names the limit");

	is_int(lists_count(l), 9, "count before finish: block names added");
	is_int(lists_allow_count(l), 1, "allow count before finish");
	is_int(match(l, "ads.example.com"), LISTS_NONE,
	       "no verdict before lists_finish");
	ok(lists_finish(l), "finish");
	is_int(lists_count(l), 8, "count after finish: duplicates merged");
	ok(!lists_add(l, "late.test", LISTS_BLOCK, &why), "no add once frozen");
	ok(lists_finish(l), "finish twice is harmless");

	BLOCKED(l, "ads.example.com");
	BLOCKED(l, "upper.example.net");
	BLOCKED(l, "XN--BCHER-KVA.example");
	BLOCKED(l, "_dmarc.under_score.test");
	BLOCKED(l, "anything.tld");
	long_name[253] = '\0';
	BLOCKED(l, long_name);
	lists_free(l);
	lists_free(NULL);
}

static void test_semantics(void)
{
	struct lists *l = lists_new();
	const char *why;

	lists_add(l, "ads.example.com", LISTS_BLOCK, &why);
	lists_add(l, "*.tracker.net", LISTS_BLOCK, &why);
	lists_add(l, "example.org", LISTS_BLOCK, &why);
	lists_add(l, "cdn.example.org", LISTS_ALLOW, &why);
	lists_add(l, "good.test", LISTS_ALLOW, &why);
	lists_add(l, "bad.good.test", LISTS_BLOCK, &why);
	lists_finish(l);

	BLOCKED(l, "ads.example.com");
	BLOCKED(l, "x.ads.example.com");
	BLOCKED(l, "a.b.c.ads.example.com");
	BLOCKED(l, "Ads.EXAMPLE.com");
	NONE(l, "example.com");
	NONE(l, "com");
	NONE(l, "bads.example.com");
	NONE(l, "ads.example.com.evil.net");
	NONE(l, "ads-example.com");

	NONE(l, "tracker.net");
	BLOCKED(l, "a.tracker.net");
	BLOCKED(l, "b.a.tracker.net");

	BLOCKED(l, "example.org");
	BLOCKED(l, "www.example.org");
	ALLOWED(l, "cdn.example.org");
	ALLOWED(l, "img.cdn.example.org");
	ALLOWED(l, "CDN.Example.Org");

	ALLOWED(l, "good.test");
	ALLOWED(l, "bad.good.test");
	ALLOWED(l, "x.bad.good.test");
	NONE(l, "other.test");

	/* Malformed wire names get no verdict, and nothing is read past
	 * the given length. */
	static const uint8_t cut[] = "\3ads\7example\3co";
	is_int(lists_match(l, cut, sizeof(cut) - 1), LISTS_NONE,
	       "name cut short");
	static const uint8_t noroot[] = "\3ads\7example\3com";
	is_int(lists_match(l, noroot, sizeof(noroot) - 1), LISTS_NONE,
	       "name without its root label");
	static const uint8_t ptr[] = "\3ads\xc0\x0c";
	is_int(lists_match(l, ptr, sizeof(ptr) - 1), LISTS_NONE,
	       "compression pointer");
	is_int(lists_match(l, (const uint8_t *)"", 1), LISTS_NONE, "root");
	is_int(lists_match(l, (const uint8_t *)"", 0), LISTS_NONE,
	       "zero length");
	uint8_t big[300] = {0};
	is_int(lists_match(l, big, sizeof(big)), LISTS_NONE, "over 255");
	lists_free(l);

	/* Only allow entries: allowed names say so, others are not blocked. */
	l = lists_new();
	lists_add(l, "a.test", LISTS_ALLOW, &why);
	lists_finish(l);
	ALLOWED(l, "a.test");
	NONE(l, "b.test");
	lists_free(l);

	/* An empty set. */
	l = lists_new();
	ok(lists_finish(l), "finish an empty set");
	NONE(l, "a.test");
	is_int(lists_count(l), 0, "empty set: count");
	lists_free(l);
}

static void test_hosts(void)
{
	struct lists_file_stats st;
	char msgs[1024];
	struct lists *l = LOAD(
		"# StevenBlack-style hosts\n"
		"127.0.0.1 localhost\n"
		"127.0.0.1 localhost.localdomain\n"
		"127.0.0.1 local\n"
		"255.255.255.255 broadcasthost\n"
		"::1 localhost ip6-localhost ip6-loopback\n"
		"fe80::1%lo0 localhost\n"
		"ff00::0 ip6-localnet\n"
		"ff02::1 ip6-allnodes\n"
		"0.0.0.0 0.0.0.0\n"
		"\n"
		"0.0.0.0 ads.example.com\n"
		"127.0.0.1 a.test b.test\tc.test\n"
		":: six.test\n"
		"::1 seven.test\n"
		"0:0:0:0:0:0:0:0 eight.test\n"
		"0.0.0.0 commented.test # a comment\n"
		"0.0.0.0 trail.test#not-a-comment\n"
		"  0.0.0.0   indented.test   \n"
		"0.0.0.0 ip6-foo.example.test\n"
		"0.0.0.0 good.test bad..test other.test 1.2.3.4\n",
		&st, msgs);
	is_int(st.lines, 21, "hosts: lines");
	is_int(st.entries, 12, "hosts: entries");
	is_int(st.ignored, 11, "hosts: localhost and friends ignored");
	is_int(st.bad, 3, "hosts: bad lines");
	is_int(st.skipped_options, 0, "hosts: nothing skipped");
	like(msgs, ":7: ", "scoped address: bad");
	like(msgs, ":18: invalid character in name: "
		   "'0.0.0.0 trail.test#not-a-comment'",
	     "'#' inside a name is not a comment");
	like(msgs, ":21: empty label", "bad name among good ones");
	BLOCKED(l, "ads.example.com");
	BLOCKED(l, "a.test");
	BLOCKED(l, "b.test");
	BLOCKED(l, "c.test");
	BLOCKED(l, "six.test");
	BLOCKED(l, "seven.test");
	BLOCKED(l, "eight.test");
	BLOCKED(l, "commented.test");
	BLOCKED(l, "indented.test");
	BLOCKED(l, "ip6-foo.example.test");
	BLOCKED(l, "good.test");
	BLOCKED(l, "other.test");
	NONE(l, "localhost");
	NONE(l, "ip6-localhost");
	NONE(l, "broadcasthost");
	NONE(l, "x.local");
	lists_free(l);
}

static void test_plain(void)
{
	struct lists_file_stats st;
	char msgs[1024];
	struct lists *l = LOAD("plain.test\n"
			       "UPPER.Example.TEST\n"
			       "dot.test.\n"
			       "crlf.test\r\n"
			       "\r\n"
			       "  spaced.test \t\n"
			       "xn--bcher-kva.test\n"
			       "*.star.test\n"
			       "localhost\n"
			       "1.2.3.4\n"
			       "# comment\n"
			       "last.test",
			       &st, msgs);
	is_int(st.lines, 12, "plain: lines (last one without newline)");
	is_int(st.entries, 8, "plain: entries");
	is_int(st.ignored, 1, "plain: localhost ignored");
	is_int(st.bad, 1, "plain: bad lines");
	like(msgs, ":10: IP address", "plain: an address alone is bad");
	BLOCKED(l, "plain.test");
	BLOCKED(l, "upper.example.test");
	BLOCKED(l, "dot.test");
	BLOCKED(l, "crlf.test");
	BLOCKED(l, "spaced.test");
	BLOCKED(l, "xn--bcher-kva.test");
	BLOCKED(l, "sub.xn--bcher-kva.test");
	NONE(l, "star.test");
	BLOCKED(l, "a.star.test");
	BLOCKED(l, "last.test");
	NONE(l, "localhost");
	lists_free(l);
}

static void test_adblock(void)
{
	struct lists_file_stats st;
	char msgs[2048];
	struct lists *l = LOAD(
		"[Adblock Plus 2.0]\n"
		"! Title: test list\n"
		"||ab.test^\n"
		"||imp.test^$important\n"
		"||all.test^$all,important\n"
		"||doc.test^$document\n"
		"||pipe.test^|\n"
		"||bar.test|\n"
		"||UP.Test^\n"
		"||*.wild.test^\n"
		"@@||ok.ab.test^\n"
		"@@||okimp.ab.test^$important\n"
		"||tp.test^$third-party\n"
		"||dom.test^$domain=a.com\n"
		"||bf.ab.test^$badfilter\n"
		"||mix.test^$important,third-party\n"
		"||dns.test^$dnstype=AAAA\n"
		"||path.test/ads^\n"
		"||port.test:8080^\n"
		"||nocaret.test\n"
		"||nocaret2.test$important\n"
		"/ads[0-9]+\\.test/\n"
		"example.test##.banner\n"
		"example.test#@#.banner\n"
		"||a*b.test^\n"
		"|http://x.test/\n"
		"||x.test^$\n"
		"||x.test^*\n"
		"@@x.test\n"
		"@@||*.wild.test^\n"
		"||1.2.3.4^\n",
		&st, msgs);
	is_int(st.lines, 31, "adblock: lines");
	is_int(st.entries, 9, "adblock: entries ($dnstype included)");
	is_int(st.allows, 2, "adblock: allows");
	is_int(st.skipped_options, 3, "adblock: options that change meaning");
	is_int(st.bad, 13, "adblock: bad lines");
	is_int(st.regexes, 1, "adblock: a regular expression");
	is_int(st.badfilters, 1, "adblock: a $badfilter rule");
	BLOCKED(l, "ab.test");
	BLOCKED(l, "x.ab.test");
	BLOCKED(l, "imp.test");
	BLOCKED(l, "all.test");
	BLOCKED(l, "doc.test");
	BLOCKED(l, "pipe.test");
	BLOCKED(l, "bar.test");
	BLOCKED(l, "up.test");
	NONE(l, "wild.test");
	BLOCKED(l, "x.wild.test");
	ALLOWED(l, "ok.ab.test");
	ALLOWED(l, "x.ok.ab.test");
	ALLOWED(l, "okimp.ab.test");
	BLOCKED(l, "bf.ab.test");  /* $badfilter is not an allow */
	NONE(l, "tp.test");        /* never misread as a block */
	NONE(l, "dom.test");
	NONE(l, "mix.test");
	NONE(l, "dns.test");
	NONE(l, "path.test");
	NONE(l, "nocaret.test");
	NONE(l, "example.test");
	NONE(l, "x.test");
	like(msgs, ":13: adblock option", "first report: line 13");
	like(msgs, ":14: adblock option", "second report: line 14");
	like(msgs, ":16: adblock option", "third report: line 16");
	ok(strstr(msgs, ":17:") == NULL, "no fourth report");
	lists_free(l);
}

static void test_mixed(void)
{
	struct lists_file_stats st;
	char msgs[1024];
	struct lists *l = LOAD("\xef\xbb\xbf# mixed, with a byte order mark\r\n"
			       "0.0.0.0 hosts.test\r\n"
			       "plain.test\r\n"
			       "||adblock.test^\r\n"
			       "@@||ok.plain.test^\r\n"
			       "*.star.test\r\n"
			       "! done\r\n",
			       &st, msgs);
	is_int(st.lines, 7, "mixed: lines");
	is_int(st.entries, 4, "mixed: entries");
	is_int(st.allows, 1, "mixed: allows");
	is_int(st.bad, 0, "mixed: no bad lines");
	is_str(msgs, "", "mixed: no messages");
	BLOCKED(l, "hosts.test");
	BLOCKED(l, "plain.test");
	BLOCKED(l, "adblock.test");
	ALLOWED(l, "ok.plain.test");
	BLOCKED(l, "x.star.test");
	is_int(lists_count(l), 4, "mixed: count");
	is_int(lists_allow_count(l), 1, "mixed: allow count");
	lists_free(l);

	l = LOAD("\xef\xbb\xbf" "bom.test\n", &st, msgs);
	is_int(st.entries, 1, "a byte order mark before a name");
	BLOCKED(l, "bom.test");
	lists_free(l);
}

/* ---- rules people write: $important, $badfilter, $dnstype, regexes ---- */

/* The verdict for a query of type qtype for a name given as text, with
 * the source in *src (-1 when none decided). */
static enum lists_verdict matchq(const struct lists *l, const char *text,
				 uint16_t qtype, struct lists_scratch *sc,
				 int *src)
{
	uint8_t wire[WIRE_NAME_MAX];
	const char *why;
	unsigned s = 99999;
	int n = wire_name_from_text(text, NULL, 0, wire, &why);
	if (n < 0) {
		diag("bad test name '%s': %s", text, why);
		return (enum lists_verdict)-1;
	}
	enum lists_verdict v =
	    lists_match_source(l, wire, (size_t)n, qtype, sc, &s);
	*src = v == LISTS_NONE ? -1 : (int)s;
	return v;
}

/* Expect verdict v and source src for (name, qtype). */
static void expect(const struct lists *l, struct lists_scratch *sc,
		   const char *name, uint16_t qtype, enum lists_verdict v,
		   int src)
{
	int got;
	enum lists_verdict g = matchq(l, name, qtype, sc, &got);
	ok(g == v && got == src, "%s type %u: %s from source %d", name,
	   qtype, v == LISTS_BLOCKED ? "blocked" : v == LISTS_ALLOWED
						 ? "allowed" : "nothing",
	   src);
	if (g != v || got != src)
		diag("  got verdict %d from source %d", g, got);
}

/* A frozen set from several files, one source each. */
static struct lists *load_sources(const char *const *files, size_t n,
				  struct lists_file_stats *st, char *msgs,
				  size_t msgslen)
{
	struct lists *l = lists_new();
	for (size_t i = 0; i < n; i++)
		if (!l || lists_begin_source(l) != (int)i ||
		    !lists_load_file(l, write_file(files[i], strlen(files[i])),
				     &st[i], msgs, msgslen)) {
			diag("load failed: %s", msgs);
			exit(2);
		}
	if (!lists_finish(l))
		exit(2);
	return l;
}

static void test_important(void)
{
	static const char *const files[] = {
		"||ads.test^$important\n"
		"||ok.test^$important\n"
		"@@||top.imp.test^$important\n"
		"||plain.test^\n",
		"@@||ads.test^\n"
		"@@||x.ok.test^\n"
		"||imp.test^$important\n"
		"@@||y.plain.test^\n"
		"@@||z.plain.test^$important\n"
		"||z.plain.test^$important\n",
	};
	struct lists_file_stats st[2];
	char msgs[512];
	struct lists *l = load_sources(files, 2, st, msgs, sizeof(msgs));

	is_int(st[0].bad + st[1].bad + st[0].skipped_options, 0,
	       "important: no bad lines");
	expect(l, NULL, "ads.test", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, NULL, "www.ads.test", WIRE_T_A, LISTS_BLOCKED, 0);
	/* An important block of an ancestor beats an allow below it. */
	expect(l, NULL, "x.ok.test", WIRE_T_A, LISTS_BLOCKED, 0);
	/* An important allow beats an important block. */
	expect(l, NULL, "top.imp.test", WIRE_T_A, LISTS_ALLOWED, 0);
	expect(l, NULL, "a.top.imp.test", WIRE_T_A, LISTS_ALLOWED, 0);
	expect(l, NULL, "imp.test", WIRE_T_A, LISTS_BLOCKED, 1);
	/* Without $important, allow beats block as before. */
	expect(l, NULL, "plain.test", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, NULL, "y.plain.test", WIRE_T_A, LISTS_ALLOWED, 1);
	expect(l, NULL, "z.plain.test", WIRE_T_A, LISTS_ALLOWED, 1);
	is_int(lists_count(l), 5, "important: block rules counted");
	is_int(lists_allow_count(l), 5, "important: allow rules counted");
	lists_free(l);
}

static void test_badfilter(void)
{
	static const char *const files[] = {
		"||a.test^\n"
		"||b.test^$important\n"
		"/^re[0-9]\\./\n"
		"||t.test^$dnstype=A\n"
		"0.0.0.0 h.test\n"
		"||o.test^$important,dnstype=A|AAAA\n"
		"@@||w.keep.test^\n"
		"||keep.test^\n",
		"||a.test^$badfilter\n"
		"||b.test^$badfilter\n"
		"/^re[0-9]\\./$badfilter\n"
		"||t.test^$dnstype=A,badfilter\n"
		"||h.test^$badfilter\n"
		"||o.test^$dnstype=AAAA|A,badfilter,important\n"
		"@@||w.keep.test^$badfilter\n"
		"||nothing.test^$badfilter\n",
	};
	struct lists_file_stats st[2];
	char msgs[512];
	struct lists_scratch *sc = lists_scratch_new();
	struct lists *l = load_sources(files, 2, st, msgs, sizeof(msgs));

	is_int(st[1].badfilters, 8, "badfilter: eight rules read");
	is_int(st[1].entries + st[1].bad + st[1].skipped_options, 0,
	       "badfilter: they add nothing else");
	expect(l, sc, "a.test", WIRE_T_A, LISTS_NONE, -1);
	/* Not the same rule: $important differs. */
	expect(l, sc, "b.test", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, sc, "re1.test", WIRE_T_A, LISTS_NONE, -1);
	expect(l, sc, "t.test", WIRE_T_A, LISTS_NONE, -1);
	/* A hosts line means ||h.test^. */
	expect(l, sc, "h.test", WIRE_T_A, LISTS_NONE, -1);
	/* The same options in another order are the same rule. */
	expect(l, sc, "o.test", WIRE_T_AAAA, LISTS_NONE, -1);
	/* An allow rule is disabled like a block rule. */
	expect(l, sc, "w.keep.test", WIRE_T_A, LISTS_BLOCKED, 0);
	is_int(lists_regex_count(l), 0, "badfilter: the regex is gone");
	lists_free(l);

	/* Within one list too, whatever the order of the lines. */
	struct lists_file_stats one;
	l = LOAD("||after.test^$badfilter\n||after.test^\n||sub.after.test^\n",
		 &one, msgs);
	NONE(l, "after.test");
	BLOCKED(l, "sub.after.test");
	lists_free(l);
	lists_scratch_free(sc);
}

static void test_dnstype(void)
{
	struct lists_file_stats st;
	char msgs[1024];
	struct lists *l = LOAD("||d.test^$dnstype=AAAA|HTTPS\n"
			       "||n.test^$dnstype=~A\n"
			       "@@||x.d.test^$dnstype=https\n"
			       "||*.s.test^$dnstype=A\n"
			       "||num.test^$dnstype=TYPE65|type99\n"
			       "||imp.n.test^$dnstype=A,important\n"
			       "||neg.test^$dnstype=~A|~AAAA\n"
			       "||bad1.test^$dnstype=FOO\n"
			       "||bad2.test^$dnstype=A|~AAAA\n"
			       "||bad3.test^$dnstype=\n"
			       "||bad4.test^$dnstype=A||AAAA\n"
			       "||bad5.test^$dnstype=TYPE70000\n",
			       &st, msgs);

	is_int(st.entries, 6, "dnstype: block rules");
	is_int(st.allows, 1, "dnstype: allow rule");
	is_int(st.bad, 5, "dnstype: bad types and mixtures");
	like(msgs, ":8: unknown query type in $dnstype", "dnstype: reason");
	expect(l, NULL, "d.test", WIRE_T_AAAA, LISTS_BLOCKED, 0);
	expect(l, NULL, "d.test", 65, LISTS_BLOCKED, 0);
	expect(l, NULL, "www.d.test", 65, LISTS_BLOCKED, 0);
	expect(l, NULL, "d.test", WIRE_T_A, LISTS_NONE, -1);
	expect(l, NULL, "x.d.test", 65, LISTS_ALLOWED, 0);
	expect(l, NULL, "x.d.test", WIRE_T_AAAA, LISTS_BLOCKED, 0);
	expect(l, NULL, "n.test", WIRE_T_A, LISTS_NONE, -1);
	expect(l, NULL, "n.test", WIRE_T_AAAA, LISTS_BLOCKED, 0);
	expect(l, NULL, "n.test", WIRE_T_MX, LISTS_BLOCKED, 0);
	expect(l, NULL, "imp.n.test", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, NULL, "s.test", WIRE_T_A, LISTS_NONE, -1);
	expect(l, NULL, "w.s.test", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, NULL, "w.s.test", WIRE_T_TXT, LISTS_NONE, -1);
	expect(l, NULL, "num.test", 65, LISTS_BLOCKED, 0);
	expect(l, NULL, "num.test", 99, LISTS_BLOCKED, 0);
	expect(l, NULL, "num.test", 64, LISTS_NONE, -1);
	expect(l, NULL, "neg.test", WIRE_T_A, LISTS_NONE, -1);
	expect(l, NULL, "neg.test", WIRE_T_AAAA, LISTS_NONE, -1);
	expect(l, NULL, "neg.test", WIRE_T_TXT, LISTS_BLOCKED, 0);
	expect(l, NULL, "bad1.test", WIRE_T_A, LISTS_NONE, -1);
	/* lists_match asks for type 0: only ~TYPE rules apply. */
	NONE(l, "d.test");
	BLOCKED(l, "n.test");
	lists_free(l);
}

static void test_regex(void)
{
	struct lists_file_stats st;
	char msgs[1024];
	struct lists_scratch *sc = lists_scratch_new();
	ok(sc != NULL, "regex: a scratch");
	struct lists *l = LOAD("/^ad[0-9]+\\./\n"
			       "/TRACK/\n"
			       "@@/^ad1\\.good\\./\n"
			       "/(unclosed/\n"
			       "/^onlytxt\\./$dnstype=TXT\n"
			       "/end$/\n"
			       "/^opt\\.test$/$important\n"
			       "||p.test^\n"
			       "@@/^w\\.p\\.test$/\n"
			       "@@||q.test^$important\n"
			       "/^q\\./$important\n"
			       "/^third\\./$third-party\n"
			       "//\n"
			       "/noclose\n",
			       &st, msgs);

	is_int(st.regexes, 8, "regex: eight read");
	is_int(st.bad, 3, "regex: unclosed group, empty, no closing slash");
	is_int(st.skipped_options, 1, "regex: an unsupported option");
	like(msgs, ":4: missing closing parenthesis at offset 9",
	     "regex: PCRE2's reason with the line");
	is_int(lists_regex_count(l), 8, "regex: count");
	expect(l, sc, "ad5.example", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, sc, "AD77.Example.COM", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, NULL, "ad5.example", WIRE_T_A, LISTS_NONE, -1);
	expect(l, sc, "bad.example", WIRE_T_A, LISTS_NONE, -1);
	expect(l, sc, "x.ad5.example", WIRE_T_A, LISTS_NONE, -1);
	expect(l, sc, "ad1.good.test", WIRE_T_A, LISTS_ALLOWED, 0);
	/* Caseless: an upper-case pattern matches the lower-case text. */
	expect(l, sc, "x.tracker.com", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, sc, "onlytxt.test", WIRE_T_TXT, LISTS_BLOCKED, 0);
	expect(l, sc, "onlytxt.test", WIRE_T_A, LISTS_NONE, -1);
	/* No trailing dot in the text: "$" is the end of the name. */
	expect(l, sc, "the.weekend", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, sc, "weekend.test", WIRE_T_A, LISTS_NONE, -1);
	expect(l, sc, "opt.test", WIRE_T_A, LISTS_BLOCKED, 0);
	/* An allow regex beats a plain name block... */
	expect(l, sc, "p.test", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, sc, "w.p.test", WIRE_T_A, LISTS_ALLOWED, 0);
	/* ...and an important allow name rule beats an important regex. */
	expect(l, sc, "q.test", WIRE_T_A, LISTS_ALLOWED, 0);
	expect(l, sc, "third.test", WIRE_T_A, LISTS_NONE, -1);
	lists_free(l);

	/* Regexes keep their sources. */
	static const char *const files[] = {"||x.test^\n", "/^r1\\./\n",
					    "/^r2\\./\n"};
	struct lists_file_stats three[3];
	l = load_sources(files, 3, three, msgs, sizeof(msgs));
	expect(l, sc, "r1.test", WIRE_T_A, LISTS_BLOCKED, 1);
	expect(l, sc, "r2.test", WIRE_T_A, LISTS_BLOCKED, 2);
	lists_free(l);
	lists_scratch_free(sc);
}

static void test_regex_cap(void)
{
	struct lists *l = lists_new();
	struct lists_scratch *sc = lists_scratch_new();
	char why[200], pat[40];
	bool all = true;

	ok(!lists_add_regex(l, "a(", why, sizeof(why)), "block.regex: bad");
	like(why, "missing closing parenthesis at offset 2",
	     "block.regex: PCRE2's reason");
	for (int i = 0; i < LISTS_REGEX_MAX; i++) {
		snprintf(pat, sizeof(pat), "^cap%d\\.", i);
		all &= lists_add_regex(l, pat, why, sizeof(why));
	}
	ok(all, "block.regex: %d patterns", LISTS_REGEX_MAX);
	ok(!lists_add_regex(l, "^over\\.", why, sizeof(why)),
	   "block.regex: one more is refused");
	like(why, "more than 1000 regular expressions", "cap: the reason");
	struct lists_file_stats st;
	char msgs[512];
	const char *path = WRITE("/^file\\./\n||name.test^\n");
	ok(lists_load_file(l, path, &st, msgs, sizeof(msgs)),
	   "cap: the list still loads");
	is_int(st.bad, 1, "cap: a regex past it is a bad line");
	is_int(st.entries, 1, "cap: names are still read");
	like(msgs, ":1: more than 1000 regular expressions", "cap: reported");
	ok(lists_finish(l), "cap: finish");
	expect(l, sc, "cap999.test", WIRE_T_A, LISTS_BLOCKED, 0);
	expect(l, sc, "file.test", WIRE_T_A, LISTS_NONE, -1);
	expect(l, sc, "name.test", WIRE_T_A, LISTS_BLOCKED, 0);
	lists_free(l);
	lists_scratch_free(sc);
}

/* Bad lines: counts, the first three quoted with their line numbers. */
static void test_messages(void)
{
	struct lists_file_stats st;
	char msgs[1024], small[40];
	struct lists *l = lists_new();
	const char *path = WRITE("good.test\n"
				 "bad..test\n"
				 "# comment\n"
				 "||x.test^$third-party\n"
				 "a_b.test\n"
				 "@@bad\n"
				 "another..bad\n");

	ok(lists_load_file(l, path, &st, msgs, sizeof(msgs)), "load");
	is_int(st.bad, 3, "three bad lines");
	is_int(st.skipped_options, 1, "one skipped");
	char want[1024];
	snprintf(want, sizeof(want),
		 "%s:2: empty label: 'bad..test'\n"
		 "%s:4: adblock option that changes the rule's meaning: "
		 "'||x.test^$third-party'\n"
		 "%s:6: adblock rule other than ||domain^ or /regex/ "
		 "(URL): '@@bad'\n",
		 path, path, path);
	is_str(msgs, want, "messages: path, line, reason and the line");

	ok(lists_load_file(l, path, &st, small, sizeof(small)),
	   "load with a small message buffer");
	ok(strlen(small) < sizeof(small), "  messages cut to fit");
	ok(lists_load_file(l, path, &st, NULL, 0), "load without messages");
	is_int(st.bad, 3, "  still counted");

	ok(!lists_load_file(l, "/nonexistent/list.txt", &st, msgs,
			    sizeof(msgs)),
	   "missing file fails");
	is_str(msgs, "/nonexistent/list.txt: No such file or directory\n",
	       "  with the errno message");
	ok(!lists_load_file(l, tmpdir, &st, msgs, sizeof(msgs)),
	   "a folder fails");
	like(msgs, "Is a directory", "  with the errno message");

	path = WRITE("");
	ok(lists_load_file(l, path, &st, msgs, sizeof(msgs)), "empty file");
	is_int(st.lines, 0, "  no lines");
	is_str(msgs, "", "  no messages");
	lists_free(l);
}

/* Huge lines, NUL bytes, control characters, non-ASCII. */
static void test_hostile(void)
{
	size_t huge = 300 * 1024; /* longer than the read buffer */
	size_t cap = huge + 8192;
	char *buf = malloc(cap);
	if (!buf)
		abort();
	size_t n = 0;
	struct lists_file_stats st;
	char msgs[1024];

#define PUT(s) (memcpy(buf + n, (s), sizeof(s) - 1), n += sizeof(s) - 1)
	PUT("first.test\n");                    /* 1 */
	memset(buf + n, 'a', huge);             /* 2: 300 KiB, no dots */
	n += huge;
	PUT("\n");
	PUT("after.test\n");                    /* 3 */
	memset(buf + n, 'b', 4097);             /* 4: just over 4 KiB */
	n += 4097;
	PUT("\n");
	PUT("nul\0.test\n");                    /* 5 */
	PUT("0.0.0.0 nul2.test\0\n");           /* 6 */
	PUT("\0\n");                            /* 7 */
	PUT("ctl\x01.test\n");                  /* 8 */
	PUT("b\xc3\xbc" "cher.test\n");         /* 9 */
	PUT("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".test\n");                         /* 10: label of 64 */
	PUT("0.0.0.0\n");                       /* 11 */
	PUT("last.test\n");                     /* 12 */
#undef PUT
	struct lists *l = load(buf, n, &st, msgs, sizeof(msgs));
	is_int(st.lines, 12, "hostile: lines");
	is_int(st.entries, 3, "hostile: entries");
	is_int(st.bad, 9, "hostile: bad lines");
	like(msgs, ":2: line longer than 4096 bytes: 'aaaa", "huge line");
	like(msgs, "aaa...'\n", "  excerpt cut");
	like(msgs, ":4: line longer than 4096 bytes", "line of 4097 bytes");
	like(msgs, ":5: NUL byte: 'nul?.test'", "NUL byte, shown as '?'");
	BLOCKED(l, "first.test");
	BLOCKED(l, "after.test");
	BLOCKED(l, "last.test");
	NONE(l, "nul.test");
	NONE(l, "nul2.test");
	lists_free(l);

	/* A huge last line without a newline, then the end of the file. */
	memset(buf, 'c', huge);
	l = load(buf, huge, &st, msgs, sizeof(msgs));
	is_int(st.lines, 1, "huge last line: one line");
	is_int(st.bad, 1, "  bad");
	lists_free(l);
	free(buf);
}

/* Duplicates within and across files count once. */
static void test_duplicates(void)
{
	struct lists *l = lists_new();
	struct lists_file_stats st;
	char msgs[256];
	const char *why;

	lists_load_file(l, WRITE("dup.test\nDUP.test\n0.0.0.0 dup.test\n"),
			&st, msgs, sizeof(msgs));
	is_int(st.entries, 3, "entries count every line");
	lists_load_file(l, WRITE("||dup.test^\nother.test\n"), &st, msgs,
			sizeof(msgs));
	lists_add(l, "dup.test.", LISTS_BLOCK, &why);
	is_int(lists_count(l), 6, "before finish: duplicates included");
	lists_finish(l);
	is_int(lists_count(l), 2, "after finish: distinct names");
	ok(!lists_load_file(l, WRITE("x.test\n"), &st, msgs, sizeof(msgs)),
	   "no loading once frozen");
	BLOCKED(l, "dup.test");
	BLOCKED(l, "other.test");
	lists_free(l);
}

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

/* ---- against a reference ----------------------------------------------- */

/* Names of 1-4 labels from a small alphabet, so that many are suffixes of
 * others; name i of 780. */
static void small_name(char *out, unsigned i)
{
	static const char *const labels[] = {"a", "b", "c", "xn--d", "e-f"};
	unsigned n = i < 5 ? 1 : i < 30 ? 2 : i < 155 ? 3 : 4;
	unsigned k = i - (n == 1 ? 0 : n == 2 ? 5 : n == 3 ? 30 : 155);
	out[0] = '\0';
	for (unsigned j = 0; j < n; j++, k /= 5) {
		strcat(out, labels[k % 5]);
		if (j + 1 < n)
			strcat(out, ".");
	}
}

/* q is e or a subdomain of e (strict: only a subdomain). */
static bool under(const char *q, const char *e, bool strict)
{
	size_t ql = strlen(q), el = strlen(e);
	if (ql == el)
		return !strict && strcmp(q, e) == 0;
	return ql > el && q[ql - el - 1] == '.' && strcmp(q + ql - el, e) == 0;
}

static void test_reference(void)
{
	enum { UNIVERSE = 780, ROUNDS = 20 };
	static char names[UNIVERSE][32];
	static unsigned char kind[UNIVERSE]; /* 1 << lists_kind, or'ed */
	size_t wrong = 0, checked = 0;

	for (unsigned i = 0; i < UNIVERSE; i++)
		small_name(names[i], i);
	rng_state = 42;
	for (int round = 0; round < ROUNDS; round++) {
		struct lists *l = lists_new();
		const char *why;
		memset(kind, 0, sizeof(kind));
		for (int e = 0; e < 40; e++) {
			unsigned i = rnd() % UNIVERSE;
			unsigned r = rnd() % 5; /* more blocks than the rest */
			enum lists_kind k = r < 3    ? LISTS_BLOCK
					    : r == 3 ? LISTS_BLOCK_SUBS
						     : LISTS_ALLOW;
			kind[i] |= (unsigned char)(1u << k);
			lists_add(l, names[i], k, &why);
		}
		lists_finish(l);
		for (unsigned q = 0; q < UNIVERSE; q++) {
			bool allowed = false, blocked = false;
			for (unsigned e = 0; e < UNIVERSE; e++) {
				bool u = under(names[q], names[e], false);
				bool sub = under(names[q], names[e], true);
				if (u && (kind[e] & 1u << LISTS_ALLOW))
					allowed = true;
				if ((u && (kind[e] & 1u << LISTS_BLOCK)) ||
				    (sub && (kind[e] & 1u << LISTS_BLOCK_SUBS)))
					blocked = true;
			}
			enum lists_verdict want = allowed   ? LISTS_ALLOWED
						  : blocked ? LISTS_BLOCKED
							    : LISTS_NONE;
			char upper[32];
			for (size_t j = 0; j < sizeof(upper); j++)
				upper[j] = (char)((names[q][j] >= 'a' &&
						   names[q][j] <= 'z')
							  ? names[q][j] - 32
							  : names[q][j]);
			wrong += match(l, names[q]) != want;
			wrong += match(l, upper) != want;
			checked += 2;
		}
		lists_free(l);
	}
	is_int(wrong, 0, "verdicts agree with a reference over random sets");
	diag("reference: %zu lookups compared", checked);
}

/* ---- sources --------------------------------------------------------- */

static const char *const verdict_name[] = {"none", "blocked", "allowed"};

/* Check the verdict and the deciding source for a name given as text;
 * want_src -1 means *source must be left alone.  lists_match must give
 * the same verdict. */
static void from(const struct lists *l, const char *text,
		 enum lists_verdict want, int want_src)
{
	uint8_t wire[WIRE_NAME_MAX];
	const char *why;
	unsigned src = 99999;
	int n = wire_name_from_text(text, NULL, 0, wire, &why);
	if (n < 0) {
		ok(0, "bad test name '%s': %s", text, why);
		return;
	}
	enum lists_verdict v = lists_match_source(l, wire, (size_t)n, WIRE_T_A, NULL,
						  &src);
	int got = src == 99999 ? -1 : (int)src;
	if (!ok(v == want && got == want_src &&
		    lists_match(l, wire, (size_t)n) == v,
		"%s: %s, source %d", text, verdict_name[want], want_src))
		diag("  got %s, source %d", verdict_name[v], got);
}

/* Three and more sources, as block.c numbers them: block.domains,
 * block.allow, then each file. */
static void test_sources(void)
{
	struct lists *l = lists_new();
	struct lists_file_stats st;
	char msgs[256];
	const char *why;

	is_int(lists_source_count(l), 1, "sources: source 0 always exists");
	is_int(lists_begin_source(l), 0, "first source: 0");
	lists_add(l, "a.test", LISTS_BLOCK, &why);
	lists_add(l, "dup.test", LISTS_BLOCK, &why);
	lists_add(l, "*.sub.test", LISTS_BLOCK, &why);
	is_int(lists_begin_source(l), 1, "second source: 1");
	lists_add(l, "ok.a.test", LISTS_ALLOW, &why);
	lists_add(l, "both.test", LISTS_ALLOW, &why);
	is_int(lists_begin_source(l), 2, "third source: 2");
	ok(lists_load_file(l,
			   WRITE("dup.test\n"
				 "b.test\n"
				 "*.w.test\n"
				 "@@||ok.b.test^\n"
				 "@@||both.test^\n"
				 "0.0.0.0 c.test\n"
				 "||*.star.test^\n"
				 "sub.test\n"),
			   &st, msgs, sizeof(msgs)),
	   "load the third source");
	is_int(lists_begin_source(l), 3, "fourth source: 3");
	ok(lists_load_file(l,
			   WRITE("B.test\n"
				 "||c.test^\n"
				 "w.test\n"
				 "d.test\n"
				 "||*.a.test^\n"
				 "*.star.test\n"
				 "both.test\n"
				 "DUP.test.\n"),
			   &st, msgs, sizeof(msgs)),
	   "load the fourth source");
	is_int(lists_begin_source(l), 4, "an empty source: 4");
	is_int(lists_source_count(l), 5, "five sources");
	ok(lists_finish(l), "finish");
	is_int(lists_begin_source(l), -1, "no source once frozen");
	is_int(lists_source_count(l), 5, "still five sources");

	/* The same name from several sources keeps the first. */
	from(l, "dup.test", LISTS_BLOCKED, 0);
	from(l, "www.dup.test", LISTS_BLOCKED, 0);
	from(l, "b.test", LISTS_BLOCKED, 2);
	from(l, "c.test", LISTS_BLOCKED, 2);
	from(l, "x.star.test", LISTS_BLOCKED, 2);
	from(l, "d.test", LISTS_BLOCKED, 3);
	/* Allow entries report their own source, not the block's. */
	from(l, "ok.a.test", LISTS_ALLOWED, 1);
	from(l, "x.ok.a.test", LISTS_ALLOWED, 1);
	from(l, "ok.b.test", LISTS_ALLOWED, 2);
	from(l, "both.test", LISTS_ALLOWED, 1);
	from(l, "x.both.test", LISTS_ALLOWED, 1);
	/* "*." entries are entries of their own: w.test (source 3) and
	 * *.w.test (source 2) both cover x.w.test, and the block entry for
	 * the same name is the one that decides. */
	from(l, "w.test", LISTS_BLOCKED, 3);
	from(l, "x.w.test", LISTS_BLOCKED, 3);
	from(l, "star.test", LISTS_NONE, -1);
	from(l, "sub.test", LISTS_BLOCKED, 2);
	from(l, "x.sub.test", LISTS_BLOCKED, 2);
	/* a.test (source 0) beats *.a.test (source 3) for its subdomains. */
	from(l, "a.test", LISTS_BLOCKED, 0);
	from(l, "x.a.test", LISTS_BLOCKED, 0);
	/* No verdict: the source is left alone. */
	from(l, "e.test", LISTS_NONE, -1);
	from(l, "test", LISTS_NONE, -1);
	static const uint8_t cut[] = "\3dup\4te";
	unsigned src = 77;
	is_int(lists_match_source(l, cut, sizeof(cut) - 1, WIRE_T_A, NULL,
				  &src), LISTS_NONE,
	       "malformed name: no verdict");
	is_int(src, 77, "  and the source left alone");
	lists_free(l);

	/* The entry nearest the root decides, whichever source is first. */
	l = lists_new();
	lists_begin_source(l);
	lists_add(l, "x.deep.test", LISTS_BLOCK, &why);
	lists_add(l, "other.test", LISTS_BLOCK, &why);
	lists_begin_source(l);
	lists_add(l, "deep.test", LISTS_BLOCK, &why);
	lists_add(l, "y.other.test", LISTS_BLOCK, &why);
	lists_begin_source(l);
	lists_add(l, "in.y.other.test", LISTS_ALLOW, &why);
	lists_add(l, "y.deep.test", LISTS_ALLOW, &why);
	lists_finish(l);
	from(l, "a.x.deep.test", LISTS_BLOCKED, 1);
	from(l, "a.y.other.test", LISTS_BLOCKED, 0);
	from(l, "in.y.other.test", LISTS_ALLOWED, 2);
	from(l, "y.deep.test", LISTS_ALLOWED, 2);
	lists_free(l);

	/* Names added before the first lists_begin_source are source 0;
	 * without any call everything is. */
	l = lists_new();
	lists_add(l, "early.test", LISTS_BLOCK, &why);
	is_int(lists_begin_source(l), 0, "a late first call still gives 0");
	lists_add(l, "zero.test", LISTS_BLOCK, &why);
	is_int(lists_begin_source(l), 1, "then 1");
	lists_add(l, "one.test", LISTS_ALLOW, &why);
	lists_finish(l);
	from(l, "early.test", LISTS_BLOCKED, 0);
	from(l, "zero.test", LISTS_BLOCKED, 0);
	from(l, "one.test", LISTS_ALLOWED, 1);
	lists_free(l);
	l = lists_new();
	lists_add(l, "only.test", LISTS_BLOCK, &why);
	lists_add(l, "fine.only.test", LISTS_ALLOW, &why);
	lists_finish(l);
	is_int(lists_source_count(l), 1, "no call: one source");
	from(l, "x.only.test", LISTS_BLOCKED, 0);
	from(l, "fine.only.test", LISTS_ALLOWED, 0);
	lists_free(l);

	/* The limit: sources 0 .. 65535, and no more. */
	l = lists_new();
	int last = -1;
	bool counted = true;
	for (int i = 0; i < LISTS_SOURCES_MAX; i++) {
		last = lists_begin_source(l);
		counted &= last == i;
		if (i == 7)
			lists_add(l, "seven.test", LISTS_BLOCK, &why);
		if (i == 8)
			lists_add(l, "ok.seven.test", LISTS_ALLOW, &why);
	}
	ok(counted, "sources counted up to 65535");
	is_int(lists_begin_source(l), -1, "source 65536 refused");
	lists_add(l, "last.test", LISTS_BLOCK, &why);
	lists_add(l, "seven.test", LISTS_BLOCK, &why);
	lists_finish(l);
	is_int(lists_source_count(l), LISTS_SOURCES_MAX, "65536 sources");
	from(l, "last.test", LISTS_BLOCKED, LISTS_SOURCES_MAX - 1);
	from(l, "seven.test", LISTS_BLOCKED, 7);
	from(l, "ok.seven.test", LISTS_ALLOWED, 8);
	lists_free(l);
}

/* Verdicts and sources against a reference: random entries from five
 * sources over names that are often suffixes of one another. */
static void test_reference_sources(void)
{
	enum { UNIVERSE = 780, ROUNDS = 20, ENTRIES = 60, SOURCES = 5 };
	static char names[UNIVERSE][32];
	struct {
		unsigned name;
		enum lists_kind kind;
		unsigned source;
	} e[ENTRIES];
	size_t wrong = 0, checked = 0, decided = 0;

	for (unsigned i = 0; i < UNIVERSE; i++)
		small_name(names[i], i);
	rng_state = 4242;
	for (int round = 0; round < ROUNDS; round++) {
		struct lists *l = lists_new();
		const char *why;
		for (unsigned i = 0; i < ENTRIES; i++) {
			if (i % (ENTRIES / SOURCES) == 0)
				lists_begin_source(l);
			unsigned r = rnd() % 5;
			e[i].name = rnd() % UNIVERSE;
			e[i].kind = r < 3    ? LISTS_BLOCK
				    : r == 3 ? LISTS_BLOCK_SUBS
					     : LISTS_ALLOW;
			e[i].source = i / (ENTRIES / SOURCES);
			lists_add(l, names[e[i].name], e[i].kind, &why);
		}
		lists_finish(l);
		for (unsigned q = 0; q < UNIVERSE; q++) {
			/* The best allow and block entries: nearest the root,
			 * then a block entry before a "*." one, then the
			 * first added. */
			int allow = -1, block = -1;
			for (unsigned i = 0; i < ENTRIES; i++) {
				const char *n = names[e[i].name];
				bool sub = e[i].kind == LISTS_BLOCK_SUBS;
				if (!under(names[q], n, sub))
					continue;
				int *best =
				    e[i].kind == LISTS_ALLOW ? &allow : &block;
				size_t len = strlen(n);
				size_t blen =
				    *best < 0 ? SIZE_MAX
					      : strlen(names[e[*best].name]);
				if (len < blen ||
				    (len == blen && sub == false &&
				     e[*best].kind == LISTS_BLOCK_SUBS))
					*best = (int)i;
			}
			enum lists_verdict want = allow >= 0   ? LISTS_ALLOWED
						  : block >= 0 ? LISTS_BLOCKED
							       : LISTS_NONE;
			int want_src = allow >= 0   ? (int)e[allow].source
				       : block >= 0 ? (int)e[block].source
						    : -1;
			uint8_t wire[WIRE_NAME_MAX];
			int n =
			    wire_name_from_text(names[q], NULL, 0, wire, &why);
			unsigned src = 99999;
			enum lists_verdict v =
			    lists_match_source(l, wire, (size_t)n, WIRE_T_A, NULL,
						  &src);
			int got = src == 99999 ? -1 : (int)src;
			if (v != want || got != want_src) {
				if (wrong < 5)
					diag("%s: got %s from %d, want %s "
					     "from %d",
					     names[q], verdict_name[v], got,
					     verdict_name[want], want_src);
				wrong++;
			}
			checked++;
			decided += want != LISTS_NONE;
		}
		lists_free(l);
	}
	is_int(wrong, 0, "sources agree with a reference over random sets");
	diag("reference: %zu lookups compared, %zu with a verdict", checked,
	     decided);
}

/* Random bytes: no crash, every line counted, nothing else. */
static void test_garbage(void)
{
	static const char pieces[][16] = {
		"\n", "\r\n", "\0", "0.0.0.0 ", "||", "^", "$", "@@", "*.",
		".", "..", "#", " ", "\t", "a", "b.c", "xn--", "-", "_", "\xff",
		"/", "[", "]", "!", "1", "::", "127.0.0.1", "important", ",",
		"|", "~", "=",
	};
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	if (!buf)
		abort();
	rng_state = 7;
	bool all_read = true, counted = true;
	for (int round = 0; round < 8; round++) {
		size_t n = 0, lines = 0;
		while (n + 6000 < cap) {
			if (rnd() % 512 == 0) { /* now and then a long run */
				size_t run = rnd() % 5000;
				memset(buf + n, 'x', run);
				n += run;
			}
			const char *p = pieces[rnd() % (sizeof(pieces) /
							sizeof(pieces[0]))];
			size_t len = p[0] ? strlen(p) : 1;
			memcpy(buf + n, p, len);
			n += len;
		}
		for (size_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
		lines += n > 0 && buf[n - 1] != '\n';
		struct lists *l = lists_new();
		struct lists_file_stats st;
		char msgs[512];
		all_read &= lists_load_file(l, write_file(buf, n), &st, msgs,
					    sizeof(msgs));
		counted &= st.lines == lines;
		all_read &= lists_finish(l);
		match(l, "a");
		lists_free(l);
	}
	ok(all_read, "garbage: every file read");
	ok(counted, "garbage: every line counted");
	free(buf);
}

/* ---- scale ------------------------------------------------------------- */

/* Name i of the generated list (absent: a name never in it). */
static int gen_name(char *out, size_t size, uint32_t i, bool absent)
{
	static const char *const words[] = {"ads", "track", "pixel", "cdn",
					    "metrics", "stats", "beacon"};
	static const char *const tlds[] = {"com", "net", "org", "io", "xyz"};
	uint32_t r = i * 2654435761u;
	return snprintf(out, size, "%s%s-%x.%s.%s", absent ? "ok-" : "",
			words[r % 7], i, words[(r >> 8) % 7],
			tlds[(r >> 16) % 5]);
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Name i goes to file i % SCALE_FILES, each its own source; the last file
 * also repeats every tenth name of the first, which keeps source 0. */
#define SCALE_FILES 3

static void test_scale(void)
{
	uint32_t count = 200000;
	const char *env = getenv("LISTS_SCALE");
	if (env && atol(env) > 0)
		count = (uint32_t)atol(env);
	size_t cap = (size_t)count * 48 + 64, entries = 0;
	char *buf = malloc(cap);
	char name[128], paths[SCALE_FILES][300];
	if (!buf)
		abort();
	rng_state = 1;

	for (uint32_t f = 0; f < SCALE_FILES; f++) {
		size_t n = 0;
		for (uint32_t i = 0; i < count; i++) {
			static const char *const pre[] = {"0.0.0.0 ", "", "||"};
			static const char *const post[] = {"\n", "\n", "^\n"};
			if (i % SCALE_FILES != f &&
			    !(f == SCALE_FILES - 1 &&
			      i % (SCALE_FILES * 10) == 0))
				continue;
			gen_name(name, sizeof(name), i, false);
			unsigned k = rnd() % 3;
			n += (size_t)snprintf(buf + n, cap - n, "%s%s%s",
					      pre[k], name, post[k]);
			entries++;
		}
		snprintf(paths[f], sizeof(paths[f]), "%s", write_file(buf, n));
	}
	free(buf);

	struct lists *l = lists_new();
	struct lists_file_stats st;
	char msgs[256];
	bool loaded = true;
	size_t read = 0;
	double t0 = seconds();
	for (uint32_t f = 0; f < SCALE_FILES; f++) {
		loaded &= lists_begin_source(l) == (int)f &&
			  lists_load_file(l, paths[f], &st, msgs, sizeof(msgs));
		read += st.entries;
	}
	double t1 = seconds();
	bool finished = lists_finish(l);
	double t2 = seconds();
	ok(loaded && finished, "scale: load and finish %u names", count);
	is_int(read, entries, "scale: every line read");
	is_int(lists_count(l), count, "scale: all distinct");
	diag("scale: %u names from %d sources: load %.1f ms, finish %.1f ms, "
	     "%.2f MiB (%.1f bytes a name)",
	     count, SCALE_FILES, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
	     (double)lists_memory(l) / 1048576.0,
	     (double)lists_memory(l) / count);

	size_t present = 0, sub = 0, absent = 0;
	uint8_t wire[WIRE_NAME_MAX];
	const char *why;
	double t3 = seconds();
	for (uint32_t i = 0; i < count; i++) {
		gen_name(name, sizeof(name), i, false);
		int w = wire_name_from_text(name, NULL, 0, wire, &why);
		present += lists_match(l, wire, (size_t)w) == LISTS_BLOCKED;
		if (i % 16 == 0) {
			char s[140];
			snprintf(s, sizeof(s), "www.%s", name);
			w = wire_name_from_text(s, NULL, 0, wire, &why);
			sub += lists_match(l, wire, (size_t)w) ==
			       LISTS_BLOCKED;
		}
		gen_name(name, sizeof(name), i, true);
		w = wire_name_from_text(name, NULL, 0, wire, &why);
		absent += lists_match(l, wire, (size_t)w) != LISTS_NONE;
	}
	double t4 = seconds();
	is_int(present, count, "scale: every listed name blocked");
	is_int(sub, (count + 15) / 16, "scale: their subdomains blocked");
	is_int(absent, 0, "scale: no unlisted name matches");
	diag("scale: %.0f ns a lookup (with text to wire conversion)",
	     (t4 - t3) * 1e9 / (count * 2.0 + count / 16.0));

	size_t right = 0;
	for (uint32_t i = 0; i < count; i++) {
		unsigned src = 99999;
		gen_name(name, sizeof(name), i, false);
		int w = wire_name_from_text(name, NULL, 0, wire, &why);
		right += lists_match_source(l, wire, (size_t)w, WIRE_T_A, NULL,
					    &src) ==
			     LISTS_BLOCKED &&
			 src == i % SCALE_FILES;
	}
	is_int(right, count, "scale: every name from its first source");
	lists_free(l);
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_lists.XXXXXX",
		 t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror(tmpdir);
		return 2;
	}
	test_add();
	test_semantics();
	test_hosts();
	test_plain();
	test_adblock();
	test_mixed();
	test_important();
	test_badfilter();
	test_dnstype();
	test_regex();
	test_regex_cap();
	test_messages();
	test_hostile();
	test_duplicates();
	test_reference();
	test_sources();
	test_reference_sources();
	test_garbage();
	test_scale();
	remove_files();
	return done_testing();
}
