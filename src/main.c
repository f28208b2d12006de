/*
 * main.c - command line, start-up order, signals and shutdown.
 *
 * Order: read and check the configuration (all of it, zone files
 * included) into the first snapshot, bind every worker's sockets, detach
 * if asked, drop privileges, start the workers, then wait for signals
 * until SIGTERM or SIGINT.  The main thread serves no query: SIGHUP
 * starts a reload, which reload.c builds on a thread of its own and
 * publishes to the workers; the same thread downloads subscribed lists
 * (URLs in block.lists) when their refresh timer fires or splitdnsctl
 * asks, and publishes a snapshot with a new block set when one of them
 * changed.  SIGUSR1 logs the counters, SIGUSR2 (and SIGHUP, beside the
 * reload) reopens the log files.  Everything is freed on the way out so
 * that leak checkers see a clean exit.  Its state, struct daemon, is in
 * daemon.h: reload.c reloads and publishes, ops.c answers the control
 * socket from it, expo.c writes the metrics body, daemon.c sums the
 * workers' figures for them and for SIGUSR1.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "block.h"
#include "cache.h"
#include "conf.h"
#include "control.h"
#include "daemon.h"
#ifdef HAVE_DNSTAP
#include "dnstap.h"
#endif
#include "explain.h"
#include "fetch.h"
#include "log.h"
#include "loop.h"
#include "expo.h"
#include "metrics.h"
#include "ops.h"
#include "pause.h"
#include "qlog.h"
#include "query.h"
#include "reload.h"
#include "server.h"
#include "snapshot.h"
#include "worker.h"
#include "zone.h"

#ifndef SPLITDNS_CONF
#define SPLITDNS_CONF "/etc/splitdns/splitdns.conf"
#endif

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
		"  --explain NAME [TYPE] [--client ADDR]\n"
		"              say which rule answers NAME (asked by ADDR) "
		"and what the\n"
		"              answer is, then exit\n"
		"  -V, --version\n"
		"  -h, --help\n",
		SPLITDNS_CONF);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{"explain", required_argument, NULL, 'x'},
		{"client", required_argument, NULL, 'C'},
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
		case 'x':
			o->explain_name = optarg;
			break;
		case 'C':
			o->explain_client = optarg;
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
	if (o->explain_name && optind + 1 == argc)
		o->explain_type = argv[optind++];
	if (o->explain_client && !o->explain_name) {
		fprintf(stderr, "splitdns: --client goes with --explain\n");
		return 1;
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
	/* Never through a symlink someone planted (we are still root), and
	 * only over a regular file. */
	int pf = open(pidfile, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		      0644);
	struct stat st;
	if (pf < 0 || fstat(pf, &st) < 0 || !S_ISREG(st.st_mode) ||
	    ftruncate(pf, 0) < 0) {
		log_err("cannot write pid file %s: %s", pidfile,
			pf < 0 ? strerror(errno) : "not a regular file");
		if (pf >= 0)
			close(pf);
		return -1;
	}
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(pf, line, (size_t)n) != n) {
		log_err("cannot write pid file %s: %s", pidfile,
			strerror(errno));
		close(pf);
		return -1;
	}
	close(pf);
	return 0;
}


static void log_list(void *ctx, const struct block_source *src,
		     uint64_t hits)
{
	(void)ctx;
	log_info("blocklist %s: %zu names, %zu allowed, %zu bad lines, "
		 "%" PRIu64 " hits",
		 src->name, src->entries, src->allows, src->bad, hits);
}

/* With client groups: one line per group, default last. */
static void log_group_stats(const struct daemon *d)
{
	const struct snapshot *s = d->snap;

	for (size_t i = 1; s->ncgroups > 1 && i <= s->ncgroups; i++) {
		const struct snapshot_group *g = &s->cgroups[i % s->ncgroups];
		uint64_t queries, blocked;
		daemon_group_counts(d, g->name, &queries, &blocked);
		log_info("client group %s: queries %" PRIu64
			 ", blocked %" PRIu64,
			 g->name, queries, blocked);
	}
}

/* SIGUSR1: the dnstap output's line. */
static void log_dnstap(const struct daemon *d)
{
#ifdef HAVE_DNSTAP
	uint64_t sent, dropped;

	if (!d->dnstap)
		return;
	dnstap_counts(d->dnstap, &sent, &dropped);
	log_info("dnstap: %" PRIu64 " messages sent, %" PRIu64 " dropped",
		 sent, dropped);
#else
	(void)d;
#endif
}

/* SIGUSR1: the counters of every worker, summed. */
static void log_stats(const struct daemon *d)
{
	struct query_stats s = {0};

	for (size_t i = 0; i < d->nworkers; i++)
		worker_stats(d->workers[i], &s);
	log_info("stats: queries %" PRIu64 ", local %" PRIu64
		 ", canary %" PRIu64
		 ", blocked %" PRIu64 ", cache %" PRIu64 ", stale %" PRIu64
		 ", forwarded %" PRIu64 ", joined %" PRIu64
		 ", upstream answers %" PRIu64 ", servfail %" PRIu64
		 ", refused %" PRIu64 ", private %" PRIu64
		 ", rebind %" PRIu64 ", malformed %" PRIu64
		 ", dropped %" PRIu64 ", truncated %" PRIu64
		 ", prefetched %" PRIu64,
		 s.queries, s.local, s.canary, s.blocked, s.cached, s.stale,
		 s.forwarded, s.joined, s.answered, s.servfail, s.refused, s.private_nx,
		 s.rebind, s.malformed, s.dropped, s.truncated, s.prefetched);
	daemon_each_list(d, log_list, NULL);
	log_group_stats(d);
	struct cache_stats cs;
	cache_get_stats(d->cache, &cs);
	log_info("cache: %zu entries, %zu bytes, %" PRIu64 " hits, %" PRIu64
		 " misses, %" PRIu64 " stored, %" PRIu64 " evicted",
		 cs.entries, cs.bytes, cs.hits, cs.misses, cs.stored,
		 cs.evicted);
	if (d->qlog) {
		uint64_t written, dropped;
		qlog_counts(d->qlog, &written, &dropped);
		log_info("query log %s: %" PRIu64 " lines written, %" PRIu64
			 " dropped",
			 qlog_path(d->qlog), written, dropped);
	}
	log_dnstap(d);
}

/* Give up root once the sockets are bound (user = "..."). */
static int drop_privileges(const struct conf *cfg)
{
	struct passwd *pw;

	if (!cfg->user)
		return 0;
	errno = 0;
	if (!(pw = getpwnam(cfg->user))) {
		log_err("%s:%d: user '%s': %s", cfg->path, cfg->user_line,
			cfg->user, errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (geteuid() != 0) {
		if (geteuid() == pw->pw_uid)
			return 0;
		log_err("%s:%d: user = \"%s\" needs splitdns to start as root",
			cfg->path, cfg->user_line, cfg->user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_err("switching to user %s: %s", cfg->user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) { /* must not be able to come back */
		log_err("switching to user %s: root could be regained",
			cfg->user);
		return -1;
	}
	log_info("running as user %s", cfg->user);
	return 0;
}

/* ---- the query log ---- */

/* Open log_queries (as root, before the privilege drop: the file is then
 * given to the user, who reopens and rotates it in its folder) and add
 * its observer to every worker, which have not started yet. */
static bool start_query_log(struct daemon *d, char *err, size_t errlen)
{
	const struct conf *cfg = d->snap->cfg;
	static const enum qlog_privacy privacy[] = {
	    [CONF_LOG_PRIVACY_NONE] = QLOG_PRIVACY_NONE,
	    [CONF_LOG_PRIVACY_MASK] = QLOG_PRIVACY_MASK,
	    [CONF_LOG_PRIVACY_HIDE] = QLOG_PRIVACY_HIDE,
	};
	struct qlog_settings set = {
	    .path = cfg->log_queries,
	    .max_size = cfg->log_max_size,
	    .keep = (unsigned)cfg->log_keep,
	    .queue = (unsigned)cfg->log_queue,
	    .privacy = privacy[cfg->log_privacy],
	    .uid = (uid_t)-1,
	    .gid = (gid_t)-1,
	};
	struct passwd *pw;

	if (!cfg->log_queries)
		return true;
	if (cfg->user && geteuid() == 0 && (pw = getpwnam(cfg->user))) {
		set.uid = pw->pw_uid;
		set.gid = pw->pw_gid;
	}
	if (!(d->qlog = qlog_new(&set, (unsigned)d->nworkers, err, errlen)))
		return false;
	for (size_t i = 0; i < d->nworkers; i++) {
		struct query_observer obs;
		qlog_observer(d->qlog, (unsigned)i, &obs);
		if (!worker_add_observer(d->workers[i], &obs)) {
			snprintf(err, errlen, "query log: too many observers");
			return false;
		}
	}
	log_info("query log %s", qlog_path(d->qlog));
	return true;
}

/* SIGUSR2 and SIGHUP: close and open again every log file (after
 * logrotate moved them away). */
static void reopen_logs(struct daemon *d)
{
	if (d->qlog)
		qlog_reopen(d->qlog);
}

/* SIGUSR2: finish the dnstap file and start it again (logrotate). */
static void reopen_dnstap(struct daemon *d)
{
#ifdef HAVE_DNSTAP
	char err[CONF_ERR_MAX];

	if (d->dnstap && !dnstap_reopen(d->dnstap, err, sizeof(err)))
		log_err("%s", err);
#else
	(void)d;
#endif
}

static void on_signal(struct loop_watch *w, uint32_t events)
{
	struct daemon *d = (struct daemon *)((char *)w -
					     offsetof(struct daemon, sigw));
	struct signalfd_siginfo si;

	(void)events;
	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reopen_logs(d);
			daemon_start_reload(d);
			continue;
		}
		if (si.ssi_signo == SIGUSR1) {
			log_stats(d);
			continue;
		}
		if (si.ssi_signo == SIGUSR2) {
			reopen_logs(d);
			reopen_dnstap(d); /* SIGUSR2 only: a reopen replaces the file */
			continue;
		}
		log_info("%s: shutting down",
			 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		d->stop = true;
	}
}

/* -t and --explain: load everything the server would, bind nothing. */
static int check_only(const struct options *o)
{
	char err[CONF_ERR_MAX];
	struct snapshot *s = snapshot_build(o->conf, o->listen, o->nlisten,
					    NULL, NULL, 1, err, sizeof(err));
	int rc = 1;

	if (!s)
		fprintf(stderr, "%s\n", err);
	else if (o->explain_name)
		rc = explain(stdout, s, o->explain_name, o->explain_type,
			     o->explain_client);
	else
		rc = printf("%s: configuration OK\n", o->conf) < 0;
	snapshot_unref(s);
	return rc;
}

static size_t worker_count(const struct conf *cfg)
{
	if (cfg->threads > 0)
		return (size_t)cfg->threads;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > CONF_MAX_THREADS ? CONF_MAX_THREADS : (size_t)n;
}

/* The listen addresses for the start-up line, as many as fit. */
static void listening_text(const struct conf *cfg, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < cfg->nlisten; i++) {
		int k = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "",
				 cfg->listen[i].text);
		if (k < 0 || (size_t)k >= cap - n) {
			/* Cut at the last whole address (no wrap-around). */
			buf[n] = '\0';
			snprintf(buf + n, cap - n, "%s",
				 cap - n > 5 ? ", ..." : "");
			return;
		}
		n += (size_t)k;
	}
}

/* Bind every worker's sockets, then (as the user) start them. */
static bool start_workers(struct daemon *d, char *err, size_t errlen)
{
	d->nworkers = worker_count(d->snap->cfg);
	/* SO_REUSEPORT would let a second daemon share our addresses. */
	if (d->nworkers > 1 && !server_probe(d->snap->cfg, err, errlen))
		return false;
	server_budget(d->snap->cfg, (unsigned)d->nworkers, &d->budget);
	if (d->budget.clamped)
		log_warn("%s", d->budget.line);
	else
		log_info("%s", d->budget.line);
	if (!(d->workers = calloc(d->nworkers, sizeof(*d->workers)))) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	for (size_t i = 0; i < d->nworkers; i++) {
		if (!(d->workers[i] = worker_new(
			      (unsigned)i, snapshot_ref(d->snap), d->cache,
			      &d->budget, err, errlen)))
			return false;
		worker_set_pause(d->workers[i], &d->pause);
	}
	return true;
}

/* dnstap = "...": the output and an observer on each worker.  After
 * detach (libfstrm's thread would not survive the fork) and the
 * privilege drop (a reopen runs as the same user), before the workers
 * start. */
static bool start_dnstap(struct daemon *d, char *err, size_t errlen)
{
#ifdef HAVE_DNSTAP
	const struct conf *cfg = d->snap->cfg;

	if (!cfg->dnstap)
		return true;
	if (!(d->dnstap = dnstap_new(cfg->dnstap, cfg->dnstap_identity,
				     cfg->dnstap_version,
				     (unsigned)d->nworkers, err, errlen)))
		return false;
	for (size_t i = 0; i < d->nworkers; i++) {
		struct query_observer obs;
		dnstap_observer(d->dnstap, (unsigned)i, &obs);
		if (!worker_add_observer(d->workers[i], &obs)) {
			snprintf(err, errlen, "dnstap: too many observers");
			return false;
		}
	}
	log_info("dnstap: writing to %s", cfg->dnstap);
#else
	(void)d, (void)err, (void)errlen;
#endif
	return true;
}

static void stop_workers(struct daemon *d)
{
	for (size_t i = 0; d->workers && i < d->nworkers; i++)
		if (d->workers[i])
			worker_stop(d->workers[i]);
	for (size_t i = 0; d->workers && i < d->nworkers; i++)
		worker_free(d->workers[i]);
	free(d->workers);
	d->workers = NULL;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct daemon d = {.o = &o, .sigw = {-1, on_signal},
			   .refresh_timer = {.cb = reload_on_refresh_timer}};
	char err[CONF_ERR_MAX], *conf = NULL;
	sigset_t mask;
	int rc = 1;

	if (parse_args(argc, argv, &o))
		return 1;
	/* libcurl's global set-up is not thread-safe: before any thread. */
	if (!fetch_global_init()) {
		fprintf(stderr, "splitdns: libcurl cannot start\n");
		return 1;
	}
	if (o.check || o.explain_name) {
		rc = check_only(&o);
		fetch_global_cleanup();
		return rc;
	}
	log_init(false, o.verbose);
	/* Reloads happen after chdir("/") when detached. */
	if (!(conf = realpath(o.conf, NULL))) {
		log_err("%s: %s", o.conf, strerror(errno));
		return 1;
	}
	o.conf = conf;
	/* Blocked in every thread (they inherit the mask): main reads them
	 * from its signalfd. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	atomic_init(&d.built, NULL);
	atomic_init(&d.reload_done, false);
	atomic_init(&d.cancel, false);
	/* Everything is checked before anything is bound.  c-ares opens no
	 * socket before the first query, so its channels survive the fork. */
	if (!(d.snap = snapshot_build(o.conf, o.listen, o.nlisten,
				      reload_report_log, NULL, 1, err,
				      sizeof(err)))) {
		log_err("%s", err);
		goto out;
	}
	d.generation = 1;
	d.started_ms = d.published_ms = loop_now_ms();
	pause_init(&d.pause);
	if (!(d.sched = fetch_sched_new()) ||
	    !fetch_sched_sync(d.sched, d.snap->cfg, loop_now_ms(),
			      (int64_t)time(NULL))) {
		log_err("start-up: out of memory");
		goto out;
	}
	struct cache_limits lim;
	reload_cache_limits(d.snap->cfg, &lim);
	if (!(d.loop = loop_new()) || !(d.cache = cache_new(&lim))) {
		log_err("start-up: %s", d.loop ? "out of memory" : strerror(errno));
		goto out;
	}
	if (!start_workers(&d, err, sizeof(err)) ||
	    !start_query_log(&d, err, sizeof(err))) {
		log_err("%s", err);
		goto out;
	}
	if (o.detach) {
		log_init(true, o.verbose);
		if (detach(o.pidfile) < 0)
			goto out;
	}
	if (!ops_start_control(&d, err, sizeof(err)) ||
	    !expo_start_metrics(&d, err, sizeof(err))) {
		log_err("%s", err);
		goto out;
	}
	if (drop_privileges(d.snap->cfg) < 0)
		goto out;
	if (d.qlog && !qlog_start(d.qlog)) {
		log_err("query log: cannot start a thread: %s",
			strerror(errno));
		goto out;
	}
	if (!start_dnstap(&d, err, sizeof(err))) {
		log_err("%s", err);
		goto out;
	}
	d.sigw.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	loop_on_wake(d.loop, reload_on_main_wake, &d);
	if (d.sigw.fd < 0 || loop_add(d.loop, &d.sigw, EPOLLIN) < 0) {
		log_err("start-up failed: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < d.nworkers; i++)
		if (!worker_start(d.workers[i])) {
			log_err("starting worker %zu: %s", i, strerror(errno));
			goto out;
		}
	char listening[CONF_ERR_MAX];
	listening_text(d.snap->cfg, listening, sizeof(listening));
	log_info("splitdns %s ready: listening on %s; %zu worker thread%s; "
		 "%zu local names; %zu upstream servers%s",
		 PACKAGE_VERSION, listening, d.nworkers,
		 d.nworkers == 1 ? "" : "s", zone_size(d.snap->zone),
		 d.snap->cfg->nservers,
		 d.snap->cfg->servers_from_resolv ? " (from /etc/resolv.conf)"
						  : "");
	/* Lists never fetched, or older than block.refresh, now. */
	reload_arm_refresh(&d);
	while (!d.stop)
		if (loop_run_once(d.loop, -1) < 0) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
	rc = d.stop ? 0 : 1;
out:
	/* Workers answer what is in flight (up to its deadline), then go. */
	atomic_store(&d.cancel, true);
	control_free(d.ctl);
	metrics_free(d.metrics);
	stop_workers(&d);
	qlog_free(d.qlog); /* after the workers: it writes what they left */
#ifdef HAVE_DNSTAP
	dnstap_free(d.dnstap); /* after the workers: every message is in */
#endif
	if (d.reloading) {
		pthread_join(d.reloader, NULL);
		snapshot_unref(atomic_exchange(&d.built, NULL));
		snapshot_unref(d.job_from);
	}
	if (d.sigw.fd >= 0)
		close(d.sigw.fd);
	loop_free(d.loop);
	cache_free(d.cache);
	snapshot_unref(d.snap);
	fetch_sched_free(d.sched);
	fetch_global_cleanup();
	if (rc == 0 && o.detach)
		unlink(o.pidfile);
	free(conf);
	return rc;
}
