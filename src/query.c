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
#include "cache.h"
#include "conf.h"
#include "forward.h"
#include "lists.h"
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
	struct chase *chase;    /* a local CNAME chain resolved upstream */
	uint8_t inline_pkt[QUERY_INLINE];
};

/* A local CNAME chain whose target is resolved upstream: the local part
 * of the reply waits here for the upstream part (heap; this path is not
 * the hot one). */
struct chase {
	uint8_t target[WIRE_NAME_MAX];
	size_t target_len;
	uint16_t ancount;
	size_t body_len;
	uint8_t *upstream_pkt; /* the query for the target */
	size_t upstream_len;
	uint8_t body[];        /* header, question, local CNAMEs */
};

struct query_env {
	struct query_view v;
	struct query_stats st;
	struct query_io io;
	size_t inflight;
	struct query *free_list;
	struct query *head, *tail; /* waiting for upstream, by deadline */
	uint8_t out[WIRE_MSG_MAX]; /* replies are built here */
	uint8_t merge[WIRE_MSG_MAX]; /* local + upstream parts of a chase */
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
	if (!c->conn && len > udp_limit(env, wq)) {
		len = wire_truncate(msg, len, udp_limit(env, wq));
		env->st.truncated++;
	}
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

/* The block verdict for name; counts a hit for the deciding source,
 * allow entries included. */
static bool is_blocked(struct query_env *env, const uint8_t *name,
		       size_t len)
{
	unsigned src;
	enum lists_verdict v = lists_match_source(env->v.blocks, name, len,
						  &src);
	if (v != LISTS_NONE)
		env->v.block_hits[src]++;
	return v == LISTS_BLOCKED;
}

/* NXDOMAIN with a SOA, so that clients cache it (RFC 2308 5): for names
 * kept private and for rebind protection. */
static void reply_nxdomain(struct query_env *env, const struct query_client *c,
			   const struct wire_query *wq, const uint8_t *pkt,
			   uint32_t ttl)
{
	struct answer_block nx = {.mode = CONF_BLOCK_NXDOMAIN, .ttl = ttl};
	size_t n = answer_blocked(&nx, wq, pkt, env->v.edns_size, env->out,
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
	if (q->chase) {
		free(q->chase->upstream_pkt);
		free(q->chase);
	}
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

/* Does a CNAME in the reply's answer section point at a blocked name?
 * The deciding source goes to *src. */
static bool cname_blocked(const struct lists *blocks, const uint8_t *msg,
			  size_t len, unsigned *src)
{
	struct wire_rrs it;
	struct wire_rr rr;
	uint8_t target[WIRE_NAME_MAX];

	if (!wire_rrs_begin(&it, msg, len) || it.hdr.qdcount != 1)
		return false;
	while (wire_rrs_next(&it, &rr) && rr.section == WIRE_ANSWER) {
		if (rr.type != WIRE_T_CNAME)
			continue;
		size_t rd = rr.rdata;
		int n = wire_read_name(msg, len, &rd, target);
		if (n > 0 && lists_match_source(blocks, target, (size_t)n,
						src) == LISTS_BLOCKED)
			return true;
	}
	return false;
}

static bool group_is_current(const struct query_env *env,
			     const struct query *q)
{
	return q->group < env->v.ngroups &&
	       env->v.groups[q->group] == q->req.fw;
}

/*
 * The reply to a chased CNAME target: our local chain, then the upstream
 * answer and authority records (names decompressed, since they move), the
 * upstream rcode (RFC 6604: the last name's), and our OPT.  AA goes: part
 * of the answer is not ours.
 */
static size_t merge_chase(struct query_env *env, struct query *q, size_t len)
{
	const struct chase *ch = q->chase;
	struct wire_buf b = {env->merge, 0, sizeof(env->merge), false};
	struct wire_header h;
	size_t off = WIRE_HEADER_LEN;
	unsigned rcode;

	wire_read_header(env->out, len, &h);
	rcode = WIRE_RCODE(h.flags);
	wire_put_bytes(&b, ch->body, ch->body_len);
	if (wire_read_name(env->out, len, &off, NULL) < 0 || len - off < 4)
		return answer_error(&q->wq, q->pkt, WIRE_SERVFAIL,
				    env->v.edns_size, env->merge,
				    sizeof(env->merge));
	off += 4;
	unsigned an = 0, ns = 0;
	for (unsigned i = 0; i < (unsigned)h.ancount + h.nscount; i++) {
		if (!wire_copy_rr(env->out, len, &off, &b))
			break; /* keep what was whole */
		if (i < h.ancount)
			an++;
		else
			ns++;
	}
	if (q->wq.has_opt)
		answer_opt(&b, &q->wq, rcode, env->v.edns_size);
	if (b.overflow)
		return answer_error(&q->wq, q->pkt, WIRE_SERVFAIL,
				    env->v.edns_size, env->merge,
				    sizeof(env->merge));
	uint16_t flags = wire_get16(env->merge + 2);
	flags = (uint16_t)((flags & ~(WIRE_AA | 0xfu)) | rcode);
	wire_set16(env->merge + 2, flags);
	wire_set16(env->merge + 6, (uint16_t)(ch->ancount + an));
	wire_set16(env->merge + 8, (uint16_t)ns);
	wire_set16(env->merge + 10, q->wq.has_opt ? 1 : 0);
	return b.len;
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
		env->st.servfail++;
		reply_error(env, &q->client, &q->wq, q->pkt, WIRE_SERVFAIL);
		query_done(q);
		return;
	}
	memcpy(env->out, ans, len);
	const uint8_t *qname = q->chase ? q->chase->target : q->wq.qname;
	size_t qname_len = q->chase ? q->chase->target_len : q->wq.qname_len;
	if (!wire_check_reply(env->out, len, qname, qname_len, q->wq.qtype,
			      q->wq.qclass)) {
		log_debug("unusable upstream reply, answering SERVFAIL");
		env->st.servfail++;
		reply_error(env, &q->client, &q->wq, q->pkt, WIRE_SERVFAIL);
		query_done(q);
		return;
	}
	if (env->v.policy &&
	    policy_rebind(env->v.policy, q->group, qname, qname_len, env->out,
			  len)) {
		/* RFC-less but common: a public name must not point into the
		 * local network (DNS rebinding). */
		log_debug("rebind protection: private address for a public "
			  "name, answering NXDOMAIN");
		env->st.rebind++;
		reply_nxdomain(env, &q->client, &q->wq, q->pkt, 60);
		query_done(q);
		return;
	}
	unsigned src;
	if (env->v.blocks && env->v.block_cname &&
	    cname_blocked(env->v.blocks, env->out, len, &src)) {
		/* Deep CNAME blocking: trackers hidden behind a CNAME of a
		 * first-party name. */
		env->st.blocked++;
		env->v.block_hits[src]++;
		log_debug("CNAME chain reaches a blocked name");
		len = answer_blocked(&env->v.block, &q->wq, q->pkt,
				     env->v.edns_size, env->out,
				     sizeof(env->out));
		reply(env, &q->client, &q->wq, env->out, len);
		query_done(q);
		return;
	}
	env->st.answered++;
	/* Our OPT size; no server cookie that was made for us (newer
	 * c-ares rewrites client cookies). */
	len = wire_relay_opt(env->out, len, env->v.edns_size);
	/* Not from a channel a reload has replaced: the cache was emptied
	 * for the new servers. */
	if (env->v.cache && !q->chase && group_is_current(env, q)) {
		uint8_t key[CACHE_KEY_MAX];
		size_t klen = cache_key(key, &q->wq, q->group);
		cache_store(env->v.cache, key, klen, env->out, len,
			    loop_now_ms());
	}
	if (q->chase) {
		len = merge_chase(env, q, len);
		reply(env, &q->client, &q->wq, env->merge, len);
		query_done(q);
		return;
	}
	wire_set16(env->out, q->wq.hdr.id);
	reply(env, &q->client, &q->wq, env->out, len);
	query_done(q);
}

/* Send a query upstream to group: the client's packet, or for a chase
 * (owned from here on) the query for the chain's target. */
static void relay(struct query_env *env, const struct query_client *c,
		  const struct wire_query *wq, const uint8_t *pkt, size_t len,
		  size_t group, struct chase *ch)
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
	env->st.forwarded++;
	if (!q) {
		env->st.servfail++;
		if (ch) {
			free(ch->upstream_pkt);
			free(ch);
		}
		reply_error(env, c, wq, pkt, WIRE_SERVFAIL);
		return;
	}
	q->chase = ch;
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
	if (ch)
		forward_send(env->v.groups[group], &q->req, ch->upstream_pkt,
			     ch->upstream_len, on_upstream);
	else
		forward_send(env->v.groups[group], &q->req, q->pkt, len,
			     on_upstream);
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

/* Answer from the cache: the client's ID and spelling, TTLs aged, and
 * the block list consulted again (it may have changed since). */
static bool from_cache(struct query_env *env, const struct query_client *c,
		       const struct wire_query *wq, size_t group)
{
	uint8_t key[CACHE_KEY_MAX];
	size_t klen = cache_key(key, wq, group);
	size_t n = cache_lookup(env->v.cache, key, klen, loop_now_ms(),
				env->out, sizeof(env->out));

	if (n == 0 || n < WIRE_HEADER_LEN + wq->qname_len)
		return false;
	/* The block lists and rebind settings may have changed since the
	 * answer was stored: the upstream path decides those. */
	unsigned src;
	if (env->v.blocks && env->v.block_cname &&
	    cname_blocked(env->v.blocks, env->out, n, &src))
		return false;
	if (env->v.policy && policy_rebind(env->v.policy, group, wq->qname,
					   wq->qname_len, env->out, n))
		return false;
	wire_set16(env->out, wq->hdr.id);
	memcpy(env->out + WIRE_HEADER_LEN, wq->qname, wq->qname_len);
	env->st.cached++;
	if (log_verbose())
		log_query(c, wq, "cache", WIRE_RCODE(wire_get16(env->out + 2)));
	reply(env, c, wq, env->out, n);
	return true;
}

/*
 * A local CNAME chain ends at a name without local data: ask upstream for
 * that name (same type, the client's RD/CD and OPT) and answer with both
 * parts.  Returns false when the chain should be answered as it is: the
 * target is refused or private, or memory ran out.
 */
static bool start_chase(struct query_env *env, const struct query_client *c,
			const struct wire_query *wq, const uint8_t *pkt,
			size_t len, const struct answer_chase *ac)
{
	struct policy_decision d = {POLICY_FORWARD, 0};

	if (env->v.policy)
		policy_decide(env->v.policy, ac->target, ac->target_len,
			      wq->qtype, &d);
	if (env->v.blocks && is_blocked(env, ac->target, ac->target_len)) {
		size_t n = answer_blocked(&env->v.block, wq, pkt,
					  env->v.edns_size, env->out,
					  sizeof(env->out));
		env->st.blocked++;
		reply(env, c, wq, env->out, n);
		return true;
	}
	if (d.action != POLICY_FORWARD)
		return false;
	struct chase *ch = malloc(sizeof(*ch) + ac->body_len);
	size_t ulen = WIRE_HEADER_LEN + ac->target_len + 4 +
		      (wq->has_opt ? wq->opt_len : 0);
	uint8_t *u = malloc(ulen);
	if (!ch || !u) {
		free(ch);
		free(u);
		return false;
	}
	memcpy(ch->target, ac->target, ac->target_len);
	ch->target_len = ac->target_len;
	ch->ancount = ac->ancount;
	ch->body_len = ac->body_len;
	memcpy(ch->body, env->out, ac->body_len);
	ch->upstream_pkt = u;
	ch->upstream_len = ulen;
	struct wire_buf b = {u, 0, ulen, false};
	wire_put16(&b, 0); /* the forwarder writes its own ID */
	wire_put16(&b, wq->hdr.flags & (WIRE_RD | WIRE_CD));
	wire_put16(&b, 1);
	wire_put16(&b, 0);
	wire_put16(&b, 0);
	wire_put16(&b, wq->has_opt ? 1 : 0);
	wire_put_bytes(&b, ac->target, ac->target_len);
	wire_put16(&b, wq->qtype);
	wire_put16(&b, wq->qclass);
	if (wq->has_opt)
		wire_put_bytes(&b, pkt + wq->opt_off, wq->opt_len);
	if (log_verbose())
		log_query(c, wq, "local CNAME, target upstream", -1);
	relay(env, c, wq, pkt, len, d.group, ch);
	return true;
}

void query_handle(struct query_env *env, const struct query_client *c,
		  const uint8_t *pkt, size_t len)
{
	struct wire_query wq;
	size_t n;

	env->st.queries++;
	switch (wire_parse_query(pkt, len, &wq)) {
	case WIRE_DROP:
		env->st.dropped++;
		return;
	case WIRE_BAD_FORMAT:
		env->st.malformed++;
		reply_error(env, c, &wq, pkt, WIRE_FORMERR);
		return;
	case WIRE_BAD_OPCODE:
		env->st.malformed++;
		reply_error(env, c, &wq, pkt, WIRE_NOTIMP);
		return;
	case WIRE_BAD_VERSION:
		env->st.malformed++;
		reply_error(env, c, &wq, pkt, WIRE_BADVERS);
		return;
	case WIRE_OK:
		break;
	}
	/* RFC-less but universal: an open resolver is an amplifier. */
	if (env->v.policy && c->peerlen &&
	    !policy_client_allowed(env->v.policy, &c->peer)) {
		env->st.refused++;
		if (log_verbose())
			log_query(c, &wq, "client not in access.allow",
				  WIRE_REFUSED);
		reply_error(env, c, &wq, pkt, WIRE_REFUSED);
		return;
	}
	struct answer_chase chase = {0};
	if (env->v.zone &&
	    (n = answer_local(env->v.zone, &wq, pkt, env->v.edns_size, env->out,
			      sizeof(env->out), &chase))) {
		if (chase.target && start_chase(env, c, &wq, pkt, len, &chase))
			return;
		env->st.local++;
		if (log_verbose())
			log_query(c, &wq, "local",
				  WIRE_RCODE(wire_get16(env->out + 2)));
		reply(env, c, &wq, env->out, n);
		return;
	}
	if (env->v.blocks && is_blocked(env, wq.qname, wq.qname_len)) {
		env->st.blocked++;
		if (log_verbose())
			log_query(c, &wq, "blocked", -1);
		n = answer_blocked(&env->v.block, &wq, pkt, env->v.edns_size,
				   env->out, sizeof(env->out));
		reply(env, c, &wq, env->out, n);
		return;
	}
	struct policy_decision d = {POLICY_FORWARD, 0};
	if (env->v.policy)
		policy_decide(env->v.policy, wq.qname, wq.qname_len, wq.qtype,
			      &d);
	switch (d.action) {
	case POLICY_REFUSE:
		env->st.refused++;
		if (log_verbose())
			log_query(c, &wq, "refused by forward rule", WIRE_REFUSED);
		reply_error(env, c, &wq, pkt, WIRE_REFUSED);
		return;
	case POLICY_PRIVATE:
		env->st.private_nx++;
		if (log_verbose())
			log_query(c, &wq, "private name, not forwarded",
				  WIRE_NXDOMAIN);
		reply_nxdomain(env, c, &wq, pkt, 300);
		return;
	case POLICY_FORWARD:
		break;
	}
	if (env->v.cache && from_cache(env, c, &wq, d.group))
		return;
	if (log_verbose())
		log_query(c, &wq, d.group ? "forward rule" : "forward", -1);
	relay(env, c, &wq, pkt, len, d.group, NULL);
}

void query_expire(struct query_env *env, uint64_t now_ms)
{
	while (env->head && env->head->deadline <= now_ms) {
		struct query *q = env->head;
		list_unlink(env, q);
		q->answered = true;
		restore_client_id(q);
		env->st.servfail++;
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

const struct query_stats *query_get_stats(const struct query_env *env)
{
	return &env->st;
}
