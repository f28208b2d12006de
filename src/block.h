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

struct config;
struct lists;

/* Called with one line of report (no newline) per source and summary. */
typedef void (*block_report_fn)(void *ctx, int warning, const char *line);

/*
 * Build the set from cfg->block: block.domains, block.allow and every
 * list file.  Bad lines are reported, not fatal; an unreadable list or an
 * invalid domain is: NULL with "file: message" in err.  Returns NULL with
 * err[0] == '\0' when nothing is configured.
 */
struct lists *block_load(const struct config *cfg, block_report_fn report,
			 void *ctx, char *err, size_t errlen);

/* How blocked names are answered, from cfg->block. */
void block_answer_init(const struct config *cfg, struct answer_block *out);

/* For --explain: which sources (block.domains, block.allow, list files)
 * have an entry covering name, one line each.  Returns how many. */
int block_explain(FILE *out, const struct config *cfg, const uint8_t *name,
		  size_t len);

#endif
