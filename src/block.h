/*
 * block.h - the block group of the configuration turned into a frozen
 * blocklist set (lists module), with a report per source.
 */
#ifndef SPLITDNS_BLOCK_H
#define SPLITDNS_BLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "answer.h"

struct conf;
struct conf_block;
struct lists;

/* Called with one line of report (no newline) per source and summary. */
typedef void (*block_report_fn)(void *ctx, int warning, const char *line);

/* One source of block entries and what it held. */
struct block_source {
	const char *name; /* "block.domains", "block.allow", or a list file */
	size_t entries, allows, bad;
};

/* The frozen set with a line of figures and a hit counter per source
 * (indexes as lists_match_source gives them). */
struct block_set {
	struct lists *lists;
	struct block_source *src;
	uint64_t *hits;  /* written by the query pipeline */
	unsigned nsrc;   /* names borrow from the config it was built from */
};

/*
 * Build the set from cfg->block: source 0 is block.domains, 1 is
 * block.allow, 2 + i is list file i, and the last, when it is set,
 * block.regex.  Bad lines are reported, not fatal; an unreadable list, an
 * invalid domain or a block.regex pattern that does not compile is: NULL
 * with "file: message" in err.  A URL list is read from its copy under
 * cfg->state_dir (see fetch.h); one without a copy yet is reported as a
 * warning and skipped.  Returns NULL with err[0] == '\0' when nothing is configured.
 * Caller frees with block_set_free.
 */
struct block_set *block_load(const struct conf *cfg, block_report_fn report,
			     void *ctx, char *err, size_t errlen);

/* The same from block config b (cfg->block or a client group's), whose
 * errors name cfg's file. */
struct block_set *block_load_conf(const struct conf *cfg,
				  const struct conf_block *b,
				  block_report_fn report, void *ctx, char *err,
				  size_t errlen);

void block_set_free(struct block_set *b);

/* Carry the hit counts of sources with the same name over from old (a
 * reload keeps the counters of lists that are still there). */
void block_keep_hits(struct block_set *b, const struct block_set *old);

/* How blocked names are answered, from cfg->block. */
void block_answer_init(const struct conf *cfg, struct answer_block *out);
void block_answer_of(const struct conf_block *b, struct answer_block *out);

/* For --explain: which sources (block.domains, block.allow, list files,
 * block.regex) have a rule covering name for a query of type qtype, each
 * source judged alone ($badfilter rules of other sources not applied),
 * one line each.  Returns how many. */
int block_explain(FILE *out, const struct conf *cfg, const uint8_t *name,
		  size_t len, uint16_t qtype);
int block_explain_conf(FILE *out, const struct conf *cfg,
		       const struct conf_block *b, const uint8_t *name,
		       size_t len, uint16_t qtype);

#endif
