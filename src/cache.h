/*
 * cache.h - a bounded cache of upstream replies.
 *
 * Keyed by (name, type, class, EDNS present, DO, CD, RD, AD, TSIG
 * present, upstream group);
 * entries live for the reply's smallest TTL (RFC 2181 5.2, RFC 2308 5 for
 * negative answers) within configured bounds, and the least recently used
 * entry goes when the cache is full.  A hit is copied into the caller's
 * buffer with its TTLs decreased by the time spent in the cache; the hit
 * path allocates nothing.  Not thread-safe: one cache per event loop.
 */
#ifndef SPLITDNS_CACHE_H
#define SPLITDNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct cache;

/* Larger replies (refetched over TCP) are not cached, which bounds the
 * memory to about size * 4 KiB. */
#define CACHE_REPLY_MAX 4096

/* Room for any key cache_key builds. */
#define CACHE_KEY_MAX (WIRE_NAME_MAX + 8)

struct cache_limits {
	size_t size;           /* entries; 0 disables the cache */
	uint32_t min_ttl;      /* seconds */
	uint32_t max_ttl;
	uint32_t negative_ttl; /* cap for NXDOMAIN and NODATA */
};

struct cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t stored;
	uint64_t evicted;
	size_t entries;
	size_t bytes;
};

/* NULL when out of memory. */
struct cache *cache_new(const struct cache_limits *lim);
void cache_free(struct cache *c);

/* New limits (a reload); entries over the new size are evicted. */
void cache_set_limits(struct cache *c, const struct cache_limits *lim);

/* Forget everything (upstreams changed on reload). */
void cache_clear(struct cache *c);

/* The key of query q sent to upstream group; returns its length. */
size_t cache_key(uint8_t *key, const struct wire_query *q, size_t group);

/*
 * Remember reply, a checked upstream answer to the query of key, at time
 * now_ms.  Replies that must not be cached (SERVFAIL, TC, no TTL, a
 * negative answer without SOA) are ignored.  The TTLs in reply itself are
 * brought within the cache's bounds, so the client that caused the store
 * sees the same TTLs as the ones served from the cache.
 */
void cache_store(struct cache *c, const uint8_t *key, size_t klen,
		 uint8_t *reply, size_t len, uint64_t now_ms);

/*
 * Find the reply for key.  On a hit it is copied to out (cap bytes) with
 * TTLs decreased, ID and question left as stored (the caller sets them),
 * and its length returned; 0 on a miss or when it does not fit.
 */
size_t cache_lookup(struct cache *c, const uint8_t *key, size_t klen,
		    uint64_t now_ms, uint8_t *out, size_t cap);

void cache_get_stats(const struct cache *c, struct cache_stats *st);

#endif
