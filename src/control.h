/*
 * control.h - the control socket: a Unix stream socket on main's loop
 * that splitdnsctl(8) talks to.
 *
 * The protocol (splitdnsctl.8, PROTOCOL): one request per connection, a
 * line of at most CONTROL_REQUEST_MAX octets ending in "\n":
 *     FORMAT COMMAND [ARG]...
 * words separated by one or more spaces, each made of printable ASCII
 * other than space (0x21-0x7e; arguments are data, never interpreted
 * beyond the command's own parsing), FORMAT "text" or "json".  The reply
 * is a status line, "ok" or "error", then the body (text lines, or one
 * JSON object; an error's body is its message, or {"error": "..."}), and
 * the daemon closes the connection.  A client has CONTROL_TIMEOUT_MS for
 * the whole exchange; past it, it is cut off.
 *
 * Who may send commands: the socket file's mode is the gate (connect(2)
 * needs write permission on it); the daemon checks the peer too, by the
 * credentials the kernel recorded at connect (SO_PEERCRED, SO_PEERGROUPS):
 * uid 0, the socket's owner, or a member of its group (primary or
 * supplementary).  Anyone else gets a "permission denied" error answer.
 *
 * This module owns the socket, its file, the connections, the framing
 * and the parsing of commands and their arguments; what each command does
 * is main's (struct control_ops), which writes its answer into the reply.
 * Everything runs on main's loop thread; nothing here blocks.
 */
#ifndef SPLITDNS_CONTROL_H
#define SPLITDNS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONTROL_PATH_DEFAULT "/run/splitdns/control"
#define CONTROL_MODE_DEFAULT 0660
#define CONTROL_REQUEST_MAX 1024     /* octets, newline included */
#define CONTROL_REPLY_MAX (1u << 20) /* octets of a reply body */
#define CONTROL_TIMEOUT_MS 3000	     /* per connection, all of it */
#define CONTROL_MAX_CONNS 16	     /* at once; more are turned away */
#define CONTROL_MAX_ARGS 8
#define CONTROL_PAUSE_MAX 31536000 /* seconds (a year) */
#define CONTROL_TOP_MAX 1000	   /* names per list of top */
#define CONTROL_TOP_DEFAULT 10

struct loop;
struct control;

/* Where an op writes its answer: the body to f, in the request's
 * format.  An op that fails calls control_error instead (what it wrote
 * to f is then dropped). */
struct control_reply {
	FILE *f;
	bool json;
	bool error;
	char msg[512];
};

void control_error(struct control_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The commands, as parsed; every pointer is borrowed for the call. */
struct control_ops {
	void *ctx;
	void (*status)(void *ctx, struct control_reply *r);
	/* seconds 0: until resume; group NULL: every client. */
	void (*pause)(void *ctx, struct control_reply *r, uint32_t seconds,
		      const char *group);
	void (*resume)(void *ctx, struct control_reply *r, const char *group);
	/* name NULL: everything */
	void (*flush)(void *ctx, struct control_reply *r, const char *name);
	void (*reload)(void *ctx, struct control_reply *r);
	void (*refresh)(void *ctx, struct control_reply *r);
	/* type, client NULL when not given */
	void (*explain)(void *ctx, struct control_reply *r, const char *name,
			const char *type, const char *client);
	void (*top)(void *ctx, struct control_reply *r, unsigned n);
};

struct control_settings {
	const char *path;
	unsigned mode;	   /* permission bits of the socket file */
	const char *user;  /* its owner (the daemon's user); NULL: ours */
	const char *group; /* its group; NULL: the owner's primary group */
};

/*
 * Bind the socket at s->path (a stale socket file there is replaced; a
 * live one, or anything that is not a socket, is an error), give it its
 * owner, group and mode, and serve it on loop with ops (copied).  Call it
 * before dropping privileges.  Returns NULL with a message in err.
 */
struct control *control_new(struct loop *loop, const struct control_settings *s,
			    const struct control_ops *ops, char *err,
			    size_t errlen);

/* Close every connection and the socket, and remove its file (when we
 * still may).  control_free(NULL) does nothing. */
void control_free(struct control *c);

/* JSON text for s: a quoted string with '"', '\\' and every octet below
 * 0x20 or above 0x7e escaped (\u00XX), so that names are data. */
void control_json_str(FILE *f, const char *s);

#endif
