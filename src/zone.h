/*
 * zone.h - the local data store: names -> RRsets, zone apexes, wildcards.
 *
 * A store is built once from a loaded configuration and is immutable
 * afterwards, so readers need no locks; a reload builds a new one.  Names
 * are keyed in lower-case wire form; lookups cost one hash probe per label.
 */
#ifndef SPLITDNS_ZONE_H
#define SPLITDNS_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct conf;
struct zone;
struct zone_node;

struct zone_rdata {
	uint16_t len;
	const uint8_t *data;
	int line; /* where the record stands in its zone file */
};

struct zone_rrset {
	uint16_t type;
	uint32_t ttl; /* the smallest TTL of its records (RFC 2181 5.2) */
	size_t count;
	struct zone_rdata *rdata;
};

struct zone_apex {
	uint8_t name[WIRE_NAME_MAX]; /* as written in the zone file */
	size_t name_len;
	bool authoritative;
	const uint8_t *soa; /* SOA RDATA, the zone's own or synthesized */
	uint16_t soa_len;
	uint32_t soa_ttl;
	uint32_t negative_ttl; /* min(SOA TTL, SOA minimum), RFC 2308 5 */
	const char *file;
};

enum zone_match {
	ZONE_NOT_LOCAL, /* no local data: forward */
	ZONE_EXISTS,    /* the name exists (maybe without data: ENT) */
	ZONE_WILDCARD,  /* synthesized from the node "*.<closest encloser>" */
	ZONE_NXDOMAIN,  /* under an authoritative zone, no such name */
};

struct zone_result {
	enum zone_match match;
	const struct zone_node *node;  /* EXISTS, WILDCARD */
	const struct zone_apex *apex;  /* all but NOT_LOCAL */
};

/*
 * Build a store from cfg's zones.  Returns NULL with "file:line: message"
 * in err when a record is bad.  The store copies what it needs; cfg may be
 * freed afterwards.  Caller frees with zone_free.
 */
struct zone *zone_build(const struct conf *cfg, char *err, size_t errlen);

void zone_free(struct zone *z);

/* Look name (wire form, any case) up, following RFC 4592 for wildcards. */
void zone_lookup(const struct zone *z, const uint8_t *name, size_t len,
		 struct zone_result *r);

/* The node's RRset of type, or NULL. */
const struct zone_rrset *zone_find_rrset(const struct zone_node *n,
					 uint16_t type);

/* All of a node's RRsets: returns how many, *out points at the first. */
size_t zone_rrsets(const struct zone_node *n, const struct zone_rrset **out);

/* Number of names (nodes) in the store. */
size_t zone_size(const struct zone *z);

#endif
