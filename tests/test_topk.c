/*
 * test_topk.c - unit tests for the space-saving sketch (src/topk.c):
 * exact counts while it has room, the documented bounds past it (every
 * count within N / TOPK_CAP, above the truth, and every heavy key kept),
 * weights, merging the sketches of several writers, and a reader racing
 * the writer (run under TSan in the thread-sanitizer build).
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/topk.h"
#include "tap.h"

#define KEYS 5000

static size_t key_of(unsigned i, uint8_t *buf)
{
	return (size_t)snprintf((char *)buf, 32, "name-%u.example", i);
}

static const struct topk_entry *find(const struct topk_entry *e, size_t n,
				     unsigned i)
{
	uint8_t k[32];
	size_t len = key_of(i, k);
	for (size_t j = 0; j < n; j++)
		if (e[j].len == len && memcmp(e[j].key, k, len) == 0)
			return &e[j];
	return NULL;
}

static void add(struct topk *t, unsigned i, uint64_t w)
{
	uint8_t k[32];
	topk_add(t, k, key_of(i, k), w);
}

static void test_exact_below_capacity(void)
{
	struct topk *t = topk_new();
	struct topk_entry e[TOPK_CAP];
	uint64_t total = 0;

	for (unsigned i = 0; i < 100; i++)
		for (unsigned j = 0; j <= i; j++) {
			add(t, i, 1);
			total++;
		}
	size_t n = topk_read(t, e, TOPK_CAP);
	is_int(n, 100, "100 keys, 100 counters");
	bool exact = true;
	for (unsigned i = 0; i < 100; i++) {
		const struct topk_entry *x = find(e, n, i);
		exact = exact && x && x->count == i + 1u && x->error == 0;
	}
	ok(exact, "every count exact, error 0, while the sketch has room");
	is_int(topk_total(t), total, "total weight");
	topk_sort(e, n);
	ok(e[0].count == 100 && e[n - 1].count == 1, "sorted largest first");
	topk_free(t);
}

/* A skewed stream of many keys, interleaved: key i comes 2000 / (i + 1)
 * times (Zipf-like), one round at a time. */
static void test_bounds_past_capacity(void)
{
	static uint64_t truth[KEYS];
	static struct topk_entry e[TOPK_CAP];
	struct topk *t = topk_new();
	uint64_t total = 0;

	memset(truth, 0, sizeof(truth));
	for (unsigned round = 0; round < 2000; round++)
		for (unsigned i = 0; i < KEYS && 2000 / (i + 1) > round; i++) {
			add(t, i, 1);
			truth[i]++;
			total++;
		}
	size_t n = topk_read(t, e, TOPK_CAP);
	uint64_t bound = total / TOPK_CAP;
	is_int(n, TOPK_CAP, "every counter in use");
	bool within = true, above = true, heavy = true;
	for (size_t j = 0; j < n; j++) {
		unsigned i =
		    (unsigned)strtoul((const char *)e[j].key + 5, NULL, 10);
		within = within && e[j].error <= bound;
		above = above && e[j].count >= truth[i] &&
			e[j].count - e[j].error <= truth[i];
	}
	for (unsigned i = 0; i < KEYS; i++)
		if (truth[i] > bound && !find(e, n, i))
			heavy = false;
	diag("stream of %llu, bound N/k = %llu, key 0 seen %llu times",
	     (unsigned long long)total, (unsigned long long)bound,
	     (unsigned long long)truth[0]);
	ok(within, "every error <= N / TOPK_CAP");
	ok(above, "count - error <= true count <= count");
	ok(heavy, "every key above N / TOPK_CAP has a counter");
	topk_sort(e, n);
	ok(e[0].len == 14 && memcmp(e[0].key, "name-0.example", 14) == 0 &&
	       e[0].count - e[0].error <= 2000,
	   "the heaviest key first");
	topk_free(t);
}

static void test_weights_and_long_keys(void)
{
	struct topk *t = topk_new();
	struct topk_entry e[TOPK_CAP];
	uint8_t big[400];

	memset(big, 'x', sizeof(big));
	topk_add(t, big, sizeof(big), 5);
	topk_add(t, big, TOPK_KEY_MAX, 7);
	topk_add(t, big, 0, 100); /* ignored */
	add(t, 1, 1000);
	size_t n = topk_read(t, e, TOPK_CAP);
	topk_sort(e, n);
	is_int(n, 2, "a key cut at TOPK_KEY_MAX is the cut key");
	is_int(e[0].count, 1000, "weights add");
	is_int(e[1].count, 12, "the cut key counted twice");
	is_int(e[1].len, TOPK_KEY_MAX, "its length");
	is_int(topk_total(t), 1012, "the total counts weights");
	is_int(topk_read(t, e, 1), 1, "read stops at cap");
	topk_free(t);
}

static void test_merge(void)
{
	struct topk *a = topk_new(), *b = topk_new();
	struct topk_entry e[2 * TOPK_CAP];

	for (unsigned i = 0; i < 10; i++) {
		add(a, i, i + 1);
		add(b, i, 100);
	}
	add(b, 42, 3);
	size_t n = topk_read(a, e, TOPK_CAP);
	n += topk_read(b, e + n, TOPK_CAP);
	is_int(n, 21, "21 entries before the merge");
	n = topk_merge(e, n);
	is_int(n, 11, "equal keys combined");
	topk_sort(e, n);
	ok(find(e, n, 9)->count == 110 && find(e, n, 0)->count == 101 &&
	       find(e, n, 42)->count == 3,
	   "counts of equal keys add up");
	ok(e[0].count == 110 && e[10].count == 3, "merged and sorted");
	is_int(topk_merge(e, 0), 0, "an empty merge");
	topk_free(a);
	topk_free(b);
}

/* The writer replaces keys all the time (more keys than counters) while a
 * reader copies the sketch: every entry read must be a whole key. */
struct race {
	struct topk *t;
	atomic_bool stop;
};

static void *writer(void *arg)
{
	struct race *r = arg;
	for (unsigned i = 0; i < 400000; i++)
		add(r->t, i % 1000, 1);
	atomic_store(&r->stop, true);
	return NULL;
}

static void test_reader_races_writer(void)
{
	static struct topk_entry e[TOPK_CAP];
	struct race r = {.t = topk_new()};
	pthread_t th;
	bool whole = true;
	unsigned reads = 0;

	atomic_init(&r.stop, false);
	pthread_create(&th, NULL, writer, &r);
	while (!atomic_load(&r.stop)) {
		size_t n = topk_read(r.t, e, TOPK_CAP);
		for (size_t j = 0; j < n; j++) {
			char text[TOPK_KEY_MAX + 1];
			memcpy(text, e[j].key, e[j].len);
			text[e[j].len] = '\0';
			unsigned i;
			char tail[16];
			if (sscanf(text, "name-%u.%15s", &i, tail) != 2 ||
			    strcmp(tail, "example") != 0 || i >= 1000 ||
			    e[j].error > e[j].count)
				whole = false;
		}
		reads++;
	}
	pthread_join(th, NULL);
	diag("%u reads during the writes", reads);
	ok(whole, "every entry read during writes is a whole key");
	is_int(topk_total(r.t), 400000, "total after the race");
	topk_free(r.t);
}

int main(void)
{
	test_exact_below_capacity();
	test_bounds_past_capacity();
	test_weights_and_long_keys();
	test_merge();
	test_reader_races_writer();
	topk_free(NULL);
	return done_testing();
}
