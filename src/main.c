/*
 * main.c - command line, start-up order, signals, the main loop and
 * shutdown.
 *
 * Order: read and check the configuration (all of it, zone files
 * included), bind the sockets, detach if asked, then serve until SIGTERM
 * or SIGINT.  Everything is freed on the way out so that leak checkers see
 * a clean exit.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "forward.h"
#include "log.h"
#include "loop.h"
#include "query.h"
#include "server.h"
#include "zone.h"

#ifndef SPLITDNS_CONF
#define SPLITDNS_CONF "/etc/splitdns/splitdns.conf"
#endif
#define MAX_LISTEN_ARGS 64

struct options {
	const char *conf;
	const char *pidfile;
	const char *listen[MAX_LISTEN_ARGS];
	size_t nlisten;
	bool check;
	bool detach;
	bool verbose;
};

/* Signal state, read by the main loop. */
struct sigwatch {
	struct loop_watch w;
	bool stop;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: splitdns [-c FILE] [-t] [-d] [-p PIDFILE] [-l ADDR]... "
		"[-v]\n"
		"  -c FILE     configuration file (default %s)\n"
		"  -t          check the configuration and zone files, then "
		"exit\n"
		"  -d          detach and log to syslog\n"
		"  -p PIDFILE  pid file when detached (default "
		"/run/splitdns.pid)\n"
		"  -l ADDR     listen on ADDR instead of the configured "
		"addresses\n"
		"              (repeatable; 1.2.3.4:53 or [::1]:53)\n"
		"  -v          log every query\n"
		"  -V, --version\n"
		"  -h, --help\n",
		SPLITDNS_CONF);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	o->conf = SPLITDNS_CONF;
	o->pidfile = "/run/splitdns.pid";
	while ((c = getopt_long(argc, argv, "c:tdp:l:vVh", longs, NULL)) != -1) {
		switch (c) {
		case 'c': o->conf = optarg; break;
		case 't': o->check = true; break;
		case 'd': o->detach = true; break;
		case 'p': o->pidfile = optarg; break;
		case 'v': o->verbose = true; break;
		case 'l':
			if (o->nlisten == MAX_LISTEN_ARGS) {
				fprintf(stderr, "splitdns: too many -l\n");
				return 1;
			}
			o->listen[o->nlisten++] = optarg;
			break;
		case 'V':
			printf("splitdns %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "splitdns: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 1;
	}
	return 0;
}

/* Fork into the background, a new session, stdio on /dev/null. */
static int detach(const char *pidfile)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (chdir("/") < 0)
		return -1;
	FILE *f = fopen(pidfile, "w");
	if (!f) {
		log_err("cannot write pid file %s: %s", pidfile,
			strerror(errno));
		return -1;
	}
	fprintf(f, "%ld\n", (long)getpid());
	fclose(f);
	return 0;
}

static void on_signal(struct loop_watch *w, uint32_t events)
{
	struct sigwatch *s = (struct sigwatch *)w;
	struct signalfd_siginfo si;

	(void)events;
	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("SIGHUP: reload is not supported by this "
				 "version; still serving");
			continue;
		}
		log_info("%s: shutting down",
			 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		s->stop = true;
	}
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static void serve(struct loop *loop, struct server *srv,
		  struct query_env *env, struct forward *fw,
		  struct sigwatch *sig)
{
	while (!sig->stop) {
		uint64_t now = loop_now_ms();
		int t = min_timeout(query_next_deadline_ms(env, now),
				    server_expire(srv, now));
		t = forward_timeout_ms(fw, t);
		if (loop_wait(loop, t) < 0) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
		forward_tick(fw);
		now = loop_now_ms();
		query_expire(env, now);
	}
}

static int check_only(const struct options *o)
{
	char err[CONFIG_ERR_MAX];
	struct config *cfg = config_load(o->conf, o->listen, o->nlisten, err,
					 sizeof(err));
	if (!cfg) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	struct zone *z = zone_build(cfg, err, sizeof(err));
	config_free(cfg);
	if (!z) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	zone_free(z);
	printf("%s: configuration OK\n", o->conf);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	char err[CONFIG_ERR_MAX];
	struct config *cfg = NULL;
	struct zone *zone = NULL;
	struct loop *loop = NULL;
	struct server *srv = NULL;
	struct forward *fw = NULL;
	struct query_env *env = NULL;
	struct sigwatch sig = {{-1, on_signal}, false};
	struct query_io io;
	sigset_t mask;
	int rc = 1;

	if (parse_args(argc, argv, &o))
		return 1;
	if (o.check)
		return check_only(&o);
	log_init(false, o.verbose);

	if (!(cfg = config_load(o.conf, o.listen, o.nlisten, err,
				sizeof(err))) ||
	    !(zone = zone_build(cfg, err, sizeof(err)))) {
		log_err("%s", err);
		goto out;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!(loop = loop_new())) {
		log_err("epoll: %s", strerror(errno));
		goto out;
	}
	if (!(srv = server_new(cfg, loop, err, sizeof(err)))) {
		log_err("%s", err);
		goto out;
	}
	if (o.detach) {
		log_init(true, o.verbose);
		if (detach(o.pidfile) < 0)
			goto out;
	}
	/* After the fork: epoll sets and c-ares state are per process. */
	if (!(fw = forward_new(loop, cfg->servers, cfg->nservers,
			       cfg->timeout_ms, cfg->tries, err,
			       sizeof(err)))) {
		log_err("%s", err);
		goto out;
	}
	server_io(srv, &io);
	env = query_env_new(zone, fw, (uint16_t)cfg->edns_size,
			    cfg->timeout_ms * cfg->tries, &io);
	sig.w.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (!env || sig.w.fd < 0 || loop_add(loop, &sig.w, EPOLLIN) < 0 ||
	    server_start(srv, env) < 0) {
		log_err("start-up failed: %s", strerror(errno));
		goto out;
	}
	char listening[CONFIG_ERR_MAX] = "";
	for (size_t i = 0, n = 0; i < cfg->nlisten; i++)
		n += (size_t)snprintf(listening + n, sizeof(listening) - n,
				      "%s%s", i ? ", " : "",
				      cfg->listen[i].text);
	log_info("splitdns %s ready: listening on %s; %zu local names; "
		 "%zu upstream servers%s",
		 PACKAGE_VERSION, listening, zone_size(zone), cfg->nservers,
		 cfg->servers_from_resolv ? " (from /etc/resolv.conf)" : "");
	serve(loop, srv, env, fw, &sig);
	rc = sig.stop ? 0 : 1;
out:
	/* c-ares completes what is in flight first (clients get SERVFAIL
	 * while their sockets are still open), then the rest goes. */
	forward_free(fw);
	query_env_free(env);
	server_free(srv);
	if (sig.w.fd >= 0)
		close(sig.w.fd);
	loop_free(loop);
	zone_free(zone);
	config_free(cfg);
	if (rc == 0 && o.detach)
		unlink(o.pidfile);
	return rc;
}
