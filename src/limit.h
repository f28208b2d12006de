/*
 * limit.h - what each client may take: a token bucket of queries per
 * second, and a cap on its queries waiting for upstream answers.
 *
 * A client is an address (IPv4, or IPv6 by its /64, so that one host
 * cannot escape by walking its interface identifiers).  The table has a
 * fixed number of slots, allocated once: a slot whose client has nothing
 * in flight and a full bucket is taken over by a new client when its
 * bucket row is full.  When no slot can be had, the client goes
 * unlimited rather than refused (counted by the caller).  One table per
 * worker loop; not thread-safe.
 */
#ifndef SPLITDNS_LIMIT_H
#define SPLITDNS_LIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct limit;

/* The limits; 0 turns one off. */
struct limit_conf {
	uint32_t qps;      /* queries per second per client (UDP) */
	uint32_t burst;    /* bucket size; 0: twice qps */
	uint32_t inflight; /* queries upstream at once per client */
	uint32_t slip;     /* every slip-th refused query gets TC=1 */
};

/* One client's slot; valid until limit_free (slots are never moved). */
struct limit_client;

enum limit_verdict {
	LIMIT_PASS,  /* go on */
	LIMIT_DROP,  /* over the rate: no answer */
	LIMIT_SLIP,  /* over the rate: answer TC=1 so a real client retries
			over TCP, which a spoofer cannot */
};

/* NULL when out of memory. */
struct limit *limit_new(void);
void limit_free(struct limit *l);

/* The slot for sa (AF_INET or AF_INET6), NULL when the table is full. */
struct limit_client *limit_client(struct limit *l, const struct sockaddr *sa,
				  uint64_t now_ms);

/* Take one token for a query at now_ms. */
enum limit_verdict limit_rate(struct limit_client *c,
			      const struct limit_conf *conf, uint64_t now_ms);

/* Count a query going upstream; false when the client is at its cap.
 * Every true is matched by one limit_inflight_done. */
bool limit_inflight_take(struct limit_client *c, const struct limit_conf *conf);
void limit_inflight_done(struct limit_client *c);

#endif
