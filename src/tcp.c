/*
 * tcp.c - the TCP connections of one server (RFC 7766): framing,
 * pipelined queries answered as they complete, and the limits that keep
 * one client from holding more than its share.
 *
 * A connection is owned by its pool while open and by the queries that
 * still refer to it after it closes: refs counts one for "open" plus one
 * per query in flight, and the memory goes (deferred to the end of the
 * loop's batch) when it drops to zero.  Replies to a closed connection
 * are dropped.
 *
 * Underneath the framing, a transport moves the bytes: recv and send on
 * the socket, or (tls:// listeners) a GnuTLS session over it, whose
 * handshake must finish within tls.handshake_timeout_ms, with at most
 * tls.max_handshakes of them in progress per pool.  Every other limit
 * holds for TLS connections as for plain ones, and they are counted
 * together.  On https:// listeners an HTTP/2 session (doh.c) takes the
 * place of the RFC 7766 framing: each request's query goes to the
 * pipeline with its stream, and requests that find no output room wait
 * in order while the connection is not read, as frames do.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "loop.h"
#include "query.h"
#include "tcp.h"
#ifdef HAVE_TLS
#include "doh.h"
#include "tls.h"
#endif
#include "wire.h"

/* The timed lists a connection can be on.  Each has one timeout, so
 * appending at the tail keeps it in deadline order. */
enum {
	TL_IDLE,  /* every connection: last query or reply */
	TL_QUERY, /* an unfinished frame: when its first byte came */
	TL_WRITE, /* output not yet taken: since the client last took some */
	TL_WAIT,  /* stopped reading, waiting for the pool's output room */
	TL_READY, /* stopped reading, may take a query again */
	TL_HANDSHAKE, /* a TLS handshake in progress: since accept */
	TL_N
};

struct tlink {
	struct tcp_conn *prev, *next;
	uint64_t since;
	bool on;
};

struct tlist {
	struct tcp_conn *head, *tail;
	uint64_t ms; /* timeout; 0 for TL_WAIT and TL_READY */
};

/* How the bytes of a connection move: recv/send return what the system
 * calls do (-1 with errno EAGAIN when they would block); pending counts
 * bytes the transport holds that the socket will not signal. */
struct transport {
	ssize_t (*recv)(struct tcp_conn *c, void *buf, size_t len);
	ssize_t (*send)(struct tcp_conn *c, const void *buf, size_t len);
	size_t (*pending)(const struct tcp_conn *c);
};

struct tcp_conn {
	struct loop_watch w;
	uint32_t events;         /* what w is registered for */
	struct tcp_pool *pool;
	const struct transport *tx;
	struct tls_session *tls; /* tls:// connections, NULL otherwise */
	bool handshaking;        /* the TLS handshake is not done yet */
	bool https;              /* DoH: h2 once the handshake is done */
	struct doh_session *h2;  /* freed with c (nghttp2 may be calling) */
	const char *path;        /* DoH: the listener's (borrowed) */
	bool h2_busy;            /* inside doh_input: no output yet */
	bool held;               /* the query just handed over goes on */
	int refs;	 /* 1 while open, plus one per query in flight */
	size_t inflight; /* queries in flight */
	bool closed;
	bool eof;     /* the client sent FIN: answer what is in flight */
	bool blocked; /* frames wait for output room: not reading */
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out; /* out[out_off..out_len) is unsent */
	size_t out_len, out_off, out_cap;
	uint64_t sent;	     /* bytes handed to the kernel in all */
	uint64_t taken_mark; /* of those, taken at the last check */
	struct tlink tl[TL_N];
	struct tcp_conn *hnext,
	    **hprev; /* same hash bucket (per-client count) */
	struct sockaddr_storage peer;
	socklen_t peerlen;
};

/* Events counted between two log lines (at most one per
 * TCP_LOG_EVERY_MS), so that a flood cannot flood the log. */
struct tcp_events {
	uint64_t full, per_client, outsider, write_timeout, query_timeout;
	uint64_t handshakes, handshake_timeout, handshake_failed;
	uint64_t next_ms;
};

struct tcp_pool {
	struct loop *loop;
	struct query_env *env;
	struct tlist tl[TL_N];
	size_t nconns;	      /* this pool's */
	size_t max_conns;     /* of all pools sharing *open */
	_Atomic size_t *open; /* connections open in all pools */
	_Atomic size_t tls_open; /* of this pool's, those with TLS (any
				    thread reads it) */
	size_t max_per_client;
	size_t max_output;	 /* unsent + reserved bytes per connection */
	size_t max_output_total; /* the same over all connections */
	size_t out_total;	 /* unsent bytes over all connections */
	size_t inflight_total;	 /* TCP queries in flight */
	struct tcp_conn **hash;	 /* connections by client address */
	size_t hmask;
	uint64_t hseed;
	bool (*allowed)(void *ctx, const struct sockaddr *sa);
	void *allowed_ctx;
	struct tls_creds *creds; /* for new TLS handshakes; NULL: none */
	size_t handshaking;      /* TLS handshakes in progress */
	size_t max_handshakes;
	unsigned max_streams; /* HTTP/2 streams per DoH connection */
	struct tcp_events ev;
};

static void conn_close(struct tcp_conn *c);

/* ------------------------------------------------------ timed lists */

static void tl_drop(struct tcp_pool *pool, int k, struct tcp_conn *c)
{
	struct tlink *l = &c->tl[k];
	if (!l->on)
		return;
	if (l->prev)
		l->prev->tl[k].next = l->next;
	else
		pool->tl[k].head = l->next;
	if (l->next)
		l->next->tl[k].prev = l->prev;
	else
		pool->tl[k].tail = l->prev;
	l->prev = l->next = NULL;
	l->on = false;
}

/* (Re)start c's clock on list k at now_ms: c goes to the tail. */
static void tl_put(struct tcp_pool *pool, int k, struct tcp_conn *c,
		   uint64_t now_ms)
{
	struct tlink *l = &c->tl[k];
	l->since = now_ms;
	if (l->on && pool->tl[k].tail == c)
		return;
	tl_drop(pool, k, c);
	l->prev = pool->tl[k].tail;
	if (pool->tl[k].tail)
		pool->tl[k].tail->tl[k].next = c;
	else
		pool->tl[k].head = c;
	pool->tl[k].tail = c;
	l->on = true;
}

/* The head of list k if its time is up at now_ms. */
static struct tcp_conn *tl_due(struct tcp_pool *pool, int k, uint64_t now_ms)
{
	struct tcp_conn *c = pool->tl[k].head;
	return c && c->tl[k].since + pool->tl[k].ms <= now_ms ? c : NULL;
}

/* The smaller of t (-1: none) and the ms until list k's head is due. */
static int tl_next(const struct tcp_pool *pool, int k, uint64_t now_ms, int t)
{
	const struct tcp_conn *c = pool->tl[k].head;
	if (!c || !pool->tl[k].ms)
		return t;
	uint64_t due = c->tl[k].since + pool->tl[k].ms;
	int wait = due > now_ms ? (int)(due - now_ms) : 0;
	return t < 0 || wait < t ? wait : t;
}

static void touch(struct tcp_conn *c)
{
	tl_put(c->pool, TL_IDLE, c, loop_now_ms());
}

/* ------------------------------------------- connections per client */

/* The address bytes of a client, without the port. */
static const uint8_t *host_bytes(const struct sockaddr_storage *ss, size_t *len)
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

/* The bucket of a client address, by a hash seeded at random per pool:
 * which addresses share a bucket cannot be worked out in advance. */
static struct tcp_conn **host_bucket(const struct tcp_pool *pool,
				     const struct sockaddr_storage *ss)
{
	size_t len;
	const uint8_t *p = host_bytes(ss, &len);
	uint64_t h = pool->hseed ^ ss->ss_family;
	for (size_t i = 0; i < len; i++) {
		h = (h ^ p[i]) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return &pool->hash[(h ^ (h >> 32)) & pool->hmask];
}

static size_t host_count(struct tcp_conn **bucket,
			 const struct sockaddr_storage *ss)
{
	size_t n = 0;
	for (const struct tcp_conn *c = *bucket; c; c = c->hnext)
		n += same_host(&c->peer, ss);
	return n;
}

static void host_link(struct tcp_conn **bucket, struct tcp_conn *c)
{
	c->hnext = *bucket;
	if (*bucket)
		(*bucket)->hprev = &c->hnext;
	c->hprev = bucket;
	*bucket = c;
}

static void host_unlink(struct tcp_conn *c)
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
#define TCP_RESERVE (2 + (size_t)WIRE_MSG_MAX)
/* The kernel's send buffer per connection (it doubles the figure). */
#define TCP_SNDBUF (128 * 1024)
/* An output buffer larger than this is given back once it drains. */
#define TCP_OUT_KEEP 16384

static size_t unsent(const struct tcp_conn *c)
{
	return c->out_len - c->out_off;
}

/* Room in c's own bound for one more query's reply. */
static bool own_room(const struct tcp_conn *c)
{
	return unsent(c) + (c->inflight + 1) * TCP_RESERVE <=
	       c->pool->max_output;
}

/* Room in the pool's bound for one more query's reply. */
static bool total_room(const struct tcp_pool *pool)
{
	size_t reserved = (pool->inflight_total + 1) * TCP_RESERVE;
	return pool->out_total + reserved <= pool->max_output_total;
}

/* Nothing unsent, nothing being answered.  Such a connection may take a
 * query even when the pool's bound is reached, so that a few clients
 * that do not read cannot stall those that do; the bound can thus be
 * passed by one reply per connection. */
static bool idle_output(const struct tcp_conn *c)
{
	return unsent(c) == 0 && c->inflight == 0;
}

static bool may_take(const struct tcp_conn *c)
{
	return own_room(c) && (total_room(c->pool) || idle_output(c));
}

/* A stopped connection with room of its own again waits its turn for the
 * pool's room, unless it may go at once (tcp_pool_expire takes both lists
 * in order). */
static void maybe_wait(struct tcp_conn *c)
{
	struct tcp_pool *pool = c->pool;
	if (!c->blocked || c->closed || c->tl[TL_READY].on)
		return;
	if (idle_output(c)) {
		tl_drop(pool, TL_WAIT, c);
		tl_put(pool, TL_READY, c, 0);
	} else if (!c->tl[TL_WAIT].on && own_room(c)) {
		tl_put(pool, TL_WAIT, c, 0);
	}
}

/* Make room for n more bytes of output; false when out of memory. */
static bool out_room(struct tcp_conn *c, size_t n)
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

/* ------------------------------------------------------ transports */

static ssize_t plain_recv(struct tcp_conn *c, void *buf, size_t len)
{
	return recv(c->w.fd, buf, len, MSG_DONTWAIT);
}

static ssize_t plain_send(struct tcp_conn *c, const void *buf, size_t len)
{
	return send(c->w.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static size_t plain_pending(const struct tcp_conn *c)
{
	(void)c;
	return 0;
}

static const struct transport plain = {plain_recv, plain_send,
				       plain_pending};

#ifdef HAVE_TLS
static ssize_t tls_tx_recv(struct tcp_conn *c, void *buf, size_t len)
{
	return tls_recv(c->tls, buf, len);
}

static ssize_t tls_tx_send(struct tcp_conn *c, const void *buf, size_t len)
{
	return tls_send(c->tls, buf, len);
}

static size_t tls_tx_pending(const struct tcp_conn *c)
{
	return tls_pending(c->tls);
}

static const struct transport tls = {tls_tx_recv, tls_tx_send,
				     tls_tx_pending};
#endif

/* ----------------------------------------------------- connections */

static void conn_free(void *p)
{
	struct tcp_conn *c = p;
#ifdef HAVE_TLS
	doh_session_free(c->h2);
#endif
	free(c->in);
	free(c->out);
	free(c);
}

static void conn_unref(struct tcp_conn *c)
{
	if (--c->refs == 0)
		loop_defer_free(c->pool->loop, c, conn_free);
}

/* Register for ev unless that is what c is registered for already: an
 * event that changes nothing costs no epoll_ctl (two per DoH request
 * otherwise). */
static void watch_set(struct tcp_conn *c, uint32_t ev)
{
	if (c->events != ev && loop_mod(c->pool->loop, &c->w, ev) == 0)
		c->events = ev;
}

static void conn_watch(struct tcp_conn *c)
{
	uint32_t ev = 0;
#ifdef HAVE_TLS
	if (c->handshaking) {
		watch_set(c, tls_want_write(c->tls) ? EPOLLOUT : EPOLLIN);
		return;
	}
#endif
	if (!c->eof && !c->blocked)
		ev |= EPOLLIN;
	if (unsent(c))
		ev |= EPOLLOUT;
	watch_set(c, ev);
}

/* Close at once with a reset (SO_LINGER 0): the kernel drops what the
 * client did not read instead of keeping it for a client that may never
 * read. */
static void conn_abort(struct tcp_conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c->w.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(c);
}

/* Write what is queued; false when the connection had to be closed. */
static bool conn_flush(struct tcp_conn *c)
{
	struct tcp_pool *pool = c->pool;
	size_t before = unsent(c);

	while (c->out_off < c->out_len) {
		ssize_t n = c->tx->send(c, c->out + c->out_off,
					c->out_len - c->out_off);
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
		pool->out_total -= (size_t)n;
	}
	if (unsent(c) == before)
		return true;
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->out_cap > TCP_OUT_KEEP) {
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
static void conn_maybe_finish(struct tcp_conn *c)
{
	if (!c->closed && c->eof && !c->blocked && c->refs == 1 &&
	    unsent(c) == 0)
		conn_close(c);
}

/* Queue n bytes for the client; false (c closed) when out of memory. */
static bool out_append(struct tcp_conn *c, const uint8_t *p, size_t n)
{
	if (!out_room(c, n)) {
		conn_close(c);
		return false;
	}
	if (!c->tl[TL_WRITE].on) {
		/* Off the list, the client had taken all it was sent
		 * (out_pending), so taken == sent now. */
		tl_put(c->pool, TL_WRITE, c, loop_now_ms());
		c->taken_mark = c->sent;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	c->pool->out_total += n;
	return true;
}

#ifdef HAVE_TLS
/* Queue what the HTTP/2 session has to send and write it; false when c
 * was closed.  Inside doh_input nothing is taken yet (nghttp2 must not
 * send from its callbacks): the caller comes here after it. */
static bool h2_output(struct tcp_conn *c)
{
	const uint8_t *data;
	ssize_t n;

	if (c->h2_busy || c->closed)
		return !c->closed;
	while ((n = doh_output(c->h2, &data)) > 0)
		if (!out_append(c, data, (size_t)n))
			return false;
	if (n < 0) {
		conn_abort(c);
		return false;
	}
	if (doh_done(c->h2))
		c->eof = true; /* GOAWAY both ways: close once sent */
	if (!conn_flush(c))
		return false;
	conn_maybe_finish(c);
	if (c->closed)
		return false;
	conn_watch(c);
	return true;
}
#endif

void tcp_conn_send(struct tcp_conn *c, int32_t stream, const uint8_t *msg,
		   size_t len)
{
	uint8_t hdr[2];

	if (c->closed)
		return;
#ifdef HAVE_TLS
	if (c->h2) {
		doh_reply(c->h2, stream, msg, len);
		touch(c);
		h2_output(c);
		return;
	}
#endif
	(void)stream;
	/* The bounds were checked when the query was taken: its reply
	 * had room reserved (may_take). */
	wire_set16(hdr, (uint16_t)len);
	if (!out_room(c, 2 + len) || !out_append(c, hdr, 2) ||
	    !out_append(c, msg, len)) {
		conn_close(c);
		return;
	}
	touch(c);
	if (conn_flush(c))
		conn_watch(c);
}

/* Stop taking c's frames until there is room for their replies. */
static void conn_block(struct tcp_conn *c)
{
	c->blocked = true;
	maybe_wait(c);
}

/* The query deadline runs while part of a frame is here and the rest is
 * the client's to send: from the first byte of that frame (restarted
 * when a frame was taken), never while we hold whole frames back. */
static void query_clock(struct tcp_conn *c, bool took)
{
	if (c->in_len == 0 || c->blocked)
		tl_drop(c->pool, TL_QUERY, c);
	else if (took || !c->tl[TL_QUERY].on)
		tl_put(c->pool, TL_QUERY, c, loop_now_ms());
}

/* Hand every complete frame to the pipeline while there is room for
 * the replies. */
static void conn_frames(struct tcp_conn *c)
{
	struct query_client cl = {
	    .fd = -1, .conn = c, .transport = c->tls ? QUERY_TLS : QUERY_TCP};
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
		c->pool->inflight_total++;
		query_handle(c->pool->env, &cl, c->in + off + 2, flen);
		c->inflight--;
		c->pool->inflight_total--;
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

#ifdef HAVE_TLS
/* A request's DNS query (doh.c's handler): to the pipeline like a frame,
 * with its stream.  False when there is no room for its reply: the
 * request waits in doh.c, and c stops being read (conn_block) until
 * resume hands it over again. */
static bool h2_query(void *ctx, int32_t stream, const uint8_t *msg,
		     size_t len)
{
	struct tcp_conn *c = ctx;
	struct query_client cl = {.fd = -1, .conn = c, .stream = stream,
				  .transport = QUERY_HTTPS};

	if (c->closed)
		return true; /* dropped */
	if (!may_take(c))
		return false;
	cl.peer = c->peer;
	cl.peerlen = c->peerlen;
	touch(c);
	c->inflight++;
	c->pool->inflight_total++;
	c->held = false;
	query_handle(c->pool->env, &cl, msg, len);
	c->inflight--;
	c->pool->inflight_total--;
	/* The pipeline drops what is not a query (too short, QR=1): over
	 * HTTP the client still gets an answer (RFC 8484 4.2.1). */
	if (!c->closed && !c->held && !doh_answered(c->h2, stream))
		doh_error(c->h2, stream, 400);
	return true;
}

/* Hand what came to the HTTP/2 session, then send its output. */
static void conn_h2_input(struct tcp_conn *c)
{
	c->refs++; /* the pipeline may close c meanwhile */
	c->h2_busy = true;
	doh_input(c->h2, c->in, c->in_len); /* an error: doh_done */
	c->h2_busy = false;
	c->in_len = 0;
	if (!c->closed && doh_waiting(c->h2))
		conn_block(c);
	h2_output(c);
	conn_unref(c);
}

/* Hand the requests that waited for room to the pipeline again. */
static void h2_resume(struct tcp_conn *c)
{
	c->h2_busy = true; /* the replies go out below, in one batch */
	bool done = doh_resume(c->h2);
	c->h2_busy = false;
	if (!c->closed && !done)
		conn_block(c);
	h2_output(c);
}
#endif

/* Read what the client sent; false when c was closed. */
static bool conn_read(struct tcp_conn *c)
{
again:
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
	ssize_t n = c->tx->recv(c, c->in + c->in_len, c->in_cap - c->in_len);
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
#ifdef HAVE_TLS
		if (c->h2)
			conn_h2_input(c);
		else
#endif
			conn_frames(c);
	}
	if (c->closed)
		return false;
	/* A TLS record larger than the room read here stays decrypted in
	 * the session, and the socket will not say so. */
	if (n > 0 && !c->eof && c->tx->pending(c))
		goto again;
	conn_maybe_finish(c);
	return !c->closed;
}

#ifdef HAVE_TLS
/* The handshake is done (RFC 7858 3.2: then queries may come): the
 * idle clock starts, and what came with the client's Finished is read.
 * False when c was closed. */
static bool handshake_done(struct tcp_conn *c)
{
	struct tcp_pool *pool = c->pool;
	c->handshaking = false;
	pool->handshaking--;
	tl_drop(pool, TL_HANDSHAKE, c);
	touch(c);
	if (c->https) {
		/* RFC 9113 3.4: our SETTINGS go first. */
		struct doh_handler h = {h2_query, c};
		if (!(c->h2 = doh_session_new(c->path, pool->max_streams, &h))) {
			conn_close(c);
			return false;
		}
		if (!h2_output(c))
			return false;
	}
	return conn_read(c);
}

/* Go on with c's handshake; false when c was closed or is still in it. */
static bool conn_handshake(struct tcp_conn *c)
{
	int rc = tls_handshake(c->tls);
	if (rc > 0)
		return handshake_done(c);
	if (rc < 0) {
		c->pool->ev.handshake_failed++;
		conn_abort(c);
		return false;
	}
	conn_watch(c);
	return false;
}
#endif

static void on_conn(struct loop_watch *w, uint32_t events)
{
	struct tcp_conn *c = (struct tcp_conn *)w;

#ifdef HAVE_TLS
	if (c->handshaking) {
		if (events & (EPOLLHUP | EPOLLERR)) {
			conn_close(c);
			return;
		}
		if (!conn_handshake(c))
			return;
		/* Done and read: fall through for the output. */
		events &= ~(uint32_t)EPOLLIN;
	}
#endif
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

#define TCP_LOG_EVERY_MS 10000

/* Refuse a connection at accept (RFC 7766 6.2.2: servers may). */
static bool refuse(struct tcp_pool *pool, const struct sockaddr_storage *peer,
		   struct tcp_conn **bucket, enum tcp_kind kind)
{
	if (pool->allowed &&
	    !pool->allowed(pool->allowed_ctx, (const struct sockaddr *)peer)) {
		pool->ev.outsider++;
		return true;
	}
	if (kind != TCP_PLAIN &&
	    (!pool->creds || pool->handshaking >= pool->max_handshakes)) {
		pool->ev.handshakes++;
		return true;
	}
	if (host_count(bucket, peer) >= pool->max_per_client) {
		pool->ev.per_client++;
		return true;
	}
	/* tcp.max_connections bounds the daemon, not one worker: the slots
	 * are counted over every worker's pool. */
	if (atomic_fetch_add(pool->open, 1) >= pool->max_conns) {
		atomic_fetch_sub(pool->open, 1);
		pool->ev.full++;
		return true;
	}
	return false;
}

static void conn_close(struct tcp_conn *c)
{
	struct tcp_pool *pool = c->pool;
	if (c->closed)
		return;
	c->closed = true;
	loop_del(pool->loop, &c->w);
#ifdef HAVE_TLS
	if (c->tls)
		atomic_fetch_sub_explicit(&pool->tls_open, 1,
					  memory_order_relaxed);
	tls_session_free(c->tls);
	c->tls = NULL;
	if (c->handshaking) {
		c->handshaking = false;
		pool->handshaking--;
	}
#endif
	close(c->w.fd);
	for (int k = 0; k < TL_N; k++)
		tl_drop(pool, k, c);
	host_unlink(c);
	pool->out_total -= unsent(c);
	c->out_off = c->out_len = 0;
	pool->nconns--;
	atomic_fetch_sub(pool->open, 1);
	conn_unref(c);
}

/* Start c's TLS session; false when out of memory. */
static bool start_tls(struct tcp_conn *c, enum tcp_kind kind)
{
#ifdef HAVE_TLS
	struct tcp_pool *pool = c->pool;
	/* DoT: each reply is a TLS record of its own, which Nagle's
	 * algorithm would hold until the client's delayed ACK of the one
	 * before (dnsperf -m dot: about 20% more queries per second with
	 * TCP_NODELAY).  Not for DoH, where dnsperf -m doh measured less
	 * with it. */
	int one = 1;
	if (kind == TCP_TLS)
		setsockopt(c->w.fd, IPPROTO_TCP, TCP_NODELAY, &one,
			   sizeof(one));
	if (!(c->tls = tls_session_new(pool->creds, c->w.fd,
				       kind == TCP_HTTPS ? TLS_ALPN_H2
							 : TLS_ALPN_DOT)))
		return false;
	c->tx = &tls;
	atomic_fetch_add_explicit(&pool->tls_open, 1, memory_order_relaxed);
	c->https = kind == TCP_HTTPS;
	c->handshaking = true;
	pool->handshaking++;
	tl_put(pool, TL_HANDSHAKE, c, loop_now_ms());
	return true;
#else
	(void)c;
	(void)kind;
	return false;
#endif
}

void tcp_pool_accept(struct tcp_pool *pool, int fd,
		     const struct sockaddr_storage *peer, socklen_t peerlen,
		     enum tcp_kind kind, const char *path)
{
	struct tcp_conn **bucket = host_bucket(pool, peer);
	struct tcp_conn *c = NULL;

	if (refuse(pool, peer, bucket, kind)) {
		close(fd); /* RFC 7766 6.2.2: servers may refuse */
		return;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		atomic_fetch_sub(pool->open, 1);
		close(fd);
		return;
	}
	/* A fixed send buffer bounds what the kernel holds for a client
	 * that does not read (autotuning would let it grow to
	 * tcp_wmem's maximum, 4 MB by default). */
	int sndbuf = TCP_SNDBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	c->w.fd = fd;
	c->w.cb = on_conn;
	c->pool = pool;
	c->tx = &plain;
	c->path = path;
	c->refs = 1;
	c->peer = *peer;
	c->peerlen = peerlen;
	c->events = EPOLLIN;
	if (loop_add(pool->loop, &c->w, c->events) < 0) {
		atomic_fetch_sub(pool->open, 1);
		close(fd);
		free(c);
		return;
	}
	host_link(bucket, c);
	pool->nconns++;
	touch(c);
	if (kind != TCP_PLAIN && !start_tls(c, kind))
		conn_close(c);
}

void tcp_conn_hold(struct tcp_conn *c)
{
	c->held = true;
	c->refs++;
	c->inflight++;
	c->pool->inflight_total++;
}

void tcp_conn_release(struct tcp_conn *c)
{
	bool last = c->refs == 1;
	c->inflight--;
	c->pool->inflight_total--;
	if (!last)
		maybe_wait(c);
	conn_unref(c);
	if (!last)
		conn_maybe_finish(c);
}

/* Take frames again from a stopped connection. */
static void resume(struct tcp_conn *c)
{
	tl_drop(c->pool, TL_WAIT, c);
	tl_drop(c->pool, TL_READY, c);
	if (!may_take(c)) {
		maybe_wait(c); /* or its own output or replies will */
		return;
	}
	c->refs++; /* outside a loop batch, a close frees at once */
	c->blocked = false;
#ifdef HAVE_TLS
	if (c->h2)
		h2_resume(c);
	else
#endif
		conn_frames(c);
	/* Bytes the TLS session decrypted before c stopped reading. */
	if (!c->closed && !c->blocked && c->tx->pending(c))
		conn_read(c);
	if (!c->closed) {
		conn_maybe_finish(c);
		if (!c->closed)
			conn_watch(c);
	}
	conn_unref(c);
}

/* Stopped connections go on in order: those that may go at once, then
 * those waiting for the pool's room while there is some. */
static void resume_waiting(struct tcp_pool *pool)
{
	struct tcp_conn *c;

	while ((c = pool->tl[TL_READY].head))
		resume(c);
	while ((c = pool->tl[TL_WAIT].head) && total_room(pool))
		resume(c);
}

/* Replies leave our buffer for the kernel's at once, so what the client
 * has taken is what it acknowledged: SIOCOUTQ gives (for TCP) the bytes
 * sent but not yet acknowledged. */
static uint64_t kernel_queued(const struct tcp_conn *c)
{
	int queued = 0;
	if (ioctl(c->w.fd, SIOCOUTQ, &queued) < 0 || queued < 0)
		return 0;
	return (uint64_t)queued;
}

/* Whether c has output its client has not taken yet; when all is taken,
 * c leaves the write list. */
static bool out_pending(struct tcp_conn *c)
{
	if (!c->tl[TL_WRITE].on)
		return false;
	if (unsent(c) == 0 && kernel_queued(c) == 0) {
		tl_drop(c->pool, TL_WRITE, c);
		return false;
	}
	return true;
}

/* Whether c's client took none of its output for a whole write timeout.
 * Checked once per timeout, so a stalled client goes between one and two
 * timeouts after the last byte it took. */
static bool write_stalled(struct tcp_conn *c, uint64_t now_ms)
{
	if (!out_pending(c))
		return false;
	uint64_t taken = c->sent - kernel_queued(c);
	if (taken > c->taken_mark) {
		c->taken_mark = taken;
		tl_put(c->pool, TL_WRITE, c, now_ms);
		return false;
	}
	return true;
}

/* What the limits did: the first event at once, then one line per
 * TCP_LOG_EVERY_MS at most with the counts since the last. */
static int log_events(struct tcp_pool *pool, uint64_t now_ms, int t)
{
	struct tcp_events *e = &pool->ev;
	if (!(e->full | e->per_client | e->outsider | e->write_timeout |
	      e->query_timeout | e->handshakes | e->handshake_timeout |
	      e->handshake_failed))
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
	if (e->handshakes | e->handshake_timeout | e->handshake_failed)
		log_info("tls: refused %" PRIu64 " at tls.max_handshakes; "
			 "closed %" PRIu64 " at tls.handshake_timeout_ms, %" PRIu64
			 " whose handshake failed",
			 e->handshakes, e->handshake_timeout,
			 e->handshake_failed);
	*e = (struct tcp_events){.next_ms = now_ms + TCP_LOG_EVERY_MS};
	return t;
}

/* RFC 7766 6.2.3 idle timeout.  A DoH connection says so first with
 * GOAWAY (RFC 9113 6.8) and closes once that is sent, or at its next
 * idle check (or write timeout) if the client does not take it. */
static void idle_close(struct tcp_conn *c, uint64_t now_ms)
{
#ifdef HAVE_TLS
	if (c->h2 && !c->eof) {
		tl_put(c->pool, TL_IDLE, c, now_ms);
		doh_goaway(c->h2);
		c->eof = true;
		c->refs++; /* outside a loop batch, a close frees at once */
		h2_output(c);
		conn_unref(c);
		return;
	}
#else
	(void)now_ms;
#endif
	conn_close(c);
}

int tcp_pool_expire(struct tcp_pool *pool, uint64_t now_ms)
{
	struct tcp_conn *c;

	/* All arithmetic on the caller's clock: a busy connection moved to
	 * the tail gets since = now_ms and is not visited again. */
	while ((c = tl_due(pool, TL_IDLE, now_ms))) {
		if (c->refs == 1 && c->in_len == 0 && !out_pending(c))
			idle_close(c, now_ms);
		else
			tl_put(pool, TL_IDLE, c, now_ms); /* busy: later */
	}
	while ((c = tl_due(pool, TL_QUERY, now_ms))) {
		pool->ev.query_timeout++;
		conn_abort(c); /* a frame that does not arrive whole */
	}
	while ((c = tl_due(pool, TL_HANDSHAKE, now_ms))) {
		pool->ev.handshake_timeout++;
		conn_abort(c); /* a client that never finishes the handshake */
	}
	while ((c = tl_due(pool, TL_WRITE, now_ms))) {
		if (write_stalled(c, now_ms)) {
			pool->ev.write_timeout++;
			conn_abort(c); /* a client that does not read */
		}
	}
	resume_waiting(pool);
	int t = -1;
	for (int k = TL_IDLE; k <= TL_WRITE; k++)
		t = tl_next(pool, k, now_ms, t);
	t = tl_next(pool, TL_HANDSHAKE, now_ms, t);
	return log_events(pool, now_ms, t);
}

static int hash_init(struct tcp_pool *pool)
{
	size_t n = 16;
	while (n < pool->max_conns)
		n *= 2;
	if (!(pool->hash = calloc(n, sizeof(*pool->hash))))
		return -1;
	pool->hmask = n - 1;
	if (getrandom(&pool->hseed, sizeof(pool->hseed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(pool->hseed))
		pool->hseed = loop_now_ms() ^ (uint64_t)(uintptr_t)pool;
	return 0;
}

struct tcp_pool *tcp_pool_new(struct loop *loop, const struct conf *cfg,
			      _Atomic size_t *open, size_t max_open)
{
	struct tcp_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return NULL;
	pool->loop = loop;
	pool->open = open;
	pool->max_conns = max_open;
	pool->max_per_client = (size_t)cfg->tcp_max_per_client;
	/* Halved SIZE_MAX: the sums in own_room and total_room cannot wrap
	 * on a 32-bit system either. */
	uint64_t most = SIZE_MAX / 2;
	uint64_t out = (uint64_t)cfg->tcp_max_output;
	uint64_t total = (uint64_t)cfg->tcp_max_output_total;
	pool->max_output = (size_t)(out < most ? out : most);
	pool->max_output_total = (size_t)(total < most ? total : most);
	pool->tl[TL_IDLE].ms = (uint64_t)cfg->tcp_idle_timeout_ms;
	pool->tl[TL_QUERY].ms = (uint64_t)cfg->tcp_query_timeout_ms;
	pool->tl[TL_WRITE].ms = (uint64_t)cfg->tcp_write_timeout_ms;
	pool->tl[TL_HANDSHAKE].ms = (uint64_t)cfg->tls_handshake_timeout_ms;
	pool->max_handshakes = (size_t)cfg->tls_max_handshakes;
	pool->max_streams = (unsigned)cfg->https_max_streams;
	if (hash_init(pool) < 0) {
		free(pool);
		return NULL;
	}
	return pool;
}

void tcp_pool_start(struct tcp_pool *pool, struct query_env *env)
{
	pool->env = env;
}

void tcp_pool_set_access(struct tcp_pool *pool,
			 bool (*allowed)(void *ctx, const struct sockaddr *sa),
			 void *ctx)
{
	pool->allowed = allowed;
	pool->allowed_ctx = ctx;
}

size_t tcp_pool_tls_open(const struct tcp_pool *pool)
{
	return atomic_load_explicit(&pool->tls_open, memory_order_relaxed);
}

size_t tcp_pool_unsent(const struct tcp_pool *pool) { return pool->out_total; }

void tcp_pool_close_all(struct tcp_pool *pool)
{
	while (pool->tl[TL_IDLE].head)
		conn_close(pool->tl[TL_IDLE].head);
}

void tcp_pool_set_tls(struct tcp_pool *pool, struct tls_creds *creds)
{
#ifdef HAVE_TLS
	tls_creds_unref(pool->creds);
	pool->creds = creds ? tls_creds_ref(creds) : NULL;
#else
	(void)pool;
	(void)creds;
#endif
}

void tcp_pool_free(struct tcp_pool *pool)
{
	if (!pool)
		return;
	tcp_pool_close_all(pool);
	tcp_pool_set_tls(pool, NULL);
	free(pool->hash);
	free(pool);
}
