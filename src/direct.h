/*
 * direct.h - an upstream backend that relays a query's bytes as they are
 * and hands back whatever reply carries our ID from the server asked:
 * UDP, then TCP when the reply is truncated; TCP only for tcp:// servers.
 *
 * It exists for the messages c-ares cannot carry: c-ares drops every reply
 * whose question differs from the query's, so a TSIG error reply without
 * a question (RFC 8945 5.3.2) never reaches its caller.  Signed queries
 * and key negotiations are rare; this backend favours plain code over
 * speed (a heap copy per query, a TCP connection per truncated reply).
 * Checking the reply is the caller's job, as with every backend.
 */
#ifndef SPLITDNS_DIRECT_H
#define SPLITDNS_DIRECT_H

#include <stddef.h>

#include "upstream.h"

struct conf_addr;
struct loop;

/*
 * An upstream for servers (n > 0): each try waits timeout_ms for one
 * server, then the next is asked, n * tries times in all.  Returns NULL
 * with a message in err.  Free it with upstream_free.
 */
struct upstream *direct_new(struct loop *loop,
			    const struct conf_addr *servers, size_t n,
			    int timeout_ms, int tries, char *err,
			    size_t errlen);

#endif
