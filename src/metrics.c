/*
 * metrics.c - the Prometheus endpoint on main's loop (metrics.h).
 *
 * HTTP is libmicrohttpd's, never parsed here: a hand-written HTTP/1.1
 * parser is a classic source of request-smuggling and overflow bugs,
 * and MHD is a well-kept Debian library that does keep-alive, timeouts,
 * HEAD and bad requests for us.  MHD runs in its "external epoll" mode:
 * it keeps one epoll descriptor for its sockets, which main's loop
 * watches; when it is readable, or MHD's own timeout comes, MHD_run does
 * the work without blocking.  So every request runs on main's thread,
 * the same thread that owns the snapshot and the daemon's counters, and
 * nothing here needs a lock.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "loop.h"
#include "metrics.h"

void metrics_family(FILE *f, const char *name, const char *type,
		    const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The format's label escapes: backslash, double quote, line feed. */
void metrics_label(FILE *f, const char *value)
{
	putc('"', f);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			putc(*p, f);
	}
	putc('"', f);
}

#ifdef HAVE_METRICS

#include <errno.h>
#include <microhttpd.h>
#include <sys/epoll.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics {
	struct loop_watch w; /* MHD's epoll descriptor */
	struct loop_timer timer;
	struct loop *loop;
	struct MHD_Daemon *mhd;
	struct metrics_ops ops;
};

bool metrics_available(void) { return true; }

/* Run MHD when its timeout comes, or (MHD_NO) not before it has I/O. */
static void rearm(struct metrics *m)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
		loop_timer_set(m->loop, &m->timer, loop_now(m->loop) + ms);
	else
		loop_timer_del(m->loop, &m->timer);
}

static void on_ready(struct loop_watch *w, uint32_t events)
{
	struct metrics *m = (struct metrics *)w;

	(void)events;
	MHD_run(m->mhd);
	rearm(m);
}

static void on_timer(struct loop_timer *t, uint64_t now_ms)
{
	struct metrics *m =
	    (struct metrics *)((char *)t - offsetof(struct metrics, timer));
	(void)now_ms;
	MHD_run(m->mhd);
	rearm(m);
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *sa,
				 socklen_t len)
{
	struct metrics *m = cls;

	(void)len;
	return m->ops.allowed(m->ops.ctx, sa) ? MHD_YES : MHD_NO;
}

/* A small fixed answer (404, 405, 500). */
static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned status,
				   const char *text, bool allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_len, void **state)
{
	struct metrics *m = cls;
	char *body = NULL;
	size_t len = 0;

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	/* Answered at the first call, before any request body is read:
	 * MHD then discards the body and keeps the connection only if it
	 * can. */
	if (strcmp(url, "/metrics") != 0)
		return answer_text(conn, MHD_HTTP_NOT_FOUND, "not found\n",
				   false);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				   "method not allowed\n", true);
	FILE *f = open_memstream(&body, &len);
	if (!f)
		return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				   "out of memory\n", false);
	m->ops.write(m->ops.ctx, f);
	if (fclose(f) != 0 || !body) {
		free(body);
		return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				   "out of memory\n", false);
	}
	/* MHD frees body with free() once it is sent. */
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				METRICS_CONTENT_TYPE);
	enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

struct metrics *metrics_new(struct loop *loop, const struct conf_addr *addr,
			    const struct metrics_ops *ops, char *err,
			    size_t errlen)
{
	struct metrics *m = calloc(1, sizeof(*m));
	unsigned flags = MHD_USE_EPOLL;

	if (!m) {
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	m->loop = loop;
	m->ops = *ops;
	m->w.fd = -1;
	m->w.cb = on_ready;
	m->timer.cb = on_timer;
	if (addr->ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	m->mhd = MHD_start_daemon(
	    flags, 0, on_accept, m, on_request, m, MHD_OPTION_SOCK_ADDR,
	    (const struct sockaddr *)&addr->ss, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)METRICS_MAX_CONNS, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)METRICS_TIMEOUT_S, MHD_OPTION_END);
	if (!m->mhd) {
		snprintf(err, errlen, "metrics %s: cannot listen: %s",
			 addr->addr,
			 errno ? strerror(errno)
			       : "libmicrohttpd "
				 "failed");
		free(m);
		return NULL;
	}
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	m->w.fd = info ? info->epoll_fd : -1;
	if (m->w.fd < 0 || loop_add(loop, &m->w, EPOLLIN) < 0) {
		snprintf(err, errlen, "metrics %s: cannot watch: %s",
			 addr->addr, strerror(errno));
		MHD_stop_daemon(m->mhd);
		free(m);
		return NULL;
	}
	rearm(m);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	loop_del(m->loop, &m->w);
	loop_timer_del(m->loop, &m->timer);
	MHD_stop_daemon(m->mhd);
	free(m);
}

#else /* !HAVE_METRICS */

struct metrics {
	int unused;
};

bool metrics_available(void) { return false; }

struct metrics *metrics_new(struct loop *loop, const struct conf_addr *addr,
			    const struct metrics_ops *ops, char *err,
			    size_t errlen)
{
	(void)loop;
	(void)addr;
	(void)ops;
	snprintf(err, errlen, "metrics: built without libmicrohttpd");
	return NULL;
}

void metrics_free(struct metrics *m) { (void)m; }

#endif
