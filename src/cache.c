/*
 * cache.c - reply cache: chained hash table plus an LRU list.
 *
 * One allocation per entry holds the key and the reply.  Expired entries
 * are dropped when found; eviction takes the least recently used one.  The
 * stored reply keeps the TTLs it arrived with; a hit subtracts the whole
 * seconds it has spent here, so every client sees the time left.
 */
#include <config.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "hash.h"

struct entry {
	struct entry *hnext;         /* hash chain */
	struct entry *prev, *next;   /* LRU: head is the most recent */
	uint32_t hash;
	uint32_t ttl;                /* seconds it was stored for */
	uint64_t stored_ms;
	uint64_t expires_ms;
	uint16_t klen;
	uint16_t len;
	uint8_t data[];              /* key, then reply */
};

/* One lock's worth of the cache: a hash table and an LRU list. */
struct stripe {
	pthread_mutex_t mu;
	struct cache_limits lim;     /* size is this stripe's share */
	struct entry **bucket;
	size_t nbuckets;             /* a power of two */
	struct entry *head, *tail;
	struct cache_stats st;
};

struct cache {
	uint32_t seed; /* so clients cannot aim names at one bucket */
	unsigned nstripes;           /* a power of two */
	struct stripe stripe[];
};

/* Small caches are one stripe, so that their size is exact (an LRU of 2
 * stays an LRU of 2); large ones are split so that loops rarely meet. */
#define CACHE_STRIPES 16
#define CACHE_STRIPE_MIN 1024

static uint32_t hash(uint32_t seed, const uint8_t *key, size_t len)
{
	return hash_bytes(seed, key, len);
}

uint32_t cache_key_hash(const struct cache *c, const uint8_t *key,
			size_t klen)
{
	return hash(c->seed, key, klen);
}

static size_t buckets_for(size_t size)
{
	size_t n = 64;
	while (n < size && n < ((size_t)1 << 24))
		n *= 2;
	return n;
}

/* Move every entry to a table of n buckets (false: out of memory, the
 * old table stays). */
static bool resize(struct stripe *c, size_t n)
{
	struct entry **b = calloc(n, sizeof(*b));
	if (!b)
		return false;
	for (struct entry *e = c->head; e; e = e->next) {
		struct entry **slot = &b[e->hash & (n - 1)];
		e->hnext = *slot;
		*slot = e;
	}
	free(c->bucket);
	c->bucket = b;
	c->nbuckets = n;
	return true;
}

/* This stripe's share of lim. */
static void share(const struct cache *c, const struct cache_limits *lim,
		  struct cache_limits *out)
{
	*out = *lim;
	out->size = (lim->size + c->nstripes - 1) / c->nstripes;
}

struct cache *cache_new(const struct cache_limits *lim)
{
	unsigned n = lim->size >= CACHE_STRIPE_MIN ? CACHE_STRIPES : 1;
	struct cache *c = calloc(1, sizeof(*c) + n * sizeof(c->stripe[0]));
	if (!c)
		return NULL;
	c->nstripes = n;
	c->seed = hash_seed((uint32_t)(uintptr_t)c);
	for (unsigned i = 0; i < n; i++) {
		struct stripe *st = &c->stripe[i];
		share(c, lim, &st->lim);
		pthread_mutex_init(&st->mu, NULL);
		if (!resize(st, buckets_for(st->lim.size))) {
			for (unsigned j = 0; j < i; j++)
				free(c->stripe[j].bucket);
			free(c);
			return NULL;
		}
	}
	return c;
}

static struct stripe *stripe_of(struct cache *c, uint32_t h)
{
	/* The low bits pick the bucket: use the high ones here. */
	return &c->stripe[(h >> 24) & (c->nstripes - 1)];
}

static void lru_unlink(struct stripe *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct stripe *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	else
		c->tail = e;
	c->head = e;
}

static void drop(struct stripe *c, struct entry *e)
{
	struct entry **pp = &c->bucket[e->hash & (c->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	c->st.entries--;
	c->st.bytes -= sizeof(*e) + e->klen + e->len;
	free(e);
}

void cache_clear(struct cache *c)
{
	cache_flush(c);
}

size_t cache_flush(struct cache *c)
{
	size_t n = 0;

	for (unsigned i = 0; i < c->nstripes; i++) {
		struct stripe *st = &c->stripe[i];
		pthread_mutex_lock(&st->mu);
		n += st->st.entries;
		while (st->head)
			drop(st, st->head);
		pthread_mutex_unlock(&st->mu);
	}
	return n;
}

size_t cache_flush_name(struct cache *c, const uint8_t *name, size_t len)
{
	uint8_t lower[WIRE_NAME_MAX];
	size_t n = 0;

	if (len == 0 || len > WIRE_NAME_MAX)
		return 0;
	/* Keys begin with the lowered name (cache_key), and a wire name
	 * ends at its root label, so a prefix match is a whole-name match. */
	wire_name_lower(lower, name, len);
	for (unsigned i = 0; i < c->nstripes; i++) {
		struct stripe *st = &c->stripe[i];
		pthread_mutex_lock(&st->mu);
		for (struct entry *e = st->head, *next; e; e = next) {
			next = e->next;
			if (e->klen > len && memcmp(e->data, lower, len) == 0) {
				drop(st, e);
				n++;
			}
		}
		pthread_mutex_unlock(&st->mu);
	}
	return n;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	cache_clear(c);
	for (unsigned i = 0; i < c->nstripes; i++) {
		free(c->stripe[i].bucket);
		pthread_mutex_destroy(&c->stripe[i].mu);
	}
	free(c);
}

void cache_set_limits(struct cache *c, const struct cache_limits *lim)
{
	for (unsigned i = 0; i < c->nstripes; i++) {
		struct stripe *st = &c->stripe[i];
		pthread_mutex_lock(&st->mu);
		share(c, lim, &st->lim);
		while (st->st.entries > st->lim.size && st->tail) {
			drop(st, st->tail);
			st->st.evicted++;
		}
		if (buckets_for(st->lim.size) > st->nbuckets)
			resize(st, buckets_for(st->lim.size)); /* or slower */
		pthread_mutex_unlock(&st->mu);
	}
}

size_t cache_key(uint8_t *key, const struct wire_query *q, size_t group,
		 uint32_t gen)
{
	wire_name_lower(key, q->qname, q->qname_len);
	size_t n = q->qname_len;
	wire_set16(key + n, q->qtype);
	wire_set16(key + n + 2, q->qclass);
	key[n + 4] = (uint8_t)((q->has_opt ? 1 : 0) | (q->do_bit ? 2 : 0) |
			       ((q->hdr.flags & WIRE_CD) ? 4 : 0) |
			       ((q->hdr.flags & WIRE_RD) ? 8 : 0) |
			       ((q->hdr.flags & WIRE_AD) ? 16 : 0) |
			       /* signed replies are never stored (RFC 8945
				* 5.3); a signed query never meets an
				* unsigned one's entry */
			       (q->has_tsig ? 32 : 0));
	wire_set16(key + n + 5, (uint16_t)group);
	wire_set32(key + n + 7, gen);
	return n + 11;
}

/* The time a reply may be kept, in seconds (0: not at all); *negative
 * says whether it is a negative answer. */
static uint32_t reply_ttl(const struct cache_limits *lim, const uint8_t *m,
			  size_t len, bool *negative)
{
	struct wire_rrs it;
	struct wire_rr rr;
	size_t qend = WIRE_HEADER_LEN;
	uint32_t ttl = UINT32_MAX, neg = UINT32_MAX;
	bool has_data = false;

	*negative = false;
	if (len > CACHE_REPLY_MAX || !wire_rrs_begin(&it, m, len) ||
	    (it.hdr.flags & WIRE_TC) || it.hdr.qdcount != 1)
		return 0;
	unsigned rc = WIRE_RCODE(it.hdr.flags);
	if (rc != WIRE_NOERROR && rc != WIRE_NXDOMAIN)
		return 0;
	/* The question is copied over on every hit: it must stand as is. */
	int n = wire_read_name(m, len, &qend, NULL);
	if (n < 0 || qend != WIRE_HEADER_LEN + (size_t)n)
		return 0;
	uint16_t qtype = wire_get16(m + it.question_end - 4);
	while (wire_rrs_next(&it, &rr)) {
		if (rr.type == WIRE_T_OPT)
			continue; /* its TTL field holds flags */
		/* RFC 8945 5.3: a signed reply answers one request only;
		 * RFC 2930 2: TKEY records MUST NOT be cached. */
		if (rr.type == WIRE_T_TSIG || rr.type == WIRE_T_TKEY)
			return 0;
		uint32_t t = wire_get32(m + rr.ttl_at);
		/* RFC 2181 8: such a TTL means zero, and zero is not kept
		 * (min_ttl must not turn it into a lifetime). */
		if (t > INT32_MAX)
			return 0;
		if (rr.section == WIRE_ADDITIONAL)
			continue;
		/* RFC 2308 5: a negative answer lives min(SOA TTL, minimum) */
		if (rr.type == WIRE_T_SOA && rr.section == WIRE_AUTHORITY &&
		    rr.rdlen >= 22) {
			uint32_t min = wire_get32(m + rr.rdata + rr.rdlen - 4);
			if (t < min)
				min = t;
			if (min < neg)
				neg = min;
			continue;
		}
		/* RFC 2308 2.2: NODATA is the absence of the type asked
		 * for, even at the end of a CNAME chain. */
		if (rr.section == WIRE_ANSWER &&
		    (rr.type == qtype || qtype == WIRE_T_ANY))
			has_data = true;
		if (t < ttl)
			ttl = t; /* answer records, CNAMEs of a negative answer too */
	}
	if (it.bad)
		return 0;
	if (rc == WIRE_NXDOMAIN || !has_data) {
		*negative = true;
		if (neg == UINT32_MAX)
			return 0; /* no SOA: RFC 2308 5 says do not cache */
		if (neg > lim->negative_ttl)
			neg = lim->negative_ttl;
		/* negative_ttl is a ceiling, min_ttl does not raise it */
		return ttl < neg ? ttl : neg;
	}
	if (ttl > lim->max_ttl)
		ttl = lim->max_ttl;
	if (ttl < lim->min_ttl)
		ttl = lim->min_ttl;
	return ttl;
}

/*
 * Rewrite every TTL but OPT's (its TTL field holds flags) as
 * clamp(ttl - elapsed, lo, hi): on storing, TTLs are brought within the
 * cache's bounds so nobody downstream keeps a record longer than this
 * cache does; on a hit, they are aged by the seconds spent here.
 */
static void rewrite_ttls(uint8_t *m, size_t len, uint32_t elapsed,
			 uint32_t lo, uint32_t hi)
{
	struct wire_rrs it;
	struct wire_rr rr;

	if (!wire_rrs_begin(&it, m, len))
		return;
	while (wire_rrs_next(&it, &rr)) {
		if (rr.type == WIRE_T_OPT)
			continue;
		uint32_t t = wire_get32(m + rr.ttl_at);
		t = t > elapsed ? t - elapsed : 0;
		t = t < lo ? lo : t;
		t = t > hi ? hi : t;
		wire_set32(m + rr.ttl_at, t);
	}
}

static struct entry *find(struct stripe *c, const uint8_t *key, size_t klen,
			  uint32_t h)
{
	for (struct entry *e = c->bucket[h & (c->nbuckets - 1)]; e;
	     e = e->hnext)
		if (e->hash == h && e->klen == klen &&
		    memcmp(e->data, key, klen) == 0)
			return e;
	return NULL;
}

static void store(struct stripe *c, uint32_t h, const uint8_t *key,
		  size_t klen, uint8_t *reply, size_t len, uint64_t now_ms)
{
	if (c->lim.size == 0 || len > UINT16_MAX || klen > CACHE_KEY_MAX)
		return;
	bool negative;
	uint32_t ttl = reply_ttl(&c->lim, reply, len, &negative);
	if (ttl == 0)
		return;
	/* Nothing in a negative answer is raised to min_ttl (RFC 2308 5:
	 * the SOA says how long the absence holds). */
	rewrite_ttls(reply, len, 0, negative ? 0 : c->lim.min_ttl, ttl);
	struct entry *old = find(c, key, klen, h);
	if (old)
		drop(c, old);
	struct entry *e = malloc(sizeof(*e) + klen + len);
	if (!e)
		return; /* not cached: fine */
	e->hash = h;
	e->ttl = ttl;
	e->stored_ms = now_ms;
	e->expires_ms = now_ms + (uint64_t)ttl * 1000;
	e->klen = (uint16_t)klen;
	e->len = (uint16_t)len;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, reply, len);
	struct entry **b = &c->bucket[h & (c->nbuckets - 1)];
	e->hnext = *b;
	*b = e;
	lru_push(c, e);
	c->st.entries++;
	c->st.stored++;
	c->st.bytes += sizeof(*e) + klen + len;
	while (c->st.entries > c->lim.size && c->tail) {
		drop(c, c->tail);
		c->st.evicted++;
	}
}

void cache_store(struct cache *c, const uint8_t *key, size_t klen,
		 uint8_t *reply, size_t len, uint64_t now_ms)
{
	uint32_t h = hash(c->seed, key, klen);
	struct stripe *st = stripe_of(c, h);

	pthread_mutex_lock(&st->mu);
	store(st, h, key, klen, reply, len, now_ms);
	pthread_mutex_unlock(&st->mu);
}

/* The entry for key, dropping it when it is past its stale window. */
static struct entry *live(struct stripe *c, const uint8_t *key, size_t klen,
			  uint32_t h, uint64_t now_ms)
{
	struct entry *e = find(c, key, klen, h);
	if (e && e->expires_ms + (uint64_t)c->lim.serve_stale * 1000 <= now_ms) {
		drop(c, e);
		e = NULL;
	}
	return e;
}

static size_t lookup(struct stripe *c, const uint8_t *key, size_t klen,
		     uint32_t h, uint64_t now_ms, uint8_t *out, size_t cap,
		     struct cache_hit *hit)
{
	if (c->lim.size == 0)
		return 0;
	struct entry *e = live(c, key, klen, h, now_ms);
	if (e && e->expires_ms <= now_ms) {
		hit->stale = true;
		e = NULL;
	}
	if (!e || e->len > cap) {
		c->st.misses++;
		return 0;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	memcpy(out, e->data + e->klen, e->len);
	rewrite_ttls(out, e->len, (uint32_t)((now_ms - e->stored_ms) / 1000),
		     0, UINT32_MAX);
	/* Prefetch in the last tenth of the TTL (and never for TTLs so
	 * short that a refresh would be due at once). */
	hit->prefetch = e->ttl >= 10 &&
			(e->expires_ms - now_ms) * 10 <= (uint64_t)e->ttl * 1000;
	c->st.hits++;
	return e->len;
}

size_t cache_lookup(struct cache *c, const uint8_t *key, size_t klen,
		    uint64_t now_ms, uint8_t *out, size_t cap,
		    struct cache_hit *hit)
{
	struct cache_hit ignored;
	uint32_t h = hash(c->seed, key, klen);
	struct stripe *st = stripe_of(c, h);

	if (!hit)
		hit = &ignored;
	*hit = (struct cache_hit){false, false};
	pthread_mutex_lock(&st->mu);
	size_t n = lookup(st, key, klen, h, now_ms, out, cap, hit);
	pthread_mutex_unlock(&st->mu);
	return n;
}

size_t cache_lookup_stale(struct cache *c, const uint8_t *key, size_t klen,
			  uint64_t now_ms, uint32_t ttl, uint8_t *out,
			  size_t cap)
{
	uint32_t h = hash(c->seed, key, klen);
	struct stripe *st = stripe_of(c, h);
	size_t n = 0;

	pthread_mutex_lock(&st->mu);
	struct entry *e = st->lim.size ? live(st, key, klen, h, now_ms) : NULL;
	if (e && e->len <= cap) {
		memcpy(out, e->data + e->klen, e->len);
		rewrite_ttls(out, e->len, 0, ttl, ttl);
		n = e->len;
	}
	pthread_mutex_unlock(&st->mu);
	return n;
}

void cache_get_stats(struct cache *c, struct cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < c->nstripes; i++) {
		struct stripe *st = &c->stripe[i];
		pthread_mutex_lock(&st->mu);
		out->hits += st->st.hits;
		out->misses += st->st.misses;
		out->stored += st->st.stored;
		out->evicted += st->st.evicted;
		out->entries += st->st.entries;
		out->bytes += st->st.bytes;
		pthread_mutex_unlock(&st->mu);
	}
}
