/*
 * hostaddr.h - the address of an upstream server named by a host name
 * (an https:// server without #ADDR): asked (A, and AAAA beside it) of
 * a resolver upstream the caller makes of plain servers only, so that
 * the name is never looked up through the server itself, and kept for
 * the answer's TTL (at least 30 s, at most an hour).
 *
 * It owns no socket and no timer: the resolver's tries and timeouts are
 * its own.  Used by its loop's thread only.
 */
#ifndef SPLITDNS_HOSTADDR_H
#define SPLITDNS_HOSTADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "upstream.h"

struct loop;
struct hostaddr;

/* Both answers are in: why is NULL when an address was found (then
 * hostaddr_get has it), else what came instead, for a log line (valid
 * during the call). */
typedef void (*hostaddr_fn)(void *ctx, const char *why);

/*
 * Look host (a host name, without the final dot) up through resolver
 * (taken over: freed with the object, or at once on failure); done(ctx)
 * hears of each round of hostaddr_ask.  NULL with a message in err.
 */
struct hostaddr *hostaddr_new(struct loop *loop, const char *host,
			      struct upstream *resolver, hostaddr_fn done,
			      void *ctx, char *err, size_t errlen);

/* The address, with port, into *ss and *len when one is known and its
 * TTL has not passed; false otherwise. */
bool hostaddr_get(const struct hostaddr *h, uint16_t port,
		  struct sockaddr_storage *ss, socklen_t *len);

/* Ask again, unless a round is under way.  done runs once both answers
 * are in, after the batch (never inside this call). */
void hostaddr_ask(struct hostaddr *h);

/* Forget the address (a connection to it failed): the next
 * hostaddr_get is false until the next answer. */
void hostaddr_forget(struct hostaddr *h);

/* Free it, its resolver, and a round under way (done does not run).
 * NULL is fine. */
void hostaddr_free(struct hostaddr *h);

#endif
