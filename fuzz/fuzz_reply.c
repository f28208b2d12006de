/*
 * fuzz_reply.c - libFuzzer target for the path of an upstream reply, in
 * the order query.c takes it: wire_check_reply against the question the
 * reply carries (sent in another letter case), rebind protection
 * (policy_rebind), the OPT edit (wire_relay_opt), cache_store and
 * cache_lookup (TTLs aged), wire_truncate for a UDP client, and the
 * record walk that copies records into another message.
 *
 * The policy comes from a fixed configuration loaded once; the cache is
 * made for each input, so that a finding replays alone.
 */
#include <config.h>

#include <ctype.h>

#include "../src/cache.h"
#include "../src/conf.h"
#include "../src/policy.h"
#include "fuzz.h"

static const char main_conf[] =
    "listen = [\"127.0.0.1:5300\"];\n"
    "upstream: { servers = [\"192.0.2.53\"]; };\n"
    "forward = ({ domain = \"corp.example\"; servers = [\"192.0.2.9\"]; });\n"
    "rebind_ok = [\"ok.example\"];\n";

static struct policy *the_policy(void)
{
	static struct policy *p;
	char err[CONF_ERR_MAX];

	if (!p) {
		const char *path =
		    fuzz_write("main.conf", main_conf, sizeof(main_conf) - 1);
		struct conf *cfg = conf_load(path, NULL, 0, err, sizeof(err));
		if (!cfg || !(p = policy_build(cfg, err, sizeof(err))))
			abort();
		conf_free(cfg);
	}
	return p;
}

/* Every record of msg must copy into a message of its own. */
static void copy_all(const uint8_t *msg, size_t len)
{
	static uint8_t out[WIRE_MSG_MAX];
	struct wire_buf b = {out, 0, sizeof(out), false};
	struct wire_rrs it;
	struct wire_rr rr;

	if (!wire_rrs_begin(&it, msg, len))
		return;
	while (wire_rrs_next(&it, &rr)) {
		size_t off = rr.start;
		if (wire_copy_rr(msg, len, &off, &b) && off != rr.end)
			abort(); /* the walk and the copy disagree */
		b.len = 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t msg[WIRE_MSG_MAX], out[WIRE_MSG_MAX];
	uint8_t qname[WIRE_NAME_MAX], client[WIRE_NAME_MAX], pkt[512];
	size_t off = WIRE_HEADER_LEN, plen;
	struct wire_query q;

	if (size < WIRE_HEADER_LEN + 5 || size > WIRE_MSG_MAX)
		return 0;
	memcpy(msg, data, size);
	/* The question the reply claims to answer, asked as a client with
	 * its own spelling (RFC 1035 2.3.3: case-insensitive). */
	int qlen = wire_read_name(msg, size, &off, qname);
	if (qlen < 0 || size - off < 4)
		return 0;
	uint16_t qtype = wire_get16(msg + off),
		 qclass = wire_get16(msg + off + 2);
	for (int i = 0; i < qlen; i++)
		client[i] = (uint8_t)(i % 2 ? toupper(qname[i]) : qname[i]);
	if (qclass != 1 || !fuzz_query(client, (size_t)qlen, qtype, data[3] & 1,
				       pkt, &plen, &q))
		return 0;
	size_t len = size;
	if (!wire_check_reply(msg, len, client, (size_t)qlen, qtype, qclass))
		return 0;
	/* The question now has the client's spelling, where it is written
	 * out in full (a compressed question keeps the upstream's). */
	if (off == WIRE_HEADER_LEN + (size_t)qlen &&
	    memcmp(msg + WIRE_HEADER_LEN, client, (size_t)qlen) != 0)
		abort();
	(void)policy_rebind(the_policy(), 0, client, (size_t)qlen, msg, len);
	size_t n = wire_relay_opt(msg, len, 1232);
	if (n > len)
		abort();
	len = n;
	copy_all(msg, len);

	struct cache_limits lim = {16, 0, 86400, 300, 3600};
	struct cache *c = cache_new(&lim);
	uint8_t key[CACHE_KEY_MAX];
	if (!c)
		abort();
	size_t klen = cache_key(key, &q, 0, 1);
	if (klen > sizeof(key))
		abort();
	cache_store(c, key, klen, msg, len, 1000);
	/* Later by a time the input picks: TTLs age or the entry expires. */
	uint64_t later = 1000 + (uint64_t)wire_get16(data) * 1000;
	struct cache_hit hit;
	n = cache_lookup(c, key, klen, later, out, sizeof(out), &hit);
	if (n > sizeof(out) || (n && n < WIRE_HEADER_LEN) || (n && hit.stale))
		abort();
	if (!n) {
		/* Past the TTL: the stale copy, every TTL 30. */
		n = cache_lookup_stale(c, key, klen, later, 30, out,
				       sizeof(out));
		if (n > sizeof(out) || (n && n < WIRE_HEADER_LEN))
			abort();
	}
	if (n) {
		copy_all(out, n);
		if (n > WIRE_UDP_MIN) {
			size_t t = wire_truncate(out, n, WIRE_UDP_MIN);
			if (t > WIRE_UDP_MIN)
				abort();
			copy_all(out, t);
		}
	}
	cache_free(c);
	if (len > 1232 && wire_truncate(msg, len, 1232) > 1232)
		abort();
	return 0;
}
