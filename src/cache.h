/*
 * cache.h - a bounded cache of upstream replies.
 *
 * Keyed by (name, type, class, EDNS present, DO, CD, RD, AD, TSIG
 * present, upstream group);
 * entries live for the reply's smallest TTL (RFC 2181 5.2, RFC 2308 5 for
 * negative answers) within configured bounds, and the least recently used
 * entry goes when the cache is full.  A hit is copied into the caller's
 * buffer with its TTLs decreased by the time spent in the cache; the hit
 * path allocates nothing.
 *
 * One cache is shared by every worker loop: it is split into stripes by
 * key hash, each with its own lock and LRU list, so that loops rarely
 * wait for each other (a lock is held for one lookup or one store).
 * Expired entries stay for serve_stale seconds more, to be served stale
 * (RFC 8767) when the upstreams fail.
 */
#ifndef SPLITDNS_CACHE_H
#define SPLITDNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct cache;

/* Larger replies (refetched over TCP) are not cached, which bounds the
 * memory to about size * 4 KiB. */
#define CACHE_REPLY_MAX 4096

/* Room for any key cache_key builds. */
#define CACHE_KEY_MAX (WIRE_NAME_MAX + 12)

struct cache_limits {
	size_t size;           /* entries; 0 disables the cache */
	uint32_t min_ttl;      /* seconds */
	uint32_t max_ttl;
	uint32_t negative_ttl; /* cap for NXDOMAIN and NODATA */
	uint32_t serve_stale;  /* seconds past expiry kept; 0: none */
};

/* What cache_lookup found besides the reply. */
struct cache_hit {
	bool stale;     /* no fresh answer, but one within serve_stale */
	bool prefetch;  /* fresh, in the last tenth of its TTL */
};

struct cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t stored;
	uint64_t evicted;
	size_t entries;
	size_t bytes;
};

/* NULL when out of memory.  Thread-safe from here on, but for
 * cache_free. */
struct cache *cache_new(const struct cache_limits *lim);
void cache_free(struct cache *c);

/* New limits (a reload); entries over the new size are evicted. */
void cache_set_limits(struct cache *c, const struct cache_limits *lim);

/* Forget everything (upstreams changed on reload). */
void cache_clear(struct cache *c);

/* Forget everything and return how many entries went (splitdnsctl flush).
 * Any thread; each stripe is locked in turn, so queries go on meanwhile. */
size_t cache_flush(struct cache *c);

/* Forget every entry for the wire name name (len octets, any letter
 * case): all types, classes, flags and upstream groups.  Returns how many
 * went.  Any thread; it walks every stripe (the key hash covers more than
 * the name), each under its own lock. */
size_t cache_flush_name(struct cache *c, const uint8_t *name, size_t len);

/* The key of query q sent to upstream group of upstream generation gen
 * (answers from servers that a reload replaced never match); returns its
 * length. */
size_t cache_key(uint8_t *key, const struct wire_query *q, size_t group,
		 uint32_t gen);

/* A hash of key, seeded per cache (for tables keyed like the cache). */
uint32_t cache_key_hash(const struct cache *c, const uint8_t *key,
			size_t klen);

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
 * Find the fresh reply for key.  On a hit it is copied to out (cap bytes)
 * with TTLs decreased, ID and question left as stored (the caller sets
 * them), and its length returned; 0 on a miss or when it does not fit.
 * hit (may be NULL) says whether a stale answer is there on a miss, and
 * whether a hit is due for a prefetch.
 */
size_t cache_lookup(struct cache *c, const uint8_t *key, size_t klen,
		    uint64_t now_ms, uint8_t *out, size_t cap,
		    struct cache_hit *hit);

/*
 * The reply for key, fresh or expired within serve_stale, with every TTL
 * set to ttl (RFC 8767 4: 30 seconds); 0 when there is none.
 */
size_t cache_lookup_stale(struct cache *c, const uint8_t *key, size_t klen,
			  uint64_t now_ms, uint32_t ttl, uint8_t *out,
			  size_t cap);

/* The counters summed over the stripes. */
void cache_get_stats(struct cache *c, struct cache_stats *st);

#endif
