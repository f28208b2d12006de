/*
 * answer.c - local replies.
 *
 * The reply is written in order: header, the client's question, answer
 * records, authority SOA for negative answers (RFC 2308 3), OPT.  Owner
 * names are compression pointers to the question or to the CNAME target
 * just written, so the client sees its own spelling of the name.
 */
#include <config.h>

#include <string.h>

#include "answer.h"
#include "conf.h"
#include "zone.h"

/* Where the owner name of the next records stands in the reply. */
struct owner {
	size_t off;           /* offset of the name in the reply */
	const uint8_t *name;  /* the name itself (for lookups) */
	size_t len;
};

static void put_header(struct wire_buf *b, const struct wire_query *q,
		       uint16_t flags)
{
	uint16_t opcode = (uint16_t)(q->hdr.flags & 0x7800u);

	/* RFC 8906 3.1.4: a request of an opcode we do not know is answered
	 * NOTIMP, and nothing of it is echoed but its opcode: RD, CD and RA
	 * belong to QUERY (genreport's opcode and opcodeflg tests).  A
	 * QUERY (FORMERR included: its header was read) gets QR, the
	 * client's RD and CD (RFC 1035 4.1.1, RFC 4035 3.2.2), and RA: we
	 * recurse. */
	if (WIRE_RCODE(flags) == WIRE_NOTIMP && opcode != 0)
		flags |= WIRE_QR | opcode;
	else
		flags |= WIRE_QR | WIRE_RA |
			 (q->hdr.flags & (WIRE_RD | WIRE_CD)) | opcode;
	wire_put16(b, q->hdr.id);
	wire_put16(b, flags);
	wire_put16(b, q->qname_len ? 1 : 0);
	wire_put16(b, 0);
	wire_put16(b, 0);
	wire_put16(b, 0);
}

static void put_question(struct wire_buf *b, const struct wire_query *q,
			 const uint8_t *pkt)
{
	if (q->qname_len)
		wire_put_bytes(b, pkt + WIRE_HEADER_LEN,
			       q->question_end - WIRE_HEADER_LEN);
}

/* Our OPT record (RFC 6891 6.1.2): ext-rcode, version 0, DO echoed. */
void answer_opt(struct wire_buf *b, const struct wire_query *q,
		unsigned rcode, uint16_t edns_size)
{
	uint8_t root = 0;
	wire_put_bytes(b, &root, 1);
	wire_put16(b, WIRE_T_OPT);
	wire_put16(b, edns_size);
	wire_put32(b, ((uint32_t)(rcode >> 4) << 24) |
			      (q->do_bit ? 0x8000u : 0));
	wire_put16(b, 0);
}

static void set_count(struct wire_buf *b, size_t at, uint16_t n)
{
	if (!b->overflow)
		wire_set16(b->p + at, n);
}

static void put_rr(struct wire_buf *b, const struct owner *o, uint16_t type,
		   uint32_t ttl, const struct zone_rdata *rd)
{
	if (o->off < 0x4000) {
		wire_put16(b, (uint16_t)(0xc000u | o->off));
	} else {
		wire_put_bytes(b, o->name, o->len);
	}
	wire_put16(b, type);
	wire_put16(b, WIRE_CLASS_IN);
	wire_put32(b, ttl);
	wire_put16(b, rd->len);
	wire_put_bytes(b, rd->data, rd->len);
}

static uint16_t put_rrset(struct wire_buf *b, const struct owner *o,
			  const struct zone_rrset *set)
{
	for (size_t i = 0; i < set->count; i++)
		put_rr(b, o, set->type, set->ttl, &set->rdata[i]);
	return (uint16_t)set->count;
}

static uint16_t put_soa(struct wire_buf *b, const struct zone_apex *apex)
{
	struct owner o = {0x4000, apex->name, apex->name_len};
	struct zone_rdata rd = {apex->soa_len, apex->soa, 0};
	put_rr(b, &o, WIRE_T_SOA, apex->negative_ttl, &rd);
	return 1;
}

/* The answer section for one step of the chain.  Returns the next CNAME
 * target's owner through *next, or leaves next->name NULL. */
static uint16_t put_node(struct wire_buf *b, const struct owner *o,
			 const struct zone_node *node, uint16_t qtype,
			 struct owner *next)
{
	const struct zone_rrset *set;

	next->name = NULL;
	if (qtype == WIRE_T_ANY) {
		uint16_t n = 0;
		size_t count = zone_rrsets(node, &set);
		for (size_t i = 0; i < count; i++)
			n = (uint16_t)(n + put_rrset(b, o, &set[i]));
		return n;
	}
	if ((set = zone_find_rrset(node, qtype)))
		return put_rrset(b, o, set);
	if ((set = zone_find_rrset(node, WIRE_T_CNAME))) {
		/* The target's name is the RDATA just written. */
		put_rrset(b, o, set);
		next->off = b->overflow ? 0x4000 : b->len - set->rdata[0].len;
		next->name = set->rdata[0].data;
		next->len = set->rdata[0].len;
		return 1;
	}
	return 0;
}

size_t answer_local(const struct zone *z, const struct wire_query *q,
		    const uint8_t *pkt, uint16_t edns_size, uint8_t *out,
		    size_t cap, struct answer_chase *chase)
{
	struct wire_buf b = {out, 0, cap, false};
	struct zone_result r;
	struct owner o = {WIRE_HEADER_LEN, q->qname, q->qname_len};
	uint16_t an = 0, ns = 0;
	unsigned rcode = WIRE_NOERROR;

	zone_lookup(z, q->qname, q->qname_len, &r);
	if (r.match == ZONE_NOT_LOCAL)
		return 0;
	/* Local names never leave, whatever the class: ANY is answered as
	 * IN, other classes (CH, HS) are refused. */
	if (q->qclass != WIRE_CLASS_IN && q->qclass != WIRE_T_ANY)
		return answer_error(q, pkt, WIRE_REFUSED, edns_size, out, cap);
	if (chase)
		chase->target = NULL;
	put_header(&b, q, WIRE_AA);
	put_question(&b, q, pkt);
	for (int step = 0;; step++) {
		if (step > ANSWER_MAX_CHAIN)
			return answer_error(q, pkt, WIRE_SERVFAIL, edns_size,
					    out, cap);
		if (r.match == ZONE_NOT_LOCAL) {
			/* The chain leaves local data (DESIGN: the rest is
			 * resolved upstream by the caller). */
			if (chase && !b.overflow) {
				chase->target = o.name;
				chase->target_len = o.len;
				chase->body_len = b.len;
				chase->ancount = an;
			}
			break;
		}
		if (r.match == ZONE_NXDOMAIN) {
			/* RFC 6604 2.1: the rcode is the last name's. */
			rcode = WIRE_NXDOMAIN;
			ns = put_soa(&b, r.apex);
			break;
		}
		struct owner next;
		uint16_t n = put_node(&b, &o, r.node, q->qtype, &next);
		an = (uint16_t)(an + n);
		if (!next.name) {
			if (n == 0)
				ns = put_soa(&b, r.apex); /* NODATA */
			break;
		}
		o = next;
		zone_lookup(z, o.name, o.len, &r);
	}
	if (q->has_opt)
		answer_opt(&b, q, rcode, edns_size);
	if (b.overflow) {
		/* Only the 64 KiB message limit gets here: TC, question. */
		if (q->question_end > cap)
			return answer_error(q, pkt, WIRE_SERVFAIL, edns_size,
					    out, cap);
		b.overflow = false;
		b.len = q->question_end;
		wire_set16(out + 2, (uint16_t)(wire_get16(out + 2) | WIRE_TC));
		an = ns = 0;
		if (q->has_opt)
			answer_opt(&b, q, rcode, edns_size);
	}
	wire_set16(out + 2, (uint16_t)(wire_get16(out + 2) | rcode));
	set_count(&b, 6, an);
	set_count(&b, 8, ns);
	set_count(&b, 10, q->has_opt ? 1 : 0);
	return b.len;
}

size_t answer_error(const struct wire_query *q, const uint8_t *pkt,
		    unsigned rcode, uint16_t edns_size, uint8_t *out,
		    size_t cap)
{
	struct wire_buf b = {out, 0, cap, false};

	put_header(&b, q, (uint16_t)(rcode & 0xfu));
	put_question(&b, q, pkt);
	/* BADVERS only exists in the OPT record (RFC 6891 7). */
	if (q->has_opt || rcode > 15) {
		answer_opt(&b, q, rcode, edns_size);
		set_count(&b, 10, 1);
	}
	if (b.overflow) {
		b.overflow = false;
		b.len = WIRE_HEADER_LEN;
		set_count(&b, 4, 0);
		set_count(&b, 10, 0);
		if (cap < WIRE_HEADER_LEN)
			return 0;
	}
	return b.len;
}

size_t answer_tsig_error(const struct wire_query *q, const uint8_t *pkt,
			 uint16_t tsig_error, uint16_t edns_size, uint8_t *out,
			 size_t cap)
{
	struct wire_buf b = {out, 0, cap, false};
	uint8_t key[WIRE_NAME_MAX], alg[WIRE_NAME_MAX];

	if (!q->has_tsig)
		return 0;
	/* The TSIG record is the query's last (wire_parse_query saw to
	 * that), so it ends the packet. */
	size_t end = q->tsig_off + q->tsig_len, p = q->tsig_off;
	int klen = wire_read_name(pkt, end, &p, key);
	if (klen < 0 || end - p < 10)
		return 0;
	p += 10; /* type, class, TTL, RDLENGTH */
	int alen = wire_read_name(pkt, end, &p, alg);
	if (alen < 0 || end - p < 10)
		return 0;
	const uint8_t *signed_fudge = pkt + p; /* 48-bit time, fudge */
	size_t mac = wire_get16(pkt + p + 8);
	if (end - p - 10 < mac || end - p - 10 - mac < 6)
		return 0;
	uint16_t orig_id = wire_get16(pkt + p + 10 + mac);

	put_header(&b, q, WIRE_NOTAUTH);
	put_question(&b, q, pkt);
	if (q->has_opt)
		answer_opt(&b, q, WIRE_NOTAUTH, edns_size);
	/* RFC 8945 5.3.2: an error reply is unsigned, MAC size 0; the key
	 * and algorithm names are the request's, written out whole. */
	wire_put_bytes(&b, key, (size_t)klen);
	wire_put16(&b, WIRE_T_TSIG);
	wire_put16(&b, WIRE_CLASS_ANY);
	wire_put32(&b, 0);
	wire_put16(&b, (uint16_t)(alen + 16));
	wire_put_bytes(&b, alg, (size_t)alen);
	wire_put_bytes(&b, signed_fudge, 8);
	wire_put16(&b, 0); /* MAC size */
	wire_put16(&b, orig_id);
	wire_put16(&b, tsig_error);
	wire_put16(&b, 0); /* other length */
	set_count(&b, 10, q->has_opt ? 2 : 1);
	return b.overflow ? 0 : b.len;
}

/* SOA data for negative blocking answers: localhost. nobody.invalid. */
static void put_block_soa(struct wire_buf *b, uint32_t ttl)
{
	static const uint8_t names[] = "\011localhost\000"
				       "\006nobody\007invalid\000";
	wire_put16(b, 0xc000u | WIRE_HEADER_LEN); /* the blocked name */
	wire_put16(b, WIRE_T_SOA);
	wire_put16(b, WIRE_CLASS_IN);
	wire_put32(b, ttl);
	wire_put16(b, (uint16_t)(sizeof(names) - 1 + 20));
	wire_put_bytes(b, names, sizeof(names) - 1);
	wire_put32(b, 1);
	wire_put32(b, 3600);
	wire_put32(b, 600);
	wire_put32(b, 86400);
	wire_put32(b, ttl);
}

size_t answer_blocked(const struct answer_block *blk,
		      const struct wire_query *q, const uint8_t *pkt,
		      uint16_t edns_size, uint8_t *out, size_t cap)
{
	static const uint8_t zero[16] = {0};
	struct wire_buf b = {out, 0, cap, false};
	const uint8_t *addr = NULL;
	size_t alen = 0;
	unsigned rcode = WIRE_NOERROR;

	switch (blk->mode) {
	case CONF_BLOCK_REFUSED:
		return answer_error(q, pkt, WIRE_REFUSED, edns_size, out, cap);
	case CONF_BLOCK_NXDOMAIN:
		rcode = WIRE_NXDOMAIN;
		break;
	case CONF_BLOCK_NULL:
		if (q->qtype == WIRE_T_A || q->qtype == WIRE_T_AAAA)
			addr = zero;
		break;
	case CONF_BLOCK_ADDRESS:
		if (q->qtype == WIRE_T_A && blk->has_a)
			addr = blk->a;
		if (q->qtype == WIRE_T_AAAA && blk->has_aaaa)
			addr = blk->aaaa;
		break;
	}
	if (addr)
		alen = q->qtype == WIRE_T_A ? 4 : 16;
	put_header(&b, q, (uint16_t)(WIRE_AA | rcode));
	put_question(&b, q, pkt);
	if (q->qclass != WIRE_CLASS_IN) {
		addr = NULL; /* other classes: NODATA */
	}
	if (addr) {
		struct owner o = {WIRE_HEADER_LEN, q->qname, q->qname_len};
		struct zone_rdata rd = {(uint16_t)alen, addr, 0};
		put_rr(&b, &o, q->qtype, blk->ttl, &rd);
		set_count(&b, 6, 1);
	} else {
		put_block_soa(&b, blk->ttl);
		set_count(&b, 8, 1);
	}
	if (q->has_opt) {
		answer_opt(&b, q, rcode, edns_size);
		set_count(&b, 10, 1);
	}
	if (b.overflow)
		return answer_error(q, pkt, WIRE_SERVFAIL, edns_size, out, cap);
	return b.len;
}
