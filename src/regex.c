/*
 * regex.c - PCRE2 patterns for domain names: compile (with JIT) once,
 * match many times with per-thread scratch.
 *
 * Why the scratch is separate: a pcre2_match_data holds the match's
 * offsets (and, for the interpreter, its backtracking frames), so it is
 * written by every match and cannot live in a frozen snapshot that many
 * threads read.  One made with room for a single pair of offsets serves
 * every pattern: we only ask whether there is a match, and PCRE2 then
 * reports a match it could not fully record as 0, which is still a match.
 * The JIT's default stack (32 KiB on the machine stack) is enough for
 * names of at most 253 characters; a pattern that needs more fails that
 * match, as does one that reaches the match limit.
 */
#include <config.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>

#include "errf.h"
#include "regex.h"

struct regex {
	pcre2_code *code;
	bool jit; /* pcre2_jit_compile succeeded: use pcre2_jit_match */
};

struct regex_scratch {
	pcre2_match_data *md;
	pcre2_match_context *mc;
};

struct regex *regex_new(const char *pattern, size_t len, char *why,
			size_t whylen)
{
	int code;
	PCRE2_SIZE at;
	struct regex *re = calloc(1, sizeof(*re));

	if (!re) {
		errf(why, whylen, "%s", "out of memory");
		return NULL;
	}
	/* NEVER_UTF: a pattern may not switch to UTF with (*UTF), names are
	 * bytes.  NEVER_BACKSLASH_C: \C would be meaningless here anyway. */
	re->code = pcre2_compile((PCRE2_SPTR)pattern, len,
				 PCRE2_CASELESS | PCRE2_NEVER_UTF |
					 PCRE2_NEVER_BACKSLASH_C,
				 &code, &at, NULL);
	if (!re->code) {
		PCRE2_UCHAR msg[120];
		if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
			msg[0] = '\0';
		errf(why, whylen, "%s at offset %zu", (const char *)msg,
		     (size_t)at);
		free(re);
		return NULL;
	}
	re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
	return re;
}

size_t regex_memory(const struct regex *re)
{
	size_t size = 0, jit = 0;

	(void)pcre2_pattern_info(re->code, PCRE2_INFO_SIZE, &size);
	if (re->jit)
		(void)pcre2_pattern_info(re->code, PCRE2_INFO_JITSIZE, &jit);
	return sizeof(*re) + size + jit;
}

void regex_free(struct regex *re)
{
	if (!re)
		return;
	pcre2_code_free(re->code);
	free(re);
}

struct regex_scratch *regex_scratch_new(void)
{
	struct regex_scratch *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->md = pcre2_match_data_create(1, NULL);
	sc->mc = pcre2_match_context_create(NULL);
	if (!sc->md || !sc->mc ||
	    pcre2_set_match_limit(sc->mc, REGEX_MATCH_LIMIT) != 0) {
		regex_scratch_free(sc);
		return NULL;
	}
	return sc;
}

void regex_scratch_free(struct regex_scratch *sc)
{
	if (!sc)
		return;
	pcre2_match_data_free(sc->md);
	pcre2_match_context_free(sc->mc);
	free(sc);
}

bool regex_match(const struct regex *re, const char *text, size_t len,
		 struct regex_scratch *sc)
{
	int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)text, len, 0,
					   0, sc->md, sc->mc)
			 : pcre2_match(re->code, (PCRE2_SPTR)text, len, 0, 0,
				       sc->md, sc->mc);
	return rc >= 0;
}
