/*
 * query.c - the query pipeline of one worker loop.
 *
 * Reads top to bottom: route the packet (route.c decides), then one small
 * function per decision acts on it.  A forwarded query is answered from
 * the cache, joins an identical query already upstream, or is relayed;
 * in the upstream callback the reply is checked, stored, and handed to
 * every client that waited for it, each with its own ID, question case
 * and size limit.  One struct query holds everything about a client (or
 * background) query that outlives query_handle, and one function
 * (query_done) releases it.
 *
 * Snapshots: each query remembers the epoch (snapshot plus upstreams) it
 * started in; an epoch replaced by a reload stays until its last query
 * ends.  Time: the loop's clock and two loop timers (client deadlines,
 * stale answers); nothing here polls.
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "answer.h"
#include "block.h"
#include "cache.h"
#include "conf.h"
#include "limit.h"
#include "lists.h"
#include "log.h"
#include "loop.h"
#include "policy.h"
#include "query.h"
#include "route.h"
#include "snapshot.h"
#include "topk.h"
#include "upstream.h"
#include "wire.h"

/* Queries up to this size are copied into the pool object itself; larger
 * ones (rare: TCP with big EDNS options) get a buffer of their own. */
#define QUERY_INLINE 1232

/* Buckets of the in-flight table (a power of two). */
#define QUERY_TABLE 4096

/* A snapshot with the upstreams made for it on this loop. */
struct epoch {
	struct snapshot *snap;
	struct upstream **groups;  /* [snap->ngroups]; NULL: refusing rule */
	struct upstream **signed_groups; /* the same, for signed queries */
	uint32_t upstream_gen;     /* cache keys of these upstreams */
	size_t users;              /* queries that started in it */
	struct epoch *next;        /* retired epochs */
};

/* The one list type of this file (sys/queue.h). */
TAILQ_HEAD(qlist, query);

enum query_role {
	ROLE_LEADER,     /* sent upstream for a client */
	ROLE_WAITER,     /* waits for a leader with the same key */
	ROLE_BACKGROUND, /* a prefetch: sent upstream for the cache only */
};

struct query {
	struct upstream_req req; /* first: the callback hands us this */
	struct query_env *env;
	struct epoch *ep;
	enum query_role role;
	struct query_client client;
	struct wire_query wq;    /* the parsed client query */
	size_t group;            /* the upstream group it went to */
	unsigned cgroup;         /* its client group in ep->snap */
	uint64_t deadline;
	uint64_t sent_ms;        /* when it went upstream (loop clock) */
	uint64_t stale_at;       /* 0: no stale answer to fall back on */
	bool answered;           /* the client has its reply (or SERVFAIL) */
	bool shared;             /* in the in-flight table */
	TAILQ_ENTRY(query) dl;   /* the env's deadline list */
	TAILQ_ENTRY(query) sl;   /* the env's stale list, when stale_at */
	struct query *next_free; /* the env's free list */
	struct query *hnext;     /* in-flight table chain */
	struct limit_client *lc; /* its client's slot, counted in flight */
	struct query *leader;    /* a waiter's */
	struct qlist waiters;    /* a leader's */
	TAILQ_ENTRY(query) wl;   /* its leader's waiters, when leader */
	unsigned nwaiters;
	uint32_t khash;
	size_t klen;
	uint8_t key[CACHE_KEY_MAX];
	uint8_t *pkt;            /* inline or heap */
	size_t len;
	struct chase *chase;     /* a local CNAME chain resolved upstream */
	struct timespec t0;      /* arrival, when there are observers */
	struct timespec t_up;    /* sent upstream, likewise */
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

/* Counters: written by the loop's thread only, read by any; relaxed
 * atomics so that neither side needs a lock (a plain load and store on
 * the usual machines). */
#define QUERY_STAT_ATOMIC(name) _Atomic uint64_t name;
struct counters {
	QUERY_STATS(QUERY_STAT_ATOMIC)
};
#undef QUERY_STAT_ATOMIC

#define COUNT(env, name) bump(&(env)->st.name)

static inline void bump(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Block hits per source of the current snapshot's block sets, set k's
 * sources at base[k] onwards; and queries and blocking answers per client
 * group.  Swapped on adopt under hits_mu, which readers in other threads
 * take too; counts carry over by name. */
struct hits {
	unsigned n;
	const char **names;      /* borrowed from the epoch's snapshot */
	_Atomic uint64_t *count;
	unsigned *base;          /* [nsets + 1] */
	size_t nsets;
	size_t ngroups;
	const char **group_names;
	_Atomic uint64_t *group_queries;
	_Atomic uint64_t *group_blocked;
	/* Per upstream group of the snapshot: its label (owned) and what
	 * it did; one worker writes, so each counter has one writer. */
	size_t nup;
	char **up_names;
	struct up_counters *up;
};

struct up_counters {
	_Atomic uint64_t queries, errors, sum_ms;
	_Atomic uint64_t bucket[QUERY_LATENCY_BUCKETS + 1];
};

const unsigned query_latency_ms[QUERY_LATENCY_BUCKETS] = {
	1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};

struct query_env {
	struct loop *loop;
	struct query_io io;
	struct cache *cache;
	struct query_backend backend;
	struct epoch *cur;
	struct epoch *retired;
	struct upstream **draining;  /* replaced upstreams with queries left */
	size_t ndraining, capdraining;
	struct loop_task drain_task;
	struct counters st;
	/* How client queries ended, by transport; replies by rcode. */
	_Atomic uint64_t kinds[QUERY_TRANSPORTS][QUERY_NKINDS];
	_Atomic uint64_t rcodes[16];
	pthread_mutex_t hits_mu;
	struct hits hits;
	size_t inflight;             /* query objects in use */
	_Atomic size_t waiting;      /* clients without an answer yet */
	struct query *free_list;
	struct qlist deadlines;      /* clients waiting, by deadline */
	struct qlist stales;         /* stale fallbacks, by time */
	struct loop_timer deadline_timer;
	struct loop_timer stale_timer;
	struct limit *limits;        /* the clients' slots; NULL: no limits */
	struct lists_scratch *lists_scratch; /* regex matching; NULL: none */
	const struct pause_state *pause; /* main's, borrowed; NULL: none */
	struct topk *top[QUERY_TOP_KINDS]; /* NULL when out of memory */
	uint64_t limit_log_ms;       /* when the last limit line was logged */
	uint64_t limit_unlogged;     /* refusals since */
	struct query_observer obs[QUERY_MAX_OBSERVERS];
	unsigned nobs;
	/* What the reply about to be sent is, for the observers: set next
	 * to the counter of each answer (NOTE), read by reply(). */
	struct {
		enum query_kind kind;
		unsigned cgroup;     /* in env->cur->snap */
		const char *list;    /* blocked: the source; else NULL */
		const char *upstream; /* sent upstream: its servers */
		struct timespec t0;  /* the query's arrival */
	} note;
	struct query *table[QUERY_TABLE];
	uint8_t out[WIRE_MSG_MAX];   /* replies are built here */
	uint8_t merge[WIRE_MSG_MAX]; /* per-client copies, chases */
};

static void on_deadline(struct loop_timer *t, uint64_t now_ms);
static void on_stale(struct loop_timer *t, uint64_t now_ms);
static void on_drain(struct loop_task *t);

struct query_env *query_env_new(struct loop *loop, const struct query_io *io,
				struct cache *cache,
				const struct query_backend *backend)
{
	struct query_env *env = calloc(1, sizeof(*env));
	if (!env)
		return NULL;
	env->loop = loop;
	env->io = *io;
	env->cache = cache;
	env->backend = *backend;
	env->deadline_timer.cb = on_deadline;
	env->stale_timer.cb = on_stale;
	env->drain_task.cb = on_drain;
	TAILQ_INIT(&env->deadlines);
	TAILQ_INIT(&env->stales);
	/* Without memory for it, clients go unlimited: better than none. */
	env->limits = limit_new();
	/* Without memory for it, block regexes are not consulted. */
	env->lists_scratch = lists_scratch_new();
	/* Likewise, without memory for them the top lists stay empty. */
	for (int i = 0; i < QUERY_TOP_KINDS; i++)
		env->top[i] = topk_new();
	pthread_mutex_init(&env->hits_mu, NULL);
	return env;
}

/* ---- epochs: snapshots and their upstreams ---- */

/* Hand an epoch's upstreams to the drain task, which frees each once its
 * queries are done.  Never freed here: this may run inside an upstream's
 * own callback (c-ares must not be destroyed from inside one). */
static void drain_array(struct query_env *env, size_t n,
			struct upstream ***arr)
{
	for (size_t i = 0; *arr && i < n; i++) {
		struct upstream *u = (*arr)[i];
		if (!u)
			continue;
		if (env->ndraining == env->capdraining) {
			size_t cap = env->capdraining ? env->capdraining * 2 : 8;
			struct upstream **d =
				realloc(env->draining, cap * sizeof(*d));
			if (!d) {
				/* Leaking one upstream beats a crash. */
				log_err("out of memory: an upstream is leaked");
				continue;
			}
			env->draining = d;
			env->capdraining = cap;
		}
		env->draining[env->ndraining++] = u;
	}
	free(*arr);
	*arr = NULL;
}

static void free_groups(struct query_env *env, struct epoch *ep)
{
	drain_array(env, ep->snap->ngroups, &ep->groups);
	drain_array(env, ep->snap->ngroups, &ep->signed_groups);
	if (env->ndraining)
		loop_post(env->loop, &env->drain_task);
}

static void epoch_free(struct query_env *env, struct epoch *ep)
{
	free_groups(env, ep);
	snapshot_unref(ep->snap);
	free(ep);
}

/* An epoch that is no longer current goes once its queries are done. */
static void epoch_release(struct query_env *env, struct epoch *ep)
{
	if (ep == env->cur || ep->users)
		return;
	for (struct epoch **pp = &env->retired; *pp; pp = &(*pp)->next)
		if (*pp == ep) {
			*pp = ep->next;
			break;
		}
	epoch_free(env, ep);
}

/* Free replaced upstreams whose queries are done (outside any upstream
 * callback: a posted task).  No reload can cut their queries short: the
 * list has no bound but memory. */
static void on_drain(struct loop_task *t)
{
	struct query_env *env = (struct query_env *)((char *)t -
		offsetof(struct query_env, drain_task));

	for (size_t i = 0; i < env->ndraining;) {
		if (upstream_pending(env->draining[i]) == 0) {
			upstream_free(env->draining[i]);
			env->draining[i] = env->draining[--env->ndraining];
			continue;
		}
		i++;
	}
}

static bool make_groups(struct query_env *env, struct epoch *ep, char *err,
			size_t errlen)
{
	const struct snapshot *s = ep->snap;

	const struct query_backend *b = &env->backend;

	if (!(ep->groups = calloc(s->ngroups, sizeof(*ep->groups))) ||
	    (b->make_signed &&
	     !(ep->signed_groups = calloc(s->ngroups, sizeof(*ep->groups))))) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	for (size_t g = 0; g < s->ngroups; g++) {
		size_t n;
		const struct conf_addr *sv = snapshot_servers(s, g, &n);
		if (n == 0)
			continue;
		ep->groups[g] = b->make(b->ctx, env->loop, s, sv, n,
					s->cfg->timeout_ms, s->cfg->tries, err,
					errlen);
		if (!ep->groups[g])
			return false;
		if (b->make_signed &&
		    !(ep->signed_groups[g] = b->make_signed(
			      b->ctx, env->loop, s, sv, n, s->cfg->timeout_ms,
			      s->cfg->tries, err, errlen)))
			return false;
	}
	return true;
}

static void hits_free(struct hits *h)
{
	for (size_t i = 0; h->up_names && i < h->nup; i++)
		free(h->up_names[i]);
	free(h->up_names);
	free(h->up);
	free(h->names);
	free(h->count);
	free(h->base);
	free(h->group_names);
	free(h->group_queries);
	free(h->group_blocked);
}

/* Counts of old under the name of each new counter (a reload keeps the
 * counts of lists and groups that are still there).  A name counted in
 * several places (a list in two block sets) keeps its sum, in its first
 * new place. */
static void carry(const char **names, _Atomic uint64_t *count, size_t n,
		  const char *const *old_names, _Atomic uint64_t *old,
		  size_t nold)
{
	for (size_t i = 0; i < n; i++) {
		size_t first = 0;
		while (strcmp(names[first], names[i]) != 0)
			first++;
		if (first < i)
			continue;
		uint64_t sum = 0;
		for (size_t j = 0; j < nold; j++)
			if (strcmp(old_names[j], names[i]) == 0)
				sum += atomic_load(&old[j]);
		atomic_init(&count[i], sum);
	}
}

const char *query_upstream_name(const struct snapshot *s, size_t g,
				char *buf, size_t cap)
{
	size_t n, at = 0;
	const struct conf_addr *sv = snapshot_servers(s, g, &n);

	buf[0] = '\0';
	for (size_t i = 0; i < n && at < cap; i++) {
		int k = snprintf(buf + at, cap - at, "%s%s", i ? "," : "",
				 sv[i].text);
		if (k < 0)
			break;
		at += (size_t)k;
	}
	return buf;
}

/* A label and its group, for sorting by label (then group). */
struct label {
	const char *name;
	size_t g;
};

static int label_cmp(const void *a, const void *b)
{
	const struct label *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->g > y->g) - (x->g < y->g);
}

static struct label *sorted_labels(char *const *names, size_t n)
{
	struct label *l = malloc((n ? n : 1) * sizeof(*l));
	if (!l)
		return NULL;
	for (size_t g = 0; g < n; g++)
		l[g] = (struct label){names[g], g};
	qsort(l, n, sizeof(*l), label_cmp);
	return l;
}

/* The upstream counters of s's groups, carried over by label from old
 * (a label in several groups keeps its sum in the first).  This runs
 * on the worker's loop as it adopts a snapshot: sorted labels and one
 * merge, so that thousands of forward rules cost n log n, not n
 * squared. */
static bool make_up(const struct snapshot *s, const struct hits *old,
		    struct hits *h)
{
	char name[4096];

	h->up_names = calloc(s->ngroups + 1, sizeof(*h->up_names));
	h->up = calloc(s->ngroups + 1, sizeof(*h->up));
	if (!h->up_names || !h->up) {
		hits_free(h);
		return false;
	}
	for (size_t g = 0; g < s->ngroups; g++) {
		query_upstream_name(s, g, name, sizeof(name));
		if (!(h->up_names[g] = strdup(name))) {
			hits_free(h);
			return false;
		}
		h->nup = g + 1;
	}
	struct label *nw = sorted_labels(h->up_names, h->nup);
	struct label *od = sorted_labels(old->up_names, old->nup);
	if (!nw || !od) {
		free(nw);
		free(od);
		hits_free(h);
		return false;
	}
	size_t j = 0;
	for (size_t i = 0; i < h->nup; i++) {
		if (i && strcmp(nw[i].name, nw[i - 1].name) == 0)
			continue; /* not the first group with its label */
		struct up_counters *u = &h->up[nw[i].g];
		while (j < old->nup && strcmp(od[j].name, nw[i].name) < 0)
			j++;
		for (; j < old->nup && strcmp(od[j].name, nw[i].name) == 0;
		     j++) {
			const struct up_counters *o = &old->up[od[j].g];
			atomic_fetch_add(&u->queries, atomic_load(&o->queries));
			atomic_fetch_add(&u->errors, atomic_load(&o->errors));
			atomic_fetch_add(&u->sum_ms, atomic_load(&o->sum_ms));
			for (size_t b = 0; b <= QUERY_LATENCY_BUCKETS; b++)
				atomic_fetch_add(&u->bucket[b],
						 atomic_load(&o->bucket[b]));
		}
	}
	free(nw);
	free(od);
	return true;
}

/* New counters for s, carrying over those of old. */
static bool make_hits(const struct snapshot *s, const struct hits *old,
		      struct hits *h)
{
	size_t ng = s->ncgroups;
	unsigned n = 0;

	*h = (struct hits){0};
	for (size_t k = 0; k < s->nsets; k++)
		n += s->sets[k] ? s->sets[k]->nsrc : 0;
	h->names = calloc(n + 1, sizeof(*h->names));
	h->count = calloc(n + 1, sizeof(*h->count));
	h->base = calloc(s->nsets + 1, sizeof(*h->base));
	h->group_names = calloc(ng + 1, sizeof(*h->group_names));
	h->group_queries = calloc(ng + 1, sizeof(*h->group_queries));
	h->group_blocked = calloc(ng + 1, sizeof(*h->group_blocked));
	if (!h->names || !h->count || !h->base || !h->group_names ||
	    !h->group_queries || !h->group_blocked) {
		hits_free(h);
		return false;
	}
	h->nsets = s->nsets;
	for (size_t k = 0; k < s->nsets; k++) {
		h->base[k] = h->n;
		for (unsigned i = 0; s->sets[k] && i < s->sets[k]->nsrc; i++)
			h->names[h->n++] = s->sets[k]->src[i].name;
	}
	h->base[s->nsets] = h->n;
	h->ngroups = ng;
	for (size_t i = 0; i < ng; i++)
		h->group_names[i] = s->cgroups[i].name;
	carry(h->names, h->count, h->n, old->names, old->count, old->n);
	carry(h->group_names, h->group_queries, ng, old->group_names,
	      old->group_queries, old->ngroups);
	carry(h->group_names, h->group_blocked, ng, old->group_names,
	      old->group_blocked, old->ngroups);
	return make_up(s, old, h);
}

bool query_env_adopt(struct query_env *env, struct snapshot *snap,
		     char *err, size_t errlen)
{
	struct epoch *ep = calloc(1, sizeof(*ep)), *old = env->cur;
	struct hits h;

	if (!ep) {
		snprintf(err, errlen, "out of memory");
		snapshot_unref(snap);
		return false;
	}
	ep->snap = snap;
	if (old && snapshot_same_upstreams(old->snap, snap)) {
		ep->groups = old->groups;
		ep->signed_groups = old->signed_groups;
		ep->upstream_gen = old->upstream_gen;
		old->groups = NULL;
		old->signed_groups = NULL;
	} else {
		/* Cached answers of replaced servers never match again. */
		ep->upstream_gen = (uint32_t)snap->generation;
		if (!make_groups(env, ep, err, errlen)) {
			epoch_free(env, ep);
			return false;
		}
	}
	if (!make_hits(snap, &env->hits, &h)) {
		if (old && !old->groups) {
			old->groups = ep->groups;
			old->signed_groups = ep->signed_groups;
			ep->groups = NULL;
			ep->signed_groups = NULL;
		}
		epoch_free(env, ep);
		snprintf(err, errlen, "out of memory");
		return false;
	}
	pthread_mutex_lock(&env->hits_mu);
	struct hits prev = env->hits;
	env->hits = h;
	pthread_mutex_unlock(&env->hits_mu);
	hits_free(&prev);
	env->cur = ep;
	if (old) {
		old->next = env->retired;
		env->retired = old;
		epoch_release(env, old);
	}
	return true;
}

/* ---- replies ---- */

/* The largest UDP reply this client takes (RFC 6891 6.2.5): 512 without
 * EDNS, else its size capped by ours, never below 512. */
static size_t udp_limit(const struct snapshot *s, const struct wire_query *wq)
{
	if (!wq->has_opt || wq->udp_size <= WIRE_UDP_MIN)
		return WIRE_UDP_MIN;
	return wq->udp_size < s->edns_size ? wq->udp_size : s->edns_size;
}

bool query_env_add_observer(struct query_env *env,
			    const struct query_observer *obs)
{
	if (env->nobs >= QUERY_MAX_OBSERVERS)
		return false;
	env->obs[env->nobs++] = *obs;
	return true;
}

/* The note for the next reply: its kind (and, for upstream answers, the
 * query's client group and arrival, which note_query sets). */
#define NOTE(env, k) ((env)->note.kind = QUERY_KIND_##k)

static void note_query(struct query_env *env, const struct query *q,
		       unsigned cgroup)
{
	env->note.cgroup = cgroup;
	env->note.list = NULL;
	env->note.t0 = q->t0;
	/* The labels are the current epoch's: an older one's groups are
	 * numbered otherwise. */
	env->note.upstream = q->ep == env->cur && q->group < env->hits.nup
				     ? env->hits.up_names[q->group]
				     : NULL;
}

static void observe_reply(struct query_env *env, const struct snapshot *s,
			  const struct query_client *c,
			  const struct wire_query *wq, const uint8_t *msg,
			  size_t len)
{
	const struct snapshot *cur = env->cur->snap;
	struct query_event ev = {
		.client = c,
		.wq = wq,
		.reply = msg,
		.reply_len = len,
		.kind = env->note.kind,
		.group = env->note.cgroup && env->note.cgroup < cur->ncgroups
				 ? cur->cgroups[env->note.cgroup].name
				 : NULL,
		.list = env->note.list,
		.upstream = env->note.upstream,
		.received = env->note.t0,
	};
	(void)s;
	for (unsigned i = 0; i < env->nobs; i++)
		if (env->obs[i].reply)
			env->obs[i].reply(env->obs[i].ctx, &ev);
}

static void observe_upstream(struct query_env *env, const struct query *q,
			     bool response, const uint8_t *pkt, size_t len)
{
	const char *kind = q->req.up ? q->req.up->ops->kind : "?";
	for (unsigned i = 0; i < env->nobs; i++)
		if (env->obs[i].upstream)
			env->obs[i].upstream(env->obs[i].ctx, response, kind,
					     pkt, len, &q->t_up);
}

/* Replies by rcode (the header's four bits: an extended RCODE of EDNS,
 * such as BADVERS, counts under its low bits). */
static void count_answer(struct query_env *env, const uint8_t *msg,
			 size_t len)
{
	if (len >= WIRE_HEADER_LEN)
		bump(&env->rcodes[msg[3] & 0xf]);
}

/* How client c's query ended (each client query once). */
static void count_kind(struct query_env *env, const struct query_client *c,
		       enum query_kind k)
{
	bump(&env->kinds[c->transport < QUERY_TRANSPORTS ? c->transport : 0]
			[k]);
	env->note.kind = k; /* and what the observers are told */
}

/* The single exit towards a client: fit to UDP size, then send. */
static void reply(struct query_env *env, const struct snapshot *s,
		  const struct query_client *c, const struct wire_query *wq,
		  uint8_t *msg, size_t len)
{
	if (!c->conn && len > udp_limit(s, wq)) {
		len = wire_truncate(msg, len, udp_limit(s, wq));
		COUNT(env, truncated);
	}
	if (len) {
		count_answer(env, msg, len);
		env->io.send(env->io.ctx, c, msg, len);
	}
	if (env->nobs && len)
		observe_reply(env, s, c, wq, msg, len);
}

static void reply_error(struct query_env *env, const struct snapshot *s,
			const struct query_client *c,
			const struct wire_query *wq, const uint8_t *pkt,
			unsigned rcode)
{
	size_t n = answer_error(wq, pkt, rcode, s->edns_size, env->out,
				sizeof(env->out));
	reply(env, s, c, wq, env->out, n);
}

/* The blocking answer of a client group (blk), built in env->merge: an
 * upstream reply in env->out may still be due to other waiting clients,
 * whose groups do not block it. */
static void reply_blocked(struct query_env *env, const struct snapshot *s,
			  const struct answer_block *blk,
			  const struct query_client *c,
			  const struct wire_query *wq, const uint8_t *pkt)
{
	size_t n = answer_blocked(blk, wq, pkt, s->edns_size, env->merge,
				  sizeof(env->merge));
	reply(env, s, c, wq, env->merge, n);
}

/* NXDOMAIN with a SOA, so that clients cache it (RFC 2308 5): for names
 * kept private and for rebind protection. */
static void reply_nxdomain(struct query_env *env, const struct snapshot *s,
			   const struct query_client *c,
			   const struct wire_query *wq, const uint8_t *pkt,
			   uint32_t ttl)
{
	struct answer_block nx = {.mode = CONF_BLOCK_NXDOMAIN, .ttl = ttl};
	size_t n = answer_blocked(&nx, wq, pkt, s->edns_size, env->out,
				  sizeof(env->out));
	reply(env, s, c, wq, env->out, n);
}

/* A reply made for another client with the same key (the leader's, or a
 * cached one) sent to c: its ID and letter case, its size.  msg is
 * copied first, so that it can serve the next client too.  False when it
 * cannot be (the caller answers otherwise). */
static bool reply_copy(struct query_env *env, const struct snapshot *s,
		       const struct query_client *c,
		       const struct wire_query *wq, const uint8_t *msg,
		       size_t len)
{
	/* A TSIG error reply may have no question (RFC 8945 5.3.2); one
	 * with a question has the client's name at its start. */
	bool question = len >= WIRE_HEADER_LEN && wire_get16(msg + 4) == 1;
	if (len < WIRE_HEADER_LEN + (question ? wq->qname_len : 0) ||
	    len > sizeof(env->merge))
		return false;
	memcpy(env->merge, msg, len);
	wire_set16(env->merge, wq->hdr.id);
	if (question)
		memcpy(env->merge + WIRE_HEADER_LEN, wq->qname, wq->qname_len);
	reply(env, s, c, wq, env->merge, len);
	return true;
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

/* ---- client limits ---- */

/* Count a refusal; one log line per ten seconds at most. */
static void note_limited(struct query_env *env, const struct query_client *c,
			 const char *what)
{
	uint64_t now = loop_now(env->loop);
	char addr[INET6_ADDRSTRLEN] = "?";

	COUNT(env, limited);
	env->limit_unlogged++;
	if (env->limit_log_ms && now - env->limit_log_ms < 10000)
		return;
	const void *a = c->peer.ss_family == AF_INET6
				? (const void *)&((const struct sockaddr_in6 *)&c->peer)->sin6_addr
				: (const void *)&((const struct sockaddr_in *)&c->peer)->sin_addr;
	inet_ntop(c->peer.ss_family, a, addr, sizeof(addr));
	log_warn("client %s over its limit of %s (limits in splitdns.conf); "
		 "%llu queries refused over limits since the last such line",
		 addr, what, (unsigned long long)env->limit_unlogged);
	env->limit_log_ms = now;
	env->limit_unlogged = 0;
}

/* limits.client_qps, for UDP (TCP costs a handshake a spoofer cannot
 * make).  Returns true when the query is done with. */
static bool over_rate(struct query_env *env, const struct snapshot *s,
		      const struct query_client *c,
		      const struct wire_query *wq, const uint8_t *pkt)
{
	if (!s->limits.qps || !env->limits || c->conn || !c->peerlen)
		return false;
	struct limit_client *lc = limit_client(
		env->limits, (const struct sockaddr *)&c->peer,
		loop_now(env->loop));
	if (!lc)
		return false;
	enum limit_verdict v = limit_rate(lc, &s->limits, loop_now(env->loop));
	if (v == LIMIT_PASS)
		return false;
	note_limited(env, c, "queries per second");
	count_kind(env, c, QUERY_KIND_LIMITED);
	if (v == LIMIT_SLIP) {
		/* An empty TC=1 answer: a real client asks again over TCP. */
		size_t n = answer_error(wq, pkt, WIRE_NOERROR, s->edns_size,
					env->out, sizeof(env->out));
		if (n >= WIRE_HEADER_LEN) {
			wire_set16(env->out + 2,
				   wire_get16(env->out + 2) | WIRE_TC);
			reply(env, s, c, wq, env->out, n);
		}
	}
	return true;
}

/* ---- the query objects ---- */

static struct query *query_get(struct query_env *env)
{
	struct query *q = env->free_list;
	if (env->inflight >= QUERY_MAX_INFLIGHT)
		return NULL;
	if (q)
		env->free_list = q->next_free;
	else if (!(q = malloc(sizeof(*q))))
		return NULL;
	memset(q, 0, offsetof(struct query, key));
	TAILQ_INIT(&q->waiters);
	q->env = env;
	q->ep = env->cur;
	q->ep->users++;
	q->pkt = q->inline_pkt;
	q->len = 0;
	q->chase = NULL;
	env->inflight++;
	return q;
}

static void stale_unlink(struct query_env *env, struct query *q)
{
	if (!q->stale_at)
		return;
	TAILQ_REMOVE(&env->stales, q, sl);
	q->stale_at = 0;
}

/* The client has its answer: no deadline, no stale fallback. */
static void mark_answered(struct query_env *env, struct query *q)
{
	if (q->answered)
		return;
	q->answered = true;
	if (q->role != ROLE_BACKGROUND) {
		TAILQ_REMOVE(&env->deadlines, q, dl);
		atomic_fetch_sub_explicit(&env->waiting, 1,
					  memory_order_relaxed);
	}
	stale_unlink(env, q);
}

static void table_remove(struct query_env *env, struct query *q)
{
	if (!q->shared)
		return;
	struct query **pp = &env->table[q->khash & (QUERY_TABLE - 1)];
	while (*pp && *pp != q)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = q->hnext;
	q->shared = false;
}

/* q goes upstream for key (hash h): identical queries may join it.  It
 * goes first in its chain, so that later ones join q rather than a
 * leader they could not join (a prefetch, or one on upstreams a reload
 * replaced). */
static void table_insert(struct query_env *env, struct query *q,
			 const uint8_t *key, size_t klen, uint32_t h)
{
	memcpy(q->key, key, klen);
	q->klen = klen;
	q->khash = h;
	q->shared = true;
	q->hnext = env->table[h & (QUERY_TABLE - 1)];
	env->table[h & (QUERY_TABLE - 1)] = q;
}

static struct query *table_find(struct query_env *env, const uint8_t *key,
				size_t klen, uint32_t h)
{
	for (struct query *q = env->table[h & (QUERY_TABLE - 1)]; q;
	     q = q->hnext)
		if (q->khash == h && q->klen == klen &&
		    memcmp(q->key, key, klen) == 0)
			return q;
	return NULL;
}

static void waiter_unlink(struct query *w)
{
	struct query *l = w->leader;
	if (!l)
		return;
	TAILQ_REMOVE(&l->waiters, w, wl);
	l->nwaiters--;
	w->leader = NULL;
}

/* The one place a query object ends. */
static void query_done(struct query *q)
{
	struct query_env *env = q->env;
	struct epoch *ep = q->ep;

	mark_answered(env, q);
	table_remove(env, q);
	waiter_unlink(q);
	/* A leader that goes leaves its waiters to their own deadlines. */
	while (!TAILQ_EMPTY(&q->waiters))
		waiter_unlink(TAILQ_FIRST(&q->waiters));
	if (q->client.conn)
		env->io.release(env->io.ctx, &q->client);
	if (q->lc)
		limit_inflight_done(q->lc);
	if (q->pkt != q->inline_pkt)
		free(q->pkt);
	if (q->chase) {
		free(q->chase->upstream_pkt);
		free(q->chase);
	}
	env->inflight--;
	q->next_free = env->free_list;
	env->free_list = q;
	ep->users--;
	epoch_release(env, ep);
}

/* Deadlines are now + one budget, so a new one belongs at the tail; only
 * a reload that shortened the budget makes it walk. */
static void dl_insert(struct query_env *env, struct query *q)
{
	struct query *at = TAILQ_LAST(&env->deadlines, qlist);
	while (at && at->deadline > q->deadline)
		at = TAILQ_PREV(at, qlist, dl);
	if (at)
		TAILQ_INSERT_AFTER(&env->deadlines, at, q, dl);
	else
		TAILQ_INSERT_HEAD(&env->deadlines, q, dl);
	if (TAILQ_FIRST(&env->deadlines) == q)
		loop_timer_set(env->loop, &env->deadline_timer, q->deadline);
}

static void stale_insert(struct query_env *env, struct query *q,
			 uint64_t when)
{
	q->stale_at = when;
	/* The offset is constant: always the tail. */
	TAILQ_INSERT_TAIL(&env->stales, q, sl);
	if (TAILQ_FIRST(&env->stales) == q)
		loop_timer_set(env->loop, &env->stale_timer, when);
}

/* A query object for client c's query wq from pkt, with a deadline. */
static struct query *query_new(struct query_env *env, enum query_role role,
			       const struct query_client *c,
			       const struct wire_query *wq,
			       const uint8_t *pkt, size_t len, size_t group)
{
	struct query *q = query_get(env);
	if (!q)
		return NULL;
	if (len > QUERY_INLINE && !(q->pkt = malloc(len))) {
		q->pkt = q->inline_pkt;
		q->answered = true;
		query_done(q);
		return NULL;
	}
	memcpy(q->pkt, pkt, len);
	q->len = len;
	/* Upstream gets our EDNS, not the client's options; a signed query
	 * goes as it is (its MAC covers the OPT). */
	if (!wq->has_tsig && !wq->has_tkey)
		q->len = wire_query_own_opt(q->pkt, len, wq,
					    q->ep->snap->edns_size);
	q->role = role;
	q->wq = *wq;
	q->group = group;
	q->t0 = env->note.t0;
	if (role == ROLE_BACKGROUND) {
		q->answered = true; /* nobody waits for it */
		return q;
	}
	q->client = *c;
	if (env->limits && c->peerlen) {
		struct limit_client *lc = limit_client(
			env->limits, (const struct sockaddr *)&c->peer,
			loop_now(env->loop));
		if (lc && !limit_inflight_take(lc, &q->ep->snap->limits)) {
			q->answered = true;
			query_done(q);
			note_limited(env, c, "queries in flight");
			return NULL;
		}
		q->lc = lc;
	}
	if (c->conn)
		env->io.hold(env->io.ctx, c);
	atomic_fetch_add_explicit(&env->waiting, 1, memory_order_relaxed);
	q->deadline = loop_now(env->loop) + (uint64_t)q->ep->snap->deadline_ms;
	dl_insert(env, q);
	return q;
}

/* ---- answering the clients of a finished upstream query ---- */

/* What became of an upstream query, for each client that waited. */
enum outcome {
	OUT_REPLY,   /* env->out holds the checked reply */
	OUT_FAIL,    /* stale answer if there is one, else SERVFAIL */
	OUT_REBIND,  /* NXDOMAIN: private address for a public name */
	OUT_BLOCKED, /* a CNAME of the reply reaches a blocked name */
};

/* Are the block lists of client group `group` in force, or paused
 * (pause.h)? */
static bool blocking_on(const struct query_env *env, size_t group)
{
	return !pause_any(env->pause) ||
	       !pause_active(env->pause, group, loop_now(env->loop));
}

/* Does a CNAME in the reply's answer section point at a name blocked
 * for qtype?  The deciding source goes to *src. */
static bool cname_blocked(struct query_env *env, const struct lists *blocks,
			  const uint8_t *msg, size_t len, uint16_t qtype,
			  unsigned *src)
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
						qtype, env->lists_scratch,
						src) == LISTS_BLOCKED)
			return true;
	}
	return false;
}

/* Does a CNAME of msg reach a name that client group g blocks (deep
 * CNAME blocking, block.cname)? */
static bool group_cname_blocked(struct query_env *env,
				const struct snapshot *s, size_t group,
				const uint8_t *msg, size_t n, uint16_t qtype,
				unsigned *src)
{
	const struct snapshot_group *g = &s->cgroups[group];
	return g->lists && g->cname && blocking_on(env, group) &&
	       cname_blocked(env, g->lists, msg, n, qtype, src);
}

/* The index of q's client group in the current snapshot, whose lists and
 * answers decide for every reply: its own when q started under it. */
static unsigned group_now(const struct query_env *env, const struct query *q)
{
	const struct snapshot *s = env->cur->snap;

	if (q->ep == env->cur)
		return q->cgroup;
	return snapshot_client_group(
	    s,
	    q->client.peerlen ? (const struct sockaddr *)&q->client.peer : NULL,
	    NULL);
}

static void count_hit(struct query_env *env, unsigned set, unsigned src)
{
	if (set < env->hits.nsets &&
	    src < env->hits.base[set + 1] - env->hits.base[set])
		bump(&env->hits.count[env->hits.base[set] + src]);
}

/* The name of block source src of set (borrowed from the snapshot in
 * use; the loop's own thread only), or NULL. */
static const char *source_name(const struct query_env *env, unsigned set,
			       unsigned src)
{
	if (set < env->hits.nsets &&
	    src < env->hits.base[set + 1] - env->hits.base[set])
		return env->hits.names[env->hits.base[set] + src];
	return NULL;
}

static void count_group(struct query_env *env, _Atomic uint64_t *counts,
			unsigned g)
{
	if (g < env->hits.ngroups)
		bump(&counts[g]);
}

/* A stored answer to wq (sent to upstream group) checked again, for a
 * client of group cgroup in the current snapshot, against today's block
 * lists and rebind rules (they may have changed since it was stored):
 * the same checks for a cache hit and a stale answer. */
static bool still_good(struct query_env *env, const struct wire_query *wq,
		       size_t group, unsigned cgroup, const uint8_t *msg,
		       size_t n)
{
	const struct snapshot *s = env->cur->snap;
	unsigned src;

	if (group_cname_blocked(env, s, cgroup, msg, n, wq->qtype, &src))
		return false;
	return !policy_rebind(s->policy, group, wq->qname, wq->qname_len, msg,
			      n);
}

/* RFC 8767: an expired answer rather than SERVFAIL, when there is one. */
static bool send_stale(struct query_env *env, const struct snapshot *s,
		       const struct query_client *c,
		       const struct wire_query *wq, size_t group,
		       unsigned cgroup, const uint8_t *key, size_t klen)
{
	if (!klen || s->cfg->cache_serve_stale == 0)
		return false;
	size_t n = cache_lookup_stale(env->cache, key, klen,
				      loop_now(env->loop), QUERY_STALE_TTL,
				      env->merge, sizeof(env->merge));
	if (n < WIRE_HEADER_LEN + wq->qname_len ||
	    !still_good(env, wq, group, cgroup, env->merge, n))
		return false;
	COUNT(env, stale);
	count_kind(env, c, QUERY_KIND_STALE);
	wire_set16(env->merge, wq->hdr.id);
	memcpy(env->merge + WIRE_HEADER_LEN, wq->qname, wq->qname_len);
	reply(env, s, c, wq, env->merge, n);
	return true;
}

static bool reply_stale(struct query_env *env, struct query *q)
{
	return send_stale(env, q->ep->snap, &q->client, &q->wq, q->group,
			  group_now(env, q), q->key, q->klen);
}

static void put_back_id(struct query *q)
{
	/* Error replies echo what the client sent: its ID too. */
	wire_set16(q->pkt, q->wq.hdr.id);
}

/* Does the reply in env->out (len bytes) reach, by a CNAME, a name that
 * q's client group blocks?  Each client is judged by its own group:
 * clients of groups with other lists may wait for the same reply. */
static bool blocked_for(struct query_env *env, const struct query *q,
			size_t len)
{
	const struct snapshot *s = env->cur->snap;
	unsigned g = group_now(env, q), src;

	if (!group_cname_blocked(env, s, g, env->out, len, q->wq.qtype, &src))
		return false;
	/* Deep CNAME blocking: trackers hidden behind a CNAME of a
	 * first-party name. */
	count_hit(env, s->cgroups[g].set, src);
	env->note.list = source_name(env, s->cgroups[g].set, src);
	log_debug("CNAME chain reaches a blocked name");
	return true;
}

static void answer_client(struct query_env *env, struct query *q,
			  enum outcome out, size_t len)
{
	const struct snapshot *s = q->ep->snap;

	if (q->answered)
		return;
	put_back_id(q);
	/* A chase found blocked by on_upstream: blocked_for noted its list. */
	const char *list = out == OUT_BLOCKED ? env->note.list : NULL;
	note_query(env, q, group_now(env, q));
	env->note.list = list;
	if (out == OUT_REPLY && blocked_for(env, q, len))
		out = OUT_BLOCKED;
	switch (out) {
	case OUT_REPLY:
		/* RFC 8767 4: an rcode other than NOERROR and NXDOMAIN
		 * is a failure to refresh: the stale answer, if any. */
		if (WIRE_RCODE(wire_get16(env->out + 2)) != WIRE_NOERROR &&
		    WIRE_RCODE(wire_get16(env->out + 2)) != WIRE_NXDOMAIN &&
		    reply_stale(env, q))
			break;
		NOTE(env, FORWARDED);
		if (reply_copy(env, s, &q->client, &q->wq, env->out, len)) {
			COUNT(env, answered);
			count_kind(env, &q->client, QUERY_KIND_FORWARDED);
			break;
		}
		COUNT(env, servfail); /* nothing that could be sent */
		count_kind(env, &q->client, QUERY_KIND_SERVFAIL);
		reply_error(env, s, &q->client, &q->wq, q->pkt, WIRE_SERVFAIL);
		break;
	case OUT_FAIL:
		if (!reply_stale(env, q)) {
			COUNT(env, servfail);
			count_kind(env, &q->client, QUERY_KIND_SERVFAIL);
			reply_error(env, s, &q->client, &q->wq, q->pkt,
				    WIRE_SERVFAIL);
		}
		break;
	case OUT_REBIND:
		COUNT(env, rebind);
		count_kind(env, &q->client, QUERY_KIND_REBIND);
		reply_nxdomain(env, s, &q->client, &q->wq, q->pkt, 60);
		break;
	case OUT_BLOCKED: {
		unsigned g = group_now(env, q);
		COUNT(env, blocked);
		count_kind(env, &q->client, QUERY_KIND_BLOCKED);
		count_group(env, env->hits.group_blocked, g);
		reply_blocked(env, s, &env->cur->snap->cgroups[g].block,
			      &q->client, &q->wq, q->pkt);
		break;
	}
	}
	mark_answered(env, q);
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
	uint16_t edns = q->ep->snap->edns_size;
	struct wire_buf b = {env->merge, 0, sizeof(env->merge), false};
	struct wire_header h;
	size_t off = WIRE_HEADER_LEN;
	unsigned rcode;

	wire_read_header(env->out, len, &h);
	rcode = WIRE_RCODE(h.flags);
	wire_put_bytes(&b, ch->body, ch->body_len);
	if (wire_read_name(env->out, len, &off, NULL) < 0 || len - off < 4)
		return answer_error(&q->wq, q->pkt, WIRE_SERVFAIL, edns,
				    env->merge, sizeof(env->merge));
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
		answer_opt(&b, &q->wq, rcode, edns);
	if (b.overflow)
		return answer_error(&q->wq, q->pkt, WIRE_SERVFAIL, edns,
				    env->merge, sizeof(env->merge));
	uint16_t flags = wire_get16(env->merge + 2);
	flags = (uint16_t)((flags & ~(WIRE_AA | 0xfu)) | rcode);
	wire_set16(env->merge + 2, flags);
	wire_set16(env->merge + 6, (uint16_t)(ch->ancount + an));
	wire_set16(env->merge + 8, (uint16_t)ns);
	wire_set16(env->merge + 10, q->wq.has_opt ? 1 : 0);
	return b.len;
}

/* Check the upstream reply in env->out; what it means for the clients. */
static enum outcome judge(struct query_env *env, struct query *q,
			  enum upstream_status st, const uint8_t *ans,
			  size_t *len)
{
	const struct snapshot *s = env->cur->snap; /* the newest rules */

	if (st != UPSTREAM_OK || *len > sizeof(env->out) ||
	    *len < WIRE_HEADER_LEN)
		return OUT_FAIL;
	memcpy(env->out, ans, *len);
	const uint8_t *qname = q->chase ? q->chase->target : q->wq.qname;
	size_t qname_len = q->chase ? q->chase->target_len : q->wq.qname_len;
	bool (*check)(uint8_t *, size_t, const uint8_t *, size_t, uint16_t,
		      uint16_t) = q->wq.has_tsig ? wire_check_reply_signed
						 : wire_check_reply;
	if (!check(env->out, *len, qname, qname_len, q->wq.qtype,
		   q->wq.qclass)) {
		log_debug("unusable upstream reply, answering SERVFAIL");
		return OUT_FAIL;
	}
	/* The group index means something only in the query's own epoch. */
	if (policy_rebind(q->ep->snap->policy, q->group, qname, qname_len,
			  env->out, *len)) {
		/* RFC-less but common: a public name must not point into the
		 * local network (DNS rebinding). */
		log_debug("rebind protection: private address for a public "
			  "name, answering NXDOMAIN");
		return OUT_REBIND;
	}
	/* Deep CNAME blocking is each client's own (blocked_for): the
	 * reply is stored whole, and cache hits are checked again. */
	/* Our OPT size; no server cookie that was made for us (newer
	 * c-ares rewrites client cookies).  A signed reply goes as it is:
	 * any edit would break its MAC (RFC 8945 5.3). */
	if (!q->wq.has_tsig)
		*len = wire_relay_opt(env->out, *len, s->edns_size);
	/* Not from upstreams a reload has replaced. */
	if (q->klen && q->ep->upstream_gen == env->cur->upstream_gen)
		cache_store(env->cache, q->key, q->klen, env->out, *len,
			    loop_now(env->loop));
	return OUT_REPLY;
}

/* What the upstream did with q: its group's counters and histogram,
 * and the slowest-names sketch (by lowered name, weighted by ms). */
static void count_upstream(struct query_env *env, const struct query *q,
			   enum upstream_status st, enum outcome out)
{
	if (st == UPSTREAM_CANCELLED || q->ep != env->cur ||
	    q->group >= env->hits.nup)
		return;
	struct up_counters *u = &env->hits.up[q->group];
	if (out == OUT_FAIL) {
		bump(&u->errors);
		return;
	}
	uint64_t now = loop_now(env->loop);
	uint64_t ms = now > q->sent_ms ? now - q->sent_ms : 0;
	size_t b = 0;
	while (b < QUERY_LATENCY_BUCKETS && ms > query_latency_ms[b])
		b++;
	bump(&u->bucket[b]);
	atomic_store_explicit(
	    &u->sum_ms,
	    atomic_load_explicit(&u->sum_ms, memory_order_relaxed) + ms,
	    memory_order_relaxed);
	if (env->top[QUERY_TOP_SLOW] && ms) {
		uint8_t name[WIRE_NAME_MAX];
		const uint8_t *qn = q->chase ? q->chase->target : q->wq.qname;
		size_t qlen = q->chase ? q->chase->target_len : q->wq.qname_len;
		wire_name_lower(name, qn, qlen);
		topk_add(env->top[QUERY_TOP_SLOW], name, qlen, ms);
	}
}

static void on_upstream(struct upstream_req *req, enum upstream_status st,
			const uint8_t *ans, size_t len)
{
	struct query *q = (struct query *)req;
	struct query_env *env = q->env;
	if (env->nobs && st == UPSTREAM_OK)
		observe_upstream(env, q, true, ans, len);
	enum outcome out = judge(env, q, st, ans, &len);

	count_upstream(env, q, st, out);

	table_remove(env, q); /* later identical queries start afresh */
	if (q->chase && !q->answered && out == OUT_REPLY &&
	    blocked_for(env, q, len))
		out = OUT_BLOCKED;
	if (q->chase && !q->answered && out == OUT_REPLY) {
		len = merge_chase(env, q, len);
		COUNT(env, answered);
		note_query(env, q, group_now(env, q));
		count_kind(env, &q->client, QUERY_KIND_FORWARDED);
		reply(env, q->ep->snap, &q->client, &q->wq, env->merge, len);
		mark_answered(env, q);
	}
	answer_client(env, q, out, len);
	struct query *w;
	while ((w = TAILQ_FIRST(&q->waiters))) {
		answer_client(env, w, out, len);
		query_done(w);
	}
	query_done(q);
	if (env->ndraining)
		loop_post(env->loop, &env->drain_task);
}

/* ---- timers ---- */

static void on_deadline(struct loop_timer *t, uint64_t now_ms)
{
	struct query_env *env = (struct query_env *)((char *)t -
		offsetof(struct query_env, deadline_timer));

	struct query *q;
	while ((q = TAILQ_FIRST(&env->deadlines)) && q->deadline <= now_ms) {
		answer_client(env, q, OUT_FAIL, 0);
		/* A waiter is done; a leader stays until the upstream lets
		 * go of it (it still holds req). */
		if (q->role == ROLE_WAITER)
			query_done(q);
	}
	if ((q = TAILQ_FIRST(&env->deadlines)))
		loop_timer_set(env->loop, t, q->deadline);
}

/* RFC 8767 5: the client-response timer ran out with an expired answer
 * at hand: serve it, let the upstream query go on to refresh it. */
static void on_stale(struct loop_timer *t, uint64_t now_ms)
{
	struct query_env *env = (struct query_env *)((char *)t -
		offsetof(struct query_env, stale_timer));

	struct query *q;
	while ((q = TAILQ_FIRST(&env->stales)) && q->stale_at <= now_ms) {
		stale_unlink(env, q);
		if (q->answered)
			continue;
		/* The observers' note is still the last query's. */
		note_query(env, q, group_now(env, q));
		if (reply_stale(env, q))
			mark_answered(env, q);
	}
	if ((q = TAILQ_FIRST(&env->stales)))
		loop_timer_set(env->loop, t, q->stale_at);
}

/* ---- acting on a route decision ---- */

static void count_verdict(struct query_env *env, const struct snapshot *s,
			  const struct route_decision *d)
{
	count_group(env, env->hits.group_queries, d->client_group);
	if (d->verdict != LISTS_NONE && !d->paused)
		count_hit(env, s->cgroups[d->client_group].set, d->src);
}

/* The busiest clients: the address's octets are the key. */
static void count_client(struct topk *t, const struct query_client *c)
{
	if (c->peer.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&c->peer;
		topk_add(t, a->sin6_addr.s6_addr, 16, 1);
	} else if (c->peer.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&c->peer;
		topk_add(t, (const uint8_t *)&a->sin_addr, 4, 1);
	}
}

/* The top lists (topk.h): every question asked, and the blocked ones,
 * by lowered name. */
static void count_top(struct query_env *env, const struct query_client *c,
		      const struct wire_query *wq,
		      const struct route_decision *d)
{
	uint8_t name[WIRE_NAME_MAX];

	if (d->kind == ROUTE_DROP || d->kind == ROUTE_ERROR ||
	    !env->top[QUERY_TOP_ASKED])
		return;
	wire_name_lower(name, wq->qname, wq->qname_len);
	topk_add(env->top[QUERY_TOP_ASKED], name, wq->qname_len, 1);
	if (d->kind == ROUTE_BLOCKED && env->top[QUERY_TOP_BLOCKED])
		topk_add(env->top[QUERY_TOP_BLOCKED], name, wq->qname_len, 1);
	if (env->top[QUERY_TOP_CLIENTS] && c->peerlen)
		count_client(env->top[QUERY_TOP_CLIENTS], c);
}

static void act_error(struct query_env *env, const struct snapshot *s,
		      const struct query_client *c,
		      const struct wire_query *wq, const uint8_t *pkt,
		      const struct route_decision *d)
{
	if (d->kind == ROUTE_ERROR) {
		COUNT(env, malformed);
		count_kind(env, c, QUERY_KIND_FORMERR);
	} else {
		COUNT(env, refused);
		count_kind(env, c, QUERY_KIND_REFUSED);
	}
	if (log_verbose())
		log_query(c, wq, d->why, (int)d->rcode);
	reply_error(env, s, c, wq, pkt, d->rcode);
}

static void act_badkey(struct query_env *env, const struct snapshot *s,
		       const struct query_client *c,
		       const struct wire_query *wq, const uint8_t *pkt,
		       const struct route_decision *d)
{
	size_t n = answer_tsig_error(wq, pkt, WIRE_TSIG_BADKEY, s->edns_size,
				     env->out, sizeof(env->out));
	COUNT(env, refused);
	count_kind(env, c, QUERY_KIND_REFUSED);
	if (log_verbose())
		log_query(c, wq, d->why, WIRE_NOTAUTH);
	if (n)
		reply(env, s, c, wq, env->out, n);
	else
		reply_error(env, s, c, wq, pkt, WIRE_NOTAUTH);
}

static void act_local(struct query_env *env, const struct snapshot *s,
		      const struct query_client *c,
		      const struct wire_query *wq,
		      const struct route_decision *d)
{
	if (d->canary)
		COUNT(env, canary);
	else
		COUNT(env, local);
	count_kind(env, c, d->canary ? QUERY_KIND_CANARY : QUERY_KIND_LOCAL);
	if (log_verbose())
		log_query(c, wq, "local", WIRE_RCODE(wire_get16(env->out + 2)));
	reply(env, s, c, wq, env->out, d->len);
}

static void act_blocked(struct query_env *env, const struct snapshot *s,
			const struct query_client *c,
			const struct wire_query *wq, const uint8_t *pkt,
			unsigned cgroup)
{
	COUNT(env, blocked);
	count_kind(env, c, QUERY_KIND_BLOCKED);
	count_group(env, env->hits.group_blocked, cgroup);
	if (log_verbose())
		log_query(c, wq, "blocked", -1);
	reply_blocked(env, s, &s->cgroups[cgroup].block, c, wq, pkt);
}

static void act_private(struct query_env *env, const struct snapshot *s,
			const struct query_client *c,
			const struct wire_query *wq, const uint8_t *pkt)
{
	COUNT(env, private_nx);
	count_kind(env, c, QUERY_KIND_PRIVATE);
	if (log_verbose())
		log_query(c, wq, "private name, not forwarded", WIRE_NXDOMAIN);
	reply_nxdomain(env, s, c, wq, pkt, 300);
}

static void servfail_now(struct query_env *env, const struct snapshot *s,
			 const struct query_client *c,
			 const struct wire_query *wq, const uint8_t *pkt)
{
	COUNT(env, servfail);
	count_kind(env, c, QUERY_KIND_SERVFAIL);
	reply_error(env, s, c, wq, pkt, WIRE_SERVFAIL);
}

/* Send q upstream (it is fully set up: nothing runs inside the send). */
static void send_up(struct query_env *env, struct query *q)
{
	struct upstream *u = q->ep->groups[q->group];
	q->sent_ms = loop_now(env->loop);
	if (q->ep == env->cur && q->group < env->hits.nup)
		bump(&env->hits.up[q->group].queries);
	if ((q->wq.has_tsig || q->wq.has_tkey) && q->ep->signed_groups)
		u = q->ep->signed_groups[q->group];
	if (env->nobs) {
		q->req.up = u; /* its kind, for the observers */
		clock_gettime(CLOCK_REALTIME, &q->t_up);
		if (q->chase)
			observe_upstream(env, q, false, q->chase->upstream_pkt,
					 q->chase->upstream_len);
		else
			observe_upstream(env, q, false, q->pkt, q->len);
	}
	if (q->chase)
		upstream_send(u, &q->req, q->chase->upstream_pkt,
			      q->chase->upstream_len, on_upstream);
	else
		upstream_send(u, &q->req, q->pkt, q->len, on_upstream);
}

/* A background refresh of a cached answer near its expiry. */
static void prefetch(struct query_env *env, const struct wire_query *wq,
		     const uint8_t *pkt, size_t len, size_t group,
		     const uint8_t *key, size_t klen, uint32_t h)
{
	if (table_find(env, key, klen, h))
		return; /* one refresh per key at a time */
	struct query *q = query_new(env, ROLE_BACKGROUND, NULL, wq, pkt, len,
				    group);
	if (!q)
		return;
	table_insert(env, q, key, klen, h);
	COUNT(env, prefetched);
	send_up(env, q);
}

/* Answer from the cache: the client's ID and spelling, TTLs aged, and
 * the block list and rebind rules consulted again (they may have changed
 * since the answer was stored: the upstream path decides those). */
static bool from_cache(struct query_env *env, const struct snapshot *s,
		       const struct query_client *c,
		       const struct wire_query *wq, size_t group,
		       unsigned cgroup, const uint8_t *key, size_t klen,
		       struct cache_hit *hit)
{
	size_t n = cache_lookup(env->cache, key, klen, loop_now(env->loop),
				env->out, sizeof(env->out), hit);

	if (n == 0 || n < WIRE_HEADER_LEN + wq->qname_len)
		return false;
	if (!still_good(env, wq, group, cgroup, env->out, n)) {
		hit->prefetch = hit->stale = false;
		return false;
	}
	wire_set16(env->out, wq->hdr.id);
	memcpy(env->out + WIRE_HEADER_LEN, wq->qname, wq->qname_len);
	COUNT(env, cached);
	count_kind(env, c, QUERY_KIND_CACHED);
	if (log_verbose())
		log_query(c, wq, "cache", WIRE_RCODE(wire_get16(env->out + 2)));
	reply(env, s, c, wq, env->out, n);
	return true;
}

/* Wait for the identical query already upstream. */
static bool join(struct query_env *env, const struct snapshot *s,
		 const struct query_client *c, const struct wire_query *wq,
		 const uint8_t *pkt, size_t len, unsigned cgroup,
		 struct query *leader, bool stale)
{
	if (leader->role == ROLE_BACKGROUND || leader->ep != env->cur)
		return false; /* a prefetch, or old upstreams: go alone */
	if (leader->nwaiters >= QUERY_MAX_WAITERS) {
		/* Past the bound: an expired answer if there is one. */
		if (!(stale && send_stale(env, s, c, wq, leader->group, cgroup,
					  leader->key, leader->klen)))
			servfail_now(env, s, c, wq, pkt);
		return true;
	}
	struct query *w = query_new(env, ROLE_WAITER, c, wq, pkt, len,
				    leader->group);
	if (!w) {
		servfail_now(env, s, c, wq, pkt);
		return true;
	}
	w->cgroup = cgroup;
	memcpy(w->key, leader->key, leader->klen);
	w->klen = leader->klen;
	w->khash = leader->khash;
	if (stale && s->cfg->cache_serve_stale)
		stale_insert(env, w, loop_now(env->loop) + QUERY_STALE_AFTER_MS);
	w->leader = leader;
	TAILQ_INSERT_HEAD(&leader->waiters, w, wl);
	leader->nwaiters++;
	COUNT(env, forwarded);
	COUNT(env, joined);
	if (log_verbose())
		log_query(c, wq, "joined a query in flight", -1);
	return true;
}

static void relay_alone(struct query_env *env, const struct snapshot *s,
			const struct query_client *c,
			const struct wire_query *wq, const uint8_t *pkt,
			size_t len, size_t group, unsigned cgroup)
{
	struct query *q = env->cur->groups[group]
				  ? query_new(env, ROLE_LEADER, c, wq, pkt, len,
					      group)
				  : NULL;
	COUNT(env, forwarded);
	if (!q) {
		servfail_now(env, s, c, wq, pkt);
		return;
	}
	q->cgroup = cgroup;
	if (log_verbose())
		log_query(c, wq, "forward, signed", -1);
	send_up(env, q);
}

static void act_forward(struct query_env *env, const struct snapshot *s,
			const struct query_client *c,
			const struct wire_query *wq, const uint8_t *pkt,
			size_t len, size_t group, unsigned cgroup)
{
	uint8_t key[CACHE_KEY_MAX];
	struct cache_hit hit = {false, false};

	/* A signed query (RFC 8945 5.3) or a key negotiation (RFC 2930)
	 * is the client's own business with the upstream: never answered
	 * from the cache, never stored, never shared. */
	if (wq->has_tsig || wq->has_tkey) {
		relay_alone(env, s, c, wq, pkt, len, group, cgroup);
		return;
	}
	size_t klen = cache_key(key, wq, group, env->cur->upstream_gen);
	if (from_cache(env, s, c, wq, group, cgroup, key, klen, &hit)) {
		if (hit.prefetch && s->cfg->cache_prefetch)
			prefetch(env, wq, pkt, len, group, key, klen,
				 cache_key_hash(env->cache, key, klen));
		return;
	}
	/* The table's hash, only past the cache (which hashes for itself). */
	uint32_t h = cache_key_hash(env->cache, key, klen);
	struct query *leader = table_find(env, key, klen, h);
	if (leader && join(env, s, c, wq, pkt, len, cgroup, leader, hit.stale))
		return;
	if (!env->cur->groups[group]) {
		servfail_now(env, s, c, wq, pkt);
		return;
	}
	struct query *q = query_new(env, ROLE_LEADER, c, wq, pkt, len, group);
	COUNT(env, forwarded);
	if (!q) {
		servfail_now(env, s, c, wq, pkt);
		return;
	}
	q->cgroup = cgroup;
	table_insert(env, q, key, klen, h);
	if (hit.stale && s->cfg->cache_serve_stale)
		stale_insert(env, q, loop_now(env->loop) + QUERY_STALE_AFTER_MS);
	if (log_verbose())
		log_query(c, wq, group ? "forward rule" : "forward", -1);
	send_up(env, q);
}

/*
 * A local CNAME chain ends at a name routed upstream: ask for that name
 * (same type, the client's RD/CD and OPT) and answer with both parts.
 * Memory running out answers the chain as it is.
 */
static void act_chase(struct query_env *env, const struct snapshot *s,
		      const struct query_client *c,
		      const struct wire_query *wq, const uint8_t *pkt,
		      size_t len, const struct route_decision *d)
{
	const struct answer_chase *ac = &d->chase;
	struct chase *ch = malloc(sizeof(*ch) + ac->body_len);
	size_t ulen = WIRE_HEADER_LEN + ac->target_len + 4 +
		      (wq->has_opt ? WIRE_OPT_BARE : 0);
	uint8_t *u = malloc(ulen);
	struct query *q = ch && u ? query_new(env, ROLE_LEADER, c, wq, pkt,
					      len, d->group)
				  : NULL;

	if (!q) {
		free(ch);
		free(u);
		act_local(env, s, c, wq, d);
		return;
	}
	q->cgroup = d->client_group;
	memcpy(ch->target, ac->target, ac->target_len);
	ch->target_len = ac->target_len;
	ch->ancount = ac->ancount;
	ch->body_len = ac->body_len;
	memcpy(ch->body, env->out, ac->body_len);
	ch->upstream_pkt = u;
	ch->upstream_len = ulen;
	struct wire_buf b = {u, 0, ulen, false};
	wire_put16(&b, 0); /* the backend writes its own ID */
	wire_put16(&b, wq->hdr.flags & (WIRE_RD | WIRE_CD));
	wire_put16(&b, 1);
	wire_put16(&b, 0);
	wire_put16(&b, 0);
	wire_put16(&b, wq->has_opt ? 1 : 0);
	wire_put_bytes(&b, ac->target, ac->target_len);
	wire_put16(&b, wq->qtype);
	wire_put16(&b, wq->qclass);
	if (wq->has_opt) {
		/* Our OPT, as for every forwarded query (RFC 6891 6.1.1). */
		wire_put_bytes(&b, (const uint8_t[]){0, 0, WIRE_T_OPT}, 3);
		wire_put16(&b, s->edns_size);
		wire_put16(&b, 0);
		wire_put16(&b, wq->do_bit ? 0x8000 : 0);
		wire_put16(&b, 0);
	}
	q->chase = ch;
	COUNT(env, forwarded);
	if (log_verbose())
		log_query(c, wq, "local CNAME, target upstream", -1);
	send_up(env, q);
}

void query_handle(struct query_env *env, const struct query_client *c,
		  const uint8_t *pkt, size_t len)
{
	const struct snapshot *s = env->cur->snap;
	struct route_ctx ctx = {
		.pkt = pkt,
		.len = len,
		.client = c->peerlen ? (const struct sockaddr *)&c->peer : NULL,
		.transport = c->conn ? ROUTE_TCP : ROUTE_UDP,
		.scratch = env->lists_scratch,
		.pause = env->pause,
		.now_ms = pause_any(env->pause) ? loop_now(env->loop) : 0,
	};
	struct route_decision d;
	struct wire_query wq;

	COUNT(env, queries);
	if (env->nobs) {
		clock_gettime(CLOCK_REALTIME, &env->note.t0);
		for (unsigned i = 0; i < env->nobs; i++)
			if (env->obs[i].query)
				env->obs[i].query(env->obs[i].ctx, c, pkt, len,
						  &env->note.t0);
	}
	route(s, &ctx, &wq, env->out, sizeof(env->out), &d);
	env->note.cgroup = d.client_group;
	env->note.upstream = NULL;
	env->note.list = d.kind == ROUTE_BLOCKED
				 ? source_name(env, s->cgroups[d.client_group].set,
					       d.src)
				 : NULL;
	if (d.kind != ROUTE_DROP && over_rate(env, s, c, &wq, pkt))
		return;
	count_verdict(env, s, &d);
	count_top(env, c, &wq, &d);
	switch (d.kind) {
	case ROUTE_DROP:
		COUNT(env, dropped);
		count_kind(env, c, QUERY_KIND_DROPPED);
		return;
	case ROUTE_ERROR:
	case ROUTE_REFUSED:
		act_error(env, s, c, &wq, pkt, &d);
		return;
	case ROUTE_LOCAL:
		act_local(env, s, c, &wq, &d);
		return;
	case ROUTE_CHASE:
		act_chase(env, s, c, &wq, pkt, len, &d);
		return;
	case ROUTE_BLOCKED:
		act_blocked(env, s, c, &wq, pkt, d.client_group);
		return;
	case ROUTE_PRIVATE:
		act_private(env, s, c, &wq, pkt);
		return;
	case ROUTE_FORWARD:
		act_forward(env, s, c, &wq, pkt, len, d.group, d.client_group);
		return;
	case ROUTE_BADKEY:
		act_badkey(env, s, c, &wq, pkt, &d);
		return;
	}
}

/* ---- the rest of the interface ---- */

bool query_env_client_allowed(void *ctx, const struct sockaddr *sa)
{
	const struct query_env *env = ctx;
	return !env->cur || policy_client_allowed(env->cur->snap->policy, sa);
}

size_t query_env_waiting(const struct query_env *env)
{
	return atomic_load_explicit(&env->waiting, memory_order_relaxed);
}

void query_env_stats(const struct query_env *env, struct query_stats *sum)
{
#define QUERY_STAT_ADD(name) \
	sum->name += atomic_load_explicit(&env->st.name, memory_order_relaxed);
	QUERY_STATS(QUERY_STAT_ADD)
#undef QUERY_STAT_ADD
}

#define QUERY_KIND_LABEL(id, label) label,
static const char *const kind_names[] = {QUERY_KINDS(QUERY_KIND_LABEL)};
#undef QUERY_KIND_LABEL

const char *query_kind_name(enum query_kind k)
{
	return k < QUERY_NKINDS ? kind_names[k] : "?";
}

const char *query_transport_name(enum query_transport t)
{
	static const char *const names[] = {"udp", "tcp", "tls", "https"};
	return t < QUERY_TRANSPORTS ? names[t] : "?";
}

uint64_t query_env_kind(const struct query_env *env, enum query_transport t,
			enum query_kind k)
{
	return atomic_load_explicit(&env->kinds[t][k], memory_order_relaxed);
}

uint64_t query_env_rcode(const struct query_env *env, unsigned rcode)
{
	return atomic_load_explicit(&env->rcodes[rcode & 0xf],
				    memory_order_relaxed);
}

void query_env_upstream_each(struct query_env *env,
			     void (*fn)(void *ctx, const char *name,
					const struct query_upstream_stats *u),
			     void *ctx)
{
	pthread_mutex_lock(&env->hits_mu);
	for (size_t g = 0; g < env->hits.nup; g++) {
		const struct up_counters *u = &env->hits.up[g];
		struct query_upstream_stats st = {
		    .queries = atomic_load_explicit(&u->queries,
						    memory_order_relaxed),
		    .errors = atomic_load_explicit(&u->errors,
						   memory_order_relaxed),
		    .sum_ms = atomic_load_explicit(&u->sum_ms,
						   memory_order_relaxed),
		};
		for (size_t b = 0; b <= QUERY_LATENCY_BUCKETS; b++)
			st.bucket[b] = atomic_load_explicit(
			    &u->bucket[b], memory_order_relaxed);
		fn(ctx, env->hits.up_names[g], &st);
	}
	pthread_mutex_unlock(&env->hits_mu);
}

uint64_t query_env_hits(struct query_env *env, const char *name)
{
	uint64_t n = 0;

	pthread_mutex_lock(&env->hits_mu);
	for (unsigned i = 0; i < env->hits.n; i++)
		if (strcmp(env->hits.names[i], name) == 0)
			n += atomic_load_explicit(&env->hits.count[i],
						  memory_order_relaxed);
	pthread_mutex_unlock(&env->hits_mu);
	return n;
}

void query_env_set_pause(struct query_env *env, const struct pause_state *p)
{
	env->pause = p;
}

size_t query_env_top(const struct query_env *env, enum query_top kind,
		     struct topk_entry *out, size_t cap, uint64_t *total)
{
	const struct topk *t = env->top[kind];

	if (!t)
		return 0;
	*total += topk_total(t);
	return topk_read(t, out, cap);
}

void query_env_group_stats(struct query_env *env, const char *name,
			   uint64_t *queries, uint64_t *blocked)
{
	pthread_mutex_lock(&env->hits_mu);
	for (size_t i = 0; i < env->hits.ngroups; i++)
		if (strcmp(env->hits.group_names[i], name) == 0) {
			*queries += atomic_load_explicit(
			    &env->hits.group_queries[i], memory_order_relaxed);
			*blocked += atomic_load_explicit(
			    &env->hits.group_blocked[i], memory_order_relaxed);
		}
	pthread_mutex_unlock(&env->hits_mu);
}

void query_env_free(struct query_env *env)
{
	if (!env)
		return;
	/* Freeing the upstreams completes their queries (cancelled: the
	 * clients still waiting get SERVFAIL), which releases the epochs. */
	if (env->cur) {
		struct epoch *cur = env->cur;
		free_groups(env, cur);
		for (struct epoch *ep = env->retired; ep; ep = ep->next)
			free_groups(env, ep);
		while (env->ndraining)
			upstream_free(env->draining[--env->ndraining]);
		/* Waiters whose leader went: answer and free them. */
		struct query *q;
		while ((q = TAILQ_FIRST(&env->deadlines))) {
			answer_client(env, q, OUT_FAIL, 0);
			query_done(q);
		}
		env->cur = NULL;
		epoch_release(env, cur);
		while (env->retired) {
			struct epoch *ep = env->retired;
			env->retired = ep->next;
			epoch_free(env, ep);
		}
	}
	loop_timer_del(env->loop, &env->deadline_timer);
	loop_timer_del(env->loop, &env->stale_timer);
	loop_unpost(env->loop, &env->drain_task);
	free(env->draining);
	while (env->free_list) {
		struct query *q = env->free_list;
		env->free_list = q->next_free;
		free(q);
	}
	hits_free(&env->hits);
	for (int i = 0; i < QUERY_TOP_KINDS; i++)
		topk_free(env->top[i]);
	limit_free(env->limits);
	lists_scratch_free(env->lists_scratch);
	pthread_mutex_destroy(&env->hits_mu);
	free(env);
}
