/*
 * pkt.h - a buffer for DNS messages written out by hand in the unit
 * tests, octet by octet, so that a test says exactly what is on the wire
 * without using the codec under test to build its own input.
 */
#ifndef SPLITDNS_TESTS_PKT_H
#define SPLITDNS_TESTS_PKT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct pkt {
	uint8_t b[1024];
	size_t len;
};

static inline void put(struct pkt *p, const void *d, size_t n)
{
	memcpy(p->b + p->len, d, n);
	p->len += n;
}

static inline void put16(struct pkt *p, unsigned v)
{
	uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(p, t, 2);
}

static inline void put32(struct pkt *p, unsigned long v)
{
	uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};
	put(p, t, 4);
}

#endif
