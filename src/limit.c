/*
 * limit.c - per-client token buckets and in-flight counts in a fixed,
 * set-associative table.
 *
 * LIMIT_ROWS rows of LIMIT_WAYS slots, the row chosen by a seeded hash of
 * the address.  Tokens are kept in thousandths so that a rate below one
 * per millisecond still refills smoothly.
 */
#include <config.h>

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "limit.h"

#define LIMIT_ROWS 4096 /* a power of two */
#define LIMIT_WAYS 4

struct limit_client {
	uint8_t addr[16];       /* IPv4 in the first 4, or an IPv6 /64 */
	uint8_t family;         /* 0: free */
	uint32_t inflight;
	uint64_t tokens_milli;  /* tokens * 1000 */
	uint64_t last_ms;       /* of the last refill */
	uint32_t refused;       /* for slip */
};

struct limit {
	uint32_t seed;
	struct limit_client slot[LIMIT_ROWS][LIMIT_WAYS];
};

struct limit *limit_new(void)
{
	struct limit *l = calloc(1, sizeof(*l));
	if (l)
		l->seed = hash_seed((uint32_t)(uintptr_t)l);
	return l;
}

void limit_free(struct limit *l)
{
	free(l);
}

/* The client's key: its IPv4 address, or its IPv6 /64 (an IPv4 address
 * mapped into IPv6 counts as IPv4). */
static bool key_of(const struct sockaddr *sa, uint8_t *key, uint8_t *family)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					   0xff, 0xff};
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		*family = AF_INET;
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	const uint8_t *a =
		((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	if (memcmp(a, mapped, 12) == 0) {
		memcpy(key, a + 12, 4);
		*family = AF_INET;
	} else {
		memcpy(key, a, 8);
		*family = AF_INET6;
	}
	return true;
}

struct limit_client *limit_client(struct limit *l, const struct sockaddr *sa,
				  uint64_t now_ms)
{
	uint8_t key[16], family;

	if (!key_of(sa, key, &family))
		return NULL;
	struct limit_client *row =
		l->slot[hash_bytes(l->seed, key, 16) & (LIMIT_ROWS - 1)];
	struct limit_client *spare = NULL;
	for (int i = 0; i < LIMIT_WAYS; i++) {
		struct limit_client *c = &row[i];
		if (c->family == family && memcmp(c->addr, key, 16) == 0)
			return c;
		/* A free slot, or the idlest client with nothing upstream. */
		if (c->inflight == 0 &&
		    (!spare || c->family == 0 ||
		     (spare->family != 0 && c->last_ms < spare->last_ms)))
			spare = c;
	}
	if (!spare)
		return NULL;
	memset(spare, 0, sizeof(*spare));
	memcpy(spare->addr, key, 16);
	spare->family = family;
	spare->last_ms = now_ms;
	spare->tokens_milli = UINT64_MAX; /* full: set on first use */
	return spare;
}

enum limit_verdict limit_rate(struct limit_client *c,
			      const struct limit_conf *conf, uint64_t now_ms)
{
	if (conf->qps == 0)
		return LIMIT_PASS;
	uint64_t cap = (uint64_t)(conf->burst ? conf->burst : 2 * conf->qps) *
		       1000;
	if (c->tokens_milli > cap)
		c->tokens_milli = cap;
	if (now_ms > c->last_ms) {
		/* qps tokens a second: qps thousandths a millisecond. */
		uint64_t add = (now_ms - c->last_ms) * conf->qps;
		c->tokens_milli = add >= cap - c->tokens_milli
					  ? cap
					  : c->tokens_milli + add;
		c->last_ms = now_ms;
	}
	if (c->tokens_milli >= 1000) {
		c->tokens_milli -= 1000;
		return LIMIT_PASS;
	}
	c->refused++;
	if (conf->slip && c->refused % conf->slip == 0)
		return LIMIT_SLIP;
	return LIMIT_DROP;
}

bool limit_inflight_take(struct limit_client *c, const struct limit_conf *conf)
{
	if (conf->inflight && c->inflight >= conf->inflight)
		return false;
	c->inflight++;
	return true;
}

void limit_inflight_done(struct limit_client *c)
{
	if (c->inflight)
		c->inflight--;
}
