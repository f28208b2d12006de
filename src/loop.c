/*
 * loop.c - epoll event loop with timers, post-batch tasks and deferred
 * release.
 *
 * Level-triggered on purpose: c-ares and the TCP code read until they
 * would block, but a handler that stops early (a batch cap) is simply
 * called again.  Timers are a list sorted by time: each module keeps one
 * or two timers per loop (the next query deadline, c-ares' next
 * timeout, the TCP sweep), so the list stays short and insertion cheap.
 * Tasks run after every dispatch batch and after timers, never inside
 * the handler that queued them, so no completion runs inside the call
 * that started it.
 */
#include <config.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define LOOP_BATCH 64

struct deferred {
	void *ptr;
	void (*fn)(void *);
};

struct loop {
	int epfd;
	int dispatching;
	struct deferred *defer;
	size_t ndefer;
	size_t capdefer;
	struct loop_timer *timers;   /* sorted by when_ms */
	struct loop_task *tasks, **tasks_tail;
	uint64_t task_round;         /* tasks posted in this round wait */
	struct loop_watch wakew;     /* eventfd for loop_wake */
	void (*on_wake)(void *ctx);
	void *wake_ctx;
	void (*before_wait)(void *ctx);
	void *before_ctx;
	uint64_t (*clock)(void *ctx); /* NULL: loop_now_ms */
	void *clock_ctx;
};

static void drain_wake(struct loop_watch *w, uint32_t events)
{
	struct loop *l = (struct loop *)((char *)w - offsetof(struct loop,
							       wakew));
	uint64_t v;

	(void)events;
	while (read(w->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
	if (l->on_wake)
		l->on_wake(l->wake_ctx);
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->tasks_tail = &l->tasks;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakew.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->wakew.cb = drain_wake;
	if (l->epfd < 0 || l->wakew.fd < 0 ||
	    loop_add(l, &l->wakew, EPOLLIN) < 0) {
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->wakew.fd >= 0)
			close(l->wakew.fd);
		free(l);
		return NULL;
	}
	return l;
}

static void run_deferred(struct loop *l)
{
	for (size_t i = 0; i < l->ndefer; i++)
		l->defer[i].fn(l->defer[i].ptr);
	l->ndefer = 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	run_deferred(l);
	free(l->defer);
	close(l->wakew.fd);
	close(l->epfd);
	free(l);
}

static int ctl(struct loop *l, int op, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	return epoll_ctl(l->epfd, op, w->fd, &ev);
}

int loop_add(struct loop *l, struct loop_watch *w, uint32_t events)
{
	return ctl(l, EPOLL_CTL_ADD, w, events);
}

int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
	return ctl(l, EPOLL_CTL_MOD, w, events);
}

void loop_del(struct loop *l, struct loop_watch *w)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	/* A pending event of this batch may still name w: make it inert. */
	w->cb = NULL;
}

void loop_defer_free(struct loop *l, void *ptr, void (*fn)(void *))
{
	if (!l->dispatching) {
		fn(ptr);
		return;
	}
	if (l->ndefer == l->capdefer) {
		size_t cap = l->capdefer ? l->capdefer * 2 : 16;
		struct deferred *d = realloc(l->defer, cap * sizeof(*d));
		if (!d) {
			/* Leaking beats a use after free. */
			return;
		}
		l->defer = d;
		l->capdefer = cap;
	}
	l->defer[l->ndefer++] = (struct deferred){ptr, fn};
}

void loop_timer_del(struct loop *l, struct loop_timer *t)
{
	if (!t->armed)
		return;
	struct loop_timer **pp = &l->timers;
	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp)
		*pp = t->next;
	t->next = NULL;
	t->armed = false;
}

void loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t when_ms)
{
	loop_timer_del(l, t);
	struct loop_timer **pp = &l->timers;
	while (*pp && (*pp)->when_ms <= when_ms)
		pp = &(*pp)->next;
	t->when_ms = when_ms;
	t->next = *pp;
	*pp = t;
	t->armed = true;
}

void loop_post(struct loop *l, struct loop_task *t)
{
	if (t->queued)
		return;
	t->queued = true;
	t->round = l->task_round;
	t->next = NULL;
	*l->tasks_tail = t;
	l->tasks_tail = &t->next;
}

void loop_unpost(struct loop *l, struct loop_task *t)
{
	if (!t->queued)
		return;
	struct loop_task **pp = &l->tasks;
	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = t->next;
		if (!*pp)
			l->tasks_tail = pp;
	}
	t->queued = false;
	t->next = NULL;
}

/* Run the tasks queued so far; tasks they queue wait for the next round,
 * so a task that re-posts itself cannot starve the sockets. */
static void run_tasks(struct loop *l)
{
	uint64_t round = ++l->task_round;

	while (l->tasks && l->tasks->round < round) {
		struct loop_task *t = l->tasks;
		l->tasks = t->next;
		if (!l->tasks)
			l->tasks_tail = &l->tasks;
		t->queued = false;
		t->next = NULL;
		t->cb(t);
	}
}

static void run_timers(struct loop *l)
{
	uint64_t now = loop_now(l);

	while (l->timers && l->timers->when_ms <= now) {
		struct loop_timer *t = l->timers;
		l->timers = t->next;
		t->next = NULL;
		t->armed = false;
		t->cb(t, now);
	}
}

static int wait_ms(const struct loop *l, int max_ms)
{
	if (l->tasks)
		return 0;
	if (!l->timers)
		return max_ms;
	uint64_t now = loop_now(l);
	uint64_t at = l->timers->when_ms;
	long ms = at <= now ? 0 : (long)(at - now);
	if (ms > 86400000L)
		ms = 86400000L;
	if (max_ms >= 0 && ms > max_ms)
		ms = max_ms;
	return (int)ms;
}

int loop_run_once(struct loop *l, int max_ms)
{
	struct epoll_event ev[LOOP_BATCH];

	if (l->before_wait)
		l->before_wait(l->before_ctx);
	int n = epoll_wait(l->epfd, ev, LOOP_BATCH, wait_ms(l, max_ms));

	if (n < 0 && errno != EINTR)
		return -1;
	l->dispatching = 1;
	for (int i = 0; i < n; i++) {
		struct loop_watch *w = ev[i].data.ptr;
		if (w->cb)
			w->cb(w, ev[i].events);
	}
	run_timers(l);
	run_tasks(l);
	l->dispatching = 0;
	run_deferred(l);
	return n < 0 ? 0 : n;
}

void loop_wake(struct loop *l)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is already non-zero: awake enough. */
	(void)!write(l->wakew.fd, &one, sizeof(one));
}

void loop_before_wait(struct loop *l, void (*cb)(void *ctx), void *ctx)
{
	l->before_wait = cb;
	l->before_ctx = ctx;
}

void loop_on_wake(struct loop *l, void (*cb)(void *ctx), void *ctx)
{
	l->on_wake = cb;
	l->wake_ctx = ctx;
}

uint64_t loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t loop_now(const struct loop *l)
{
	return l->clock ? l->clock(l->clock_ctx) : loop_now_ms();
}

void loop_set_clock(struct loop *l, uint64_t (*now)(void *ctx), void *ctx)
{
	l->clock = now;
	l->clock_ctx = ctx;
}
