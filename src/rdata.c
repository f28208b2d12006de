/*
 * rdata.c - presentation-format record data to wire RDATA.
 *
 * Only the types splitdns serves from zone files are known here.  TXT has
 * one convenience over RFC 1035 master files: unquoted data is a single
 * string (split every 255 octets), so "v=spf1 -all" needs no inner quotes.
 */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errf.h"
#include "rdata.h"
#include "wire.h"

static const struct {
	const char *name;
	uint16_t type;
} types[] = {
	{"A", WIRE_T_A},       {"NS", WIRE_T_NS},   {"CNAME", WIRE_T_CNAME},
	{"SOA", WIRE_T_SOA},   {"PTR", WIRE_T_PTR}, {"MX", WIRE_T_MX},
	{"TXT", WIRE_T_TXT},   {"AAAA", WIRE_T_AAAA}, {"SRV", WIRE_T_SRV},
	{"CAA", WIRE_T_CAA},
};

uint16_t rdata_type_from_text(const char *text)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(text, types[i].name) == 0)
			return types[i].type;
	return 0;
}

const char *rdata_type_name(uint16_t type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].name;
	return NULL;
}

/* Parser state: a cursor over the data text and the output. */
struct rp {
	const char *s;
	struct wire_buf out;
	const uint8_t *origin;
	size_t origin_len;
	char *why;
	size_t whylen;
};

/* The reason into p->why; returns -1. */
static int bad(struct rp *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bad(struct rp *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verrf(p->why, p->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Next whitespace-separated token into tok (size bytes); false at end.
 * A token too long for tok comes back empty, which every caller
 * rejects, rather than cut short and misread. */
static bool token(struct rp *p, char *tok, size_t size)
{
	size_t n = 0;
	bool cut = false;

	while (isspace((unsigned char)*p->s))
		p->s++;
	if (!*p->s)
		return false;
	while (*p->s && !isspace((unsigned char)*p->s)) {
		if (n + 1 < size)
			tok[n++] = *p->s;
		else
			cut = true;
		p->s++;
	}
	tok[cut ? 0 : n] = '\0';
	return true;
}

static bool at_end(struct rp *p)
{
	while (isspace((unsigned char)*p->s))
		p->s++;
	return *p->s == '\0';
}

static int number(struct rp *p, const char *what, unsigned long max,
		  unsigned long *v)
{
	char tok[32], *end;

	if (!token(p, tok, sizeof(tok)))
		return bad(p, "missing %s", what);
	errno = 0;
	*v = strtoul(tok, &end, 10);
	if (!isdigit((unsigned char)tok[0]) || *end || errno || *v > max)
		return bad(p, "bad %s '%s' (0..%lu)", what, tok, max);
	return 0;
}

static int name(struct rp *p, const char *what)
{
	char tok[1024];
	uint8_t wire[WIRE_NAME_MAX];
	const char *why;

	if (!token(p, tok, sizeof(tok)))
		return bad(p, "missing %s", what);
	int n = wire_name_from_text(tok, p->origin, p->origin_len, wire, &why);
	if (n < 0)
		return bad(p, "bad %s '%s': %s", what, tok, why);
	wire_put_bytes(&p->out, wire, (size_t)n);
	return 0;
}

/* One character-string (RFC 1035 3.3) from a quoted token: handles \" \\
 * and \DDD.  p->s is at the opening quote. */
static int quoted(struct rp *p)
{
	uint8_t str[256];
	size_t n = 0;

	p->s++;
	while (*p->s && *p->s != '"') {
		int c = (unsigned char)*p->s++;
		if (c == '\\') {
			if (isdigit((unsigned char)p->s[0]) &&
			    isdigit((unsigned char)p->s[1]) &&
			    isdigit((unsigned char)p->s[2])) {
				c = (p->s[0] - '0') * 100 + (p->s[1] - '0') * 10 +
				    (p->s[2] - '0');
				p->s += 3;
				if (c > 255)
					return bad(p, "%s", "escape above \\255");
			} else if (*p->s) {
				c = (unsigned char)*p->s++;
			}
		}
		if (n == 255)
			return bad(p, "%s",
				   "quoted string longer than 255 octets");
		str[n++] = (uint8_t)c;
	}
	if (*p->s != '"')
		return bad(p, "%s", "missing closing quote");
	p->s++;
	uint8_t len = (uint8_t)n;
	wire_put_bytes(&p->out, &len, 1);
	wire_put_bytes(&p->out, str, n);
	return 0;
}

static int txt(struct rp *p)
{
	while (isspace((unsigned char)*p->s))
		p->s++;
	if (*p->s != '"') {
		/* Unquoted: the whole text is one string, in 255-octet
		 * pieces (RFC 7208 3.3 joins them again). */
		size_t n = strlen(p->s);
		do {
			uint8_t len = (uint8_t)(n > 255 ? 255 : n);
			wire_put_bytes(&p->out, &len, 1);
			wire_put_bytes(&p->out, p->s, len);
			p->s += len;
			n -= len;
		} while (n > 0);
		return 0;
	}
	while (!at_end(p)) {
		if (*p->s != '"')
			return bad(p, "%s", "text outside quotes");
		if (quoted(p) < 0)
			return -1;
	}
	return 0;
}

static int caa(struct rp *p)
{
	unsigned long flags;
	char tag[64];

	if (number(p, "flags", 255, &flags) < 0)
		return -1;
	if (!token(p, tag, sizeof(tag)))
		return bad(p, "%s", "missing tag");
	if (!tag[0])
		return bad(p, "%s", "tag empty or longer than 63 characters");
	for (const char *t = tag; *t; t++)
		if (!isalnum((unsigned char)*t))
			return bad(p, "bad tag '%s'", tag);
	uint8_t f = (uint8_t)flags, tl = (uint8_t)strlen(tag);
	wire_put_bytes(&p->out, &f, 1);
	wire_put_bytes(&p->out, &tl, 1);
	wire_put_bytes(&p->out, tag, tl);
	while (isspace((unsigned char)*p->s))
		p->s++;
	if (*p->s == '"') {
		/* The value is the string's content, without a length. */
		size_t before = p->out.len;
		if (quoted(p) < 0)
			return -1;
		memmove(p->out.p + before, p->out.p + before + 1,
			p->out.len - before - 1);
		p->out.len--;
	} else {
		wire_put_bytes(&p->out, p->s, strlen(p->s));
		p->s += strlen(p->s);
	}
	return 0;
}

static int parse(uint16_t type, struct rp *p)
{
	char tok[128];
	unsigned long v;

	switch (type) {
	case WIRE_T_A:
	case WIRE_T_AAAA: {
		uint8_t addr[16];
		int af = type == WIRE_T_A ? AF_INET : AF_INET6;
		if (!token(p, tok, sizeof(tok)) || inet_pton(af, tok, addr) != 1)
			return bad(p, "bad %s address", rdata_type_name(type));
		wire_put_bytes(&p->out, addr, type == WIRE_T_A ? 4 : 16);
		return 0;
	}
	case WIRE_T_NS:
	case WIRE_T_CNAME:
	case WIRE_T_PTR:
		return name(p, "target name");
	case WIRE_T_MX:
		if (number(p, "preference", 65535, &v) < 0)
			return -1;
		wire_put16(&p->out, (uint16_t)v);
		return name(p, "exchange");
	case WIRE_T_SRV:
		for (int i = 0; i < 3; i++) {
			static const char *const what[] = {"priority", "weight",
							   "port"};
			if (number(p, what[i], 65535, &v) < 0)
				return -1;
			wire_put16(&p->out, (uint16_t)v);
		}
		return name(p, "target");
	case WIRE_T_SOA: {
		static const char *const what[] = {"serial", "refresh",
						   "retry", "expire",
						   "minimum"};
		if (name(p, "mname") < 0 || name(p, "rname") < 0)
			return -1;
		for (int i = 0; i < 5; i++) {
			if (number(p, what[i], 4294967295UL, &v) < 0)
				return -1;
			wire_put32(&p->out, (uint32_t)v);
		}
		return 0;
	}
	case WIRE_T_TXT:
		return txt(p);
	case WIRE_T_CAA:
		return caa(p);
	}
	return bad(p, "%s", "unsupported type");
}

int rdata_from_text(uint16_t type, const char *text, const uint8_t *origin,
		    size_t origin_len, uint8_t *out, char *why, size_t whylen)
{
	struct rp p = {text, {out, 0, RDATA_MAX, false}, origin, origin_len,
		       why, whylen};

	if (parse(type, &p) < 0)
		return -1;
	if (!at_end(&p))
		return bad(&p, "unexpected '%s' after the data", p.s);
	if (p.out.overflow)
		return bad(&p, "%s", "data longer than 65535 octets");
	return (int)p.out.len;
}
