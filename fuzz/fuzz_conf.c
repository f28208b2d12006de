/*
 * fuzz_conf.c - libFuzzer target for the configuration loader: the input
 * is a main file, optionally followed by a NUL and a zone file, and by a
 * second NUL and a block list, written as main.conf, z.zone and b.list in
 * a private folder.  Whatever conf_load accepts is then built as a start
 * or a reload would: zone_build, policy_build, block_load.
 *
 * Inputs that could name files outside the folder are skipped (a FIFO or
 * /dev/zero would stall the fuzzer, not find a bug): absolute paths
 * ("/ after a quote), "..", backslash escapes and @include.
 */
#include <config.h>

#include "../src/block.h"
#include "../src/conf.h"
#include "../src/policy.h"
#include "../src/zone.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"main.conf", "z.zone", "b.list"};
	const uint8_t *part[3] = {data, NULL, NULL};
	size_t len[3] = {size, 0, 0};
	char err[CONF_ERR_MAX];

	if (size > FUZZ_MAX_INPUT || fuzz_holds(data, size, "include") ||
	    fuzz_holds(data, size, "\"/") || fuzz_holds(data, size, "..") ||
	    memchr(data, '\\', size))
		return 0;
	for (int i = 0; i < 2; i++) {
		const uint8_t *nul = memchr(part[i], 0, len[i]);
		if (!nul)
			break;
		part[i + 1] = nul + 1;
		len[i + 1] = len[i] - (size_t)(nul + 1 - part[i]);
		len[i] = (size_t)(nul - part[i]);
	}
	const char *path = NULL;
	for (int i = 2; i >= 0; i--)
		path = fuzz_write(names[i], part[i] ? part[i] : data,
				  part[i] ? len[i] : 0);
	struct conf *cfg = conf_load(path, NULL, 0, err, sizeof(err));
	if (!cfg)
		return 0;
	struct zone *z = zone_build(cfg, err, sizeof(err));
	struct policy *p = z ? policy_build(cfg, err, sizeof(err)) : NULL;
	struct block_set *b =
	    p ? block_load(cfg, NULL, NULL, err, sizeof(err)) : NULL;
	block_set_free(b);
	policy_free(p);
	zone_free(z);
	conf_free(cfg);
	return 0;
}
