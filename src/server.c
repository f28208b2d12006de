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
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdint.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "loop.h"
#include "query.h"
#include "server.h"
#include "wire.h"

#define SERVER_UDP_BATCH 32        /* datagrams per recvmmsg/sendmmsg */
#define SERVER_UDP_OUT 4096        /* edns_size <= 4096: no UDP reply is larger */
#define SERVER_CMSG 64             /* room for one in(6)_pktinfo */
#define SERVER_TCP_OUT_MAX (1 << 20) /* unsent bytes before we give up */
#define SERVER_RCVBUF (4 * 1024 * 1024)

struct listener {
	struct loop_watch w;
	struct server *srv;
	bool tcp;
	uint64_t paused_until; /* out of file descriptors: accept later */
	bool wildcard; /* replies need the query's destination address */
};

/* One recvmmsg batch in, one sendmmsg batch out: two system calls for up
 * to SERVER_UDP_BATCH queries answered locally. */
struct udp_batch {
	int fd; /* the socket being served, -1 outside a batch */
	struct mmsghdr in[SERVER_UDP_BATCH];
	struct iovec in_iov[SERVER_UDP_BATCH];
	struct sockaddr_storage in_peer[SERVER_UDP_BATCH];
	uint8_t in_cmsg[SERVER_UDP_BATCH][SERVER_CMSG];
	uint8_t in_buf[SERVER_UDP_BATCH][WIRE_MSG_MAX];
	unsigned nout;
	struct mmsghdr out[SERVER_UDP_BATCH];
	struct iovec out_iov[SERVER_UDP_BATCH];
	struct sockaddr_storage out_peer[SERVER_UDP_BATCH];
	uint8_t out_cmsg[SERVER_UDP_BATCH][SERVER_CMSG];
	uint8_t out_buf[SERVER_UDP_BATCH][SERVER_UDP_OUT];
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
	size_t nconns;              /* this server's */
	_Atomic size_t *all_conns;  /* every worker's server's, shared */
	_Atomic size_t own_conns;   /* all_conns when nothing is shared */
	size_t max_conns;           /* a bound on *all_conns */
	int idle_ms;
	struct udp_batch *udp;
};

static void conn_close(struct conn *c);

/* Fill msg's control data with the source address for a wildcard
 * socket's reply (IP_PKTINFO / IPV6_PKTINFO, RFC 3542 6). */
static void set_source(struct msghdr *msg, uint8_t *ctl,
		       const struct query_client *cl)
{
	msg->msg_control = NULL;
	msg->msg_controllen = 0;
	if (cl->local_family == AF_UNSPEC)
		return;
	msg->msg_control = ctl;
	msg->msg_controllen = SERVER_CMSG;
	struct cmsghdr *cm = CMSG_FIRSTHDR(msg);
	if (cl->local_family == AF_INET) {
		struct in_pktinfo pi = cl->local.v4;
		pi.ipi_spec_dst = pi.ipi_addr;
		pi.ipi_ifindex = 0;
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		msg->msg_controllen = CMSG_SPACE(sizeof(pi));
	} else {
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(cl->local.v6));
		memcpy(CMSG_DATA(cm), &cl->local.v6, sizeof(cl->local.v6));
		msg->msg_controllen = CMSG_SPACE(sizeof(cl->local.v6));
	}
}

/* The destination address of a datagram received on a wildcard socket. */
static void get_destination(struct msghdr *msg, struct query_client *cl)
{
	cl->local_family = AF_UNSPEC;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm;
	     cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level == IPPROTO_IP &&
		    cm->cmsg_type == IP_PKTINFO) {
			memcpy(&cl->local.v4, CMSG_DATA(cm),
			       sizeof(cl->local.v4));
			cl->local_family = AF_INET;
		} else if (cm->cmsg_level == IPPROTO_IPV6 &&
			   cm->cmsg_type == IPV6_PKTINFO) {
			memcpy(&cl->local.v6, CMSG_DATA(cm),
			       sizeof(cl->local.v6));
			cl->local_family = AF_INET6;
		}
	}
}

static void udp_send(struct server *srv, const struct query_client *cl,
		     const uint8_t *msg, size_t len)
{
	struct udp_batch *b = srv->udp;

	if (b->fd == cl->fd && b->nout < SERVER_UDP_BATCH &&
	    len <= SERVER_UDP_OUT) {
		/* Inside a receive batch: queue for one sendmmsg. */
		unsigned i = b->nout++;
		memcpy(b->out_buf[i], msg, len);
		memcpy(&b->out_peer[i], &cl->peer, cl->peerlen);
		b->out_iov[i] = (struct iovec){b->out_buf[i], len};
		struct msghdr *m = &b->out[i].msg_hdr;
		memset(m, 0, sizeof(*m));
		m->msg_name = &b->out_peer[i];
		m->msg_namelen = cl->peerlen;
		m->msg_iov = &b->out_iov[i];
		m->msg_iovlen = 1;
		set_source(m, b->out_cmsg[i], cl);
		return;
	}
	uint8_t ctl[SERVER_CMSG];
	struct iovec iov = {(void *)(uintptr_t)msg, len};
	struct msghdr m = {.msg_name = (void *)(uintptr_t)&cl->peer,
			   .msg_namelen = cl->peerlen,
			   .msg_iov = &iov,
			   .msg_iovlen = 1};
	set_source(&m, ctl, cl);
	/* A full socket buffer drops the reply: the client retries. */
	(void)!sendmsg(cl->fd, &m, MSG_DONTWAIT);
}

static void udp_flush(struct udp_batch *b)
{
	for (unsigned done = 0; done < b->nout;) {
		int n = sendmmsg(b->fd, b->out + done, b->nout - done,
				 MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				done++; /* skip the datagram that failed */
			else
				break; /* buffer full: drop the rest */
			continue;
		}
		done += (unsigned)n;
	}
	b->nout = 0;
}

static void on_udp(struct loop_watch *w, uint32_t events)
{
	struct listener *l = (struct listener *)w;
	struct server *srv = l->srv;
	struct udp_batch *b = srv->udp;
	struct query_client cl = {.fd = w->fd, .conn = NULL};

	(void)events;
	for (unsigned i = 0; i < SERVER_UDP_BATCH; i++) {
		struct msghdr *m = &b->in[i].msg_hdr;
		b->in_iov[i] = (struct iovec){b->in_buf[i], WIRE_MSG_MAX};
		memset(m, 0, sizeof(*m));
		m->msg_name = &b->in_peer[i];
		m->msg_namelen = sizeof(b->in_peer[i]);
		m->msg_iov = &b->in_iov[i];
		m->msg_iovlen = 1;
		if (l->wildcard) {
			m->msg_control = b->in_cmsg[i];
			m->msg_controllen = SERVER_CMSG;
		}
	}
	int n = recvmmsg(w->fd, b->in, SERVER_UDP_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return; /* EAGAIN, or an ICMP error: nothing to do */
	b->fd = w->fd;
	for (int i = 0; i < n; i++) {
		struct msghdr *m = &b->in[i].msg_hdr;
		memcpy(&cl.peer, &b->in_peer[i], m->msg_namelen);
		cl.peerlen = m->msg_namelen;
		if (l->wildcard)
			get_destination(m, &cl);
		query_handle(srv->env, &cl, b->in_buf[i], b->in[i].msg_len);
	}
	udp_flush(b);
	b->fd = -1;
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

/* Mark activity at now_ms and move c to the tail of the idle list. */
static void touch_at(struct conn *c, uint64_t now_ms)
{
	struct server *srv = c->srv;
	c->last = now_ms;
	if (srv->tail == c)
		return;
	if (c->prev || srv->head == c)
		idle_unlink(srv, c); /* not yet in the list when just accepted */
	c->prev = srv->tail;
	if (srv->tail)
		srv->tail->next = c;
	else
		srv->head = c;
	srv->tail = c;
}

static void touch(struct conn *c)
{
	touch_at(c, loop_now_ms());
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

	if (events & EPOLLOUT) {
		if (!conn_flush(c) || c->closed)
			return;
		conn_maybe_finish(c);
		if (c->closed)
			return;
	}
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
		if (fd < 0) {
			/* Level-triggered: a connection we cannot take would
			 * wake us at once, forever.  Stop listening a while. */
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				log_warn("accept: %s; pausing TCP accepts",
					 strerror(errno));
				loop_mod(srv->loop, w, 0);
				l->paused_until = loop_now_ms() + 200;
			}
			return;
		}
		/* tcp.max_connections bounds the whole daemon, not one
		 * worker: the slots are counted across workers. */
		if (atomic_fetch_add(srv->all_conns, 1) >= srv->max_conns) {
			atomic_fetch_sub(srv->all_conns, 1);
			close(fd); /* RFC 7766 6.2.2: servers may refuse */
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			atomic_fetch_sub(srv->all_conns, 1);
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
			atomic_fetch_sub(srv->all_conns, 1);
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
	atomic_fetch_sub(c->srv->all_conns, 1);
	conn_unref(c);
}

static void io_send(void *ctx, const struct query_client *cl,
		    const uint8_t *msg, size_t len)
{
	if (cl->conn)
		tcp_send(cl->conn, msg, len);
	else
		udp_send(ctx, cl, msg, len);
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

static bool is_wildcard(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(
		&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

static int open_socket(const struct conf_addr *a, bool tcp, bool reuseport,
		       char *err, size_t errlen)
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
	/* Every worker binds its own sockets; the kernel spreads datagrams
	 * and connections over them by the sender's address and port. */
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (tcp) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	} else {
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
		if (is_wildcard(a) && a->ss.ss_family == AF_INET)
			setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one,
				   sizeof(one));
		else if (is_wildcard(a))
			setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one,
				   sizeof(one));
	}
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

/* TCP connections need file descriptors: raise the soft limit as far as
 * allowed, and keep max_connections below it with room for c-ares and the
 * listeners. */
static size_t fit_fd_limit(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && want + 128 > rl.rlim_cur) {
		size_t fit = rl.rlim_cur > 256 ? (size_t)rl.rlim_cur - 128 : 128;
		log_warn("tcp.max_connections %zu is near the limit of %lu "
			 "open files: using %zu",
			 want, (unsigned long)rl.rlim_cur, fit);
		return fit;
	}
	return want;
}

struct server *server_new(const struct conf *cfg, struct loop *loop,
			  bool reuseport, _Atomic size_t *conns, char *err,
			  size_t errlen)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (!srv || !(srv->ls = calloc(cfg->nlisten * 2, sizeof(*srv->ls)))) {
		free(srv);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!(srv->udp = malloc(sizeof(*srv->udp)))) {
		free(srv->ls);
		free(srv);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->udp->fd = -1;
	srv->udp->nout = 0;
	srv->loop = loop;
	srv->max_conns = fit_fd_limit((size_t)cfg->tcp_max_connections);
	atomic_init(&srv->own_conns, 0);
	srv->all_conns = conns ? conns : &srv->own_conns;
	srv->idle_ms = cfg->tcp_idle_timeout_ms;
	for (size_t i = 0; i < cfg->nlisten * 2; i++) {
		struct listener *l = &srv->ls[i];
		l->tcp = i % 2;
		l->srv = srv;
		l->w.fd = open_socket(&cfg->listen[i / 2], l->tcp, reuseport,
				      err, errlen);
		if (l->w.fd < 0) {
			server_free(srv);
			return NULL;
		}
		l->w.cb = l->tcp ? on_accept : on_udp;
		l->wildcard = is_wildcard(&cfg->listen[i / 2]);
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

void server_close_listeners(struct server *srv)
{
	for (size_t i = 0; i < srv->nls; i++) {
		struct listener *l = &srv->ls[i];
		if (l->w.fd < 0 || !l->w.cb)
			continue;
		loop_del(srv->loop, &l->w);
		/* A UDP socket is also how replies in flight leave: stop
		 * reading from it, close it at server_stop. */
		if (l->tcp) {
			close(l->w.fd);
			l->w.fd = -1;
		}
	}
}

/* Close every listening socket, whether still read or not. */
static void close_sockets(struct server *srv)
{
	for (size_t i = 0; i < srv->nls; i++) {
		struct listener *l = &srv->ls[i];
		if (l->w.fd < 0)
			continue;
		if (l->w.cb)
			loop_del(srv->loop, &l->w);
		close(l->w.fd);
		l->w.fd = -1;
	}
}

void server_stop(struct server *srv)
{
	close_sockets(srv);
	while (srv->head)
		conn_close(srv->head);
}

/* Listen again on paused TCP sockets; returns the smaller of t and the
 * ms until the next one is due. */
static int resume_listeners(struct server *srv, uint64_t now_ms, int t)
{
	for (size_t i = 0; i < srv->nls; i++) {
		struct listener *l = &srv->ls[i];
		if (!l->paused_until || l->w.fd < 0)
			continue;
		if (l->paused_until <= now_ms) {
			l->paused_until = 0;
			loop_mod(srv->loop, &l->w, EPOLLIN);
			continue;
		}
		int wait = (int)(l->paused_until - now_ms);
		if (t < 0 || wait < t)
			t = wait;
	}
	return t;
}

int server_expire(struct server *srv, uint64_t now_ms)
{
	uint64_t idle = (uint64_t)srv->idle_ms;

	/* All arithmetic on the caller's clock: a busy connection moved to
	 * the tail gets last = now_ms and is not visited again. */
	while (srv->head && srv->head->last + idle <= now_ms) {
		struct conn *c = srv->head;
		if (c->refs == 1 && c->out_len == 0)
			conn_close(c); /* RFC 7766 6.2.3 idle timeout */
		else
			touch_at(c, now_ms); /* still busy: check again later */
	}
	int t = -1;
	if (srv->head)
		t = srv->head->last + idle > now_ms
			    ? (int)(srv->head->last + idle - now_ms)
			    : 0;
	return resume_listeners(srv, now_ms, t);
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	server_stop(srv);
	free(srv->udp);
	free(srv->ls);
	free(srv);
}
