/*
 * query.c - the query pipeline.
 *
 * Reads top to bottom: check the packet, answer locally when the name is
 * local, otherwise relay it upstream; in the upstream callback check the
 * reply, restore the client's ID, fit it to the client's size and send.
 * One struct query holds everything about a relayed query and one function
 * (query_done) releases it.  A client whose deadline passes gets SERVFAIL
 * at once; its query object stays until c-ares reports back, because
 * c-ares still holds a pointer to it.
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "forward.h"
#include "log.h"
#include "policy.h"
#include "loop.h"
#include "query.h"
#include "wire.h"
#include "zone.h"

/* Queries up to this size are copied into the pool object itself; larger
 * ones (rare: TCP with big EDNS options) get a buffer of their own. */
#define QUERY_INLINE 1232

struct query {
	struct forward_req req; /* first: the callback hands us this */
	struct query_env *env;
	struct query_client client;
	struct wire_query wq;   /* the parsed client query */
	size_t group;           /* the upstream group it went to */
	uint64_t deadline;
	bool answered;          /* the client has its reply (or SERVFAIL) */
	struct query *prev, *next; /* deadline list, or the free list */
	uint8_t *pkt;           /* inline or heap */
	size_t len;
	uint8_t inline_pkt[QUERY_INLINE];
};

struct query_env {
	struct query_view v;
	struct query_io io;
	size_t inflight;
	struct query *free_list;
	struct query *head, *tail; /* waiting for upstream, by deadline */
	uint8_t out[WIRE_MSG_MAX]; /* replies are built here */
};

struct query_env *query_env_new(const struct query_view *view,
				const struct query_io *io)
{
	struct query_env *env = calloc(1, sizeof(*env));
	if (!env)
		return NULL;
	env->io = *io;
	query_env_set(env, view);
	return env;
}

void query_env_set(struct query_env *env, const struct query_view *view)
{
	env->v = *view;
}

void query_env_free(struct query_env *env)
{
	if (!env)
		return;
	while (env->free_list) {
		struct query *q = env->free_list;
		env->free_list = q->next;
		free(q);
	}
	free(env);
}

/* The largest UDP reply this client takes (RFC 6891 6.2.5): 512 without
 * EDNS, else its size capped by ours, never below 512. */
static size_t udp_limit(const struct query_env *env,
			const struct wire_query *wq)
{
	if (!wq->has_opt || wq->udp_size <= WIRE_UDP_MIN)
		return WIRE_UDP_MIN;
	return wq->udp_size < env->v.edns_size ? wq->udp_size : env->v.edns_size;
}

/* The single exit towards the client: fit to UDP size, then send. */
static void reply(struct query_env *env, const struct query_client *c,
		  const struct wire_query *wq, uint8_t *msg, size_t len)
{
	if (!c->conn && len > udp_limit(env, wq))
		len = wire_truncate(msg, len, udp_limit(env, wq));
	if (len)
		env->io.send(env->io.ctx, c, msg, len);
}

static void reply_error(struct query_env *env, const struct query_client *c,
			const struct wire_query *wq, const uint8_t *pkt,
			unsigned rcode)
{
	size_t n = answer_error(wq, pkt, rcode, env->v.edns_size, env->out,
				sizeof(env->out));
	reply(env, c, wq, env->out, n);
}

static void list_unlink(struct query_env *env, struct query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		env->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		env->tail = q->prev;
	q->prev = q->next = NULL;
}

static struct query *query_get(struct query_env *env)
{
	struct query *q = env->free_list;
	if (env->inflight >= QUERY_MAX_INFLIGHT)
		return NULL;
	if (q)
		env->free_list = q->next;
	else if (!(q = malloc(sizeof(*q))))
		return NULL;
	memset(q, 0, offsetof(struct query, inline_pkt));
	q->env = env;
	env->inflight++;
	return q;
}

/* The one place a relayed query ends. */
static void query_done(struct query *q)
{
	struct query_env *env = q->env;

	if (!q->answered)
		list_unlink(env, q);
	if (q->client.conn)
		env->io.release(env->io.ctx, &q->client);
	if (q->pkt != q->inline_pkt)
		free(q->pkt);
	env->inflight--;
	q->next = env->free_list;
	env->free_list = q;
}

/* Put the client's question and ID back into our copy of its packet, so
 * that error replies echo what the client sent. */
static void restore_client_id(struct query *q)
{
	wire_set16(q->pkt, q->wq.hdr.id);
}

static void on_upstream(struct forward_req *req, enum forward_status st,
			const uint8_t *ans, size_t len)
{
	struct query *q = (struct query *)req;
	struct query_env *env = q->env;

	restore_client_id(q);
	if (q->answered) {
		query_done(q);
		return;
	}
	list_unlink(env, q);
	q->answered = true;
	if (st != FORWARD_OK || len > sizeof(env->out) || len < WIRE_HEADER_LEN) {
		reply_error(env, &q->client, &q->wq, q->pkt, WIRE_SERVFAIL);
		query_done(q);
		return;
	}
	memcpy(env->out, ans, len);
	if (!wire_check_reply(env->out, len, q->wq.qname, q->wq.qname_len,
			      q->wq.qtype, q->wq.qclass)) {
		log_debug("unusable upstream reply, answering SERVFAIL");
		reply_error(env, &q->client, &q->wq, q->pkt, WIRE_SERVFAIL);
		query_done(q);
		return;
	}
	if (env->v.policy &&
	    policy_rebind(env->v.policy, q->group, q->wq.qname,
			  q->wq.qname_len, env->out, len)) {
		/* RFC-less but common: a public name must not point into the
		 * local network (DNS rebinding). */
		log_debug("rebind protection: private address for a public "
			  "name, answering NXDOMAIN");
		reply_error(env, &q->client, &q->wq, q->pkt, WIRE_NXDOMAIN);
		query_done(q);
		return;
	}
	wire_set16(env->out, q->wq.hdr.id);
	/* Newer c-ares rewrites client cookies: never relay a server cookie
	 * that was not made for this client (RFC 7873 5.3). */
	len = wire_strip_edns_option(env->out, len, WIRE_EDNS_COOKIE);
	reply(env, &q->client, &q->wq, env->out, len);
	query_done(q);
}

static void relay(struct query_env *env, const struct query_client *c,
		  const struct wire_query *wq, const uint8_t *pkt, size_t len,
		  size_t group)
{
	struct query *q = query_get(env);

	if (q && len > QUERY_INLINE) {
		q->pkt = malloc(len);
		if (!q->pkt) {
			q->pkt = q->inline_pkt;
			q->answered = true;
			query_done(q);
			q = NULL;
		}
	}
	if (!q) {
		reply_error(env, c, wq, pkt, WIRE_SERVFAIL);
		return;
	}
	if (len <= QUERY_INLINE)
		q->pkt = q->inline_pkt;
	memcpy(q->pkt, pkt, len);
	q->len = len;
	q->client = *c;
	q->wq = *wq;
	q->group = group;
	q->deadline = loop_now_ms() + (uint64_t)env->v.deadline_ms;
	if (c->conn)
		env->io.hold(env->io.ctx, c);
	/* Deadlines are now + one budget, so the new one belongs at the
	 * tail; only a reload that shortened the budget makes it walk. */
	struct query *at = env->tail;
	while (at && at->deadline > q->deadline)
		at = at->prev;
	q->prev = at;
	q->next = at ? at->next : env->head;
	if (q->next)
		q->next->prev = q;
	else
		env->tail = q;
	if (at)
		at->next = q;
	else
		env->head = q;
	/* Fully set up: on_upstream may run inside this call. */
	forward_send(env->v.groups[group], &q->req, q->pkt, len, on_upstream);
}

/* One line per query with -v: client, name, type, what happened. */
static void log_query(const struct query_client *c, const struct wire_query *wq,
		      const char *what, int rcode)
{
	char name[1024], addr[INET6_ADDRSTRLEN] = "?";
	const void *a = c->peer.ss_family == AF_INET6
				? (const void *)&((const struct sockaddr_in6 *)&c->peer)->sin6_addr
				: (const void *)&((const struct sockaddr_in *)&c->peer)->sin_addr;

	if (c->peerlen)
		inet_ntop(c->peer.ss_family, a, addr, sizeof(addr));
	wire_name_to_text(wq->qname, wq->qname_len, name, sizeof(name));
	if (rcode >= 0)
		log_debug("%s %s %s type %u: %s, rcode %d", c->conn ? "tcp" : "udp",
			  addr, name, wq->qtype, what, rcode);
	else
		log_debug("%s %s %s type %u: %s", c->conn ? "tcp" : "udp", addr,
			  name, wq->qtype, what);
}

void query_handle(struct query_env *env, const struct query_client *c,
		  const uint8_t *pkt, size_t len)
{
	struct wire_query wq;
	size_t n;

	switch (wire_parse_query(pkt, len, &wq)) {
	case WIRE_DROP:
		return;
	case WIRE_BAD_FORMAT:
		reply_error(env, c, &wq, pkt, WIRE_FORMERR);
		return;
	case WIRE_BAD_OPCODE:
		reply_error(env, c, &wq, pkt, WIRE_NOTIMP);
		return;
	case WIRE_BAD_VERSION:
		reply_error(env, c, &wq, pkt, WIRE_BADVERS);
		return;
	case WIRE_OK:
		break;
	}
	if (env->v.zone &&
	    (n = answer_local(env->v.zone, &wq, pkt, env->v.edns_size, env->out,
			      sizeof(env->out)))) {
		if (log_verbose())
			log_query(c, &wq, "local",
				  WIRE_RCODE(wire_get16(env->out + 2)));
		reply(env, c, &wq, env->out, n);
		return;
	}
	struct policy_decision d = {POLICY_FORWARD, 0};
	if (env->v.policy)
		policy_decide(env->v.policy, wq.qname, wq.qname_len, &d);
	switch (d.action) {
	case POLICY_REFUSE:
		if (log_verbose())
			log_query(c, &wq, "refused by forward rule", WIRE_REFUSED);
		reply_error(env, c, &wq, pkt, WIRE_REFUSED);
		return;
	case POLICY_PRIVATE:
		if (log_verbose())
			log_query(c, &wq, "private name, not forwarded",
				  WIRE_NXDOMAIN);
		reply_error(env, c, &wq, pkt, WIRE_NXDOMAIN);
		return;
	case POLICY_FORWARD:
		break;
	}
	if (log_verbose())
		log_query(c, &wq, d.group ? "forward rule" : "forward", -1);
	relay(env, c, &wq, pkt, len, d.group);
}

void query_expire(struct query_env *env, uint64_t now_ms)
{
	while (env->head && env->head->deadline <= now_ms) {
		struct query *q = env->head;
		list_unlink(env, q);
		q->answered = true;
		restore_client_id(q);
		reply_error(env, &q->client, &q->wq, q->pkt, WIRE_SERVFAIL);
	}
}

int query_next_deadline_ms(const struct query_env *env, uint64_t now_ms)
{
	if (!env->head)
		return -1;
	if (env->head->deadline <= now_ms)
		return 0;
	return (int)(env->head->deadline - now_ms);
}
