/*
 * wire.h - DNS message codec: header, names, question, EDNS OPT, reply
 * surgery (truncation, option stripping).
 *
 * Every read of message bytes is bounds-checked against the length the
 * caller gives; names are read with a hop limit and backward-only
 * compression pointers.  This module owns no memory and depends on nothing
 * else in splitdns.
 */
#ifndef SPLITDNS_WIRE_H
#define SPLITDNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_HEADER_LEN 12
#define WIRE_NAME_MAX 255  /* octets in an uncompressed wire name */
#define WIRE_LABEL_MAX 63
#define WIRE_UDP_MIN 512   /* RFC 1035 4.2.1 limit without EDNS */
#define WIRE_MSG_MAX 65535

/* Header flag bits (RFC 1035 4.1.1, RFC 4035 3.2). */
#define WIRE_QR 0x8000u
#define WIRE_AA 0x0400u
#define WIRE_TC 0x0200u
#define WIRE_RD 0x0100u
#define WIRE_RA 0x0080u
#define WIRE_AD 0x0020u
#define WIRE_CD 0x0010u
#define WIRE_OPCODE(flags) (((flags) >> 11) & 0xfu)
#define WIRE_RCODE(flags) ((flags) & 0xfu)

enum wire_type {
	WIRE_T_A = 1,
	WIRE_T_NS = 2,
	WIRE_T_CNAME = 5,
	WIRE_T_SOA = 6,
	WIRE_T_PTR = 12,
	WIRE_T_MX = 15,
	WIRE_T_TXT = 16,
	WIRE_T_AAAA = 28,
	WIRE_T_SRV = 33,
	WIRE_T_DNAME = 39,
	WIRE_T_OPT = 41,
	WIRE_T_SVCB = 64,  /* RFC 9460 */
	WIRE_T_HTTPS = 65,
	WIRE_T_TKEY = 249, /* RFC 2930 */
	WIRE_T_TSIG = 250, /* RFC 8945 */
	WIRE_T_IXFR = 251, /* RFC 1995 */
	WIRE_T_AXFR = 252, /* RFC 5936 */
	WIRE_T_ANY = 255,
	WIRE_T_CAA = 257,
};

#define WIRE_CLASS_IN 1
#define WIRE_CLASS_CH 3    /* Chaos: version.bind and friends */
#define WIRE_CLASS_HS 4
#define WIRE_CLASS_NONE 254 /* RFC 2136 */
#define WIRE_CLASS_ANY 255

enum wire_rcode {
	WIRE_NOERROR = 0,
	WIRE_FORMERR = 1,
	WIRE_SERVFAIL = 2,
	WIRE_NXDOMAIN = 3,
	WIRE_NOTIMP = 4,
	WIRE_REFUSED = 5,
	WIRE_NOTAUTH = 9,  /* RFC 8945 5.2: TSIG errors */
	WIRE_BADVERS = 16, /* extended: needs an OPT record */
};

/* The TSIG error field (RFC 8945 3). */
#define WIRE_TSIG_BADSIG 16
#define WIRE_TSIG_BADKEY 17
#define WIRE_TSIG_BADTIME 18

/* EDNS option codes. */
#define WIRE_EDNS_NSID 3       /* RFC 5001 */
#define WIRE_EDNS_COOKIE 10    /* RFC 7873 */
#define WIRE_EDNS_KEEPALIVE 11 /* RFC 7828 */

/* An OPT record without options: owner, type, class, TTL, RDLENGTH. */
#define WIRE_OPT_BARE 11

struct wire_header {
	uint16_t id;
	uint16_t flags;
	uint16_t qdcount;
	uint16_t ancount;
	uint16_t nscount;
	uint16_t arcount;
};

/* A client query, as parsed by wire_parse_query().  Offsets point into the
 * packet the caller owns. */
struct wire_query {
	struct wire_header hdr;
	uint8_t qname[WIRE_NAME_MAX]; /* as sent: the client's letter case */
	size_t qname_len;
	size_t question_end; /* offset just past QTYPE/QCLASS */
	uint16_t qtype;
	uint16_t qclass;
	bool has_opt;
	size_t opt_off;       /* the OPT record's offset and length */
	size_t opt_len;
	uint16_t udp_size;    /* the client's EDNS payload size, as sent */
	uint8_t edns_version;
	bool do_bit;
	/* A zone transfer (QTYPE AXFR or IXFR; an IXFR query's authority
	 * SOA, RFC 1995 3, is skipped).  The class is qclass as sent:
	 * WIRE_CLASS_IN, _CH, _HS, _ANY or any other value. */
	bool zone_transfer;
	/* A TSIG record, always the last additional record (RFC 8945 5.1;
	 * elsewhere the query is WIRE_BAD_FORMAT): its offset (the key
	 * name, possibly compressed: read it with wire_read_name) and its
	 * whole length.  Its RDATA has been checked field by field. */
	bool has_tsig;
	size_t tsig_off;
	size_t tsig_len;
	/* A TKEY record in the additional section (RFC 2930 4: a key
	 * negotiation; QTYPE TKEY without one is WIRE_BAD_FORMAT). */
	bool has_tkey;
};

/* What to do with a packet that claims to be a query. */
enum wire_verdict {
	WIRE_OK,
	WIRE_DROP,        /* too short, or QR=1: never answer */
	WIRE_BAD_FORMAT,  /* answer FORMERR */
	WIRE_BAD_OPCODE,  /* answer NOTIMP */
	WIRE_BAD_VERSION, /* answer BADVERS (EDNS version > 0) */
};

/* A bounded output cursor.  Writes past cap set overflow and write nothing. */
struct wire_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
	bool overflow;
};

static inline uint16_t wire_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t wire_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static inline void wire_set16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wire_set32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Read the 12-byte header.  Returns false when len < 12. */
bool wire_read_header(const uint8_t *msg, size_t len, struct wire_header *h);

/*
 * Read the (possibly compressed) name at *off into out, uncompressed.
 * Pointers must point strictly before the current name's start (RFC 1035
 * 4.1.4; this also rules out loops).  On success advances *off past the
 * name as it stands in the message and returns the name's length (>= 1);
 * returns -1 on a malformed name.  out may be NULL to only skip.
 */
int wire_read_name(const uint8_t *msg, size_t len, size_t *off,
		   uint8_t *out);

/* Skip one resource record at *off; on success stores its type and the
 * offsets of its RDATA.  Returns false when the record is cut short. */
bool wire_skip_rr(const uint8_t *msg, size_t len, size_t *off,
		  uint16_t *type, size_t *rdata_off, uint16_t *rdlen);

/* One resource record as a cursor finds it; offsets into the message. */
struct wire_rr {
	size_t start;   /* the owner name */
	size_t end;     /* just past the RDATA */
	uint16_t type;
	size_t ttl_at;  /* offset of the 32-bit TTL */
	size_t rdata;
	uint16_t rdlen;
	int section;    /* WIRE_ANSWER, WIRE_AUTHORITY or WIRE_ADDITIONAL */
};

enum { WIRE_ANSWER, WIRE_AUTHORITY, WIRE_ADDITIONAL };

/* A walk over the records of a message, after its question section. */
struct wire_rrs {
	const uint8_t *msg;
	size_t len;
	size_t off;
	struct wire_header hdr;
	size_t question_end;
	unsigned i, total;
	bool bad;       /* the walk stopped at a malformed record */
};

/* Start a walk: reads the header and skips every question.  False when
 * those are malformed. */
bool wire_rrs_begin(struct wire_rrs *it, const uint8_t *msg, size_t len);

/* The next record in *rr; false at the end, or with it->bad set when the
 * record is cut short. */
bool wire_rrs_next(struct wire_rrs *it, struct wire_rr *rr);

/*
 * Parse and validate a client query (RFC 1035 4.1, RFC 6891 6.1).  On
 * WIRE_OK, WIRE_BAD_VERSION and (where the question was readable)
 * WIRE_BAD_OPCODE/WIRE_BAD_FORMAT, q->hdr holds the header; q->qname_len
 * is 0 when no question could be read.
 */
enum wire_verdict wire_parse_query(const uint8_t *msg, size_t len,
				   struct wire_query *q);

/* Case-insensitive comparison of two uncompressed wire names. */
bool wire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b,
		     size_t blen);

/* Lower-case a wire name (length octets are < 64 and so never change). */
void wire_name_lower(uint8_t *dst, const uint8_t *src, size_t len);

/* Number of labels in a wire name, root excluded. */
int wire_name_labels(const uint8_t *name, size_t len);

/*
 * Convert presentation text to a wire name (RFC 1035 5.1: \. and \DDD
 * escapes).  "@" is origin; a name not ending in "." is relative to origin
 * (origin may be NULL for absolute-only).  Returns the length or -1, with a
 * reason in *why.
 */
int wire_name_from_text(const char *text, const uint8_t *origin,
			size_t origin_len, uint8_t *out, const char **why);

/* Write name as dotted text with escapes into buf (at least 1010 bytes
 * covers any name).  Returns buf. */
char *wire_name_to_text(const uint8_t *name, size_t len, char *buf,
			size_t size);

void wire_put_bytes(struct wire_buf *b, const void *src, size_t n);
void wire_put16(struct wire_buf *b, uint16_t v);
void wire_put32(struct wire_buf *b, uint32_t v);

/*
 * Walk a whole message within its bounds: the header's counts match the
 * questions and records present, every name reads (backward pointers
 * only, hop limit), A and AAAA data have their size, the names inside
 * NS, CNAME, PTR, DNAME, MX, SRV and SOA data are whole and fill the
 * RDATA with the fixed fields, there is at most one OPT record, in the
 * additional section with the root as owner and whole options (RFC 6891
 * 6.1), a TSIG record only as the last record with whole fields (RFC 8945
 * 5.1), and no byte follows the last record.  True when it passes.
 */
bool wire_check_message(const uint8_t *msg, size_t len);

/*
 * Check an upstream reply against the query that was sent: QR=1, opcode
 * QUERY, the whole message well formed (wire_check_message), one
 * question equal (ignoring case) to qname/qtype/qclass.  On success the
 * reply's question name is overwritten with the client's spelling
 * (qname) and true is returned: the reply can be relayed and stored.
 * False: answer SERVFAIL.
 */
bool wire_check_reply(uint8_t *reply, size_t len, const uint8_t *qname,
		      size_t qname_len, uint16_t qtype, uint16_t qclass);

/*
 * wire_check_reply for a query that carried a TSIG record: also accepts
 * a server's TSIG error reply (RCODE NOTAUTH, no question, a TSIG record
 * last; RFC 8945 5.2.2 and 5.3.2), which the caller relays as it is.
 */
bool wire_check_reply_signed(uint8_t *reply, size_t len, const uint8_t *qname,
			     size_t qname_len, uint16_t qtype, uint16_t qclass);

/*
 * Cut a reply down to header, question and OPT record with TC=1, so that
 * it fits in limit bytes (RFC 2181 9, RFC 6891 7).  Returns the new length
 * (<= limit), or 0 when even the header and question do not fit or the
 * reply is malformed.
 */
size_t wire_truncate(uint8_t *msg, size_t len, size_t limit);

/*
 * Copy the resource record at *off in msg to out, with every name that
 * may be compressed (owner, and the names inside NS, CNAME, SOA, PTR, MX,
 * SRV and DNAME data) written out in full, so the record can stand in
 * another message.  Advances *off; false on a malformed record.
 */
bool wire_copy_rr(const uint8_t *msg, size_t len, size_t *off,
		  struct wire_buf *out);

/*
 * The client's OPT is hop-by-hop (RFC 6891 6.1.1): replace the OPT record
 * of query msg (len bytes, parsed into q) in place by a bare one of ours,
 * with payload size, EDNS version 0, the client's DO bit and no options
 * (no cookie, no client subnet).  Records after it stay.  Returns the new
 * length, never more than len; len unchanged when q has no OPT.
 */
size_t wire_query_own_opt(uint8_t *msg, size_t len,
			  const struct wire_query *q, uint16_t size);

/*
 * Prepare an upstream reply's OPT record (the first of its additional
 * section, whatever its owner) for a client: advertise our UDP payload
 * size, not the upstream's, and drop the options of the upstream hop:
 * COOKIE (RFC 7873 5.3: a server cookie made for us is not the
 * client's), NSID (RFC 5001 2.1: sent only to a client that asked, and
 * it names the upstream) and TCP keepalive (RFC 7828).  Linear in the
 * message length, whatever the number of options; returns the new
 * length (unchanged when the message or its options do not parse).
 */
size_t wire_relay_opt(uint8_t *msg, size_t len, uint16_t size);

/* Remove every EDNS option with the given code from the reply's OPT
 * record.  Returns the new length (unchanged when there is none). */
size_t wire_strip_edns_option(uint8_t *msg, size_t len, uint16_t code);

#endif
