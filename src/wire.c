/*
 * wire.c - DNS message codec.
 *
 * Parsing works on the caller's bytes with explicit offsets; nothing is
 * allocated.  Names stay in wire form: comparisons are label-bytewise and
 * case-insensitive, text form exists only for configuration and logs.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "wire.h"

/* A name of 255 octets has at most 127 labels; each pointer hop must land
 * before the previous one, so hops are bounded by the message, but an
 * explicit cap keeps the cost of a hostile name small. */
#define WIRE_MAX_HOPS 128

bool wire_read_header(const uint8_t *msg, size_t len, struct wire_header *h)
{
	if (len < WIRE_HEADER_LEN)
		return false;
	h->id = wire_get16(msg);
	h->flags = wire_get16(msg + 2);
	h->qdcount = wire_get16(msg + 4);
	h->ancount = wire_get16(msg + 6);
	h->nscount = wire_get16(msg + 8);
	h->arcount = wire_get16(msg + 10);
	return true;
}

int wire_read_name(const uint8_t *msg, size_t len, size_t *off, uint8_t *out)
{
	size_t pos = *off, end = 0, limit = *off, outlen = 0;
	bool jumped = false;
	int hops = 0;

	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t c = msg[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++hops > WIRE_MAX_HOPS)
				return -1;
			size_t target = ((size_t)(c & 0x3f) << 8) | msg[pos + 1];
			/* Only backwards, and before where this name began. */
			if (target >= limit)
				return -1;
			if (!jumped)
				end = pos + 2;
			jumped = true;
			limit = target;
			pos = target;
			continue;
		}
		if (c & 0xc0)
			return -1; /* 0x40/0x80: extended label types, obsolete */
		if (pos + 1 + c > len || outlen + 1 + c > WIRE_NAME_MAX)
			return -1;
		if (out)
			memcpy(out + outlen, msg + pos, (size_t)c + 1);
		outlen += (size_t)c + 1;
		pos += (size_t)c + 1;
		if (c == 0)
			break;
	}
	*off = jumped ? end : pos;
	return (int)outlen;
}

bool wire_skip_rr(const uint8_t *msg, size_t len, size_t *off,
		  uint16_t *type, size_t *rdata_off, uint16_t *rdlen)
{
	size_t pos = *off;

	if (wire_read_name(msg, len, &pos, NULL) < 0 || len - pos < 10)
		return false;
	uint16_t n = wire_get16(msg + pos + 8);
	if (len - pos - 10 < n)
		return false;
	if (type)
		*type = wire_get16(msg + pos);
	if (rdata_off)
		*rdata_off = pos + 10;
	if (rdlen)
		*rdlen = n;
	*off = pos + 10 + n;
	return true;
}

/* Check an OPT record's option list: every option whole, and together
 * exactly the RDATA (RFC 6891 6.1.2). */
static bool opt_options_ok(const uint8_t *msg, size_t rdata, uint16_t rdlen)
{
	for (size_t p = rdata, end = rdata + rdlen; p < end;) {
		if (end - p < 4 || end - p - 4 < wire_get16(msg + p + 2))
			return false;
		p += 4 + (size_t)wire_get16(msg + p + 2);
	}
	return true;
}

/* Validate an OPT record's fixed fields and option list (RFC 6891 6.1). */
static enum wire_verdict read_opt(const uint8_t *msg, size_t start,
				  size_t rdata, uint16_t rdlen,
				  struct wire_query *q)
{
	if (msg[start] != 0) /* owner must be the root */
		return WIRE_BAD_FORMAT;
	if (q->has_opt)
		return WIRE_BAD_FORMAT; /* at most one OPT */
	q->has_opt = true;
	q->opt_off = start;
	q->opt_len = rdata + rdlen - start;
	q->udp_size = wire_get16(msg + start + 3);
	q->edns_version = msg[start + 6];
	q->do_bit = (msg[start + 7] & 0x80) != 0;
	return opt_options_ok(msg, rdata, rdlen) ? WIRE_OK : WIRE_BAD_FORMAT;
}

/*
 * Find the parts of a TSIG RDATA (RFC 8945 4.2): algorithm name, time
 * signed (48 bits), fudge, MAC size and MAC, original ID, error, other
 * length and data, filling the RDATA exactly.  Stores the offset of the
 * original ID field.
 */
static bool tsig_rdata(const uint8_t *msg, size_t len, size_t rdata,
		       uint16_t rdlen, size_t *orig_id)
{
	size_t p = rdata, end = rdata + rdlen;

	if (wire_read_name(msg, len, &p, NULL) < 0 || p > end || end - p < 10)
		return false;
	size_t mac = wire_get16(msg + p + 8);
	p += 10;
	if (end - p < mac || end - p - mac < 6)
		return false;
	p += mac;
	*orig_id = p;
	size_t other = wire_get16(msg + p + 4);
	return end - p - 6 == other;
}

/* The additional section of a query: at most one OPT, a TSIG only as its
 * last record (RFC 8945 5.1: anywhere else is FORMERR). */
static enum wire_verdict read_additional(const uint8_t *msg, size_t len,
					 size_t *off, struct wire_query *q)
{
	for (unsigned i = 0; i < q->hdr.arcount; i++) {
		size_t start = *off, rdata, orig_id;
		uint16_t type, rdlen;
		if (!wire_skip_rr(msg, len, off, &type, &rdata, &rdlen))
			return WIRE_BAD_FORMAT;
		if (type == WIRE_T_OPT) {
			enum wire_verdict v =
			    read_opt(msg, start, rdata, rdlen, q);
			if (v != WIRE_OK)
				return v;
		} else if (type == WIRE_T_TSIG) {
			if (i + 1 != q->hdr.arcount ||
			    !tsig_rdata(msg, len, rdata, rdlen, &orig_id))
				return WIRE_BAD_FORMAT;
			q->has_tsig = true;
			q->tsig_off = start;
			q->tsig_len = *off - start;
		} else if (type == WIRE_T_TKEY) {
			q->has_tkey = true;
		}
	}
	return WIRE_OK;
}

enum wire_verdict wire_parse_query(const uint8_t *msg, size_t len,
				   struct wire_query *q)
{
	memset(q, 0, sizeof(*q));
	if (!wire_read_header(msg, len, &q->hdr) || (q->hdr.flags & WIRE_QR))
		return WIRE_DROP;

	/* The question comes first so that error replies can echo it. */
	size_t off = WIRE_HEADER_LEN;
	if (q->hdr.qdcount >= 1) {
		int n = wire_read_name(msg, len, &off, q->qname);
		if (n > 0 && off == WIRE_HEADER_LEN + (size_t)n &&
		    len - off >= 4) {
			q->qname_len = (size_t)n;
			q->qtype = wire_get16(msg + off);
			q->qclass = wire_get16(msg + off + 2);
			off += 4;
			q->question_end = off;
		}
	}
	if (WIRE_OPCODE(q->hdr.flags) != 0)
		return WIRE_BAD_OPCODE;
	if (q->hdr.qdcount != 1 || q->qname_len == 0) {
		q->qname_len = 0; /* nothing trustworthy to echo */
		return WIRE_BAD_FORMAT;
	}
	q->zone_transfer = q->qtype == WIRE_T_AXFR || q->qtype == WIRE_T_IXFR;
	/* A query carries no answer records, and authority records only
	 * for IXFR: the client's SOA (RFC 1995 3). */
	if (q->hdr.ancount || (q->hdr.nscount && q->qtype != WIRE_T_IXFR))
		return WIRE_BAD_FORMAT;
	for (unsigned i = 0; i < q->hdr.nscount; i++)
		if (!wire_skip_rr(msg, len, &off, NULL, NULL, NULL))
			return WIRE_BAD_FORMAT;
	enum wire_verdict v = read_additional(msg, len, &off, q);
	if (v != WIRE_OK)
		return v;
	if (off != len)
		return WIRE_BAD_FORMAT; /* trailing bytes: refuse to relay */
	/* OPT and TSIG are meta-records of the message that carries them
	 * (RFC 6891 6.1.1, RFC 8945 4.2): there is nothing to ask for.  A
	 * TKEY question is a key negotiation, which RFC 2930 4 says MUST
	 * carry a TKEY record in the additional section. */
	if (q->qtype == WIRE_T_OPT || q->qtype == WIRE_T_TSIG ||
	    (q->qtype == WIRE_T_TKEY && !q->has_tkey))
		return WIRE_BAD_FORMAT;
	if (q->has_opt && q->edns_version > 0)
		return WIRE_BAD_VERSION;
	return WIRE_OK;
}

static inline uint8_t lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

bool wire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b,
		     size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

void wire_name_lower(uint8_t *dst, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = lower(src[i]);
}

int wire_name_labels(const uint8_t *name, size_t len)
{
	int n = 0;
	for (size_t p = 0; p < len && name[p]; p += (size_t)name[p] + 1)
		n++;
	return n;
}

int wire_name_from_text(const char *text, const uint8_t *origin,
			size_t origin_len, uint8_t *out, const char **why)
{
	size_t outlen = 0;
	const char *s = text;

	*why = NULL;
	if (strcmp(text, "@") == 0) {
		if (!origin) {
			*why = "'@' needs an origin";
			return -1;
		}
		memcpy(out, origin, origin_len);
		return (int)origin_len;
	}
	if (strcmp(text, ".") == 0) {
		out[0] = 0;
		return 1;
	}
	if (*s == '\0') {
		*why = "empty name";
		return -1;
	}
	while (*s) {
		size_t lab = outlen++; /* length octet goes here */
		size_t n = 0;
		while (*s && *s != '.') {
			int c = (unsigned char)*s++;
			if (c == '\\') {
				if (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' &&
				    s[1] <= '9' && s[2] >= '0' && s[2] <= '9') {
					c = (s[0] - '0') * 100 +
					    (s[1] - '0') * 10 + (s[2] - '0');
					s += 3;
					if (c > 255) {
						*why = "escape \\DDD above 255";
						return -1;
					}
				} else if (*s) {
					c = (unsigned char)*s++;
				} else {
					*why = "name ends in a backslash";
					return -1;
				}
			}
			if (++n > WIRE_LABEL_MAX) {
				*why = "label longer than 63 octets";
				return -1;
			}
			if (outlen + 1 >= WIRE_NAME_MAX) {
				*why = "name longer than 255 octets";
				return -1;
			}
			out[outlen++] = (uint8_t)c;
		}
		if (n == 0) {
			*why = "empty label";
			return -1;
		}
		out[lab] = (uint8_t)n;
		if (*s == '.') {
			s++;
			if (*s == '\0') { /* absolute */
				out[outlen++] = 0;
				return (int)outlen;
			}
		}
	}
	if (!origin) {
		out[outlen++] = 0;
		return (int)outlen;
	}
	if (outlen + origin_len > WIRE_NAME_MAX) {
		*why = "name longer than 255 octets";
		return -1;
	}
	memcpy(out + outlen, origin, origin_len);
	return (int)(outlen + origin_len);
}

char *wire_name_to_text(const uint8_t *name, size_t len, char *buf,
			size_t size)
{
	size_t o = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	if (len == 0 || name[0] == 0) {
		snprintf(buf, size, ".");
		return buf;
	}
	for (size_t p = 0; p < len && name[p] && o + 5 < size;) {
		uint8_t n = name[p++];
		for (uint8_t i = 0; i < n && p < len && o + 6 < size; i++) {
			uint8_t c = name[p++];
			if (c == '.' || c == '\\' || c == '"' || c == ';' ||
			    c == '(' || c == ')' || c == '@' || c == '$')
				o += (size_t)snprintf(buf + o, size - o,
						      "\\%c", c);
			else if (c <= ' ' || c >= 127)
				o += (size_t)snprintf(buf + o, size - o,
						      "\\%03u", c);
			else
				buf[o++] = (char)c;
		}
		buf[o++] = '.';
	}
	buf[o < size ? o : size - 1] = '\0';
	return buf;
}

void wire_put_bytes(struct wire_buf *b, const void *src, size_t n)
{
	if (b->overflow || b->cap - b->len < n) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

void wire_put16(struct wire_buf *b, uint16_t v)
{
	uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	wire_put_bytes(b, t, 2);
}

void wire_put32(struct wire_buf *b, uint32_t v)
{
	uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};
	wire_put_bytes(b, t, 4);
}

/* A name inside RDATA that ends at or before end; advances *p. */
static bool rdata_name(const uint8_t *msg, size_t len, size_t *p, size_t end)
{
	return wire_read_name(msg, len, p, NULL) > 0 && *p <= end;
}

/*
 * The RDATA of the types a client decodes field by field must hold what
 * the type says: addresses of their size, and the names of NS, CNAME,
 * PTR, DNAME, MX, SRV and SOA (the ones wire_copy_rr decompresses) whole
 * and filling the RDATA with the fixed fields.  Other types are opaque.
 */
static bool rdata_ok(const uint8_t *msg, size_t len, const struct wire_rr *rr)
{
	size_t p = rr->rdata, end = rr->rdata + rr->rdlen;

	switch (rr->type) {
	case WIRE_T_A:
		return rr->rdlen == 4;
	case WIRE_T_AAAA:
		return rr->rdlen == 16;
	case WIRE_T_NS:
	case WIRE_T_CNAME:
	case WIRE_T_PTR:
	case WIRE_T_DNAME:
		return rdata_name(msg, len, &p, end) && p == end;
	case WIRE_T_MX:
		p += 2;
		return rr->rdlen >= 2 && rdata_name(msg, len, &p, end) &&
		       p == end;
	case WIRE_T_SRV:
		p += 6;
		return rr->rdlen >= 6 && rdata_name(msg, len, &p, end) &&
		       p == end;
	case WIRE_T_SOA:
		return rdata_name(msg, len, &p, end) &&
		       rdata_name(msg, len, &p, end) && end - p == 20;
	case WIRE_T_OPT:
		return opt_options_ok(msg, rr->rdata, rr->rdlen);
	case WIRE_T_TSIG: {
		size_t orig_id;
		return tsig_rdata(msg, len, rr->rdata, rr->rdlen, &orig_id);
	}
	default:
		return true;
	}
}

bool wire_check_message(const uint8_t *msg, size_t len)
{
	struct wire_rrs it;
	struct wire_rr rr;
	bool opt = false;

	if (!wire_rrs_begin(&it, msg, len))
		return false;
	while (wire_rrs_next(&it, &rr)) {
		if (!rdata_ok(msg, len, &rr))
			return false;
		if (rr.type == WIRE_T_OPT) {
			/* RFC 6891 6.1.1: one OPT, in the additional
			 * section, owned by the root. */
			if (opt || rr.section != WIRE_ADDITIONAL ||
			    msg[rr.start] != 0)
				return false;
			opt = true;
		}
		/* RFC 8945 5.1: TSIG is the last additional record. */
		if (rr.type == WIRE_T_TSIG &&
		    (rr.section != WIRE_ADDITIONAL || it.i != it.total))
			return false;
	}
	/* Every record the header counts, and nothing after them. */
	return !it.bad && it.i == it.total && it.off == len;
}

/* The last record of msg, which wire_check_message has accepted. */
static uint16_t last_type(const uint8_t *msg, size_t len)
{
	struct wire_rrs it;
	struct wire_rr rr;
	uint16_t type = 0;

	if (wire_rrs_begin(&it, msg, len))
		while (wire_rrs_next(&it, &rr))
			type = rr.type;
	return type;
}

static bool check_reply(uint8_t *reply, size_t len, const uint8_t *qname,
			size_t qname_len, uint16_t qtype, uint16_t qclass,
			bool tsig_error_ok)
{
	struct wire_header h;
	uint8_t name[WIRE_NAME_MAX];
	size_t off = WIRE_HEADER_LEN;

	if (!wire_read_header(reply, len, &h) || !(h.flags & WIRE_QR) ||
	    WIRE_OPCODE(h.flags) != 0 || !wire_check_message(reply, len))
		return false;
	/* RFC 8945 5.3.2: a server that cannot verify a signed query may
	 * answer NOTAUTH without the question, unsigned but with a TSIG
	 * record holding the error. */
	if (tsig_error_ok && h.qdcount == 0 &&
	    WIRE_RCODE(h.flags) == WIRE_NOTAUTH && h.arcount > 0 &&
	    last_type(reply, len) == WIRE_T_TSIG)
		return true;
	if (h.qdcount != 1)
		return false;
	int n = wire_read_name(reply, len, &off, name);
	if (n < 0 || len - off < 4 ||
	    !wire_name_equal(name, (size_t)n, qname, qname_len) ||
	    wire_get16(reply + off) != qtype ||
	    wire_get16(reply + off + 2) != qclass)
		return false;
	/* The question is written out in full: a pointer in it could only
	 * point into the header (found by fuzzing: the client's name would
	 * then be copied over a shorter, compressed question). */
	if (off != WIRE_HEADER_LEN + qname_len)
		return false;
	/* Echo the client's spelling (RFC 1035 7.3 says nothing of case,
	 * but clients using 0x20 randomisation compare it). */
	memcpy(reply + WIRE_HEADER_LEN, qname, qname_len);
	return true;
}

bool wire_check_reply(uint8_t *reply, size_t len, const uint8_t *qname,
		      size_t qname_len, uint16_t qtype, uint16_t qclass)
{
	return check_reply(reply, len, qname, qname_len, qtype, qclass, false);
}

bool wire_check_reply_signed(uint8_t *reply, size_t len, const uint8_t *qname,
			     size_t qname_len, uint16_t qtype, uint16_t qclass)
{
	return check_reply(reply, len, qname, qname_len, qtype, qclass, true);
}

bool wire_rrs_begin(struct wire_rrs *it, const uint8_t *msg, size_t len)
{
	memset(it, 0, sizeof(*it));
	it->msg = msg;
	it->len = len;
	it->off = WIRE_HEADER_LEN;
	if (!wire_read_header(msg, len, &it->hdr))
		return false;
	for (unsigned i = 0; i < it->hdr.qdcount; i++) {
		if (wire_read_name(msg, len, &it->off, NULL) < 0 ||
		    len - it->off < 4)
			return false;
		it->off += 4;
	}
	it->question_end = it->off;
	it->total = (unsigned)it->hdr.ancount + it->hdr.nscount +
		    it->hdr.arcount;
	return true;
}

bool wire_rrs_next(struct wire_rrs *it, struct wire_rr *rr)
{
	if (it->bad || it->i >= it->total)
		return false;
	rr->start = it->off;
	if (!wire_skip_rr(it->msg, it->len, &it->off, &rr->type, &rr->rdata,
			  &rr->rdlen)) {
		it->bad = true;
		return false;
	}
	rr->end = it->off;
	rr->ttl_at = rr->rdata - 6;
	rr->section = it->i < it->hdr.ancount ? WIRE_ANSWER
		      : it->i < (unsigned)it->hdr.ancount + it->hdr.nscount
			      ? WIRE_AUTHORITY
			      : WIRE_ADDITIONAL;
	it->i++;
	return true;
}

/* Find the question's end and the first OPT record of the additional
 * section (opt->rdlen == 0 and opt->end == 0 when there is none).
 * Returns false on a malformed message; *question_end is then 0 unless
 * the question was readable. */
static bool locate(const uint8_t *msg, size_t len, size_t *question_end,
		   struct wire_rr *opt)
{
	struct wire_rrs it;
	struct wire_rr rr;

	memset(opt, 0, sizeof(*opt));
	*question_end = 0;
	if (!wire_rrs_begin(&it, msg, len))
		return false;
	*question_end = it.question_end;
	while (wire_rrs_next(&it, &rr))
		if (rr.type == WIRE_T_OPT && rr.section == WIRE_ADDITIONAL &&
		    opt->end == 0)
			*opt = rr;
	return !it.bad;
}

size_t wire_truncate(uint8_t *msg, size_t len, size_t limit)
{
	size_t qend;
	struct wire_rr opt;

	/* A malformed record section still leaves the header and the
	 * question, which the caller has checked: keep just those. */
	if (!locate(msg, len, &qend, &opt))
		opt.start = opt.end = 0;
	if (qend == 0 || qend > limit)
		return 0;
	size_t out = qend;
	uint16_t ar = 0;
	if (opt.end > opt.start && qend + (opt.end - opt.start) <= limit) {
		memmove(msg + qend, msg + opt.start, opt.end - opt.start);
		out += opt.end - opt.start;
		ar = 1;
	}
	wire_set16(msg + 2, (uint16_t)(wire_get16(msg + 2) | WIRE_TC));
	wire_set16(msg + 6, 0);
	wire_set16(msg + 8, 0);
	wire_set16(msg + 10, ar);
	return out;
}

static bool listed(uint16_t code, const uint16_t *codes, size_t ncodes)
{
	for (size_t i = 0; i < ncodes; i++)
		if (codes[i] == code)
			return true;
	return false;
}

/*
 * Remove the options whose code is listed from the OPT record opt, and
 * with size != 0 set its UDP payload size.  One pass: kept options slide
 * down over removed ones, then the records after the OPT move up once,
 * so the cost is linear in the message whatever the number of options.
 * The record's fields are found from its RDATA offset, so the owner name
 * may have any length.  An option list that does not parse is left as
 * it is.  Returns the new length.
 */
static size_t edit_opt(uint8_t *msg, size_t len, const struct wire_rr *opt,
		       const uint16_t *codes, size_t ncodes, uint16_t size)
{
	size_t end = opt->rdata + opt->rdlen, w = opt->rdata;

	if (!opt_options_ok(msg, opt->rdata, opt->rdlen))
		return len;
	if (size)
		wire_set16(msg + opt->rdata - 8, size); /* the CLASS field */
	for (size_t p = opt->rdata; p < end;) {
		size_t olen = 4 + (size_t)wire_get16(msg + p + 2);
		if (!listed(wire_get16(msg + p), codes, ncodes)) {
			if (w != p)
				memmove(msg + w, msg + p, olen);
			w += olen;
		}
		p += olen;
	}
	if (w == end)
		return len;
	memmove(msg + w, msg + end, len - end);
	wire_set16(msg + opt->rdata - 2, (uint16_t)(w - opt->rdata));
	return len - (end - w);
}

size_t wire_strip_edns_option(uint8_t *msg, size_t len, uint16_t code)
{
	size_t qend;
	struct wire_rr opt;

	if (!locate(msg, len, &qend, &opt) || opt.end == 0)
		return len;
	return edit_opt(msg, len, &opt, &code, 1, 0);
}

size_t wire_relay_opt(uint8_t *msg, size_t len, uint16_t size)
{
	/* Options that belong to the upstream hop: its server cookie (RFC
	 * 7873 5.3), its name (RFC 5001 2.1: only to clients that ask, and
	 * the NSID is the upstream's, not ours) and its TCP keepalive
	 * (RFC 7828 3.3: about a connection the client does not have). */
	static const uint16_t hop[] = {WIRE_EDNS_COOKIE, WIRE_EDNS_NSID,
				       WIRE_EDNS_KEEPALIVE};
	size_t qend;
	struct wire_rr opt;

	if (!locate(msg, len, &qend, &opt) || opt.end == 0)
		return len;
	return edit_opt(msg, len, &opt, hop, sizeof(hop) / sizeof(hop[0]),
			size);
}

/* Copy one name, decompressed; false when malformed. */
static bool copy_name(const uint8_t *msg, size_t len, size_t *off,
		      struct wire_buf *out)
{
	uint8_t name[WIRE_NAME_MAX];
	int n = wire_read_name(msg, len, off, name);
	if (n < 0)
		return false;
	wire_put_bytes(out, name, (size_t)n);
	return true;
}

bool wire_copy_rr(const uint8_t *msg, size_t len, size_t *off,
		  struct wire_buf *out)
{
	size_t pos = *off;

	if (!copy_name(msg, len, &pos, out) || len - pos < 10)
		return false;
	uint16_t type = wire_get16(msg + pos);
	uint16_t rdlen = wire_get16(msg + pos + 8);
	size_t rd = pos + 10, end = rd + rdlen;
	if (end > len)
		return false;
	wire_put_bytes(out, msg + pos, 8); /* type, class, TTL */
	size_t rdlen_at = out->len;
	wire_put16(out, 0);
	size_t start = out->len;
	size_t p = rd;
	size_t fixed = 0; /* octets before the (first) name */
	int names = 0;
	switch (type) {
	case WIRE_T_NS:
	case WIRE_T_CNAME:
	case WIRE_T_PTR:
	case 39: /* DNAME */
		names = 1;
		break;
	case WIRE_T_MX:
		fixed = 2;
		names = 1;
		break;
	case WIRE_T_SRV:
		fixed = 6;
		names = 1;
		break;
	case WIRE_T_SOA:
		names = 2;
		break;
	}
	if (fixed > rdlen)
		return false;
	wire_put_bytes(out, msg + p, fixed);
	p += fixed;
	for (int i = 0; i < names; i++)
		if (!copy_name(msg, len, &p, out) || p > end)
			return false;
	wire_put_bytes(out, msg + p, end - p);
	if (!out->overflow)
		wire_set16(out->p + rdlen_at, (uint16_t)(out->len - start));
	*off = end;
	return true;
}

size_t wire_query_own_opt(uint8_t *msg, size_t len,
			  const struct wire_query *q, uint16_t size)
{
	const uint8_t opt[WIRE_OPT_BARE] = {
		0,                                     /* owner: root */
		0, WIRE_T_OPT,
		(uint8_t)(size >> 8), (uint8_t)size,   /* payload size */
		0, 0,                                  /* ext. rcode, version */
		q->do_bit ? 0x80 : 0, 0,               /* DO */
		0, 0,                                  /* no options */
	};
	size_t end = q->opt_off + q->opt_len;

	if (!q->has_opt || q->opt_len < sizeof(opt) || end > len)
		return len;
	memcpy(msg + q->opt_off, opt, sizeof(opt));
	memmove(msg + q->opt_off + sizeof(opt), msg + end, len - end);
	return len - q->opt_len + sizeof(opt);
}
