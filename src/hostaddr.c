/*
 * hostaddr.c - an upstream's address from its host name, through plain
 * servers.
 *
 * A round is two queries sent at once through the resolver, A and AAAA
 * (RD set), each with its own request and packet; a reply is checked
 * like any upstream reply (wire_check_reply: the question, a well-formed
 * message) before its answer section is read.  The first A record wins,
 * else the first AAAA record; the TTL kept is the smallest of the
 * chosen type's records, within 30 s and an hour.  The caller hears of
 * the round from the loop (a posted task), once both replies are in.
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostaddr.h"
#include "loop.h"
#include "wire.h"

#define HOSTADDR_TTL_MIN 30 /* seconds an address is used */
#define HOSTADDR_TTL_MAX 3600

struct hostaddr;

/* One address query (A or AAAA) through the resolver. */
struct ask {
	struct upstream_req req; /* first: the resolver hands us this */
	struct hostaddr *h;
	uint16_t qtype;
	bool busy;
	bool found;
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint32_t ttl;
	char why[96]; /* !found: what came instead */
	uint8_t pkt[WIRE_HEADER_LEN + 256 + 4];
	uint8_t buf[4096]; /* the reply, to check */
};

struct hostaddr {
	struct loop *loop;
	struct upstream *resolver;
	hostaddr_fn done;
	void *ctx;
	uint8_t qname[256];
	size_t qname_len;
	bool known;
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint64_t until;
	struct ask ask[2]; /* A, AAAA */
	struct loop_task round;
};

/* Read the first address of the asked type from a checked reply. */
static void parse(struct ask *a, size_t len)
{
	struct wire_rrs it;
	struct wire_rr rr;
	unsigned rc = WIRE_RCODE(wire_get16(a->buf + 2));
	size_t want = a->qtype == WIRE_T_A ? 4 : 16;

	if (rc != WIRE_NOERROR) {
		snprintf(a->why, sizeof(a->why), "rcode %u", rc);
		return;
	}
	snprintf(a->why, sizeof(a->why), "no address");
	if (!wire_rrs_begin(&it, a->buf, len))
		return;
	while (wire_rrs_next(&it, &rr) && rr.section == WIRE_ANSWER) {
		if (rr.type != a->qtype || rr.rdlen != want)
			continue;
		uint32_t ttl = wire_get32(a->buf + rr.ttl_at);
		if (a->found) {
			if (ttl < a->ttl)
				a->ttl = ttl;
			continue;
		}
		memset(&a->ss, 0, sizeof(a->ss));
		if (a->qtype == WIRE_T_A) {
			struct sockaddr_in *v4 = (struct sockaddr_in *)&a->ss;
			v4->sin_family = AF_INET;
			memcpy(&v4->sin_addr, a->buf + rr.rdata, 4);
			a->sslen = sizeof(*v4);
		} else {
			struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
			v6->sin6_family = AF_INET6;
			memcpy(&v6->sin6_addr, a->buf + rr.rdata, 16);
			a->sslen = sizeof(*v6);
		}
		a->found = true;
		a->ttl = ttl;
	}
}

static void on_reply(struct upstream_req *req, enum upstream_status st,
		     const uint8_t *reply, size_t len)
{
	struct ask *a = (struct ask *)req;
	struct hostaddr *h = a->h;

	a->busy = false;
	if (st == UPSTREAM_CANCELLED)
		return; /* being freed */
	if (st != UPSTREAM_OK) {
		snprintf(a->why, sizeof(a->why), "no answer");
	} else if (len > sizeof(a->buf)) {
		snprintf(a->why, sizeof(a->why), "reply too long");
	} else {
		memcpy(a->buf, reply, len);
		if (wire_check_reply(a->buf, len, h->qname, h->qname_len,
				     a->qtype, WIRE_CLASS_IN))
			parse(a, len);
		else
			snprintf(a->why, sizeof(a->why), "malformed reply");
	}
	if (!h->ask[0].busy && !h->ask[1].busy)
		loop_post(h->loop, &h->round);
}

/* Both are in (after the batch): keep the address, tell the caller. */
static void on_round(struct loop_task *t)
{
	struct hostaddr *h =
	    (struct hostaddr *)((char *)t - offsetof(struct hostaddr, round));
	struct ask *a = h->ask[0].found ? &h->ask[0] : &h->ask[1];
	char why[256];

	if (!a->found) {
		snprintf(why, sizeof(why), "A: %s, AAAA: %s", h->ask[0].why,
			 h->ask[1].why);
		h->done(h->ctx, why);
		return;
	}
	uint32_t ttl = a->ttl < HOSTADDR_TTL_MIN   ? HOSTADDR_TTL_MIN
		       : a->ttl > HOSTADDR_TTL_MAX ? HOSTADDR_TTL_MAX
						   : a->ttl;
	h->ss = a->ss;
	h->sslen = a->sslen;
	h->known = true;
	h->until = loop_now(h->loop) + 1000 * (uint64_t)ttl;
	h->done(h->ctx, NULL);
}

void hostaddr_ask(struct hostaddr *h)
{
	if (h->ask[0].busy || h->ask[1].busy || h->round.queued)
		return;
	for (int i = 0; i < 2; i++) {
		struct ask *a = &h->ask[i];
		uint8_t *q = a->pkt + WIRE_HEADER_LEN + h->qname_len;
		a->busy = true;
		a->found = false;
		a->why[0] = '\0';
		memset(a->pkt, 0, WIRE_HEADER_LEN);
		wire_set16(a->pkt + 2, WIRE_RD);
		wire_set16(a->pkt + 4, 1);
		memcpy(a->pkt + WIRE_HEADER_LEN, h->qname, h->qname_len);
		wire_set16(q, a->qtype);
		wire_set16(q + 2, WIRE_CLASS_IN);
		upstream_send(h->resolver, &a->req, a->pkt,
			      WIRE_HEADER_LEN + h->qname_len + 4, on_reply);
	}
}

bool hostaddr_get(const struct hostaddr *h, uint16_t port,
		  struct sockaddr_storage *ss, socklen_t *len)
{
	if (!h->known || loop_now(h->loop) >= h->until)
		return false;
	*ss = h->ss;
	*len = h->sslen;
	/* sin_port and sin6_port sit at the same offset. */
	((struct sockaddr_in *)ss)->sin_port = htons(port);
	return true;
}

void hostaddr_forget(struct hostaddr *h) { h->known = false; }

struct hostaddr *hostaddr_new(struct loop *loop, const char *host,
			      struct upstream *resolver, hostaddr_fn done,
			      void *ctx, char *err, size_t errlen)
{
	struct hostaddr *h = calloc(1, sizeof(*h));
	char fqdn[260];
	const char *why = "out of memory";
	int n = -1;

	if (h && snprintf(fqdn, sizeof(fqdn), "%s.", host) < (int)sizeof(fqdn))
		n = wire_name_from_text(fqdn, NULL, 0, h->qname, &why);
	else if (h)
		why = "name too long";
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", host, why);
		upstream_free(resolver);
		free(h);
		return NULL;
	}
	h->qname_len = (size_t)n;
	h->loop = loop;
	h->resolver = resolver;
	h->done = done;
	h->ctx = ctx;
	h->round.cb = on_round;
	for (int i = 0; i < 2; i++) {
		h->ask[i].h = h;
		h->ask[i].qtype = i == 0 ? WIRE_T_A : WIRE_T_AAAA;
	}
	return h;
}

void hostaddr_free(struct hostaddr *h)
{
	if (!h)
		return;
	upstream_free(h->resolver); /* the asks end, cancelled */
	loop_unpost(h->loop, &h->round);
	free(h);
}
