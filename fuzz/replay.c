/*
 * replay.c - run a fuzz target over its corpus without libFuzzer.
 *
 * Linked with one target (fuzz_*.c) as an ordinary check program, built
 * with the suite's sanitizers: each file of each directory (or each file)
 * named on the command line is passed to LLVMFuzzerTestOneInput once.
 * Without arguments it replays FUZZ_CORPUS_DIR/FUZZ_TARGET (the source
 * tree's fuzz/corpus/<target>), which is how "make check" runs it; the output
 * is TAP, and a crash or a sanitizer report fails the test.  An empty or
 * missing corpus fails too: a corpus that silently vanished would otherwise
 * pass.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#if !defined(FUZZ_TARGET) || !defined(FUZZ_CORPUS_DIR)
#error "FUZZ_TARGET and FUZZ_CORPUS_DIR name the corpus folder"
#endif

/* Feed one file; false when it cannot be read. */
static bool replay_file(const char *path)
{
	static uint8_t buf[FUZZ_MAX_INPUT + 1];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	/* A copy of exactly n bytes, so that ASan sees reads past the end. */
	uint8_t *copy = malloc(n ? n : 1);
	if (!copy)
		return false;
	memcpy(copy, buf, n);
	LLVMFuzzerTestOneInput(copy, n);
	free(copy);
	return true;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay every regular file in dir, in name order.  Returns the count, or
 * -1 when dir cannot be read. */
static long replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0;
	long done = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **more = realloc(names, cap * sizeof(*names));
			if (!more)
				abort();
			names = more;
		}
		if (!(names[n++] = strdup(e->d_name)))
			abort();
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (!replay_file(path)) {
				printf("# cannot read %s: %s\n", path,
				       strerror(errno));
				done = -1;
				break;
			}
			done++;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return done;
}

int main(int argc, char **argv)
{
	char deflt[4096], *one[1] = {deflt};
	char **paths = argv + 1;
	int npaths = argc - 1, failed = 0;

	if (npaths == 0) {
		snprintf(deflt, sizeof(deflt), "%s/%s", FUZZ_CORPUS_DIR,
			 FUZZ_TARGET);
		paths = one;
		npaths = 1;
	}
	printf("1..%d\n", npaths);
	for (int i = 0; i < npaths; i++) {
		struct stat st;
		long n = -1;
		if (stat(paths[i], &st) == 0)
			n = S_ISDIR(st.st_mode)	    ? replay_dir(paths[i])
			    : replay_file(paths[i]) ? 1
						    : -1;
		if (n <= 0)
			failed++;
		printf("%sok %d - %s %s: %ld inputs replayed\n",
		       n > 0 ? "" : "not ", i + 1, FUZZ_TARGET, paths[i], n);
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
