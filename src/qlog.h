/*
 * qlog.h - the query log: one JSON object per line for every reply a
 * worker sends, written by a thread of its own to a file (rotated by
 * size, reopened on request) or to syslog.
 *
 * Each worker's pipeline calls the query log through a query_observer
 * (query.h).  The observer copies the fields of the reply into the
 * worker's own bounded ring (one producer, the worker; one consumer, the
 * writer thread) without a lock, a system call or an allocation; when
 * the ring is full the line is counted as dropped and the query goes on.
 * The writer thread formats the lines, writes them in batches, rotates
 * the file when the next batch would take it past max_size, and reopens
 * the file when qlog_reopen asks.  Every file operation after qlog_new
 * happens on that thread.
 */
#ifndef SPLITDNS_QLOG_H
#define SPLITDNS_QLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct query_observer;

/* log_privacy: what the line says about the client. */
enum qlog_privacy {
	QLOG_PRIVACY_NONE, /* the address and port */
	QLOG_PRIVACY_MASK, /* IPv4 /24, IPv6 /48, no port */
	QLOG_PRIVACY_HIDE, /* nothing */
};

struct qlog_settings {
	const char *path; /* a file, or "syslog" */
	int64_t max_size; /* bytes per file; 0: never rotate */
	unsigned keep;	  /* rotated files path.1 ... path.keep */
	unsigned queue;	  /* ring entries per worker (rounded up to a
			     power of two) */
	enum qlog_privacy privacy;
	/* When the daemon starts as root and drops to a user: the owner to
	 * give the file (-1: leave it), so that reopening the same file
	 * after the drop works. */
	uid_t uid;
	gid_t gid;
};

/* One reply, as the observer copies it (fields of query_event and of
 * the reply's header).  Exposed for qlog_format and its tests. */
#define QLOG_GROUP_MAX 64
#define QLOG_LIST_MAX 256
struct qlog_entry {
	struct timespec received; /* CLOCK_REALTIME */
	uint32_t duration_us;	  /* arrival to reply */
	uint16_t qtype, qclass;
	uint16_t answers;  /* ANCOUNT of the reply */
	uint8_t rcode;	   /* of the reply's header */
	uint8_t kind;	   /* enum query_kind */
	uint8_t transport; /* enum query_transport */
	uint8_t family;	   /* AF_INET, AF_INET6, 0: unknown */
	uint16_t port;	   /* host order */
	uint8_t addr[16];
	uint16_t qname_len;	    /* 0: no question could be read */
	uint8_t qname[255];	    /* wire format, as the client sent it */
	char group[QLOG_GROUP_MAX]; /* "": none */
	char list[QLOG_LIST_MAX];   /* "": none; longer names are cut */
};

/* Lines of at most this many bytes (the longest name, escaped). */
#define QLOG_LINE_MAX 8192

/*
 * Format e as one JSON object and a newline into buf (cap bytes, at
 * least QLOG_LINE_MAX).  Returns the length (without a NUL).
 */
size_t qlog_format(const struct qlog_entry *e, enum qlog_privacy privacy,
		   char *buf, size_t cap);

/*
 * Write the n bytes at s into buf (cap bytes) as the inside of a JSON
 * string: '"', '\\' and control characters escaped, valid UTF-8 kept,
 * every byte of an invalid sequence written as U+FFFD.  Returns the
 * length written; stops (whole escapes only) when cap is reached.
 */
size_t qlog_json_text(char *buf, size_t cap, const char *s, size_t n);

/* The ring of one producer and one consumer, on its own so that it can
 * be tested: capacity a power of two >= n (at least 2). */
struct qlog_ring;
struct qlog_ring *qlog_ring_new(unsigned n);
void qlog_ring_free(struct qlog_ring *r);
/* The producer's free slot, or NULL when full (then counted dropped). */
struct qlog_entry *qlog_ring_slot(struct qlog_ring *r);
/* Publish the slot qlog_ring_slot gave. */
void qlog_ring_push(struct qlog_ring *r);
/* The consumer's oldest entry, or NULL when empty; qlog_ring_pop frees
 * it once read. */
const struct qlog_entry *qlog_ring_peek(struct qlog_ring *r);
void qlog_ring_pop(struct qlog_ring *r);
uint64_t qlog_ring_dropped(const struct qlog_ring *r);

struct qlog;

/*
 * Open the log for nworkers producers (the file is opened, appended to,
 * and created 0640 when missing; it is not yet written).  Returns NULL
 * with a message in err.  Call before the privilege drop.
 */
struct qlog *qlog_new(const struct qlog_settings *set, unsigned nworkers,
		      char *err, size_t errlen);

/* Start the writer thread.  False with errno set. */
bool qlog_start(struct qlog *q);

/* The observer that worker i (< nworkers) adds to its pipeline; obs is
 * filled in, its ctx valid until qlog_free. */
void qlog_observer(struct qlog *q, unsigned i, struct query_observer *obs);

/* Ask the writer to close and open the file again (after it was moved
 * away, for logrotate).  Any thread; returns at once. */
void qlog_reopen(struct qlog *q);

/* Lines written, lines dropped (a ring full or a write that failed). */
void qlog_counts(const struct qlog *q, uint64_t *written, uint64_t *dropped);

/* The file (or "syslog") it writes to. */
const char *qlog_path(const struct qlog *q);

/* Write what the rings hold, stop the thread, close, free.  After the
 * workers have stopped.  NULL does nothing. */
void qlog_free(struct qlog *q);

#endif
