/*
 * qlog.c - the query log (qlog.h): per-worker rings filled by the
 * pipeline's observer, one writer thread that formats the lines as JSON
 * and writes them to a file it rotates by size, or to syslog.
 *
 * The serving loops only copy a reply's fields into a ring slot: no
 * lock, no allocation, no system call but the clock (vDSO).  Everything
 * else, formatting included, is the writer's.  The writer polls the
 * rings (10 ms when they are all empty), so that the workers never have
 * to wake it: a wake-up would be a system call per query.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "qlog.h"
#include "query.h"
#include "wire.h"

/* ---- the ring: one producer (a worker), one consumer (the writer) ---- */

struct qlog_ring {
	/* The producer's line: head, its copy of tail, its drops. */
	_Alignas(64) _Atomic uint64_t head;
	uint64_t tail_seen;
	_Atomic uint64_t dropped;
	/* The consumer's line. */
	_Alignas(64) _Atomic uint64_t tail;
	uint64_t head_seen;
	uint64_t mask;
	struct qlog_entry *slots;
};

struct qlog_ring *qlog_ring_new(unsigned n)
{
	uint64_t cap = 2;
	struct qlog_ring *r;

	while (cap < n)
		cap <<= 1;
	if (!(r = aligned_alloc(64, sizeof(*r))))
		return NULL;
	memset(r, 0, sizeof(*r));
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	atomic_init(&r->dropped, 0);
	r->mask = cap - 1;
	if (!(r->slots = calloc(cap, sizeof(*r->slots)))) {
		free(r);
		return NULL;
	}
	return r;
}

void qlog_ring_free(struct qlog_ring *r)
{
	if (!r)
		return;
	free(r->slots);
	free(r);
}

struct qlog_entry *qlog_ring_slot(struct qlog_ring *r)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (h - r->tail_seen > r->mask) {
		r->tail_seen =
		    atomic_load_explicit(&r->tail, memory_order_acquire);
		if (h - r->tail_seen > r->mask) {
			atomic_store_explicit(
			    &r->dropped,
			    atomic_load_explicit(&r->dropped,
						 memory_order_relaxed) +
				1,
			    memory_order_relaxed);
			return NULL;
		}
	}
	return &r->slots[h & r->mask];
}

void qlog_ring_push(struct qlog_ring *r)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

const struct qlog_entry *qlog_ring_peek(struct qlog_ring *r)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (t == r->head_seen) {
		r->head_seen =
		    atomic_load_explicit(&r->head, memory_order_acquire);
		if (t == r->head_seen)
			return NULL;
	}
	return &r->slots[t & r->mask];
}

void qlog_ring_pop(struct qlog_ring *r)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}

uint64_t qlog_ring_dropped(const struct qlog_ring *r)
{
	return atomic_load_explicit(&r->dropped, memory_order_relaxed);
}

/* ---- formatting (the writer's thread, and the unit tests) ---- */

/* An output cursor that never runs past cap (the caller gives room for
 * the longest line, so nothing is cut in practice). */
struct out {
	char *p;
	size_t n, cap;
};

static void put(struct out *o, const char *s)
{
	size_t len = strlen(s);
	if (len > o->cap - o->n)
		len = o->cap - o->n;
	memcpy(o->p + o->n, s, len);
	o->n += len;
}

/* v in decimal, at least width digits (zeros before). */
static void put_uint(struct out *o, uint64_t v, int width)
{
	char d[24];
	int n = 0;

	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v || n < width);
	while (n && o->n < o->cap)
		o->p[o->n++] = d[--n];
}

/* The civil date of a day count since 1970-01-01 (proleptic Gregorian),
 * counted in 400-year eras of 146097 days from 0000-03-01, so that the
 * leap day ends each year. */
static void civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t z = days + 719468; /* days from 0000-03-01 */
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097); /* 0..146096 */
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* 0..365 */
	unsigned mp = (5 * doy + 2) / 153;			/* 0: March */

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* RFC 3339, UTC, milliseconds: 2026-12-02T13:10:00.123Z. */
static void put_time(struct out *o, const struct timespec *t)
{
	int64_t secs = t->tv_sec, y;
	int64_t days = (secs >= 0 ? secs : secs - 86399) / 86400;
	unsigned rem = (unsigned)(secs - days * 86400), m, d;

	civil(days, &y, &m, &d);
	put_uint(o, y < 0 ? 0 : (uint64_t)y, 4);
	put(o, "-");
	put_uint(o, m, 2);
	put(o, "-");
	put_uint(o, d, 2);
	put(o, "T");
	put_uint(o, rem / 3600, 2);
	put(o, ":");
	put_uint(o, rem / 60 % 60, 2);
	put(o, ":");
	put_uint(o, rem % 60, 2);
	put(o, ".");
	put_uint(o, (uint64_t)t->tv_nsec / 1000000, 3);
	put(o, "Z");
}

/* A JSON string with its quotes. */
static void put_str(struct out *o, const char *s, size_t n)
{
	put(o, "\"");
	o->n += qlog_json_text(o->p + o->n, o->cap - o->n, s, n);
	put(o, "\"");
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* of the second byte */

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

size_t qlog_json_text(char *buf, size_t cap, const char *text, size_t n)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		char esc[8];
		const char *w = esc;
		size_t len = 1;
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc[2] = '\0';
		} else if (c == '\n') {
			w = "\\n";
		} else if (c == '\t') {
			w = "\\t";
		} else if (c == '\r') {
			w = "\\r";
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else if (c < 0x80) {
			esc[0] = (char)c;
			esc[1] = '\0';
		} else if ((len = utf8_len(s + i, n - i)) != 0) {
			if (cap - o < len)
				break;
			memcpy(buf + o, s + i, len);
			o += len;
			i += len;
			continue;
		} else {
			len = 1;
			w = "\\ufffd";
		}
		size_t wl = strlen(w);
		if (cap - o < wl)
			break;
		memcpy(buf + o, w, wl);
		o += wl;
		i += len;
	}
	return o;
}

/* RFC 3597 5 for the types without a mnemonic here. */
static const char *type_text(uint16_t t, char *buf, size_t cap)
{
	static const struct {
		uint16_t type;
		const char *name;
	} names[] = {
	    {1, "A"},	    {2, "NS"},	     {5, "CNAME"},
	    {6, "SOA"},	    {12, "PTR"},     {13, "HINFO"},
	    {15, "MX"},	    {16, "TXT"},     {17, "RP"},
	    {18, "AFSDB"},  {24, "SIG"},     {25, "KEY"},
	    {28, "AAAA"},   {29, "LOC"},     {33, "SRV"},
	    {35, "NAPTR"},  {36, "KX"},	     {37, "CERT"},
	    {39, "DNAME"},  {41, "OPT"},     {42, "APL"},
	    {43, "DS"},	    {44, "SSHFP"},   {45, "IPSECKEY"},
	    {46, "RRSIG"},  {47, "NSEC"},    {48, "DNSKEY"},
	    {49, "DHCID"},  {50, "NSEC3"},   {51, "NSEC3PARAM"},
	    {52, "TLSA"},   {53, "SMIMEA"},  {55, "HIP"},
	    {59, "CDS"},    {60, "CDNSKEY"}, {61, "OPENPGPKEY"},
	    {62, "CSYNC"},  {63, "ZONEMD"},  {64, "SVCB"},
	    {65, "HTTPS"},  {99, "SPF"},     {108, "EUI48"},
	    {109, "EUI64"}, {249, "TKEY"},   {250, "TSIG"},
	    {251, "IXFR"},  {252, "AXFR"},   {255, "ANY"},
	    {256, "URI"},   {257, "CAA"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].type == t)
			return names[i].name;
	snprintf(buf, cap, "TYPE%u", t);
	return buf;
}

static const char *class_text(uint16_t c, char *buf, size_t cap)
{
	switch (c) {
	case 1:
		return "IN";
	case 3:
		return "CH";
	case 4:
		return "HS";
	case 254:
		return "NONE";
	case 255:
		return "ANY";
	}
	snprintf(buf, cap, "CLASS%u", c);
	return buf;
}

/* RFC 6895 2.3 (the header's four bits only). */
static const char *rcode_text(unsigned rc, char *buf, size_t cap)
{
	static const char *const names[] = {
	    "NOERROR",	"FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	    "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE"};
	if (rc < sizeof(names) / sizeof(names[0]))
		return names[rc];
	snprintf(buf, cap, "RCODE%u", rc);
	return buf;
}

/* The client's address as the privacy setting lets it be written, or
 * NULL for none. */
static const char *client_text(const struct qlog_entry *e,
			       enum qlog_privacy privacy, char *buf, size_t cap)
{
	uint8_t a[16];

	if (privacy == QLOG_PRIVACY_HIDE ||
	    (e->family != AF_INET && e->family != AF_INET6))
		return NULL;
	memcpy(a, e->addr, sizeof(a));
	if (privacy == QLOG_PRIVACY_MASK) {
		if (e->family == AF_INET)
			a[3] = 0; /* /24 */
		else
			memset(a + 6, 0, 10); /* /48 */
	}
	return inet_ntop(e->family == AF_INET ? AF_INET : AF_INET6, a, buf,
			 (socklen_t)cap);
}

size_t qlog_format(const struct qlog_entry *e, enum qlog_privacy privacy,
		   char *buf, size_t cap)
{
	struct out o = {buf, 0, cap - 1}; /* room for the newline */
	char tmp[INET6_ADDRSTRLEN + 16], name[1100];

	put(&o, "{\"time\":\"");
	put_time(&o, &e->received);
	const char *client = client_text(e, privacy, tmp, sizeof(tmp));
	if (client) {
		put(&o, "\",\"client\":\"");
		put(&o, client);
		if (privacy == QLOG_PRIVACY_NONE) {
			put(&o, "\",\"port\":");
			put_uint(&o, e->port, 1);
			put(&o, ",\"");
		} else {
			put(&o, "\",\"");
		}
	} else {
		put(&o, "\",\"");
	}
	put(&o, "transport\":\"");
	put(&o, query_transport_name((enum query_transport)e->transport));
	if (e->qname_len) {
		wire_name_to_text(e->qname, e->qname_len, name, sizeof(name));
		put(&o, "\",\"name\":");
		put_str(&o, name, strlen(name));
		put(&o, ",\"type\":\"");
		put(&o, type_text(e->qtype, tmp, sizeof(tmp)));
		put(&o, "\",\"class\":\"");
		put(&o, class_text(e->qclass, tmp, sizeof(tmp)));
	}
	put(&o, "\",\"kind\":\"");
	put(&o, query_kind_name((enum query_kind)e->kind));
	put(&o, "\"");
	if (e->group[0]) {
		put(&o, ",\"group\":");
		put_str(&o, e->group, strnlen(e->group, sizeof(e->group)));
	}
	if (e->list[0]) {
		put(&o, ",\"list\":");
		put_str(&o, e->list, strnlen(e->list, sizeof(e->list)));
	}
	if (e->upstream[0]) {
		put(&o, ",\"upstream\":");
		put_str(&o, e->upstream, strnlen(e->upstream, sizeof(e->upstream)));
	}
	put(&o, ",\"rcode\":\"");
	put(&o, rcode_text(e->rcode, tmp, sizeof(tmp)));
	put(&o, "\",\"answers\":");
	put_uint(&o, e->answers, 1);
	put(&o, ",\"duration_ms\":");
	put_uint(&o, e->duration_us / 1000, 1);
	put(&o, ".");
	put_uint(&o, e->duration_us % 1000, 3);
	put(&o, "}");
	buf[o.n++] = '\n';
	return o.n;
}

/* ---- the observer (on each worker's thread) ---- */

struct producer {
	struct qlog_ring *ring;
};

/* Copy a NUL-terminated string, cut to fit. */
static void copy_text(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

static void on_reply(void *ctx, const struct query_event *ev)
{
	struct producer *p = ctx;
	struct qlog_entry *e = qlog_ring_slot(p->ring);
	const struct query_client *c = ev->client;
	struct timespec now;

	if (!e)
		return; /* full: counted */
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t us = ((int64_t)now.tv_sec - ev->received.tv_sec) * 1000000 +
		     (now.tv_nsec - ev->received.tv_nsec) / 1000;
	e->received = ev->received;
	e->duration_us = us < 0		   ? 0
			 : us > UINT32_MAX ? UINT32_MAX
					   : (uint32_t)us;
	e->kind = (uint8_t)ev->kind;
	e->transport = (uint8_t)c->transport;
	e->family = 0;
	if (c->peerlen && c->peer.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&c->peer;
		e->family = AF_INET;
		memcpy(e->addr, &sin->sin_addr, 4);
		e->port = ntohs(sin->sin_port);
	} else if (c->peerlen && c->peer.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)&c->peer;
		e->family = AF_INET6;
		memcpy(e->addr, &sin6->sin6_addr, 16);
		e->port = ntohs(sin6->sin6_port);
	}
	e->qname_len = 0;
	if (ev->wq && ev->wq->qname_len &&
	    ev->wq->qname_len <= sizeof(e->qname)) {
		e->qname_len = (uint16_t)ev->wq->qname_len;
		memcpy(e->qname, ev->wq->qname, ev->wq->qname_len);
		e->qtype = ev->wq->qtype;
		e->qclass = ev->wq->qclass;
	}
	e->rcode = 0;
	e->answers = 0;
	if (ev->reply_len >= WIRE_HEADER_LEN) {
		e->rcode = (uint8_t)(ev->reply[3] & 0x0f);
		e->answers = (uint16_t)(ev->reply[6] << 8 | ev->reply[7]);
	}
	copy_text(e->group, sizeof(e->group), ev->group);
	copy_text(e->list, sizeof(e->list), ev->list);
	copy_text(e->upstream, sizeof(e->upstream), ev->upstream);
	qlog_ring_push(p->ring);
}

/* ---- the writer thread and the file ---- */

#define QLOG_BUF (64 * 1024)
#define QLOG_BATCH 256 /* entries from one ring before the next */
#define QLOG_IDLE_MS 10

struct qlog {
	struct qlog_settings set;
	char *path;
	bool syslog;
	int fd;
	bool regular; /* a regular file: rotated by size */
	int64_t size; /* of the file, as far as we know */
	unsigned nworkers;
	struct producer *prod;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_bool reopen;
	_Atomic uint64_t written;
	_Atomic uint64_t lost; /* lines a failed write lost */
	bool failing;	       /* the last write failed (logged once) */
	char *buf;	       /* lines not yet written */
	size_t buflen;
	uint64_t buflines;
	char line[QLOG_LINE_MAX];
};

static int open_log(const char *path, int64_t *size, bool *regular)
{
	struct stat st;
	int fd = open(path,
		      O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
			  O_NOCTTY | O_NONBLOCK,
		      0640);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*regular = S_ISREG(st.st_mode);
	*size = st.st_size;
	return fd;
}

static void count_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Write the buffer out; what cannot be written is counted as lost. */
static void flush(struct qlog *q)
{
	size_t off = 0;

	while (off < q->buflen) {
		ssize_t k = write(q->fd, q->buf + off, q->buflen - off);
		if (k < 0 && errno == EINTR)
			continue;
		/* A pipe or socket whose reader is slow: wait for it, but
		 * not past a stop (a reader that never reads must not keep
		 * the daemon from exiting). */
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    !atomic_load(&q->stop)) {
			struct pollfd pfd = {.fd = q->fd, .events = POLLOUT};
			(void)poll(&pfd, 1, 100);
			continue;
		}
		if (k <= 0) {
			if (!q->failing)
				log_err("query log %s: %s; lines are lost "
					"until writes work again",
					q->path,
					k < 0 ? strerror(errno)
					      : "nothing written");
			q->failing = true;
			/* Whole lines that did not go out. */
			uint64_t gone = 0;
			for (size_t i = off; i < q->buflen; i++)
				gone += q->buf[i] == '\n';
			count_add(&q->lost, gone);
			q->buflines -= gone < q->buflines ? gone : q->buflines;
			break;
		}
		off += (size_t)k;
		q->size += k;
	}
	if (off == q->buflen && q->buflen && q->failing) {
		log_info("query log %s: writing again", q->path);
		q->failing = false;
	}
	count_add(&q->written, q->buflines);
	q->buflen = 0;
	q->buflines = 0;
}

/* Swap to a new file at the path; on failure keep the old one. */
static bool reopen_file(struct qlog *q, const char *why)
{
	int64_t size;
	bool regular;
	int fd = open_log(q->path, &size, &regular);

	if (fd < 0) {
		log_err("query log %s: %s: cannot open: %s; still writing to "
			"the file open before",
			q->path, why, strerror(errno));
		return false;
	}
	close(q->fd);
	q->fd = fd;
	q->size = size;
	q->regular = regular;
	return true;
}

/* path.N, for rotation. */
static void numbered(char *out, size_t cap, const char *path, unsigned n)
{
	if (n)
		snprintf(out, cap, "%s.%u", path, n);
	else
		snprintf(out, cap, "%s", path);
}

/* path.(keep-1) -> path.keep, ..., path -> path.1, then a new path;
 * with keep 0, path is removed and started anew.  When that fails (a
 * folder the user may not write), the lines go on into the file open,
 * and the next try is after another max_size bytes, not at every line. */
static void rotate(struct qlog *q)
{
	char from[PATH_MAX], to[PATH_MAX];

	for (unsigned i = q->set.keep; i > 0; i--) {
		numbered(from, sizeof(from), q->path, i - 1);
		numbered(to, sizeof(to), q->path, i);
		if (rename(from, to) < 0 && errno != ENOENT) {
			log_err("query log: cannot rename %s to %s: %s", from,
				to, strerror(errno));
			q->size = 0;
			return;
		}
	}
	if (!q->set.keep && unlink(q->path) < 0 && errno != ENOENT) {
		log_err("query log: cannot remove %s: %s", q->path,
			strerror(errno));
		q->size = 0;
		return;
	}
	if (!reopen_file(q, "rotation"))
		q->size = 0;
}

static void add_line(struct qlog *q, const char *line, size_t len)
{
	if (q->syslog) {
		syslog(LOG_INFO, "%.*s", (int)(len - 1), line);
		count_add(&q->written, 1);
		return;
	}
	int64_t max = q->set.max_size;
	if (max && q->regular && q->size + (int64_t)(q->buflen + len) > max &&
	    q->size + (int64_t)q->buflen > 0) {
		flush(q);
		if (q->size > 0)
			rotate(q);
	}
	if (q->buflen + len > QLOG_BUF)
		flush(q);
	memcpy(q->buf + q->buflen, line, len);
	q->buflen += len;
	q->buflines++;
}

/* One pass over every ring; returns the entries taken. */
static size_t drain(struct qlog *q)
{
	size_t n = 0;

	for (unsigned i = 0; i < q->nworkers; i++) {
		const struct qlog_entry *e;
		struct qlog_ring *r = q->prod[i].ring;
		for (unsigned k = 0;
		     k < QLOG_BATCH && (e = qlog_ring_peek(r)) != NULL; k++) {
			size_t len = qlog_format(e, q->set.privacy, q->line,
						 sizeof(q->line));
			qlog_ring_pop(r);
			add_line(q, q->line, len);
			n++;
		}
	}
	return n;
}

static void *writer(void *arg)
{
	struct qlog *q = arg;

	for (;;) {
		bool stopping = atomic_load(&q->stop);
		if (!q->syslog && atomic_exchange(&q->reopen, false)) {
			flush(q);
			reopen_file(q, "reopen");
		}
		if (drain(q))
			continue;
		if (!q->syslog)
			flush(q);
		if (stopping)
			break;
		struct timespec ts = {0, QLOG_IDLE_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

struct qlog *qlog_new(const struct qlog_settings *set, unsigned nworkers,
		      char *err, size_t errlen)
{
	struct qlog *q = calloc(1, sizeof(*q));

	if (q)
		q->fd = -1; /* qlog_free on the way out closes no fd 0 */
	if (!q || !(q->path = strdup(set->path)) ||
	    !(q->prod = calloc(nworkers, sizeof(*q->prod))) ||
	    !(q->buf = malloc(QLOG_BUF)))
		goto oom;
	q->set = *set;
	q->set.path = q->path;
	q->nworkers = nworkers;
	q->fd = -1;
	atomic_init(&q->stop, false);
	atomic_init(&q->reopen, false);
	atomic_init(&q->written, 0);
	atomic_init(&q->lost, 0);
	for (unsigned i = 0; i < nworkers; i++)
		if (!(q->prod[i].ring = qlog_ring_new(set->queue)))
			goto oom;
	if (strcmp(set->path, "syslog") == 0) {
		q->syslog = true;
		return q;
	}
	if ((q->fd = open_log(q->path, &q->size, &q->regular)) < 0) {
		snprintf(err, errlen, "log_queries %s: %s", q->path,
			 strerror(errno));
		qlog_free(q);
		return NULL;
	}
	if (q->regular && set->uid != (uid_t)-1 &&
	    fchown(q->fd, set->uid, set->gid) < 0) {
		snprintf(err, errlen,
			 "log_queries %s: cannot give it to the "
			 "user: %s",
			 q->path, strerror(errno));
		qlog_free(q);
		return NULL;
	}
	return q;
oom:
	snprintf(err, errlen, "query log: out of memory");
	qlog_free(q);
	return NULL;
}

bool qlog_start(struct qlog *q)
{
	int rc = pthread_create(&q->thread, NULL, writer, q);
	if (rc) {
		errno = rc;
		return false;
	}
	q->started = true;
	return true;
}

void qlog_observer(struct qlog *q, unsigned i, struct query_observer *obs)
{
	memset(obs, 0, sizeof(*obs));
	obs->reply = on_reply;
	obs->ctx = &q->prod[i];
}

void qlog_reopen(struct qlog *q) { atomic_store(&q->reopen, true); }

void qlog_counts(const struct qlog *q, uint64_t *written, uint64_t *dropped)
{
	*written = atomic_load_explicit(&q->written, memory_order_relaxed);
	*dropped = atomic_load_explicit(&q->lost, memory_order_relaxed);
	for (unsigned i = 0; i < q->nworkers; i++)
		*dropped += qlog_ring_dropped(q->prod[i].ring);
}

const char *qlog_path(const struct qlog *q) { return q->path; }

void qlog_free(struct qlog *q)
{
	if (!q)
		return;
	if (q->started) {
		atomic_store(&q->stop, true);
		pthread_join(q->thread, NULL);
	}
	if (q->fd >= 0)
		close(q->fd);
	for (unsigned i = 0; q->prod && i < q->nworkers; i++)
		qlog_ring_free(q->prod[i].ring);
	free(q->prod);
	free(q->buf);
	free(q->path);
	free(q);
}
