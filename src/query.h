/*
 * query.h - the pipeline of one client query: validate, answer locally or
 * forward, and reply with the client's ID within a deadline.
 *
 * The pipeline does not know sockets: the server hands it a packet and a
 * client handle, and it answers through the send callback.  Queries that
 * go upstream live in a pool of preallocated objects, so the hot path does
 * not allocate once the pool has warmed up.
 */
#ifndef SPLITDNS_QUERY_H
#define SPLITDNS_QUERY_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "answer.h"

struct cache;
struct forward;
struct lists;
struct policy;
struct zone;

/* Most queries relayed at once; beyond it clients get SERVFAIL. */
#define QUERY_MAX_INFLIGHT 16384

/* Who asked, and how to reach them; the server fills it in. */
struct query_client {
	int fd;           /* UDP socket, or -1 for TCP */
	void *conn;       /* TCP connection, or NULL for UDP */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	/* For a UDP socket bound to a wildcard address: the address the
	 * query came to, which the reply must come from (AF_UNSPEC: none). */
	int local_family;
	union {
		struct in_pktinfo v4;
		struct in6_pktinfo v6;
	} local;
};

/* Callbacks into the server.  send may be asked to reach a TCP connection
 * that has closed: it then drops the reply.  hold/release count the
 * pipeline's references to a TCP connection. */
struct query_io {
	void (*send)(void *ctx, const struct query_client *c,
		     const uint8_t *msg, size_t len);
	void (*hold)(void *ctx, const struct query_client *c);
	void (*release)(void *ctx, const struct query_client *c);
	void *ctx;
};

struct query_env;

/* Counters since start (reloads keep them). */
struct query_stats {
	uint64_t queries;     /* packets handed to the pipeline */
	uint64_t dropped;     /* too short, or QR=1 */
	uint64_t malformed;   /* FORMERR, NOTIMP, BADVERS */
	uint64_t local;       /* answered from zone files */
	uint64_t blocked;     /* blocking answers */
	uint64_t refused;     /* forward rules with refuse = true */
	uint64_t private_nx;  /* private names kept local */
	uint64_t forwarded;   /* sent upstream */
	uint64_t answered;    /* upstream answers passed on */
	uint64_t cached;      /* answered from the cache */
	uint64_t servfail;    /* upstream failures and deadlines */
	uint64_t rebind;      /* rebind protection */
	uint64_t truncated;   /* UDP replies cut to the client's size */
};

/* What the pipeline answers from: built by main for each configuration
 * load and switched as a whole on reload.  All borrowed. */
struct query_view {
	const struct zone *zone;
	const struct policy *policy;
	struct forward *const *groups; /* [0] default; [i] forward rule i-1 */
	size_t ngroups;
	const struct lists *blocks;    /* NULL: nothing is blocked */
	uint64_t *block_hits;          /* per source, written here */
	struct answer_block block;     /* how blocked names are answered */
	bool block_cname;    /* block replies whose CNAMEs reach blocked names */
	struct cache *cache;           /* NULL: no cache; kept across reloads */
	uint16_t edns_size;  /* our EDNS UDP payload size */
	int deadline_ms;     /* a client gets SERVFAIL after this long */
};

struct query_env *query_env_new(const struct query_view *view,
				const struct query_io *io);

/* Switch to a new view (a reload).  Queries in flight keep the channel
 * they were sent on. */
void query_env_set(struct query_env *env, const struct query_view *view);

/* Free the pipeline.  Call after forward_free, which completes every
 * upstream request. */
void query_env_free(struct query_env *env);

const struct query_stats *query_get_stats(const struct query_env *env);

/* Handle one packet from client c (UDP when c->conn is NULL). */
void query_handle(struct query_env *env, const struct query_client *c,
		  const uint8_t *pkt, size_t len);

/* Answer SERVFAIL to clients whose deadline has passed. */
void query_expire(struct query_env *env, uint64_t now_ms);

/* Milliseconds until the next deadline, or -1 when none is pending. */
int query_next_deadline_ms(const struct query_env *env, uint64_t now_ms);

#endif
