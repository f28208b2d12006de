/*
 * main.c - command line, start-up order, signals, reloads and shutdown.
 *
 * Order: read and check the configuration (all of it, zone files
 * included) into the first snapshot, bind every worker's sockets, detach
 * if asked, drop privileges, start the workers, then wait for signals
 * until SIGTERM or SIGINT.  The main thread serves no query: it starts
 * reload builds on a thread of their own and publishes their snapshots
 * to the workers.  The same thread downloads subscribed lists (URLs in
 * block.lists) when their refresh timer fires or splitdnsctl asks, and
 * publishes a snapshot with a new block set when one of them changed.
 * SIGUSR2 (and SIGHUP, beside the reload) reopens the log files.
 * Everything is freed on the way out so that leak checkers see a clean
 * exit.  Its state, struct daemon, is in daemon.h: ops.c answers the
 * control socket from it, expo.c writes the metrics body, daemon.c sums
 * the workers' figures for them and for SIGUSR1.
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
#include <sys/resource.h>
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


static void cache_limits_of(const struct conf *cfg, struct cache_limits *lim)
{
	lim->size = (size_t)cfg->cache_size;
	lim->min_ttl = (uint32_t)cfg->cache_min_ttl;
	lim->max_ttl = (uint32_t)cfg->cache_max_ttl;
	lim->negative_ttl = (uint32_t)cfg->cache_negative_ttl;
	lim->serve_stale = (uint32_t)cfg->cache_serve_stale;
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

static void report_log(void *ctx, int warning, const char *line)
{
	(void)ctx;
	if (warning)
		log_warn("%s", line);
	else
		log_info("%s", line);
}

static bool same_sockets(const struct conf *a, const struct conf *b)
{
	if (a->nlisten != b->nlisten ||
	    a->tcp_max_connections != b->tcp_max_connections ||
	    a->tcp_idle_timeout_ms != b->tcp_idle_timeout_ms ||
	    a->tcp_query_timeout_ms != b->tcp_query_timeout_ms ||
	    a->tcp_write_timeout_ms != b->tcp_write_timeout_ms ||
	    a->tcp_max_per_client != b->tcp_max_per_client ||
	    a->tcp_max_output != b->tcp_max_output ||
	    a->tcp_max_output_total != b->tcp_max_output_total ||
	    a->tls_handshake_timeout_ms != b->tls_handshake_timeout_ms ||
	    a->tls_max_handshakes != b->tls_max_handshakes ||
	    a->https_max_streams != b->https_max_streams)
		return false;
	for (size_t i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i].text, b->listen[i].text) != 0)
			return false;
	return true;
}

static bool same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_control(const struct conf *a, const struct conf *b)
{
	return same_text(a->control, b->control) &&
	       same_text(a->control_group, b->control_group) &&
	       a->control_mode == b->control_mode;
}

static bool same_query_log(const struct conf *a, const struct conf *b)
{
	return same_text(a->log_queries, b->log_queries) &&
	       a->log_max_size == b->log_max_size &&
	       a->log_keep == b->log_keep && a->log_queue == b->log_queue &&
	       a->log_privacy == b->log_privacy;
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

/* ---- reloads: built on a thread of their own, published by main ---- */

static void *build_snapshot(void *arg)
{
	struct daemon *d = arg;
	struct snapshot *s = NULL;

	/* Background work: where it competes for a CPU with the serving
	 * loops, they come first (nice 10 has a tenth of their weight). */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
	d->reload_err[0] = '\0';
	if (d->job_from) {
		/* A refresh: the configuration and zones stay; only a list
		 * that changed makes a new block set. */
		if (fetch_sched_run(d->sched, d->job_from->cfg, d->job_force,
				    loop_now_ms(), &d->cancel, report_log,
				    NULL))
			s = snapshot_refresh(d->job_from, report_log, NULL,
					     d->generation + 1, d->reload_err,
					     sizeof(d->reload_err));
	} else {
		s = snapshot_build(d->o->conf, d->o->listen, d->o->nlisten,
				   report_log, NULL, d->generation + 1,
				   d->reload_err, sizeof(d->reload_err));
		if (s && !fetch_sched_sync(d->sched, s->cfg, loop_now_ms(),
					   (int64_t)time(NULL)))
			log_err("reload: out of memory for the refresh times "
				"of the subscribed lists; keeping the old ones");
	}
	atomic_store(&d->built, s);
	atomic_store(&d->reload_done, true);
	loop_wake(d->loop);
	return NULL;
}

static bool start_build(struct daemon *d, struct snapshot *from, bool force)
{
	d->job_from = from;
	d->job_force = force;
	d->job_started_ms = loop_now_ms();
	atomic_store(&d->reload_done, false);
	int rc = pthread_create(&d->reloader, NULL, build_snapshot, d);
	if (rc) {
		log_err("%s: cannot start a thread: %s",
			from ? "refresh" : "reload", strerror(rc));
		snapshot_unref(from);
		d->job_from = NULL;
		return false;
	}
	d->reloading = true;
	return true;
}

void daemon_start_reload(struct daemon *d)
{
	if (d->reloading) {
		d->reload_again = true; /* one more after this one */
		return;
	}
	d->reload_again = false;
	start_build(d, NULL, false);
}

/*
 * Download the subscribed lists that are due (force: all of them) on the
 * build thread, and publish a new block set if one changed.  This is what
 * the refresh timer and a control command call.
 */
void daemon_start_refresh(struct daemon *d, bool force)
{
	if (d->reloading) {
		d->refresh_again = true;
		d->refresh_force = d->refresh_force || force;
		return;
	}
	d->refresh_again = false;
	d->refresh_force = false;
	if (fetch_sched_next(d->sched) == UINT64_MAX) {
		if (force)
			log_info("refresh: block.lists names no URL");
		return;
	}
	if (!start_build(d, snapshot_ref(d->snap), force))
		loop_timer_set(d->loop, &d->refresh_timer,
			       loop_now(d->loop) + 60000);
}

static void on_refresh_timer(struct loop_timer *t, uint64_t now_ms)
{
	struct daemon *d = (struct daemon *)((char *)t -
					     offsetof(struct daemon,
						      refresh_timer));
	(void)now_ms;
	daemon_start_refresh(d, false);
}

/* Arm the timer for the next list that is due; only between builds. */
static void arm_refresh(struct daemon *d)
{
	uint64_t next = fetch_sched_next(d->sched);

	if (next == UINT64_MAX)
		loop_timer_del(d->loop, &d->refresh_timer);
	else
		loop_timer_set(d->loop, &d->refresh_timer, next);
}

/* A reload may add, drop or reorder client groups: a group's pause stays
 * with its name, and the pause of a group that is gone ends. */
static void pause_remap(struct daemon *d, const struct snapshot *old,
			const struct snapshot *s)
{
	uint64_t until[PAUSE_MAX_GROUPS + 1] = {0};

	for (size_t i = 0; i < old->ncgroups && i < PAUSE_MAX_GROUPS; i++)
		for (size_t j = 0; j < s->ncgroups && j < PAUSE_MAX_GROUPS; j++)
			if (strcmp(old->cgroups[i].name, s->cgroups[j].name) ==
			    0)
				until[pause_slot(j)] =
				    pause_until(&d->pause, pause_slot(i));
	for (size_t k = 1; k <= PAUSE_MAX_GROUPS; k++)
		if (pause_until(&d->pause, k) != until[k])
			pause_set(&d->pause, k, until[k]);
}

/* dnstap's output is made once, at start. */
static bool same_dnstap(const struct conf *a, const struct conf *b)
{
	return same_text(a->dnstap, b->dnstap) &&
	       same_text(a->dnstap_identity, b->dnstap_identity) &&
	       same_text(a->dnstap_version, b->dnstap_version);
}

/* Hand the new snapshot to every worker, each with its own reference. */
static void publish(struct daemon *d, struct snapshot *s)
{
	struct snapshot *old = d->snap;

	if (s->base == old->base)
		goto hand_over; /* a refresh: nothing but the block set */
	if (!same_sockets(old->cfg, s->cfg))
		log_warn("listen, tcp or tls limits changed: they take effect "
			 "after a restart");
	if (old->cfg->threads != s->cfg->threads)
		log_warn("threads changed: it takes effect after a restart");
	if ((old->cfg->user == NULL) != (s->cfg->user == NULL) ||
	    (s->cfg->user && strcmp(old->cfg->user, s->cfg->user) != 0))
		log_warn("user changed: it takes effect after a restart");
	if (!same_control(old->cfg, s->cfg))
		log_warn("control settings changed: they take effect after a "
			 "restart");
	if (!same_query_log(old->cfg, s->cfg))
		log_warn("log_queries, log_max_size, log_keep, log_queue or "
			 "log_privacy changed: they take effect after a "
			 "restart");
	if (old->cfg->metrics_on != s->cfg->metrics_on ||
	    strcmp(old->cfg->metrics.addr, s->cfg->metrics.addr) != 0)
		log_warn("metrics changed: it takes effect after a restart");
	if (!same_dnstap(old->cfg, s->cfg))
		log_warn("dnstap settings changed: they take effect after a "
			 "restart");
	/* Answers of servers that are gone never match again (the key
	 * holds the upstream generation); free their memory now. */
	if (!snapshot_same_upstreams(old, s))
		cache_clear(d->cache);
	pause_remap(d, old, s);
	struct cache_limits lim;
	cache_limits_of(s->cfg, &lim);
	cache_set_limits(d->cache, &lim);
hand_over:
	d->generation = s->generation;
	for (size_t i = 0; i < d->nworkers; i++)
		worker_publish(d->workers[i], snapshot_ref(s));
	d->snap = s;
	d->published_ms = loop_now_ms();
	if (s->base == old->base) {
		d->refreshes++;
		log_info("refreshed the block lists of %s", d->o->conf);
	} else {
		d->reloads++;
		log_info("reloaded %s: %zu local names, %zu forward rules",
			 d->o->conf, zone_size(s->zone), s->cfg->nforwards);
	}
	snapshot_unref(old);
}

static void on_main_wake(void *ctx)
{
	struct daemon *d = ctx;

	if (!d->reloading || !atomic_load(&d->reload_done))
		return;
	pthread_join(d->reloader, NULL);
	d->reloading = false;
	struct snapshot *s = atomic_exchange(&d->built, NULL);
	struct snapshot *from = d->job_from;
	d->job_from = NULL;
	if (from)
		d->refresh_last_ms = loop_now_ms() - d->job_started_ms;
	else
		d->reload_last_ms = loop_now_ms() - d->job_started_ms;
	if (!s && from && !d->reload_err[0])
		d->refresh_unchanged++;
	if (s) {
		publish(d, s);
	} else if (!from) {
		d->reload_failures++;
		log_err("reload failed, still serving the previous "
			"configuration: %s", d->reload_err);
	} else if (d->reload_err[0]) {
		d->refresh_failures++;
		log_err("refresh failed, still serving the previous block "
			"lists: %s", d->reload_err);
	}
	snapshot_unref(from);
	arm_refresh(d);
	if (d->stop)
		return;
	if (d->reload_again)
		daemon_start_reload(d);
	else if (d->refresh_again)
		daemon_start_refresh(d, d->refresh_force);
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
			   .refresh_timer = {.cb = on_refresh_timer}};
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
	if (!(d.snap = snapshot_build(o.conf, o.listen, o.nlisten, report_log,
				      NULL, 1, err, sizeof(err)))) {
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
	cache_limits_of(d.snap->cfg, &lim);
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
	loop_on_wake(d.loop, on_main_wake, &d);
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
	arm_refresh(&d);
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
