/*
 * ops.h - the control socket's commands (splitdnsctl, control.h) on
 * main's thread: status, pause, resume, flush, reload, refresh, explain
 * and top, each reading or setting the running daemon's state.
 */
#ifndef SPLITDNS_OPS_H
#define SPLITDNS_OPS_H

#include <stdbool.h>
#include <stddef.h>

struct daemon;

/*
 * Bind the control socket of d's configuration (control = "..."; none:
 * nothing to do) on d's loop, with the commands of this module; d->ctl
 * is then the caller's to free.  Call before dropping privileges.
 * Returns false with a message in err.
 */
bool ops_start_control(struct daemon *d, char *err, size_t errlen);

#endif
