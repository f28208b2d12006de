/*
 * reload.h - what main.c wires into its loop for reloads and refreshes
 * (reload.c): the refresh timer's callback, its arming, the wake
 * callback that publishes a finished build, and the two helpers the
 * start-up shares with a reload.  The control commands start builds
 * with daemon_start_reload and daemon_start_refresh (daemon.h).
 */
#ifndef SPLITDNS_RELOAD_H
#define SPLITDNS_RELOAD_H

#include <stdint.h>

struct cache_limits;
struct conf;
struct daemon;
struct loop_timer;

/* snapshot_build's and snapshot_refresh's report: a warning or a note
 * from loading the configuration or a list, to the log. */
void reload_report_log(void *ctx, int warning, const char *line);

/* The cache limits of a configuration (cache.*). */
void reload_cache_limits(const struct conf *cfg, struct cache_limits *lim);

/* The callback of d->refresh_timer: refresh the lists that are due. */
void reload_on_refresh_timer(struct loop_timer *t, uint64_t now_ms);

/* Arm d->refresh_timer for the next list that is due (none: disarm);
 * only between builds. */
void reload_arm_refresh(struct daemon *d);

/* loop_on_wake's callback (ctx: the daemon): when the build thread is
 * done, join it, publish its snapshot or log its error, re-arm the
 * refresh timer and start the build asked meanwhile. */
void reload_on_main_wake(void *ctx);

#endif
