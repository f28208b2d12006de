/*
 * expo.h - the Prometheus endpoint's body: the running daemon's figures
 * in the text exposition format, served by metrics.c on main's loop.
 */
#ifndef SPLITDNS_EXPO_H
#define SPLITDNS_EXPO_H

#include <stdbool.h>
#include <stddef.h>

struct daemon;

/*
 * Listen for scrapes (metrics = "..."; off: nothing to do) on d's loop,
 * answering with this module's body to the clients access.allow lets
 * in; d->metrics is then the caller's to free.  Call before dropping
 * privileges.  Returns false with a message in err.
 */
bool expo_start_metrics(struct daemon *d, char *err, size_t errlen);

#endif
