/*
 * topk.h - the heavy hitters of a stream of keys in bounded memory: a
 * space-saving sketch (Metwally, Agrawal, El Abbadi, "Efficient
 * computation of frequent and top-k elements in data streams", 2005).
 *
 * A sketch keeps TOPK_CAP counters.  A key that has one is counted there;
 * a new key takes over the smallest counter and starts from its count
 * plus the weight, remembering that count as its possible overestimate.
 * Accuracy, for a sketch that has seen a total weight N:
 *   - every key whose true weight exceeds N / TOPK_CAP has a counter;
 *   - a reported count c with error e satisfies c - e <= true <= c, and
 *     e <= N / TOPK_CAP (e is kept and reported per entry).
 * Keys are byte strings (a lowered wire name today; a client address or
 * another metric's key later: issue 11's "slowest names" adds weights in
 * milliseconds, "busiest clients" uses addresses as keys).
 *
 * One thread writes a sketch (topk_add: no allocation, no lock, no
 * syscall); any thread may read it (topk_read) at any time.  Readers
 * never block the writer: each counter carries a sequence number that the
 * writer makes odd while it replaces the key, and a reader retries (or,
 * after a few tries, skips) a counter that changed under it.  Every
 * shared word is an atomic accessed with relaxed or acquire/release
 * order, so there is no data race in the C11 sense (and TSan has nothing
 * to report).
 */
#ifndef SPLITDNS_TOPK_H
#define SPLITDNS_TOPK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Counters per sketch (fixed: the memory is about TOPK_CAP * 300 bytes). */
#define TOPK_CAP 256

/* Longest key (a wire name). */
#define TOPK_KEY_MAX 255

struct topk;

/* One counter as read: key, its count and the count's overestimate. */
struct topk_entry {
	uint64_t count;
	uint64_t error;
	uint16_t len;
	uint8_t key[TOPK_KEY_MAX];
};

/* A new empty sketch, or NULL when out of memory.  topk_free(NULL) does
 * nothing. */
struct topk *topk_new(void);
void topk_free(struct topk *t);

/* Count key (len bytes, 1..TOPK_KEY_MAX; longer keys are cut) with
 * weight w.  The sketch's writer thread only. */
void topk_add(struct topk *t, const uint8_t *key, size_t len, uint64_t w);

/* The total weight the sketch has seen (any thread). */
uint64_t topk_total(const struct topk *t);

/* Copy the sketch's counters (at most cap, in no order) to out; returns
 * how many.  Any thread, at any time: a counter whose key is being
 * replaced at that moment may be left out. */
size_t topk_read(const struct topk *t, struct topk_entry *out, size_t cap);

/*
 * Combine the entries of e (n of them, from the sketches of several
 * writers) that have equal keys: their counts and their errors add up,
 * so the merged bound is the sum of the sketches' bounds (N / TOPK_CAP
 * for their total N).  Returns how many entries are left.  topk_sort then
 * puts them in order of count, largest first (keys break ties).
 */
size_t topk_merge(struct topk_entry *e, size_t n);
void topk_sort(struct topk_entry *e, size_t n);

#endif
