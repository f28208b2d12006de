/* bench/reflector.c - the floor for the bench: a UDP server that does
 * nothing but turn each query around.
 *
 *   reflector [-a IPV4] [-T TTL] ADDR PORT
 *
 * Without -a it sends each datagram back as it came with the QR bit set
 * (RFC 1035 4.1.1), so its CPU per query is what one recvmmsg/sendmmsg
 * batch costs with no DNS work at all: the number bench/run divides the
 * servers' CPU per query by.  With -a it is a minimal upstream instead: a
 * query with one question gets that question back with one A record for
 * IPV4 (TTL 3600 unless -T), or no record when the type is not A, and an
 * OPT record (RFC 6891 6.1.1) when the query has one; other datagrams are
 * dropped.  It listens on ADDR (bench/run gives 127.0.0.1)
 * and runs until it is killed.  Built by bench/run with cc; not installed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 32	/* the same batch size as splitdns' server.c */
#define MSG_MAX 4096
#define HEADER_LEN 12
#define ANSWER_LEN 16	/* pointer, type, class, TTL, length, address */
#define OPT_LEN 11	/* root name, type, class (UDP size), TTL, length */

struct batch {
	struct mmsghdr msg[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in peer[BATCH];
	uint8_t buf[BATCH][MSG_MAX];
};

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The offset just past the one question of a query of len bytes, or 0 when
 * the question does not fit (RFC 1035 4.1.2: labels, then type and class).
 * A compression pointer is refused: a question's name has none before it
 * to point at. */
static size_t question_end(const uint8_t *q, size_t len)
{
	size_t off = HEADER_LEN;

	for (;;) {
		if (off >= len)
			return 0;
		uint8_t l = q[off];
		if (l == 0)
			break;
		if (l & 0xC0)
			return 0;
		off += 1u + l;
	}
	off += 1;
	return off + 4 <= len ? off + 4 : 0;
}

/* Turns the query in buf (len bytes) into its reply in place; returns the
 * reply's length, or 0 to send nothing. */
static size_t reply(uint8_t *buf, size_t len, const uint8_t *addr,
		    uint32_t ttl)
{
	if (len < HEADER_LEN || (buf[2] & 0x80))
		return 0;
	if (!addr) {
		buf[2] |= 0x80; /* QR */
		return len;
	}
	if (buf[4] != 0 || buf[5] != 1)
		return 0; /* QDCOUNT must be 1 */
	size_t end = question_end(buf, len);
	if (end == 0 || end + ANSWER_LEN + OPT_LEN > MSG_MAX)
		return 0;
	int is_a = buf[end - 4] == 0 && buf[end - 3] == 1;
	/* An OPT record right after the question: root name, type 41. */
	int has_opt = buf[10] == 0 && buf[11] == 1 && end + OPT_LEN <= len &&
		      buf[end] == 0 && buf[end + 1] == 0 && buf[end + 2] == 41;
	buf[2] = (uint8_t)(0x80 | (buf[2] & 0x01)); /* QR, RD as asked */
	buf[3] = 0x80;				    /* RA, NOERROR */
	put16(buf + 6, is_a ? 1 : 0);
	put16(buf + 8, 0);
	put16(buf + 10, has_opt ? 1 : 0);
	size_t off = end;
	if (is_a) {
		uint8_t *a = buf + off;
		put16(a, 0xC000 | HEADER_LEN); /* the name of the question */
		put16(a + 2, 1);	       /* A */
		put16(a + 4, 1);	       /* IN */
		put16(a + 6, (unsigned)(ttl >> 16));
		put16(a + 8, (unsigned)(ttl & 0xFFFF));
		put16(a + 10, 4);
		memcpy(a + 12, addr, 4);
		off += ANSWER_LEN;
	}
	if (has_opt) {
		uint8_t *o = buf + off;
		o[0] = 0;
		put16(o + 1, 41);
		put16(o + 3, 1232); /* our UDP payload size */
		memset(o + 5, 0, 6); /* extended RCODE, version, flags, length */
		off += OPT_LEN;
	}
	return off;
}

static int usage(void)
{
	fprintf(stderr, "usage: reflector [-a IPV4] [-T TTL] ADDR PORT\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct in_addr answer;
	const uint8_t *addr = NULL;
	unsigned long ttl = 3600;
	int opt;

	while ((opt = getopt(argc, argv, "a:T:")) != -1) {
		if (opt == 'a') {
			if (inet_pton(AF_INET, optarg, &answer) != 1)
				return usage();
			addr = (const uint8_t *)&answer.s_addr;
		} else if (opt == 'T') {
			char *end;
			ttl = strtoul(optarg, &end, 10);
			if (*end || ttl > 0x7FFFFFFFul)
				return usage();
		} else {
			return usage();
		}
	}
	if (argc - optind != 2)
		return usage();

	struct sockaddr_in sa = {.sin_family = AF_INET};
	char *end;
	unsigned long port = strtoul(argv[optind + 1], &end, 10);
	if (inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1 || *end ||
	    port == 0 || port > 65535)
		return usage();
	sa.sin_port = htons((uint16_t)port);

	/* The receive buffer splitdns' server.c asks for, so that a burst
	 * dnsperf starts with is not dropped here either. */
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rcv = 4 * 1024 * 1024;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("reflector: socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));

	static struct batch b;
	for (;;) {
		for (int i = 0; i < BATCH; i++) {
			b.iov[i] = (struct iovec){b.buf[i], MSG_MAX};
			b.msg[i].msg_hdr = (struct msghdr){
				.msg_name = &b.peer[i],
				.msg_namelen = sizeof(b.peer[i]),
				.msg_iov = &b.iov[i],
				.msg_iovlen = 1,
			};
		}
		int n = recvmmsg(fd, b.msg, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("reflector: recvmmsg");
			return 1;
		}
		int out = 0;
		for (int i = 0; i < n; i++) {
			size_t len = reply(b.buf[i], b.msg[i].msg_len, addr,
					   (uint32_t)ttl);
			if (len == 0)
				continue;
			b.iov[i].iov_len = len;
			if (out != i)
				b.msg[out].msg_hdr = b.msg[i].msg_hdr;
			b.msg[out].msg_hdr.msg_iov = &b.iov[i];
			out++;
		}
		for (int sent = 0; sent < out;) {
			int k = sendmmsg(fd, b.msg + sent,
					 (unsigned)(out - sent), 0);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				perror("reflector: sendmmsg");
				break;
			}
			sent += k;
		}
	}
}
