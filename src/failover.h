/*
 * failover.h - an upstream over a list of servers of different kinds
 * (udp, tcp, tls): each query asks one server at a time, in the order
 * of the list, through that server's own backend (a "leg").
 *
 * A try ends when its leg answers, fails or times out (each leg is made
 * with the per-try timeout); a failure or timeout moves the query to the
 * next server, n * tries tries in all, then it fails.  A leg that fails
 * at once (a tls server that is backing off) costs no time, so a dead
 * server early in the list does not delay the others.
 */
#ifndef SPLITDNS_FAILOVER_H
#define SPLITDNS_FAILOVER_H

#include <stddef.h>

#include "upstream.h"

struct conf_addr;
struct loop;

/* Make the backend of one server, whose tries last timeout_ms; NULL with
 * a message in err. */
typedef struct upstream *(*failover_leg_fn)(void *ctx, struct loop *loop,
					    const struct conf_addr *server,
					    int timeout_ms, char *err,
					    size_t errlen);

/*
 * An upstream for servers (n > 0), calling leg for each (ctx is passed
 * on; it is not kept).  Returns NULL with a message in err.  Free it
 * with upstream_free, which frees the legs.
 */
struct upstream *failover_new(struct loop *loop,
			      const struct conf_addr *servers, size_t n,
			      int timeout_ms, int tries, failover_leg_fn leg,
			      void *ctx, char *err, size_t errlen);

#endif
