/*
 * fuzz_lists.c - libFuzzer target for block list lines (lists.c).
 *
 * The input is read three times: as a list file (hosts, plain, adblock
 * with $important/$badfilter/$dnstype, /regex/ lines, mixed) through
 * lists_load_file, line by line through lists_add, as block.domains
 * entries are, and line by line through lists_add_regex, as block.regex
 * is.  After lists_finish, every name lists_add accepted must be blocked
 * (the second set has no allow entries), and a "*." entry must block
 * below its name; the lines' names are asked of the first and third sets
 * with regexes on, for a query type taken from the input, and any source
 * given must exist.
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
	char *added[64], rwhy[200];
	size_t nadded = 0, nregex = 0;
	const char *why;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	const char *path = fuzz_write("b.list", data, size);
	struct lists *l = lists_new(), *l2 = lists_new(), *l3 = lists_new();
	struct lists_scratch *sc = lists_scratch_new();
	uint16_t qtype = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 1;
	if (!l || !l2 || !l3 || !sc)
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
			if (line[0] && nregex < 16 &&
			    lists_add_regex(l3, line, rwhy, sizeof(rwhy)))
				nregex++;
		}
		off += n + 1;
	}
	if (lists_finish(l) && lists_finish(l2) && lists_finish(l3)) {
		if (lists_regex_count(l3) != nregex)
			abort();
		for (size_t i = 0; i < nadded; i++)
			check_blocked(l2, added[i]);
		uint8_t name[WIRE_NAME_MAX];
		for (size_t i = 0; i < nadded; i++) {
			int n =
			    wire_name_from_text(added[i], NULL, 0, name, &why);
			unsigned src = 0, src3 = 0;
			if (n > 0) {
				(void)lists_match_source(l, name, (size_t)n,
							 qtype, sc, &src);
				(void)lists_match_source(l3, name, (size_t)n,
							 qtype, sc, &src3);
			}
			if (src >= lists_source_count(l) ||
			    src3 >= lists_source_count(l3))
				abort();
		}
	}
	for (size_t i = 0; i < nadded; i++)
		free(added[i]);
	lists_free(l);
	lists_free(l2);
	lists_free(l3);
	lists_scratch_free(sc);
	return 0;
}
