/*
 * server.c - sockets: UDP datagrams and RFC 7766 TCP connections.
 *
 * A TCP connection is owned by the server while open and by the queries
 * that still refer to it after it closes: refs counts one for "open" plus
 * one per query in flight, and the memory goes (deferred to the end of the
 * loop's batch) when it drops to zero.  Replies to a closed connection are
 * dropped.
 */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "query.h"
#include "server.h"
#include "wire.h"

#define SERVER_UDP_BATCH 64        /* datagrams per wake-up per socket */
#define SERVER_TCP_OUT_MAX (1 << 20) /* unsent bytes before we give up */
#define SERVER_RCVBUF (4 * 1024 * 1024)

struct listener {
	struct loop_watch w;
	struct server *srv;
	bool tcp;
};

struct conn {
	struct loop_watch w;
	struct server *srv;
	int refs;
	bool closed;
	bool eof;      /* the client sent FIN: answer what is in flight */
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	uint64_t last; /* last activity, for the idle timeout */
	struct conn *prev, *next;
	struct sockaddr_storage peer;
	socklen_t peerlen;
};

struct server {
	struct loop *loop;
	struct query_env *env;
	struct listener *ls;
	size_t nls;
	struct conn *head, *tail; /* open connections, least recent first */
	size_t nconns;
	size_t max_conns;
	int idle_ms;
	uint8_t buf[WIRE_MSG_MAX + 1];
};

static void conn_close(struct conn *c);

static void udp_send(const struct query_client *cl, const uint8_t *msg,
		     size_t len)
{
	/* A full socket buffer drops the reply: the client retries. */
	(void)!sendto(cl->fd, msg, len, MSG_DONTWAIT,
		      (const struct sockaddr *)&cl->peer, cl->peerlen);
}

static void on_udp(struct loop_watch *w, uint32_t events)
{
	struct listener *l = (struct listener *)w;
	struct server *srv = l->srv;
	struct query_client cl = {.fd = w->fd, .conn = NULL};

	(void)events;
	for (int i = 0; i < SERVER_UDP_BATCH; i++) {
		cl.peerlen = sizeof(cl.peer);
		ssize_t n = recvfrom(w->fd, srv->buf, sizeof(srv->buf),
				     MSG_DONTWAIT, (struct sockaddr *)&cl.peer,
				     &cl.peerlen);
		if (n < 0)
			return; /* EAGAIN, or an ICMP error: nothing to do */
		query_handle(srv->env, &cl, srv->buf, (size_t)n);
	}
}

static void idle_unlink(struct server *srv, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		srv->tail = c->prev;
	c->prev = c->next = NULL;
}

static void touch(struct conn *c)
{
	struct server *srv = c->srv;
	c->last = loop_now_ms();
	if (srv->tail == c)
		return;
	idle_unlink(srv, c);
	c->prev = srv->tail;
	if (srv->tail)
		srv->tail->next = c;
	else
		srv->head = c;
	srv->tail = c;
}

static void conn_free(void *p)
{
	struct conn *c = p;
	free(c->in);
	free(c->out);
	free(c);
}

static void conn_unref(struct conn *c)
{
	if (--c->refs == 0)
		loop_defer_free(c->srv->loop, c, conn_free);
}

static void conn_watch(struct conn *c)
{
	uint32_t ev = 0;
	if (!c->eof)
		ev |= EPOLLIN;
	if (c->out_len > c->out_off)
		ev |= EPOLLOUT;
	loop_mod(c->srv->loop, &c->w, ev);
}

/* Write what is queued; false when the connection had to be closed. */
static bool conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->w.fd, c->out + c->out_off,
				 c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			conn_close(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	return true;
}

/* Done when nothing is in flight, nothing is unsent and the client is
 * gone. */
static void conn_maybe_finish(struct conn *c)
{
	if (!c->closed && c->eof && c->refs == 1 && c->out_len == 0)
		conn_close(c);
}

static void tcp_send(struct conn *c, const uint8_t *msg, size_t len)
{
	if (c->closed)
		return;
	size_t need = c->out_len + 2 + len;
	if (need > SERVER_TCP_OUT_MAX) {
		conn_close(c); /* the client does not read its answers */
		return;
	}
	if (need > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 1024;
		while (cap < need)
			cap *= 2;
		uint8_t *o = realloc(c->out, cap);
		if (!o) {
			conn_close(c);
			return;
		}
		c->out = o;
		c->out_cap = cap;
	}
	wire_set16(c->out + c->out_len, (uint16_t)len);
	memcpy(c->out + c->out_len + 2, msg, len);
	c->out_len += 2 + len;
	touch(c);
	if (conn_flush(c))
		conn_watch(c);
}

/* Hand every complete frame to the pipeline. */
static void conn_frames(struct conn *c)
{
	struct query_client cl = {.fd = -1, .conn = c};
	size_t off = 0;

	cl.peer = c->peer;
	cl.peerlen = c->peerlen;
	c->refs++; /* the pipeline may close c while we iterate */
	while (!c->closed && c->in_len - off >= 2) {
		size_t flen = wire_get16(c->in + off);
		if (c->in_len - off - 2 < flen)
			break;
		query_handle(c->srv->env, &cl, c->in + off + 2, flen);
		off += 2 + flen;
	}
	if (!c->closed && off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	conn_unref(c);
}

static void on_conn(struct loop_watch *w, uint32_t events)
{
	struct conn *c = (struct conn *)w;

	if ((events & EPOLLOUT) && (!conn_flush(c) || c->closed))
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (c->in_cap - c->in_len < 4096) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
			if (cap > WIRE_MSG_MAX + 2 + 4096)
				cap = WIRE_MSG_MAX + 2 + 4096;
			uint8_t *in = realloc(c->in, cap);
			if (!in) {
				conn_close(c);
				return;
			}
			c->in = in;
			c->in_cap = cap;
		}
		ssize_t n = recv(w->fd, c->in + c->in_len,
				 c->in_cap - c->in_len, MSG_DONTWAIT);
		if (n == 0) {
			c->eof = true;
		} else if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR) {
				conn_close(c);
				return;
			}
		} else {
			c->in_len += (size_t)n;
			touch(c);
			conn_frames(c);
		}
		if (c->closed)
			return;
		if (c->eof && c->refs == 1 && c->out_len == 0) {
			conn_close(c);
			return;
		}
	}
	conn_watch(c);
}

static void on_accept(struct loop_watch *w, uint32_t events)
{
	struct listener *l = (struct listener *)w;
	struct server *srv = l->srv;

	(void)events;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage peer;
		socklen_t peerlen = sizeof(peer);
		int fd = accept4(w->fd, (struct sockaddr *)&peer, &peerlen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (srv->nconns >= srv->max_conns) {
			close(fd); /* RFC 7766 6.2.2: servers may refuse */
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->w.fd = fd;
		c->w.cb = on_conn;
		c->srv = srv;
		c->refs = 1;
		c->peer = peer;
		c->peerlen = peerlen;
		if (loop_add(srv->loop, &c->w, EPOLLIN) < 0) {
			close(fd);
			free(c);
			continue;
		}
		srv->nconns++;
		touch(c);
	}
}

static void conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	loop_del(c->srv->loop, &c->w);
	close(c->w.fd);
	idle_unlink(c->srv, c);
	c->srv->nconns--;
	conn_unref(c);
}

static void io_send(void *ctx, const struct query_client *cl,
		    const uint8_t *msg, size_t len)
{
	(void)ctx;
	if (cl->conn)
		tcp_send(cl->conn, msg, len);
	else
		udp_send(cl, msg, len);
}

static void io_hold(void *ctx, const struct query_client *cl)
{
	(void)ctx;
	((struct conn *)cl->conn)->refs++;
}

static void io_release(void *ctx, const struct query_client *cl)
{
	struct conn *c = cl->conn;
	bool last = c->refs == 1;
	(void)ctx;
	conn_unref(c);
	if (!last)
		conn_maybe_finish(c);
}

void server_io(struct server *srv, struct query_io *io)
{
	io->send = io_send;
	io->hold = io_hold;
	io->release = io_release;
	io->ctx = srv;
}

static int open_socket(const struct config_addr *a, bool tcp, char *err,
		       size_t errlen)
{
	int one = 1, rcv = SERVER_RCVBUF;
	int fd = socket(a->ss.ss_family,
			(tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK |
				SOCK_CLOEXEC,
			0);

	if (fd < 0)
		goto fail;
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (tcp)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	else
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    (tcp && listen(fd, 128) < 0))
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "cannot listen on %s/%s: %s", a->text,
		 tcp ? "tcp" : "udp", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

struct server *server_new(const struct config *cfg, struct loop *loop,
			  char *err, size_t errlen)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (!srv || !(srv->ls = calloc(cfg->nlisten * 2, sizeof(*srv->ls)))) {
		free(srv);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->loop = loop;
	srv->max_conns = (size_t)cfg->tcp_max_connections;
	srv->idle_ms = cfg->tcp_idle_timeout_ms;
	for (size_t i = 0; i < cfg->nlisten * 2; i++) {
		struct listener *l = &srv->ls[i];
		l->tcp = i % 2;
		l->srv = srv;
		l->w.fd = open_socket(&cfg->listen[i / 2], l->tcp, err, errlen);
		if (l->w.fd < 0) {
			server_free(srv);
			return NULL;
		}
		l->w.cb = l->tcp ? on_accept : on_udp;
		srv->nls++;
	}
	return srv;
}

int server_start(struct server *srv, struct query_env *env)
{
	srv->env = env;
	for (size_t i = 0; i < srv->nls; i++)
		if (loop_add(srv->loop, &srv->ls[i].w, EPOLLIN) < 0)
			return -1;
	return 0;
}

void server_stop(struct server *srv)
{
	for (size_t i = 0; i < srv->nls; i++) {
		if (srv->ls[i].w.fd < 0)
			continue;
		loop_del(srv->loop, &srv->ls[i].w);
		close(srv->ls[i].w.fd);
		srv->ls[i].w.fd = -1;
	}
	while (srv->head)
		conn_close(srv->head);
}

int server_expire(struct server *srv, uint64_t now_ms)
{
	uint64_t idle = (uint64_t)srv->idle_ms;

	while (srv->head && now_ms - srv->head->last >= idle) {
		struct conn *c = srv->head;
		if (c->refs == 1 && c->out_len == 0)
			conn_close(c); /* RFC 7766 6.2.3 idle timeout */
		else
			touch(c); /* still busy: check again later */
	}
	if (!srv->head)
		return -1;
	return (int)(srv->head->last + idle - now_ms);
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	server_stop(srv);
	free(srv->ls);
	free(srv);
}
