/*
 * hash.h - the one hash function of splitdns: FNV-1a with a per-table
 * seed (so that clients cannot aim names or addresses at one bucket),
 * for the cache, the in-flight table and the client table.
 */
#ifndef SPLITDNS_HASH_H
#define SPLITDNS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>

static inline uint32_t hash_bytes(uint32_t seed, const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u ^ seed;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h ^ (h >> 15);
}

/* A random seed; falls back to fallback when getrandom fails. */
static inline uint32_t hash_seed(uint32_t fallback)
{
	uint32_t s;
	if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
		s = fallback;
	return s;
}

#endif
