/*
 * dot.h - the DNS over TLS backend of the upstream interface (RFC 7858):
 * one server, one kept-open TLS connection on one loop, many queries in
 * flight on it (RFC 7766 6.2.1.1 pipelining, replies matched by ID in any
 * order).
 *
 * The TLS session is tlsc.c's.  This module verifies
 * the server's certificate against the name after '#' in the server's URL
 * (or, without one, against its address as an IP address entry) and
 * never sends a query before that succeeded: a connection that fails
 * fails its queries, and the caller (failover.c) tries the next server.
 * Checking the reply's question is the caller's job, as with every
 * backend, so signed queries may use it too.
 */
#ifndef SPLITDNS_DOT_H
#define SPLITDNS_DOT_H

#include <stddef.h>

#include "upstream.h"

struct conf_addr;
struct loop;
struct tlsc_trust;

struct dot_conf {
	struct tlsc_trust *trust; /* borrowed: dot_new takes a reference */
	int timeout_ms;          /* a try, and a handshake, last this long */
	int idle_timeout_ms;     /* a connection without queries closes */
	unsigned max_queries;    /* then a fresh connection takes over */
};

/*
 * An upstream for one tls:// server on loop; it connects on its first
 * query.  A query that cannot be taken (the server is backing off after
 * a failed connection, too many in flight) fails at once (after the
 * batch), so that the next server is asked without waiting.  Returns
 * NULL with a message in err.  Free it with upstream_free.
 */
struct upstream *dot_new(struct loop *loop, const struct conf_addr *server,
			 const struct dot_conf *conf, char *err,
			 size_t errlen);

#endif
