/*
 * lists.h - the blocklist store: block and allow sets read from hosts
 * files, plain domain lists and adblock-style lists, answering "is this
 * name blocked?" in O(labels) without allocation.
 *
 * A set is built (lists_add, lists_add_regex, lists_load_file), then
 * frozen (lists_finish), and is immutable from then on: any number of
 * threads may call lists_match at once without locks; regular
 * expressions need a scratch per thread (lists_scratch_new).  Each entry remembers the source it
 * came from (lists_begin_source), so that a lookup can say which source
 * decided (lists_match_source) and the caller can count hits per list.
 * A reload builds a new set beside the old one.  This module keeps no
 * global state, opens only the files it is given, and logs nothing: it
 * hands messages to its caller.
 */
#ifndef SPLITDNS_LISTS_H
#define SPLITDNS_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lists;

enum lists_kind {
	LISTS_BLOCK,      /* the name and all its subdomains */
	LISTS_BLOCK_SUBS, /* only strict subdomains ("*.domain") */
	LISTS_ALLOW,      /* the name and its subdomains are never blocked */
};

enum lists_verdict {
	LISTS_NONE,    /* no entry covers the name */
	LISTS_BLOCKED, /* a block entry covers it and no allow entry does */
	LISTS_ALLOWED, /* an allow entry covers it (blocked or not) */
};

/* What one list file held.  Every line counts in lines; a line that adds
 * nothing and is not blank or a comment counts in exactly one of bad or
 * skipped_options. */
struct lists_file_stats {
	size_t lines;
	size_t entries;         /* block names added (duplicates included) */
	size_t allows;          /* allow names added */
	size_t ignored;         /* localhost and the like, 0.0.0.0 as a name */
	size_t bad;             /* lines that could not be read as a rule */
	size_t skipped_options; /* adblock rules whose $options change their
				   meaning ($third-party, $domain=, ...) */
	size_t regexes;         /* regular expressions added */
	size_t badfilters;      /* $badfilter rules read */
};

/* At most this many regular expressions in one set (list lines and
 * block.regex together); more are bad lines.  Each one that may decide
 * runs on every query that the name rules leave open. */
#define LISTS_REGEX_MAX 1000

/* At most this many query types in one $dnstype option. */
#define LISTS_TYPES_MAX 16

/* At most this many bad or skipped lines are described per file. */
#define LISTS_REPORT_MAX 3

/* Sources are numbered 0 .. LISTS_SOURCES_MAX - 1. */
#define LISTS_SOURCES_MAX 65536

/* An empty set, ready for lists_add and lists_load_file.  NULL when out of
 * memory.  The caller frees it with lists_free. */
struct lists *lists_new(void);

/* Free l and everything it holds.  lists_free(NULL) does nothing. */
void lists_free(struct lists *l);

/*
 * Start the next source: the names added from now on (lists_add,
 * lists_load_file) are tagged with it, until the next call.  Sources are
 * numbered from 0 in the order they begin: the first call returns 0, the
 * next 1, and so on.  Names added before the first call belong to source
 * 0 too, so a caller that never calls this has everything in source 0.
 * A name added from several sources keeps the first source that added it
 * (for each kind: "a.test", "*.a.test" and an allow of "a.test" are three
 * entries).  Returns -1 once LISTS_SOURCES_MAX sources have begun, on a
 * frozen set, or when out of memory; the current source then stays.
 */
int lists_begin_source(struct lists *l);

/*
 * Add one name given as text (block.domains, block.allow): letters, digits,
 * '-' and '_' in labels of 1-63 characters, up to 253 characters, any case,
 * trailing dot optional, punycode ("xn--") for IDNs.  A leading "*." with
 * LISTS_BLOCK or LISTS_BLOCK_SUBS means LISTS_BLOCK_SUBS.  Returns false
 * with a static reason in *why for an invalid name, "*." with LISTS_ALLOW,
 * a frozen set, or no memory.  The name is tagged with the current source.
 */
bool lists_add(struct lists *l, const char *text, enum lists_kind kind,
	       const char **why);

/*
 * Read one list file; the format is recognised line by line, so mixed
 * files work:
 *   hosts    "0.0.0.0 ads.example.com", "127.0.0.1 a b c", ":: x": every
 *            name after an IPv4 or IPv6 address (the address itself is
 *            not used: blocked names get the configured answer);
 *   plain    "ads.example.com" (the name and its subdomains),
 *            "*.example.com" (subdomains only);
 *   adblock  "||ads.example.com^", "||*.example.com^", "@@||x.example^"
 *            (allow), with a trailing "|" and these options:
 *              $important   the rule is of the important class (below);
 *              $badfilter   the rule disables the rule that is the same
 *                           without $badfilter (same name or pattern,
 *                           allow or not, same other options) in every
 *                           source of the set, and does nothing else;
 *                           "x.test" and "0.0.0.0 x.test" mean the same
 *                           as "||x.test^" and are disabled with it;
 *              $dnstype=A|AAAA, $dnstype=~A|~HTTPS
 *                           the rule applies only to queries of those
 *                           types, or of all other types (TYPEnnn for
 *                           types without a name);
 *              $all, $document, $doc: no change for a DNS rule.
 *            Any other option makes the rule skipped_options: it is never
 *            read as a plain block;
 *   regex    "/ads[0-9]+\./", "@@/^cdn\./$important": a PCRE2
 *            pattern between slashes (it ends at the last "/" before the
 *            end of the line or "$options"), with the options above; it
 *            must compile and stay within LISTS_REGEX_MAX.
 * URL paths, wildcards inside names and cosmetic rules ("##") are bad.
 * "#" and "!" start comment lines, "[Adblock Plus 2.0]"-style headers are
 * comments, and "#" after white space ends a line.  CR before LF is white
 * space; a UTF-8 byte order mark opening the file is skipped.  Localhost
 * entries (localhost, localhost.localdomain, local, broadcasthost,
 * ip6-*, ...) and addresses in place of names in hosts lines are ignored.
 * Lines longer than 4096 bytes, NUL bytes, bad labels, names over 253
 * characters and numeric top-level labels make the line bad.
 *
 * st (required) is reset and filled in.  msgs (may be NULL) receives up to
 * LISTS_REPORT_MAX lines "path:line: reason: 'excerpt'" for the first bad
 * or skipped lines (the excerpt: up to 48 bytes of the line, unprintable
 * ones as '?'), each ending in '\n', the whole NUL-terminated and cut to
 * msgslen; it is "" when all was well.  Returns false only when the
 * file cannot be read or memory runs out; msgs then says why
 * ("path: No such file or directory") and the names read so far stay in l.
 * Names are tagged with the current source: begin one per file to tell
 * files apart.
 */
bool lists_load_file(struct lists *l, const char *path,
		     struct lists_file_stats *st, char *msgs, size_t msgslen);

/*
 * Add one block regular expression (block.regex): pattern is PCRE2
 * syntax, caseless, matched against names as lower-case text without the
 * trailing dot.  Tagged with the current source.  False with the reason
 * in why (PCRE2's message and offset, the LISTS_REGEX_MAX cap, a frozen
 * set, no memory).
 */
bool lists_add_regex(struct lists *l, const char *pattern, char *why,
		     size_t whylen);

/*
 * Freeze l: sort and deduplicate the names, drop what $badfilter rules
 * disable, and build the lookup tables.  Afterwards only the lookups and
 * the counts may be called.  Returns false when out of memory; l can then
 * only be freed.
 */
bool lists_finish(struct lists *l);

/* What a thread needs to match regular expressions: made once per thread
 * (outside the hot path), used by one thread at a time, for any set.
 * NULL when out of memory.  lists_scratch_free(NULL) does nothing. */
struct lists_scratch;
struct lists_scratch *lists_scratch_new(void);
void lists_scratch_free(struct lists_scratch *sc);

/*
 * The verdict for a query of type qtype for name (uncompressed wire
 * form, any case, len octets including the root label), and the source
 * of the rule that decided in *source (required; left alone with
 * LISTS_NONE; below lists_source_count(l)).
 *
 * The rules that cover the name are those for the name or an ancestor,
 * "*." rules for a strict ancestor, and regular expressions that match
 * it; a rule with $dnstype covers it only for the types it names.  Of
 * them, the first class present wins:
 *   1. important allow ("@@...$important"),
 *   2. important block ("...$important"),
 *   3. allow ("@@...", block.allow),
 *   4. block (everything else).
 * Within a class, a name rule beats a regular expression, the rule for
 * the shortest suffix (nearest the root) decides, then a name's plain
 * rule before its "*." one, then the rule added first: for x.ads.test
 * with ads.test (source 3) and *.ads.test (source 1), source 3.
 *
 * Regular expressions run only for the classes above the best name rule
 * (none for a name an important allow rule covers; for a name a block
 * rule covers, only allow and important ones), highest class first, and
 * only with a scratch: with scratch NULL they are not consulted.  Malformed names,
 * and any name before lists_finish, get LISTS_NONE.  Allocates nothing
 * (PCRE2's interpreter, used where there is no JIT, may grow the
 * scratch); safe from many threads at once, each with its own scratch.
 * Without $dnstype rules and regular expressions it costs what a lookup
 * cost before they existed.
 */
enum lists_verdict lists_match_source(const struct lists *l,
				      const uint8_t *name, size_t len,
				      uint16_t qtype,
				      struct lists_scratch *scratch,
				      unsigned *source);

/* lists_match_source for qtype 0 (only $dnstype=~TYPE rules apply),
 * without regular expressions and without the source. */
enum lists_verdict lists_match(const struct lists *l, const uint8_t *name,
			       size_t len);

/* How many sources have begun, at least 1 (source 0 exists even when
 * lists_begin_source was never called): the size of an array indexed by
 * the sources lists_match_source gives. */
unsigned lists_source_count(const struct lists *l);

/* Distinct block name rules (plain, "*.", important, with $dnstype)
 * once frozen; before lists_finish, the block names added so far,
 * duplicates included. */
size_t lists_count(const struct lists *l);

/* Distinct allow name rules, with the same caveat. */
size_t lists_allow_count(const struct lists *l);

/* Regular expressions (those $badfilter left, once frozen). */
size_t lists_regex_count(const struct lists *l);

/* Bytes of heap held by l. */
size_t lists_memory(const struct lists *l);

#endif
