/*
 * test_fetch.c - unit tests for list subscriptions (src/fetch.c): which
 * entries are URLs, URL syntax, the names of cached copies, the sidecar
 * file, and the time table: when a URL is first due, and the backoff
 * after failed downloads (against a loopback port where nothing listens,
 * so a download fails at once without leaving the host).
 *
 * The downloads themselves are tested against real HTTP and HTTPS servers
 * by t_subscribe.py.
 */
#include <config.h>

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../src/conf.h"
#include "../src/fetch.h"
#include "../src/loop.h"
#include "tap.h"

static void test_urls(void)
{
	const char *why = NULL;

	ok(fetch_is_url("http://a.test/x"), "http:// is a URL");
	ok(fetch_is_url("HTTPS://a.test/x"), "HTTPS:// is a URL (any case)");
	ok(!fetch_is_url("lists/http://x"), "a path holding http:// is not");
	ok(!fetch_is_url("ftp://a.test/x"), "ftp:// is not");
	ok(fetch_check_url("https://a.test:8443/l.txt?x=1", &why),
	   "host, port, path and query");
	ok(fetch_check_url("http://[::1]:80/", &why), "an IPv6 host");
	ok(!fetch_check_url("http:///x", &why), "no host");
	ok(!fetch_check_url("http://a.test/x y", &why), "a blank");
	ok(!fetch_check_url("http://a.test/\x01", &why), "a control byte");
	ok(!fetch_check_url("http://a.test:70000/", &why), "port 70000");
}

static void test_names(void)
{
	char *a = fetch_cache_path("/s", "https://a.test/l.txt?x", "");
	char *b = fetch_cache_path("/s", "https://a.test/l.txt_x", "");
	char *a2 = fetch_cache_path("/s", "https://a.test/l.txt?x", "");
	char *m = fetch_cache_path("/s", "https://a.test/l.txt?x", ".meta");
	char longurl[400];

	ok(a && strncmp(a, "/s/lists/a.test_l.txt_x-", 24) == 0,
	   "host and path, sanitised: %s", a ? a : "(null)");
	ok(a && strlen(a) == 24 + 16 + 5 &&
	       strcmp(a + strlen(a) - 5, ".list") == 0,
	   "then 16 hex digits and .list");
	ok(a && b && strcmp(a, b) != 0,
	   "URLs that sanitise alike get different files");
	ok(a && a2 && strcmp(a, a2) == 0, "the same URL, the same file");
	ok(a && m && strlen(m) == strlen(a) + 5 &&
	       strncmp(a, m, strlen(a)) == 0,
	   "the sidecar: .list.meta");
	memset(longurl, 'x', sizeof(longurl) - 1);
	memcpy(longurl, "http://", 7);
	longurl[sizeof(longurl) - 1] = '\0';
	free(b);
	b = fetch_cache_path("/s", longurl, "");
	ok(b && strlen(b) == 9 + 96 + 1 + 16 + 5, "a long URL is cut to 96");
	free(a);
	free(a2);
	free(b);
	free(m);
}

static void test_meta(char *dir)
{
	char path[512];
	struct fetch_meta m = {"\"abc\"", "Tue, 01 Dec 2026 10:00:00 GMT",
			       1764583200},
			  r;

	snprintf(path, sizeof(path), "%s/x.meta", dir);
	ok(!fetch_meta_read(path, &r) && r.fetched == 0 && !r.etag[0],
	   "no sidecar: false, zeroed");
	ok(fetch_meta_write(path, &m), "write");
	ok(fetch_meta_read(path, &r), "read back");
	is_str(r.etag, m.etag, "etag");
	is_str(r.last_modified, m.last_modified, "last-modified");
	is_int(r.fetched, m.fetched, "fetched");
	snprintf(m.etag, sizeof(m.etag), "\"a\nfetched 1\"");
	ok(fetch_meta_write(path, &m) && fetch_meta_read(path, &r),
	   "an etag with a newline");
	ok(!r.etag[0] && r.fetched == 1764583200,
	   "is written as none and cannot add a line");
	unlink(path);
}

/* A configuration with the block settings the table reads. */
static struct conf *config(char *state, char **lists, size_t n, int64_t refresh)
{
	struct conf *c = calloc(1, sizeof(*c));

	c->state_dir = state;
	c->block.lists = lists;
	c->block.nlists = n;
	c->block.refresh = refresh;
	c->block.fetch_timeout = 5;
	c->block.max_list_size = 1 << 20;
	return c;
}

static int reports, failures;
static char last[4096];

static void report(void *ctx, int warning, const char *line)
{
	(void)ctx;
	reports++;
	failures += warning != 0;
	snprintf(last, sizeof(last), "%s", line);
}

/* One list with a copy confirmed 100 s ago (fresh.txt), one never
 * fetched and named twice, and a file, which the table leaves alone. */
static void test_sched(char *dir)
{
	char dead[64], fresh[64], sub[512], file[] = "/some/file.txt";
	char *lists[] = {dead, file, fresh, dead};
	struct fetch_sched *s = fetch_sched_new();
	struct conf *c = config(dir, lists, 4, 1000);
	uint64_t now = loop_now_ms();
	struct fetch_meta m = {"\"e\"", "", (int64_t)time(NULL) - 100};
	char *copy, *meta;
	FILE *f;

	/* Nothing listens on port 1 of loopback: refused at once. */
	snprintf(dead, sizeof(dead), "http://127.0.0.1:1/dead.txt");
	snprintf(fresh, sizeof(fresh), "http://127.0.0.1:1/fresh.txt");
	snprintf(sub, sizeof(sub), "%s/lists", dir);
	mkdir(sub, 0755);
	copy = fetch_cache_path(dir, fresh, "");
	meta = fetch_cache_path(dir, fresh, ".meta");
	ok(copy && (f = fopen(copy, "w")) != NULL && fclose(f) == 0,
	   "a cached copy");
	ok(meta && fetch_meta_write(meta, &m), "and its sidecar");
	ok(s && fetch_sched_sync(s, c, now, (int64_t)time(NULL)), "sync");
	is_int((long long)fetch_sched_next(s), (long long)now,
	       "a list never fetched is due at once");
	reports = failures = 0;
	fetch_sched_run(s, c, true, now, NULL, report, NULL);
	is_int(reports, 2, "forced: each URL once, the file never");
	struct stat st;
	ok(stat(copy, &st) == 0 && st.st_size == 0,
	   "a failed download keeps the copy");
	free(c);
	free(copy);
	free(meta);
	fetch_sched_free(s);
}

static void test_backoff(char *dir)
{
	char dead[64], fresh[64];
	char *lists[] = {dead, fresh};
	struct fetch_sched *s = fetch_sched_new();
	struct conf *c = config(dir, lists, 2, 200);
	uint64_t now = loop_now_ms();
	int64_t unix_now = (int64_t)time(NULL);

	snprintf(dead, sizeof(dead), "http://127.0.0.1:1/dead.txt");
	snprintf(fresh, sizeof(fresh), "http://127.0.0.1:1/fresh.txt");
	ok(fetch_sched_sync(s, c, now, unix_now), "sync");
	/* fresh.txt: confirmed 100 s ago, refresh 200: due in ~100 s. */
	reports = failures = 0;
	ok(!fetch_sched_run(s, c, false, now, NULL, report, NULL),
	   "a failed download changes nothing");
	is_int(reports, 1, "only the due list was tried");
	is_int(failures, 1, "and it failed");
	like(last,
	     "blocklist http://127.0.0.1:1/dead.txt: download failed, "
	     "keeping the last good copy, next try in 60 s: ",
	     "one line with the URL, the next try and the reason");
	uint64_t next = fetch_sched_next(s);
	ok(next >= now + 60000 && next <= loop_now_ms() + 60000,
	   "the next try in 60 s");
	reports = failures = 0;
	fetch_sched_run(s, c, true, loop_now_ms(), NULL, report, NULL);
	is_int(reports, 2, "forced: both lists tried");
	like(last, "next try in 60 s", "the other list's first failure: 60 s");
	fetch_sched_run(s, c, true, loop_now_ms(), NULL, report, NULL);
	fetch_sched_run(s, c, true, loop_now_ms(), NULL, report, NULL);
	like(last, "next try in 200 s",
	     "doubling (60, 120, 240) stops at block.refresh (200)");

	/* A reload that keeps dead.txt keeps its backoff; fresh.txt goes. */
	c->block.nlists = 1;
	ok(fetch_sched_sync(s, c, loop_now_ms(), unix_now), "sync to one");
	reports = 0;
	fetch_sched_run(s, c, true, loop_now_ms(), NULL, report, NULL);
	is_int(reports, 1, "one list left");
	like(last, "next try in 200 s", "its backoff was kept");
	c->block.nlists = 0;
	ok(fetch_sched_sync(s, c, loop_now_ms(), unix_now), "sync to none");
	ok(fetch_sched_next(s) == UINT64_MAX, "nothing is due, ever");
	free(c);
	fetch_sched_free(s);
}

static void test_first_due(char *dir)
{
	char fresh[64];
	char *lists[] = {fresh};
	struct fetch_sched *s = fetch_sched_new();
	struct conf *c = config(dir, lists, 1, 1000);
	uint64_t now = 5000000;
	int64_t unix_now = (int64_t)time(NULL);

	snprintf(fresh, sizeof(fresh), "http://127.0.0.1:1/fresh.txt");
	ok(fetch_sched_sync(s, c, now, unix_now), "sync");
	/* confirmed 100 s ago (test_sched wrote it), refresh 1000 s */
	uint64_t next = fetch_sched_next(s);
	ok(next >= now + 899000 && next <= now + 901000,
	   "a copy 100 s old is due in 900 s (got %llu ms)",
	   (unsigned long long)(next - now));
	fetch_sched_free(s);
	s = fetch_sched_new();
	c->block.refresh = 50;
	ok(fetch_sched_sync(s, c, now, unix_now), "sync");
	is_int((long long)fetch_sched_next(s), (long long)now,
	       "a copy older than block.refresh is due at once");
	fetch_sched_free(s);
	s = fetch_sched_new();
	c->block.refresh = 1000;
	ok(fetch_sched_sync(s, c, now, unix_now - 10000), "sync");
	is_int((long long)fetch_sched_next(s), (long long)(now + 1000000),
	       "a copy from the future (clock set back): one interval");
	fetch_sched_free(s);
	free(c);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/test_fetch.XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		perror(dir);
		return 2;
	}
	if (!fetch_global_init()) {
		fprintf(stderr, "libcurl cannot start\n");
		return 2;
	}
	test_urls();
	test_names();
	test_meta(dir);
	test_sched(dir);
	test_backoff(dir);
	test_first_due(dir);
	fetch_global_cleanup();
	if (nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
