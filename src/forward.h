/*
 * forward.h - the c-ares backend of the upstream interface: plain DNS
 * over UDP (TCP when a reply is truncated) to one group of servers.
 *
 * This is the only module that includes <ares.h>.  It gives every
 * upstream copy an ID of its own (unique among the group's queries in
 * flight), drives c-ares from the loop's watches and one loop timer, and
 * honours the contract of upstream.h.
 */
#ifndef SPLITDNS_FORWARD_H
#define SPLITDNS_FORWARD_H

#include <stddef.h>

#include "upstream.h"

struct conf_addr;
struct loop;

/*
 * An upstream for servers (n > 0) with c-ares' per-try timeout and tries,
 * on loop.  The servers are all udp (UDP, TCP for truncated replies) or
 * all tcp (TCP only): the kind of servers[0] decides.  Returns NULL with a message in err.  Free it with
 * upstream_free.
 */
struct upstream *forward_new(struct loop *loop,
			     const struct conf_addr *servers, size_t n,
			     int timeout_ms, int tries, char *err,
			     size_t errlen);

#endif
