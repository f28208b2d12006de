/*
 * server.h - the listening sockets and TCP connections.
 *
 * UDP and TCP on every plain listen address, TCP alone on tls:// (DNS
 * over TLS) and https:// (DNS over HTTPS) ones, whose connections the
 * pool (tcp.h) runs over TLS.  TCP follows RFC 7766: two-byte
 * length framing, several queries per connection answered as they
 * complete, an idle timeout and a cap on connections.  Packets go to the
 * query pipeline; replies come back through query_io.
 *
 * Every TCP limit holds per server (one per worker loop): connections in
 * all and per client address, a deadline for each query to arrive whole,
 * a write timeout for replies the client does not read, and bounds on
 * reply memory per connection and in all.  A connection that has no room
 * for another reply stops being read until its output drains.
 */
#ifndef SPLITDNS_SERVER_H
#define SPLITDNS_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conf;
struct loop;
struct query_env;
struct query_io;
struct server;
struct tls_creds;

/* What the open-file limit leaves for TCP connections, shared by the
 * servers of all worker loops. */
struct server_budget {
	size_t conns;        /* TCP connections, all servers together */
	unsigned long files; /* RLIMIT_NOFILE (soft, after raising; 0: none) */
	size_t reserve;      /* descriptors kept for all but TCP connections */
	bool clamped;        /* conns is below tcp.max_connections */
	bool reuseport;      /* several servers bind the same addresses */
	_Atomic size_t open; /* TCP connections open, all servers together */
	char line[256];      /* the budget in words, for the start-up log */
};

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit and see what it leaves
 * for the TCP connections of nservers servers of cfg: tcp.max_connections
 * or limit - reserve, whichever is smaller (at least 1), counted over all
 * of them.  The reserve covers the process (stdio, log, pid file, files
 * read at a reload) and, per server, its epoll and listeners and the
 * upstream sockets of its channels.  Call once, before the servers are
 * made; the caller logs b->line (warning if b->clamped).
 */
void server_budget(const struct conf *cfg, unsigned nservers,
		   struct server_budget *b);

/* Bind every listen address of cfg (UDP and TCP), with SO_REUSEPORT when
 * b says the addresses are shared, for one of the servers that share b
 * (borrowed: it must outlive them; NULL: a lone server with a budget of
 * its own, logged here).  Returns NULL with a message in err. */
struct server *server_new_shared(const struct conf *cfg, struct loop *loop,
				 struct server_budget *b, char *err,
				 size_t errlen);

/* Bind and close every listen address of cfg without SO_REUSEPORT: false
 * (with the reason in err) when another process holds one, which the
 * workers' shared sockets would otherwise not notice. */
bool server_probe(const struct conf *cfg, char *err, size_t errlen);

/* Who may open a TCP connection: allowed(ctx, peer) is asked at accept
 * and a connection it refuses is closed at once, so that clients outside
 * access.allow cannot hold a connection slot.  NULL (the default): all.
 * ctx is borrowed and must outlive the server or the next call. */
void server_set_access(struct server *srv,
		       bool (*allowed)(void *ctx, const struct sockaddr *sa),
		       void *ctx);

/* The certificate of tls:// and https:// listeners for new handshakes
 * from now on (see tcp_pool_set_tls). */
void server_set_tls(struct server *srv, struct tls_creds *creds);

/* The callbacks the pipeline uses to answer through this server. */
void server_io(struct server *srv, struct query_io *io);

/* Start reading: packets go to env (borrowed). */
int server_start(struct server *srv, struct query_env *env);

/* Stop taking new queries: close the listening sockets (UDP and TCP);
 * open TCP connections stay, so that answers in flight reach them. */
void server_close_listeners(struct server *srv);

/* Its TCP connections open with TLS (tcp_pool_tls_open); any thread. */
size_t server_tls_open(const struct server *srv);

/* Reply bytes not yet handed to the kernel, over all connections. */
size_t server_unsent(const struct server *srv);

/* Stop reading from the network: close listeners and connections. */
void server_stop(struct server *srv);

/* Apply the TCP timeouts, take frames again from connections that waited
 * for output room, and log (at a bounded rate) what the limits refused or
 * closed.  Call before every wait of the loop.  Returns ms until the next
 * check or -1. */
int server_expire(struct server *srv, uint64_t now_ms);

void server_free(struct server *srv);

#endif
