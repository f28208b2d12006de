/*
 * regex.h - regular expressions over domain names, through PCRE2 with its
 * JIT compiler: compiled once (when a snapshot is built), matched by any
 * number of threads at once, each with its own scratch.
 *
 * Patterns are caseless, never UTF (a name is bytes), and are matched
 * against a name's text form: lower case, labels joined by '.', without
 * the trailing dot ("ads.example.com").  This is the only file that
 * includes <pcre2.h>.  It keeps no global state and logs nothing.
 */
#ifndef SPLITDNS_REGEX_H
#define SPLITDNS_REGEX_H

#include <stdbool.h>
#include <stddef.h>

struct regex;
struct regex_scratch;

/* Work one match may do before it counts as "no match": PCRE2's match
 * limit, which bounds the backtracking a hostile pattern could cause. */
#define REGEX_MATCH_LIMIT 100000

/*
 * Compile pattern[0 .. len-1] (it need not be NUL-terminated), and JIT
 * compile it where the platform allows (the interpreter is used
 * otherwise).  NULL when it does not compile, with PCRE2's reason and
 * the offset in why ("missing closing parenthesis at offset 4"), or
 * "out of memory".  Caller frees with regex_free.
 */
struct regex *regex_new(const char *pattern, size_t len, char *why,
			size_t whylen);

/* Bytes re holds (compiled pattern and JIT code). */
size_t regex_memory(const struct regex *re);

/* regex_free(NULL) does nothing. */
void regex_free(struct regex *re);

/*
 * What one thread needs to match: match data and a match context with the
 * limit above, made once (outside the hot path) and reused for every
 * match, with any pattern.  NULL when out of memory.  Owned by one
 * thread at a time; freed with regex_scratch_free (NULL is fine).
 */
struct regex_scratch *regex_scratch_new(void);
void regex_scratch_free(struct regex_scratch *sc);

/*
 * Does re match somewhere in text[0 .. len-1]?  Errors (the match limit,
 * the JIT stack) count as no match.  Allocates nothing once sc has been
 * used for a first match (PCRE2's interpreter keeps its frames in sc).
 */
bool regex_match(const struct regex *re, const char *text, size_t len,
		 struct regex_scratch *sc);

#endif
