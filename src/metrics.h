/*
 * metrics.h - the Prometheus endpoint: GET /metrics over plain HTTP/1.1
 * on main's loop (metrics = "ADDR:PORT" in splitdns.conf(5)), and the
 * helpers that write the text exposition format (version 0.0.4).
 *
 * The HTTP side is libmicrohttpd's (configure finds it with pkg-config;
 * a build without it has no metrics and refuses the setting): this
 * module owns its daemon, drives it from main's epoll loop through the
 * one epoll descriptor MHD exposes (MHD_USE_EPOLL, no thread of its own),
 * and answers GET and HEAD of /metrics with the body main's write
 * callback produces; any other path is 404, any other method on /metrics
 * 405.  Clients that ops->allowed refuses (access.allow, as for queries)
 * are closed at accept.  What the body holds is main's: it reads the
 * counters the workers keep (relaxed atomics), so a scrape costs the
 * serving loops nothing.
 */
#ifndef SPLITDNS_METRICS_H
#define SPLITDNS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct conf_addr;
struct loop;
struct metrics;

/* The limits of the HTTP side. */
#define METRICS_MAX_CONNS 16 /* at once; more are closed */
#define METRICS_TIMEOUT_S 10 /* an idle connection closes */

struct metrics_ops {
	void *ctx;
	/* May the client at sa connect?  On main's thread. */
	bool (*allowed)(void *ctx, const struct sockaddr *sa);
	/* Write the exposition body to f.  On main's thread. */
	void (*write)(void *ctx, FILE *f);
};

/* Is the endpoint built in (libmicrohttpd found by configure)? */
bool metrics_available(void);

/*
 * Listen on addr (borrowed for the call) and serve on loop with ops
 * (copied).  Call before dropping privileges.  Returns NULL with a
 * message in err (also when the build has no metrics).
 */
struct metrics *metrics_new(struct loop *loop, const struct conf_addr *addr,
			    const struct metrics_ops *ops, char *err,
			    size_t errlen);

/* Close the connections and the socket.  metrics_free(NULL) does
 * nothing. */
void metrics_free(struct metrics *m);

/* The exposition format's pieces.  metrics_family writes the HELP and
 * TYPE lines of a family (type "counter", "gauge" or "histogram"; help
 * is a literal without newlines or backslashes).  metrics_label writes
 * a label value between double quotes, with '\\', '"' and newline
 * escaped as the format asks, so that any text is data. */
void metrics_family(FILE *f, const char *name, const char *type,
		    const char *help);
void metrics_label(FILE *f, const char *value);

#endif
