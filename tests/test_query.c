/*
 * test_query.c - unit tests for the query pipeline (src/query.c) on a
 * real loop with a fake clock, a fake upstream backend and a fake server.
 *
 * The fake upstream records each request and its packet; the test
 * completes it later (never inside send, as upstream.h requires) with an
 * answer or a failure.  The fake server records every reply.  Time moves
 * only when a test moves it, and loop_run_once(loop, 0) then fires what
 * is due.  Snapshots are built from files in a temporary folder.
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/cache.h"
#include "../src/conf.h"
#include "../src/loop.h"
#include "../src/query.h"
#include "../src/snapshot.h"
#include "../src/upstream.h"
#include "../src/wire.h"
#include "fixture.h"
#include "tap.h"

/* ---- the fake server: replies recorded ---- */

#define MAX_SENT 256

struct sent {
	uint16_t port; /* which client */
	size_t len;
	uint8_t msg[1500];
};

/* The replies, the last MAX_SENT of them: reply k is s[k % MAX_SENT]. */
struct fake_io {
	struct sent s[MAX_SENT];
	size_t n;
	unsigned holds, releases;
};

static void io_send(void *ctx, const struct query_client *c,
		    const uint8_t *msg, size_t len)
{
	struct fake_io *io = ctx;
	if (len > sizeof(io->s[0].msg))
		abort();
	struct sent *s = &io->s[io->n++ % MAX_SENT];
	s->port = ntohs(((const struct sockaddr_in *)&c->peer)->sin_port);
	s->len = len;
	memcpy(s->msg, msg, len);
}

static void io_hold(void *ctx, const struct query_client *c)
{
	(void)c;
	((struct fake_io *)ctx)->holds++;
}

static void io_release(void *ctx, const struct query_client *c)
{
	(void)c;
	((struct fake_io *)ctx)->releases++;
}

/* ---- the fake upstream backend ---- */

struct fake_req {
	struct upstream *up;
	struct upstream_req *req;
	bool live;
	size_t len;
	uint8_t pkt[1500];
};

struct fake_backend {
	struct fake_req *r;
	size_t n, cap;    /* requests ever sent */
	unsigned made, freed;
	uint16_t next_id;
	char last_server[sizeof(((struct conf_addr *)0)->text)];
};

struct fake_up {
	struct upstream base;
	struct fake_backend *b;
};

static void fu_send(struct upstream *u, struct upstream_req *req,
		    uint8_t *pkt, size_t len)
{
	struct fake_backend *b = ((struct fake_up *)u)->b;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct fake_req *nr = realloc(b->r, cap * sizeof(*nr));
		if (!nr)
			abort();
		b->r = nr;
		b->cap = cap;
	}
	if (len > sizeof(b->r[0].pkt))
		abort();
	struct fake_req *r = &b->r[b->n++];
	req->id = b->next_id++;
	wire_set16(pkt, req->id);
	r->up = u;
	r->req = req;
	r->live = true;
	r->len = len;
	memcpy(r->pkt, pkt, len);
}

static void fu_cancel(struct upstream *u, struct upstream_req *req)
{
	(void)u;
	req->cancelled = true;
}

static size_t fu_pending(const struct upstream *u)
{
	const struct fake_backend *b = ((const struct fake_up *)u)->b;
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		n += b->r[i].live && b->r[i].up == u;
	return n;
}

static void fu_free(struct upstream *u)
{
	struct fake_backend *b = ((struct fake_up *)u)->b;
	for (size_t i = 0; i < b->n; i++)
		if (b->r[i].live && b->r[i].up == u) {
			b->r[i].live = false;
			b->r[i].req->done(b->r[i].req, UPSTREAM_CANCELLED,
					  NULL, 0);
		}
	b->freed++;
	free(u);
}

static const struct upstream_ops fake_ops = {"fake", fu_send, fu_cancel,
					     fu_pending, fu_free};

static struct upstream *fb_make(void *ctx, struct loop *loop,
				const struct snapshot *snap,
				const struct conf_addr *servers, size_t n,
				int timeout_ms, int tries, char *err,
				size_t errlen)
{
	struct fake_backend *b = ctx;
	struct fake_up *u = calloc(1, sizeof(*u));
	(void)loop, (void)snap, (void)timeout_ms, (void)tries;
	if (!u || n == 0 || strstr(servers[0].text, ":11")) {
		snprintf(err, errlen, "fake: no servers");
		free(u);
		return NULL;
	}
	u->base.ops = &fake_ops;
	u->b = b;
	snprintf(b->last_server, sizeof(b->last_server), "%s",
		 servers[0].text);
	b->made++;
	return &u->base;
}

/* Complete request i: with a reply (status UPSTREAM_OK) or without. */
static void fb_complete(struct fake_backend *b, size_t i,
			enum upstream_status st, const uint8_t *reply,
			size_t len)
{
	if (i >= b->n || !b->r[i].live)
		abort();
	b->r[i].live = false;
	b->r[i].req->done(b->r[i].req, st, reply, len);
}

/* Answer request i with one A record. */
static void fb_answer(struct fake_backend *b, size_t i, uint32_t ttl,
		      const uint8_t addr[4])
{
	uint8_t rep[1500];
	size_t n = fx_answer(b->r[i].pkt, b->r[i].len, rep, sizeof(rep), ttl,
			     addr);
	fb_complete(b, i, UPSTREAM_OK, rep, n);
}

static size_t fb_live(const struct fake_backend *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		n += b->r[i].live;
	return n;
}

/* ---- a rig: loop, clock, cache, pipeline ---- */

struct rig {
	struct fx_dir dir;
	uint64_t now;
	struct loop *loop;
	struct cache *cache;
	struct query_env *env;
	struct fake_io io;
	struct fake_backend be;
	struct snapshot *snap; /* the first one (the env holds it) */
};

static uint64_t fake_clock(void *ctx)
{
	return *(uint64_t *)ctx;
}

static const char zone_text[] =
    "origin = \"home.lab\";\n"
    "ttl = 300;\n"
    "authoritative = true;\n"
    "records = (\n"
    "  { name = \"nas\"; type = \"A\"; data = \"192.168.1.10\"; },\n"
    "  { name = \"ext\"; type = \"CNAME\"; data = \"www.example.com.\"; }\n"
    ");\n";

/* The configuration text: serve_stale seconds, prefetch, the default
 * upstream server. */
static void conf_text_extra(char *buf, size_t cap, int serve_stale,
			    bool prefetch, const char *server, const char *extra)
{
	snprintf(buf, cap,
		 "listen = [\"127.0.0.1:5300\"];\n"
		 "access: { allow = [\"127.0.0.0/8\"]; };\n"
		 "upstream: { servers = [\"%s\"]; timeout_ms = 1000; "
		 "tries = 2; };\n"
		 "zones = [\"home.zone\"];\n"
		 "block: { lists = [\"block.txt\"]; };\n"
		 "cache: { size = 1000; serve_stale = %d; prefetch = %s; };\n"
		 "%s\n",
		 server, serve_stale, prefetch ? "true" : "false", extra);
}

static void conf_text(char *buf, size_t cap, int serve_stale, bool prefetch,
		      const char *server)
{
	conf_text_extra(buf, cap, serve_stale, prefetch, server, "");
}

static struct rig *rig_new_extra(int serve_stale, bool prefetch,
				 const char *extra)
{
	struct rig *r = calloc(1, sizeof(*r));
	char text[1024], err[256];

	if (!r)
		abort();
	fx_dir_init(&r->dir);
	fx_write(&r->dir, "home.zone", zone_text);
	fx_write(&r->dir, "block.txt", "ads.example.net\n");
	conf_text_extra(text, sizeof(text), serve_stale, prefetch, "127.0.0.1:9",
			extra);
	r->snap = fx_snapshot(&r->dir, text, 1);
	r->now = 1000000;
	r->be.next_id = 0x7000;
	struct cache_limits lim = {1000, 0, 86400, 300,
				   (uint32_t)r->snap->cfg->cache_serve_stale};
	struct query_io io = {io_send, io_hold, io_release, &r->io};
	struct query_backend be = {fb_make, NULL, &r->be};
	if (!(r->loop = loop_new()) || !(r->cache = cache_new(&lim)))
		abort();
	loop_set_clock(r->loop, fake_clock, &r->now);
	if (!(r->env = query_env_new(r->loop, &io, r->cache, &be)))
		abort();
	if (!query_env_adopt(r->env, r->snap, err, sizeof(err))) {
		fprintf(stderr, "adopt: %s\n", err);
		abort();
	}
	return r;
}

static struct rig *rig_new(int serve_stale, bool prefetch)
{
	return rig_new_extra(serve_stale, prefetch, "");
}

static void rig_free(struct rig *r)
{
	query_env_free(r->env);
	loop_run_once(r->loop, 0);
	cache_free(r->cache);
	loop_free(r->loop);
	fx_dir_clean(&r->dir);
	free(r->be.r);
	free(r);
}

/* Move the clock on and run what is due. */
static void advance(struct rig *r, uint64_t ms)
{
	r->now += ms;
	loop_run_once(r->loop, 0);
}

/* Client port asks for name/qtype with ID id, over TCP connection conn
 * (NULL: UDP). */
static void ask_on(struct rig *r, void *conn, uint16_t port, uint16_t id,
		   const char *name, uint16_t qtype)
{
	struct query_client c;
	struct sockaddr_in *a = (struct sockaddr_in *)&c.peer;
	uint8_t pkt[512];
	size_t len = fx_query(pkt, sizeof(pkt), id, name, qtype, NULL);

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	c.conn = conn;
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c.peerlen = sizeof(*a);
	c.local_family = AF_UNSPEC;
	query_handle(r->env, &c, pkt, len);
}

static void ask(struct rig *r, uint16_t port, uint16_t id, const char *name,
		uint16_t qtype)
{
	ask_on(r, NULL, port, id, name, qtype);
}

/* A query over UDP from 127.0.0.host. */
static void ask_from(struct rig *r, uint8_t host, uint16_t id,
		     const char *name, uint16_t qtype)
{
	struct query_client c;
	struct sockaddr_in *a = (struct sockaddr_in *)&c.peer;
	uint8_t pkt[512];
	size_t len = fx_query(pkt, sizeof(pkt), id, name, qtype, NULL);

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	a->sin_family = AF_INET;
	a->sin_port = htons(4000);
	a->sin_addr.s_addr = htonl(0x7f000000u | host);
	c.peerlen = sizeof(*a);
	c.local_family = AF_UNSPEC;
	query_handle(r->env, &c, pkt, len);
}

static struct fx_reply last(const struct rig *r)
{
	if (r->io.n == 0)
		return (struct fx_reply){0};
	const struct sent *s = &r->io.s[(r->io.n - 1) % MAX_SENT];
	return fx_read(s->msg, s->len);
}

static struct query_stats stats(const struct rig *r)
{
	struct query_stats st;
	memset(&st, 0, sizeof(st));
	query_env_stats(r->env, &st);
	return st;
}

static const uint8_t ADDR1[4] = {93, 184, 216, 34};
static const uint8_t ADDR2[4] = {93, 184, 216, 35};
static const uint8_t ZERO[4] = {0, 0, 0, 0};
static const uint8_t NAS[4] = {192, 168, 1, 10};

/* ---- the cases ---- */

static void test_local_and_blocked(void)
{
	struct rig *r = rig_new(0, false);

	ask(r, 1001, 0x1111, "nas.home.lab", WIRE_T_A);
	struct fx_reply p = last(r);
	is_int(r->io.n, 1, "local: one reply at once");
	is_int(p.id, 0x1111, "local: the client's ID");
	is_int(p.rcode, WIRE_NOERROR, "local: NOERROR");
	ok(p.ancount == 1 && p.type1 == WIRE_T_A &&
	       memcmp(p.rdata1, NAS, 4) == 0,
	   "local: the zone's A record");
	is_int(r->be.n, 0, "local: nothing sent upstream");

	ask(r, 1002, 0x2222, "x.ads.example.net", WIRE_T_A);
	p = last(r);
	is_int(r->io.n, 2, "blocked: one reply at once");
	is_int(p.id, 0x2222, "blocked: the client's ID");
	ok(p.rcode == WIRE_NOERROR && p.ancount == 1 &&
	       memcmp(p.rdata1, ZERO, 4) == 0,
	   "blocked: the null answer 0.0.0.0");
	is_int(r->be.n, 0, "blocked: nothing sent upstream");
	struct query_stats st = stats(r);
	ok(st.local == 1 && st.blocked == 1 && st.queries == 2,
	   "counters: 2 queries, 1 local, 1 blocked");
	/* Sources: block.domains, block.allow, then the list files. */
	const char *file = r->snap->blocks->src[2].name;
	like(file, "/block.txt", "source 2 is the file");
	is_int(query_env_hits(r->env, file), 1,
	       "the block list has one hit");
	is_int(query_env_hits(r->env, "block.domains"), 0,
	       "block.domains has none");
	rig_free(r);
}

static void test_forward(void)
{
	struct rig *r = rig_new(0, false);

	ask(r, 1001, 0x4242, "www.example.com", WIRE_T_A);
	is_int(r->be.n, 1, "forward: one upstream send");
	is_int(r->io.n, 0, "forward: no reply before the upstream answers");
	is_int(query_env_waiting(r->env), 1, "forward: one client waiting");
	ok(wire_get16(r->be.r[0].pkt) == 0x7000,
	   "forward: the upstream packet carries the backend's ID");
	fb_answer(&r->be, 0, 300, ADDR1);
	struct fx_reply p = last(r);
	is_int(r->io.n, 1, "forward: one reply");
	is_int(p.id, 0x4242, "forward: the client's ID is restored");
	ok(p.rcode == WIRE_NOERROR && p.ancount == 1 &&
	       memcmp(p.rdata1, ADDR1, 4) == 0 && p.ttl1 == 300,
	   "forward: the upstream's answer, TTL 300");
	is_int(query_env_waiting(r->env), 0, "forward: nobody waiting");
	is_int(fb_live(&r->be), 0, "forward: nothing pending upstream");

	/* The same question again: from the cache, TTL aged. */
	advance(r, 10000);
	ask(r, 1002, 0x4343, "WWW.example.COM", WIRE_T_A);
	p = last(r);
	is_int(r->be.n, 1, "cache hit: no second upstream send");
	is_int(r->io.n, 2, "cache hit: answered at once");
	ok(p.id == 0x4343 && p.ttl1 == 290 && memcmp(p.rdata1, ADDR1, 4) == 0,
	   "cache hit: own ID, TTL 290 after 10 s");
	uint8_t want[WIRE_NAME_MAX];
	size_t wn = fx_name("WWW.example.COM", want);
	is_mem(p.qname, p.qname_len, want, wn,
	       "cache hit: the client's spelling of the name");

	/* Upstream failure without a stale answer: SERVFAIL. */
	ask(r, 1003, 0x4444, "fail.example.com", WIRE_T_A);
	fb_complete(&r->be, 1, UPSTREAM_FAILED, NULL, 0);
	p = last(r);
	ok(r->io.n == 3 && p.id == 0x4444 && p.rcode == WIRE_SERVFAIL,
	   "upstream failure: SERVFAIL with the client's ID");
	rig_free(r);
}

/* A spelling of www.example.org that differs per i. */
static void spelling(unsigned i, char *out)
{
	const char *base = "www.example.org";
	size_t k = 0;
	for (size_t j = 0; base[j]; j++) {
		char ch = base[j];
		if (ch != '.' && (i >> (k++ % 5) & 1))
			ch = (char)(ch - 'a' + 'A');
		out[j] = ch;
	}
	out[strlen(base)] = '\0';
}

static void test_shared_inflight(void)
{
	struct rig *r = rig_new(0, false);
	char names[30][32];

	for (unsigned i = 0; i < 30; i++) {
		spelling(i * 7 + 1, names[i]);
		ask(r, (uint16_t)(2000 + i), (uint16_t)(100 + i), names[i],
		    WIRE_T_A);
	}
	is_int(r->be.n, 1, "30 identical queries: one upstream send");
	is_int(r->io.n, 0, "30 identical queries: nobody answered yet");
	is_int(query_env_waiting(r->env), 30, "30 clients waiting");
	fb_answer(&r->be, 0, 300, ADDR1);
	is_int(r->io.n, 30, "30 replies");
	unsigned good = 0;
	for (size_t k = 0; k < r->io.n; k++) {
		struct fx_reply p = fx_read(r->io.s[k].msg, r->io.s[k].len);
		unsigned i = r->io.s[k].port - 2000u;
		uint8_t want[WIRE_NAME_MAX];
		size_t wn = i < 30 ? fx_name(names[i], want) : 0;
		if (i < 30 && p.id == 100 + i && p.rcode == WIRE_NOERROR &&
		    p.qname_len == wn && memcmp(p.qname, want, wn) == 0 &&
		    memcmp(p.rdata1, ADDR1, 4) == 0)
			good++;
		else
			diag("reply %zu to port %u: id %u", k,
			     r->io.s[k].port, p.id);
	}
	is_int(good, 30, "each reply has its client's ID and letter case");
	struct query_stats st = stats(r);
	ok(st.forwarded == 30 && st.joined == 29 && st.answered == 30,
	   "counters: 30 forwarded, 29 joined, 30 answered");
	rig_free(r);
}

static void test_max_waiters(void)
{
	struct rig *r = rig_new(0, false);

	ask(r, 3000, 1, "flood.example.com", WIRE_T_A);
	for (unsigned i = 0; i < QUERY_MAX_WAITERS; i++)
		ask(r, (uint16_t)(3001 + i), (uint16_t)(2 + i),
		    "flood.example.com", WIRE_T_A);
	is_int(r->io.n, 0, "leader and 64 waiters: no reply yet");
	ask(r, 4000, 0x6565, "flood.example.com", WIRE_T_A);
	struct fx_reply p = last(r);
	ok(r->io.n == 1 && p.id == 0x6565 && p.rcode == WIRE_SERVFAIL &&
	       r->io.s[0].port == 4000,
	   "the 65th waiter gets SERVFAIL at once");
	is_int(r->be.n, 1, "still one upstream send");
	fb_answer(&r->be, 0, 60, ADDR1);
	is_int(r->io.n, 66, "the leader and 64 waiters get the answer");
	unsigned good = 0;
	for (size_t k = 1; k < r->io.n; k++) {
		struct fx_reply q = fx_read(r->io.s[k].msg, r->io.s[k].len);
		good += q.rcode == WIRE_NOERROR &&
			q.id == r->io.s[k].port - 3000u + 1;
	}
	is_int(good, 65, "  each NOERROR with its own ID");
	rig_free(r);
}

static void stale_setup(struct rig *r, const char *name);

/* Past the waiter bound, an expired answer at hand is served rather
 * than SERVFAIL. */
static void test_max_waiters_stale(void)
{
	struct rig *r = rig_new(3600, false);

	stale_setup(r, "flood2.example.com");
	size_t before = r->io.n;
	ask(r, 3000, 1, "flood2.example.com", WIRE_T_A);
	for (unsigned i = 0; i < QUERY_MAX_WAITERS; i++)
		ask(r, (uint16_t)(3001 + i), (uint16_t)(2 + i),
		    "flood2.example.com", WIRE_T_A);
	ask(r, 4000, 0x6566, "flood2.example.com", WIRE_T_A);
	struct fx_reply p = last(r);
	ok(r->io.n == before + 1 && p.id == 0x6566 &&
		   p.rcode == WIRE_NOERROR && p.ttl1 == QUERY_STALE_TTL,
	   "the 65th waiter, stale answer at hand: served stale (TTL 30)");
	rig_free(r);
}

static void test_deadline(void)
{
	struct rig *r = rig_new(0, false);
	uint64_t budget = (uint64_t)r->snap->deadline_ms;

	is_int(budget, 2000, "deadline: timeout_ms * tries = 2000 ms");
	ask(r, 1001, 0xd00d, "slow.example.com", WIRE_T_A);
	ask(r, 1002, 0xd00e, "slow.example.com", WIRE_T_A);
	advance(r, budget - 1);
	is_int(r->io.n, 0, "deadline: nothing 1 ms before it");
	advance(r, 1);
	is_int(r->io.n, 2, "deadline: leader and waiter answered at it");
	struct fx_reply a = fx_read(r->io.s[0].msg, r->io.s[0].len);
	struct fx_reply b = fx_read(r->io.s[1].msg, r->io.s[1].len);
	ok(a.rcode == WIRE_SERVFAIL && b.rcode == WIRE_SERVFAIL,
	   "deadline: SERVFAIL");
	ok((a.id == 0xd00d && b.id == 0xd00e) ||
	       (a.id == 0xd00e && b.id == 0xd00d),
	   "deadline: each with its client's ID");
	is_int(query_env_waiting(r->env), 0, "deadline: nobody waiting");
	fb_answer(&r->be, 0, 300, ADDR1);
	is_int(r->io.n, 2, "a late upstream answer sends nothing more");
	ask(r, 1003, 0xd00f, "slow.example.com", WIRE_T_A);
	ok(r->io.n == 3 && r->be.n == 1 && last(r).id == 0xd00f &&
	       last(r).ttl1 == 300,
	   "but it was cached: the next query is a hit");
	rig_free(r);
}

/* Cache name with TTL 1 and let it expire by 2 s. */
static void stale_setup(struct rig *r, const char *name)
{
	ask(r, 1000, 0x0101, name, WIRE_T_A);
	fb_answer(&r->be, r->be.n - 1, 1, ADDR1);
	advance(r, 2000);
}

static void test_serve_stale(void)
{
	struct rig *r = rig_new(3600, false);

	stale_setup(r, "stale.example.com");
	size_t before = r->io.n, sends = r->be.n;
	ask(r, 1001, 0x5151, "stale.example.com", WIRE_T_A);
	is_int(r->be.n, sends + 1, "expired: asked upstream again");
	is_int(r->io.n, before, "expired: no answer before the upstream's");
	fb_complete(&r->be, r->be.n - 1, UPSTREAM_FAILED, NULL, 0);
	struct fx_reply p = last(r);
	is_int(r->io.n, before + 1, "upstream failed: one reply");
	ok(p.id == 0x5151 && p.rcode == WIRE_NOERROR &&
	       memcmp(p.rdata1, ADDR1, 4) == 0,
	   "upstream failed: the stale answer, client's ID");
	is_int(p.ttl1, QUERY_STALE_TTL, "upstream failed: stale TTL 30");
	is_int(stats(r).stale, 1, "counters: one stale answer");

	/* Off: the same story ends in SERVFAIL. */
	struct rig *o = rig_new(0, false);
	stale_setup(o, "stale.example.com");
	ask(o, 1001, 0x5252, "stale.example.com", WIRE_T_A);
	fb_complete(&o->be, o->be.n - 1, UPSTREAM_FAILED, NULL, 0);
	ok(last(o).id == 0x5252 && last(o).rcode == WIRE_SERVFAIL,
	   "serve_stale = 0: SERVFAIL");
	rig_free(o);
	rig_free(r);
}

/* Build an upstream reply with rcode to request i and complete it. */
static void fb_rcode(struct fake_backend *b, size_t i, unsigned rcode)
{
	uint8_t rep[1500];
	size_t n = fx_answer(b->r[i].pkt, b->r[i].len, rep, sizeof(rep), 60,
			     ADDR2);
	/* No answer record: header and question only. */
	wire_set16(rep + 2, (uint16_t)(WIRE_QR | WIRE_RA | WIRE_RD | rcode));
	wire_set16(rep + 6, 0);
	n -= 16;
	fb_complete(b, i, UPSTREAM_OK, rep, n);
}

/* RFC 8767 4: an upstream reply with an rcode other than NOERROR and
 * NXDOMAIN is a failure to refresh; the stale answer is served. */
static void test_stale_on_servfail(void)
{
	struct rig *r = rig_new(3600, false);

	stale_setup(r, "sf.example.com");
	ask(r, 1001, 0x5f01, "sf.example.com", WIRE_T_A);
	ask(r, 1002, 0x5f02, "sf.example.com", WIRE_T_A);
	size_t before = r->io.n;
	fb_rcode(&r->be, r->be.n - 1, WIRE_SERVFAIL);
	is_int(r->io.n, before + 2, "upstream SERVFAIL: both clients answered");
	unsigned good = 0;
	for (size_t k = before; k < r->io.n; k++) {
		struct fx_reply p = fx_read(r->io.s[k].msg, r->io.s[k].len);
		good += p.rcode == WIRE_NOERROR && p.ttl1 == QUERY_STALE_TTL &&
			memcmp(p.rdata1, ADDR1, 4) == 0 &&
			p.id == 0x5f01 + (r->io.s[k].port - 1001u);
	}
	is_int(good, 2, "upstream SERVFAIL: the stale answer, TTL 30, own IDs");

	/* Without a stale answer the upstream's SERVFAIL goes through. */
	ask(r, 1003, 0x5f03, "nostale.example.com", WIRE_T_A);
	fb_rcode(&r->be, r->be.n - 1, WIRE_SERVFAIL);
	ok(last(r).id == 0x5f03 && last(r).rcode == WIRE_SERVFAIL,
	   "upstream SERVFAIL, nothing stale: SERVFAIL");
	/* NXDOMAIN refreshes: it is passed on, not replaced. */
	stale_setup(r, "nx.example.com");
	ask(r, 1004, 0x5f04, "nx.example.com", WIRE_T_A);
	fb_rcode(&r->be, r->be.n - 1, WIRE_NXDOMAIN);
	ok(last(r).id == 0x5f04 && last(r).rcode == WIRE_NXDOMAIN,
	   "upstream NXDOMAIN: passed on, not the stale answer");
	rig_free(r);
}

/* A reload that shortens the deadline: the new, earlier deadline fires
 * first and the older one still fires at its time. */
static void test_deadline_shrinks(void)
{
	struct rig *r = rig_new(0, false);
	char text[1024], err[256];

	ask(r, 1001, 0xa001, "one.example.com", WIRE_T_A); /* at +2000 */
	conf_text(text, sizeof(text), 0, false, "127.0.0.1:9");
	char *t = strstr(text, "tries = 2");
	t[8] = '1';
	struct snapshot *s2 = fx_snapshot(&r->dir, text, 2);
	is_int(s2->deadline_ms, 1000, "tries = 1: deadline 1000 ms");
	ok(query_env_adopt(r->env, s2, err, sizeof(err)), "adopt it");
	advance(r, 100);
	ask(r, 1002, 0xa002, "two.example.com", WIRE_T_A); /* at +1100 */
	advance(r, 999);
	is_int(r->io.n, 0, "nothing at 1099 ms");
	advance(r, 1);
	ok(r->io.n == 1 && last(r).id == 0xa002 &&
	       last(r).rcode == WIRE_SERVFAIL,
	   "at 1100 ms: the later query's shorter deadline");
	advance(r, 899);
	is_int(r->io.n, 1, "nothing more at 1999 ms");
	advance(r, 1);
	ok(r->io.n == 2 && last(r).id == 0xa001 &&
	       last(r).rcode == WIRE_SERVFAIL,
	   "at 2000 ms: the first query's deadline");
	fb_complete(&r->be, 0, UPSTREAM_FAILED, NULL, 0);
	fb_complete(&r->be, 1, UPSTREAM_FAILED, NULL, 0);
	is_int(r->io.n, 2, "the late failures send nothing");
	rig_free(r);
}

/* Past serve_stale seconds after expiry nothing stale is left. */
static void test_stale_window(void)
{
	struct rig *r = rig_new(3600, false);

	stale_setup(r, "old.example.com"); /* expired 1 s ago */
	advance(r, 3600 * 1000);
	ask(r, 1001, 0x3601, "old.example.com", WIRE_T_A);
	fb_complete(&r->be, r->be.n - 1, UPSTREAM_FAILED, NULL, 0);
	ok(last(r).id == 0x3601 && last(r).rcode == WIRE_SERVFAIL,
	   "3601 s past expiry (serve_stale 3600): SERVFAIL");
	rig_free(r);
}

/* Rebind protection: a public name with a private address becomes
 * NXDOMAIN and is not cached. */
static void test_rebind(void)
{
	static const uint8_t PRIV[4] = {10, 0, 0, 1};
	struct rig *r = rig_new(0, false);

	ask(r, 1001, 0x0b01, "evil.example.com", WIRE_T_A);
	fb_answer(&r->be, 0, 300, PRIV);
	ok(last(r).id == 0x0b01 && last(r).rcode == WIRE_NXDOMAIN &&
	       last(r).ancount == 0,
	   "private address for a public name: NXDOMAIN, no address");
	ask(r, 1002, 0x0b02, "evil.example.com", WIRE_T_A);
	is_int(r->be.n, 2, "  and not cached: asked upstream again");
	fb_answer(&r->be, 1, 300, PRIV);
	is_int(stats(r).rebind, 2, "counters: two rebind answers");
	rig_free(r);
}

/* Deep CNAME blocking: an upstream answer whose CNAME points at a
 * blocked name gets the blocking answer. */
/* The reply to request i: a CNAME to t.ads.example.net (blocked by
 * block.txt), then its A record; its length. */
static size_t cname_reply(struct rig *r, size_t i, uint8_t *rep, size_t cap)
{
	uint8_t target[WIRE_NAME_MAX];
	size_t tn = fx_name("t.ads.example.net", target);
	struct wire_query q;

	if (wire_parse_query(r->be.r[i].pkt, r->be.r[i].len, &q) != WIRE_OK)
		abort();
	struct wire_buf b = {rep, 0, cap, false};
	wire_put16(&b, q.hdr.id);
	wire_put16(&b, WIRE_QR | WIRE_RA | WIRE_RD);
	wire_put16(&b, 1);
	wire_put16(&b, 2);
	wire_put16(&b, 0);
	wire_put16(&b, 0);
	wire_put_bytes(&b, q.qname, q.qname_len);
	wire_put16(&b, WIRE_T_A);
	wire_put16(&b, WIRE_CLASS_IN);
	wire_put16(&b, 0xc00c);
	wire_put16(&b, WIRE_T_CNAME);
	wire_put16(&b, WIRE_CLASS_IN);
	wire_put32(&b, 300);
	wire_put16(&b, (uint16_t)tn);
	wire_put_bytes(&b, target, tn);
	wire_put_bytes(&b, target, tn);
	wire_put16(&b, WIRE_T_A);
	wire_put16(&b, WIRE_CLASS_IN);
	wire_put32(&b, 300);
	wire_put16(&b, 4);
	wire_put_bytes(&b, ADDR1, 4);
	return b.len;
}

static void test_cname_blocked(void)
{
	struct rig *r = rig_new(0, false);
	uint8_t rep[1500];

	ask(r, 1001, 0x0c01, "shop.example.com", WIRE_T_A);
	size_t n = cname_reply(r, 0, rep, sizeof(rep));
	fb_complete(&r->be, 0, UPSTREAM_OK, rep, n);
	struct fx_reply p = last(r);
	ok(r->io.n == 1 && p.id == 0x0c01 && p.ancount == 1 &&
	       p.type1 == WIRE_T_A && memcmp(p.rdata1, ZERO, 4) == 0,
	   "CNAME to a blocked name: the blocking answer 0.0.0.0");
	is_int(stats(r).blocked, 1, "counters: one blocked");
	rig_free(r);
}

/*
 * Two clients of client groups with other lists wait for one upstream
 * query (same upstream, same key): each is judged by its own group's
 * lists, and the answer cached for one serves the other as its group
 * allows.
 */
static void test_group_waiters(void)
{
	struct rig *r = rig_new_extra(
	    0, false,
	    "clients = ( { name = \"open\"; match = [\"127.0.0.2\"];\n"
	    "  block: { lists = []; answer = \"nxdomain\"; }; } );");
	uint8_t rep[1500];
	uint64_t q0 = 0, b0 = 0, q1 = 0, b1 = 0;

	ask_from(r, 1, 0x0d01, "shop.example.com", WIRE_T_A);
	ask_from(r, 2, 0x0d02, "shop.example.com", WIRE_T_A);
	is_int(r->be.n, 1, "client groups: one upstream query for both");
	size_t n = cname_reply(r, 0, rep, sizeof(rep));
	fb_complete(&r->be, 0, UPSTREAM_OK, rep, n);
	struct fx_reply a = fx_read(r->io.s[0].msg, r->io.s[0].len);
	struct fx_reply b = fx_read(r->io.s[1].msg, r->io.s[1].len);
	ok(r->io.n == 2 && a.id == 0x0d01 && a.ancount == 1 &&
	       memcmp(a.rdata1, ZERO, 4) == 0,
	   "  the default client: blocked by its list");
	ok(b.id == 0x0d02 && b.ancount == 2 && b.type1 == WIRE_T_CNAME,
	   "  the other group's client: the chain, its group blocks nothing");
	ask_from(r, 2, 0x0d03, "shop.example.com", WIRE_T_A);
	is_int(stats(r).cached, 1, "  a cache hit for the open group");
	ask_from(r, 1, 0x0d04, "shop.example.com", WIRE_T_A);
	is_int(r->be.n, 2, "  not for the default one: asked upstream anew");
	n = cname_reply(r, 1, rep, sizeof(rep));
	fb_complete(&r->be, 1, UPSTREAM_OK, rep, n);
	ok(last(r).id == 0x0d04 && last(r).ancount == 1 &&
	       memcmp(last(r).rdata1, ZERO, 4) == 0,
	   "  the default client blocked again");
	query_env_group_stats(r->env, "default", &q0, &b0);
	query_env_group_stats(r->env, "open", &q1, &b1);
	ok(q0 == 2 && b0 == 2 && q1 == 2 && b1 == 0,
	   "  per-group counters: default 2 queries, 2 blocked; open 2, 0 "
	   "(got %llu %llu %llu %llu)",
	   (unsigned long long)q0, (unsigned long long)b0,
	   (unsigned long long)q1, (unsigned long long)b1);
	rig_free(r);
}

/* prefetch = false: an answer near its expiry is served, nothing more. */
static void test_no_prefetch(void)
{
	struct rig *r = rig_new(0, false);

	ask(r, 1000, 1, "np.example.com", WIRE_T_A);
	fb_answer(&r->be, 0, 100, ADDR1);
	advance(r, 91000);
	ask(r, 1001, 2, "np.example.com", WIRE_T_A);
	ok(last(r).id == 2 && last(r).ttl1 == 9 && r->be.n == 1,
	   "prefetch = false: a hit at 91 s, no background send");
	is_int(stats(r).prefetched, 0, "counters: no prefetch");
	rig_free(r);
}

static void test_stale_timer(void)
{
	struct rig *r = rig_new(3600, false);

	stale_setup(r, "quiet.example.com");
	size_t before = r->io.n;
	ask(r, 1001, 0x1800, "quiet.example.com", WIRE_T_A);
	ask(r, 1002, 0x1801, "quiet.example.com", WIRE_T_A);
	size_t up = r->be.n - 1;
	is_int(r->be.n, 2, "silent upstream: one send for both clients");
	advance(r, QUERY_STALE_AFTER_MS - 1);
	is_int(r->io.n, before, "nothing at 1799 ms");
	advance(r, 1);
	is_int(r->io.n, before + 2, "at 1800 ms both clients get an answer");
	unsigned good = 0;
	for (size_t k = before; k < r->io.n; k++) {
		struct fx_reply p = fx_read(r->io.s[k].msg, r->io.s[k].len);
		good += p.rcode == WIRE_NOERROR && p.ttl1 == QUERY_STALE_TTL &&
			memcmp(p.rdata1, ADDR1, 4) == 0 &&
			p.id == 0x1800 + (r->io.s[k].port - 1001u);
	}
	is_int(good, 2, "  the stale answer, TTL 30, each its own ID");
	is_int(query_env_waiting(r->env), 0, "  nobody waiting any more");
	ok(r->be.r[up].live, "the upstream query goes on");
	advance(r, 1000);
	is_int(r->io.n, before + 2, "no SERVFAIL at the deadline after that");
	fb_answer(&r->be, up, 300, ADDR2);
	is_int(r->io.n, before + 2, "the late answer goes to nobody");
	ask(r, 1003, 0x1802, "quiet.example.com", WIRE_T_A);
	struct fx_reply p = last(r);
	is_int(r->be.n, 2, "next query: no upstream send");
	ok(p.id == 0x1802 && p.ttl1 == 300 && memcmp(p.rdata1, ADDR2, 4) == 0,
	   "next query: a fresh hit with the new data");
	rig_free(r);
}

static void test_prefetch(void)
{
	struct rig *r = rig_new(0, true);

	ask(r, 1000, 1, "pre.example.com", WIRE_T_A);
	fb_answer(&r->be, 0, 100, ADDR1);
	advance(r, 80000);
	ask(r, 1001, 2, "pre.example.com", WIRE_T_A);
	ok(r->be.n == 1 && last(r).ttl1 == 20,
	   "at 80 s of 100: a hit, no prefetch");
	advance(r, 11000);
	size_t before = r->io.n;
	for (unsigned i = 0; i < 5; i++)
		ask(r, (uint16_t)(1010 + i), (uint16_t)(10 + i),
		    "pre.example.com", WIRE_T_A);
	is_int(r->io.n, before + 5, "at 91 s: five answers at once");
	unsigned good = 0;
	for (size_t k = before; k < r->io.n; k++) {
		struct fx_reply p = fx_read(r->io.s[k].msg, r->io.s[k].len);
		good += p.ttl1 == 9 && memcmp(p.rdata1, ADDR1, 4) == 0 &&
			p.id == 10 + (r->io.s[k].port - 1010u);
	}
	is_int(good, 5, "  the cached answer, TTL 9, each its own ID");
	is_int(r->be.n, 2, "exactly one background refresh for five asks");
	is_int(stats(r).prefetched, 1, "counters: one prefetch");
	is_int(query_env_waiting(r->env), 0, "a prefetch has no client");
	fb_answer(&r->be, 1, 100, ADDR2);
	is_int(r->io.n, before + 5, "the refresh answers nobody");
	advance(r, 5000);
	ask(r, 1020, 0x20, "pre.example.com", WIRE_T_A);
	struct fx_reply p = last(r);
	ok(r->be.n == 2 && p.ttl1 == 95 && memcmp(p.rdata1, ADDR2, 4) == 0,
	   "after the refresh: the new data, TTL 95");
	rig_free(r);
}

/* Clients that cannot join a prefetch in flight (the cached answer
 * expired meanwhile) share one upstream query among themselves. */
static void test_prefetch_then_expiry(void)
{
	struct rig *r = rig_new(0, true);

	ask(r, 1000, 1, "pe.example.com", WIRE_T_A);
	fb_answer(&r->be, 0, 100, ADDR1);
	advance(r, 95000);
	ask(r, 1001, 2, "pe.example.com", WIRE_T_A);
	is_int(r->be.n, 2, "at 95 s: a prefetch goes upstream");
	advance(r, 6000);
	size_t before = r->io.n;
	for (unsigned i = 0; i < 5; i++)
		ask(r, (uint16_t)(1010 + i), (uint16_t)(10 + i),
		    "pe.example.com", WIRE_T_A);
	is_int(r->io.n, before, "expired, prefetch still out: nobody answered");
	is_int(r->be.n, 3, "five identical queries: one more upstream send");
	fb_answer(&r->be, 2, 100, ADDR2);
	is_int(r->io.n, before + 5, "the five are answered by it");
	fb_answer(&r->be, 1, 100, ADDR2);
	is_int(r->io.n, before + 5, "the prefetch answers nobody");
	rig_free(r);
}

static void test_reload(void)
{
	struct rig *r = rig_new(0, false);
	char text[1024], err[256];

	/* Same upstreams: the query in flight survives, the old snapshot
	 * goes when it ends. */
	ask(r, 1001, 0xaaaa, "reload.example.com", WIRE_T_A);
	struct snapshot *old = snapshot_ref(r->snap);
	is_int(atomic_load(&old->refs), 2, "old snapshot: env's ref and ours");
	conf_text(text, sizeof(text), 0, false, "127.0.0.1:9");
	struct snapshot *s2 = fx_snapshot(&r->dir, text, 2);
	ok(query_env_adopt(r->env, s2, err, sizeof(err)), "adopt generation 2");
	is_int(r->be.made, 1, "same upstreams: none made anew");
	is_int(atomic_load(&old->refs), 2,
	       "old snapshot alive while its query is upstream");
	ask(r, 1011, 0xab01, "reload.example.com", WIRE_T_A);
	ask(r, 1012, 0xab02, "reload.example.com", WIRE_T_A);
	is_int(r->be.n, 2, "after the reload two identical queries send once "
			   "(not joining the old epoch's)");
	fb_answer(&r->be, 0, 300, ADDR1);
	struct fx_reply p = last(r);
	ok(r->io.n == 1 && p.id == 0xaaaa && memcmp(p.rdata1, ADDR1, 4) == 0,
	   "the reply still reaches the client");
	fb_answer(&r->be, 1, 300, ADDR1);
	is_int(r->io.n, 3, "  and the two after the reload are answered");
	for (size_t k = r->be.n; k > 2; k--)
		fb_answer(&r->be, k - 1, 300, ADDR1);
	is_int(atomic_load(&old->refs), 1,
	       "the old snapshot's ref dropped once, at the query's end");
	loop_run_once(r->loop, 0);
	is_int(atomic_load(&old->refs), 1, "  and not again");
	snapshot_unref(old);

	/* New upstreams: the old one drains, then is freed once. */
	size_t b0 = r->be.n, io0 = r->io.n;
	ask(r, 1002, 0xbbbb, "reload2.example.com", WIRE_T_A);
	old = snapshot_ref(s2);
	conf_text(text, sizeof(text), 0, false, "127.0.0.1:10");
	struct snapshot *s3 = fx_snapshot(&r->dir, text, 3);
	ok(query_env_adopt(r->env, s3, err, sizeof(err)), "adopt generation 3");
	ok(r->be.made == 2 && strcmp(r->be.last_server, "127.0.0.1:10") == 0,
	   "new servers: an upstream made for them");
	loop_run_once(r->loop, 0);
	is_int(r->be.freed, 0, "the old upstream stays while it has a query");
	is_int(atomic_load(&old->refs), 2, "generation 2 alive meanwhile");
	ask(r, 1003, 0xcccc, "reload2.example.com", WIRE_T_A);
	is_int(r->be.n, b0 + 2, "a new query does not join one on old upstreams");
	ask(r, 1004, 0xcccd, "reload2.example.com", WIRE_T_A);
	is_int(r->be.n, b0 + 2, "  but the next one joins the new one");
	fb_answer(&r->be, b0, 300, ADDR1);
	p = last(r);
	ok(r->io.n == io0 + 1 && p.id == 0xbbbb && p.rcode == WIRE_NOERROR,
	   "the query on the old upstream reaches its client");
	is_int(atomic_load(&old->refs), 1, "generation 2 released once");
	loop_run_once(r->loop, 0);
	is_int(r->be.freed, 1, "the drained upstream is freed once");
	fb_answer(&r->be, b0 + 1, 300, ADDR2);
	ok(r->io.n == io0 + 3 && last(r).rdata1[3] == ADDR2[3] &&
	       ((last(r).id == 0xcccc && r->io.s[io0 + 1].msg[1] == 0xcd) ||
		(last(r).id == 0xcccd && r->io.s[io0 + 1].msg[1] == 0xcc)),
	   "the queries on the new upstream are answered");
	snapshot_unref(old);
	rig_free(r);
}

/* An upstream that cannot be made: adopt fails, the env goes on with
 * what it had, the new snapshot's reference is dropped. */
static void test_adopt_fails(void)
{
	struct rig *r = rig_new(0, false);
	char text[1200], err[256] = "";

	conf_text(text, sizeof(text), 0, false, "127.0.0.1:12");
	strcat(text, "forward = ({ domain = \"corp.example\"; "
		     "servers = [\"127.0.0.1:11\"]; });\n");
	struct snapshot *s2 = fx_snapshot(&r->dir, text, 2);
	snapshot_ref(s2);
	ok(!query_env_adopt(r->env, s2, err, sizeof(err)),
	   "adopt fails when an upstream cannot be made");
	like(err, "fake", "  with the backend's message");
	is_int(atomic_load(&s2->refs), 1, "  the new snapshot's ref dropped");
	loop_run_once(r->loop, 0);
	is_int(r->be.freed, 1, "  the upstream made for it freed");
	ask(r, 1001, 0xf001, "still.example.com", WIRE_T_A);
	ok(r->be.n == 1 && r->be.r[0].up != NULL, "the old upstreams serve on");
	fb_answer(&r->be, 0, 300, ADDR1);
	ok(last(r).id == 0xf001 && last(r).rcode == WIRE_NOERROR,
	   "  and answer");
	snapshot_unref(s2);
	rig_free(r);
}

/* Freeing the env while a query from before a reload (other upstreams)
 * is still out: its client gets SERVFAIL, every upstream and snapshot
 * goes once. */
static void test_free_after_reload(void)
{
	struct rig *r = rig_new(0, false);
	char text[1024], err[256];

	ask(r, 1001, 0x0d01, "before.example.com", WIRE_T_A);
	struct snapshot *old = snapshot_ref(r->snap);
	conf_text(text, sizeof(text), 0, false, "127.0.0.1:10");
	struct snapshot *s2 = fx_snapshot(&r->dir, text, 2);
	struct snapshot *mine2 = snapshot_ref(s2);
	ok(query_env_adopt(r->env, s2, err, sizeof(err)), "reload");
	ask(r, 1002, 0x0d02, "after.example.com", WIRE_T_A);
	ok(r->be.made == 2 && r->be.n == 2 && r->io.n == 0,
	   "one query on each upstream");
	query_env_free(r->env);
	r->env = NULL;
	is_int(r->io.n, 2, "env freed: both clients answered");
	ok(fx_read(r->io.s[0].msg, r->io.s[0].len).rcode == WIRE_SERVFAIL &&
	       fx_read(r->io.s[1].msg, r->io.s[1].len).rcode == WIRE_SERVFAIL,
	   "  with SERVFAIL");
	is_int(r->be.freed, 2, "  both upstreams freed");
	ok(atomic_load(&old->refs) == 1 && atomic_load(&mine2->refs) == 1,
	   "  both snapshots released once");
	snapshot_unref(old);
	snapshot_unref(mine2);
	rig_free(r);
}

/* The pool: QUERY_MAX_INFLIGHT queries upstream at once, the next one
 * gets SERVFAIL at once; a slot freed is usable again. */
static void test_inflight_limit(void)
{
	/* One client fills the pool here: no per-client cap. */
	struct rig *r = rig_new_extra(0, false,
				      "limits: { client_inflight = 0; };");
	char name[64];

	for (unsigned i = 0; i < QUERY_MAX_INFLIGHT; i++) {
		snprintf(name, sizeof(name), "n%u.example.com", i);
		ask(r, 1000, (uint16_t)i, name, WIRE_T_A);
	}
	ok(r->be.n == QUERY_MAX_INFLIGHT && r->io.n == 0,
	   "16384 distinct queries: all upstream, none answered");
	ask(r, 1001, 0xeeee, "one-too-many.example.com", WIRE_T_A);
	ok(r->io.n == 1 && last(r).id == 0xeeee &&
	       last(r).rcode == WIRE_SERVFAIL && r->be.n == QUERY_MAX_INFLIGHT,
	   "the next one: SERVFAIL at once, not sent");
	fb_answer(&r->be, 7, 300, ADDR1);
	ok(r->io.n == 2 && last(r).id == 7, "one answered frees a slot");
	ask(r, 1002, 0xeeef, "one-more.example.com", WIRE_T_A);
	ok(r->be.n == QUERY_MAX_INFLIGHT + 1 && r->io.n == 2,
	   "  which the next query takes");
	is_int(query_env_waiting(r->env), QUERY_MAX_INFLIGHT, "16384 waiting");
	query_env_free(r->env);
	r->env = NULL;
	ok(r->io.n == 2 + QUERY_MAX_INFLIGHT && last(r).rcode == WIRE_SERVFAIL,
	   "freeing the env answers all 16384 with SERVFAIL");
	rig_free(r);
}

/* limits.client_inflight: one client's queries upstream are capped, the
 * next gets SERVFAIL at once; another client is not held back. */
static void test_client_inflight(void)
{
	struct rig *r = rig_new_extra(0, false,
				      "limits: { client_inflight = 3; };");
	char name[64];

	for (unsigned i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "c%u.example.com", i);
		ask_from(r, 1, (uint16_t)(100 + i), name, WIRE_T_A);
	}
	ok(r->be.n == 3 && r->io.n == 0, "client_inflight 3: three upstream");
	ask_from(r, 1, 200, "c9.example.com", WIRE_T_A);
	ok(r->io.n == 1 && last(r).id == 200 && last(r).rcode == WIRE_SERVFAIL &&
		   r->be.n == 3,
	   "  the fourth: SERVFAIL at once, not sent");
	is_int((long)stats(r).limited, 1, "  counted as limited");
	ask_from(r, 2, 300, "c9.example.com", WIRE_T_A);
	ok(r->be.n == 4 && r->io.n == 1, "  another client still goes upstream");
	ask_from(r, 1, 201, "nas.home.lab", WIRE_T_A);
	ok(r->io.n == 2 && last(r).id == 201 && last(r).rcode != WIRE_SERVFAIL,
	   "  local answers are not capped");
	fb_answer(&r->be, 0, 300, ADDR1);
	ask_from(r, 1, 202, "c10.example.com", WIRE_T_A);
	ok(r->be.n == 5, "  an answer frees the client's slot");
	rig_free(r);
}

/* limits.client_qps: a token bucket per client over UDP; every slip-th
 * refused query gets an empty TC=1 reply, the others none. */
static void test_client_rate(void)
{
	struct rig *r = rig_new_extra(
		0, false,
		"limits: { client_qps = 2; client_burst = 2; slip = 2; };");

	ask_from(r, 1, 1, "nas.home.lab", WIRE_T_A);
	ask_from(r, 1, 2, "nas.home.lab", WIRE_T_A);
	ok(r->io.n == 2, "qps 2, burst 2: two answered");
	ask_from(r, 1, 3, "nas.home.lab", WIRE_T_A);
	ok(r->io.n == 2, "  the third dropped");
	ask_from(r, 1, 4, "nas.home.lab", WIRE_T_A);
	ok(r->io.n == 3 && last(r).id == 4 && (last(r).flags & WIRE_TC) &&
		   last(r).ancount == 0,
	   "  the fourth (slip 2): an empty TC=1 reply");
	is_int((long)stats(r).limited, 2, "  both counted as limited");
	ask_from(r, 2, 5, "nas.home.lab", WIRE_T_A);
	ok(r->io.n == 4 && last(r).id == 5, "  another client is answered");
	r->now += 1000;
	ask_from(r, 1, 6, "nas.home.lab", WIRE_T_A);
	ask_from(r, 1, 7, "nas.home.lab", WIRE_T_A);
	ok(r->io.n == 6 && last(r).id == 7 && !(last(r).flags & WIRE_TC),
	   "  a second later: two more tokens");
	rig_free(r);
}

static void test_snapshot_lifetime(void)
{
	struct rig *r = rig_new(0, false);
	char text[1024], err[256];

	struct snapshot *old = snapshot_ref(r->snap);
	conf_text(text, sizeof(text), 0, false, "127.0.0.1:9");
	struct snapshot *s2 = fx_snapshot(&r->dir, text, 2);
	struct snapshot *mine2 = snapshot_ref(s2);
	is_int(atomic_load(&old->refs), 2, "idle loop holds the old snapshot");
	ok(query_env_adopt(r->env, s2, err, sizeof(err)), "publish a new one");
	is_int(atomic_load(&old->refs), 1,
	       "no query in flight: the loop lets go of the old one at once");
	is_int(atomic_load(&s2->refs), 2, "the loop holds the new one");
	ask(r, 1001, 0x0c0c, "nas.home.lab", WIRE_T_A);
	ok(r->io.n == 1 && last(r).id == 0x0c0c, "the loop serves the new one");
	snapshot_unref(old);
	query_env_free(r->env);
	r->env = NULL;
	is_int(atomic_load(&s2->refs), 1, "freeing the env drops its ref once");
	snapshot_unref(mine2);
	loop_run_once(r->loop, 0);
	cache_free(r->cache);
	loop_free(r->loop);
	fx_dir_clean(&r->dir);
	free(r->be.r);
	free(r);
}

static void test_chase(void)
{
	struct rig *r = rig_new(0, false);
	uint8_t want[WIRE_NAME_MAX];
	size_t wn = fx_name("www.example.com", want);

	ask(r, 1001, 0xcafe, "Ext.Home.Lab", WIRE_T_A);
	is_int(r->be.n, 1, "local CNAME out of local data: one upstream send");
	struct wire_query uq;
	ok(wire_parse_query(r->be.r[0].pkt, r->be.r[0].len, &uq) == WIRE_OK &&
	       uq.qname_len == wn && memcmp(uq.qname, want, wn) == 0 &&
	       uq.qtype == WIRE_T_A && (uq.hdr.flags & WIRE_RD),
	   "  it asks for the CNAME's target, type A, RD kept");
	fb_answer(&r->be, 0, 300, ADDR1);
	struct fx_reply p = last(r);
	ok(r->io.n == 1 && p.id == 0xcafe && p.rcode == WIRE_NOERROR,
	   "chase: one reply with the client's ID");
	ok(p.ancount == 2 && p.type1 == WIRE_T_CNAME && p.last_type == WIRE_T_A &&
	       memcmp(p.last_rdata, ADDR1, 4) == 0,
	   "chase: the local CNAME, then the upstream's A record");
	ok(!(p.flags & WIRE_AA), "chase: AA cleared (not all ours)");
	uint8_t asked[WIRE_NAME_MAX];
	size_t an = fx_name("Ext.Home.Lab", asked);
	is_mem(p.qname, p.qname_len, asked, an,
	       "chase: the question as the client spelled it");

	ask(r, 1002, 0xcaff, "ext.home.lab", WIRE_T_A);
	fb_complete(&r->be, 1, UPSTREAM_FAILED, NULL, 0);
	ok(r->io.n == 2 && last(r).id == 0xcaff &&
	       last(r).rcode == WIRE_SERVFAIL,
	   "chase, upstream failed: SERVFAIL");
	is_int(query_env_waiting(r->env), 0, "chase: nobody waiting");
	rig_free(r);
}

static void test_tcp_refs(void)
{
	struct rig *r = rig_new(0, false);
	int conn_a, conn_b;

	ask_on(r, &conn_a, 1001, 0x7c01, "tcp.example.com", WIRE_T_A);
	ask_on(r, &conn_b, 1002, 0x7c02, "tcp.example.com", WIRE_T_A);
	is_int(r->io.holds, 2, "TCP leader and waiter hold their connections");
	is_int(r->io.releases, 0, "  none released while upstream");
	fb_answer(&r->be, 0, 300, ADDR1);
	is_int(r->io.n, 2, "TCP: both answered");
	is_int(r->io.releases, 2, "  and both connections released once");
	ask_on(r, &conn_a, 1003, 0x7c03, "nas.home.lab", WIRE_T_A);
	ok(r->io.n == 3 && r->io.holds == 2,
	   "TCP local answer: no hold (nothing outlives the call)");
	ask_on(r, &conn_a, 1004, 0x7c04, "late.example.com", WIRE_T_A);
	advance(r, (uint64_t)r->snap->deadline_ms);
	ok(r->io.n == 4 && last(r).rcode == WIRE_SERVFAIL && r->io.releases == 2,
	   "TCP deadline: SERVFAIL, the leader keeps its hold");
	fb_complete(&r->be, 1, UPSTREAM_FAILED, NULL, 0);
	ok(r->io.n == 4 && r->io.holds == 3 && r->io.releases == 3,
	   "  released when the upstream lets go");
	rig_free(r);
}

static void test_free_in_flight(void)
{
	struct rig *r = rig_new(0, true);

	ask(r, 1000, 0x0f00, "pf.example.com", WIRE_T_A);
	fb_answer(&r->be, 0, 100, ADDR1);
	advance(r, 95000);
	ask(r, 1001, 0x0f01, "pf.example.com", WIRE_T_A); /* prefetch */
	ask(r, 1002, 0x0f02, "gone.example.com", WIRE_T_A);
	ask(r, 1003, 0x0f03, "gone.example.com", WIRE_T_A);
	size_t before = r->io.n;
	is_int(r->be.n, 3, "a prefetch and a shared query upstream");
	query_env_free(r->env);
	r->env = NULL;
	is_int(r->io.n, before + 2, "env freed: both clients answered");
	unsigned good = 0;
	for (size_t k = before; k < r->io.n; k++) {
		struct fx_reply p = fx_read(r->io.s[k].msg, r->io.s[k].len);
		good += p.rcode == WIRE_SERVFAIL &&
			p.id == 0x0f00 + (r->io.s[k].port - 1000u);
	}
	is_int(good, 2, "  SERVFAIL, each with its own ID");
	is_int(r->be.freed, r->be.made, "  every upstream freed");
	loop_run_once(r->loop, 0);
	cache_free(r->cache);
	loop_free(r->loop);
	fx_dir_clean(&r->dir);
	free(r->be.r);
	free(r);
}

/* A stale answer is checked again like a cache hit: its CNAME to a name
 * that a reload has since blocked keeps it from being served (found in
 * review). */
static void test_stale_checked_again(void)
{
	struct rig *r = rig_new(3600, false);
	uint8_t rep[1500], target[WIRE_NAME_MAX];
	size_t tn = fx_name("t.tracker.example", target);
	struct wire_query q;
	char text[1024], err[256];

	ask(r, 1001, 0x0c01, "shop.example.com", WIRE_T_A);
	if (wire_parse_query(r->be.r[0].pkt, r->be.r[0].len, &q) != WIRE_OK)
		abort();
	struct wire_buf b = {rep, 0, sizeof(rep), false};
	wire_put16(&b, q.hdr.id);
	wire_put16(&b, WIRE_QR | WIRE_RA | WIRE_RD);
	wire_put16(&b, 1); wire_put16(&b, 2); wire_put16(&b, 0); wire_put16(&b, 0);
	wire_put_bytes(&b, q.qname, q.qname_len);
	wire_put16(&b, WIRE_T_A); wire_put16(&b, WIRE_CLASS_IN);
	wire_put16(&b, 0xc00c); wire_put16(&b, WIRE_T_CNAME); wire_put16(&b, WIRE_CLASS_IN);
	wire_put32(&b, 1); wire_put16(&b, (uint16_t)tn); wire_put_bytes(&b, target, tn);
	wire_put_bytes(&b, target, tn);
	wire_put16(&b, WIRE_T_A); wire_put16(&b, WIRE_CLASS_IN);
	wire_put32(&b, 1); wire_put16(&b, 4); wire_put_bytes(&b, ADDR1, 4);
	fb_complete(&r->be, 0, UPSTREAM_OK, rep, b.len);
	ok(last(r).ancount == 2, "first answer: CNAME + A");
	advance(r, 2000);
	/* reload: tracker.example is now blocked */
	fx_write(&r->dir, "block.txt", "ads.example.net\ntracker.example\n");
	conf_text(text, sizeof(text), 3600, false, "127.0.0.1:9");
	struct snapshot *s2 = fx_snapshot(&r->dir, text, 2);
	ok(query_env_adopt(r->env, s2, err, sizeof(err)), "adopt with new block");
	ask(r, 1002, 0x0c02, "shop.example.com", WIRE_T_A);
	fb_complete(&r->be, r->be.n - 1, UPSTREAM_FAILED, NULL, 0);
	struct fx_reply p = last(r);
	ok(!(p.ancount == 2 && p.type1 == WIRE_T_CNAME),
	   "stale answer must not carry a CNAME to a now-blocked name");
	rig_free(r);
}

static size_t put_name(struct wire_buf *b, const char *text)
{
	uint8_t w[WIRE_NAME_MAX];
	size_t n = fx_name(text, w);
	wire_put_bytes(b, w, n);
	return n;
}

/* A TSIG record: key k, hmac-sha256, no MAC, error BADKEY. */
static void tsig_rr(struct wire_buf *b)
{
	uint8_t alg[WIRE_NAME_MAX];
	size_t an = fx_name("hmac-sha256", alg);

	put_name(b, "k");
	wire_put16(b, WIRE_T_TSIG);
	wire_put16(b, WIRE_CLASS_ANY);
	wire_put32(b, 0);
	wire_put16(b, (uint16_t)(an + 16));
	wire_put_bytes(b, alg, an);
	wire_put16(b, 0);
	wire_put32(b, 1700000000);
	wire_put16(b, 300);
	wire_put16(b, 0);           /* MAC size */
	wire_put16(b, 0x1234);      /* original ID */
	wire_put16(b, WIRE_TSIG_BADKEY);
	wire_put16(b, 0);           /* other len */
}

/* A signed query with a long name, and the upstream's NOTAUTH without a
 * question (shorter than the name): the client gets it (found in
 * review: it was marked answered and got nothing). */
static void test_signed_notauth_long_name(void)
{
	struct rig *r = rig_new(0, false);
	uint8_t pkt[600], rep[600];
	const char *name =
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
		"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
		"example.com";
	struct wire_buf b = {pkt, 0, sizeof(pkt), false};
	struct query_client c = {.fd = 3};
	struct sockaddr_in *sin = (struct sockaddr_in *)&c.peer;

	wire_put16(&b, 0x5151);
	wire_put16(&b, WIRE_RD);
	wire_put16(&b, 1);
	wire_put16(&b, 0);
	wire_put16(&b, 0);
	wire_put16(&b, 1);
	put_name(&b, name);
	wire_put16(&b, WIRE_T_A);
	wire_put16(&b, WIRE_CLASS_IN);
	tsig_rr(&b);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(1000);
	sin->sin_addr.s_addr = htonl(0x7f000001);
	c.peerlen = sizeof(*sin);
	query_handle(r->env, &c, pkt, b.len);
	is_int((long)r->be.n, 1, "signed query with a 196-octet name: forwarded");
	struct wire_buf o = {rep, 0, sizeof(rep), false};
	wire_put16(&o, r->be.n ? wire_get16(r->be.r[0].pkt) : 0);
	wire_put16(&o, WIRE_QR | WIRE_NOTAUTH);
	wire_put16(&o, 0);
	wire_put16(&o, 0);
	wire_put16(&o, 0);
	wire_put16(&o, 1);
	tsig_rr(&o);
	if (r->be.n)
		fb_complete(&r->be, 0, UPSTREAM_OK, rep, o.len);
	ok(r->io.n == 1 && last(r).id == 0x5151 &&
		   last(r).rcode == WIRE_NOTAUTH,
	   "  the upstream's NOTAUTH without question reaches the client");
	is_int((long)query_env_waiting(r->env), 0, "  who waits no more");
	rig_free(r);
}

/* ---- the observers (query log, dnstap) ---- */

struct seen {
	unsigned queries, replies, up_queries, up_replies;
	enum query_kind kind[8];
	char list[8][64];
	bool timed;
	uint16_t up_first_id;
};

static void ob_query(void *ctx, const struct query_client *c,
		     const uint8_t *pkt, size_t len,
		     const struct timespec *when)
{
	struct seen *s = ctx;
	(void)c;
	(void)pkt;
	(void)len;
	s->queries++;
	s->timed = when->tv_sec > 0;
}

static void ob_reply(void *ctx, const struct query_event *ev)
{
	struct seen *s = ctx;
	if (s->replies < 8) {
		s->kind[s->replies] = ev->kind;
		snprintf(s->list[s->replies], sizeof(s->list[0]), "%s",
			 ev->list ? ev->list : "");
	}
	s->replies++;
}

static void ob_upstream(void *ctx, bool response, const char *kind,
			const uint8_t *pkt, size_t len,
			const struct timespec *sent)
{
	struct seen *s = ctx;
	(void)sent;
	if (strcmp(kind, "fake") != 0 || len < 12)
		return;
	if (response)
		s->up_replies++;
	else if (s->up_queries++ == 0)
		s->up_first_id = wire_get16(pkt);
}

static void test_observer(void)
{
	struct rig *r = rig_new(0, false);
	struct seen seen;
	struct query_observer ob = {ob_query, ob_reply, ob_upstream, &seen};

	memset(&seen, 0, sizeof(seen));
	ok(query_env_add_observer(r->env, &ob), "observer: added");
	ask(r, 1001, 0x1111, "nas.home.lab", WIRE_T_A);
	ask(r, 1002, 0x2222, "x.ads.example.net", WIRE_T_A);
	ask(r, 1003, 0x3333, "www.example.com", WIRE_T_A);
	fb_answer(&r->be, 0, 300, ADDR1);
	ask(r, 1004, 0x4444, "www.example.com", WIRE_T_A);
	is_int(seen.queries, 4, "observer: every query seen on arrival");
	ok(seen.timed, "observer: with its arrival time");
	is_int(seen.replies, 4, "observer: every reply seen");
	ok(seen.kind[0] == QUERY_KIND_LOCAL &&
		   seen.kind[1] == QUERY_KIND_BLOCKED &&
		   seen.kind[2] == QUERY_KIND_FORWARDED &&
		   seen.kind[3] == QUERY_KIND_CACHED,
	   "observer: local, blocked, forwarded, cached");
	like(seen.list[1], "/block.txt", "observer: the list that blocked");
	ok(strcmp(query_kind_name(seen.kind[3]), "cached") == 0,
	   "observer: kind names");
	ok(seen.up_queries == 1 && seen.up_replies == 1,
	   "observer: one query up, one reply back");
	is_int(seen.up_first_id, 0x3333,
	       "observer: the upstream query before the backend's ID");
	struct query_observer more = ob;
	for (int i = 1; i < QUERY_MAX_OBSERVERS; i++)
		query_env_add_observer(r->env, &more);
	ok(!query_env_add_observer(r->env, &more),
	   "observer: no more than QUERY_MAX_OBSERVERS");
	rig_free(r);
}

int main(void)
{
	test_observer();
	test_local_and_blocked();
	test_forward();
	test_shared_inflight();
	test_max_waiters();
	test_max_waiters_stale();
	test_deadline();
	test_serve_stale();
	test_stale_timer();
	test_prefetch();
	test_prefetch_then_expiry();
	test_stale_window();
	test_rebind();
	test_no_prefetch();
	test_cname_blocked();
	test_group_waiters();
	test_reload();
	test_snapshot_lifetime();
	test_adopt_fails();
	test_inflight_limit();
	test_client_inflight();
	test_client_rate();
	test_free_after_reload();
	test_chase();
	test_stale_on_servfail();
	test_deadline_shrinks();
	test_tcp_refs();
	test_free_in_flight();
	test_stale_checked_again();
	test_signed_notauth_long_name();
	return done_testing();
}
