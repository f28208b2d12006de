/*
 * forward.h - relay raw queries to an upstream group through one c-ares
 * channel.
 *
 * This is the only module that includes <ares.h>.  It gives every upstream
 * copy an ID of its own (unique among the channel's queries in flight),
 * drives c-ares from the event loop, and reports each outcome exactly once
 * through the request's done callback.  Checking the reply and restoring
 * the client's ID are the caller's job.
 */
#ifndef SPLITDNS_FORWARD_H
#define SPLITDNS_FORWARD_H

#include <stddef.h>
#include <stdint.h>

struct conf_addr;
struct loop;
struct forward;
struct chan;

enum forward_status {
	FORWARD_OK,        /* reply holds the upstream's answer */
	FORWARD_FAILED,    /* timeout, refused, unreachable: no reply */
	FORWARD_CANCELLED, /* the channel is being destroyed */
};

struct forward_req;

/* reply is valid only during the call. */
typedef void (*forward_done_fn)(struct forward_req *req,
				enum forward_status status,
				const uint8_t *reply, size_t len);

/* Embedded in the caller's query object, which must stay alive until done
 * has been called. */
struct forward_req {
	struct forward *fw;
	struct chan *chan; /* the c-ares channel it went to */
	uint16_t id;       /* the upstream ID, ours */
	forward_done_fn done;
};

/*
 * A channel to servers (n > 0) with c-ares' per-try timeout and tries.
 * Returns NULL with a message in err.
 */
struct forward *forward_new(struct loop *loop,
			    const struct conf_addr *servers, size_t n,
			    int timeout_ms, int tries, char *err,
			    size_t errlen);

/* Destroy the channel: every request still in flight completes first with
 * FORWARD_CANCELLED.  NULL is fine. */
void forward_free(struct forward *fw);

/*
 * Relay pkt (len bytes, a validated query).  Its first two bytes are
 * overwritten with our ID.  done may run before this returns, so req must
 * be fully set up and must not be touched by the caller afterwards.
 */
void forward_send(struct forward *fw, struct forward_req *req, uint8_t *pkt,
		  size_t len, forward_done_fn done);

/* Let c-ares handle timeouts; call after every loop wake-up. */
void forward_tick(struct forward *fw);

/* Milliseconds until forward_tick is due, at most cap (-1: none due and
 * cap is -1). */
int forward_timeout_ms(struct forward *fw, int cap);

/* Requests in flight. */
size_t forward_pending(const struct forward *fw);

#endif
