/*
 * rdata.h - record data in presentation format (RFC 1035 5.1 and each
 * type's RFC) to wire RDATA, for the types a zone file may hold.
 */
#ifndef SPLITDNS_RDATA_H
#define SPLITDNS_RDATA_H

#include <stddef.h>
#include <stdint.h>

#define RDATA_MAX 65535

/* The type code for a mnemonic ("A", "aaaa", ...), or 0 when the type is
 * not one a zone file may hold. */
uint16_t rdata_type_from_text(const char *text);

/* The mnemonic of a type code, or NULL. */
const char *rdata_type_name(uint16_t type);

/*
 * Parse text as RDATA of the given type into out (RDATA_MAX bytes).  Names
 * not ending in "." are relative to origin.  Returns the RDATA length, or
 * -1 with a reason written to why (whylen bytes).
 */
int rdata_from_text(uint16_t type, const char *text, const uint8_t *origin,
		    size_t origin_len, uint8_t *out, char *why, size_t whylen);

#endif
