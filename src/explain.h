/*
 * explain.h - say which rule answers a query and what the answer is,
 * without starting the server ("splitdns --explain NAME [TYPE] [--client ADDR]").
 *
 * It runs the server's own lookup code (zone store, answer builder,
 * policy) on one query, and prints the decision and the reply in
 * presentation form.
 */
#ifndef SPLITDNS_EXPLAIN_H
#define SPLITDNS_EXPLAIN_H

#include <stdint.h>
#include <stdio.h>

struct pause_state;
struct route_decision;
struct snapshot;

/*
 * Explain the query for name (text) and type (mnemonic or number, NULL:
 * A), asked by client (an address, NULL: no access check), as the
 * daemon serving s would answer it, to out.  Returns 0, or 1 with a
 * message on stderr when the name, type or client is not valid.
 */
int explain(FILE *out, const struct snapshot *s, const char *name,
	    const char *type, const char *client);

/*
 * The same for the running daemon (splitdnsctl explain): messages about
 * bad arguments go to errs, blocking's pause state p (may be NULL) is
 * applied as of now_ms and said, and the decision is copied to *d (may
 * be NULL).
 */
int explain_running(FILE *out, FILE *errs, const struct snapshot *s,
		    const char *name, const char *type, const char *client,
		    const struct pause_state *p, uint64_t now_ms,
		    struct route_decision *d);

#endif
