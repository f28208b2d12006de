/*
 * control.c - the control socket: bind, accept, check the peer, read one
 * request line, parse it, run main's op, write the reply, close.
 *
 * Every connection is non-blocking on main's loop with one deadline for
 * the whole exchange, so a client that connects and never writes (or
 * never reads) costs a descriptor for CONTROL_TIMEOUT_MS and nothing
 * else: reloads, signals and other clients go on.  At most
 * CONTROL_MAX_CONNS connections at once; more get a short error.  The
 * ops run to completion on main's thread and never wait (a reload only
 * starts the build thread), so a command cannot stall the loop either.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "errf.h"
#include "log.h"
#include "loop.h"

struct conn {
	struct loop_watch w;
	struct loop_timer t;
	struct control *ctl;
	LIST_ENTRY(conn) link;
	bool refused;  /* the peer may not send commands */
	bool overflow; /* the line is too long: discarding up to its end */
	size_t inlen;
	char *out; /* the reply, once there is one */
	size_t outlen, outoff;
	char in[CONTROL_REQUEST_MAX];
};

struct control {
	struct loop_watch w; /* the listening socket */
	struct loop *loop;
	struct control_ops ops;
	char *path;
	uint32_t owner, group;
	unsigned nconns;
	LIST_HEAD(, conn) conns;
};

void control_error(struct control_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->error = true;
}

void control_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p > 0x7e)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* ---- the socket file ---- */

/* Make room at path: nothing there, or a socket nobody answers on. */
static bool clear_path(const char *path, char *err, size_t errlen)
{
	struct stat st;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return true;
		return errf(err, errlen, "control %s: %s", path,
			    strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return errf(err, errlen,
			    "control %s: exists and is not a "
			    "socket",
			    path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errf(err, errlen, "control: socket: %s",
			    strerror(errno));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	if (live)
		return errf(err, errlen,
			    "control %s: another daemon is "
			    "listening there",
			    path);
	if (unlink(path) < 0)
		return errf(err, errlen,
			    "control %s: removing the stale "
			    "socket: %s",
			    path, strerror(errno));
	return true;
}

/* The owner and group the file gets. */
static bool owner_of(const struct control_settings *s, uint32_t *uid,
		     uint32_t *gid, char *err, size_t errlen)
{
	*uid = (uint32_t)geteuid();
	*gid = (uint32_t)getegid();
	if (s->user) {
		errno = 0;
		struct passwd *pw = getpwnam(s->user);
		if (!pw) {
			errf(err, errlen, "control: user '%s': %s", s->user,
			     errno ? strerror(errno) : "no such user");
			return false;
		}
		*uid = (uint32_t)pw->pw_uid;
		*gid = (uint32_t)pw->pw_gid;
	}
	if (s->group) {
		errno = 0;
		struct group *gr = getgrnam(s->group);
		if (!gr) {
			errf(err, errlen, "control_group '%s': %s", s->group,
			     errno ? strerror(errno) : "no such group");
			return false;
		}
		*gid = (uint32_t)gr->gr_gid;
	}
	return true;
}

static int bind_socket(const struct control_settings *s, uint32_t uid,
		       uint32_t gid, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(s->path);

	if (n == 0 || n >= sizeof(sa.sun_path)) {
		errf(err, errlen, "control '%s': a path of 1..%zu octets",
		     s->path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, s->path, n + 1);
	if (!clear_path(s->path, err, errlen))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errf(err, errlen, "control: socket: %s", strerror(errno));
		return -1;
	}
	/* Born owner-only, so that nobody connects before the mode and the
	 * owner are right. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	const char *what = "bind";
	if (rc == 0 && (geteuid() == 0 || gid != (uint32_t)getegid() ||
			uid != (uint32_t)geteuid()))
		rc = chown(s->path, (uid_t)uid, (gid_t)gid), what = "chown";
	if (rc == 0)
		rc = chmod(s->path, (mode_t)s->mode), what = "chmod";
	if (rc == 0)
		rc = listen(fd, CONTROL_MAX_CONNS), what = "listen";
	if (rc < 0) {
		errf(err, errlen, "control %s: %s: %s", s->path, what,
		     strerror(errno));
		if (strcmp(what, "bind") != 0)
			unlink(s->path);
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- connections ---- */

static void conn_close(struct conn *c)
{
	struct control *ctl = c->ctl;

	loop_del(ctl->loop, &c->w);
	loop_timer_del(ctl->loop, &c->t);
	close(c->w.fd);
	LIST_REMOVE(c, link);
	ctl->nconns--;
	free(c->out);
	loop_defer_free(ctl->loop, c, free);
}

/* Write what the socket takes; close once all is out (or it fails). */
static void conn_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->w.fd, c->out + c->outoff,
				 c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (loop_mod(c->ctl->loop, &c->w, EPOLLOUT) < 0)
				break;
			return;
		}
		if (n <= 0)
			break;
		c->outoff += (size_t)n;
	}
	conn_close(c);
}

/* Split line into words (in place); false when a byte is not allowed or
 * there are too many. */
static bool split(char *line, char **argv, int *argc)
{
	*argc = 0;
	for (char *p = line; *p;) {
		if (*p == ' ') {
			*p++ = '\0';
			continue;
		}
		if (*argc == CONTROL_MAX_ARGS)
			return false;
		argv[(*argc)++] = p;
		while (*p && *p != ' ') {
			if ((unsigned char)*p < 0x21 ||
			    (unsigned char)*p > 0x7e)
				return false;
			p++;
		}
	}
	return true;
}

/* A decimal number in 1..max. */
static bool number(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return v > 0;
}

static bool starts_digit(const char *s) { return *s >= '0' && *s <= '9'; }

static void run_pause(const struct control_ops *o, struct control_reply *r,
		      int argc, char **argv)
{
	unsigned long secs = 0;
	int i = 0;

	if (argc > 0 && starts_digit(argv[0])) {
		if (!number(argv[0], CONTROL_PAUSE_MAX, &secs)) {
			control_error(r, "pause: SECONDS must be 1..%u",
				      CONTROL_PAUSE_MAX);
			return;
		}
		i = 1;
	}
	if (argc - i > 1) {
		control_error(r, "usage: pause [SECONDS] [GROUP]");
		return;
	}
	o->pause(o->ctx, r, (uint32_t)secs, i < argc ? argv[i] : NULL);
}

static bool known(const char *cmd)
{
	static const char *const names[] = {
	    "status", "pause",	 "resume",  "flush",
	    "reload", "refresh", "explain", "top",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(cmd, names[i]) == 0)
			return true;
	return false;
}

/* Check the arguments of argv[0] and call its op. */
static void run(const struct control_ops *o, struct control_reply *r, int argc,
		char **argv)
{
	const char *cmd = argv[0];
	int n = argc - 1;
	char **a = argv + 1;
	unsigned long top = CONTROL_TOP_DEFAULT;

	if (strcmp(cmd, "status") == 0 && n == 0)
		o->status(o->ctx, r);
	else if (strcmp(cmd, "pause") == 0)
		run_pause(o, r, n, a);
	else if (strcmp(cmd, "resume") == 0 && n <= 1)
		o->resume(o->ctx, r, n ? a[0] : NULL);
	else if (strcmp(cmd, "flush") == 0 && n <= 1)
		o->flush(o->ctx, r, n ? a[0] : NULL);
	else if (strcmp(cmd, "reload") == 0 && n == 0)
		o->reload(o->ctx, r);
	else if (strcmp(cmd, "refresh") == 0 && n == 0)
		o->refresh(o->ctx, r);
	else if (strcmp(cmd, "explain") == 0 && n >= 1 && n <= 3)
		o->explain(o->ctx, r, a[0], n > 1 ? a[1] : NULL,
			   n > 2 ? a[2] : NULL);
	else if (strcmp(cmd, "top") == 0 && n <= 1) {
		if (n && !number(a[0], CONTROL_TOP_MAX, &top))
			control_error(r, "top: N must be 1..%u",
				      CONTROL_TOP_MAX);
		else
			o->top(o->ctx, r, (unsigned)top);
	} else if (known(cmd))
		control_error(r, "%s: wrong number of arguments", cmd);
	else
		control_error(r, "unknown command");
}

/* Put the reply for r (its body in body/blen) into c->out. */
static bool set_reply(struct conn *c, const struct control_reply *r,
		      const char *body, size_t blen)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return false;
	if (r->error) {
		fputs("error\n", f);
		if (r->json) {
			fputs("{\"error\": ", f);
			control_json_str(f, r->msg);
			fputs("}\n", f);
		} else {
			fprintf(f, "%s\n", r->msg);
		}
	} else {
		fputs("ok\n", f);
		fwrite(body, 1, blen, f);
	}
	if (fclose(f) != 0) {
		free(out);
		return false;
	}
	c->out = out;
	c->outlen = len;
	return true;
}

/* The whole line is in: answer it. */
static void answer(struct conn *c)
{
	struct control_reply r = {.f = NULL};
	char *argv[CONTROL_MAX_ARGS];
	char *body = NULL;
	size_t blen = 0;
	int argc;

	c->in[c->inlen - 1] = '\0';
	if (c->inlen > 1 && c->in[c->inlen - 2] == '\r')
		c->in[c->inlen - 2] = '\0';
	if (c->refused) {
		r.json = strncmp(c->in, "json ", 5) == 0;
		control_error(&r, "permission denied: only root, the socket's "
				  "owner and its group may use the control "
				  "socket");
	} else if (c->overflow) {
		control_error(&r, "request longer than %d octets",
			      CONTROL_REQUEST_MAX);
	} else if (!split(c->in, argv, &argc) || argc < 2 ||
		   (strcmp(argv[0], "text") != 0 &&
		    strcmp(argv[0], "json") != 0)) {
		control_error(&r, "bad request: FORMAT COMMAND [ARG]..., "
				  "printable words");
	} else {
		r.json = argv[0][0] == 'j';
		if (!(r.f = open_memstream(&body, &blen)))
			control_error(&r, "out of memory");
		else
			run(&c->ctl->ops, &r, argc - 1, argv + 1);
		if (r.f && fclose(r.f) != 0)
			control_error(&r, "out of memory");
		if (!r.error && blen > CONTROL_REPLY_MAX)
			control_error(&r, "reply too large");
	}
	bool ok = set_reply(c, &r, body, blen);
	free(body);
	if (!ok) {
		conn_close(c);
		return;
	}
	conn_flush(c);
}

static void conn_read(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->w.fd, c->in + c->inlen,
				 sizeof(c->in) - c->inlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(c); /* gone before a whole line */
			return;
		}
		char *nl = memchr(c->in + c->inlen, '\n', (size_t)n);
		c->inlen += (size_t)n;
		if (nl) {
			c->inlen = (size_t)(nl - c->in) + 1;
			loop_mod(c->ctl->loop, &c->w, 0);
			answer(c);
			return;
		}
		/* Past the bound the rest of the line is read and dropped
		 * (within the connection's deadline), so that the error
		 * reaches a client still writing instead of a reset. */
		if (c->inlen == sizeof(c->in)) {
			c->overflow = true;
			c->inlen = 0;
		}
	}
}

static void on_conn(struct loop_watch *w, uint32_t events)
{
	struct conn *c = (struct conn *)w;

	if (c->out)
		conn_flush(c);
	else if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_read(c);
}

static void on_conn_timeout(struct loop_timer *t, uint64_t now_ms)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, t));

	(void)now_ms;
	conn_close(c);
}

/* uid 0, the owner, or in the socket's group (control.h). */
static bool peer_allowed(int fd, uint32_t owner, uint32_t group)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t groups[256];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == 0 || cred.uid == owner || cred.gid == group)
		return true;
#ifdef SO_PEERGROUPS
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
		for (size_t i = 0; i < len / sizeof(groups[0]); i++)
			if (groups[i] == group)
				return true;
#else
	(void)groups;
#endif
	return false;
}

/* A refusal written at once (best effort: the socket is new and empty,
 * so a short line fits), then the connection goes. */
static void turn_away(int fd, const char *why)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "error\n%s\n", why);
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("control: %s", strerror(errno));
	close(fd);
}

static void on_accept(struct loop_watch *w, uint32_t events)
{
	struct control *ctl = (struct control *)w;
	int fd;

	(void)events;
	while ((fd = accept4(w->fd, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct conn *c;
		if (ctl->nconns >= CONTROL_MAX_CONNS ||
		    !(c = calloc(1, sizeof(*c)))) {
			turn_away(fd, "busy: too many control connections");
			continue;
		}
		/* A refused peer is answered like any request (once its
		 * line is in), so that it reads the reason, not a reset. */
		if (!peer_allowed(fd, ctl->owner, ctl->group)) {
			log_warn("control: refused a client that is neither "
				 "root, the socket's owner nor in its group");
			c->refused = true;
		}
		c->w = (struct loop_watch){fd, on_conn};
		c->t.cb = on_conn_timeout;
		c->ctl = ctl;
		if (loop_add(ctl->loop, &c->w, EPOLLIN) < 0) {
			close(fd);
			free(c);
			continue;
		}
		LIST_INSERT_HEAD(&ctl->conns, c, link);
		ctl->nconns++;
		loop_timer_set(ctl->loop, &c->t,
			       loop_now(ctl->loop) + CONTROL_TIMEOUT_MS);
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		log_warn("control: accept: %s", strerror(errno));
}

struct control *control_new(struct loop *loop, const struct control_settings *s,
			    const struct control_ops *ops, char *err,
			    size_t errlen)
{
	struct control *ctl = calloc(1, sizeof(*ctl));

	if (!ctl || !(ctl->path = strdup(s->path))) {
		free(ctl);
		errf(err, errlen, "control: out of memory");
		return NULL;
	}
	ctl->loop = loop;
	ctl->ops = *ops;
	LIST_INIT(&ctl->conns);
	ctl->w = (struct loop_watch){-1, on_accept};
	if (!owner_of(s, &ctl->owner, &ctl->group, err, errlen) ||
	    (ctl->w.fd = bind_socket(s, ctl->owner, ctl->group, err, errlen)) <
		0) {
		free(ctl->path);
		free(ctl);
		return NULL;
	}
	if (loop_add(loop, &ctl->w, EPOLLIN) < 0) {
		errf(err, errlen, "control: epoll: %s", strerror(errno));
		close(ctl->w.fd);
		unlink(ctl->path);
		free(ctl->path);
		free(ctl);
		return NULL;
	}
	return ctl;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	while (!LIST_EMPTY(&c->conns))
		conn_close(LIST_FIRST(&c->conns));
	loop_del(c->loop, &c->w);
	close(c->w.fd);
	/* After the privilege drop the directory may not let us: the next
	 * start replaces the stale file. */
	if (unlink(c->path) < 0 && errno != ENOENT)
		log_debug("control %s: %s", c->path, strerror(errno));
	free(c->path);
	free(c);
}
