/*
 * fuzz_lists.c - libFuzzer target for block list lines (lists.c).
 *
 * The input is read twice: as a list file (hosts, plain and adblock lines
 * mixed) through lists_load_file, and line by line through lists_add, as
 * block.domains entries are.  After lists_finish, every name lists_add
 * accepted must be blocked (the second set has no allow entries), and a
 * "*." entry must block below its name.
 */
#include <config.h>

#include "../src/lists.h"
#include "fuzz.h"

/* Is text (as lists_add took it) blocked in l, or below it for "*."? */
static void check_blocked(const struct lists *l, const char *text)
{
	uint8_t name[WIRE_NAME_MAX + 2];
	char abs[300];
	const char *why;
	bool subs = strncmp(text, "*.", 2) == 0;

	snprintf(abs, sizeof(abs), "%s%s%s", subs ? "x" : "",
		 subs ? text + 1 : text,
		 text[strlen(text) - 1] == '.' ? "" : ".");
	int n = wire_name_from_text(abs, NULL, 0, name, &why);
	if (n < 0)
		return; /* "x." made a 254-octet name too long */
	if (lists_match(l, name, (size_t)n) != LISTS_BLOCKED)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lists_file_stats st;
	char msgs[512], line[300];
	char *added[64];
	size_t nadded = 0;
	const char *why;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	const char *path = fuzz_write("b.list", data, size);
	struct lists *l = lists_new(), *l2 = lists_new();
	if (!l || !l2)
		abort();
	lists_begin_source(l);
	if (lists_load_file(l, path, &st, msgs, sizeof(msgs))) {
		if (st.bad + st.skipped_options > st.lines)
			abort(); /* a line counts once at most as bad or skipped
				  */
		if (strlen(msgs) >= sizeof(msgs))
			abort();
	}
	for (size_t off = 0; off < size && nadded < 64;) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - data) - off : size - off;
		if (n < sizeof(line)) {
			memcpy(line, data + off, n);
			line[n] = '\0';
			if (line[0] && lists_add(l2, line, LISTS_BLOCK, &why) &&
			    !(added[nadded++] = strdup(line)))
				abort();
		}
		off += n + 1;
	}
	if (lists_finish(l) && lists_finish(l2)) {
		for (size_t i = 0; i < nadded; i++)
			check_blocked(l2, added[i]);
		uint8_t name[WIRE_NAME_MAX];
		for (size_t i = 0; i < nadded; i++) {
			int n =
			    wire_name_from_text(added[i], NULL, 0, name, &why);
			unsigned src = 0;
			if (n > 0)
				(void)lists_match_source(l, name, (size_t)n, 1, NULL,
							 &src);
			if (src >= lists_source_count(l))
				abort();
		}
	}
	for (size_t i = 0; i < nadded; i++)
		free(added[i]);
	lists_free(l);
	lists_free(l2);
	return 0;
}
