/*
 * fuzz_conf.c - libFuzzer target for the configuration loader: the input
 * is a main file, optionally followed by a NUL and a zone file, and by a
 * second NUL and a block list, written as main.conf, z.zone and b.list in
 * a private folder, and built as a start or a reload would
 * (snapshot_build: conf_load, zone_build, policy_build, then the client
 * groups and a block set per distinct list of names).
 *
 * Inputs that could name files outside the folder are skipped (a FIFO or
 * /dev/zero would stall the fuzzer, not find a bug): absolute paths
 * ("/ after a quote), "..", backslash escapes and @include.
 */
#include <config.h>

#include "../src/conf.h"
#include "../src/snapshot.h"
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
	snapshot_unref(snapshot_build(path, NULL, 0, NULL, NULL, 1, err,
				      sizeof(err)));
	return 0;
}
