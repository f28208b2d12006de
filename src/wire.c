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

/* Validate an OPT record's fixed fields and option list (RFC 6891 6.1). */
static enum wire_verdict read_opt(const uint8_t *msg, size_t len,
				  size_t start, size_t rdata,
				  uint16_t rdlen, struct wire_query *q)
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
	for (size_t p = rdata, end = rdata + rdlen; p < end;) {
		if (end - p < 4 || end - p - 4 < wire_get16(msg + p + 2))
			return WIRE_BAD_FORMAT;
		p += 4 + (size_t)wire_get16(msg + p + 2);
	}
	(void)len;
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
	/* A query carries no answer or authority records. */
	if (q->hdr.ancount || q->hdr.nscount)
		return WIRE_BAD_FORMAT;
	for (unsigned i = 0; i < q->hdr.arcount; i++) {
		size_t start = off, rdata;
		uint16_t type, rdlen;
		if (!wire_skip_rr(msg, len, &off, &type, &rdata, &rdlen))
			return WIRE_BAD_FORMAT;
		if (type == WIRE_T_OPT) {
			enum wire_verdict v =
				read_opt(msg, len, start, rdata, rdlen, q);
			if (v != WIRE_OK)
				return v;
		}
	}
	if (off != len)
		return WIRE_BAD_FORMAT; /* trailing bytes: refuse to relay */
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

bool wire_check_reply(uint8_t *reply, size_t len, const uint8_t *qname,
		      size_t qname_len, uint16_t qtype, uint16_t qclass)
{
	struct wire_header h;
	uint8_t name[WIRE_NAME_MAX];
	size_t off = WIRE_HEADER_LEN;

	if (!wire_read_header(reply, len, &h) || !(h.flags & WIRE_QR) ||
	    WIRE_OPCODE(h.flags) != 0 || h.qdcount != 1)
		return false;
	int n = wire_read_name(reply, len, &off, name);
	if (n < 0 || len - off < 4 ||
	    !wire_name_equal(name, (size_t)n, qname, qname_len) ||
	    wire_get16(reply + off) != qtype ||
	    wire_get16(reply + off + 2) != qclass)
		return false;
	/* Echo the client's spelling (RFC 1035 7.3 says nothing of case,
	 * but clients using 0x20 randomisation compare it). */
	if (off == WIRE_HEADER_LEN + qname_len)
		memcpy(reply + WIRE_HEADER_LEN, qname, qname_len);
	return true;
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

/* Find the question's end and the OPT record, if any.  Returns false on a
 * malformed message; *question_end is then 0 unless the question was
 * readable. */
static bool locate(const uint8_t *msg, size_t len, size_t *question_end,
		   size_t *opt_start, size_t *opt_end)
{
	struct wire_rrs it;
	struct wire_rr rr;

	*opt_start = *opt_end = *question_end = 0;
	if (!wire_rrs_begin(&it, msg, len))
		return false;
	*question_end = it.question_end;
	while (wire_rrs_next(&it, &rr))
		if (rr.type == WIRE_T_OPT && rr.section == WIRE_ADDITIONAL) {
			*opt_start = rr.start;
			*opt_end = rr.end;
		}
	return !it.bad;
}

size_t wire_truncate(uint8_t *msg, size_t len, size_t limit)
{
	size_t qend, ostart, oend;

	/* A malformed record section still leaves the header and the
	 * question, which the caller has checked: keep just those. */
	if (!locate(msg, len, &qend, &ostart, &oend))
		ostart = oend = 0;
	if (qend == 0 || qend > limit)
		return 0;
	size_t out = qend;
	uint16_t ar = 0;
	if (oend > ostart && qend + (oend - ostart) <= limit) {
		memmove(msg + qend, msg + ostart, oend - ostart);
		out += oend - ostart;
		ar = 1;
	}
	wire_set16(msg + 2, (uint16_t)(wire_get16(msg + 2) | WIRE_TC));
	wire_set16(msg + 6, 0);
	wire_set16(msg + 8, 0);
	wire_set16(msg + 10, ar);
	return out;
}

/* Remove the options with code from the OPT record at [ostart, oend);
 * size != 0 also sets its UDP payload size.  Returns the new length. */
static size_t edit_opt(uint8_t *msg, size_t len, size_t ostart, size_t oend,
		       uint16_t code, uint16_t size)
{
	size_t rdlen_at = ostart + 9, p = ostart + 11;
	size_t end = oend;

	if (size)
		wire_set16(msg + ostart + 3, size);
	while (end - p >= 4) {
		size_t olen = 4 + (size_t)wire_get16(msg + p + 2);
		if (olen > end - p)
			break;
		if (wire_get16(msg + p) == code) {
			memmove(msg + p, msg + p + olen, len - p - olen);
			len -= olen;
			end -= olen;
			wire_set16(msg + rdlen_at,
				   (uint16_t)(wire_get16(msg + rdlen_at) -
					      olen));
		} else {
			p += olen;
		}
	}
	return len;
}

size_t wire_strip_edns_option(uint8_t *msg, size_t len, uint16_t code)
{
	size_t qend, ostart, oend;

	if (!locate(msg, len, &qend, &ostart, &oend) || oend == ostart)
		return len;
	return edit_opt(msg, len, ostart, oend, code, 0);
}

size_t wire_relay_opt(uint8_t *msg, size_t len, uint16_t size)
{
	size_t qend, ostart, oend;

	if (!locate(msg, len, &qend, &ostart, &oend) || oend == ostart)
		return len;
	return edit_opt(msg, len, ostart, oend, WIRE_EDNS_COOKIE, size);
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
