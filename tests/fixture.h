/*
 * fixture.h - shared helpers of the unit tests that need a whole
 * snapshot: a temporary folder of configuration files, query packets
 * built by hand, and a reader for the replies.
 *
 * Header-only (each test program is one translation unit); everything
 * here aborts on a setup failure, since a test without its fixture
 * proves nothing.
 */
#ifndef SPLITDNS_FIXTURE_H
#define SPLITDNS_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/snapshot.h"
#include "../src/wire.h"

/* A temporary folder and the files written into it. */
struct fx_dir {
	char dir[64];
	char files[16][128];
	int nfiles;
};

static inline void fx_dir_init(struct fx_dir *d)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/splitdns-fx-XXXXXX");
	d->nfiles = 0;
	if (!mkdtemp(d->dir)) {
		perror("mkdtemp");
		abort();
	}
}

/* Write text to name in the folder; returns the file's path (static
 * for the life of d). */
static inline const char *fx_write(struct fx_dir *d, const char *name,
				   const char *text)
{
	char *path = NULL;

	for (int i = 0; i < d->nfiles; i++) {
		const char *slash = strrchr(d->files[i], '/');
		if (slash && strcmp(slash + 1, name) == 0)
			path = d->files[i];
	}
	if (!path) {
		if (d->nfiles == 16)
			abort();
		char tmp[sizeof(d->files[0])];
		snprintf(tmp, sizeof(tmp), "%s/%s", d->dir, name);
		path = d->files[d->nfiles++];
		memcpy(path, tmp, sizeof(tmp));
	}
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		abort();
	}
	return path;
}

static inline void fx_dir_clean(struct fx_dir *d)
{
	for (int i = 0; i < d->nfiles; i++)
		unlink(d->files[i]);
	rmdir(d->dir);
}

/* A snapshot of the configuration text conf (written as splitdns.conf
 * in d); aborts with the loader's message when it does not load. */
static inline struct snapshot *fx_snapshot(struct fx_dir *d, const char *conf,
					   uint64_t generation)
{
	char err[512];
	const char *path = fx_write(d, "splitdns.conf", conf);
	struct snapshot *s =
	    snapshot_build(path, NULL, 0, NULL, NULL, generation, err,
			   sizeof(err));
	if (!s) {
		fprintf(stderr, "snapshot_build: %s\n", err);
		abort();
	}
	return s;
}

/* The wire form of a dotted name ("www.Example.com"). */
static inline size_t fx_name(const char *text, uint8_t *out)
{
	const char *why = NULL;
	int n = wire_name_from_text(text, NULL, 0, out, &why);
	if (n < 0) {
		fprintf(stderr, "bad name %s: %s\n", text, why);
		abort();
	}
	return (size_t)n;
}

/* Options of a query built by fx_query. */
struct fx_q {
	uint16_t flags;    /* the header's flags word (RD etc.) */
	uint16_t qdcount;  /* 0: 1 */
	bool opt;          /* add an OPT record */
	uint8_t edns_version;
};

/* A query for name/qtype (class IN) with ID id into out; its length. */
static inline size_t fx_query(uint8_t *out, size_t cap, uint16_t id,
			      const char *name, uint16_t qtype,
			      const struct fx_q *o)
{
	struct wire_buf b = {out, 0, cap, false};
	uint8_t wn[WIRE_NAME_MAX];
	size_t n = fx_name(name, wn);
	uint16_t qd = o && o->qdcount ? o->qdcount : 1;

	wire_put16(&b, id);
	wire_put16(&b, o ? o->flags : WIRE_RD);
	wire_put16(&b, qd);
	wire_put16(&b, 0);
	wire_put16(&b, 0);
	wire_put16(&b, o && o->opt ? 1 : 0);
	for (uint16_t i = 0; i < qd; i++) {
		wire_put_bytes(&b, wn, n);
		wire_put16(&b, qtype);
		wire_put16(&b, WIRE_CLASS_IN);
	}
	if (o && o->opt) {
		wire_put_bytes(&b, "", 1); /* root */
		wire_put16(&b, 41);        /* OPT */
		wire_put16(&b, 1232);      /* payload size */
		wire_put16(&b, (uint16_t)o->edns_version); /* ext rcode 0 */
		wire_put16(&b, 0);         /* flags */
		wire_put16(&b, 0);         /* no options */
	}
	if (b.overflow)
		abort();
	return b.len;
}

/* What a reply says, read back with the library's own walker. */
struct fx_reply {
	bool valid;
	uint16_t id;
	uint16_t flags;
	unsigned rcode;
	unsigned ancount;
	uint8_t qname[WIRE_NAME_MAX]; /* as it stands in the question */
	size_t qname_len;
	uint16_t type1;   /* the first answer record */
	uint32_t ttl1;
	uint8_t rdata1[16];
	uint16_t rdlen1;
	uint16_t last_type; /* the last answer record */
	uint8_t last_rdata[16];
};

static inline struct fx_reply fx_read(const uint8_t *msg, size_t len)
{
	struct fx_reply r;
	struct wire_rrs it;
	struct wire_rr rr;
	size_t off = WIRE_HEADER_LEN;
	int n;

	memset(&r, 0, sizeof(r));
	if (!wire_rrs_begin(&it, msg, len))
		return r;
	r.id = it.hdr.id;
	r.flags = it.hdr.flags;
	r.rcode = WIRE_RCODE(it.hdr.flags);
	r.ancount = it.hdr.ancount;
	if (it.hdr.qdcount &&
	    (n = wire_read_name(msg, len, &off, r.qname)) > 0)
		r.qname_len = (size_t)n;
	unsigned i = 0;
	while (wire_rrs_next(&it, &rr)) {
		if (rr.section != WIRE_ANSWER)
			continue;
		size_t k = rr.rdlen < 16 ? rr.rdlen : 16;
		if (i++ == 0) {
			r.type1 = rr.type;
			r.ttl1 = wire_get32(msg + rr.ttl_at);
			r.rdlen1 = rr.rdlen;
			memcpy(r.rdata1, msg + rr.rdata, k);
		}
		r.last_type = rr.type;
		memcpy(r.last_rdata, msg + rr.rdata, k);
	}
	r.valid = !it.bad;
	return r;
}

/* The reply an upstream would give to query (len bytes): the query with
 * QR and RA set and one A record of ttl for addr a.b.c.d (OPT dropped). */
static inline size_t fx_answer(const uint8_t *query, size_t len, uint8_t *out,
			       size_t cap, uint32_t ttl, const uint8_t addr[4])
{
	struct wire_query q;
	struct wire_buf b = {out, 0, cap, false};

	if (wire_parse_query(query, len, &q) != WIRE_OK)
		abort();
	wire_put16(&b, q.hdr.id);
	wire_put16(&b, (uint16_t)(WIRE_QR | WIRE_RA | (q.hdr.flags & WIRE_RD)));
	wire_put16(&b, 1);
	wire_put16(&b, 1);
	wire_put16(&b, 0);
	wire_put16(&b, 0);
	wire_put_bytes(&b, q.qname, q.qname_len);
	wire_put16(&b, q.qtype);
	wire_put16(&b, q.qclass);
	wire_put16(&b, 0xc00c); /* the question's name */
	wire_put16(&b, 1);      /* A */
	wire_put16(&b, WIRE_CLASS_IN);
	wire_put32(&b, ttl);
	wire_put16(&b, 4);
	wire_put_bytes(&b, addr, 4);
	if (b.overflow)
		abort();
	return b.len;
}

#endif
