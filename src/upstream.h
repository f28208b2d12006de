/*
 * upstream.h - the interface every upstream backend implements: c-ares
 * over UDP/TCP (forward.c), raw UDP/TCP (direct.c), DNS over TLS
 * (dot.c), DNS over HTTPS (dohup.c), a mixed list of those in order
 * (failover.c).
 *
 * The pipeline relays a validated query with upstream_send and hears back
 * exactly once through the request's done callback.  The contract, the
 * same for every backend:
 *   - done never runs inside the upstream_send that started the request
 *     (immediate failures are queued on the loop and reported after the
 *     current batch), so the caller may touch req after sending;
 *   - pkt stays the caller's and valid, unchanged but for its first two
 *     octets, until done runs (a backend may send it again, to another
 *     server);
 *   - the reply passed to done is valid only during the call, and is a
 *     message whose ID is ours: the caller checks it and puts the
 *     client's ID back;
 *   - after upstream_cancel the caller no longer wants the answer: done
 *     still runs once, with UPSTREAM_CANCELLED, when the backend lets go
 *     of req (req must live until then);
 *   - upstream_free completes every request still pending with
 *     UPSTREAM_CANCELLED before it returns.
 * Backends own their sockets and timers on the loop they were made for;
 * an upstream is used by that loop's thread only.
 */
#ifndef SPLITDNS_UPSTREAM_H
#define SPLITDNS_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

struct upstream;
struct upstream_req;

enum upstream_status {
	UPSTREAM_OK,        /* reply holds the upstream's answer */
	UPSTREAM_FAILED,    /* timeout, refused, unreachable: no reply */
	UPSTREAM_CANCELLED, /* cancelled, or the upstream is being freed */
};

typedef void (*upstream_done_fn)(struct upstream_req *req,
				 enum upstream_status status,
				 const uint8_t *reply, size_t len);

/* Embedded in the caller's query object.  The fields are the backend's
 * once sent; the caller sets none of them. */
struct upstream_req {
	struct upstream *up;
	upstream_done_fn done;
	void *chan;             /* backend's: where it went */
	uint16_t id;            /* backend's: the upstream ID, ours */
	bool cancelled;
	struct loop_task task;  /* backend's: a deferred completion */
	enum upstream_status deferred;
};

struct upstream_ops {
	const char *kind; /* "udp", "tls", ... for logs */
	/* pkt (len bytes) may be modified: its first two bytes get our ID. */
	void (*send)(struct upstream *u, struct upstream_req *req,
		     uint8_t *pkt, size_t len);
	void (*cancel)(struct upstream *u, struct upstream_req *req);
	size_t (*pending)(const struct upstream *u);
	void (*free)(struct upstream *u);
};

/* The first member of every backend's object. */
struct upstream {
	const struct upstream_ops *ops;
};

static inline void upstream_send(struct upstream *u, struct upstream_req *req,
				 uint8_t *pkt, size_t len, upstream_done_fn done)
{
	req->up = u;
	req->done = done;
	req->cancelled = false;
	u->ops->send(u, req, pkt, len);
}

static inline void upstream_cancel(struct upstream_req *req)
{
	req->up->ops->cancel(req->up, req);
}

static inline size_t upstream_pending(const struct upstream *u)
{
	return u->ops->pending(u);
}

/* For a backend's send that cannot take req (no memory, no room): done
 * runs after the loop's current batch with UPSTREAM_FAILED (or
 * UPSTREAM_CANCELLED when cancelled meanwhile), never inside send. */
void upstream_fail_later(struct loop *loop, struct upstream_req *req);

/* NULL is fine. */
static inline void upstream_free(struct upstream *u)
{
	if (u)
		u->ops->free(u);
}

#endif
