/*
 * server.h - the listening sockets and TCP connections.
 *
 * UDP and TCP on every listen address.  TCP follows RFC 7766: two-byte
 * length framing, several queries per connection answered as they
 * complete, an idle timeout and a cap on connections.  Packets go to the
 * query pipeline; replies come back through query_io.
 */
#ifndef SPLITDNS_SERVER_H
#define SPLITDNS_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct loop;
struct query_env;
struct query_io;
struct server;

/* Bind every listen address of cfg (UDP and TCP), with SO_REUSEPORT when
 * several servers (one per worker loop) share the addresses.  conns
 * (shared by those servers, or NULL) counts their TCP connections
 * against tcp.max_connections.  Returns NULL with a message in err. */
struct server *server_new(const struct conf *cfg, struct loop *loop,
			  bool reuseport, _Atomic size_t *conns, char *err,
			  size_t errlen);

/* The callbacks the pipeline uses to answer through this server. */
void server_io(struct server *srv, struct query_io *io);

/* Start reading: packets go to env (borrowed). */
int server_start(struct server *srv, struct query_env *env);

/* Stop taking new queries: close the listening sockets (UDP and TCP);
 * open TCP connections stay, so that answers in flight reach them. */
void server_close_listeners(struct server *srv);

/* Stop reading from the network: close listeners and connections. */
void server_stop(struct server *srv);

/* Close idle TCP connections; returns ms until the next check or -1. */
int server_expire(struct server *srv, uint64_t now_ms);

void server_free(struct server *srv);

#endif
