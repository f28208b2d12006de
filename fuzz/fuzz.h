/*
 * fuzz.h - what the fuzz targets share: the libFuzzer entry point and a
 * private temporary folder for the targets whose parsers read files.
 *
 * Each target is one .c file defining LLVMFuzzerTestOneInput.  It is
 * linked either with libFuzzer (./configure --enable-fuzzing CC=clang) or
 * with replay.c, which feeds it every file of its corpus, so that the
 * ordinary test suite runs each corpus without libFuzzer.  The state here
 * (one folder per process) belongs to the harness, not to splitdns.
 */
#ifndef SPLITDNS_FUZZ_H
#define SPLITDNS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../src/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * libconfig 1.5 (Debian 12) leaks its scanner's string buffer when a
 * syntax error stops it inside a string, although the caller destroys the
 * config (conf.c does); that leak is not ours to find.  Weak, because
 * replay.c and a target both include this file.
 */
const char *__lsan_default_suppressions(void);
__attribute__((weak)) const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig.so\n";
}

/* The largest input a target reads (libFuzzer's -max_len can be larger). */
#define FUZZ_MAX_INPUT (64 * 1024)

static struct {
	char dir[64];
	char names[8][32];
	int n;
} fuzz_tmp;

static void fuzz_tmp_clean(void)
{
	char path[128];

	for (int i = 0; i < fuzz_tmp.n; i++) {
		snprintf(path, sizeof(path), "%s/%s", fuzz_tmp.dir,
			 fuzz_tmp.names[i]);
		unlink(path);
	}
	rmdir(fuzz_tmp.dir);
}

/* Write data to name in the folder (made on first use) and return its
 * path, valid until the next call; aborts when the folder cannot be
 * written, which is the harness's failure, not a finding. */
static inline const char *fuzz_write(const char *name, const void *data,
				     size_t n)
{
	static char path[128];
	int i;

	if (!fuzz_tmp.dir[0]) {
		snprintf(fuzz_tmp.dir, sizeof(fuzz_tmp.dir), "%s",
			 access("/dev/shm", W_OK) == 0
			     ? "/dev/shm/splitdns-fuzz-XXXXXX"
			     : "/tmp/splitdns-fuzz-XXXXXX");
		if (!mkdtemp(fuzz_tmp.dir))
			abort();
		atexit(fuzz_tmp_clean);
	}
	for (i = 0; i < fuzz_tmp.n; i++)
		if (strcmp(fuzz_tmp.names[i], name) == 0)
			break;
	if (i == fuzz_tmp.n) {
		if (fuzz_tmp.n == 8)
			abort();
		snprintf(fuzz_tmp.names[fuzz_tmp.n++],
			 sizeof(fuzz_tmp.names[0]), "%s", name);
	}
	snprintf(path, sizeof(path), "%s/%s", fuzz_tmp.dir, name);
	FILE *f = fopen(path, "w");
	if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0)
		abort();
	return path;
}

/* Does data hold needle, ignoring case?  (Targets that read files refuse
 * inputs that could name other files: libconfig's @include, paths.) */
static inline bool fuzz_holds(const uint8_t *data, size_t size,
			      const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= size; i++)
		if (strncasecmp((const char *)data + i, needle, n) == 0)
			return true;
	return false;
}

/* A query for name/qtype/IN as a client would send it (with an OPT of
 * size 1232 when edns), parsed into q.  pkt must hold 512 bytes.  False
 * when the name does not make a valid query. */
static inline bool fuzz_query(const uint8_t *name, size_t len, uint16_t qtype,
			      bool edns, uint8_t *pkt, size_t *pkt_len,
			      struct wire_query *q)
{
	static const uint8_t opt[] = {0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0};
	struct wire_buf b = {pkt, 0, 512, false};

	wire_put16(&b, 0x1234);
	wire_put16(&b, WIRE_RD);
	wire_put16(&b, 1);
	wire_put16(&b, 0);
	wire_put16(&b, 0);
	wire_put16(&b, edns ? 1 : 0);
	wire_put_bytes(&b, name, len);
	wire_put16(&b, qtype);
	wire_put16(&b, 1);
	if (edns)
		wire_put_bytes(&b, opt, sizeof(opt));
	*pkt_len = b.len;
	return !b.overflow && wire_parse_query(pkt, b.len, q) == WIRE_OK;
}

#endif
