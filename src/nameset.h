/*
 * nameset.h - a small immutable map from domain names to values, with
 * exact and longest-suffix lookups.
 *
 * For the few to few thousand names of forward rules, private domains and
 * rebind exceptions; names are kept lower-case in wire form.  Blocklists
 * with millions of names use the lists module instead.
 */
#ifndef SPLITDNS_NAMESET_H
#define SPLITDNS_NAMESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nameset;

struct nameset *nameset_new(void);
void nameset_free(struct nameset *s);

/* Add name (wire form, any case) with value; a name added twice keeps its
 * first value.  Returns false when out of memory. */
bool nameset_add(struct nameset *s, const uint8_t *name, size_t len,
		 uint32_t value);

/* Add a name given as text (absolute, trailing dot optional).  Returns
 * false with a reason in *why. */
bool nameset_add_text(struct nameset *s, const char *text, uint32_t value,
		      const char **why);

/* The value of the longest of name's suffixes (name included) in the set:
 * true and *value, or false.  *depth (may be NULL) gets the matched
 * suffix's length in octets. */
bool nameset_match(const struct nameset *s, const uint8_t *name, size_t len,
		   uint32_t *value, size_t *matched_len);

#endif
