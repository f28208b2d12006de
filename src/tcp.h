/*
 * tcp.h - the TCP connections of one server: RFC 7766 framing, several
 * queries per connection answered as they complete, and the limits.
 *
 * A pool holds the connections one server (one worker loop) accepted.
 * The server accepts; the pool decides whether to keep the connection
 * (access, connections per client, tcp.max_connections counted over all
 * pools), reads frames into the query pipeline and writes its replies.
 * Every limit but tcp.max_connections holds per pool: a deadline for
 * each query to arrive whole, an idle timeout, a write timeout for
 * replies the client does not read, and bounds on reply memory per
 * connection and in all.  A connection that has no room for another
 * reply stops being read until its output drains.  Used by its loop's
 * thread only.
 */
#ifndef SPLITDNS_TCP_H
#define SPLITDNS_TCP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conf;
struct loop;
struct query_env;
struct tcp_conn;
struct tcp_pool;
struct tls_creds;

/* What a listener speaks: RFC 7766 framing over TCP, over TLS (RFC 7858),
 * or DNS over HTTPS (RFC 8484: HTTP/2 over TLS). */
enum tcp_kind { TCP_PLAIN, TCP_TLS, TCP_HTTPS };

/* A pool with cfg's tcp.* limits on loop.  *open counts the connections
 * open in every pool that shares it, at most max_open (both borrowed:
 * they must outlive the pool).  NULL when out of memory. */
struct tcp_pool *tcp_pool_new(struct loop *loop, const struct conf *cfg,
			      _Atomic size_t *open, size_t max_open);

/* Frames go to env (borrowed) from now on. */
void tcp_pool_start(struct tcp_pool *pool, struct query_env *env);

/* Who may keep a connection: allowed(ctx, peer) is asked for each one
 * taken, and one it refuses is closed at once, so that clients outside
 * access.allow cannot hold a slot.  NULL (the default): all.  ctx is
 * borrowed and must outlive the pool or the next call. */
void tcp_pool_set_access(struct tcp_pool *pool,
			 bool (*allowed)(void *ctx, const struct sockaddr *sa),
			 void *ctx);

/* Take fd, a non-blocking connection of kind accepted from peer: the
 * pool keeps it, or closes it when a limit or the access check refuses
 * it (RFC 7766 6.2.2: servers may).  A TLS connection is also refused
 * without credentials or when tls.max_handshakes are in progress.  path
 * (TCP_HTTPS; borrowed, it must outlive the pool) is where DoH requests
 * go. */
void tcp_pool_accept(struct tcp_pool *pool, int fd,
		     const struct sockaddr_storage *peer, socklen_t peerlen,
		     enum tcp_kind kind, const char *path);

/* New TLS handshakes use creds (a reference of the pool's own is taken;
 * NULL: TLS connections are refused); sessions already open keep the
 * credentials they started with. */
void tcp_pool_set_tls(struct tcp_pool *pool, struct tls_creds *creds);

/* Send one reply on c (framed here, or as the response on HTTP/2 stream
 * of a DoH connection; 0 otherwise); dropped when c or the stream has
 * closed. */
void tcp_conn_send(struct tcp_conn *c, int32_t stream, const uint8_t *msg,
		   size_t len);

/* A query of c's goes on after the call that handed it over (hold), and
 * is done (release): c stays allocated, and its reply keeps its room in
 * the output bounds, in between. */
void tcp_conn_hold(struct tcp_conn *c);
void tcp_conn_release(struct tcp_conn *c);

/* Reply bytes not yet handed to the kernel, over all connections. */
size_t tcp_pool_unsent(const struct tcp_pool *pool);

/* Connections of the pool open with TLS (tls:// and https://); any
 * thread. */
size_t tcp_pool_tls_open(const struct tcp_pool *pool);

/* Close every connection (replies still due are dropped). */
void tcp_pool_close_all(struct tcp_pool *pool);

/* Apply the timeouts, take frames again from connections that waited for
 * output room, and log (at a bounded rate) what the limits refused or
 * closed.  Call before every wait of the loop.  Returns ms until the next
 * check or -1. */
int tcp_pool_expire(struct tcp_pool *pool, uint64_t now_ms);

/* Close every connection and free the pool.  NULL is fine. */
void tcp_pool_free(struct tcp_pool *pool);

#endif
