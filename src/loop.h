/*
 * loop.h - a small epoll event loop.
 *
 * Registrations are embedded in their owners (struct loop_watch).  A
 * handler may delete any registration during dispatch; memory that a
 * pending event of the same batch could still point at must be released
 * with loop_defer_free, which frees it once the batch is done.
 */
#ifndef SPLITDNS_LOOP_H
#define SPLITDNS_LOOP_H

#include <stdint.h>

struct loop;

struct loop_watch {
	int fd;
	/* Called with the epoll event bits (EPOLLIN, EPOLLOUT, ...). */
	void (*cb)(struct loop_watch *w, uint32_t events);
};

struct loop *loop_new(void);
void loop_free(struct loop *l);

int loop_add(struct loop *l, struct loop_watch *w, uint32_t events);
int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events);
void loop_del(struct loop *l, struct loop_watch *w);

/* Free ptr with fn after the current dispatch batch (at once outside). */
void loop_defer_free(struct loop *l, void *ptr, void (*fn)(void *));

/* Wait up to timeout_ms (-1: no limit) and dispatch what is ready.
 * Returns -1 only on an epoll failure other than EINTR. */
int loop_wait(struct loop *l, int timeout_ms);

/* Monotonic milliseconds. */
uint64_t loop_now_ms(void);

#endif
