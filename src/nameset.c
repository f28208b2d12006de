/*
 * nameset.c - open-addressing hash table of lower-case wire names.
 *
 * Each entry owns a copy of its name.  Lookups lower-case the query name
 * once on the stack and probe each suffix, longest first: O(labels) probes
 * and no allocation.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "nameset.h"
#include "wire.h"

struct entry {
	uint8_t *name; /* NULL: empty slot */
	size_t len;
	uint32_t value;
};

struct nameset {
	struct entry *slot;
	size_t mask;
	size_t used;
};

static uint32_t hash(const uint8_t *name, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ name[i]) * 16777619u;
	return h;
}

struct nameset *nameset_new(void)
{
	struct nameset *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->slot = calloc(16, sizeof(*s->slot));
	if (!s->slot) {
		free(s);
		return NULL;
	}
	s->mask = 15;
	return s;
}

void nameset_free(struct nameset *s)
{
	if (!s)
		return;
	for (size_t i = 0; i <= s->mask; i++)
		free(s->slot[i].name);
	free(s->slot);
	free(s);
}

static struct entry *probe(const struct nameset *s, const uint8_t *lname,
			   size_t len)
{
	for (size_t i = hash(lname, len) & s->mask;; i = (i + 1) & s->mask) {
		struct entry *e = &s->slot[i];
		if (!e->name ||
		    (e->len == len && memcmp(e->name, lname, len) == 0))
			return e;
	}
}

static bool grow(struct nameset *s)
{
	size_t cap = (s->mask + 1) * 2;
	struct entry *old = s->slot, *slot = calloc(cap, sizeof(*slot));
	size_t oldcap = s->mask + 1;

	if (!slot)
		return false;
	s->slot = slot;
	s->mask = cap - 1;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].name)
			*probe(s, old[i].name, old[i].len) = old[i];
	free(old);
	return true;
}

bool nameset_add(struct nameset *s, const uint8_t *name, size_t len,
		 uint32_t value)
{
	uint8_t l[WIRE_NAME_MAX];

	if (len > WIRE_NAME_MAX)
		return false;
	if ((s->used + 1) * 2 > s->mask + 1 && !grow(s))
		return false;
	wire_name_lower(l, name, len);
	struct entry *e = probe(s, l, len);
	if (e->name)
		return true;
	if (!(e->name = malloc(len)))
		return false;
	memcpy(e->name, l, len);
	e->len = len;
	e->value = value;
	s->used++;
	return true;
}

bool nameset_add_text(struct nameset *s, const char *text, uint32_t value,
		      const char **why)
{
	uint8_t name[WIRE_NAME_MAX];
	int len = wire_name_from_text(text, NULL, 0, name, why);

	if (len < 0)
		return false;
	if (!nameset_add(s, name, (size_t)len, value)) {
		*why = "out of memory";
		return false;
	}
	return true;
}

bool nameset_match(const struct nameset *s, const uint8_t *name, size_t len,
		   uint32_t *value, size_t *matched_len)
{
	uint8_t l[WIRE_NAME_MAX];

	if (!s || s->used == 0 || len > WIRE_NAME_MAX)
		return false;
	wire_name_lower(l, name, len);
	for (size_t off = 0; off < len; off += (size_t)l[off] + 1) {
		const struct entry *e = probe(s, l + off, len - off);
		if (e->name) {
			*value = e->value;
			if (matched_len)
				*matched_len = len - off;
			return true;
		}
		if (l[off] == 0)
			break;
	}
	return false;
}
