/*
 * pause.h - "blocking paused until T": runtime state, not configuration.
 *
 * main owns one struct pause_state and writes it (the control socket's
 * pause and resume); every worker reads it on each query through a
 * borrowed pointer, with relaxed atomic loads: no lock on the hot path.
 * A deadline is a time of the monotonic clock in milliseconds (the
 * loops' clock, loop_now_ms); blocking is back by itself once the clock
 * passes it, so no timer is needed.  A worker that sees a deadline a
 * moment late only blocks or forwards one more query; nothing else
 * depends on the order of the two.
 *
 * Slot PAUSE_ALL pauses blocking for every client; slot g + 1 for client
 * group g only (group 0 is "default", the clients of no group).
 */
#ifndef SPLITDNS_PAUSE_H
#define SPLITDNS_PAUSE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most client groups a pause can name: every group a configuration may
 * have (CONF_MAX_CLIENTS) and "default"; ops.c asserts it at build. */
#define PAUSE_MAX_GROUPS 65
#define PAUSE_ALL 0

/* "Until resume": a deadline no clock reaches. */
#define PAUSE_FOREVER UINT64_MAX

struct pause_state {
	/* Some slot is non-zero: only then do the workers read the clock
	 * (one relaxed load per query otherwise). */
	atomic_bool any;
	_Atomic uint64_t until_ms[PAUSE_MAX_GROUPS + 1]; /* 0: not paused */
};

/* Every slot zero (main's start-up). */
static inline void pause_init(struct pause_state *p)
{
	atomic_init(&p->any, false);
	for (size_t i = 0; i <= PAUSE_MAX_GROUPS; i++)
		atomic_init(&p->until_ms[i], 0);
}

/* Has any pause been set and not resumed (p may be NULL)?  When false,
 * pause_active is false whatever now_ms is, so the caller may skip
 * reading the clock. */
static inline bool pause_any(const struct pause_state *p)
{
	return p && atomic_load_explicit(&p->any, memory_order_relaxed);
}

/* The slot of client group g. */
static inline size_t pause_slot(size_t group)
{
	return group < PAUSE_MAX_GROUPS ? group + 1 : PAUSE_MAX_GROUPS + 1;
}

/* The deadline in slot i (0 when not paused or out of range). */
static inline uint64_t pause_until(const struct pause_state *p, size_t slot)
{
	if (!p || slot > PAUSE_MAX_GROUPS)
		return 0;
	return atomic_load_explicit(&p->until_ms[slot], memory_order_relaxed);
}

/* Is blocking paused at now_ms for the clients of group (p may be NULL:
 * never)? */
static inline bool pause_active(const struct pause_state *p, size_t group,
				uint64_t now_ms)
{
	if (!pause_any(p))
		return false;
	return pause_until(p, PAUSE_ALL) > now_ms ||
	       pause_until(p, pause_slot(group)) > now_ms;
}

/* Set slot i's deadline (0: resume).  main's thread.  A worker may see
 * the deadline and the any flag change in either order: one query
 * blocked or forwarded a moment early or late, nothing worse. */
static inline void pause_set(struct pause_state *p, size_t slot,
			     uint64_t until_ms)
{
	bool any = false;

	if (slot <= PAUSE_MAX_GROUPS)
		atomic_store_explicit(&p->until_ms[slot], until_ms,
				      memory_order_relaxed);
	for (size_t i = 0; i <= PAUSE_MAX_GROUPS && !any; i++)
		any = pause_until(p, i) != 0;
	atomic_store_explicit(&p->any, any, memory_order_relaxed);
}

#endif
