/*
 * zone.c - build and query the local data store.
 *
 * Layout: an array of nodes (one per owner name, plus empty non-terminals
 * so that RFC 4592's closest encloser is found by exact lookups), an
 * open-addressing hash table of node indexes keyed by the lower-case wire
 * name, and a second small table of zone apexes.  A lookup hashes the name
 * and then, only when it is absent, each of its suffixes: O(labels) probes
 * and no allocation.  Zone files hold hundreds to thousands of records, so
 * the build favours clarity (one allocation per RDATA) over compactness;
 * blocklists, which reach millions of names, get their own structure.
 */
#include <config.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "errf.h"
#include "rdata.h"
#include "zone.h"

struct zone_node {
	uint8_t name[WIRE_NAME_MAX]; /* lower case */
	size_t len;
	size_t apex;                 /* index into zone.apexes */
	struct zone_rrset *rrsets;
	size_t nrrsets;
};

struct table {
	uint32_t *slot; /* index + 1; 0 = empty */
	size_t mask;
	size_t used;
};

struct zone {
	struct zone_apex *apexes;
	uint8_t (*apex_lname)[WIRE_NAME_MAX];
	size_t napexes;
	struct zone_node *nodes;
	size_t nnodes;
	size_t capnodes;
	struct table names;
	struct table apex_names;
	char **files; /* zone file paths, owned */
	uint8_t *scratch; /* RDATA_MAX bytes, only while building */
	uint32_t *ttls;   /* each apex's default TTL */
};

static uint32_t hash(const uint8_t *name, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ name[i]) * 16777619u;
	return h;
}

static bool table_init(struct table *t, size_t n)
{
	size_t cap = 16;
	while (cap < n * 2)
		cap *= 2;
	t->slot = calloc(cap, sizeof(*t->slot));
	t->mask = cap - 1;
	t->used = 0;
	return t->slot != NULL;
}

/* Slot for lname: holds its index + 1, or 0 where it would go. */
static uint32_t *probe(const struct table *t, const uint8_t *lname,
		       size_t len, const uint8_t *(*key)(const struct zone *,
							 uint32_t, size_t *),
		       const struct zone *z)
{
	size_t i = hash(lname, len) & t->mask;
	for (;; i = (i + 1) & t->mask) {
		uint32_t *s = &t->slot[i];
		size_t klen;
		if (*s == 0)
			return s;
		const uint8_t *k = key(z, *s - 1, &klen);
		if (klen == len && memcmp(k, lname, len) == 0)
			return s;
	}
}

static const uint8_t *node_key(const struct zone *z, uint32_t i, size_t *len)
{
	*len = z->nodes[i].len;
	return z->nodes[i].name;
}

static const uint8_t *apex_key(const struct zone *z, uint32_t i, size_t *len)
{
	*len = z->apexes[i].name_len;
	return z->apex_lname[i];
}

static long find_node(const struct zone *z, const uint8_t *lname, size_t len)
{
	if (!z->names.slot)
		return -1;
	uint32_t *s = probe(&z->names, lname, len, node_key, z);
	return *s ? (long)*s - 1 : -1;
}

static long find_apex(const struct zone *z, const uint8_t *lname, size_t len)
{
	if (!z->apex_names.slot)
		return -1;
	uint32_t *s = probe(&z->apex_names, lname, len, apex_key, z);
	return *s ? (long)*s - 1 : -1;
}

static bool grow_names(struct zone *z)
{
	struct table t;
	if (!table_init(&t, z->nnodes * 2))
		return false;
	free(z->names.slot);
	z->names = t;
	for (size_t i = 0; i < z->nnodes; i++) {
		uint32_t *s = probe(&z->names, z->nodes[i].name,
				    z->nodes[i].len, node_key, z);
		*s = (uint32_t)i + 1;
	}
	z->names.used = z->nnodes;
	return true;
}

/* The node for lname, created (empty) when absent.  -1: out of memory. */
static long node_get(struct zone *z, const uint8_t *lname, size_t len,
		     size_t apex)
{
	long i = find_node(z, lname, len);
	if (i >= 0)
		return i;
	if (z->nnodes == z->capnodes) {
		size_t cap = z->capnodes ? z->capnodes * 2 : 64;
		struct zone_node *n = realloc(z->nodes, cap * sizeof(*n));
		if (!n)
			return -1;
		z->nodes = n;
		z->capnodes = cap;
	}
	struct zone_node *n = &z->nodes[z->nnodes];
	memset(n, 0, sizeof(*n));
	memcpy(n->name, lname, len);
	n->len = len;
	n->apex = apex;
	z->nnodes++;
	if ((z->nnodes + 1) * 2 > z->names.mask + 1) {
		if (!grow_names(z))
			return -1;
	} else {
		*probe(&z->names, lname, len, node_key, z) =
			(uint32_t)z->nnodes;
	}
	return (long)z->nnodes - 1;
}

static bool add_rdata(struct zone_node *n, uint16_t type, uint32_t ttl,
		      const uint8_t *rd, size_t rdlen, int line)
{
	struct zone_rrset *set = NULL;
	for (size_t i = 0; i < n->nrrsets && !set; i++)
		if (n->rrsets[i].type == type)
			set = &n->rrsets[i];
	if (!set) {
		struct zone_rrset *s = realloc(n->rrsets,
					       (n->nrrsets + 1) * sizeof(*s));
		if (!s)
			return false;
		n->rrsets = s;
		set = &s[n->nrrsets++];
		memset(set, 0, sizeof(*set));
		set->type = type;
		set->ttl = ttl;
	}
	if (ttl < set->ttl)
		set->ttl = ttl;
	for (size_t i = 0; i < set->count; i++)
		if (set->rdata[i].len == rdlen &&
		    memcmp(set->rdata[i].data, rd, rdlen) == 0)
			return true; /* a duplicate record is one record */
	struct zone_rdata *r = realloc(set->rdata,
				       (set->count + 1) * sizeof(*r));
	uint8_t *copy = malloc(rdlen ? rdlen : 1);
	if (r)
		set->rdata = r;
	if (!r || !copy) {
		free(copy);
		return false;
	}
	memcpy(copy, rd, rdlen);
	set->rdata[set->count++] = (struct zone_rdata){(uint16_t)rdlen, copy,
						       line};
	if (ttl < set->ttl)
		set->ttl = ttl;
	return true;
}

/* Is name (lower case) at or below apex (lower case)? */
static bool is_below(const uint8_t *name, size_t len, const uint8_t *apex,
		     size_t alen)
{
	for (size_t off = 0; off < len; off += (size_t)name[off] + 1) {
		if (len - off == alen && memcmp(name + off, apex, alen) == 0)
			return true;
		if (name[off] == 0)
			break;
	}
	return false;
}

/* "file:line: message" into err; returns false. */
static bool fail(char *err, size_t errlen, const char *file, int line,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static bool fail(char *err, size_t errlen, const char *file, int line,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verrf_at(err, errlen, file, line > 0 ? (unsigned)line : 0, fmt, ap);
	va_end(ap);
	return false;
}

static bool add_record(struct zone *z, size_t apex,
		       const struct conf_record *rec, uint32_t default_ttl,
		       char *err, size_t errlen)
{
	const struct zone_apex *a = &z->apexes[apex];
	uint8_t owner[WIRE_NAME_MAX], lowner[WIRE_NAME_MAX];
	uint8_t *rd = z->scratch;
	char why[256];
	const char *nwhy;

	int len = wire_name_from_text(rec->name, a->name, a->name_len, owner,
				      &nwhy);
	if (len < 0)
		return fail(err, errlen, a->file, rec->line, "bad name: %s",
			    nwhy);
	wire_name_lower(lowner, owner, (size_t)len);
	if (!is_below(lowner, (size_t)len, z->apex_lname[apex], a->name_len))
		return fail(err, errlen, a->file, rec->line,
			    "name '%s' is outside the zone's origin",
			    rec->name);
	uint16_t type = rdata_type_from_text(rec->type);
	if (type == 0)
		return fail(err, errlen, a->file, rec->line,
			    "unsupported record type '%s'", rec->type);
	int rdlen = rdata_from_text(type, rec->data, a->name, a->name_len, rd,
				    why, sizeof(why));
	if (rdlen < 0)
		return fail(err, errlen, a->file, rec->line,
			    "%s data \"%s\": %s", rec->type, rec->data, why);
	if (type == WIRE_T_SOA && !wire_name_equal(owner, (size_t)len,
						   a->name, a->name_len))
		return fail(err, errlen, a->file, rec->line,
			    "SOA record '%s' is not at the zone's origin",
			    rec->name);
	long n = node_get(z, lowner, (size_t)len, apex);
	if (n >= 0 && type == WIRE_T_SOA &&
	    zone_find_rrset(&z->nodes[n], WIRE_T_SOA))
		return fail(err, errlen, a->file, rec->line, "%s",
			    "a second SOA record for the zone");
	uint32_t ttl = rec->ttl >= 0 ? (uint32_t)rec->ttl : default_ttl;
	if (n < 0 || !add_rdata(&z->nodes[n], type, ttl, rd, (size_t)rdlen,
				rec->line))
		return fail(err, errlen, a->file, rec->line, "%s",
			    "out of memory");
	/* Empty non-terminals between the owner and the apex exist too
	 * (RFC 4592 2.2.2): they stop wildcards and answer NODATA. */
	for (size_t off = (size_t)lowner[0] + 1;
	     off < (size_t)len && (size_t)len - off > a->name_len;
	     off += (size_t)lowner[off] + 1)
		if (node_get(z, lowner + off, (size_t)len - off, apex) < 0)
			return fail(err, errlen, a->file, rec->line, "%s",
				    "out of memory");
	return true;
}

/* RFC 1034 3.6.2: a CNAME owner holds nothing else, and one CNAME. */
static bool check_cnames(const struct zone *z, char *err, size_t errlen)
{
	for (size_t i = 0; i < z->nnodes; i++) {
		const struct zone_node *n = &z->nodes[i];
		const struct zone_rrset *c = zone_find_rrset(n, WIRE_T_CNAME);
		if (!c)
			continue;
		const char *file = z->apexes[n->apex].file;
		if (c->count > 1)
			return fail(err, errlen, file, c->rdata[1].line, "%s",
				    "a second CNAME for the same name");
		if (n->nrrsets > 1)
			return fail(err, errlen, file, c->rdata[0].line, "%s",
				    "a name with a CNAME can have no other "
				    "records");
	}
	return true;
}

/* Use the zone's SOA, or make one: "<origin> hostmaster.<origin> 1 3600
 * 600 86400 <ttl>". */
static bool set_soa(struct zone *z, size_t i, uint32_t ttl)
{
	struct zone_apex *a = &z->apexes[i];
	long n = find_node(z, z->apex_lname[i], a->name_len);
	const struct zone_rrset *soa =
		n >= 0 ? zone_find_rrset(&z->nodes[n], WIRE_T_SOA) : NULL;
	/* A name longer than 253 octets leaves no room for hostmaster. */
	if (!soa && a->name_len + 11 > WIRE_NAME_MAX)
		return false;
	if (soa) {
		a->soa = soa->rdata[0].data;
		a->soa_len = soa->rdata[0].len;
		a->soa_ttl = soa->ttl;
	} else {
		/* Synthesized, and then a record of the apex like any other
		 * so that SOA queries answer it. */
		static const uint8_t host[] = "\012hostmaster";
		uint8_t rd[2 * WIRE_NAME_MAX + 11 + 20];
		struct wire_buf b = {rd, 0, sizeof(rd), false};
		wire_put_bytes(&b, a->name, a->name_len);
		wire_put_bytes(&b, host, 11);
		wire_put_bytes(&b, a->name, a->name_len);
		wire_put32(&b, 1);
		wire_put32(&b, 3600);
		wire_put32(&b, 600);
		wire_put32(&b, 86400);
		wire_put32(&b, ttl);
		if (b.overflow || n < 0 ||
		    !add_rdata(&z->nodes[n], WIRE_T_SOA, ttl, rd, b.len, 0))
			return false;
		soa = zone_find_rrset(&z->nodes[n], WIRE_T_SOA);
		a->soa = soa->rdata[0].data;
		a->soa_len = soa->rdata[0].len;
		a->soa_ttl = ttl;
	}
	uint32_t min = wire_get32(a->soa + a->soa_len - 4);
	a->negative_ttl = min < a->soa_ttl ? min : a->soa_ttl;
	return true;
}

/* Register an apex for name (absolute text). */
static bool add_apex(struct zone *z, const char *text, bool authoritative,
		     uint32_t ttl, const char *file, int line, char *err,
		     size_t errlen)
{
	size_t i = z->napexes;
	struct zone_apex *a = &z->apexes[i];
	const char *why;
	char name[1100];

	/* An origin is always absolute, with or without its final dot. */
	snprintf(name, sizeof(name), "%s%s", text,
		 text[0] && text[strlen(text) - 1] == '.' ? "" : ".");
	int len = wire_name_from_text(name, NULL, 0, a->name, &why);
	if (len < 0)
		return fail(err, errlen, file, line, "bad origin: %s", why);
	if (!(z->files[i] = strdup(file)))
		return fail(err, errlen, file, line, "%s", "out of memory");
	z->napexes++;
	a->file = z->files[i];
	a->authoritative = authoritative;
	a->name_len = (size_t)len;
	z->ttls[i] = ttl;
	wire_name_lower(z->apex_lname[i], a->name, a->name_len);
	uint32_t *s = probe(&z->apex_names, z->apex_lname[i], a->name_len,
			    apex_key, z);
	if (*s)
		return fail(err, errlen, file, line,
			    "zone '%s' is defined twice", text);
	*s = (uint32_t)i + 1;
	if (node_get(z, z->apex_lname[i], a->name_len, i) < 0)
		return fail(err, errlen, file, line, "%s", "out of memory");
	return true;
}

/* "192.168.1.0/24" -> "1.168.192.in-addr.arpa"; prefixes must end on a
 * label boundary (octets for IPv4, nibbles for IPv6, RFC 3596 2.5). */
static bool reverse_zone(const char *cidr, char *out, size_t size,
			 const char **why)
{
	char addr[64];
	uint8_t bytes[16];
	const char *slash = strchr(cidr, '/');
	char *end;

	*why = "expected ADDRESS/PREFIX, e.g. 192.168.1.0/24";
	if (!slash || (size_t)(slash - cidr) >= sizeof(addr))
		return false;
	memcpy(addr, cidr, (size_t)(slash - cidr));
	addr[slash - cidr] = '\0';
	long bits = strtol(slash + 1, &end, 10);
	bool v4 = inet_pton(AF_INET, addr, bytes) == 1;
	if (!v4 && inet_pton(AF_INET6, addr, bytes) != 1)
		return false;
	int step = v4 ? 8 : 4;
	if (*end || bits <= 0 || bits > (v4 ? 32 : 128) || bits % step) {
		*why = v4 ? "IPv4 prefix length must be 8, 16, 24 or 32"
			  : "IPv6 prefix length must be a multiple of 4";
		return false;
	}
	size_t o = 0;
	for (long i = bits / step - 1; i >= 0; i--) {
		unsigned v = v4 ? bytes[i]
				: (unsigned)(bytes[i / 2] >> (i % 2 ? 0 : 4)) &
					  0xfu;
		o += (size_t)snprintf(out + o, size - o, v4 ? "%u." : "%x.",
				      v);
	}
	snprintf(out + o, size - o, "%s", v4 ? "in-addr.arpa" : "ip6.arpa");
	return true;
}

/* The reverse name of an address record's RDATA, lower-case wire form. */
static size_t reverse_name(const struct zone_rdata *rd, uint8_t *out)
{
	static const uint8_t v4[] = "\007in-addr\004arpa";
	static const uint8_t v6[] = "\003ip6\004arpa";
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (rd->len == 4) {
		for (int i = 3; i >= 0; i--) {
			char t[4];
			int n = snprintf(t, sizeof(t), "%u", rd->data[i]);
			out[o++] = (uint8_t)n;
			memcpy(out + o, t, (size_t)n);
			o += (size_t)n;
		}
		memcpy(out + o, v4, sizeof(v4));
		return o + sizeof(v4);
	}
	for (int i = 15; i >= 0; i--) {
		out[o++] = 1;
		out[o++] = (uint8_t)hex[rd->data[i] & 0xf];
		out[o++] = 1;
		out[o++] = (uint8_t)hex[rd->data[i] >> 4];
	}
	memcpy(out + o, v6, sizeof(v6));
	return o + sizeof(v6);
}

/* Closest enclosing apex of lname, or fallback. */
static size_t closest_apex(const struct zone *z, const uint8_t *lname,
			   size_t len, size_t fallback)
{
	for (size_t off = 0; off < len && lname[off];
	     off += (size_t)lname[off] + 1) {
		long a = find_apex(z, lname + off, len - off);
		if (a >= 0)
			return (size_t)a;
	}
	return fallback;
}

static bool add_ptr(struct zone *z, size_t owner, const struct zone_rrset *set,
		    const struct zone_rdata *rd, size_t apex)
{
	uint8_t rev[WIRE_NAME_MAX];
	size_t len = reverse_name(rd, rev);
	size_t a = closest_apex(z, rev, len, apex);
	/* The owner's spelling as written: the node keeps it lower-case,
	 * so take the name from the zone's original case where possible. */
	uint8_t target[WIRE_NAME_MAX];
	size_t tlen = z->nodes[owner].len;

	memcpy(target, z->nodes[owner].name, tlen);
	long n = node_get(z, rev, len, a);
	if (n < 0)
		return false;
	if (zone_find_rrset(&z->nodes[n], WIRE_T_PTR))
		return true; /* the first name for an address wins */
	return add_rdata(&z->nodes[n], WIRE_T_PTR, set->ttl, target, tlen,
			 rd->line);
}

/* ptr = true: a PTR for every A/AAAA address of zone i, in file order, so
 * the first name listed for an address wins. */
static bool add_ptrs(struct zone *z, size_t apex, char *err, size_t errlen)
{
	size_t nnodes = z->nnodes;

	for (size_t i = 0; i < nnodes; i++) {
		if (z->nodes[i].apex != apex)
			continue;
		for (size_t t = 0; t < z->nodes[i].nrrsets; t++) {
			struct zone_rrset *set = &z->nodes[i].rrsets[t];
			if (set->type != WIRE_T_A && set->type != WIRE_T_AAAA)
				continue;
			for (size_t r = 0; r < set->count; r++) {
				if (!add_ptr(z, i, set, &set->rdata[r], apex))
					return fail(err, errlen,
						    z->apexes[apex].file,
						    set->rdata[r].line, "%s",
						    "out of memory");
			}
		}
	}
	return true;
}

struct zone *zone_build(const struct conf *cfg, char *err, size_t errlen)
{
	struct zone *z = calloc(1, sizeof(*z));
	size_t n = 0;

	if (!z)
		goto oom;
	for (size_t i = 0; i < cfg->nzones; i++)
		n += 1 + cfg->zones[i].nreverse;
	z->apexes = calloc(n ? n : 1, sizeof(*z->apexes));
	z->apex_lname = calloc(n ? n : 1, sizeof(*z->apex_lname));
	z->files = calloc(n ? n : 1, sizeof(*z->files));
	z->ttls = calloc(n ? n : 1, sizeof(*z->ttls));
	z->scratch = malloc(RDATA_MAX);
	if (!z->apexes || !z->apex_lname || !z->files ||
	    !z->ttls || !z->scratch || !table_init(&z->apex_names, n) ||
	    !table_init(&z->names, 32))
		goto oom;
	/* Apexes first, so that every record and PTR finds its zone. */
	size_t *first = calloc(cfg->nzones ? cfg->nzones : 1, sizeof(*first));
	if (!first)
		goto oom;
	for (size_t i = 0; i < cfg->nzones; i++) {
		const struct conf_zone *cz = &cfg->zones[i];
		first[i] = z->napexes;
		if (!add_apex(z, cz->origin, cz->authoritative,
			      (uint32_t)cz->ttl, cz->path, cz->origin_line,
			      err, errlen))
			goto fail_first;
		for (size_t r = 0; r < cz->nreverse; r++) {
			char name[128];
			const char *why;
			if (!reverse_zone(cz->reverse[r], name, sizeof(name),
					  &why)) {
				fail(err, errlen, cz->path, cz->reverse_line,
				     "reverse '%s': %s", cz->reverse[r], why);
				goto fail_first;
			}
			if (!add_apex(z, name, true, (uint32_t)cz->ttl,
				      cz->path, cz->reverse_line, err, errlen))
				goto fail_first;
		}
	}
	for (size_t i = 0; i < cfg->nzones; i++)
		for (size_t r = 0; r < cfg->zones[i].nrecords; r++)
			if (!add_record(z, first[i], &cfg->zones[i].records[r],
					(uint32_t)cfg->zones[i].ttl, err,
					errlen))
				goto fail_first;
	for (size_t i = 0; i < cfg->nzones; i++)
		if (cfg->zones[i].ptr && !add_ptrs(z, first[i], err, errlen))
			goto fail_first;
	free(first);
	for (size_t i = 0; i < z->napexes; i++)
		if (!set_soa(z, i, z->ttls[i]))
			goto oom;
	/* After set_soa: an apex always holds a SOA, so a CNAME there is
	 * caught too (RFC 2181 10.1). */
	if (!check_cnames(z, err, errlen))
		goto fail;
	free(z->scratch);
	z->scratch = NULL;
	return z;
fail_first:
	free(first);
	goto fail;
oom:
	errf(err, errlen, "%s", "out of memory building the zone store");
fail:
	zone_free(z);
	return NULL;
}

void zone_free(struct zone *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->nnodes; i++) {
		struct zone_node *n = &z->nodes[i];
		for (size_t j = 0; j < n->nrrsets; j++) {
			for (size_t k = 0; k < n->rrsets[j].count; k++)
				free((void *)(uintptr_t)n->rrsets[j].rdata[k].data);
			free(n->rrsets[j].rdata);
		}
		free(n->rrsets);
	}
	for (size_t i = 0; i < z->napexes; i++) {
		free(z->files[i]);
	}
	free(z->files);
	free(z->ttls);
	free(z->scratch);
	free(z->nodes);
	free(z->names.slot);
	free(z->apex_names.slot);
	free(z->apexes);
	free(z->apex_lname);
	free(z);
}

void zone_lookup(const struct zone *z, const uint8_t *name, size_t len,
		 struct zone_result *r)
{
	uint8_t l[WIRE_NAME_MAX + 2];
	long apex = -1, i;
	size_t apex_off = 0, off;

	memset(r, 0, sizeof(*r));
	wire_name_lower(l, name, len);
	if ((i = find_node(z, l, len)) >= 0) {
		r->match = ZONE_EXISTS;
		r->node = &z->nodes[i];
		r->apex = &z->apexes[z->nodes[i].apex];
		return;
	}
	/* The closest enclosing zone apex. */
	for (off = 0; off < len && l[off]; off += (size_t)l[off] + 1)
		if ((apex = find_apex(z, l + off, len - off)) >= 0) {
			apex_off = off;
			break;
		}
	if (apex < 0)
		return;
	r->apex = &z->apexes[apex];
	/* The closest encloser (RFC 4592 3.3.1): the longest existing
	 * ancestor; the apex node always exists. */
	for (off = (size_t)l[0] + 1; off <= apex_off; off += (size_t)l[off] + 1)
		if ((i = find_node(z, l + off, len - off)) >= 0)
			break;
	if (i >= 0) {
		/* The source of synthesis: "*." + closest encloser. */
		size_t ce = len - off;
		memmove(l + 2, l + off, ce);
		l[0] = 1;
		l[1] = '*';
		long w = ce + 2 <= WIRE_NAME_MAX ? find_node(z, l, ce + 2) : -1;
		if (w >= 0) {
			r->match = ZONE_WILDCARD;
			r->node = &z->nodes[w];
			return;
		}
	}
	r->match = z->apexes[apex].authoritative ? ZONE_NXDOMAIN
						 : ZONE_NOT_LOCAL;
}

const struct zone_rrset *zone_find_rrset(const struct zone_node *n,
					 uint16_t type)
{
	for (size_t i = 0; i < n->nrrsets; i++)
		if (n->rrsets[i].type == type)
			return &n->rrsets[i];
	return NULL;
}

size_t zone_rrsets(const struct zone_node *n, const struct zone_rrset **out)
{
	*out = n->rrsets;
	return n->nrrsets;
}

size_t zone_size(const struct zone *z)
{
	return z->nnodes;
}
