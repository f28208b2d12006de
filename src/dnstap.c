/*
 * dnstap.c - dnstap messages from the query pipeline's observers, through
 * libfstrm's I/O thread, to a Frame Streams file or unix socket.
 *
 * Who runs what:
 *   - the serving loops run the observers: encode one message with
 *     protobuf-c into one malloc'd buffer (libfstrm takes it over and
 *     frees it once written) and submit it to the loop's own input queue
 *     (single producer, single consumer: no lock; libfstrm wakes its
 *     thread with a condition signal when a queue fills past a mark).
 *     A full queue, or a socket with no reader, drops the message and
 *     counts it; a query never waits for its log.
 *   - libfstrm's I/O thread opens the output, writes, and reconnects a
 *     lost socket, through this file's own reader-writer (out_*), which
 *     also tells the loops whether anything is connected, so that they
 *     do not encode for nobody.
 *   - main's thread starts it, reopens the file (SIGUSR2) and stops it.
 *
 * Reopening a file means destroying the I/O thread (it flushes and writes
 * the stop frame) and starting another.  The loops reach the current one
 * through d->cur; each announces the one it is about to use in its slot's
 * hazard before submitting, and clears it after.  Reopen unpublishes
 * d->cur, waits until no slot holds the old one (a submit takes a
 * microsecond), and only then destroys it: no loop ever submits to a
 * destroyed I/O thread, and no loop ever waits.
 */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstrm.h>

#include "dnstap.h"
#include "dnstap.pb-c.h"
#include "errf.h"
#include "query.h"

#define DNSTAP_CONTENT_TYPE "protobuf:dnstap.Dnstap"
/* Each loop's queue (a power of two, libfstrm's largest): room for the
 * bursts a busy loop makes while the I/O thread waits for a CPU. */
#define DNSTAP_QUEUE_SIZE 16384
/* Seconds between attempts to connect to the socket's reader. */
#define DNSTAP_REOPEN_S 2
/* The I/O thread is woken when a queue holds this many messages (or
 * after a second): fewer wake-ups than libfstrm's 32, at the cost of a
 * message waiting up to a second on a quiet loop. */
#define DNSTAP_NOTIFY 256
/* Messages and bytes gathered into one write. */
#define DNSTAP_WRITE_FRAMES 512
#define DNSTAP_WRITE_BYTES 65536

/* What libfstrm's writer reads and writes through: a file or a unix
 * stream socket.  Owned by the writer (out_destroy). */
struct out_rdwr {
	struct dnstap *d;
	int fd;
};

/* One I/O thread and the loops' queues into it. */
struct dnstap_out {
	struct fstrm_iothr *iothr;
	struct fstrm_iothr_queue *queue[]; /* one per loop */
};

/* A loop's observer context: written by that loop only (the counters
 * are read by main).  A cache line each. */
struct dnstap_slot {
	alignas(64) struct dnstap *d;
	unsigned i;
	_Atomic(struct dnstap_out *) hazard; /* the output in use, or NULL */
	_Atomic uint64_t sent, dropped;
};

struct dnstap {
	char *path;       /* the file, or the socket without "unix:" */
	bool sock;
	char *identity;
	char *version;
	unsigned nloops;
	_Atomic(struct dnstap_out *) cur; /* NULL: none (reopening, failed) */
	atomic_bool open;                 /* the writer is open */
	struct dnstap_slot *slots;
};

/* ---- encoding ---- */

/* protobuf-c's bytes fields are not const; it only reads them. */
static ProtobufCBinaryData bytes(const void *p, size_t len)
{
	return (ProtobufCBinaryData){len, (uint8_t *)(uintptr_t)p};
}

static void set_addr(Dnstap__Message *m, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		m->socket_family = DNSTAP__SOCKET_FAMILY__INET;
		m->query_address = bytes(&in->sin_addr, 4);
		m->query_port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		m->socket_family = DNSTAP__SOCKET_FAMILY__INET6;
		m->query_address = bytes(&in6->sin6_addr, 16);
		m->query_port = ntohs(in6->sin6_port);
	} else {
		return;
	}
	m->has_socket_family = m->has_query_address = m->has_query_port = 1;
}

uint8_t *dnstap_encode(const struct dnstap_msg *msg, const char *identity,
		       const char *version, size_t *len)
{
	Dnstap__Dnstap dt = DNSTAP__DNSTAP__INIT;
	Dnstap__Message m = DNSTAP__MESSAGE__INIT;

	dt.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
	dt.message = &m;
	if (identity) {
		dt.identity = bytes(identity, strlen(identity));
		dt.has_identity = 1;
	}
	if (version) {
		dt.version = bytes(version, strlen(version));
		dt.has_version = 1;
	}
	m.type = (Dnstap__Message__Type)msg->type;
	if (msg->protocol != DNSTAP_PROTO_NONE) {
		m.socket_protocol = (Dnstap__SocketProtocol)msg->protocol;
		m.has_socket_protocol = 1;
	}
	if (msg->query_addr)
		set_addr(&m, msg->query_addr);
	if (msg->query_time) {
		m.query_time_sec = (uint64_t)msg->query_time->tv_sec;
		m.query_time_nsec = (uint32_t)msg->query_time->tv_nsec;
		m.has_query_time_sec = m.has_query_time_nsec = 1;
	}
	if (msg->response_time) {
		m.response_time_sec = (uint64_t)msg->response_time->tv_sec;
		m.response_time_nsec = (uint32_t)msg->response_time->tv_nsec;
		m.has_response_time_sec = m.has_response_time_nsec = 1;
	}
	if (msg->query) {
		m.query_message = bytes(msg->query, msg->query_len);
		m.has_query_message = 1;
	}
	if (msg->response) {
		m.response_message = bytes(msg->response, msg->response_len);
		m.has_response_message = 1;
	}
	size_t n = dnstap__dnstap__get_packed_size(&dt);
	uint8_t *buf = malloc(n);
	if (!buf)
		return NULL;
	*len = dnstap__dnstap__pack(&dt, buf);
	return buf;
}

/* ---- the writer's file or socket (libfstrm's I/O thread) ---- */

static fstrm_res out_open(void *obj)
{
	struct out_rdwr *r = obj;
	struct dnstap *d = r->d;

	if (r->fd >= 0)
		return fstrm_res_success;
	if (d->sock) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		memcpy(sun.sun_path, d->path, strlen(d->path) + 1);
		r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (r->fd >= 0 &&
		    connect(r->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			close(r->fd);
			r->fd = -1;
		}
	} else {
		r->fd = open(d->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0640);
	}
	if (r->fd < 0)
		return fstrm_res_failure;
	atomic_store(&d->open, true);
	return fstrm_res_success;
}

static fstrm_res out_close(void *obj)
{
	struct out_rdwr *r = obj;

	atomic_store(&r->d->open, false);
	if (r->fd < 0)
		return fstrm_res_failure;
	int rc = close(r->fd);
	r->fd = -1;
	return rc == 0 ? fstrm_res_success : fstrm_res_failure;
}

/* The socket's control frames (the reader's READY, ACCEPT, FINISH). */
static fstrm_res out_read(void *obj, void *data, size_t count)
{
	struct out_rdwr *r = obj;
	uint8_t *p = data;

	while (count > 0) {
		ssize_t k = read(r->fd, p, count);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k == 0 ? fstrm_res_stop : fstrm_res_failure;
		p += k;
		count -= (size_t)k;
	}
	return fstrm_res_success;
}

/* Write all of v[0..n), which it consumes. */
static bool write_all(int fd, bool sock, struct iovec *v, int n)
{
	while (n > 0) {
		if (v->iov_len == 0) {
			v++, n--;
			continue;
		}
		struct msghdr mh = {.msg_iov = v, .msg_iovlen = (size_t)n};
		ssize_t k = sock ? sendmsg(fd, &mh, MSG_NOSIGNAL)
				 : writev(fd, v, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		while (n > 0 && (size_t)k >= v->iov_len) {
			k -= (ssize_t)v->iov_len;
			v++, n--;
		}
		if (n > 0) {
			v->iov_base = (uint8_t *)v->iov_base + k;
			v->iov_len -= (size_t)k;
		}
	}
	return true;
}

static fstrm_res out_write(void *obj, const struct iovec *iov, int iovcnt)
{
	struct out_rdwr *r = obj;
	struct iovec v[64];

	if (r->fd < 0)
		return fstrm_res_failure;
	for (int done = 0; done < iovcnt;) {
		int n = iovcnt - done < 64 ? iovcnt - done : 64;
		memcpy(v, iov + done, (size_t)n * sizeof(*v));
		if (!write_all(r->fd, r->d->sock, v, n))
			return fstrm_res_failure;
		done += n;
	}
	return fstrm_res_success;
}

static fstrm_res out_destroy(void *obj)
{
	struct out_rdwr *r = obj;

	if (r->fd >= 0)
		close(r->fd);
	free(r);
	return fstrm_res_success;
}

/* A writer on d's file or socket, and an I/O thread with a queue per
 * loop; NULL with err. */
static struct dnstap_out *out_new(struct dnstap *d, char *err, size_t errlen)
{
	struct dnstap_out *o =
		calloc(1, sizeof(*o) + d->nloops * sizeof(o->queue[0]));
	struct out_rdwr *r = calloc(1, sizeof(*r));
	struct fstrm_rdwr *rdwr = r ? fstrm_rdwr_init(r) : NULL;
	struct fstrm_writer_options *wopt = fstrm_writer_options_init();
	struct fstrm_iothr_options *iopt = fstrm_iothr_options_init();
	struct fstrm_writer *w = NULL;

	if (!o || !rdwr || !wopt || !iopt) {
		free(r);
		goto fail;
	}
	r->d = d;
	r->fd = -1;
	fstrm_rdwr_set_open(rdwr, out_open);
	fstrm_rdwr_set_close(rdwr, out_close);
	fstrm_rdwr_set_write(rdwr, out_write);
	fstrm_rdwr_set_destroy(rdwr, out_destroy);
	if (d->sock) /* bidirectional: the reader accepts the content type */
		fstrm_rdwr_set_read(rdwr, out_read);
	fstrm_writer_options_add_content_type(wopt, DNSTAP_CONTENT_TYPE,
					      strlen(DNSTAP_CONTENT_TYPE));
	if (!(w = fstrm_writer_init(wopt, &rdwr)))
		goto fail;
	fstrm_iothr_options_set_num_input_queues(iopt, d->nloops);
	fstrm_iothr_options_set_queue_model(iopt,
					    FSTRM_IOTHR_QUEUE_MODEL_SPSC);
	fstrm_iothr_options_set_input_queue_size(iopt, DNSTAP_QUEUE_SIZE);
	fstrm_iothr_options_set_reopen_interval(iopt, DNSTAP_REOPEN_S);
	fstrm_iothr_options_set_queue_notify_threshold(iopt, DNSTAP_NOTIFY);
	fstrm_iothr_options_set_output_queue_size(iopt, DNSTAP_WRITE_FRAMES);
	fstrm_iothr_options_set_buffer_hint(iopt, DNSTAP_WRITE_BYTES);
	if (!(o->iothr = fstrm_iothr_init(iopt, &w)))
		goto fail;
	for (unsigned i = 0; i < d->nloops; i++)
		if (!(o->queue[i] = fstrm_iothr_get_input_queue(o->iothr))) {
			fstrm_iothr_destroy(&o->iothr);
			goto fail;
		}
	fstrm_writer_options_destroy(&wopt);
	fstrm_iothr_options_destroy(&iopt);
	return o;
fail:
	if (rdwr)
		fstrm_rdwr_destroy(&rdwr);
	fstrm_writer_destroy(&w);
	fstrm_writer_options_destroy(&wopt);
	fstrm_iothr_options_destroy(&iopt);
	free(o);
	errf(err, errlen, "dnstap: cannot start the Frame Streams writer");
	return NULL;
}

static void out_free(struct dnstap_out *o)
{
	if (!o)
		return;
	fstrm_iothr_destroy(&o->iothr); /* drains, flushes, stop frame */
	free(o);
}

/* ---- the observers (serving loops) ---- */

static void free_frame(void *data, void *unused)
{
	(void)unused;
	free(data);
}

static void count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Hand m to the I/O thread, or count it dropped. */
static void submit(struct dnstap_slot *sl, const struct dnstap_msg *m)
{
	struct dnstap *d = sl->d;
	struct dnstap_out *o;
	size_t len;
	uint8_t *buf;

	if (!atomic_load_explicit(&d->open, memory_order_relaxed) ||
	    !(buf = dnstap_encode(m, d->identity, d->version, &len))) {
		count(&sl->dropped);
		return;
	}
	/* Announce, then check it is still current (reopen unpublishes
	 * before it waits for the hazards). */
	o = atomic_load(&d->cur);
	atomic_store(&sl->hazard, o);
	if (!o || atomic_load(&d->cur) != o ||
	    fstrm_iothr_submit(o->iothr, o->queue[sl->i], buf, len,
			       free_frame, NULL) != fstrm_res_success) {
		atomic_store_explicit(&sl->hazard, NULL, memory_order_release);
		free(buf);
		count(&sl->dropped);
		return;
	}
	atomic_store_explicit(&sl->hazard, NULL, memory_order_release);
	count(&sl->sent);
}

/*
 * DNS over TLS and over HTTPS are recorded as TCP, which they run on:
 * the schema's DOT and DOH values (3, 4) are newer than Debian's
 * dnstap-ldns 0.2.1, which prints "?" for them and stops its YAML
 * output at the first one.  Set this to 1 for readers that know them.
 */
#define DNSTAP_MARK_ENCRYPTED 0

static enum dnstap_proto encrypted(enum dnstap_proto p)
{
	return DNSTAP_MARK_ENCRYPTED ? p : DNSTAP_PROTO_TCP;
}

static enum dnstap_proto client_proto(const struct query_client *c)
{
	switch (c->transport) {
	case QUERY_UDP:
		return DNSTAP_PROTO_UDP;
	case QUERY_TCP:
		return DNSTAP_PROTO_TCP;
	case QUERY_TLS:
		return encrypted(DNSTAP_PROTO_DOT);
	case QUERY_HTTPS:
		return encrypted(DNSTAP_PROTO_DOH);
	case QUERY_TRANSPORTS:
		break;
	}
	return DNSTAP_PROTO_NONE;
}

static enum dnstap_proto upstream_proto(const char *kind)
{
	if (strcmp(kind, "udp") == 0)
		return DNSTAP_PROTO_UDP;
	if (strcmp(kind, "tcp") == 0)
		return DNSTAP_PROTO_TCP;
	if (strcmp(kind, "tls") == 0)
		return encrypted(DNSTAP_PROTO_DOT);
	if (strcmp(kind, "https") == 0)
		return encrypted(DNSTAP_PROTO_DOH);
	return DNSTAP_PROTO_NONE; /* mixed lists, signed queries */
}

static void on_query(void *ctx, const struct query_client *c,
		     const uint8_t *pkt, size_t len,
		     const struct timespec *when)
{
	struct dnstap_msg m = {
		.type = DNSTAP_CLIENT_QUERY,
		.protocol = client_proto(c),
		.query_addr = (const struct sockaddr *)&c->peer,
		.query_time = when,
		.query = pkt,
		.query_len = len,
	};
	submit(ctx, &m);
}

static void on_reply(void *ctx, const struct query_event *ev)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct dnstap_msg m = {
		.type = DNSTAP_CLIENT_RESPONSE,
		.protocol = client_proto(ev->client),
		.query_addr = (const struct sockaddr *)&ev->client->peer,
		.query_time = &ev->received,
		.response_time = &now,
		.response = ev->reply,
		.response_len = ev->reply_len,
	};
	submit(ctx, &m);
}

/* The upstream's own address is not known here: left out. */
static void on_upstream(void *ctx, bool response, const char *kind,
			const uint8_t *pkt, size_t len,
			const struct timespec *sent)
{
	struct timespec now;
	struct dnstap_msg m = {
		.type = response ? DNSTAP_FORWARDER_RESPONSE
				 : DNSTAP_FORWARDER_QUERY,
		.protocol = upstream_proto(kind),
		.query_time = sent,
	};
	if (response) {
		clock_gettime(CLOCK_REALTIME, &now);
		m.response_time = &now;
		m.response = pkt;
		m.response_len = len;
	} else {
		m.query = pkt;
		m.query_len = len;
	}
	submit(ctx, &m);
}

/* ---- main's side ---- */

/* Can the file be opened at all?  Asked before the I/O thread tries, so
 * that the reason is known at once (the writer's attempt keeps none). */
static bool probe_file(const struct dnstap *d, char *err, size_t errlen)
{
	int fd = d->sock ? 0 : open(d->path, O_WRONLY | O_CREAT | O_CLOEXEC,
				   0640);
	if (fd < 0)
		return errf(err, errlen, "dnstap: %s: %s", d->path,
			    strerror(errno));
	if (!d->sock)
		close(fd);
	return true;
}

/* Wait up to ms for the I/O thread to open the output, so that the
 * first queries are not dropped.  A file that does not open is an
 * error; a socket may have no reader yet. */
static bool wait_open(struct dnstap *d, int ms, char *err, size_t errlen)
{
	for (int i = 0; i < ms && !atomic_load(&d->open); i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	if (d->sock || atomic_load(&d->open))
		return true;
	return errf(err, errlen, "dnstap: %s: not opened", d->path);
}

struct dnstap *dnstap_new(const char *target, const char *identity,
			  const char *version, unsigned nloops, char *err,
			  size_t errlen)
{
	struct dnstap *d = calloc(1, sizeof(*d));
	char host[256] = "";

	if (!d)
		goto oom;
	d->sock = strncmp(target, "unix:", 5) == 0;
	d->nloops = nloops ? nloops : 1;
	atomic_init(&d->cur, NULL);
	atomic_init(&d->open, false);
	if (!identity && gethostname(host, sizeof(host) - 1) == 0)
		identity = host;
	if (!(d->path = strdup(d->sock ? target + 5 : target)) ||
	    !(d->identity = strdup(identity ? identity : "")) ||
	    !(d->version = strdup(version ? version
					  : "splitdns " PACKAGE_VERSION)))
		goto oom;
	if (d->sock && strlen(d->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		errf(err, errlen, "dnstap: socket path too long: %s", d->path);
		goto fail;
	}
	d->slots = aligned_alloc(alignof(struct dnstap_slot),
				 d->nloops * sizeof(*d->slots));
	if (!d->slots)
		goto oom;
	for (unsigned i = 0; i < d->nloops; i++) {
		d->slots[i].d = d;
		d->slots[i].i = i;
		atomic_init(&d->slots[i].hazard, NULL);
		atomic_init(&d->slots[i].sent, 0);
		atomic_init(&d->slots[i].dropped, 0);
	}
	struct dnstap_out *o;
	if (!probe_file(d, err, errlen) || !(o = out_new(d, err, errlen)))
		goto fail;
	atomic_store(&d->cur, o);
	if (!wait_open(d, d->sock ? 200 : 2000, err, errlen))
		goto fail;
	return d;
oom:
	errf(err, errlen, "dnstap: out of memory");
fail:
	dnstap_free(d);
	return NULL;
}

void dnstap_observer(struct dnstap *d, unsigned i,
		     struct query_observer *out)
{
	assert(i < d->nloops);
	*out = (struct query_observer){
		.query = on_query,
		.reply = on_reply,
		.upstream = on_upstream,
		.ctx = &d->slots[i], /* one producer per queue */
	};
}

/* Unpublish the current output and wait until no loop is inside it. */
static struct dnstap_out *take_out(struct dnstap *d)
{
	struct dnstap_out *o = atomic_exchange(&d->cur, NULL);

	for (unsigned i = 0; o && i < d->nloops; i++)
		while (atomic_load(&d->slots[i].hazard) == o)
			nanosleep(&(struct timespec){0, 20000}, NULL);
	return o;
}

bool dnstap_reopen(struct dnstap *d, char *err, size_t errlen)
{
	if (d->sock)
		return true;
	/* The old file is finished before the new one is created: the path
	 * may still name it when nobody moved it away. */
	out_free(take_out(d));
	struct dnstap_out *o;
	if (!probe_file(d, err, errlen) || !(o = out_new(d, err, errlen)))
		return false;
	atomic_store(&d->cur, o);
	return wait_open(d, 2000, err, errlen);
}

void dnstap_counts(const struct dnstap *d, uint64_t *sent,
		   uint64_t *dropped)
{
	*sent = *dropped = 0;
	for (unsigned i = 0; i < d->nloops; i++) {
		*sent += atomic_load_explicit(&d->slots[i].sent,
					      memory_order_relaxed);
		*dropped += atomic_load_explicit(&d->slots[i].dropped,
						 memory_order_relaxed);
	}
}

void dnstap_free(struct dnstap *d)
{
	if (!d)
		return;
	if (d->slots)
		out_free(take_out(d));
	free(d->slots);
	free(d->path);
	free(d->identity);
	free(d->version);
	free(d);
}
