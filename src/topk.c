/*
 * topk.c - space-saving sketch: TOPK_CAP counters, a min-heap over them
 * to find the smallest in O(log k), and a small open-addressing index
 * from key to counter.
 *
 * The heap, the index and a copy of each count are the writer's alone;
 * what readers see is the slot array, written with atomics under a
 * per-slot sequence number (see topk.h).  A plain increment of a key
 * that has a slot touches only that slot's count, which readers may see
 * before or after the increment: either is a count the key had.
 */
#include <config.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "topk.h"

#define WORDS ((TOPK_KEY_MAX + 7) / 8)
#define INDEX 1024 /* a power of two, 4 x TOPK_CAP: short probes */
#define READ_TRIES 4

/* What readers see of one counter. */
struct slot {
	_Atomic uint32_t seq; /* odd while the key is being replaced */
	_Atomic uint32_t len; /* 0: unused */
	_Atomic uint64_t count;
	_Atomic uint64_t error;
	_Atomic uint64_t word[WORDS]; /* the key, zero-padded */
};

struct topk {
	_Atomic uint64_t total;
	uint32_t seed;
	unsigned used;		 /* slots taken so far */
	uint64_t cnt[TOPK_CAP];	 /* the writer's copy of each count */
	uint32_t hash[TOPK_CAP]; /* each slot's key hash */
	uint16_t heap[TOPK_CAP]; /* slots, smallest count first */
	uint16_t pos[TOPK_CAP];	 /* each slot's place in heap */
	uint16_t index[INDEX];	 /* slot + 1; 0: empty */
	struct slot slot[TOPK_CAP];
};

struct topk *topk_new(void)
{
	struct topk *t = calloc(1, sizeof(*t));
	if (t)
		t->seed = hash_seed((uint32_t)(uintptr_t)t);
	return t;
}

void topk_free(struct topk *t) { free(t); }

static uint64_t load(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static void put(_Atomic uint64_t *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

/* ---- the writer's heap (a min-heap of slots by count) ---- */

static void heap_swap(struct topk *t, unsigned a, unsigned b)
{
	uint16_t x = t->heap[a];
	t->heap[a] = t->heap[b];
	t->heap[b] = x;
	t->pos[t->heap[a]] = (uint16_t)a;
	t->pos[t->heap[b]] = (uint16_t)b;
}

static void sift_up(struct topk *t, unsigned i)
{
	while (i > 0) {
		unsigned p = (i - 1) / 2;
		if (t->cnt[t->heap[p]] <= t->cnt[t->heap[i]])
			return;
		heap_swap(t, i, p);
		i = p;
	}
}

static void sift_down(struct topk *t, unsigned i)
{
	for (;;) {
		unsigned l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->used && t->cnt[t->heap[l]] < t->cnt[t->heap[m]])
			m = l;
		if (r < t->used && t->cnt[t->heap[r]] < t->cnt[t->heap[m]])
			m = r;
		if (m == i)
			return;
		heap_swap(t, i, m);
		i = m;
	}
}

/* ---- the writer's index (linear probing) ---- */

/* The key in the words it needs, the last one zero-padded: only those
 * are ever compared, stored or read (a short key, such as a client's
 * address, costs one or two words, not WORDS). */
static void pack(uint64_t *w, const uint8_t *key, size_t len)
{
	w[(len - 1) / 8] = 0;
	memcpy(w, key, len);
}

static bool same_key(const struct slot *s, const uint64_t *w, size_t len)
{
	if (atomic_load_explicit(&s->len, memory_order_relaxed) != len)
		return false;
	for (size_t i = 0; i < (len + 7) / 8; i++)
		if (load(&s->word[i]) != w[i])
			return false;
	return true;
}

/* The index position holding the slot of key, or of the empty place where
 * it would go. */
static unsigned find(const struct topk *t, uint32_t h, const uint64_t *w,
		     size_t len)
{
	unsigned i = h & (INDEX - 1);
	while (t->index[i]) {
		unsigned s = t->index[i] - 1u;
		if (t->hash[s] == h && same_key(&t->slot[s], w, len))
			return i;
		i = (i + 1) & (INDEX - 1);
	}
	return i;
}

/* Take slot s out of the index; later entries of its run move back so
 * that no probe stops early (no tombstones). */
static void unindex(struct topk *t, unsigned s)
{
	unsigned i = t->hash[s] & (INDEX - 1);
	while (t->index[i] != s + 1)
		i = (i + 1) & (INDEX - 1);
	t->index[i] = 0;
	for (unsigned j = (i + 1) & (INDEX - 1); t->index[j];
	     j = (j + 1) & (INDEX - 1)) {
		unsigned home = t->hash[t->index[j] - 1] & (INDEX - 1);
		/* May the entry at j move to the hole at i?  Only when its
		 * home is not in the cyclic range (i, j]. */
		bool stays =
		    i < j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			t->index[i] = t->index[j];
			t->index[j] = 0;
			i = j;
		}
	}
}

/* Give slot s a new key, count and error, under its sequence number. */
static void set_slot(struct topk *t, unsigned s, const uint64_t *w, size_t len,
		     uint64_t count, uint64_t error)
{
	struct slot *sl = &t->slot[s];
	uint32_t seq = atomic_load_explicit(&sl->seq, memory_order_relaxed);

	atomic_store_explicit(&sl->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&sl->len, (uint32_t)len, memory_order_relaxed);
	for (size_t i = 0; i < (len + 7) / 8; i++)
		put(&sl->word[i], w[i]);
	put(&sl->count, count);
	put(&sl->error, error);
	atomic_store_explicit(&sl->seq, seq + 2, memory_order_release);
	t->cnt[s] = count;
}

void topk_add(struct topk *t, const uint8_t *key, size_t len, uint64_t w)
{
	uint64_t words[WORDS];

	if (len == 0)
		return;
	if (len > TOPK_KEY_MAX)
		len = TOPK_KEY_MAX;
	pack(words, key, len);
	uint32_t h = hash_bytes(t->seed, key, len);
	unsigned at = find(t, h, words, len);
	put(&t->total, load(&t->total) + w);
	if (t->index[at]) {
		unsigned s = t->index[at] - 1u;
		t->cnt[s] += w;
		put(&t->slot[s].count, t->cnt[s]);
		sift_down(t, t->pos[s]);
		return;
	}
	if (t->used < TOPK_CAP) {
		unsigned s = t->used++;
		t->hash[s] = h;
		set_slot(t, s, words, len, w, 0);
		t->heap[s] = (uint16_t)s;
		t->pos[s] = (uint16_t)s;
		sift_up(t, s);
		t->index[at] = (uint16_t)(s + 1);
		return;
	}
	/* The key of the smallest counter makes way; the newcomer inherits
	 * its count as the bound of its own overestimate. */
	unsigned s = t->heap[0];
	uint64_t min = t->cnt[s];
	unindex(t, s);
	t->hash[s] = h;
	set_slot(t, s, words, len, min + w, min);
	sift_down(t, 0);
	t->index[find(t, h, words, len)] = (uint16_t)(s + 1);
}

uint64_t topk_total(const struct topk *t) { return load(&t->total); }

/* One consistent copy of slot sl; false when unused or changing. */
static bool read_slot(const struct slot *sl, struct topk_entry *e)
{
	for (int k = 0; k < READ_TRIES; k++) {
		uint32_t s1 =
		    atomic_load_explicit(&sl->seq, memory_order_acquire);
		if (s1 & 1)
			continue;
		uint32_t len =
		    atomic_load_explicit(&sl->len, memory_order_relaxed);
		uint64_t w[WORDS];
		for (size_t i = 0; i < (len + 7) / 8 && i < WORDS; i++)
			w[i] = load(&sl->word[i]);
		e->count = load(&sl->count);
		e->error = load(&sl->error);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&sl->seq, memory_order_relaxed) != s1)
			continue;
		if (len == 0 || len > TOPK_KEY_MAX)
			return false;
		e->len = (uint16_t)len;
		memcpy(e->key, w, len);
		return true;
	}
	return false;
}

size_t topk_read(const struct topk *t, struct topk_entry *out, size_t cap)
{
	size_t n = 0;

	for (unsigned i = 0; i < TOPK_CAP && n < cap; i++)
		if (read_slot(&t->slot[i], &out[n]))
			n++;
	return n;
}

static int by_key(const void *a, const void *b)
{
	const struct topk_entry *x = a, *y = b;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->key, y->key, x->len);
}

static int by_count(const void *a, const void *b)
{
	const struct topk_entry *x = a, *y = b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return by_key(a, b);
}

size_t topk_merge(struct topk_entry *e, size_t n)
{
	size_t k = 0;

	if (n == 0)
		return 0;
	qsort(e, n, sizeof(*e), by_key);
	for (size_t i = 1; i < n; i++) {
		if (by_key(&e[k], &e[i]) == 0) {
			e[k].count += e[i].count;
			e[k].error += e[i].error;
		} else if (++k != i) {
			e[k] = e[i];
		}
	}
	return k + 1;
}

void topk_sort(struct topk_entry *e, size_t n)
{
	if (n)
		qsort(e, n, sizeof(*e), by_count);
}
