/*
 * fuzz_wire.c - libFuzzer target for the packet path that sees untrusted
 * bytes: query validation, error replies, and the surgery done on
 * upstream replies (check, truncate, strip options, copy records).
 *
 *   ./configure --enable-fuzzing CC=clang && make fuzz/fuzz_wire
 *   fuzz/fuzz_wire -max_total_time=60 fuzz/corpus/wire
 * (fuzz/README: all targets; fuzz/replay_wire replays the corpus.)
 */
#include <config.h>

#include "../src/answer.h"
#include "../src/wire.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[WIRE_MSG_MAX];
	struct wire_query q;
	uint8_t *copy;

	if (size > WIRE_MSG_MAX)
		return 0;
	/* As a query. */
	enum wire_verdict v = wire_parse_query(data, size, &q);
	if (v != WIRE_DROP) {
		size_t n = answer_error(&q, data, WIRE_FORMERR, 1232, out,
					sizeof(out));
		if (n > sizeof(out))
			abort();
	}
	/* As an upstream reply: every transformation on a private copy. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (v == WIRE_OK)
		(void)wire_check_reply(copy, size, q.qname, q.qname_len,
				       q.qtype, q.qclass);
	size_t len = wire_strip_edns_option(copy, size, WIRE_EDNS_COOKIE);
	if (len > size)
		abort();
	size_t t = wire_truncate(copy, len, 512);
	if (t > 512)
		abort();
	memcpy(copy, data, size);
	struct wire_header h;
	if (wire_read_header(copy, size, &h)) {
		size_t off = WIRE_HEADER_LEN;
		struct wire_buf b = {out, 0, sizeof(out), false};
		for (unsigned i = 0; i < h.qdcount && i < 4; i++) {
			if (wire_read_name(copy, size, &off, NULL) < 0 ||
			    size - off < 4)
				goto done;
			off += 4;
		}
		for (unsigned i = 0; i < h.ancount && i < 64; i++)
			if (!wire_copy_rr(copy, size, &off, &b))
				break;
		if (b.len > sizeof(out))
			abort();
	}
done:
	free(copy);
	return 0;
}
