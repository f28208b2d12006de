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
#include <inttypes.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
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

/* The timed lists a connection can be on.  Each has one timeout, so
 * appending at the tail keeps it in deadline order. */
enum {
	TL_IDLE,  /* every connection: last query or reply */
	TL_QUERY, /* an unfinished frame: when its first byte came */
	TL_WRITE, /* output not yet taken: since the client last took some */
	TL_WAIT,  /* stopped reading, waiting for the server's output room */
	TL_READY, /* stopped reading, may take a query again */
	TL_N
};

struct tlink {
	struct conn *prev, *next;
	uint64_t since;
	bool on;
};

struct tlist {
	struct conn *head, *tail;
	uint64_t ms; /* timeout; 0 for TL_WAIT and TL_READY */
};

struct conn {
	struct loop_watch w;
	struct server *srv;
	int refs;        /* 1 while open, plus one per query in flight */
	size_t inflight; /* queries in flight */
	bool closed;
	bool eof;     /* the client sent FIN: answer what is in flight */
	bool blocked; /* frames wait for output room: not reading */
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out; /* out[out_off..out_len) is unsent */
	size_t out_len, out_off, out_cap;
	uint64_t sent;       /* bytes handed to the kernel in all */
	uint64_t taken_mark; /* of those, taken at the last check */
	struct tlink tl[TL_N];
	struct conn *hnext, **hprev; /* same hash bucket (per-client count) */
	struct sockaddr_storage peer;
	socklen_t peerlen;
};

/* Events counted between two log lines (at most one per
 * SERVER_LOG_EVERY_MS), so that a flood cannot flood the log. */
struct tcp_events {
	uint64_t full, per_client, outsider, write_timeout, query_timeout;
	uint64_t next_ms;
};

struct server {
	struct loop *loop;
	struct query_env *env;
	struct listener *ls;
	size_t nls;
	struct tlist tl[TL_N];
	size_t nconns;           /* this server's */
	size_t max_conns;        /* of all servers sharing budget */
	struct server_budget *budget; /* shared by every worker's server */
	struct server_budget own;     /* the budget of a lone server */
	size_t max_per_client;
	size_t max_output;       /* unsent + reserved bytes per connection */
	size_t max_output_total; /* the same over all connections */
	size_t out_total;        /* unsent bytes over all connections */
	size_t inflight_total;   /* TCP queries in flight */
	struct conn **hash;      /* connections by client address */
	size_t hmask;
	uint64_t hseed;
	bool (*allowed)(void *ctx, const struct sockaddr *sa);
	void *allowed_ctx;
	struct tcp_events ev;
	uint64_t emfile_next_ms; /* rate limit of the accept warning */
	uint64_t emfile_quiet;   /* warnings suppressed since the last */
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

/* ------------------------------------------------------ timed lists */

static void tl_drop(struct server *srv, int k, struct conn *c)
{
	struct tlink *l = &c->tl[k];
	if (!l->on)
		return;
	if (l->prev)
		l->prev->tl[k].next = l->next;
	else
		srv->tl[k].head = l->next;
	if (l->next)
		l->next->tl[k].prev = l->prev;
	else
		srv->tl[k].tail = l->prev;
	l->prev = l->next = NULL;
	l->on = false;
}

/* (Re)start c's clock on list k at now_ms: c goes to the tail. */
static void tl_put(struct server *srv, int k, struct conn *c, uint64_t now_ms)
{
	struct tlink *l = &c->tl[k];
	l->since = now_ms;
	if (l->on && srv->tl[k].tail == c)
		return;
	tl_drop(srv, k, c);
	l->prev = srv->tl[k].tail;
	if (srv->tl[k].tail)
		srv->tl[k].tail->tl[k].next = c;
	else
		srv->tl[k].head = c;
	srv->tl[k].tail = c;
	l->on = true;
}

/* The head of list k if its time is up at now_ms. */
static struct conn *tl_due(struct server *srv, int k, uint64_t now_ms)
{
	struct conn *c = srv->tl[k].head;
	return c && c->tl[k].since + srv->tl[k].ms <= now_ms ? c : NULL;
}

/* The smaller of t (-1: none) and the ms until list k's head is due. */
static int tl_next(const struct server *srv, int k, uint64_t now_ms, int t)
{
	const struct conn *c = srv->tl[k].head;
	if (!c || !srv->tl[k].ms)
		return t;
	uint64_t due = c->tl[k].since + srv->tl[k].ms;
	int wait = due > now_ms ? (int)(due - now_ms) : 0;
	return t < 0 || wait < t ? wait : t;
}

static void touch(struct conn *c)
{
	tl_put(c->srv, TL_IDLE, c, loop_now_ms());
}

/* ------------------------------------------- connections per client */

/* The address bytes of a client, without the port. */
static const uint8_t *host_bytes(const struct sockaddr_storage *ss,
				 size_t *len)
{
	if (ss->ss_family == AF_INET6) {
		*len = 16;
		return ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
	}
	*len = 4;
	return (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
}

static bool same_host(const struct sockaddr_storage *a,
		      const struct sockaddr_storage *b)
{
	size_t la, lb;
	const uint8_t *pa = host_bytes(a, &la), *pb = host_bytes(b, &lb);
	return a->ss_family == b->ss_family && la == lb &&
	       memcmp(pa, pb, la) == 0;
}

/* The bucket of a client address, by a hash seeded at random per server:
 * which addresses share a bucket cannot be worked out in advance. */
static struct conn **host_bucket(const struct server *srv,
				 const struct sockaddr_storage *ss)
{
	size_t len;
	const uint8_t *p = host_bytes(ss, &len);
	uint64_t h = srv->hseed ^ ss->ss_family;
	for (size_t i = 0; i < len; i++) {
		h = (h ^ p[i]) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return &srv->hash[(h ^ (h >> 32)) & srv->hmask];
}

static size_t host_count(struct conn **bucket,
			 const struct sockaddr_storage *ss)
{
	size_t n = 0;
	for (const struct conn *c = *bucket; c; c = c->hnext)
		n += same_host(&c->peer, ss);
	return n;
}

static void host_link(struct conn **bucket, struct conn *c)
{
	c->hnext = *bucket;
	if (*bucket)
		(*bucket)->hprev = &c->hnext;
	c->hprev = bucket;
	*bucket = c;
}

static void host_unlink(struct conn *c)
{
	if (!c->hprev)
		return;
	if (c->hnext)
		c->hnext->hprev = c->hprev;
	*c->hprev = c->hnext;
	c->hprev = NULL;
	c->hnext = NULL;
}

/* ------------------------------------------------- output memory */

/* Each query being answered keeps room for the largest reply, so that
 * the bounds hold before its size is known. */
#define SERVER_TCP_RESERVE (2 + (size_t)WIRE_MSG_MAX)
/* The kernel's send buffer per connection (it doubles the figure). */
#define SERVER_TCP_SNDBUF (128 * 1024)
/* An output buffer larger than this is given back once it drains. */
#define SERVER_TCP_OUT_KEEP 16384

static size_t unsent(const struct conn *c)
{
	return c->out_len - c->out_off;
}

/* Room in c's own bound for one more query's reply. */
static bool own_room(const struct conn *c)
{
	return unsent(c) + (c->inflight + 1) * SERVER_TCP_RESERVE <=
	       c->srv->max_output;
}

/* Room in the server's bound for one more query's reply. */
static bool total_room(const struct server *srv)
{
	size_t reserved = (srv->inflight_total + 1) * SERVER_TCP_RESERVE;
	return srv->out_total + reserved <= srv->max_output_total;
}

/* Nothing unsent, nothing being answered.  Such a connection may take a
 * query even when the server's bound is reached, so that a few clients
 * that do not read cannot stall those that do; the bound can thus be
 * passed by one reply per connection. */
static bool idle_output(const struct conn *c)
{
	return unsent(c) == 0 && c->inflight == 0;
}

static bool may_take(const struct conn *c)
{
	return own_room(c) && (total_room(c->srv) || idle_output(c));
}

/* A stopped connection with room of its own again waits its turn for the
 * server's room, unless it may go at once (server_expire takes both lists
 * in order). */
static void maybe_wait(struct conn *c)
{
	struct server *srv = c->srv;
	if (!c->blocked || c->closed || c->tl[TL_READY].on)
		return;
	if (idle_output(c)) {
		tl_drop(srv, TL_WAIT, c);
		tl_put(srv, TL_READY, c, 0);
	} else if (!c->tl[TL_WAIT].on && own_room(c)) {
		tl_put(srv, TL_WAIT, c, 0);
	}
}

/* Make room for n more bytes of output; false when out of memory. */
static bool out_room(struct conn *c, size_t n)
{
	if (c->out_off && c->out_cap - c->out_len < n) {
		/* Move the unsent tail down rather than grow: out_len counts
		 * only what is still to send. */
		memmove(c->out, c->out + c->out_off, unsent(c));
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	size_t need = c->out_len + n;
	if (need <= c->out_cap)
		return true;
	size_t cap = c->out_cap ? c->out_cap : 1024;
	while (cap < need)
		cap *= 2;
	uint8_t *o = realloc(c->out, cap);
	if (!o)
		return false;
	c->out = o;
	c->out_cap = cap;
	return true;
}

/* ----------------------------------------------------- connections */

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
	if (!c->eof && !c->blocked)
		ev |= EPOLLIN;
	if (unsent(c))
		ev |= EPOLLOUT;
	loop_mod(c->srv->loop, &c->w, ev);
}

/* Close at once with a reset (SO_LINGER 0): the kernel drops what the
 * client did not read instead of keeping it for a client that may never
 * read. */
static void conn_abort(struct conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c->w.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(c);
}

/* Write what is queued; false when the connection had to be closed. */
static bool conn_flush(struct conn *c)
{
	struct server *srv = c->srv;
	size_t before = unsent(c);

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
		c->sent += (size_t)n;
		srv->out_total -= (size_t)n;
	}
	if (unsent(c) == before)
		return true;
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->out_cap > SERVER_TCP_OUT_KEEP) {
			free(c->out);
			c->out = NULL;
			c->out_cap = 0;
		}
	}
	maybe_wait(c);
	return true;
}

/* Done when nothing is in flight, nothing is unsent and the client is
 * gone. */
static void conn_maybe_finish(struct conn *c)
{
	if (!c->closed && c->eof && !c->blocked && c->refs == 1 &&
	    unsent(c) == 0)
		conn_close(c);
}

static void tcp_send(struct conn *c, const uint8_t *msg, size_t len)
{
	if (c->closed)
		return;
	/* The bounds were checked when the query was taken: its reply
	 * had room reserved (may_take). */
	if (!out_room(c, 2 + len)) {
		conn_close(c);
		return;
	}
	if (!c->tl[TL_WRITE].on) {
		/* Off the list, the client had taken all it was sent
		 * (out_pending), so taken == sent now. */
		tl_put(c->srv, TL_WRITE, c, loop_now_ms());
		c->taken_mark = c->sent;
	}
	wire_set16(c->out + c->out_len, (uint16_t)len);
	memcpy(c->out + c->out_len + 2, msg, len);
	c->out_len += 2 + len;
	c->srv->out_total += 2 + len;
	touch(c);
	if (conn_flush(c))
		conn_watch(c);
}

/* Stop taking c's frames until there is room for their replies. */
static void conn_block(struct conn *c)
{
	c->blocked = true;
	maybe_wait(c);
}

/* The query deadline runs while part of a frame is here and the rest is
 * the client's to send: from the first byte of that frame (restarted
 * when a frame was taken), never while we hold whole frames back. */
static void query_clock(struct conn *c, bool took)
{
	if (c->in_len == 0 || c->blocked)
		tl_drop(c->srv, TL_QUERY, c);
	else if (took || !c->tl[TL_QUERY].on)
		tl_put(c->srv, TL_QUERY, c, loop_now_ms());
}

/* Hand every complete frame to the pipeline while there is room for
 * the replies. */
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
		if (!may_take(c)) {
			conn_block(c);
			break;
		}
		touch(c);
		/* A query answered later holds its reservation through
		 * io_hold; one answered (or dropped) now needs it only for
		 * the duration of the call. */
		c->inflight++;
		c->srv->inflight_total++;
		query_handle(c->srv->env, &cl, c->in + off + 2, flen);
		c->inflight--;
		c->srv->inflight_total--;
		off += 2 + flen;
	}
	if (!c->closed) {
		if (off) {
			memmove(c->in, c->in + off, c->in_len - off);
			c->in_len -= off;
		}
		query_clock(c, off > 0);
	}
	conn_unref(c);
}

/* Read what the client sent; false when c was closed. */
static bool conn_read(struct conn *c)
{
	if (c->blocked)
		return true; /* an event from before it stopped reading */
	if (c->in_cap - c->in_len < 4096) {
		size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
		if (cap > WIRE_MSG_MAX + 2 + 4096)
			cap = WIRE_MSG_MAX + 2 + 4096;
		uint8_t *in = realloc(c->in, cap);
		if (!in) {
			conn_close(c);
			return false;
		}
		c->in = in;
		c->in_cap = cap;
	}
	ssize_t n = recv(c->w.fd, c->in + c->in_len, c->in_cap - c->in_len,
			 MSG_DONTWAIT);
	if (n == 0) {
		c->eof = true;
	} else if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			conn_close(c);
			return false;
		}
	} else {
		/* Bytes alone are not activity: only a whole query is
		 * (conn_frames), so a drip-fed frame cannot hold c. */
		c->in_len += (size_t)n;
		conn_frames(c);
	}
	if (c->closed)
		return false;
	conn_maybe_finish(c);
	return !c->closed;
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
	if (events & (EPOLLHUP | EPOLLERR)) {
		conn_close(c); /* reset, or both directions shut */
		return;
	}
	if ((events & EPOLLIN) && !conn_read(c))
		return;
	conn_watch(c);
}

/* ---------------------------------------------------------- accept */

#define SERVER_LOG_EVERY_MS 10000

/* Refuse a connection at accept (RFC 7766 6.2.2: servers may). */
static bool refuse(struct server *srv, const struct sockaddr_storage *peer,
		   struct conn **bucket)
{
	if (srv->allowed &&
	    !srv->allowed(srv->allowed_ctx, (const struct sockaddr *)peer)) {
		srv->ev.outsider++;
		return true;
	}
	if (host_count(bucket, peer) >= srv->max_per_client) {
		srv->ev.per_client++;
		return true;
	}
	/* tcp.max_connections bounds the daemon, not one worker: the slots
	 * are counted over every worker's server. */
	if (atomic_fetch_add(&srv->budget->open, 1) >= srv->budget->conns) {
		atomic_fetch_sub(&srv->budget->open, 1);
		srv->ev.full++;
		return true;
	}
	return false;
}

/* Out of descriptors or memory: level-triggered, a connection we cannot
 * take would wake us at once, forever.  Stop listening a while, and say
 * so at most once per SERVER_LOG_EVERY_MS. */
static void accept_pause(struct server *srv, struct listener *l, int err)
{
	uint64_t now = loop_now_ms();
	if (now >= srv->emfile_next_ms) {
		if (srv->emfile_quiet)
			log_warn("accept: %s; pausing TCP accepts (%" PRIu64
				 " times more since the last warning)",
				 strerror(err), srv->emfile_quiet);
		else
			log_warn("accept: %s; pausing TCP accepts",
				 strerror(err));
		srv->emfile_quiet = 0;
		srv->emfile_next_ms = now + SERVER_LOG_EVERY_MS;
	} else {
		srv->emfile_quiet++;
	}
	loop_mod(srv->loop, &l->w, 0);
	l->paused_until = now + 200;
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
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				accept_pause(srv, l, errno);
			return;
		}
		struct conn **bucket = host_bucket(srv, &peer);
		struct conn *c = NULL;
		if (refuse(srv, &peer, bucket)) {
			close(fd); /* RFC 7766 6.2.2: servers may refuse */
			continue;
		}
		if (!(c = calloc(1, sizeof(*c)))) {
			atomic_fetch_sub(&srv->budget->open, 1);
			close(fd);
			continue;
		}
		/* A fixed send buffer bounds what the kernel holds for a client
		 * that does not read (autotuning would let it grow to
		 * tcp_wmem's maximum, 4 MB by default). */
		int sndbuf = SERVER_TCP_SNDBUF;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		c->w.fd = fd;
		c->w.cb = on_conn;
		c->srv = srv;
		c->refs = 1;
		c->peer = peer;
		c->peerlen = peerlen;
		if (loop_add(srv->loop, &c->w, EPOLLIN) < 0) {
			atomic_fetch_sub(&srv->budget->open, 1);
			close(fd);
			free(c);
			continue;
		}
		host_link(bucket, c);
		srv->nconns++;
		touch(c);
	}
}

static void conn_close(struct conn *c)
{
	struct server *srv = c->srv;
	if (c->closed)
		return;
	c->closed = true;
	loop_del(srv->loop, &c->w);
	close(c->w.fd);
	for (int k = 0; k < TL_N; k++)
		tl_drop(srv, k, c);
	host_unlink(c);
	srv->out_total -= unsent(c);
	c->out_off = c->out_len = 0;
	srv->nconns--;
	atomic_fetch_sub(&srv->budget->open, 1);
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
	struct conn *c = cl->conn;
	(void)ctx;
	c->refs++;
	c->inflight++;
	c->srv->inflight_total++;
}

static void io_release(void *ctx, const struct query_client *cl)
{
	struct conn *c = cl->conn;
	bool last = c->refs == 1;
	(void)ctx;
	c->inflight--;
	c->srv->inflight_total--;
	if (!last)
		maybe_wait(c);
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

void server_set_access(struct server *srv,
		       bool (*allowed)(void *ctx, const struct sockaddr *sa),
		       void *ctx)
{
	srv->allowed = allowed;
	srv->allowed_ctx = ctx;
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

/* ---------------------------------------------------------- budget */

/* Descriptors that are not TCP connections: stdio, syslog, the pid file,
 * the files read at a reload, and the one accepted over a cap only to be
 * closed; then per server: its epoll and listeners, and per upstream
 * server the UDP and TCP sockets of a channel and of the one replacing
 * it (forward.c rotates channels). */
#define SERVER_FD_BASE 32
#define SERVER_FD_PER_SERVER 4
#define SERVER_FD_PER_UPSTREAM 4

static size_t fd_reserve(const struct conf *cfg, unsigned nservers)
{
	size_t upstreams = cfg->nservers;
	for (size_t i = 0; i < cfg->nforwards; i++)
		upstreams += cfg->forwards[i].nservers;
	return SERVER_FD_BASE +
	       (size_t)nservers * (SERVER_FD_PER_SERVER + 2 * cfg->nlisten +
				   SERVER_FD_PER_UPSTREAM * upstreams);
}

void server_budget(const struct conf *cfg, unsigned nservers,
		   struct server_budget *b)
{
	struct rlimit rl;
	size_t want = (size_t)cfg->tcp_max_connections;

	if (nservers == 0)
		nservers = 1;
	memset(b, 0, sizeof(*b));
	atomic_init(&b->open, 0);
	b->reuseport = nservers > 1;
	b->conns = want;
	b->reserve = fd_reserve(cfg, nservers);
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(b->line, sizeof(b->line),
			 "open-file limit unknown (%s): tcp.max_connections "
			 "%zu in all",
			 strerror(errno), want);
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY) {
		snprintf(b->line, sizeof(b->line),
			 "no open-file limit: %zu TCP connections in all",
			 want);
		return;
	}
	b->files = (unsigned long)rl.rlim_cur;
	/* tcp.max_connections counts over all servers (they share b). */
	size_t fit = b->files > b->reserve ? b->files - b->reserve : 0;
	if (fit < want) {
		b->clamped = true;
		b->conns = fit ? fit : 1;
	}
	snprintf(b->line, sizeof(b->line),
		 "open-file limit %lu, %zu kept for listeners and upstream "
		 "sockets of %u worker%s: %zu TCP connections in all "
		 "(tcp.max_connections %zu%s)",
		 b->files, b->reserve, nservers, nservers == 1 ? "" : "s",
		 b->conns, want, b->clamped ? ", lowered to fit" : "");
}

/* ---------------------------------------------------------- server */

static int hash_init(struct server *srv)
{
	size_t n = 16;
	while (n < srv->max_conns)
		n *= 2;
	if (!(srv->hash = calloc(n, sizeof(*srv->hash))))
		return -1;
	srv->hmask = n - 1;
	if (getrandom(&srv->hseed, sizeof(srv->hseed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(srv->hseed))
		srv->hseed = loop_now_ms() ^ (uint64_t)(uintptr_t)srv;
	return 0;
}

static void tcp_limits(struct server *srv, const struct conf *cfg,
		       const struct server_budget *b)
{
	srv->max_conns = b->conns;
	srv->max_per_client = (size_t)cfg->tcp_max_per_client;
	/* Halved SIZE_MAX: the sums in own_room and total_room cannot wrap
	 * on a 32-bit system either. */
	uint64_t most = SIZE_MAX / 2;
	uint64_t out = (uint64_t)cfg->tcp_max_output;
	uint64_t total = (uint64_t)cfg->tcp_max_output_total;
	srv->max_output = (size_t)(out < most ? out : most);
	srv->max_output_total = (size_t)(total < most ? total : most);
	srv->tl[TL_IDLE].ms = (uint64_t)cfg->tcp_idle_timeout_ms;
	srv->tl[TL_QUERY].ms = (uint64_t)cfg->tcp_query_timeout_ms;
	srv->tl[TL_WRITE].ms = (uint64_t)cfg->tcp_write_timeout_ms;
}

struct server *server_new_shared(const struct conf *cfg, struct loop *loop,
				 struct server_budget *b, char *err,
				 size_t errlen)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (!srv || !(srv->ls = calloc(cfg->nlisten * 2, sizeof(*srv->ls))) ||
	    !(srv->udp = malloc(sizeof(*srv->udp)))) {
		if (srv)
			free(srv->ls);
		free(srv);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->udp->fd = -1;
	srv->udp->nout = 0;
	srv->loop = loop;
	if (!b) {
		/* A lone server: its own budget. */
		server_budget(cfg, 1, &srv->own);
		if (srv->own.clamped)
			log_warn("%s", srv->own.line);
		else
			log_info("%s", srv->own.line);
		b = &srv->own;
	}
	srv->budget = b;
	tcp_limits(srv, cfg, b);
	if (hash_init(srv) < 0) {
		server_free(srv);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < cfg->nlisten * 2; i++) {
		struct listener *l = &srv->ls[i];
		l->tcp = i % 2;
		l->srv = srv;
		l->w.fd = open_socket(&cfg->listen[i / 2], l->tcp,
				      b->reuseport, err, errlen);
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

bool server_probe(const struct conf *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->nlisten * 2; i++) {
		int fd = open_socket(&cfg->listen[i / 2], i % 2, false, err,
				     errlen);
		if (fd < 0)
			return false;
		close(fd);
	}
	return true;
}

size_t server_unsent(const struct server *srv)
{
	return srv->out_total;
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
	while (srv->tl[TL_IDLE].head)
		conn_close(srv->tl[TL_IDLE].head);
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

/* Take frames again from a stopped connection. */
static void resume(struct conn *c)
{
	tl_drop(c->srv, TL_WAIT, c);
	tl_drop(c->srv, TL_READY, c);
	if (!may_take(c)) {
		maybe_wait(c); /* or its own output or replies will */
		return;
	}
	c->refs++; /* outside a loop batch, a close frees at once */
	c->blocked = false;
	conn_frames(c);
	if (!c->closed) {
		conn_maybe_finish(c);
		if (!c->closed)
			conn_watch(c);
	}
	conn_unref(c);
}

/* Stopped connections go on in order: those that may go at once, then
 * those waiting for the server's room while there is some. */
static void resume_waiting(struct server *srv)
{
	struct conn *c;

	while ((c = srv->tl[TL_READY].head))
		resume(c);
	while ((c = srv->tl[TL_WAIT].head) && total_room(srv))
		resume(c);
}

/* Replies leave our buffer for the kernel's at once, so what the client
 * has taken is what it acknowledged: SIOCOUTQ gives (for TCP) the bytes
 * sent but not yet acknowledged. */
static uint64_t kernel_queued(const struct conn *c)
{
	int queued = 0;
	if (ioctl(c->w.fd, SIOCOUTQ, &queued) < 0 || queued < 0)
		return 0;
	return (uint64_t)queued;
}

/* Whether c has output its client has not taken yet; when all is taken,
 * c leaves the write list. */
static bool out_pending(struct conn *c)
{
	if (!c->tl[TL_WRITE].on)
		return false;
	if (unsent(c) == 0 && kernel_queued(c) == 0) {
		tl_drop(c->srv, TL_WRITE, c);
		return false;
	}
	return true;
}

/* Whether c's client took none of its output for a whole write timeout.
 * Checked once per timeout, so a stalled client goes between one and two
 * timeouts after the last byte it took. */
static bool write_stalled(struct conn *c, uint64_t now_ms)
{
	if (!out_pending(c))
		return false;
	uint64_t taken = c->sent - kernel_queued(c);
	if (taken > c->taken_mark) {
		c->taken_mark = taken;
		tl_put(c->srv, TL_WRITE, c, now_ms);
		return false;
	}
	return true;
}

/* What the limits did: the first event at once, then one line per
 * SERVER_LOG_EVERY_MS at most with the counts since the last. */
static int log_events(struct server *srv, uint64_t now_ms, int t)
{
	struct tcp_events *e = &srv->ev;
	if (!(e->full | e->per_client | e->outsider | e->write_timeout |
	      e->query_timeout))
		return t;
	if (now_ms < e->next_ms) {
		int wait = (int)(e->next_ms - now_ms);
		return t < 0 || wait < t ? wait : t;
	}
	log_info("tcp: refused %" PRIu64 " at tcp.max_connections, %" PRIu64
		 " at tcp.max_per_client, %" PRIu64
		 " outside access.allow; closed %" PRIu64
		 " at tcp.write_timeout_ms, %" PRIu64
		 " at tcp.query_timeout_ms",
		 e->full, e->per_client, e->outsider, e->write_timeout,
		 e->query_timeout);
	*e = (struct tcp_events){.next_ms = now_ms + SERVER_LOG_EVERY_MS};
	return t;
}

int server_expire(struct server *srv, uint64_t now_ms)
{
	struct conn *c;

	/* All arithmetic on the caller's clock: a busy connection moved to
	 * the tail gets since = now_ms and is not visited again. */
	while ((c = tl_due(srv, TL_IDLE, now_ms))) {
		if (c->refs == 1 && c->in_len == 0 && !out_pending(c))
			conn_close(c); /* RFC 7766 6.2.3 idle timeout */
		else
			tl_put(srv, TL_IDLE, c, now_ms); /* busy: later */
	}
	while ((c = tl_due(srv, TL_QUERY, now_ms))) {
		srv->ev.query_timeout++;
		conn_abort(c); /* a frame that does not arrive whole */
	}
	while ((c = tl_due(srv, TL_WRITE, now_ms))) {
		if (write_stalled(c, now_ms)) {
			srv->ev.write_timeout++;
			conn_abort(c); /* a client that does not read */
		}
	}
	resume_waiting(srv);
	int t = -1;
	for (int k = TL_IDLE; k <= TL_WRITE; k++)
		t = tl_next(srv, k, now_ms, t);
	t = log_events(srv, now_ms, t);
	return resume_listeners(srv, now_ms, t);
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	server_stop(srv);
	free(srv->hash);
	free(srv->udp);
	free(srv->ls);
	free(srv);
}
