/*
 * answer.h - build replies locally: answers from the zone store (data,
 * CNAME chains, NODATA, NXDOMAIN) and error replies (FORMERR, NOTIMP,
 * SERVFAIL, REFUSED, BADVERS, NOTAUTH with a TSIG error).
 *
 * Replies are written into the caller's buffer without allocation.  Every
 * reply carries the client's ID and, when the question was readable, the
 * question exactly as the client sent it.
 */
#ifndef SPLITDNS_ANSWER_H
#define SPLITDNS_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct zone;

/* At most this many CNAMEs are followed inside local data. */
#define ANSWER_MAX_CHAIN 16

/* Where a local CNAME chain leaves local data. */
struct answer_chase {
	const uint8_t *target; /* NULL: the answer is complete */
	size_t target_len;
	size_t body_len;       /* the reply up to (without) its OPT record */
	uint16_t ancount;      /* CNAME records in that body */
};

/*
 * Answer q (parsed from pkt) from z into out (cap bytes).  Returns the
 * reply's length, or 0 when the name has no local data and the query must
 * be forwarded.  edns_size is the payload size advertised in our OPT.
 * When a CNAME chain leads out of local data, the reply holds the chain
 * and chase (if not NULL) says where it ends; chase->target points into
 * z and lives as long as z.
 */
size_t answer_local(const struct zone *z, const struct wire_query *q,
		    const uint8_t *pkt, uint16_t edns_size, uint8_t *out,
		    size_t cap, struct answer_chase *chase);

/* How blocked names are answered (from block.answer and block.ttl). */
struct answer_block {
	int mode; /* enum conf_block_mode */
	bool has_a, has_aaaa;
	uint8_t a[4], aaaa[16];
	uint32_t ttl;
};

/*
 * The blocking answer to q: 0.0.0.0 / :: (null), the configured
 * addresses, NXDOMAIN, NODATA or REFUSED.  Negative answers carry a SOA
 * whose minimum is the block TTL, so that clients cache them as long as
 * the positive ones (RFC 2308 5).
 */
size_t answer_blocked(const struct answer_block *blk,
		      const struct wire_query *q, const uint8_t *pkt,
		      uint16_t edns_size, uint8_t *out, size_t cap);

/* Append our OPT record for a reply to q with rcode (RFC 6891 6.1.2). */
void answer_opt(struct wire_buf *b, const struct wire_query *q,
		unsigned rcode, uint16_t edns_size);

/*
 * An error reply with rcode (WIRE_BADVERS included) to q from pkt.  The
 * question is echoed when q has one.  NOTIMP for an opcode other than
 * QUERY sets only QR and the opcode (RFC 8906 3.1.4); the others set RA
 * and copy RD and CD.  Returns the length (0 only when cap is below a
 * header).
 */
size_t answer_error(const struct wire_query *q, const uint8_t *pkt,
		    unsigned rcode, uint16_t edns_size, uint8_t *out,
		    size_t cap);

/*
 * The reply to a signed query (q->has_tsig) whose key is not ours (RFC
 * 8945 5.2.2): RCODE NOTAUTH, the question, our OPT when q had one, and
 * last an unsigned TSIG record (RFC 8945 5.3.2) with the request's key
 * and algorithm names, time signed and fudge, MAC size 0, the request's
 * original ID and tsig_error (WIRE_TSIG_BADKEY) in its error field.
 * Returns the length; 0 when q has no TSIG or the reply does not fit.
 */
size_t answer_tsig_error(const struct wire_query *q, const uint8_t *pkt,
			 uint16_t tsig_error, uint16_t edns_size, uint8_t *out,
			 size_t cap);

#endif
