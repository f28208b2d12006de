/*
 * splitdnsctl.c - the control client: send one command line to the
 * daemon's control socket, print the reply, exit with its status.
 *
 * It knows the protocol's framing (control.h) and nothing of the
 * commands beyond their names: the daemon parses and checks the
 * arguments, so the two cannot disagree about them.  Exit codes: 0 the
 * command succeeded, 1 the daemon answered with an error, 2 usage, 3 no
 * answer (cannot connect, permission denied, timeout, broken reply).
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

#define EXIT_ANSWER_ERROR 1
#define EXIT_USAGE 2
#define EXIT_NO_ANSWER 3
#define WAIT_MS 15000

static void usage(FILE *f)
{
	fprintf(f,
		"usage: splitdnsctl [-s SOCKET] [--json] COMMAND [ARG]...\n"
		"  -s SOCKET   the daemon's control socket (default %s)\n"
		"  -j, --json  answer in JSON\n"
		"commands:\n"
		"  status                      uptime, counters, cache, upstream\n"
		"                              health, lists\n"
		"  pause [SECONDS] [GROUP]     pause blocking (no SECONDS: "
		"until resume)\n"
		"  resume [GROUP]              blocking back on\n"
		"  flush [NAME]                empty the cache (or NAME's "
		"entries)\n"
		"  reload                      re-read the configuration\n"
		"  refresh                     fetch the block lists now\n"
		"  explain NAME [TYPE] [CLIENT]  which rule answers NAME\n"
		"  top [N]                     most asked, blocked and slowest\n"
		"                              names, busiest clients\n"
		"  -V, --version\n"
		"  -h, --help\n",
		CONTROL_PATH_DEFAULT);
}

/* The request line, checked as the daemon will (printable words). */
static bool build(char *line, size_t cap, bool json, int argc, char **argv)
{
	size_t n = (size_t)snprintf(line, cap, "%s", json ? "json" : "text");

	for (int i = 0; i < argc; i++) {
		const unsigned char *p = (const unsigned char *)argv[i];
		if (!*p) {
			fprintf(stderr, "splitdnsctl: empty argument\n");
			return false;
		}
		for (; *p; p++)
			if (*p < 0x21 || *p > 0x7e) {
				fprintf(stderr,
					"splitdnsctl: argument '%s': "
					"only printable characters, "
					"no spaces\n",
					argv[i]);
				return false;
			}
		size_t k = strlen(argv[i]);
		if (n + 1 + k + 1 >= cap) {
			fprintf(stderr,
				"splitdnsctl: the command is longer "
				"than %d octets\n",
				CONTROL_REQUEST_MAX);
			return false;
		}
		line[n++] = ' ';
		memcpy(line + n, argv[i], k);
		n += k;
	}
	line[n++] = '\n';
	line[n] = '\0';
	return true;
}

static int dial(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "splitdnsctl: %s: path too long\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		fprintf(stderr, "splitdnsctl: cannot connect to %s: %s%s\n",
			path, strerror(e),
			e == EACCES ? " (only root, the socket's owner and "
				      "its group may use it)"
			: e == ENOENT || e == ECONNREFUSED
			    ? " (is splitdns running, with control set?)"
			    : "");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Everything the daemon sends until it closes; NULL on failure. */
static char *receive(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);

	while (buf) {
		struct pollfd p = {fd, POLLIN, 0};
		int rc = poll(&p, 1, WAIT_MS);
		if (rc == 0) {
			fprintf(stderr, "splitdnsctl: no answer within %d s\n",
				WAIT_MS / 1000);
			break;
		}
		if (rc < 0 && errno == EINTR)
			continue;
		if (n + 1 == cap) {
			if (cap > CONTROL_REPLY_MAX * 2u)
				break;
			char *b = realloc(buf, cap * 2);
			if (!b)
				break;
			buf = b;
			cap *= 2;
		}
		ssize_t k = rc < 0 ? -1 : read(fd, buf + n, cap - n - 1);
		if (k < 0 && errno == EINTR)
			continue;
		/* A reset after a reply (the daemon closed with our bytes
		 * unread) still leaves a whole reply. */
		if (k < 0 && errno == ECONNRESET && n > 0)
			k = 0;
		if (k < 0) {
			fprintf(stderr, "splitdnsctl: %s\n", strerror(errno));
			break;
		}
		if (k == 0) {
			buf[n] = '\0';
			*len = n;
			return buf;
		}
		n += (size_t)k;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = CONTROL_PATH_DEFAULT;
	char line[CONTROL_REQUEST_MAX + 1];
	bool json = false;
	int c;

	/* "+": options end at the command (explain's TYPE may look like
	 * one to getopt otherwise). */
	while ((c = getopt_long(argc, argv, "+s:jVh", longs, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'V':
			printf("splitdnsctl %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	/* --json may follow the command too ("splitdnsctl status --json"). */
	int n = 0;
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 ||
		    strcmp(argv[i], "-j") == 0)
			json = true;
		else
			argv[optind + n++] = argv[i];
	}
	if (n == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!build(line, sizeof(line), json, n, argv + optind))
		return EXIT_USAGE;
	int fd = dial(path);
	if (fd < 0)
		return EXIT_NO_ANSWER;
	size_t len = strlen(line), off = 0;
	while (off < len) {
		ssize_t k = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	size_t rlen = 0;
	char *reply = off == len ? receive(fd, &rlen) : NULL;
	close(fd);
	if (!reply) {
		if (off != len)
			fprintf(stderr, "splitdnsctl: sending: %s\n",
				strerror(errno));
		return EXIT_NO_ANSWER;
	}
	int rc = EXIT_NO_ANSWER;
	char *body = memchr(reply, '\n', rlen);
	if (body && strncmp(reply, "ok\n", 3) == 0) {
		fwrite(body + 1, 1, rlen - (size_t)(body + 1 - reply), stdout);
		rc = 0;
	} else if (body && strncmp(reply, "error\n", 6) == 0) {
		body++;
		if (json)
			fputs(body, stdout);
		else
			fprintf(stderr, "splitdnsctl: %s", body);
		rc = EXIT_ANSWER_ERROR;
	} else {
		fprintf(stderr, "splitdnsctl: a broken reply from %s\n", path);
	}
	free(reply);
	if (fflush(stdout) != 0 && rc == 0)
		rc = EXIT_ANSWER_ERROR;
	return rc;
}
