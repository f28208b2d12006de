/*
 * lists.c - read blocklists into an immutable set of 64-bit name keys.
 *
 * Structure.  No names are stored: each entry is the 64-bit hash of its
 * lower-case wire name, and there are three sets (block, block-subdomains-
 * only, allow).  While building, keys are appended to a plain array per
 * set, 8 bytes a name.  lists_finish radix-sorts each array, drops
 * duplicates, and lays the keys out as an ordered linear-probing table:
 * key k's home slot is (k >> 32) * homes >> 32, which grows with k, and
 * each key goes to its home or to the slot after the previous key,
 * whichever is later.  The table is therefore sorted, with gaps, at about
 * 80% load: 10 bytes a name (1M names: 9.5 MiB), built by one sequential
 * pass; the peak, while the sorted keys are copied into the table, is 18
 * bytes a name.  A lookup starts at the home slot and scans forward while
 * the slots hold smaller keys; an empty slot or a larger key ends it, so a
 * miss (the common case) costs about as much as a hit: typically one
 * cache line.  A trailing empty slot ends every scan without a bounds
 * check.
 *
 * Why this and not the alternatives: a trie or a name arena needs 30-60
 * bytes a name and pointer chasing; a power-of-two table of keys costs
 * 11-21 bytes a name (16 at a million) and unordered probing makes misses
 * the slow case; a plain sorted array is 8 bytes a name but a binary
 * search is ~20 dependent reads.  Hashing
 * instead of storing trades exactness for size: a name is wrongly matched
 * only when one of its suffixes collides in 64 bits with an entry, about
 * labels * entries / 2^64, or 2e-13 per lookup with a million entries.
 * A wrong match can only block or allow a name nobody listed; list entries
 * come from the operator, so queries cannot lengthen probe chains, and a
 * fixed hash is fine.
 *
 * Sources.  Each entry also remembers where it came from (block.domains,
 * block.allow, a list file), so that the caller can count hits per list.
 * A source's names are added together, so while building a source is
 * only where it starts in each kind's key array, nothing per key.
 * lists_finish turns that into a uint16_t per key, which the radix sort
 * moves along with the keys; the sort is stable, so of duplicate keys the
 * first added, from the first source, stays.  The table then has a
 * uint16_t per slot beside the keys: 12.5 bytes a name (1M names: 11.9
 * MiB), with a peak of 20 while sorting.  A table whose names all come
 * from one source (a single list, block.allow alone) keeps that source
 * once and stays at 10 bytes a name.  The source is read only once a
 * key is found, at the same index, so misses cost what they did.
 *
 * Hash.  FNV-1a-64 over the wire name read backwards, from the root label
 * to the first byte, then a murmur3 fmix64 finalizer.  Read that way, the
 * state after the last k labels is the state of that suffix, so a lookup
 * hashes every suffix of a name in one pass over its bytes and probes
 * each: O(labels) probes, no allocation, nothing written.
 *
 * Memory.  The arrays are mapped with mmap, not malloc'd: after a large
 * block is freed glibc raises its mmap threshold, so the next set's
 * arrays would come from the heap and stay resident after they are freed
 * (measured: 37 MiB instead of 11 after a few reloads of a million
 * names).  Mapped arrays go back to the system when freed, and a reload
 * costs the old set plus the new one's build, nothing more.
 *
 * Reading.  A file is read through one 256 KiB buffer and parsed in place,
 * line by line, with no allocation per line; memory does not grow with
 * the file, only with the names it adds.  Lines longer than 4 KiB are
 * skipped whole.  Messages go back to the caller, which logs them.
 */
#include <config.h>

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "errf.h"
#include "lists.h"
#include "regex.h"
#include "wire.h"

#define NCLASSES 4
#define NTABLES (NCLASSES * 2)
#define LINE_MAX_LEN 4096
#define READ_CHUNK (256 * 1024)
#define NAME_TEXT_MAX 253 /* 255 wire octets less the root and first length */
#define MAX_ENTRIES (UINT32_MAX / 2) /* keeps homes below 2^32 */

#define FNV_BASIS 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* Classes of rules, in the order they win: a rule of a higher class
 * beats every rule of the lower ones (see lists.h). */
enum { C_BLOCK, C_ALLOW, C_BLOCK_IMPORTANT, C_ALLOW_IMPORTANT };

/* Table of class c: names and their subdomains (subs 0), or strict
 * subdomains only (subs 1, block classes only). */
#define TAB(c, subs) ((c) * 2 + (subs))

struct keys {
	uint64_t *v;
	size_t n, cap;
};

/* A frozen set: slot[0 .. len-1], keys sorted, 0 = empty, slot[len-1] is
 * always empty.  src[i] is the source of slot[i]'s key; src is NULL when
 * every key comes from one source, only. */
struct table {
	uint64_t *slot;
	uint16_t *src;
	size_t len;
	size_t homes; /* home slots are 0 .. homes-1 */
	size_t n;     /* keys */
	unsigned only;
};

/* The query types of a $dnstype option, sorted, without repeats; n == 0
 * means every type (no option). */
struct types {
	uint16_t t[LISTS_TYPES_MAX];
	uint8_t n;
	bool negate; /* "~A|~AAAA": every type but these */
};

/* A rule the key tables cannot hold: a name rule with $dnstype, or a
 * regular expression (re and text set). */
struct rule {
	uint64_t key;
	struct regex *re;
	char *text; /* the pattern, for $badfilter */
	struct types types;
	uint32_t order; /* in the order rules were added */
	uint16_t src;
	uint8_t cls;
	bool subs;
};

struct rules {
	struct rule *v;
	size_t n, cap;
};

struct lists {
	struct keys build[NTABLES]; /* while building */
	struct keys unkeys[NTABLES]; /* $badfilter of plain rules */
	struct table set[NTABLES];  /* once frozen */
	/* While building: start[s][t] is the first index in build[t] of
	 * source s, which ends where source s + 1 starts. */
	size_t (*start)[NTABLES];
	unsigned nsources, start_cap;
	struct rules typed;   /* frozen: sorted by key, then order */
	struct rules regex;   /* frozen: by class, highest first */
	struct rules unrules; /* $badfilter of typed and regex rules */
	/* Frozen: the regex rules of class c are regex.v[rx_from[c] ..
	 * rx_to[c] - 1]. */
	size_t rx_from[NCLASSES], rx_to[NCLASSES];
	size_t regexes_added; /* for LISTS_REGEX_MAX */
	uint32_t order;
	int top;       /* frozen: highest class of a name rule, -1 none */
	int regex_top; /* frozen: highest class of a regex rule, -1 none */
	bool frozen;
};

struct lists_scratch {
	struct regex_scratch *rx;
};

/* What became of a line. */
enum outcome { LINE_EMPTY, LINE_OK, LINE_BAD, LINE_SKIPPED, LINE_NOMEM };

/* One file being read. */
struct loader {
	struct lists *l;
	struct lists_file_stats *st;
	const char *path;
	char *msgs;
	size_t msgslen, msgsused;
	unsigned reported;
	const char *why;
	char whybuf[160]; /* for reasons composed per line */
};

static const char why_numeric[] =
	"IP address or numeric top-level label, not a domain";

/* ---- keys ---------------------------------------------------------- */

static inline uint64_t mix(uint64_t s, uint8_t b)
{
	return (s ^ b) * FNV_PRIME;
}

/* murmur3's fmix64: every input bit reaches every output bit.  0 marks
 * an empty slot, so it becomes 1. */
static inline uint64_t key_of(uint64_t s)
{
	s ^= s >> 33;
	s *= 0xff51afd7ed558ccdull;
	s ^= s >> 33;
	s *= 0xc4ceb9fe1a85ec53ull;
	s ^= s >> 33;
	return s ? s : 1;
}

static inline uint8_t lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* The lower-case form of each character allowed in list names, else 0. */
static const uint8_t name_char[256] = {
	['-'] = '-',
	['_'] = '_',
	['0'] = '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
	['A'] = 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm',
	'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z',
	['a'] = 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm',
	'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z',
};

static const char *bad_char_reason(uint8_t c)
{
	if (c == '*')
		return "wildcard other than a leading \"*.\"";
	if (c == '/' || c == ':')
		return "URL or port, not a domain";
	if (c >= 0x80)
		return "non-ASCII character (write IDNs in xn-- form)";
	if (c == 0)
		return "NUL byte";
	return "invalid character in name";
}

/*
 * The key of the name t[0..n-1] (text, trailing dot allowed), hashing it
 * as its lower-case wire form read backwards.  False with *why for an
 * invalid name.
 */
static bool key_from_text(const char *t, size_t n, uint64_t *key,
			  const char **why)
{
	if (n > 0 && t[n - 1] == '.')
		n--;
	if (n == 0) {
		*why = "empty name";
		return false;
	}
	if (n > NAME_TEXT_MAX) {
		*why = "name longer than 253 characters";
		return false;
	}
	uint64_t s = mix(FNV_BASIS, 0); /* the root label */
	size_t lab = 0;
	bool last = true, numeric = true; /* the top-level label */
	for (size_t i = n; i-- > 0;) {
		uint8_t c = (uint8_t)t[i];
		if (c == '.') {
			if (lab == 0) {
				*why = "empty label";
				return false;
			}
			if (last && numeric) {
				*why = why_numeric;
				return false;
			}
			s = mix(s, (uint8_t)lab);
			last = false;
			lab = 0;
			continue;
		}
		uint8_t lc = name_char[c];
		if (!lc) {
			*why = bad_char_reason(c);
			return false;
		}
		if (++lab > WIRE_LABEL_MAX) {
			*why = "label longer than 63 characters";
			return false;
		}
		if (lc < '0' || lc > '9')
			numeric = false;
		s = mix(s, lc);
	}
	if (lab == 0) {
		*why = "empty label";
		return false;
	}
	if (last && numeric) {
		*why = why_numeric;
		return false;
	}
	*key = key_of(mix(s, (uint8_t)lab));
	return true;
}

/* n zeroed bytes, mapped; NULL when out of memory. */
static void *map_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void map_free(void *p, size_t n)
{
	if (p)
		munmap(p, n);
}

/* Grow a mapping from n to m bytes, keeping its contents. */
static void *map_grow(void *p, size_t n, size_t m)
{
	if (!p)
		return map_alloc(m);
#ifdef MREMAP_MAYMOVE
	void *q = mremap(p, n, m, MREMAP_MAYMOVE);
	return q == MAP_FAILED ? NULL : q;
#else
	void *q = map_alloc(m);
	if (q) {
		memcpy(q, p, n);
		map_free(p, n);
	}
	return q;
#endif
}

static bool keys_push(struct keys *k, uint64_t key)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 4096;
		if (cap > MAX_ENTRIES)
			return false;
		uint64_t *v = map_grow(k->v, k->cap * sizeof(*v),
				       cap * sizeof(*v));
		if (!v)
			return false;
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n++] = key;
	return true;
}

static void keys_free(struct keys *k)
{
	map_free(k->v, k->cap * sizeof(*k->v));
	memset(k, 0, sizeof(*k));
}

/* ---- frozen tables ------------------------------------------------- */

static inline size_t home_of(uint64_t key, size_t homes)
{
	return (size_t)(((key >> 32) * (uint64_t)homes) >> 32);
}

/* The slot holding key, or NULL. */
static inline const uint64_t *table_find(const struct table *t, uint64_t key)
{
	if (t->n == 0)
		return NULL;
	const uint64_t *s = t->slot + home_of(key, t->homes);
	while (*s != 0 && *s < key)
		s++;
	return *s == key ? s : NULL;
}

/* The source of the key in slot s of t. */
static inline unsigned table_source(const struct table *t, const uint64_t *s)
{
	return t->src ? t->src[s - t->slot] : t->only;
}

/* LSD radix sort, six passes of 11 bits; an even number of passes leaves
 * the result in a.  It is stable, and moves src[i] (when src is not NULL)
 * along with a[i]. */
#define RADIX_BITS 11
#define RADIX_PASSES 6
#define RADIX_SIZE (1u << RADIX_BITS)

static bool radix_sort(uint64_t *a, uint16_t *src, size_t n)
{
	uint32_t(*count)[RADIX_SIZE] = calloc(RADIX_PASSES, sizeof(*count));
	uint64_t *tmp = map_alloc(n * sizeof(*tmp));
	uint16_t *tmp_src = src ? map_alloc(n * sizeof(*tmp_src)) : NULL;
	bool ok = count && tmp && (tmp_src || !src);

	for (size_t i = 0; ok && i < n; i++)
		for (unsigned p = 0; p < RADIX_PASSES; p++)
			count[p][(a[i] >> (p * RADIX_BITS)) &
				 (RADIX_SIZE - 1)]++;
	uint64_t *from = a, *to = tmp;
	uint16_t *from_src = src, *to_src = tmp_src;
	for (unsigned p = 0; ok && p < RADIX_PASSES; p++) {
		uint32_t sum = 0;
		for (unsigned d = 0; d < RADIX_SIZE; d++) {
			uint32_t c = count[p][d];
			count[p][d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned d = (unsigned)(from[i] >> (p * RADIX_BITS)) &
				     (RADIX_SIZE - 1);
			uint32_t at = count[p][d]++;
			to[at] = from[i];
			if (src)
				to_src[at] = from_src[i];
		}
		uint64_t *swap = from;
		from = to;
		to = swap;
		uint16_t *swap_src = from_src;
		from_src = to_src;
		to_src = swap_src;
	}
	map_free(tmp_src, n * sizeof(*tmp_src));
	map_free(tmp, n * sizeof(*tmp));
	free(count);
	return ok;
}

/*
 * Turn k's keys into t, and free them, leaving out the keys in un (sorted,
 * the $badfilter rules of the same table); src (NULL when all the keys
 * come from source only) holds the source of each key, and is freed in
 * any case.  False when out of memory.  The peak is the keys and their
 * sources twice over while sorting, then the keys, their sources and the
 * table's slots.
 */
static bool table_build(struct table *t, struct keys *k, const struct keys *un,
			uint16_t *src, unsigned only)
{
	size_t n = k->n, n_src = src ? n : 0;
	bool ok = false;

	memset(t, 0, sizeof(*t));
	t->only = only;
	if (n && !radix_sort(k->v, src, n))
		goto out;
	/* The sort is stable: of equal keys, the first added comes first
	 * and keeps its source. */
	size_t u = 0;
	for (size_t i = 0, b = 0; i < n; i++) {
		if (u && k->v[i] == k->v[u - 1])
			continue;
		while (b < un->n && un->v[b] < k->v[i])
			b++;
		if (b < un->n && un->v[b] == k->v[i])
			continue; /* disabled by $badfilter */
		if (src)
			src[u] = src[i];
		k->v[u++] = k->v[i];
	}
	n = u;
	if (n == 0) {
		keys_free(k);
		ok = true;
		goto out;
	}
	t->homes = n + n / 4; /* about 80% load */
	/* The last run may spill past the home slots: find how far. */
	size_t next = 0;
	for (size_t i = 0; i < n; i++) {
		size_t h = home_of(k->v[i], t->homes);
		next = (h > next ? h : next) + 1;
	}
	if (!(t->slot = map_alloc((next + 1) * sizeof(*t->slot))))
		goto out;
	t->len = next + 1;
	next = 0;
	for (size_t i = 0; i < n; i++) {
		size_t h = home_of(k->v[i], t->homes);
		size_t at = h > next ? h : next;
		t->slot[at] = k->v[i];
		next = at + 1;
	}
	t->n = n;
	keys_free(k); /* before the sources' table: a lower peak */
	/* Keys are never 0, so the occupied slots, in order, hold keys 0,
	 * 1, 2, ... of the deduplicated array. */
	if (src) {
		if (!(t->src = map_alloc(t->len * sizeof(*t->src))))
			goto out;
		for (size_t i = 0, j = 0; j < n; i++)
			if (t->slot[i])
				t->src[i] = src[j++];
	}
	ok = true;
out:
	map_free(src, n_src * sizeof(*src));
	return ok;
}

/* ---- rules the tables cannot hold ---------------------------------- */

static bool rules_push(struct rules *r, const struct rule *x)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		void *p = realloc(r->v, cap * sizeof(*r->v));
		if (!p)
			return false;
		r->v = p;
		r->cap = cap;
	}
	r->v[r->n++] = *x;
	return true;
}

static void rule_clear(struct rule *x)
{
	regex_free(x->re);
	free(x->text);
	x->re = NULL;
	x->text = NULL;
}

static void rules_free(struct rules *r)
{
	for (size_t i = 0; i < r->n; i++)
		rule_clear(&r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static bool types_equal(const struct types *a, const struct types *b)
{
	return a->n == b->n && a->negate == b->negate &&
	       memcmp(a->t, b->t, a->n * sizeof(a->t[0])) == 0;
}

/* Does a rule with types apply to a query of type qtype? */
static inline bool types_match(const struct types *ty, uint16_t qtype)
{
	bool in = false;

	if (ty->n == 0)
		return true;
	for (unsigned i = 0; i < ty->n; i++)
		in |= ty->t[i] == qtype;
	return in != ty->negate;
}

/* Do a and b say the same apart from their source ($badfilter)? */
static bool rule_same(const struct rule *a, const struct rule *b)
{
	if (a->cls != b->cls || !types_equal(&a->types, &b->types) ||
	    (a->text == NULL) != (b->text == NULL))
		return false;
	if (a->text)
		return strcmp(a->text, b->text) == 0;
	return a->key == b->key && a->subs == b->subs;
}

static int by_key(const void *pa, const void *pb)
{
	const struct rule *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

static int by_class(const void *pa, const void *pb)
{
	const struct rule *a = pa, *b = pb;
	if (a->cls != b->cls)
		return a->cls > b->cls ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* Drop the rules of r that a $badfilter rule of un disables, then sort
 * what is left with cmp.  Quadratic, but both sets are small: typed and
 * regex rules are rare in lists, and regexes are capped. */
static void rules_freeze(struct rules *r, const struct rules *un,
			 int (*cmp)(const void *, const void *))
{
	size_t u = 0;

	for (size_t i = 0; i < r->n; i++) {
		bool off = false;
		for (size_t j = 0; j < un->n && !off; j++)
			off = rule_same(&r->v[i], &un->v[j]);
		if (off)
			rule_clear(&r->v[i]);
		else
			r->v[u++] = r->v[i];
	}
	r->n = u;
	if (r->n > 1)
		qsort(r->v, r->n, sizeof(*r->v), cmp);
}

/* ---- the set ------------------------------------------------------- */

struct lists *lists_new(void)
{
	return calloc(1, sizeof(struct lists));
}

void lists_free(struct lists *l)
{
	if (!l)
		return;
	for (int i = 0; i < NTABLES; i++) {
		keys_free(&l->build[i]);
		keys_free(&l->unkeys[i]);
		map_free(l->set[i].slot, l->set[i].len * sizeof(uint64_t));
		map_free(l->set[i].src, l->set[i].len * sizeof(uint16_t));
	}
	rules_free(&l->typed);
	rules_free(&l->regex);
	rules_free(&l->unrules);
	free(l->start);
	free(l);
}

int lists_begin_source(struct lists *l)
{
	if (l->frozen || l->nsources == LISTS_SOURCES_MAX)
		return -1;
	if (l->nsources == l->start_cap) {
		unsigned cap = l->start_cap ? l->start_cap * 2 : 16;
		void *p = realloc(l->start, cap * sizeof(*l->start));
		if (!p)
			return -1;
		l->start = p;
		l->start_cap = cap;
	}
	unsigned s = l->nsources++;
	/* Names added before the first call belong to source 0. */
	for (int i = 0; i < NTABLES; i++)
		l->start[s][i] = s == 0 ? 0 : l->build[i].n;
	return (int)s;
}

/* The source names are being added to now. */
static uint16_t current_source(const struct lists *l)
{
	return (uint16_t)(l->nsources ? l->nsources - 1 : 0);
}

/* Where source s ends in build[t]. */
static size_t source_end(const struct lists *l, unsigned s, int t)
{
	return s + 1 < l->nsources ? l->start[s + 1][t] : l->build[t].n;
}

/*
 * The source of each of build[t]'s keys, in a new mapping of one
 * uint16_t a key; NULL, with the source in *only, when they all come from
 * one.  False when out of memory.
 */
static bool sources_of(const struct lists *l, int t, uint16_t **src,
		       unsigned *only)
{
	unsigned used = 0;

	*src = NULL;
	*only = 0;
	for (unsigned s = 0; s < l->nsources; s++)
		if (source_end(l, s, t) > l->start[s][t] && used++ == 0)
			*only = s;
	if (used <= 1)
		return true;
	if (!(*src = map_alloc(l->build[t].n * sizeof(**src))))
		return false;
	for (unsigned s = 0; s < l->nsources; s++)
		for (size_t i = l->start[s][t]; i < source_end(l, s, t); i++)
			(*src)[i] = (uint16_t)s;
	return true;
}

/* What one rule says: its class and, for names, whether it covers only
 * strict subdomains; $dnstype's types; $badfilter. */
struct rule_opts {
	bool allow, important, badfilter;
	struct types types;
};

static uint8_t class_of(const struct rule_opts *o)
{
	return (uint8_t)((o->allow ? C_ALLOW : C_BLOCK) +
			 (o->important ? C_BLOCK_IMPORTANT : 0));
}

/* Add the name t[0..n-1], with its "*." prefix if any, as rule o says:
 * LINE_OK, or LINE_BAD or LINE_NOMEM with a reason in *why. */
static enum outcome add_rule(struct lists *l, const char *t, size_t n,
			     const struct rule_opts *o, const char **why)
{
	struct rule r = {.cls = class_of(o), .types = o->types};

	if (n >= 2 && t[0] == '*' && t[1] == '.') {
		if (o->allow) {
			*why = "\"*.\" is not supported in allow entries";
			return LINE_BAD;
		}
		r.subs = true;
		t += 2;
		n -= 2;
	}
	if (!key_from_text(t, n, &r.key, why))
		return LINE_BAD;
	bool pushed;
	if (o->types.n) {
		r.order = l->order++;
		r.src = current_source(l);
		pushed = rules_push(o->badfilter ? &l->unrules : &l->typed, &r);
	} else {
		struct keys *k = o->badfilter ? l->unkeys : l->build;
		pushed = keys_push(&k[TAB(r.cls, r.subs)], r.key);
	}
	if (!pushed) {
		*why = "out of memory";
		return LINE_NOMEM;
	}
	return LINE_OK;
}

/* Add the regular expression p[0..n-1] as rule o says: LINE_OK, or
 * LINE_BAD (with the reason in whybuf, pointed to by *why) or LINE_NOMEM. */
static enum outcome add_regex(struct lists *l, const char *p, size_t n,
			      const struct rule_opts *o, char *whybuf,
			      size_t whylen, const char **why)
{
	struct rule r = {.cls = class_of(o), .types = o->types};

	*why = whybuf;
	if (n == 0) {
		errf(whybuf, whylen, "%s", "empty regular expression");
		return LINE_BAD;
	}
	if (!o->badfilter && l->regexes_added >= LISTS_REGEX_MAX) {
		errf(whybuf, whylen,
		     "more than %d regular expressions in the block lists",
		     LISTS_REGEX_MAX);
		return LINE_BAD;
	}
	if (!o->badfilter && !(r.re = regex_new(p, n, whybuf, whylen)))
		return LINE_BAD;
	if (!(r.text = strndup(p, n))) {
		regex_free(r.re);
		*why = "out of memory";
		return LINE_NOMEM;
	}
	r.order = l->order++;
	r.src = current_source(l);
	if (!rules_push(o->badfilter ? &l->unrules : &l->regex, &r)) {
		rule_clear(&r);
		*why = "out of memory";
		return LINE_NOMEM;
	}
	if (!o->badfilter)
		l->regexes_added++;
	return LINE_OK;
}

bool lists_add(struct lists *l, const char *text, enum lists_kind kind,
	       const char **why)
{
	struct rule_opts o = {.allow = kind == LISTS_ALLOW};

	assert(kind == LISTS_BLOCK || kind == LISTS_BLOCK_SUBS ||
	       kind == LISTS_ALLOW);
	*why = NULL;
	if (l->frozen) {
		*why = "the list set is already frozen";
		return false;
	}
	size_t n = strlen(text);
	if (kind == LISTS_BLOCK_SUBS && !(n >= 2 && text[0] == '*' &&
					   text[1] == '.')) {
		/* The "*." is implied. */
		struct rule r = {.cls = C_BLOCK, .subs = true};
		if (!key_from_text(text, n, &r.key, why))
			return false;
		if (!keys_push(&l->build[TAB(C_BLOCK, 1)], r.key)) {
			*why = "out of memory";
			return false;
		}
		return true;
	}
	return add_rule(l, text, n, &o, why) == LINE_OK;
}

bool lists_add_regex(struct lists *l, const char *pattern, char *why,
		     size_t whylen)
{
	struct rule_opts o = {0};
	const char *w;

	if (l->frozen) {
		errf(why, whylen, "%s", "the list set is already frozen");
		return false;
	}
	enum outcome r = add_regex(l, pattern, strlen(pattern), &o, why,
				   whylen, &w);
	if (r != LINE_OK && w != why)
		errf(why, whylen, "%s", w);
	return r == LINE_OK;
}

/* Where each class's regex rules are, and the highest classes present. */
static void find_classes(struct lists *l)
{
	l->top = -1;
	l->regex_top = -1;
	for (int c = 0; c < NCLASSES; c++) {
		if (l->set[TAB(c, 0)].n || l->set[TAB(c, 1)].n)
			l->top = c;
		l->rx_from[c] = l->rx_to[c] = 0;
	}
	for (size_t i = 0; i < l->typed.n; i++)
		if (l->typed.v[i].cls > l->top)
			l->top = l->typed.v[i].cls;
	/* Sorted by class, highest first. */
	for (size_t i = l->regex.n; i-- > 0;) {
		int c = l->regex.v[i].cls;
		l->rx_from[c] = i;
		if (!l->rx_to[c])
			l->rx_to[c] = i + 1;
		if (c > l->regex_top)
			l->regex_top = c;
	}
}

bool lists_finish(struct lists *l)
{
	if (l->frozen)
		return true;
	for (int i = 0; i < NTABLES; i++) {
		uint16_t *src;
		unsigned only;
		struct keys *un = &l->unkeys[i];
		if ((un->n && !radix_sort(un->v, NULL, un->n)) ||
		    !sources_of(l, i, &src, &only) ||
		    !table_build(&l->set[i], &l->build[i], un, src, only))
			return false;
		keys_free(un);
	}
	rules_freeze(&l->typed, &l->unrules, by_key);
	rules_freeze(&l->regex, &l->unrules, by_class);
	rules_free(&l->unrules);
	find_classes(l);
	free(l->start);
	l->start = NULL;
	l->start_cap = 0;
	l->frozen = true;
	return true;
}

/* ---- lookups ------------------------------------------------------- */

/* The best match so far: its class (-1: none) and source. */
struct best {
	int cls;
	unsigned src;
};

/* The typed rules for the suffix with key: the highest class above b's
 * that applies to qtype (subs rules only below their name). */
static void typed_find(const struct lists *l, uint64_t key, bool below,
		       uint16_t qtype, struct best *b)
{
	const struct rule *v = l->typed.v;
	size_t lo = 0, hi = l->typed.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < l->typed.n && v[lo].key == key; lo++)
		if (v[lo].cls > b->cls && (below || !v[lo].subs) &&
		    types_match(&v[lo].types, qtype)) {
			b->cls = v[lo].cls;
			b->src = v[lo].src;
		}
}

/* The name as regexes see it: lower case, no trailing dot.  Returns its
 * length; out has room for WIRE_NAME_MAX bytes. */
static size_t name_text(const uint8_t *name, char *out)
{
	size_t n = 0;

	for (size_t p = 0; name[p]; p += (size_t)name[p] + 1) {
		if (n)
			out[n++] = '.';
		for (size_t j = 1; j <= name[p]; j++)
			out[n++] = (char)lower(name[p + j]);
	}
	return n;
}

/* The regex rules of classes above b's, highest first: the first that
 * matches decides. */
static void regex_find(const struct lists *l, const uint8_t *name,
		       uint16_t qtype, struct lists_scratch *sc,
		       struct best *b)
{
	char text[WIRE_NAME_MAX];
	size_t n = 0;
	bool have = false;

	for (int c = l->regex_top; c > b->cls; c--)
		for (size_t i = l->rx_from[c]; i < l->rx_to[c]; i++) {
			const struct rule *r = &l->regex.v[i];
			if (!types_match(&r->types, qtype))
				continue;
			if (!have) {
				n = name_text(name, text);
				have = true;
			}
			if (regex_match(r->re, text, n, sc->rx)) {
				b->cls = c;
				b->src = r->src;
				return;
			}
		}
}

/*
 * The best rule for name: in each step from the top-level label down,
 * the tables and typed rules of the classes above the best found so far
 * are probed, so of the rules of one class the one for the shortest
 * suffix decides, and of a name's plain and "*." entries the plain one.
 * Only classes above the best name rule run their regexes.  Keeping the
 * source costs the plain lookup nothing measurable (one read on a
 * match).
 */
static inline struct best decide(const struct lists *l, const uint8_t *name,
				 size_t len, uint16_t qtype,
				 struct lists_scratch *sc)
{
	uint8_t off[WIRE_NAME_MAX / 2 + 1]; /* label starts */
	size_t nlabels = 0, p = 0;
	struct best b = {-1, 0};

	if (len > WIRE_NAME_MAX || !l->frozen)
		return b;
	for (;;) {
		if (p >= len)
			return b;
		uint8_t c = name[p];
		if (c == 0)
			break;
		if (c > WIRE_LABEL_MAX || len - p - 1 <= c)
			return b;
		off[nlabels++] = (uint8_t)p;
		p += (size_t)c + 1;
	}

	uint64_t h = mix(FNV_BASIS, 0);
	const uint64_t *s;
	/* From the top-level label down: each step adds one label to the
	 * suffix hashed so far. */
	for (size_t i = nlabels; b.cls < l->top && i-- > 0;) {
		const uint8_t *lab = name + off[i];
		for (size_t j = lab[0]; j > 0; j--)
			h = mix(h, lower(lab[j]));
		h = mix(h, lab[0]);
		uint64_t key = key_of(h);
		for (int c = l->top; c > b.cls; c--) {
			const struct table *t = &l->set[TAB(c, 0)];
			if ((s = table_find(t, key)) ||
			    (i > 0 && (s = table_find(++t, key)))) {
				b.cls = c;
				b.src = table_source(t, s);
				break;
			}
		}
		if (l->typed.n)
			typed_find(l, key, i > 0, qtype, &b);
	}
	if (b.cls < l->regex_top && sc)
		regex_find(l, name, qtype, sc, &b);
	return b;
}

static enum lists_verdict verdict_of(int cls)
{
	if (cls < 0)
		return LISTS_NONE;
	return cls == C_ALLOW || cls == C_ALLOW_IMPORTANT ? LISTS_ALLOWED
							  : LISTS_BLOCKED;
}

enum lists_verdict lists_match(const struct lists *l, const uint8_t *name,
			       size_t len)
{
	return verdict_of(decide(l, name, len, 0, NULL).cls);
}

enum lists_verdict lists_match_source(const struct lists *l,
				      const uint8_t *name, size_t len,
				      uint16_t qtype,
				      struct lists_scratch *scratch,
				      unsigned *source)
{
	struct best b = decide(l, name, len, qtype, scratch);

	if (b.cls >= 0)
		*source = b.src;
	return verdict_of(b.cls);
}

struct lists_scratch *lists_scratch_new(void)
{
	struct lists_scratch *sc = calloc(1, sizeof(*sc));

	if (sc && !(sc->rx = regex_scratch_new())) {
		free(sc);
		sc = NULL;
	}
	return sc;
}

void lists_scratch_free(struct lists_scratch *sc)
{
	if (!sc)
		return;
	regex_scratch_free(sc->rx);
	free(sc);
}

unsigned lists_source_count(const struct lists *l)
{
	return l->nsources ? l->nsources : 1;
}

static size_t keys_in(const struct lists *l, int t)
{
	return l->frozen ? l->set[t].n : l->build[t].n;
}

static size_t typed_in(const struct lists *l, bool allow)
{
	size_t n = 0;
	for (size_t i = 0; i < l->typed.n; i++)
		n += (l->typed.v[i].cls == C_ALLOW ||
		      l->typed.v[i].cls == C_ALLOW_IMPORTANT) == allow;
	return n;
}

size_t lists_count(const struct lists *l)
{
	return keys_in(l, TAB(C_BLOCK, 0)) + keys_in(l, TAB(C_BLOCK, 1)) +
	       keys_in(l, TAB(C_BLOCK_IMPORTANT, 0)) +
	       keys_in(l, TAB(C_BLOCK_IMPORTANT, 1)) + typed_in(l, false);
}

size_t lists_allow_count(const struct lists *l)
{
	return keys_in(l, TAB(C_ALLOW, 0)) +
	       keys_in(l, TAB(C_ALLOW_IMPORTANT, 0)) + typed_in(l, true);
}

size_t lists_regex_count(const struct lists *l)
{
	return l->regex.n;
}

size_t lists_memory(const struct lists *l)
{
	size_t n = sizeof(*l) + l->start_cap * sizeof(*l->start);
	for (int i = 0; i < NTABLES; i++) {
		n += (l->build[i].cap + l->unkeys[i].cap + l->set[i].len) *
		     sizeof(uint64_t);
		if (l->set[i].src)
			n += l->set[i].len * sizeof(uint16_t);
	}
	n += (l->typed.cap + l->regex.cap + l->unrules.cap) *
	     sizeof(struct rule);
	for (size_t i = 0; i < l->regex.n; i++)
		n += strlen(l->regex.v[i].text) + 1 +
		     regex_memory(l->regex.v[i].re);
	return n;
}

/* ---- reading files ------------------------------------------------- */

static inline bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Names in hosts files that describe the machine itself, never ads. */
static bool ignored_name(const char *t, size_t n)
{
#define NAME(s) {s, sizeof(s) - 1}
	static const struct {
		const char *s;
		size_t n;
	} names[] = {
		NAME("localhost"),     NAME("localhost.localdomain"),
		NAME("localhost6"),    NAME("localhost6.localdomain6"),
		NAME("local"),         NAME("localdomain"),
		NAME("broadcasthost"),
	};
#undef NAME
	if (n > 0 && t[n - 1] == '.')
		n--;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].n == n && strncasecmp(t, names[i].s, n) == 0)
			return true;
	/* ip6-localhost, ip6-loopback, ip6-allnodes, ...: single labels. */
	return n > 4 && (t[0] == 'i' || t[0] == 'I') &&
	       strncasecmp(t, "ip6-", 4) == 0 && memchr(t, '.', n) == NULL;
}

/* Append "path:line: reason: 'excerpt'" to the caller's messages. */
static void report(struct loader *ld, const char *why, const char *line,
		   size_t n)
{
	char ex[52];
	size_t e = 0;

	if (ld->reported++ >= LISTS_REPORT_MAX || !ld->msgs)
		return;
	for (size_t i = 0; i < n && e < 48; i++) {
		unsigned char c = (unsigned char)line[i];
		ex[e++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (e < n) {
		memcpy(ex + e, "...", 3);
		e += 3;
	}
	ex[e] = '\0';
	if (ld->msgsused + 1 >= ld->msgslen)
		return;
	errf(ld->msgs + ld->msgsused, ld->msgslen - ld->msgsused,
	     "%s:%zu: %s: '%s'\n", ld->path, ld->st->lines, why, ex);
	ld->msgsused += strlen(ld->msgs + ld->msgsused);
}

/* Add one name from a line; counts it. */
static enum outcome take_name(struct loader *ld, const char *t, size_t n,
			      const struct rule_opts *o, bool hosts)
{
	if (!o->badfilter && ignored_name(t, n)) {
		ld->st->ignored++;
		return LINE_OK;
	}
	enum outcome r = add_rule(ld->l, t, n, o, &ld->why);
	if (r == LINE_OK) {
		if (o->badfilter)
			ld->st->badfilters++;
		else if (o->allow)
			ld->st->allows++;
		else
			ld->st->entries++;
	} else if (r == LINE_BAD && hosts && ld->why == why_numeric) {
		ld->st->ignored++; /* "0.0.0.0 0.0.0.0" and the like */
		return LINE_OK;
	}
	return r;
}

/* Query types by name, for $dnstype (RFC 1035 3.2.2, RFC 3596, RFC 9460
 * for SVCB and HTTPS, ...); others are written TYPEnnn (RFC 3597 5). */
static const struct {
	const char *name;
	uint16_t type;
} dns_types[] = {
	{"A", 1},      {"NS", 2},      {"CNAME", 5},   {"SOA", 6},
	{"PTR", 12},   {"HINFO", 13},  {"MX", 15},     {"TXT", 16},
	{"AAAA", 28},  {"SRV", 33},    {"NAPTR", 35},  {"DS", 43},
	{"SSHFP", 44}, {"RRSIG", 46},  {"NSEC", 47},   {"DNSKEY", 48},
	{"TLSA", 52},  {"SVCB", 64},   {"HTTPS", 65},  {"ANY", 255},
	{"CAA", 257},
};

/* The type named t[0..n-1], or 0. */
static uint16_t type_of(const char *t, size_t n)
{
	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (strlen(dns_types[i].name) == n &&
		    strncasecmp(t, dns_types[i].name, n) == 0)
			return dns_types[i].type;
	if (n > 4 && n <= 9 && strncasecmp(t, "TYPE", 4) == 0) {
		unsigned v = 0;
		for (size_t i = 4; i < n; i++) {
			if (t[i] < '0' || t[i] > '9')
				return 0;
			v = v * 10 + (unsigned)(t[i] - '0');
		}
		return v <= 65535 ? (uint16_t)v : 0;
	}
	return 0;
}

/* "A|AAAA" or "~A|~HTTPS" into ty: sorted, without repeats. */
static enum outcome dnstype_option(struct loader *ld, const char *p,
				   const char *end, struct types *ty)
{
	memset(ty, 0, sizeof(*ty));
	for (const char *v = p;; v++) {
		const char *bar = memchr(v, '|', (size_t)(end - v));
		const char *ve = bar ? bar : end;
		bool neg = v < ve && *v == '~';
		uint16_t t = type_of(v + neg, (size_t)(ve - v - neg));
		if (!t) {
			ld->why = "unknown query type in $dnstype";
			return LINE_BAD;
		}
		if (ty->n && neg != ty->negate) {
			ld->why = "$dnstype mixes TYPE and ~TYPE";
			return LINE_BAD;
		}
		ty->negate = neg;
		size_t at = 0;
		while (at < ty->n && ty->t[at] < t)
			at++;
		if (at == ty->n || ty->t[at] != t) {
			if (ty->n == LISTS_TYPES_MAX) {
				ld->why = "more than 16 types in $dnstype";
				return LINE_BAD;
			}
			memmove(ty->t + at + 1, ty->t + at,
				(ty->n - at) * sizeof(ty->t[0]));
			ty->t[at] = t;
			ty->n++;
		}
		if (!bar)
			return LINE_OK;
		v = bar;
	}
}

static bool option_is(const char *o, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(o, name, n) == 0;
}

/* The options p[0..end) after a rule's '$' into o.  $important,
 * $badfilter and $dnstype= change what the rule means; $all, $document
 * and $doc do not, for DNS; any other option makes the rule skipped. */
static enum outcome rule_options(struct loader *ld, const char *p,
				 const char *end, struct rule_opts *o)
{
	for (;;) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *oe = c ? c : end;
		size_t n = (size_t)(oe - p);
		if (n == 0) {
			ld->why = "empty adblock option";
			return LINE_BAD;
		}
		if (option_is(p, n, "important")) {
			o->important = true;
		} else if (option_is(p, n, "badfilter")) {
			o->badfilter = true;
		} else if (n >= 8 && strncasecmp(p, "dnstype=", 8) == 0) {
			enum outcome r = dnstype_option(ld, p + 8, oe, &o->types);
			if (r != LINE_OK)
				return r;
		} else if (!option_is(p, n, "all") &&
			   !option_is(p, n, "document") &&
			   !option_is(p, n, "doc")) {
			ld->why = "adblock option that changes the rule's "
				  "meaning";
			return LINE_SKIPPED;
		}
		if (!c)
			return LINE_OK;
		p = c + 1;
	}
}

/* "||name^[$options]", after the "||", with "@@" already taken off for
 * allow. */
static enum outcome adblock_rule(struct loader *ld, const char *p,
				 const char *end, bool allow)
{
	struct rule_opts o = {.allow = allow};
	const char *q = p;
	while (q < end && *q != '^' && *q != '|' && *q != '$')
		q++;
	const char *name = p;
	size_t n = (size_t)(q - p);
	if (q == end || *q == '$') {
		/* "||example.com" also matches example.com.evil.net. */
		ld->why = "adblock rule without the '^' separator";
		return LINE_BAD;
	}
	if (*q == '^')
		q++;
	if (q < end && *q == '|')
		q++;
	if (q < end && *q != '$') {
		ld->why = "adblock rule with more than a domain";
		return LINE_BAD;
	}
	if (q < end) {
		enum outcome r = rule_options(ld, q + 1, end, &o);
		if (r != LINE_OK)
			return r;
	}
	return take_name(ld, name, n, &o, false);
}

/* "/regex/[$options]", from the first '/', with "@@" already taken off
 * for allow.  The pattern ends at the last "/" that ends the line or is
 * followed by "$": "/a$/" is the pattern "a$", "/a/$important" is "a"
 * with an option. */
static enum outcome regex_rule(struct loader *ld, const char *p,
			       const char *end, bool allow)
{
	struct rule_opts o = {.allow = allow};
	const char *close = NULL;

	if (end - p >= 2 && end[-1] == '/') {
		close = end - 1;
	} else {
		for (const char *q = end - 1; q > p; q--)
			if (q[0] == '$' && q[-1] == '/' && q - 1 > p) {
				close = q - 1;
				break;
			}
		if (!close) {
			ld->why = "adblock rule other than ||domain^ or "
				  "/regex/ (URL)";
			return LINE_BAD;
		}
		enum outcome r = rule_options(ld, close + 2, end, &o);
		if (r != LINE_OK)
			return r;
	}
	enum outcome r = add_regex(ld->l, p + 1, (size_t)(close - p - 1), &o,
				   ld->whybuf, sizeof(ld->whybuf), &ld->why);
	if (r == LINE_OK) {
		if (o.badfilter)
			ld->st->badfilters++;
		else
			ld->st->regexes++;
	}
	return r;
}

/* Bounds of the next white-space separated token in [*p, end). */
static bool next_token(const char **p, const char *end, const char **t,
		       size_t *n)
{
	const char *s = *p;
	while (s < end && is_space(*s))
		s++;
	if (s == end)
		return false;
	const char *e = s;
	while (e < end && !is_space(*e))
		e++;
	*t = s;
	*n = (size_t)(e - s);
	*p = e;
	return true;
}

static bool is_address(const char *t, size_t n)
{
	char buf[INET6_ADDRSTRLEN];
	unsigned char addr[16];

	if ((n == 7 && memcmp(t, "0.0.0.0", 7) == 0) ||
	    (n == 9 && memcmp(t, "127.0.0.1", 9) == 0))
		return true; /* nearly every line of a hosts list */
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, t, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, addr) == 1 ||
	       inet_pton(AF_INET6, buf, addr) == 1;
}

/* A hosts line: an address, then names.  A bad name spoils the line's
 * count but not the good names beside it. */
static enum outcome hosts_line(struct loader *ld, const char *p,
			       const char *end)
{
	const char *t, *why = NULL;
	size_t n;

	next_token(&p, end, &t, &n);
	if (!is_address(t, n)) {
		ld->why = "several words, and the first is not an address";
		return LINE_BAD;
	}
	static const struct rule_opts block = {0};
	while (next_token(&p, end, &t, &n)) {
		enum outcome o = take_name(ld, t, n, &block, true);
		if (o == LINE_NOMEM)
			return o;
		if (o != LINE_OK && !why)
			why = ld->why;
	}
	ld->why = why;
	return why ? LINE_BAD : LINE_OK;
}

static enum outcome parse_line(struct loader *ld, const char *p, size_t n)
{
	const char *end = p + n;

	if (n > LINE_MAX_LEN) {
		ld->why = "line longer than 4096 bytes";
		return LINE_BAD;
	}
	while (p < end && is_space(*p))
		p++;
	if (p == end || *p == '#' || *p == '!')
		return LINE_EMPTY;
	/* "#" after white space starts a comment; "##" inside a rule is
	 * adblock's element hiding and stays, to be refused below. */
	for (const char *h = p;
	     (h = memchr(h + 1, '#', (size_t)(end - h - 1))) != NULL;)
		if (is_space(h[-1])) {
			end = h;
			break;
		}
	while (end > p && is_space(end[-1]))
		end--;
	if (*p == '[') {
		if (end[-1] == ']')
			return LINE_EMPTY; /* [Adblock Plus 2.0] */
		ld->why = "not a list line";
		return LINE_BAD;
	}
	bool allow = end - p >= 2 && p[0] == '@' && p[1] == '@';
	const char *r = allow ? p + 2 : p;
	if (end - r >= 2 && r[0] == '|' && r[1] == '|')
		return adblock_rule(ld, r + 2, end, allow);
	if (r < end && *r == '/')
		return regex_rule(ld, r, end, allow);
	if (*p == '|' || *p == '/' || *p == '@') {
		ld->why = "adblock rule other than ||domain^ or /regex/ (URL)";
		return LINE_BAD;
	}
	const char *q = p, *t;
	size_t tn;
	static const struct rule_opts block = {0};
	next_token(&q, end, &t, &tn);
	if (q < end)
		return hosts_line(ld, p, end);
	return take_name(ld, t, tn, &block, false);
}

static bool take_line(struct loader *ld, const char *p, size_t n)
{
	/* A byte order mark, as Windows editors save UTF-8. */
	if (ld->st->lines++ == 0 && n >= 3 &&
	    memcmp(p, "\xef\xbb\xbf", 3) == 0) {
		p += 3;
		n -= 3;
	}
	switch (parse_line(ld, p, n)) {
	case LINE_EMPTY:
	case LINE_OK:
		break;
	case LINE_BAD:
		ld->st->bad++;
		report(ld, ld->why, p, n);
		break;
	case LINE_SKIPPED:
		ld->st->skipped_options++;
		report(ld, ld->why, p, n);
		break;
	case LINE_NOMEM:
		return false;
	}
	return true;
}

static void fail(struct loader *ld, const char *what)
{
	errf(ld->msgs, ld->msgslen, "%s: %s\n", ld->path, what);
}

/*
 * Lines are cut out of the buffer where they lie.  A partial line at the
 * end of the buffer moves to its front before the next read; one that
 * already exceeds the limit is counted bad at once and the rest of it is
 * skipped up to its newline.
 */
static bool read_lines(struct loader *ld, int fd, char *buf)
{
	size_t have = 0;
	bool skipping = false;

	for (;;) {
		ssize_t r = read(fd, buf + have, READ_CHUNK - have);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail(ld, strerror(errno));
			return false;
		}
		have += (size_t)r;
		size_t start = 0;
		for (;;) {
			char *nl = memchr(buf + start, '\n', have - start);
			if (!nl)
				break;
			size_t len = (size_t)(nl - buf) - start;
			if (skipping)
				skipping = false;
			else if (!take_line(ld, buf + start, len))
				goto nomem;
			start += len + 1;
		}
		size_t rest = have - start;
		if (r == 0) {
			if (rest > 0 && !skipping &&
			    !take_line(ld, buf + start, rest))
				goto nomem;
			return true;
		}
		if (skipping) {
			have = 0;
		} else if (rest > LINE_MAX_LEN) {
			if (!take_line(ld, buf + start, rest))
				goto nomem;
			skipping = true;
			have = 0;
		} else {
			memmove(buf, buf + start, rest);
			have = rest;
		}
	}
nomem:
	fail(ld, "out of memory");
	return false;
}

bool lists_load_file(struct lists *l, const char *path,
		     struct lists_file_stats *st, char *msgs, size_t msgslen)
{
	struct loader ld = {.l = l, .st = st, .path = path, .msgs = msgs,
			    .msgslen = msgslen};
	bool ok = false;

	memset(st, 0, sizeof(*st));
	if (msgs && msgslen)
		msgs[0] = '\0';
	if (l->frozen) {
		fail(&ld, "the list set is already frozen");
		return false;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail(&ld, strerror(errno));
		return false;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	char *buf = map_alloc(READ_CHUNK);
	if (!buf)
		fail(&ld, "out of memory");
	else
		ok = read_lines(&ld, fd, buf);
	map_free(buf, READ_CHUNK);
	close(fd);
	return ok;
}
