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
#include "wire.h"

#define NKINDS 3
#define LINE_MAX_LEN 4096
#define READ_CHUNK (256 * 1024)
#define NAME_TEXT_MAX 253 /* 255 wire octets less the root and first length */
#define MAX_ENTRIES (UINT32_MAX / 2) /* keeps homes below 2^32 */

#define FNV_BASIS 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

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

struct lists {
	struct keys build[NKINDS]; /* while building */
	struct table set[NKINDS];  /* once frozen */
	/* While building: start[s][kind] is the first index in build[kind]
	 * of source s, which ends where source s + 1 starts. */
	size_t (*start)[NKINDS];
	unsigned nsources, start_cap;
	bool frozen;
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
 * Turn k's keys into t, and free them; src (NULL when all the keys come
 * from source only) holds the source of each key, and is freed in any
 * case.  False when out of memory.  The peak is the keys and their
 * sources twice over while sorting, then the keys, their sources and the
 * table's slots.
 */
static bool table_build(struct table *t, struct keys *k, uint16_t *src,
			unsigned only)
{
	size_t n = k->n, n_src = src ? n : 0;
	bool ok = false;

	memset(t, 0, sizeof(*t));
	t->only = only;
	if (n == 0) {
		keys_free(k);
		ok = true;
		goto out;
	}
	if (!radix_sort(k->v, src, n))
		goto out;
	/* The sort is stable: of equal keys, the first added comes first
	 * and keeps its source. */
	size_t u = 1;
	for (size_t i = 1; i < n; i++)
		if (k->v[i] != k->v[u - 1]) {
			if (src)
				src[u] = src[i];
			k->v[u++] = k->v[i];
		}
	n = u;
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

/* ---- the set ------------------------------------------------------- */

struct lists *lists_new(void)
{
	return calloc(1, sizeof(struct lists));
}

void lists_free(struct lists *l)
{
	if (!l)
		return;
	for (int i = 0; i < NKINDS; i++) {
		keys_free(&l->build[i]);
		map_free(l->set[i].slot, l->set[i].len * sizeof(uint64_t));
		map_free(l->set[i].src, l->set[i].len * sizeof(uint16_t));
	}
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
	for (int i = 0; i < NKINDS; i++)
		l->start[s][i] = s == 0 ? 0 : l->build[i].n;
	return (int)s;
}

/* Where source s ends in build[kind]. */
static size_t source_end(const struct lists *l, unsigned s, int kind)
{
	return s + 1 < l->nsources ? l->start[s + 1][kind] : l->build[kind].n;
}

/*
 * The source of each of build[kind]'s keys, in a new mapping of one
 * uint16_t a key; NULL, with the source in *only, when they all come from
 * one.  False when out of memory.
 */
static bool sources_of(const struct lists *l, int kind, uint16_t **src,
		       unsigned *only)
{
	unsigned used = 0;

	*src = NULL;
	*only = 0;
	for (unsigned s = 0; s < l->nsources; s++)
		if (source_end(l, s, kind) > l->start[s][kind] && used++ == 0)
			*only = s;
	if (used <= 1)
		return true;
	if (!(*src = map_alloc(l->build[kind].n * sizeof(**src))))
		return false;
	for (unsigned s = 0; s < l->nsources; s++)
		for (size_t i = l->start[s][kind]; i < source_end(l, s, kind);
		     i++)
			(*src)[i] = (uint16_t)s;
	return true;
}

/* Add the name t[0..n-1], with its "*." prefix if any: LINE_OK, or
 * LINE_BAD or LINE_NOMEM with a reason in *why. */
static enum outcome add_name(struct lists *l, const char *t, size_t n,
			     enum lists_kind kind, const char **why)
{
	uint64_t key;

	if (n >= 2 && t[0] == '*' && t[1] == '.') {
		if (kind == LISTS_ALLOW) {
			*why = "\"*.\" is not supported in allow entries";
			return LINE_BAD;
		}
		kind = LISTS_BLOCK_SUBS;
		t += 2;
		n -= 2;
	}
	if (!key_from_text(t, n, &key, why))
		return LINE_BAD;
	if (!keys_push(&l->build[kind], key)) {
		*why = "out of memory";
		return LINE_NOMEM;
	}
	return LINE_OK;
}

bool lists_add(struct lists *l, const char *text, enum lists_kind kind,
	       const char **why)
{
	assert((unsigned)kind < NKINDS);
	*why = NULL;
	if (l->frozen) {
		*why = "the list set is already frozen";
		return false;
	}
	return add_name(l, text, strlen(text), kind, why) == LINE_OK;
}

bool lists_finish(struct lists *l)
{
	if (l->frozen)
		return true;
	for (int i = 0; i < NKINDS; i++) {
		uint16_t *src;
		unsigned only;
		if (!sources_of(l, i, &src, &only) ||
		    !table_build(&l->set[i], &l->build[i], src, only))
			return false;
	}
	free(l->start);
	l->start = NULL;
	l->start_cap = 0;
	l->frozen = true;
	return true;
}

/*
 * The verdict for name, with the table and slot of the entry that
 * decided it (*by is NULL for LISTS_NONE).  Shared by lists_match, which
 * ignores the entry, and lists_match_source; keeping the entry costs
 * lists_match nothing measurable (a million names: within 1 ns of the
 * version without it, out of 85 to 200).
 */
static inline enum lists_verdict decide(const struct lists *l,
					const uint8_t *name, size_t len,
					const struct table **by,
					const uint64_t **at)
{
	uint8_t off[WIRE_NAME_MAX / 2 + 1]; /* label starts */
	size_t nlabels = 0, p = 0;

	*by = NULL;
	if (len > WIRE_NAME_MAX)
		return LISTS_NONE;
	for (;;) {
		if (p >= len)
			return LISTS_NONE;
		uint8_t c = name[p];
		if (c == 0)
			break;
		if (c > WIRE_LABEL_MAX || len - p - 1 <= c)
			return LISTS_NONE;
		off[nlabels++] = (uint8_t)p;
		p += (size_t)c + 1;
	}

	const struct table *block = &l->set[LISTS_BLOCK];
	const struct table *subs = &l->set[LISTS_BLOCK_SUBS];
	const struct table *allow = &l->set[LISTS_ALLOW];
	const struct table *blocked_by = NULL;
	const uint64_t *blocked_at = NULL, *s;
	uint64_t h = mix(FNV_BASIS, 0);
	/* From the top-level label down: each step adds one label to the
	 * suffix hashed so far.  The first block entry met, the one for the
	 * shortest suffix, is the one that decides. */
	for (size_t i = nlabels; i-- > 0;) {
		const uint8_t *lab = name + off[i];
		for (size_t j = lab[0]; j > 0; j--)
			h = mix(h, lower(lab[j]));
		h = mix(h, lab[0]);
		uint64_t key = key_of(h);
		if (allow->n && (s = table_find(allow, key))) {
			*by = allow;
			*at = s;
			return LISTS_ALLOWED;
		}
		if (!blocked_by) {
			if ((s = table_find(block, key))) {
				blocked_by = block;
				blocked_at = s;
			} else if (i > 0 && (s = table_find(subs, key))) {
				blocked_by = subs;
				blocked_at = s;
			}
		}
		if (blocked_by && allow->n == 0)
			break;
	}
	*by = blocked_by;
	*at = blocked_at;
	return blocked_by ? LISTS_BLOCKED : LISTS_NONE;
}

enum lists_verdict lists_match(const struct lists *l, const uint8_t *name,
			       size_t len)
{
	const struct table *by;
	const uint64_t *at;

	return decide(l, name, len, &by, &at);
}

enum lists_verdict lists_match_source(const struct lists *l,
				      const uint8_t *name, size_t len,
				      unsigned *source)
{
	const struct table *by;
	const uint64_t *at;
	enum lists_verdict v = decide(l, name, len, &by, &at);

	if (by)
		*source = table_source(by, at);
	return v;
}

unsigned lists_source_count(const struct lists *l)
{
	return l->nsources ? l->nsources : 1;
}

static size_t count_of(const struct lists *l, enum lists_kind kind)
{
	return l->frozen ? l->set[kind].n : l->build[kind].n;
}

size_t lists_count(const struct lists *l)
{
	return count_of(l, LISTS_BLOCK) + count_of(l, LISTS_BLOCK_SUBS);
}

size_t lists_allow_count(const struct lists *l)
{
	return count_of(l, LISTS_ALLOW);
}

size_t lists_memory(const struct lists *l)
{
	size_t n = sizeof(*l) + l->start_cap * sizeof(*l->start);
	for (int i = 0; i < NKINDS; i++) {
		n += (l->build[i].cap + l->set[i].len) * sizeof(uint64_t);
		if (l->set[i].src)
			n += l->set[i].len * sizeof(uint16_t);
	}
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
			      enum lists_kind kind, bool hosts)
{
	if (ignored_name(t, n)) {
		ld->st->ignored++;
		return LINE_OK;
	}
	enum outcome o = add_name(ld->l, t, n, kind, &ld->why);
	if (o == LINE_OK) {
		if (kind == LISTS_ALLOW)
			ld->st->allows++;
		else
			ld->st->entries++;
	} else if (o == LINE_BAD && hosts && ld->why == why_numeric) {
		ld->st->ignored++; /* "0.0.0.0 0.0.0.0" and the like */
		return LINE_OK;
	}
	return o;
}

/* Options that leave a DNS rule meaning "block (or allow) this domain". */
static bool option_harmless(const char *o, size_t n)
{
	static const char *const ok[] = {"important", "all", "document", "doc"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strlen(ok[i]) == n && strncasecmp(o, ok[i], n) == 0)
			return true;
	return false;
}

/* "||name^", after the "||", with "@@" already taken off for allow. */
static enum outcome adblock_rule(struct loader *ld, const char *p,
				 const char *end, enum lists_kind kind)
{
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
	if (q < end) { /* $options */
		for (const char *o = q + 1;;) {
			const char *c = memchr(o, ',', (size_t)(end - o));
			const char *oe = c ? c : end;
			if (oe == o) {
				ld->why = "empty adblock option";
				return LINE_BAD;
			}
			if (!option_harmless(o, (size_t)(oe - o))) {
				ld->why = "adblock option that changes the "
					  "rule's meaning";
				return LINE_SKIPPED;
			}
			if (!c)
				break;
			o = c + 1;
		}
	}
	return take_name(ld, name, n, kind, false);
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
	while (next_token(&p, end, &t, &n)) {
		enum outcome o = take_name(ld, t, n, LISTS_BLOCK, true);
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
	if (end - p >= 4 && memcmp(p, "@@||", 4) == 0)
		return adblock_rule(ld, p + 4, end, LISTS_ALLOW);
	if (end - p >= 2 && memcmp(p, "||", 2) == 0)
		return adblock_rule(ld, p + 2, end, LISTS_BLOCK);
	if (*p == '|' || *p == '/' || *p == '@') {
		ld->why = "adblock rule other than ||domain^ "
			  "(URL, regular expression)";
		return LINE_BAD;
	}
	const char *q = p, *t;
	size_t tn;
	next_token(&q, end, &t, &tn);
	if (q < end)
		return hosts_line(ld, p, end);
	return take_name(ld, t, tn, LISTS_BLOCK, false);
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
