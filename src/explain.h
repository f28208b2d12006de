/*
 * explain.h - say which rule answers a query and what the answer is,
 * without starting the server ("splitdns --explain NAME [TYPE]").
 *
 * It runs the server's own lookup code (zone store, answer builder,
 * policy) on one query, and prints the decision and the reply in
 * presentation form.
 */
#ifndef SPLITDNS_EXPLAIN_H
#define SPLITDNS_EXPLAIN_H

#include <stdio.h>

struct conf;
struct lists;
struct policy;
struct zone;

/*
 * Explain the query for name (text) and type (mnemonic or number, NULL:
 * A) to out.  Returns 0, or 1 with a message on stderr when the name or
 * type is not valid.
 */
int explain(FILE *out, const struct conf *cfg, const struct zone *zone,
	    const struct policy *policy, const struct lists *blocks,
	    const char *name, const char *type);

#endif
