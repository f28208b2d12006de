/*
 * loop.h - a small epoll event loop that owns time: readiness watches,
 * timers, and tasks run after the current dispatch batch.
 *
 * Registrations are embedded in their owners (struct loop_watch, struct
 * loop_timer, struct loop_task).  A handler may delete any registration
 * during dispatch; memory that a pending event of the same batch could
 * still point at must be released with loop_defer_free, which frees it
 * once the batch is done.  A loop belongs to one thread; only
 * loop_wake may be called from another.
 */
#ifndef SPLITDNS_LOOP_H
#define SPLITDNS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

struct loop_watch {
	int fd;
	/* Called with the epoll event bits (EPOLLIN, EPOLLOUT, ...). */
	void (*cb)(struct loop_watch *w, uint32_t events);
};

/* A one-shot timer; re-arm it from its callback to repeat. */
struct loop_timer {
	uint64_t when_ms;
	void (*cb)(struct loop_timer *t, uint64_t now_ms);
	struct loop_timer *next; /* the loop's list, by time */
	bool armed;
};

/* Work queued for after the current batch: a completion that must not
 * run inside the call that produced it (c-ares' end-queue idea). */
struct loop_task {
	void (*cb)(struct loop_task *t);
	struct loop_task *next;
	uint64_t round;
	bool queued;
};

struct loop *loop_new(void);
void loop_free(struct loop *l);

int loop_add(struct loop *l, struct loop_watch *w, uint32_t events);
int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events);
void loop_del(struct loop *l, struct loop_watch *w);

/* Free ptr with fn after the current dispatch batch (at once outside). */
void loop_defer_free(struct loop *l, void *ptr, void (*fn)(void *));

/* Arm t to fire at when_ms (monotonic ms; re-arming moves it). */
void loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t when_ms);
void loop_timer_del(struct loop *l, struct loop_timer *t);

/* Run t->cb after the current batch (before the next wait); queuing a
 * queued task does nothing. */
void loop_post(struct loop *l, struct loop_task *t);

/* Take t off the queue if it is there (its owner is going away). */
void loop_unpost(struct loop *l, struct loop_task *t);

/* Wait for events, due timers or queued tasks and run them; waits at
 * most max_ms (-1: no limit).  Returns -1 only on an epoll failure other
 * than EINTR. */
int loop_run_once(struct loop *l, int max_ms);

/* Make a loop_run_once that is waiting (in another thread) return;
 * callable from any thread.  Its wake-up callback then runs in the
 * loop's thread. */
void loop_wake(struct loop *l);
void loop_on_wake(struct loop *l, void (*cb)(void *ctx), void *ctx);

/* Call cb before every wait, after the batch's tasks (Redis' beforeSleep):
 * work that must see the end of each batch.  One per loop. */
void loop_before_wait(struct loop *l, void (*cb)(void *ctx), void *ctx);

/* Monotonic milliseconds. */
uint64_t loop_now_ms(void);

/* The loop's clock: loop_now_ms unless a test set another with
 * loop_set_clock (timers and everything that asks the loop use it). */
uint64_t loop_now(const struct loop *l);
void loop_set_clock(struct loop *l, uint64_t (*now)(void *ctx), void *ctx);

#endif
