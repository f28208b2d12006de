/*
 * server.c - the listening sockets of one worker loop: UDP datagrams in
 * and out in batches (recvmmsg/sendmmsg, with the reply's source address
 * for wildcard sockets), TCP accepts handed to the connection pool
 * (tcp.c), and the open-file budget that bounds TCP connections.
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
#include "tcp.h"
#include "wire.h"

#define SERVER_LOG_EVERY_MS 10000  /* accept warnings at most this often */
#define SERVER_UDP_BATCH 32        /* datagrams per recvmmsg/sendmmsg */
#define SERVER_UDP_OUT 4096        /* edns_size <= 4096: no UDP reply is larger */
#define SERVER_CMSG 64             /* room for one in(6)_pktinfo */
#define SERVER_RCVBUF (4 * 1024 * 1024)

struct listener {
	struct loop_watch w;
	struct server *srv;
	bool tcp;
	enum tcp_kind kind; /* of a TCP listener */
	char path[sizeof(((struct conf_addr *)0)->path)]; /* https:// */
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

struct server {
	struct loop *loop;
	struct query_env *env;
	struct listener *ls;
	size_t nls;
	struct tcp_pool *tcp;         /* the connections accepted */
	struct server_budget *budget; /* shared by every worker's server */
	struct server_budget own;     /* the budget of a lone server */
	uint64_t emfile_next_ms; /* rate limit of the accept warning */
	uint64_t emfile_quiet;   /* warnings suppressed since the last */
	struct udp_batch *udp;
};

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
	struct query_client cl = {.fd = w->fd, .conn = NULL,
				  .transport = QUERY_UDP};

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

/* ---------------------------------------------------------- accept */

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
		tcp_pool_accept(srv->tcp, fd, &peer, peerlen, l->kind,
				l->path);
	}
}

static void io_send(void *ctx, const struct query_client *cl,
		    const uint8_t *msg, size_t len)
{
	if (cl->conn)
		tcp_conn_send(cl->conn, cl->stream, msg, len);
	else
		udp_send(ctx, cl, msg, len);
}

static void io_hold(void *ctx, const struct query_client *cl)
{
	(void)ctx;
	tcp_conn_hold(cl->conn);
}

static void io_release(void *ctx, const struct query_client *cl)
{
	(void)ctx;
	tcp_conn_release(cl->conn);
}

void server_io(struct server *srv, struct query_io *io)
{
	io->send = io_send;
	io->hold = io_hold;
	io->release = io_release;
	io->ctx = srv;
}

void server_set_tls(struct server *srv, struct tls_creds *creds)
{
	tcp_pool_set_tls(srv->tcp, creds);
}

void server_set_access(struct server *srv,
		       bool (*allowed)(void *ctx, const struct sockaddr *sa),
		       void *ctx)
{
	tcp_pool_set_access(srv->tcp, allowed, ctx);
}

static bool is_wildcard(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(
		&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

/* A plain listen address has a UDP and a TCP socket; tls:// and
 * https:// ones only the TCP socket. */
static bool has_socket(const struct conf_addr *a, bool tcp)
{
	return tcp || a->kind == CONF_UDP;
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
	snprintf(err, errlen, "cannot listen on %s%s: %s", a->text,
		 a->kind != CONF_UDP ? "" : tcp ? "/tcp" : "/udp",
		 strerror(errno));
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
	/* Client groups with servers of their own: an upstream each. */
	for (size_t i = 0; i < cfg->nclients; i++)
		if (cfg->clients[i].servers)
			upstreams += cfg->clients[i].nservers;
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
	if (!(srv->tcp = tcp_pool_new(loop, cfg, &b->open, b->conns))) {
		server_free(srv);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < cfg->nlisten * 2; i++) {
		const struct conf_addr *a = &cfg->listen[i / 2];
		struct listener *l = &srv->ls[srv->nls];
		if (!has_socket(a, i % 2))
			continue;
		l->tcp = i % 2;
		l->kind = a->kind == CONF_TLS	  ? TCP_TLS
			  : a->kind == CONF_HTTPS ? TCP_HTTPS
						  : TCP_PLAIN;
		l->srv = srv;
		memcpy(l->path, a->path, sizeof(l->path));
		l->w.fd = open_socket(a, l->tcp, b->reuseport, err, errlen);
		if (l->w.fd < 0) {
			server_free(srv);
			return NULL;
		}
		l->w.cb = l->tcp ? on_accept : on_udp;
		l->wildcard = is_wildcard(a);
		srv->nls++;
	}
	return srv;
}

int server_start(struct server *srv, struct query_env *env)
{
	srv->env = env;
	tcp_pool_start(srv->tcp, env);
	for (size_t i = 0; i < srv->nls; i++)
		if (loop_add(srv->loop, &srv->ls[i].w, EPOLLIN) < 0)
			return -1;
	return 0;
}

bool server_probe(const struct conf *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->nlisten * 2; i++) {
		if (!has_socket(&cfg->listen[i / 2], i % 2))
			continue;
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
	return tcp_pool_unsent(srv->tcp);
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
	if (srv->tcp)
		tcp_pool_close_all(srv->tcp);
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
	int t = tcp_pool_expire(srv->tcp, now_ms);
	return resume_listeners(srv, now_ms, t);
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	server_stop(srv);
	tcp_pool_free(srv->tcp);
	free(srv->udp);
	free(srv->ls);
	free(srv);
}
