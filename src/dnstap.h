/*
 * dnstap.h - dnstap output (dnstap.info): each client query and reply,
 * and each query to an upstream and its reply, as a protobuf message in
 * a Frame Streams file or on a Frame Streams unix socket.
 *
 * main makes one output at start-up and hands each worker an observer
 * (query.h) of its own.  The observers run on the serving loops: they
 * encode the message into one malloc'd buffer and give it to libfstrm's
 * I/O thread through the loop's own lock-free input queue; when that
 * queue is full, or no reader is connected to the socket, the message is
 * dropped and counted, and the query goes on as if nothing were logged.
 * Built only with libfstrm and protobuf-c (HAVE_DNSTAP).
 */
#ifndef SPLITDNS_DNSTAP_H
#define SPLITDNS_DNSTAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

struct query_observer;
struct dnstap;

/* The message types splitdns writes (dnstap's Message.Type values). */
enum dnstap_type {
	DNSTAP_CLIENT_QUERY = 5,
	DNSTAP_CLIENT_RESPONSE = 6,
	DNSTAP_FORWARDER_QUERY = 7,
	DNSTAP_FORWARDER_RESPONSE = 8,
};

/* Message.socket_protocol; DNSTAP_PROTO_NONE leaves it out. */
enum dnstap_proto {
	DNSTAP_PROTO_NONE = 0,
	DNSTAP_PROTO_UDP = 1,
	DNSTAP_PROTO_TCP = 2,
	DNSTAP_PROTO_DOT = 3,
	DNSTAP_PROTO_DOH = 4,
};

/* One message's fields (all borrowed); NULL leaves a field out. */
struct dnstap_msg {
	enum dnstap_type type;
	enum dnstap_proto protocol;
	const struct sockaddr *query_addr; /* the initiator (AF_INET[6]) */
	const struct timespec *query_time;
	const struct timespec *response_time;
	const uint8_t *query;               /* the DNS message, wire format */
	size_t query_len;
	const uint8_t *response;
	size_t response_len;
};

/*
 * The Dnstap frame of m, with identity and version (either may be
 * NULL), in a new buffer of *len bytes (caller frees with free).  NULL
 * when out of memory.
 */
uint8_t *dnstap_encode(const struct dnstap_msg *m, const char *identity,
		       const char *version, size_t *len);

/*
 * Start the output to target: "unix:PATH" (a Frame Streams reader that
 * listens on PATH; connected in the background and again whenever the
 * connection is lost) or a file path (created or truncated, readable
 * once finished: at dnstap_reopen or dnstap_free).  nloops serving
 * loops will submit.  identity NULL: the host name; version NULL:
 * "splitdns VERSION".  Returns NULL with the reason in err.
 */
struct dnstap *dnstap_new(const char *target, const char *identity,
			  const char *version, unsigned nloops, char *err,
			  size_t errlen);

/* The observer for loop i (< nloops), for worker_add_observer. */
void dnstap_observer(struct dnstap *d, unsigned i,
		     struct query_observer *out);

/*
 * Finish the file and start it again (SIGUSR2, after logrotate moved
 * it); main's thread.  Messages submitted meanwhile are dropped.  Does
 * nothing for a socket.  False with the reason in err: then nothing is
 * written until a later reopen succeeds.
 */
bool dnstap_reopen(struct dnstap *d, char *err, size_t errlen);

/* Messages handed to the writer and messages dropped, over all loops. */
void dnstap_counts(const struct dnstap *d, uint64_t *sent,
		   uint64_t *dropped);

/* Flush and finish the output; after the loops have stopped.  NULL: no
 * effect. */
void dnstap_free(struct dnstap *d);

#endif
