/*
 * loop.c - epoll event loop with deferred release.
 *
 * Level-triggered on purpose: c-ares and the TCP code read until they
 * would block, but a handler that stops early (a batch cap) is simply
 * called again.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
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
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
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

int loop_wait(struct loop *l, int timeout_ms)
{
	struct epoll_event ev[LOOP_BATCH];
	int n = epoll_wait(l->epfd, ev, LOOP_BATCH, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -1;
	l->dispatching = 1;
	for (int i = 0; i < n; i++) {
		struct loop_watch *w = ev[i].data.ptr;
		if (w->cb)
			w->cb(w, ev[i].events);
	}
	l->dispatching = 0;
	run_deferred(l);
	return n;
}

uint64_t loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
