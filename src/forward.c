/*
 * forward.c - the c-ares channel of one upstream group.
 *
 * c-ares facts this relies on (see API-NOTES): 1.18 sends our packet's ID
 * unchanged and newer versions write their own, so IDs are ours and unique
 * per channel; the reply buffer lives only during the callback; callbacks
 * may run inside ares_send; sockets are reported through the state
 * callback and driven with ares_process_fd, never ares_fds/select.
 */
#include <config.h>

#define CARES_NO_DEPRECATED 1
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "config.h"
#include "forward.h"
#include "loop.h"

#define FORWARD_RCVBUF (4 * 1024 * 1024)

struct fwatch {
	struct loop_watch w; /* first: the loop hands us this pointer */
	struct forward *fw;
	struct fwatch *next;
};

struct forward {
	ares_channel channel;
	struct loop *loop;
	struct fwatch *watches;
	size_t pending;
	uint8_t inflight[65536 / 8]; /* IDs in use */
	uint16_t random[256];        /* getrandom() pool */
	size_t nrandom;
};

static uint16_t next_random(struct forward *fw)
{
	if (fw->nrandom == 0) {
		if (getrandom(fw->random, sizeof(fw->random), 0) !=
		    (ssize_t)sizeof(fw->random)) {
			/* Not expected on Linux >= 3.17; keep going with a
			 * weaker source rather than fail queries. */
			for (size_t i = 0; i < 256; i++)
				fw->random[i] = (uint16_t)random();
		}
		fw->nrandom = 256;
	}
	return fw->random[--fw->nrandom];
}

static uint16_t take_id(struct forward *fw)
{
	uint16_t id = next_random(fw);
	/* The in-flight set is far from full (it is capped by the caller's
	 * pool), so this loop ends quickly. */
	while (fw->inflight[id >> 3] & (1u << (id & 7)))
		id = next_random(fw);
	fw->inflight[id >> 3] |= (uint8_t)(1u << (id & 7));
	return id;
}

static void release_id(struct forward *fw, uint16_t id)
{
	fw->inflight[id >> 3] &= (uint8_t)~(1u << (id & 7));
}

static void on_event(struct loop_watch *w, uint32_t events)
{
	struct fwatch *fwt = (struct fwatch *)w;
	ares_socket_t fd = w->fd;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		rfd = fd;
	if (events & EPOLLOUT)
		wfd = fd;
	ares_process_fd(fwt->fw->channel, rfd, wfd);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable,
			  int writable)
{
	struct forward *fw = data;
	struct fwatch **pp = &fw->watches, *fwt;
	uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);

	while (*pp && (*pp)->w.fd != fd)
		pp = &(*pp)->next;
	fwt = *pp;
	if (!ev) {
		if (fwt) {
			*pp = fwt->next;
			loop_del(fw->loop, &fwt->w);
			loop_defer_free(fw->loop, fwt, free);
		}
		return;
	}
	if (fwt) {
		loop_mod(fw->loop, &fwt->w, ev);
		return;
	}
	fwt = calloc(1, sizeof(*fwt));
	if (!fwt)
		return; /* the query times out: SERVFAIL, not a crash */
	fwt->w.fd = fd;
	fwt->w.cb = on_event;
	fwt->fw = fw;
	if (loop_add(fw->loop, &fwt->w, ev) < 0) {
		free(fwt);
		return;
	}
	fwt->next = fw->watches;
	fw->watches = fwt;
}

struct forward *forward_new(struct loop *loop,
			    const struct config_addr *servers, size_t n,
			    int timeout_ms, int tries, char *err,
			    size_t errlen)
{
	struct forward *fw = calloc(1, sizeof(*fw));
	struct ares_options o;
	char csv[32 * 72];
	size_t len = 0;
	int rc;

	if (!fw) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fw->loop = loop;
	memset(&o, 0, sizeof(o));
	/* No ARES_FLAG_EDNS, no ARES_FLAG_IGNTC: on 1.18 both corrupt
	 * relayed packets.  TC replies are refetched over TCP. */
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.timeout = timeout_ms;
	o.tries = tries;
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = fw;
	o.socket_receive_buffer_size = FORWARD_RCVBUF;
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		   ARES_OPT_SOCK_STATE_CB | ARES_OPT_SOCK_RCVBUF |
		   ARES_OPT_NOROTATE;
#ifdef ARES_OPT_QUERY_CACHE
	/* The built-in cache (1.31+) ignores EDNS and answers with a stale
	 * ID inside ares_send. */
	o.qcache_max_ttl = 0;
	mask |= ARES_OPT_QUERY_CACHE;
#endif
#ifdef ARES_OPT_MAXTIMEOUTMS
	o.maxtimeout = timeout_ms;
	mask |= ARES_OPT_MAXTIMEOUTMS;
#endif
	rc = ares_init_options(&fw->channel, &o, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(fw);
		return NULL;
	}
	for (size_t i = 0; i < n && len + 72 < sizeof(csv); i++)
		len += (size_t)snprintf(csv + len, sizeof(csv) - len, "%s%s",
					i ? "," : "", servers[i].text);
	rc = n ? ares_set_servers_ports_csv(fw->channel, csv) : ARES_ENODATA;
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: setting servers '%s': %s", csv,
			 ares_strerror(rc));
		forward_free(fw);
		return NULL;
	}
	return fw;
}

void forward_free(struct forward *fw)
{
	if (!fw)
		return;
	ares_destroy(fw->channel); /* runs callbacks: ARES_EDESTRUCTION */
	while (fw->watches) {
		struct fwatch *fwt = fw->watches;
		fw->watches = fwt->next;
		loop_del(fw->loop, &fwt->w);
		loop_defer_free(fw->loop, fwt, free);
	}
	free(fw);
}

static void on_answer(void *arg, int status, int timeouts,
		      unsigned char *abuf, int alen)
{
	struct forward_req *req = arg;
	struct forward *fw = req->fw;
	enum forward_status st = FORWARD_OK;

	(void)timeouts;
	release_id(fw, req->id);
	fw->pending--;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED)
		st = FORWARD_CANCELLED;
	else if (status != ARES_SUCCESS || !abuf || alen <= 0)
		st = FORWARD_FAILED;
	req->done(req, st, st == FORWARD_OK ? abuf : NULL,
		  st == FORWARD_OK ? (size_t)alen : 0);
}

void forward_send(struct forward *fw, struct forward_req *req, uint8_t *pkt,
		  size_t len, forward_done_fn done)
{
	req->fw = fw;
	req->done = done;
	req->id = take_id(fw);
	pkt[0] = (uint8_t)(req->id >> 8);
	pkt[1] = (uint8_t)req->id;
	fw->pending++;
	ares_send(fw->channel, pkt, (int)len, on_answer, req);
}

void forward_tick(struct forward *fw)
{
	if (fw->pending)
		ares_process_fd(fw->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

int forward_timeout_ms(struct forward *fw, int cap)
{
	struct timeval tv, *t;

	if (!fw->pending)
		return cap;
	t = ares_timeout(fw->channel, NULL, &tv);
	if (!t)
		return cap;
	/* Round up: waking a little early only spins. */
	long ms = (long)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
	if (cap >= 0 && ms > cap)
		return cap;
	return (int)ms;
}

size_t forward_pending(const struct forward *fw)
{
	return fw->pending;
}
