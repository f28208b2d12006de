/*
 * fuzz_zone.c - libFuzzer target for the zone file loader: the input is a
 * zone file, read by conf_load (libconfig, conf.c) from a fixed main file
 * that names it, built into a store (zone.c), and then every owner name
 * it lists is asked for a few types through answer_local (answer.c).
 *
 * Inputs holding "include" are skipped: @include could name any file
 * (a FIFO or /dev/zero would stall the fuzzer, not splitdns).
 */
#include <config.h>

#include "../src/answer.h"
#include "../src/conf.h"
#include "../src/zone.h"
#include "fuzz.h"

static const char main_conf[] = "listen = [\"127.0.0.1:5300\"];\n"
				"upstream: { servers = [\"192.0.2.53\"]; };\n"
				"zones = [\"z.zone\"];\n";

/* Ask for name (text, relative to the zone's origin) as the pipeline
 * would; every reply must fit and parse as a message. */
static void ask(const struct zone *z, const struct conf_zone *cz,
		const char *text)
{
	static const uint16_t types[] = {WIRE_T_A, WIRE_T_AAAA, WIRE_T_MX,
					 WIRE_T_PTR, 255};
	uint8_t origin[WIRE_NAME_MAX], name[WIRE_NAME_MAX], pkt[512];
	uint8_t out[WIRE_MSG_MAX];
	struct wire_query q;
	const char *why;
	size_t plen;
	char abs[1100];

	snprintf(abs, sizeof(abs), "%s.", cz->origin);
	int olen = wire_name_from_text(abs, NULL, 0, origin, &why);
	int len = olen < 0 ? -1
			   : wire_name_from_text(text, origin, (size_t)olen,
						 name, &why);
	if (len < 0)
		return;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		if (!fuzz_query(name, (size_t)len, types[t], t % 2, pkt, &plen,
				&q))
			return;
		struct answer_chase chase;
		size_t n =
		    answer_local(z, &q, pkt, 1232, out, sizeof(out), &chase);
		struct wire_rrs it;
		struct wire_rr rr;
		if (n > sizeof(out) || (n && !wire_rrs_begin(&it, out, n)))
			abort();
		while (n && wire_rrs_next(&it, &rr))
			;
		if (n && it.bad)
			abort(); /* a local answer that does not parse */
		/* And as a UDP client without EDNS would get it. */
		if (n > 512 && wire_truncate(out, n, 512) > 512)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONF_ERR_MAX];

	if (size > FUZZ_MAX_INPUT || fuzz_holds(data, size, "include"))
		return 0;
	fuzz_write("z.zone", data, size);
	const char *path =
	    fuzz_write("main.conf", main_conf, sizeof(main_conf) - 1);
	struct conf *cfg = conf_load(path, NULL, 0, err, sizeof(err));
	if (!cfg)
		return 0;
	struct zone *z = zone_build(cfg, err, sizeof(err));
	if (z) {
		const struct conf_zone *cz = &cfg->zones[0];
		ask(z, cz, "@");
		for (size_t i = 0; i < cz->nrecords && i < 64; i++) {
			ask(z, cz, cz->records[i].name);
			char sub[300];
			snprintf(sub, sizeof(sub), "fuzz.%.250s",
				 cz->records[i].name);
			ask(z, cz, sub); /* wildcards, NXDOMAIN */
		}
	}
	zone_free(z);
	conf_free(cfg);
	return 0;
}
