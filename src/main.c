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
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block.h"
#include "cache.h"
#include "conf.h"
#include "explain.h"
#include "forward.h"
#include "lists.h"
#include "log.h"
#include "policy.h"
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
	const char *explain_name; /* --explain NAME [TYPE] */
	const char *explain_type;
	bool detach;
	bool verbose;
};

/* What one load of the configuration produces; replaced whole on reload. */
struct runtime {
	struct conf *cfg;
	struct zone *zone;
	struct policy *policy;
	struct block_set *blocks; /* NULL: nothing blocked */
	struct forward **groups; /* [0] default, [i] forward rule i - 1 */
	size_t ngroups;
};

#define MAX_DRAINING 64

/* The running daemon: main's state, passed down explicitly. */
struct daemon {
	struct options *o;
	struct loop *loop;
	struct server *srv;
	struct query_env *env;
	struct runtime rt;
	/* Channels replaced by a reload, freed once their queries end. */
	struct forward *draining[MAX_DRAINING];
	size_t ndraining;
	struct cache *cache;     /* survives reloads; NULL when disabled */
	struct loop_watch sigw;
	bool stop;
	bool reload;
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
		"  --explain NAME [TYPE]\n"
		"              say which rule answers NAME and what the "
		"answer is, then exit\n"
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

static void cache_limits_of(const struct conf *cfg,
			    struct cache_limits *lim)
{
	lim->size = (size_t)cfg->cache_size;
	lim->min_ttl = (uint32_t)cfg->cache_min_ttl;
	lim->max_ttl = (uint32_t)cfg->cache_max_ttl;
	lim->negative_ttl = (uint32_t)cfg->cache_negative_ttl;
}

/* SIGUSR1: the counters, one line. */
static void log_stats(const struct daemon *d)
{
	const struct query_stats *s = query_get_stats(d->env);

	log_info("stats: queries %" PRIu64 ", local %" PRIu64
		 ", blocked %" PRIu64 ", cache %" PRIu64 ", forwarded %" PRIu64
		 ", upstream answers %" PRIu64 ", servfail %" PRIu64
		 ", refused %" PRIu64 ", private %" PRIu64
		 ", rebind %" PRIu64 ", malformed %" PRIu64
		 ", dropped %" PRIu64 ", truncated %" PRIu64,
		 s->queries, s->local, s->blocked, s->cached, s->forwarded,
		 s->answered,
		 s->servfail, s->refused, s->private_nx, s->rebind,
		 s->malformed, s->dropped, s->truncated);
	for (unsigned i = 0; d->rt.blocks && i < d->rt.blocks->nsrc; i++) {
		const struct block_source *b = &d->rt.blocks->src[i];
		log_info("blocklist %s: %zu names, %zu allowed, %zu bad lines, "
			 "%" PRIu64 " hits",
			 b->name, b->entries, b->allows, b->bad,
			 d->rt.blocks->hits[i]);
	}
	if (d->cache) {
		struct cache_stats cs;
		cache_get_stats(d->cache, &cs);
		log_info("cache: %zu entries, %zu bytes, %" PRIu64
			 " hits, %" PRIu64 " misses, %" PRIu64
			 " stored, %" PRIu64 " evicted",
			 cs.entries, cs.bytes, cs.hits, cs.misses, cs.stored,
			 cs.evicted);
	}
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

static void on_signal(struct loop_watch *w, uint32_t events)
{
	struct daemon *d = (struct daemon *)((char *)w -
					     offsetof(struct daemon, sigw));
	struct signalfd_siginfo si;

	(void)events;
	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			d->reload = true;
			continue;
		}
		if (si.ssi_signo == SIGUSR1) {
			log_stats(d);
			continue;
		}
		log_info("%s: shutting down",
			 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		d->stop = true;
	}
}

static bool same_servers(const struct conf_addr *a, size_t na,
			 const struct conf_addr *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].text, b[i].text) != 0)
			return false;
	return true;
}

/* Can the new configuration keep the old c-ares channels? */
static bool same_upstreams(const struct conf *a, const struct conf *b)
{
	if (a->timeout_ms != b->timeout_ms || a->tries != b->tries ||
	    a->nforwards != b->nforwards ||
	    !same_servers(a->servers, a->nservers, b->servers, b->nservers))
		return false;
	for (size_t i = 0; i < a->nforwards; i++)
		if (!same_servers(a->forwards[i].servers,
				  a->forwards[i].nservers,
				  b->forwards[i].servers,
				  b->forwards[i].nservers))
			return false;
	return true;
}

static bool same_sockets(const struct conf *a, const struct conf *b)
{
	if (a->nlisten != b->nlisten ||
	    a->tcp_max_connections != b->tcp_max_connections ||
	    a->tcp_idle_timeout_ms != b->tcp_idle_timeout_ms)
		return false;
	for (size_t i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i].text, b->listen[i].text) != 0)
			return false;
	return true;
}

static void report_log(void *ctx, int warning, const char *line)
{
	(void)ctx;
	if (warning)
		log_warn("%s", line);
	else
		log_info("%s", line);
}

static void free_groups(struct runtime *rt)
{
	for (size_t i = 0; rt->groups && i < rt->ngroups; i++)
		forward_free(rt->groups[i]);
	free(rt->groups);
	rt->groups = NULL;
}

static void runtime_free(struct runtime *rt)
{
	free_groups(rt);
	block_set_free(rt->blocks);
	policy_free(rt->policy);
	zone_free(rt->zone);
	conf_free(rt->cfg);
	memset(rt, 0, sizeof(*rt));
}

/* One c-ares channel per upstream group; refusing rules have none. */
static bool make_groups(struct loop *loop, struct runtime *rt, char *err,
			size_t errlen)
{
	const struct conf *cfg = rt->cfg;

	rt->ngroups = cfg->nforwards + 1;
	if (!(rt->groups = calloc(rt->ngroups, sizeof(*rt->groups)))) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	for (size_t i = 0; i < rt->ngroups; i++) {
		const struct conf_addr *sv = i ? cfg->forwards[i - 1].servers
						 : cfg->servers;
		size_t n = i ? cfg->forwards[i - 1].nservers : cfg->nservers;
		if (n == 0)
			continue;
		if (!(rt->groups[i] = forward_new(loop, sv, n, cfg->timeout_ms,
						  cfg->tries, err, errlen)))
			return false;
	}
	return true;
}

/* Load the configuration into rt, taking over old's channels when the
 * upstreams did not change.  Returns false with the reason in err; old is
 * then untouched. */
static bool load(const struct options *o, struct loop *loop,
		 struct runtime *old, struct runtime *rt, char *err,
		 size_t errlen)
{
	memset(rt, 0, sizeof(*rt));
	if (!(rt->cfg = conf_load(o->conf, o->listen, o->nlisten, err,
				    errlen)) ||
	    !(rt->zone = zone_build(rt->cfg, err, errlen)) ||
	    !(rt->policy = policy_build(rt->cfg, err, errlen)))
		goto fail;
	rt->blocks = block_load(rt->cfg, report_log, NULL, err, errlen);
	if (!rt->blocks && err[0])
		goto fail;
	if (old && same_upstreams(old->cfg, rt->cfg)) {
		rt->groups = old->groups;
		rt->ngroups = old->ngroups;
		old->groups = NULL;
		old->ngroups = 0;
	} else if (!make_groups(loop, rt, err, errlen)) {
		goto fail;
	}
	return true;
fail:
	runtime_free(rt);
	return false;
}

static void set_view(struct daemon *d)
{
	struct query_view v = {
		.zone = d->rt.zone,
		.policy = d->rt.policy,
		.groups = d->rt.groups,
		.ngroups = d->rt.ngroups,
		.blocks = d->rt.blocks ? d->rt.blocks->lists : NULL,
		.block_hits = d->rt.blocks ? d->rt.blocks->hits : NULL,
		.cache = d->cache,
		.block_cname = d->rt.cfg->block.cname,
		.edns_size = (uint16_t)d->rt.cfg->edns_size,
		.deadline_ms = d->rt.cfg->timeout_ms * d->rt.cfg->tries,
	};
	block_answer_init(d->rt.cfg, &v.block);
	query_env_set(d->env, &v);
}

/* SIGHUP: build the new state beside the old and switch in one step.
 * The loop is single-threaded, so nothing can see the old zone store
 * once the view is switched; only old channels wait for their queries. */
static void reload(struct daemon *d)
{
	char err[CONF_ERR_MAX];
	struct runtime rt;

	d->reload = false;
	if (!load(d->o, d->loop, &d->rt, &rt, err, sizeof(err))) {
		log_err("reload failed, still serving the previous "
			"configuration: %s", err);
		return;
	}
	if (!same_sockets(d->rt.cfg, rt.cfg))
		log_warn("listen or tcp settings changed: they take effect "
			 "after a restart");
	if ((d->rt.cfg->user == NULL) != (rt.cfg->user == NULL) ||
	    (rt.cfg->user && strcmp(d->rt.cfg->user, rt.cfg->user) != 0))
		log_warn("user changed: it takes effect after a restart");
	struct runtime old = d->rt;
	block_keep_hits(rt.blocks, old.blocks);
	d->rt = rt;
	/* Cached answers stay unless the servers they came from changed:
	 * local data, blocks and rules are consulted before the cache. */
	if (d->cache && old.groups) /* load() made new channels */
		cache_clear(d->cache);
	if (d->cache) {
		struct cache_limits lim;
		cache_limits_of(rt.cfg, &lim);
		cache_set_limits(d->cache, &lim);
	}
	set_view(d);
	for (size_t i = 0; old.groups && i < old.ngroups; i++) {
		struct forward *fw = old.groups[i];
		if (fw && forward_pending(fw) && d->ndraining < MAX_DRAINING) {
			d->draining[d->ndraining++] = fw;
			old.groups[i] = NULL;
		}
	}
	runtime_free(&old);
	log_info("reloaded %s: %zu local names, %zu forward rules",
		 d->o->conf, zone_size(rt.zone), rt.cfg->nforwards);
}

/* Drive the channels that a reload replaced; free the idle ones. */
static int tick_draining(struct daemon *d, int timeout)
{
	for (size_t i = 0; i < d->ndraining;) {
		forward_tick(d->draining[i]);
		if (forward_pending(d->draining[i]) == 0) {
			forward_free(d->draining[i]);
			d->draining[i] = d->draining[--d->ndraining];
			continue;
		}
		timeout = forward_timeout_ms(d->draining[i], timeout);
		i++;
	}
	return timeout;
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static void serve(struct daemon *d)
{
	while (!d->stop) {
		uint64_t now = loop_now_ms();
		int t = min_timeout(query_next_deadline_ms(d->env, now),
				    server_expire(d->srv, now));
		for (size_t i = 0; i < d->rt.ngroups; i++)
			if (d->rt.groups[i])
				t = forward_timeout_ms(d->rt.groups[i], t);
		t = tick_draining(d, t);
		if (loop_wait(d->loop, t) < 0) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
		for (size_t i = 0; i < d->rt.ngroups; i++)
			if (d->rt.groups[i])
				forward_tick(d->rt.groups[i]);
		query_expire(d->env, loop_now_ms());
		if (d->reload)
			reload(d);
	}
}

/* -t and --explain: load everything the server would, bind nothing. */
static int check_only(const struct options *o)
{
	char err[CONF_ERR_MAX];
	struct conf *cfg = conf_load(o->conf, o->listen, o->nlisten, err,
					 sizeof(err));
	struct zone *z = cfg ? zone_build(cfg, err, sizeof(err)) : NULL;
	struct policy *p = z ? policy_build(cfg, err, sizeof(err)) : NULL;
	struct block_set *blocks = NULL;
	int rc = 1;

	if (p) {
		blocks = block_load(cfg, NULL, NULL, err, sizeof(err));
		if (!blocks && err[0]) {
			policy_free(p);
			p = NULL;
		}
	}
	if (!p)
		fprintf(stderr, "%s\n", err);
	else if (o->explain_name)
		rc = explain(stdout, cfg, z, p, blocks ? blocks->lists : NULL,
			     o->explain_name, o->explain_type);
	else
		rc = printf("%s: configuration OK\n", o->conf) < 0;
	block_set_free(blocks);
	policy_free(p);
	zone_free(z);
	conf_free(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct daemon d = {.o = &o, .sigw = {-1, on_signal}};
	char err[CONF_ERR_MAX], *conf = NULL;
	struct query_io io;
	sigset_t mask;
	int rc = 1;

	if (parse_args(argc, argv, &o))
		return 1;
	if (o.check || o.explain_name)
		return check_only(&o);
	log_init(false, o.verbose);
	/* Reloads happen after chdir("/") when detached. */
	if (!(conf = realpath(o.conf, NULL))) {
		log_err("%s: %s", o.conf, strerror(errno));
		return 1;
	}
	o.conf = conf;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!(d.loop = loop_new())) {
		log_err("epoll: %s", strerror(errno));
		goto out;
	}
	/* Everything is checked before anything is bound.  c-ares opens no
	 * socket before the first query, so its channel survives the fork. */
	if (!load(&o, d.loop, NULL, &d.rt, err, sizeof(err)) ||
	    !(d.srv = server_new(d.rt.cfg, d.loop, err, sizeof(err)))) {
		log_err("%s", err);
		goto out;
	}
	if (o.detach) {
		log_init(true, o.verbose);
		if (detach(o.pidfile) < 0)
			goto out;
	}
	if (drop_privileges(d.rt.cfg) < 0)
		goto out;
	struct cache_limits lim;
	cache_limits_of(d.rt.cfg, &lim);
	if (!(d.cache = cache_new(&lim))) {
		log_err("out of memory");
		goto out;
	}
	server_io(d.srv, &io);
	struct query_view none = {0};
	if ((d.env = query_env_new(&none, &io)))
		set_view(&d);
	d.sigw.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (!d.env || d.sigw.fd < 0 ||
	    loop_add(d.loop, &d.sigw, EPOLLIN) < 0 ||
	    server_start(d.srv, d.env) < 0) {
		log_err("start-up failed: %s", strerror(errno));
		goto out;
	}
	char listening[CONF_ERR_MAX] = "";
	for (size_t i = 0, n = 0; i < d.rt.cfg->nlisten; i++)
		n += (size_t)snprintf(listening + n, sizeof(listening) - n,
				      "%s%s", i ? ", " : "",
				      d.rt.cfg->listen[i].text);
	log_info("splitdns %s ready: listening on %s; %zu local names; "
		 "%zu upstream servers%s",
		 PACKAGE_VERSION, listening, zone_size(d.rt.zone),
		 d.rt.cfg->nservers,
		 d.rt.cfg->servers_from_resolv ? " (from /etc/resolv.conf)"
					       : "");
	serve(&d);
	rc = d.stop ? 0 : 1;
out:
	/* c-ares completes what is in flight first (clients get SERVFAIL
	 * while their sockets are still open), then the rest goes. */
	free_groups(&d.rt);
	while (d.ndraining)
		forward_free(d.draining[--d.ndraining]);
	query_env_free(d.env);
	server_free(d.srv);
	if (d.sigw.fd >= 0)
		close(d.sigw.fd);
	loop_free(d.loop);
	runtime_free(&d.rt);
	cache_free(d.cache);
	if (rc == 0 && o.detach)
		unlink(o.pidfile);
	free(conf);
	return rc;
}
