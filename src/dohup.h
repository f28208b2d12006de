/*
 * dohup.h - the DNS over HTTPS backend of the upstream interface (RFC
 * 8484): one https:// server, one kept-open HTTP/2 connection over TLS
 * on one loop, each query a POST of application/dns-message on a stream
 * of its own, many streams at once.
 *
 * The certificate is verified against the URL's NAME (tlsc.c) before
 * any request is sent; the address is the URL's #ADDR or is looked up
 * (A, then AAAA) through a resolver upstream the caller gives, made of
 * plain servers only.  A query whose answer is not a 200 with an
 * application/dns-message body holding a DNS reply fails, and the
 * caller (failover.c) asks its next server.  HTTP/2 is nghttp2's: this
 * and doh.c (the listener side) are the modules that include
 * <nghttp2/nghttp2.h>.
 */
#ifndef SPLITDNS_DOHUP_H
#define SPLITDNS_DOHUP_H

#include <stddef.h>

#include "upstream.h"

struct conf_addr;
struct loop;
struct tlsc_trust;

struct dohup_conf {
	struct tlsc_trust *trust;  /* borrowed: dohup_new takes a reference */
	int timeout_ms;		   /* a try, and a connection's set-up */
	int idle_timeout_ms;	   /* a connection without queries closes */
	unsigned max_queries;	   /* then a fresh connection takes over */
	struct upstream *resolver; /* taken over (freed by the backend, also
				      when dohup_new fails): where NAME is
				      looked up when server->lookup; NULL
				      otherwise */
};

/*
 * An upstream for the https:// server on loop; it connects on its first
 * query.  As with dot.c, a query that cannot be taken (the server is
 * backing off after a failed connection or lookup, too many in flight)
 * fails at once (after the batch).  The upstream ID is 0 on the wire
 * (RFC 8484 4.1) and req->id is 0: the reply comes with ID 0.  Returns
 * NULL with a message in err.  Free it with upstream_free.
 */
struct upstream *dohup_new(struct loop *loop, const struct conf_addr *server,
			   const struct dohup_conf *conf, char *err,
			   size_t errlen);

#endif
