/*
 * query.h - the pipeline of one worker loop: route a client query, then
 * act on the decision (answer locally, from the cache, by joining an
 * identical query in flight, or by relaying it upstream), and reply with
 * the client's ID within a deadline.
 *
 * The pipeline does not know sockets: the server hands it a packet and a
 * client handle, and it answers through the send callback.  It reads the
 * snapshot it was given last (query_env_adopt) and keeps older ones alive
 * for as long as queries that started under them are in flight.  Queries
 * that go upstream live in a pool of preallocated objects, so the hot
 * path does not allocate once the pool has warmed up.  One env per loop,
 * used by that loop's thread only, except the counters, which any thread
 * may read (query_env_stats, query_env_hits).
 */
#ifndef SPLITDNS_QUERY_H
#define SPLITDNS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>

struct cache;
struct conf_addr;
struct loop;
struct pause_state;
struct snapshot;
struct topk_entry;
struct upstream;
struct wire_query;

/* Most queries in flight per loop; beyond it clients get SERVFAIL. */
#define QUERY_MAX_INFLIGHT 16384

/* Most clients waiting for one identical query in flight; past it a
 * query gets SERVFAIL at once (a flood of one name should not hold the
 * pool). */
#define QUERY_MAX_WAITERS 64

/* RFC 8767 5: the client-response timer after which an expired answer
 * is served while the upstream query goes on. */
#define QUERY_STALE_AFTER_MS 1800

/* RFC 8767 4: the TTL of an answer served stale. */
#define QUERY_STALE_TTL 30

/* How a query came in (the server says; metrics and logs count by it). */
enum query_transport {
	QUERY_UDP,
	QUERY_TCP,
	QUERY_TLS,   /* DNS over TLS (RFC 7858) */
	QUERY_HTTPS, /* DNS over HTTPS (RFC 8484) */
	QUERY_TRANSPORTS
};

/* Who asked, and how to reach them; the server fills it in. */
struct query_client {
	int fd;           /* UDP socket, or -1 for TCP */
	enum query_transport transport;
	void *conn;       /* TCP connection, or NULL for UDP */
	int32_t stream;   /* the HTTP/2 stream of a DoH query, else 0 */
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

/* How the pipeline makes an upstream for a group of servers: forward_new
 * (or failover_new for a list with tcp:// or tls:// servers) in the
 * daemon, a fake in the unit tests.  snap is the snapshot the group is
 * made for (its TLS trust and settings), borrowed during the call. */
struct query_backend {
	struct upstream *(*make)(void *ctx, struct loop *loop,
				 const struct snapshot *snap,
				 const struct conf_addr *servers, size_t n,
				 int timeout_ms, int tries, char *err,
				 size_t errlen);
	/* For signed queries (TSIG, TKEY), whose error replies may lack the
	 * question: a backend that relays any reply with our ID (direct_new
	 * in the daemon).  NULL: make serves those too. */
	struct upstream *(*make_signed)(void *ctx, struct loop *loop,
					const struct snapshot *snap,
					const struct conf_addr *servers,
					size_t n, int timeout_ms, int tries,
					char *err, size_t errlen);
	void *ctx;
};

/* The counters, one list for the struct, the reader and the log line. */
#define QUERY_STATS(X)                                                    \
	X(queries)    /* packets handed to the pipeline */                \
	X(dropped)    /* too short, or QR=1 */                            \
	X(malformed)  /* FORMERR, NOTIMP, BADVERS */                      \
	X(local)      /* answered from zone files */                      \
	X(canary)     /* canaries: use-application-dns.net, resolver.arpa */\
	X(blocked)    /* blocking answers */                              \
	X(refused)    /* access, forward rules with refuse = true */      \
	X(private_nx) /* private names kept local */                      \
	X(forwarded)  /* sent upstream (or joined a query in flight) */   \
	X(joined)     /* of those, waited for an identical query */       \
	X(answered)   /* upstream answers passed on */                    \
	X(cached)     /* answered from the cache */                       \
	X(stale)      /* answered from the cache past expiry (RFC 8767) */\
	X(prefetched) /* background refreshes started */                  \
	X(servfail)   /* upstream failures and deadlines */               \
	X(rebind)     /* rebind protection */                             \
	X(limited)    /* over a client limit: dropped, TC=1 or SERVFAIL */\
	X(truncated)  /* UDP replies cut to the client's size */

#define QUERY_STAT_FIELD(name) uint64_t name;
struct query_stats {
	QUERY_STATS(QUERY_STAT_FIELD)
};
#undef QUERY_STAT_FIELD

/* How each client query ended, counted once per query by transport
 * (metrics: splitdns_queries_total{kind}).  The names are the labels. */
#define QUERY_KINDS(X)                                                     \
	X(LOCAL, "local")         /* from zone files */                    \
	X(CANARY, "canary")       /* canary names */                       \
	X(BLOCKED, "blocked")     /* blocking answers */                   \
	X(CACHED, "cached")       /* from the cache */                     \
	X(FORWARDED, "forwarded") /* an upstream answer passed on */       \
	X(STALE, "stale")         /* an expired answer (RFC 8767) */       \
	X(REFUSED, "refused")     /* access, refusing rules, bad keys */   \
	X(PRIVATE, "private")     /* private names kept local */           \
	X(REBIND, "rebind")       /* rebind protection */                  \
	X(SERVFAIL, "servfail")   /* upstream failures, deadlines, limits */\
	X(FORMERR, "formerr")     /* malformed: FORMERR, NOTIMP, BADVERS */\
	X(LIMITED, "limited")     /* over limits.client_qps */             \
	X(DROPPED, "dropped")     /* no answer: too short, or QR=1 */

#define QUERY_KIND_ENUM(id, label) QUERY_KIND_##id,
enum query_kind { QUERY_KINDS(QUERY_KIND_ENUM) QUERY_NKINDS };
#undef QUERY_KIND_ENUM

/* The label of kind k, of transport t. */
const char *query_kind_name(enum query_kind k);
const char *query_transport_name(enum query_transport t);

/* A reply as it goes to a client. */
struct query_event {
	const struct query_client *client;
	const struct wire_query *wq; /* the client's question, ID, EDNS */
	const uint8_t *reply;        /* as sent (after any truncation) */
	size_t reply_len;
	enum query_kind kind;
	const char *group;           /* its client group, NULL: default */
	const char *list;            /* blocked: the source, else NULL */
	/* a query sent upstream (forwarded, servfail, stale, rebind, and
	 * blocked by a CNAME in the upstream's answer): the servers it went
	 * to, as the metrics label them (one server, or a group's plain
	 * servers together: c-ares does not say which answered); else NULL */
	const char *upstream;
	struct timespec received;    /* CLOCK_REALTIME when it arrived */
};

/*
 * Observers of the pipeline (the query log, dnstap): each callback runs
 * on the env's loop thread, inside the pipeline, and must not block or
 * call back into it; the pointers are valid during the call only.  Any
 * callback may be NULL.  With no observer the pipeline reads no clock.
 */
struct query_observer {
	/* A packet from a client, before it is parsed (dnstap's
	 * CLIENT_QUERY); when is when it arrived. */
	void (*query)(void *ctx, const struct query_client *c,
		      const uint8_t *pkt, size_t len,
		      const struct timespec *when);
	/* A reply sent to a client (CLIENT_RESPONSE, a query log line). */
	void (*reply)(void *ctx, const struct query_event *ev);
	/* A query handed to an upstream (response false: FORWARDER_QUERY,
	 * before the backend writes its own ID) and the upstream's reply
	 * (true: FORWARDER_RESPONSE, as received).  kind is the backend
	 * ("udp", "tls", ...); sent is when the query went up. */
	void (*upstream)(void *ctx, bool response, const char *kind,
			 const uint8_t *pkt, size_t len,
			 const struct timespec *sent);
	void *ctx;
};

/* Most observers per env. */
#define QUERY_MAX_OBSERVERS 4

struct query_env;

/* Add an observer (copied) to env; before its loop runs.  False when
 * there are QUERY_MAX_OBSERVERS already. */
bool query_env_add_observer(struct query_env *env,
			    const struct query_observer *obs);

/* A pipeline on loop, answering through io, storing in cache (borrowed,
 * shared by every loop; never NULL), making upstreams with backend.
 * It answers nothing until the first query_env_adopt. */
struct query_env *query_env_new(struct loop *loop, const struct query_io *io,
				struct cache *cache,
				const struct query_backend *backend);

/*
 * Serve from snap from now on; takes over the caller's reference.  The
 * upstreams are kept when snap has the same ones as the snapshot before,
 * otherwise made anew (the old ones finish their queries first).  Returns
 * false with a message in err when an upstream cannot be made: the
 * reference is then dropped and the env keeps serving what it had.
 */
bool query_env_adopt(struct query_env *env, struct snapshot *snap,
		     char *err, size_t errlen);

/* Free the pipeline: queries in flight are cancelled (clients that have
 * no answer yet get SERVFAIL while their sockets are still open). */
void query_env_free(struct query_env *env);

/* Clients still waiting for an answer (a draining loop waits for 0). */
size_t query_env_waiting(const struct query_env *env);

/* Add this env's counters to *sum (any thread). */
void query_env_stats(const struct query_env *env, struct query_stats *sum);

/* Hits of the block source called name, in this env (any thread). */
uint64_t query_env_hits(struct query_env *env, const char *name);

/* Read blocking's pause state from p (main's, borrowed for the env's
 * life; NULL: never paused).  Before the loop runs. */
void query_env_set_pause(struct query_env *env, const struct pause_state *p);

/* The top lists each env keeps (topk.h). */
enum query_top {
	QUERY_TOP_ASKED,   /* every question with a name, by name */
	QUERY_TOP_BLOCKED, /* blocking answers, by name */
	QUERY_TOP_SLOW,    /* upstream answers, by name, weighted by their
			      time upstream in milliseconds */
	QUERY_TOP_CLIENTS, /* every question with a name, by client address
			      (4 or 16 octets) */
	QUERY_TOP_KINDS
};

/* Copy this env's sketch of kind to out (at most cap entries; returns
 * how many) and add its total weight to *total.  Any thread. */
size_t query_env_top(const struct query_env *env, enum query_top kind,
		     struct topk_entry *out, size_t cap, uint64_t *total);

/* Add the queries and blocking answers of the client group called name
 * ("default" for everyone else) in this env to *queries and *blocked
 * (any thread); nothing when the snapshot in use has no such group. */
void query_env_group_stats(struct query_env *env, const char *name,
			   uint64_t *queries, uint64_t *blocked);

/* Client queries of transport t that ended as kind k, in this env
 * (any thread). */
uint64_t query_env_kind(const struct query_env *env, enum query_transport t,
			enum query_kind k);

/* Replies sent to clients with header RCODE rcode (0..15), in this env
 * (any thread). */
uint64_t query_env_rcode(const struct query_env *env, unsigned rcode);

/* The upper bounds (ms) of the upstream latency histogram's buckets;
 * one more bucket, past the last, counts the rest (+Inf). */
#define QUERY_LATENCY_BUCKETS 12
extern const unsigned query_latency_ms[QUERY_LATENCY_BUCKETS];

/* What one upstream group (the servers it lists, one label) did. */
struct query_upstream_stats {
	uint64_t queries;  /* sent upstream (prefetches too) */
	uint64_t errors;   /* timeouts, failures, unusable replies */
	uint64_t sum_ms;   /* time of the answered ones */
	uint64_t bucket[QUERY_LATENCY_BUCKETS + 1]; /* answered, by time */
};

/* The label of upstream group g of s: its servers' text, joined with
 * ","  ("" for a group without servers).  Returns buf. */
const char *query_upstream_name(const struct snapshot *s, size_t g,
				char *buf, size_t cap);

/* Call fn with each upstream group's label and figures in this env, for
 * every group of the snapshot in use (counts carry over reloads by
 * label; a label may come more than once).  Any thread; fn runs under
 * the env's counter lock and must not call back into the env. */
void query_env_upstream_each(struct query_env *env,
			     void (*fn)(void *ctx, const char *name,
					const struct query_upstream_stats *u),
			     void *ctx);

/* Is the client at sa in access.allow of the snapshot in use?  For the
 * server's check at TCP accept (a void *ctx callback: env is ctx). */
bool query_env_client_allowed(void *env, const struct sockaddr *sa);

/* Handle one packet from client c (UDP when c->conn is NULL). */
void query_handle(struct query_env *env, const struct query_client *c,
		  const uint8_t *pkt, size_t len);

#endif
