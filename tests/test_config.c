/*
 * test_config.c - unit tests for the configuration loader (src/conf.c):
 * conf_load with real files in a temporary folder, conf_parse_addr
 * and conf_read_resolv.
 *
 * Every error must say "file:line: message" with the line of the offending
 * setting, so most tests write a small file whose bad line is known and
 * compare the error's prefix.  The folder and its files are removed at the
 * end.
 *
 * This binary is linked with -Wl,--wrap=malloc,calloc,realloc,strdup
 * (Makefile.am): every allocation the library makes passes through the
 * wrappers below, which can make the Nth one fail.  The counter is the
 * test's own state; the code under test has none.
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/block.h"
#include "../src/conf.h"
#include "../src/zone.h"
#include "tap.h"

#define UPSTREAM "upstream: { servers = [\"192.0.2.53\"]; };\n"

/* ---- allocation failure injection --------------------------------------- */

static struct {
	long count;   /* allocations since the last reset */
	long fail_at; /* the one that fails (1 = the first); 0: none */
} oom;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static bool oom_now(void) { return ++oom.count == oom.fail_at; }

void *__wrap_malloc(size_t n) { return oom_now() ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t n, size_t size)
{
	return oom_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return oom_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return oom_now() ? NULL : __real_strdup(s);
}

/* The temporary folder and what was written into it. */
struct tmp {
	char dir[64];
	char files[32][128];
	int nfiles;
	char path[192]; /* the last path made by tmp_path */
};

static const char *tmp_path(struct tmp *t, const char *name)
{
	snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
	return t->path;
}

/* Write text to name in the folder; returns its path (valid until the
 * next call). */
static const char *tmp_write(struct tmp *t, const char *name, const char *text)
{
	const char *path = tmp_path(t, name);
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		diag("cannot write %s", path);
		abort();
	}
	for (int i = 0; i < t->nfiles; i++)
		if (strcmp(t->files[i], name) == 0)
			return path;
	if (t->nfiles < 32)
		snprintf(t->files[t->nfiles++], sizeof(t->files[0]), "%s",
			 name);
	return path;
}

static void tmp_clean(struct tmp *t)
{
	for (int i = 0; i < t->nfiles; i++)
		unlink(tmp_path(t, t->files[i]));
	rmdir(tmp_path(t, "sub"));
	rmdir(t->dir);
}

/* Load main.conf holding text; expect success. */
static struct conf *load_ok(struct tmp *t, const char *text, const char *name)
{
	char err[CONF_ERR_MAX] = "";
	const char *path = tmp_write(t, "main.conf", text);
	struct conf *cfg = conf_load(path, NULL, 0, err, sizeof(err));

	if (!ok(cfg != NULL, "%s: loads", name))
		diag("error: %s", err);
	return cfg;
}

/* Load main.conf holding text; expect an error "<file>:<line>: ..."
 * containing what.  file is a name in the folder (NULL: main.conf). */
static void load_fails(struct tmp *t, const char *text, const char *file,
		       int line, const char *what, const char *name)
{
	char err[CONF_ERR_MAX] = "", prefix[256];
	const char *path = tmp_write(t, "main.conf", text);
	struct conf *cfg = conf_load(path, NULL, 0, err, sizeof(err));

	ok(cfg == NULL, "%s: refused", name);
	conf_free(cfg);
	snprintf(prefix, sizeof(prefix),
		 "%s:%d: ", tmp_path(t, file ? file : "main.conf"), line);
	bool good = strncmp(err, prefix, strlen(prefix)) == 0 &&
		    strstr(err, what) != NULL;
	ok(good, "%s: error at %s:%d naming '%s'", name,
	   file ? file : "main.conf", line, what);
	if (!good)
		diag("error was '%s'", err);
}

static unsigned port_of(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)&a->ss)
				 ->sin_port);
	return ntohs(
	    ((const struct sockaddr_in6 *)(const void *)&a->ss)->sin6_port);
}

/* ---- defaults and a full configuration --------------------------------- */

static void test_defaults(struct tmp *t)
{
	struct conf *cfg = load_ok(t, UPSTREAM, "upstream only");
	if (!cfg)
		return;
	is_int(cfg->nlisten, 2, "default listen: two addresses");
	if (cfg->nlisten == 2) {
		is_str(cfg->listen[0].text, "127.0.0.1:53",
		       "default listen 127.0.0.1:53");
		is_str(cfg->listen[1].text, "[::1]:53",
		       "default listen [::1]:53");
		ok(cfg->listen[0].ss.ss_family == AF_INET &&
		       cfg->listen[0].len == sizeof(struct sockaddr_in) &&
		       port_of(&cfg->listen[0]) == 53,
		   "default listen: IPv4 sockaddr, port 53");
		ok(cfg->listen[1].ss.ss_family == AF_INET6 &&
		       cfg->listen[1].len == sizeof(struct sockaddr_in6) &&
		       port_of(&cfg->listen[1]) == 53,
		   "default listen: IPv6 sockaddr, port 53");
	}
	ok(cfg->nservers == 1 &&
	       strcmp(cfg->servers[0].text, "192.0.2.53:53") == 0,
	   "upstream 192.0.2.53 with port 53");
	ok(!cfg->servers_from_resolv, "servers not from resolv.conf");
	is_int(cfg->timeout_ms, 1000, "default timeout_ms 1000");
	is_int(cfg->tries, 2, "default tries 2");
	is_int(cfg->edns_size, 1232, "default edns_size 1232");
	is_int(cfg->tcp_max_connections, 256, "default tcp max_connections");
	is_int(cfg->tcp_idle_timeout_ms, 10000, "default tcp idle_timeout_ms");
	is_int(cfg->tcp_query_timeout_ms, 5000, "default tcp query_timeout_ms");
	is_int(cfg->tcp_write_timeout_ms, 10000, "default tcp write_timeout_ms");
	is_int(cfg->tcp_max_per_client, 32, "default tcp max_per_client");
	is_int(cfg->tcp_max_output, 1 << 20, "default tcp max_output");
	is_int(cfg->tcp_max_output_total, 32 << 20,
	       "default tcp max_output_total");
	is_int(cfg->nzones, 0, "no zones");
	ok(cfg->path && strcmp(cfg->path, tmp_path(t, "main.conf")) == 0,
	   "cfg->path");
	conf_free(cfg);
	conf_free(NULL);

	/* An empty file: the servers come from /etc/resolv.conf. */
	struct conf_addr rs[32];
	int n = conf_read_resolv("/etc/resolv.conf", rs, 32);
	char err[CONF_ERR_MAX] = "";
	cfg = conf_load(tmp_write(t, "main.conf", ""), NULL, 0, err,
			  sizeof(err));
	if (cfg) {
		ok(cfg->servers_from_resolv && cfg->nservers == (size_t)n &&
		       n > 0,
		   "empty file: %d servers from /etc/resolv.conf", n);
	} else {
		ok(strstr(err, "resolv.conf") != NULL,
		   "empty file: refused, naming /etc/resolv.conf (%d usable "
		   "there)",
		   n);
		diag("error was '%s'", err);
	}
	conf_free(cfg);
}

static void test_full(struct tmp *t)
{
	char zone[600];
	const char *abs =
	    tmp_write(t, "abs.zone", "origin = \"abs.lab\";\nrecords = ();\n");
	char abspath[192];
	snprintf(abspath, sizeof(abspath), "%s", abs);
	tmp_write(t, "home.zone",
		  "# the home zone\n"
		  "origin = \"home.lab\";\n"
		  "ttl = 600;\n"
		  "authoritative = true;\n"
		  "records = (\n"
		  "  { name = \"@\"; type = \"A\"; data = \"192.168.1.1\"; },\n"
		  "  { name = \"nas\"; type = \"a\"; data = \"192.168.1.10\";"
		  " ttl = 60; },\n"
		  "  { name = \"www\"; type = \"CNAME\"; data = \"nas\"; }\n"
		  ");\n");
	snprintf(
	    zone, sizeof(zone),
	    "# splitdns test configuration\n"
	    "listen = [\"127.0.0.1:5300\", \"[::1]:5300\", \"10.9.8.7\"];\n"
	    "upstream: {\n"
	    "  servers = [\"192.0.2.53\", \"192.0.2.54:5353\",\n"
	    "             \"[2001:db8::53]:53\", \"2001:db8::54\"];\n"
	    "  timeout_ms = 2500;\n"
	    "  tries = 3;\n"
	    "};\n"
	    "zones = [\"home.zone\", \"%s\"];\n"
	    "edns_size = 4096;\n"
	    "tcp: {\n"
	    "  max_connections = 10;\n"
	    "  idle_timeout_ms = 5000;\n"
	    "};\n",
	    abspath);
	struct conf *cfg = load_ok(t, zone, "full configuration");
	if (!cfg)
		return;
	ok(cfg->nlisten == 3 &&
	       strcmp(cfg->listen[0].text, "127.0.0.1:5300") == 0 &&
	       strcmp(cfg->listen[1].text, "[::1]:5300") == 0 &&
	       strcmp(cfg->listen[2].text, "10.9.8.7:53") == 0,
	   "full: listen 127.0.0.1:5300, [::1]:5300, 10.9.8.7:53");
	ok(cfg->nservers == 4 &&
	       strcmp(cfg->servers[0].text, "192.0.2.53:53") == 0 &&
	       strcmp(cfg->servers[1].text, "192.0.2.54:5353") == 0 &&
	       strcmp(cfg->servers[2].text, "[2001:db8::53]:53") == 0 &&
	       strcmp(cfg->servers[3].text, "[2001:db8::54]:53") == 0,
	   "full: four upstream servers");
	ok(cfg->nservers == 4 && port_of(&cfg->servers[1]) == 5353 &&
	       cfg->servers[2].ss.ss_family == AF_INET6,
	   "full: server ports and families");
	is_int(cfg->timeout_ms, 2500, "full: timeout_ms");
	is_int(cfg->tries, 3, "full: tries");
	is_int(cfg->edns_size, 4096, "full: edns_size");
	is_int(cfg->tcp_max_connections, 10, "full: tcp max_connections");
	is_int(cfg->tcp_idle_timeout_ms, 5000, "full: tcp idle_timeout_ms");
	is_int(cfg->nzones, 2, "full: two zones");
	if (cfg->nzones == 2) {
		const struct conf_zone *z = &cfg->zones[0];
		is_str(z->path, tmp_path(t, "home.zone"),
		       "zone path relative to the main file's folder");
		is_int(z->line, 9, "zone: line in the main file");
		is_str(z->origin, "home.lab", "zone origin");
		is_int(z->origin_line, 2, "zone origin line");
		is_int(z->ttl, 600, "zone ttl");
		ok(z->authoritative, "zone authoritative");
		is_int(z->nrecords, 3, "zone: 3 records");
		if (z->nrecords == 3) {
			const struct conf_record *r = &z->records[1];
			ok(strcmp(r->name, "nas") == 0 &&
			       strcmp(r->type, "a") == 0 &&
			       strcmp(r->data, "192.168.1.10") == 0 &&
			       r->ttl == 60,
			   "record nas: name, type as written, data, ttl");
			is_int(r->line, 7, "record nas: line 7");
			is_int(z->records[0].ttl, -1, "record without ttl: -1");
			is_int(z->records[2].line, 8, "record www: line 8");
		}
		is_str(cfg->zones[1].path, abspath, "absolute zone path kept");
		is_int(cfg->zones[1].ttl, 300, "zone default ttl 300");
		ok(!cfg->zones[1].authoritative,
		   "zone default: not authoritative");
		is_int(cfg->zones[1].nrecords, 0, "empty records list");
	}
	{
		char err[CONF_ERR_MAX] = "";
		struct zone *zs = zone_build(cfg, err, sizeof(err));
		ok(zs != NULL, "full: the zones build");
		if (!zs)
			diag("%s", err);
		zone_free(zs);
	}
	conf_free(cfg);

	/* A zone in a subfolder. */
	snprintf(zone, sizeof(zone), "%s/sub", t->dir);
	mkdir(zone, 0700);
	tmp_write(t, "sub/x.zone", "origin = \"x.lab\";\n");
	cfg = load_ok(t, UPSTREAM "zones = [\"sub/x.zone\"];\n",
		      "zone in a subfolder");
	if (cfg)
		is_str(cfg->zones[0].path, tmp_path(t, "sub/x.zone"),
		       "subfolder zone path");
	conf_free(cfg);
}

/* ---- errors ------------------------------------------------------------ */

static void test_errors(struct tmp *t)
{
	load_fails(t, "listen = [\"127.0.0.1:53\"];\nedns_size = ;\n", NULL, 2,
		   "syntax", "syntax error");
	load_fails(t, UPSTREAM "\n\nlisten = [\"127.0.0.1:53\";\n", NULL, 4,
		   "syntax", "list not closed");
	load_fails(t, UPSTREAM "frobnicate = 1;\n", NULL, 2, "frobnicate",
		   "unknown top-level setting");
	load_fails(t, UPSTREAM "Listen = [\"127.0.0.1\"];\n", NULL, 2, "Listen",
		   "names are case-sensitive");
	load_fails(t,
		   "upstream: {\n  servers = [\"192.0.2.53\"];\n"
		   "  retries = 3;\n};\n",
		   NULL, 3, "retries", "unknown setting in upstream");
	load_fails(t, UPSTREAM "tcp: {\n  max_conns = 3;\n};\n", NULL, 3,
		   "max_conns", "unknown setting in tcp");

	/* Types. */
	load_fails(t,
		   "upstream: {\n  servers = [\"192.0.2.53\"];\n"
		   "  timeout_ms = \"1000\";\n};\n",
		   NULL, 3, "integer", "timeout_ms a string");
	load_fails(t, UPSTREAM "edns_size = 1232.0;\n", NULL, 2, "integer",
		   "edns_size a float");
	load_fails(t, UPSTREAM "listen = \"127.0.0.1\";\n", NULL, 2, "list",
		   "listen a string");
	load_fails(t, UPSTREAM "listen = (\"127.0.0.1\",\n 53);\n", NULL, 3,
		   "list of strings", "listen with a number in it");
	load_fails(t, "upstream = 5;\n", NULL, 1, "group", "upstream a number");
	load_fails(t, UPSTREAM "tcp = [1];\n", NULL, 2, "group",
		   "tcp an array");
	load_fails(t, "upstream: { servers = \"192.0.2.53\"; };\n", NULL, 1,
		   "list", "servers a string");
	load_fails(t, UPSTREAM "zones = \"home.zone\";\n", NULL, 2, "list",
		   "zones a string");

	/* Addresses and ports. */
	/* (libconfig dates a string in a list by the token after it: the
	 * bad one is followed by a comma to stay on its own line.) */
	load_fails(t,
		   UPSTREAM "listen = [\n  \"127.0.0.1:53\",\n"
			    "  \"127.0.0.1:0\",\n  \"[::1]:53\"\n];\n",
		   NULL, 4, "port", "listen port 0 (line of the element)");
	load_fails(t, UPSTREAM "listen = [\"127.0.0.1:99999\"];\n", NULL, 2,
		   "port", "listen port 99999");
	load_fails(t, UPSTREAM "listen = [\"127.0.0.1:dns\"];\n", NULL, 2,
		   "port", "listen port not a number");
	load_fails(t, UPSTREAM "listen = [\"127.0.0.1:\"];\n", NULL, 2, "port",
		   "listen port empty");
	load_fails(t, UPSTREAM "listen = [\"localhost:53\"];\n", NULL, 2,
		   "localhost", "listen on a host name");
	load_fails(t, UPSTREAM "listen = [];\n", NULL, 2, "empty",
		   "empty listen list");
	load_fails(t, "upstream: {\n  servers = [\"[::1]:0\"];\n};\n", NULL, 2,
		   "port", "upstream port 0");
	load_fails(t, "upstream: {\n  servers = [\"192.0.2.1:65536\"];\n};\n",
		   NULL, 2, "port", "upstream port 65536");
	load_fails(t, "upstream: {\n  servers = [];\n};\n", NULL, 2, "empty",
		   "empty upstream list");

	/* Ranges, with both bounds.  Each setting ends up on line 3, between
	 * the text before and after it (formats stay literal). */
	static const char *const frame[][2] = {
	    {"upstream: {\n servers = [\"192.0.2.53\"];\n ", ";\n};\n"},
	    {UPSTREAM "\n", ";\n"},
	    {UPSTREAM "tcp: {\n ", ";\n};\n"},
	};
	static const struct {
		int frame; /* 0: upstream, 1: top level, 2: tcp */
		const char *setting, *value;
		bool good;
	} ranges[] = {
	    {0, "timeout_ms", "99", false},
	    {0, "timeout_ms", "30001", false},
	    {0, "timeout_ms", "-5", false},
	    {0, "timeout_ms", "100", true},
	    {0, "timeout_ms", "30000", true},
	    {0, "tries", "0", false},
	    {0, "tries", "11", false},
	    {0, "tries", "1", true},
	    {0, "tries", "10", true},
	    {1, "edns_size", "511", false},
	    {1, "edns_size", "4097", false},
	    {1, "edns_size", "512", true},
	    {1, "edns_size", "4096", true},
	    {1, "edns_size", "5000000000L", false},
	    {2, "max_connections", "0", false},
	    {2, "max_connections", "65536", false},
	    {2, "max_connections", "1", true},
	    {2, "max_connections", "65535", true},
	    {2, "idle_timeout_ms", "999", false},
	    {2, "idle_timeout_ms", "600001", false},
	    {2, "idle_timeout_ms", "1000", true},
	    {2, "idle_timeout_ms", "600000", true},
	};
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		char text[200], name[100];
		snprintf(text, sizeof(text), "%s%s = %s%s",
			 frame[ranges[i].frame][0], ranges[i].setting,
			 ranges[i].value, frame[ranges[i].frame][1]);
		snprintf(name, sizeof(name), "%s = %s", ranges[i].setting,
			 ranges[i].value);
		if (ranges[i].good) {
			struct conf *cfg = load_ok(t, text, name);
			if (cfg) {
				const char *k = ranges[i].setting;
				long v =
				    !strcmp(k, "timeout_ms")  ? cfg->timeout_ms
				    : !strcmp(k, "tries")     ? cfg->tries
				    : !strcmp(k, "edns_size") ? cfg->edns_size
				    : !strcmp(k, "max_connections")
					? cfg->tcp_max_connections
					: cfg->tcp_idle_timeout_ms;
				is_int(v, atol(ranges[i].value),
				       "... and the value is kept");
			}
			conf_free(cfg);
		} else {
			load_fails(t, text, NULL, 3, ranges[i].setting, name);
		}
	}
}

/* Zone files read through the main file. */
static void test_zone_files(struct tmp *t)
{
	char err[CONF_ERR_MAX] = "";
	struct conf *cfg;

	/* A missing zone file: the error names it. */
	cfg = conf_load(
	    tmp_write(t, "main.conf", UPSTREAM "\nzones = [\"nope.zone\"];\n"),
	    NULL, 0, err, sizeof(err));
	ok(cfg == NULL, "missing zone file: refused");
	conf_free(cfg);
	like(err, tmp_path(t, "nope.zone"), "missing zone file: named");
	{
		char prefix[256];
		snprintf(prefix, sizeof(prefix),
			 "%s:3: ", tmp_path(t, "main.conf"));
		ok(strncmp(err, prefix, strlen(prefix)) == 0,
		   "missing zone file: error at main.conf:3 where it is "
		   "listed");
		diag("error was '%s'", err);
	}

	/* Errors inside zone files name the zone file and its line. */
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "records = (\n"
		  "  { name = \"a\"; type = \"A\"; data = \"192.0.2.1\"; },\n"
		  "  { name = \"b\"; type = \"A\"; data = ; }\n"
		  ");\n");
	load_fails(t, UPSTREAM "zones = [\"bad.zone\"];\n", "bad.zone", 4,
		   "syntax", "zone file with a syntax error");
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "records = (\n"
		  "  { name = \"a\"; type = \"A\"; data = \"192.0.2.1\"; },\n"
		  "  { name = \"b\"; type = \"A\"; }\n"
		  ");\n");
	load_fails(t, UPSTREAM "zones = [\"bad.zone\"];\n", "bad.zone", 4,
		   "data", "record missing 'data'");
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "records = (\n"
		  "  { type = \"A\"; data = \"192.0.2.1\"; }\n"
		  ");\n");
	load_fails(t, UPSTREAM "zones = [\"bad.zone\"];\n", "bad.zone", 3,
		   "name", "record missing 'name'");
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "records = (\n"
		  "  { name = \"a\"; type = \"A\"; data = \"192.0.2.1\";\n"
		  "    tll = 5; }\n"
		  ");\n");
	load_fails(t, UPSTREAM "zones = [\"bad.zone\"];\n", "bad.zone", 4,
		   "tll", "record with an unknown setting");
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "records = (\n"
		  "  { name = \"a\"; type = \"A\"; data = \"192.0.2.1\";\n"
		  "    ttl = -1; }\n"
		  ");\n");
	load_fails(t, UPSTREAM "zones = [\"bad.zone\"];\n", "bad.zone", 4,
		   "ttl", "record ttl -1");
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "records = (\n"
		  "  { name = \"a\"; type = \"A\"; data = 5; }\n"
		  ");\n");
	load_fails(t, UPSTREAM "zones = [\"bad.zone\"];\n", "bad.zone", 3,
		   "string", "record data a number");
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "\n"
		  "orign = \"x\";\n");
	load_fails(t, UPSTREAM "zones = [\"bad.zone\"];\n", "bad.zone", 3,
		   "orign", "zone with an unknown setting");
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "authoritative = \"yes\";\n");
	load_fails(t, UPSTREAM "zones = [\"bad.zone\"];\n", "bad.zone", 2,
		   "true or false", "authoritative a string");
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "records = { a = 1; };\n");
	load_fails(t, UPSTREAM "zones = [\"bad.zone\"];\n", "bad.zone", 2,
		   "list", "records a group");

	/* A zone without an origin: the error names the zone file. */
	tmp_write(t, "bad.zone", "ttl = 60;\n");
	cfg = conf_load(
	    tmp_write(t, "main.conf", UPSTREAM "zones = [\"bad.zone\"];\n"),
	    NULL, 0, err, sizeof(err));
	ok(cfg == NULL, "zone without origin: refused");
	conf_free(cfg);
	like(err, tmp_path(t, "bad.zone"), "zone without origin: names it");
	like(err, "origin", "zone without origin: says what");
	{
		char prefix[256];
		snprintf(prefix, sizeof(prefix),
			 "%s:0:", tmp_path(t, "bad.zone"));
		ok(strncmp(err, prefix, strlen(prefix)) != 0,
		   "zone without origin: not at line 0");
		diag("error was '%s'", err);
	}

	/* Record data errors come from zone_build, with the zone's line. */
	tmp_write(t, "bad.zone",
		  "origin = \"home.lab\";\n"
		  "records = (\n"
		  "  { name = \"a\"; type = \"A\"; data = \"192.0.2.1\"; },\n"
		  "  { name = \"b\"; type = \"A\"; data = \"192.0.2.300\"; }\n"
		  ");\n");
	cfg = load_ok(t, UPSTREAM "zones = [\"bad.zone\"];\n",
		      "zone with bad A data (checked later)");
	if (cfg) {
		char prefix[256];
		struct zone *z = zone_build(cfg, err, sizeof(err));
		ok(z == NULL, "bad A data: zone_build fails");
		zone_free(z);
		snprintf(prefix, sizeof(prefix),
			 "%s:4: ", tmp_path(t, "bad.zone"));
		ok(strncmp(err, prefix, strlen(prefix)) == 0 &&
		       strstr(err, "192.0.2.300"),
		   "bad A data: error at bad.zone:4");
		diag("error was '%s'", err);
	}
	conf_free(cfg);
}

/* -l ADDR and forwarding loops. */
static void test_listen_and_loops(struct tmp *t)
{
	char err[CONF_ERR_MAX] = "";
	const char *over[] = {"127.0.0.2:5300", "[::1]"};
	const char *path =
	    tmp_write(t, "main.conf",
		      UPSTREAM "listen = [\"127.0.0.1:53\", \"[::1]:53\","
			       " \"10.0.0.1\"];\n");
	struct conf *cfg = conf_load(path, over, 2, err, sizeof(err));

	ok(cfg != NULL, "listen override: loads");
	if (cfg) {
		ok(cfg->nlisten == 2 &&
		       strcmp(cfg->listen[0].text, "127.0.0.2:5300") == 0 &&
		       strcmp(cfg->listen[1].text, "[::1]:53") == 0,
		   "listen override replaces the file's listen");
	}
	conf_free(cfg);
	cfg = conf_load(path, over, 0, err, sizeof(err));
	ok(cfg && cfg->nlisten == 3, "0 overrides: the file's listen");
	conf_free(cfg);
	{
		const char *bad[] = {"nonsense"};
		cfg = conf_load(path, bad, 1, err, sizeof(err));
		ok(cfg == NULL, "bad override refused");
		like(err, "nonsense", "bad override: error names it");
		conf_free(cfg);
	}
	{
		/* An override can also make or break a loop. */
		const char *loop[] = {"192.0.2.53:53"};
		cfg = conf_load(path, loop, 1, err, sizeof(err));
		ok(cfg == NULL, "override equal to the upstream: refused");
		like(err, "forwarding loop",
		     "override loop: 'forwarding loop'");
		conf_free(cfg);
	}

	/* Forwarding loops. */
	const char *loops[][2] = {
	    {"127.0.0.1:5353", "127.0.0.1:5353"},
	    {"0.0.0.0:53", "127.0.0.1"},
	    {"0.0.0.0:5300", "127.0.0.1:5300"},
	    {"[::]:53", "[::1]:53"},
	    {"[::1]:53", "::1"},
	};
	for (size_t i = 0; i < sizeof(loops) / sizeof(loops[0]); i++) {
		char text[300], prefix[256];
		snprintf(text, sizeof(text),
			 "listen = [\"%s\"];\n"
			 "upstream: {\n"
			 "  servers = [\"192.0.2.1\",\n"
			 "             \"%s\"];\n"
			 "};\n",
			 loops[i][0], loops[i][1]);
		cfg = conf_load(tmp_write(t, "main.conf", text), NULL, 0, err,
				  sizeof(err));
		ok(cfg == NULL, "listen %s, upstream %s: refused", loops[i][0],
		   loops[i][1]);
		conf_free(cfg);
		like(err, "forwarding loop", "... as a forwarding loop");
		snprintf(prefix, sizeof(prefix),
			 "%s:4: ", tmp_path(t, "main.conf"));
		ok(strncmp(err, prefix, strlen(prefix)) == 0,
		   "... at the server's line (main.conf:4)");
	}
	diag("error was '%s'", err);

	/* Not loops. */
	const char *fine[][2] = {
	    {"127.0.0.1:5353", "127.0.0.1"},
	    {"127.0.0.1:53", "127.0.0.2"},
	    {"[::1]:53", "127.0.0.1"},
	    {"[::1]:5300", "[::1]:53"},
	};
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		char text[300];
		snprintf(text, sizeof(text),
			 "listen = [\"%s\"];\n"
			 "upstream: { servers = [\"%s\"]; };\n",
			 fine[i][0], fine[i][1]);
		cfg = conf_load(tmp_write(t, "main.conf", text), NULL, 0, err,
				  sizeof(err));
		if (!ok(cfg != NULL, "listen %s, upstream %s: no loop",
			fine[i][0], fine[i][1]))
			diag("error was '%s'", err);
		conf_free(cfg);
	}
	/* A wildcard listener only receives what is sent to this host: a
	 * remote upstream on the same port is no loop (the common setup:
	 * listen on every interface, forward to the router). */
	const char *remote[][2] = {
	    {"0.0.0.0:53", "192.0.2.53"},
	    {"[::]:53", "[2001:db8::53]:53"},
	};
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
		char text[300];
		snprintf(text, sizeof(text),
			 "listen = [\"%s\"];\n"
			 "upstream: { servers = [\"%s\"]; };\n",
			 remote[i][0], remote[i][1]);
		cfg = conf_load(tmp_write(t, "main.conf", text), NULL, 0, err,
				  sizeof(err));
		ok(cfg != NULL, "listen %s, upstream %s: no loop", remote[i][0],
		   remote[i][1]);
		conf_free(cfg);
	}
	diag("error was '%s'", err);
}

/* ---- conf_parse_addr ------------------------------------------------- */

static void addr_is(const char *text, uint16_t def, const char *want_text,
		    int family, unsigned port)
{
	struct conf_addr a;
	const char *why = NULL;
	bool good = conf_parse_addr(text, def, &a, &why);

	ok(good && strcmp(a.text, want_text) == 0 && a.ss.ss_family == family &&
	       port_of(&a) == port &&
	       a.len == (family == AF_INET ? sizeof(struct sockaddr_in)
					   : sizeof(struct sockaddr_in6)),
	   "parse_addr '%s' -> %s", text, want_text);
	if (!good)
		diag("why: %s", why ? why : "(null)");
	else if (strcmp(a.text, want_text) != 0)
		diag("text: %s", a.text);
}

static void addr_fails(const char *text, const char *reason)
{
	struct conf_addr a;
	const char *why = NULL;
	bool good = conf_parse_addr(text, 53, &a, &why);

	ok(!good && why && strstr(why, reason), "parse_addr '%s' fails (%s)",
	   text, reason);
	if (good || !why || !strstr(why, reason))
		diag("why: %s", why ? why : "(null)");
}

static void test_parse_addr(void)
{
	addr_is("192.0.2.1", 53, "192.0.2.1:53", AF_INET, 53);
	addr_is("192.0.2.1:5353", 53, "192.0.2.1:5353", AF_INET, 5353);
	addr_is("192.0.2.1", 5300, "192.0.2.1:5300", AF_INET, 5300);
	addr_is("192.0.2.1:1", 53, "192.0.2.1:1", AF_INET, 1);
	addr_is("192.0.2.1:65535", 53, "192.0.2.1:65535", AF_INET, 65535);
	addr_is("::1", 53, "[::1]:53", AF_INET6, 53);
	addr_is("2001:db8::1", 53, "[2001:db8::1]:53", AF_INET6, 53);
	addr_is("[::1]:5353", 53, "[::1]:5353", AF_INET6, 5353);
	addr_is("[::1]", 53, "[::1]:53", AF_INET6, 53);
	addr_is("[2001:db8::53]:53", 5300, "[2001:db8::53]:53", AF_INET6, 53);
	addr_is("::ffff:192.0.2.1", 53, "[::ffff:192.0.2.1]:53", AF_INET6, 53);
	addr_is("[0:0:0:0:0:0:0:1]:53", 53, "[::1]:53", AF_INET6, 53);
	addr_is("2001:DB8::1", 53, "[2001:db8::1]:53", AF_INET6, 53);
	{
		struct conf_addr a;
		const char *why;
		ok(conf_parse_addr("192.0.2.7:853", 53, &a, &why) &&
		       ((const struct sockaddr_in *)(const void *)&a.ss)
			       ->sin_addr.s_addr == htonl(0xc0000207),
		   "parse_addr: the IPv4 address in the sockaddr");
	}

	addr_fails("192.0.2.1:0", "port");
	addr_fails("192.0.2.1:99999", "port");
	addr_fails("192.0.2.1:65536", "port");
	addr_fails("192.0.2.1:dns", "port");
	addr_fails("192.0.2.1:", "port");
	addr_fails("192.0.2.1:-1", "port");
	addr_fails("192.0.2.1:+53", "port");
	addr_fails("192.0.2.1:53x", "port");
	addr_fails("[::1]:0", "port");
	addr_fails("[::1", "]");
	addr_fails("[::1]53", ":PORT");
	addr_fails("[::1]:", "port");
	addr_fails("192.0.2", "address");
	addr_fails("", "address");
	addr_fails("dns.example", "address");
	addr_fails("fe80::1%eth0", "address");
	addr_fails("[192.0.2.1:53", "]");
	{
		char longtext[200];
		memset(longtext, '1', sizeof(longtext) - 1);
		longtext[sizeof(longtext) - 1] = '\0';
		addr_fails(longtext, "long");
		longtext[0] = '[';
		addr_fails(longtext, "]");
	}
}

/* ---- upstream servers as URLs ------------------------------------------ */

static void server_is(const char *text, const char *want_text,
		      enum conf_transport kind, unsigned port,
		      const char *name)
{
	struct conf_addr a;
	const char *why = NULL;
	bool good = conf_parse_server(text, &a, &why);

	ok(good && strcmp(a.text, want_text) == 0 && a.kind == kind &&
	       port_of(&a) == port && strcmp(a.tls_name, name) == 0,
	   "parse_server '%s' -> %s", text, want_text);
	if (!good)
		diag("why: %s", why ? why : "(null)");
	else if (strcmp(a.text, want_text) != 0)
		diag("text: %s, name '%s'", a.text, a.tls_name);
}

static void server_fails(const char *text, const char *reason)
{
	struct conf_addr a;
	const char *why = NULL;
	bool good = conf_parse_server(text, &a, &why);

	ok(!good && why && strstr(why, reason),
	   "parse_server '%s' fails (%s)", text, reason);
	if (good || !why || !strstr(why, reason))
		diag("why: %s", why ? why : "(null)");
}

#ifdef HAVE_TLS
static void https_is(const char *text, const char *want_text, const char *host,
		     const char *path, unsigned port, bool lookup)
{
	struct conf_addr a;
	const char *why = NULL;
	bool good = conf_parse_server(text, &a, &why);

	ok(good && a.kind == CONF_HTTPS && strcmp(a.text, want_text) == 0 &&
	       strcmp(a.host, host) == 0 && strcmp(a.path, path) == 0 &&
	       a.port == port && a.lookup == lookup &&
	       (lookup || port_of(&a) == port),
	   "parse_server '%s' -> %s", text, want_text);
	if (!good)
		diag("why: %s", why ? why : "(null)");
	else
		diag("text %s host %s path %s port %u lookup %d", a.text,
		     a.host, a.path, a.port, a.lookup);
}

#endif

static void test_servers(struct tmp *t)
{
	server_is("192.0.2.1", "192.0.2.1:53", CONF_UDP, 53, "");
	server_is("udp://192.0.2.1", "192.0.2.1:53", CONF_UDP, 53, "");
	server_is("UDP://[2001:db8::1]:5353", "[2001:db8::1]:5353", CONF_UDP,
		  5353, "");
	server_is("tcp://192.0.2.1", "tcp://192.0.2.1:53", CONF_TCP, 53, "");
	server_is("tcp://[::1]:5300", "tcp://[::1]:5300", CONF_TCP, 5300, "");
	server_fails("tcp://192.0.2.1#dns.example", "tls:// servers only");
	server_fails("192.0.2.1#dns.example", "tls:// servers only");
	server_fails("quic://192.0.2.1", "unknown scheme");
	server_fails("tcp://", "address");
	server_fails("tcp://192.0.2.1:0", "port");
#ifdef HAVE_TLS
	server_is("tls://1.1.1.1#cloudflare-dns.com",
		  "tls://1.1.1.1:853#cloudflare-dns.com", CONF_TLS, 853,
		  "cloudflare-dns.com");
	server_is("tls://9.9.9.9:8853#DNS.Quad9.net.",
		  "tls://9.9.9.9:8853#dns.quad9.net", CONF_TLS, 8853,
		  "dns.quad9.net");
	server_is("tls://[2606:4700:4700::1111]", "tls://[2606:4700:4700::1111]:853",
		  CONF_TLS, 853, "");
	server_fails("tls://192.0.2.1#", "host name");
	server_fails("tls://192.0.2.1#a..b", "host name");
	server_fails("tls://192.0.2.1#-a", "host name");
	server_fails("tls://192.0.2.1#a b", "host name");
	server_fails("tls://dns.example", "address");
	load_fails(t, "upstream: { servers = [\"192.0.2.53\",\n"
		      "  \"tls://192.0.2.1#bad name\"]; };\n",
		   NULL, 2, "host name", "a bad #NAME");
	load_fails(t, UPSTREAM "tls: {\n ca = \"nonexistent.pem\"; };\n",
		   NULL, 3, "nonexistent.pem", "tls.ca that is not there");
	load_fails(t, UPSTREAM "tls: { upstream_max_queries = 0; };\n", NULL, 2,
		   "upstream_max_queries", "tls.upstream_max_queries = 0");
	load_fails(t, UPSTREAM "tls: { cert = \"x\"; };\n", NULL, 2,
		   "needs both 'cert' and 'key'", "tls.cert without tls.key");
	load_fails(t, UPSTREAM "tls: { certs = \"x\"; };\n", NULL, 2,
		   "unknown setting 'certs'", "a setting tls does not have");
	{
		struct conf *cfg = load_ok(
			t, UPSTREAM "tls: { upstream_idle_timeout_ms = 1000; "
				    "upstream_max_queries = 1000000; };\n",
			"tls settings at their limits");
		ok(cfg && cfg->tls_idle_timeout_ms == 1000 &&
			   cfg->tls_max_queries == 1000000 && !cfg->tls_ca,
		   "tls settings read");
		conf_free(cfg);
		cfg = load_ok(t, UPSTREAM, "tls defaults");
		ok(cfg && cfg->tls_idle_timeout_ms == 10000 &&
			   cfg->tls_max_queries == 10000,
		   "tls defaults: 10000 ms idle, 10000 queries");
		conf_free(cfg);
	}
#else
	server_fails("tls://1.1.1.1#cloudflare-dns.com", "--without-tls");
#endif
#ifdef HAVE_TLS
	https_is("https://dns.quad9.net/dns-query#9.9.9.9",
		 "https://dns.quad9.net:443/dns-query#9.9.9.9", "dns.quad9.net",
		 "/dns-query", 443, false);
	https_is("HTTPS://DNS.Example.:8443#2001:db8::53",
		 "https://dns.example:8443/dns-query#[2001:db8::53]",
		 "dns.example", "/dns-query", 8443, false);
	https_is("https://dns.example/resolve#[2001:db8::53]",
		 "https://dns.example:443/resolve#[2001:db8::53]",
		 "dns.example", "/resolve", 443, false);
	https_is("https://doh.example:444/q/dns",
		 "https://doh.example:444/q/dns", "doh.example", "/q/dns", 444,
		 true);
	https_is("https://1.1.1.1/dns-query", "https://1.1.1.1:443/dns-query",
		 "1.1.1.1", "/dns-query", 443, false);
	https_is("https://[2606:4700::1111]:8443",
		 "https://[2606:4700::1111]:8443/dns-query",
		 "[2606:4700::1111]", "/dns-query", 8443, false);
	server_fails("https://1.1.1.1/dns-query#1.0.0.1", "host name");
	server_fails("https://dns.example#dns2.example", "address");
	server_fails("https://dns.example#192.0.2.1:53", "without a port");
	server_fails("https://dns.example:0/", "port");
	server_fails("https://dns.example:99999/", "port");
	server_fails("https://dns..example/", "host name");
	server_fails("https://dns.example/a b", "path");
	server_fails("https://dns.example/dns-query?dns", "path");
	server_fails("https:///dns-query", "host name");
	load_fails(t,
		   "upstream: { servers = [\"tls://192.0.2.1#dns.example\",\n"
		   "  \"https://dns.example/dns-query\"]; };\n",
		   NULL, 2, "looked up",
		   "https:// without #ADDR, no plain server");
	load_fails(
	    t,
	    "upstream: { servers = [\"https://a.example#192.0.2.1\"]; };\n"
	    "forward = ( { domain = \"corp.example\";\n"
	    "  servers = [\"https://b.example/\"]; } );\n",
	    NULL, 3, "looked up", "a forward's https:// without #ADDR");
	{
		struct conf *cfg =
		    load_ok(t,
			    "upstream: { servers = [\"192.0.2.53\",\n"
			    "  \"https://dns.example/dns-query\"]; };\n",
			    "https:// looked up through a plain server");
		ok(cfg && cfg->nservers == 2 && cfg->servers[1].lookup &&
		       cfg->servers[1].line == 2,
		   "the https:// server is to be looked up");
		conf_free(cfg);
	}
#else
	load_fails(t,
		   "upstream: { servers = [\"192.0.2.53\",\n"
		   "  \"https://dns.example/dns-query\"]; };\n",
		   NULL, 2, "--without-tls", "https:// in upstream.servers");
#endif
	load_fails(t, UPSTREAM "forward = ( { domain = \"corp.example\";\n"
			       "  servers = [\n \"tcp://10.0.0.1#x\"]; } );\n",
		   NULL, 4, "tls:// servers only", "#NAME on a tcp:// forward");
	/* A repeated domain (case and final dot aside) is refused at the
	 * first repeat in file order, naming the first rule's line. */
	load_fails(t, UPSTREAM "forward = (\n"
			       "  { domain = \"a.example\"; servers = [\"10.0.0.1\"]; },\n"
			       "  { domain = \"Corp.Example.\"; servers = [\"10.0.0.2\"]; },\n"
			       "  { domain = \"b.example\"; servers = [\"10.0.0.3\"]; },\n"
			       "  { domain = \"corp.example\"; refuse = true; },\n"
			       "  { domain = \"a.EXAMPLE\"; refuse = true; } );\n",
		   NULL, 6, "a second forward rule for 'corp.example' (the first is on line 4)",
		   "a repeated forward domain");
	{
		struct conf *cfg = load_ok(
			t, "upstream: { servers = [\"udp://192.0.2.53\", "
			   "\"tcp://192.0.2.54:5353\"]; };\n",
			"udp:// and tcp:// in one list");
		ok(cfg && cfg->nservers == 2 &&
			   cfg->servers[0].kind == CONF_UDP &&
			   cfg->servers[1].kind == CONF_TCP &&
			   strcmp(cfg->servers[1].addr, "192.0.2.54:5353") == 0,
		   "kinds and addresses of a mixed list");
		conf_free(cfg);
	}
}

/* ---- conf_read_resolv ------------------------------------------------ */

static void test_resolv(struct tmp *t)
{
	struct conf_addr a[8];
	const char *path =
	    tmp_write(t, "resolv.conf",
		      "# generated by a network manager\n"
		      "; an older comment style\n"
		      "#nameserver 192.0.2.99\n"
		      "search example.com lab\n"
		      "nameserver 192.0.2.1\n"
		      "nameserver\t2001:db8::1   \n"
		      "nameserver fe80::1%eth0\n"
		      "  nameserver 192.0.2.2 # a trailing comment\n"
		      "options ndots:2 edns0\n"
		      "nameserver\n"
		      "nameserver not-an-address\n"
		      "nameservers 192.0.2.98\n"
		      "\n"
		      "nameserver ::1\n");
	int n = conf_read_resolv(path, a, 8);

	is_int(n, 4, "resolv.conf: four usable nameservers");
	if (n == 4) {
		is_str(a[0].text, "192.0.2.1:53", "resolv.conf: 192.0.2.1");
		is_str(a[1].text, "[2001:db8::1]:53",
		       "resolv.conf: 2001:db8::1 (tab, trailing blanks)");
		is_str(a[2].text, "192.0.2.2:53",
		       "resolv.conf: indented, trailing comment");
		is_str(a[3].text, "[::1]:53", "resolv.conf: ::1");
	}
	is_int(conf_read_resolv(path, a, 2), 2, "resolv.conf: max 2");
	is_int(conf_read_resolv(path, a, 0), 0, "resolv.conf: max 0");
	is_int(conf_read_resolv(tmp_path(t, "no-such-file"), a, 8), -1,
	       "resolv.conf missing: -1");
	path = tmp_write(t, "resolv.conf", "# nothing\n");
	is_int(conf_read_resolv(path, a, 8), 0, "resolv.conf: none: 0");
	path = tmp_write(t, "resolv.conf",
			 "nameserver fe80::1%eth0\nnameserver 192.0.2.3\n");
	n = conf_read_resolv(path, a, 8);
	ok(n == 1 && strcmp(a[0].text, "192.0.2.3:53") == 0,
	   "resolv.conf: scoped link-local skipped, the next one kept");
}

/* What a start or a reload builds: conf_load, zone_build, block_load.
 * True when all three succeed; otherwise err says why. */
static bool build_all(const char *path, char *err, size_t errlen)
{
	struct conf *cfg = conf_load(path, NULL, 0, err, errlen);
	struct zone *z = cfg ? zone_build(cfg, err, errlen) : NULL;
	struct block_set *b =
	    z ? block_load(cfg, NULL, NULL, err, errlen) : NULL;
	bool whole = b != NULL;

	/* Each client group's own set too (they have lists here). */
	for (size_t i = 0; whole && i < cfg->nclients; i++) {
		struct block_set *g = block_load_conf(
		    cfg, &cfg->clients[i].block, NULL, NULL, err, errlen);
		whole = g != NULL;
		block_set_free(g);
	}
	block_set_free(b);
	zone_free(z);
	conf_free(cfg);
	return whole;
}

/*
 * Out of memory during a reload used to exit (conf.c's xcalloc and
 * xstrdup).  Fail each allocation of a full load in turn: every one must
 * end in an "out of memory" error and nothing else (no exit, no crash, no
 * leak, which LeakSanitizer reports in a sanitizer build), and a failure
 * must never be swallowed into a configuration that loads.
 */
static void test_oom(struct tmp *t)
{
	char err[CONF_ERR_MAX] = "";

	tmp_write(
	    t, "oom.zone",
	    "origin = \"oom.lab\";\n"
	    "reverse = [\"10.1.0.0/16\"];\n"
	    "ptr = true;\n"
	    "records = (\n"
	    "  { name = \"@\"; type = \"SOA\";"
	    " data = \"ns hm 1 2 3 4 5\"; },\n"
	    "  { name = \"a\"; type = \"A\"; data = \"10.1.0.1\"; },\n"
	    "  { name = \"a.b.c\"; type = \"AAAA\"; data = \"fd00::1\"; },\n"
	    "  { name = \"*.w\"; type = \"TXT\"; data = \"x y\"; ttl = 9; },\n"
	    "  { name = \"m\"; type = \"MX\"; data = \"10 a\"; }\n"
	    ");\n");
	tmp_write(t, "oom.list",
		  "0.0.0.0 ads.example\n||track.example^\n@@||ok.ads.example^\n"
		  "plain.example\n");
	const char *path = tmp_write(
	    t, "oom.conf",
	    "listen = [\"127.0.0.1:5300\", \"[::1]:5300\"];\n"
	    "upstream: { servers = [\"192.0.2.53\"]; timeout_ms = 500; };\n"
	    "zones = [\"oom.zone\"];\n"
	    "forward = ({ domain = \"corp.example\";"
	    " servers = [\"192.0.2.9\"]; },\n"
	    "           { domain = \"no.example\"; refuse = true; });\n"
	    "rebind_ok = [\"rebind.example\"];\n"
	    "block: { lists = [\"oom.list\"]; domains = [\"bad.example\"];\n"
	    "         allow = [\"good.bad.example\"]; answer = \"nxdomain\"; "
	    "};\n"
	    "access: { allow = [\"127.0.0.0/8\", \"::1\"]; };\n"
	    "cache: { size = 100; };\n"
	    "tcp: { max_connections = 8; };\n"
	    "clients = ( { name = \"kids\"; match = [\"10.0.0.0/8\", "
	    "\"fd00::/8\"];\n"
	    "  block: { domains = [\"games.example\"]; };\n"
	    "  upstream: { servers = [\"192.0.2.10\"]; }; },\n"
	    "  { name = \"guests\"; match = [\"192.168.2.0/24\"]; } );\n");

	oom.count = 0;
	oom.fail_at = 0;
	bool whole = build_all(path, err, sizeof(err));
	long total = oom.count;
	if (!ok(whole && total > 30,
		"out of memory: the full load builds, "
		"with %ld allocations",
		total))
		diag("error: %s", err);

	long wrong = 0, swallowed = 0;
	for (long n = 1; n <= total; n++) {
		err[0] = '\0';
		oom.count = 0;
		oom.fail_at = n;
		whole = build_all(path, err, sizeof(err));
		oom.fail_at = 0;
		if (whole && swallowed++ < 3)
			diag("allocation %ld failed, and the load succeeded",
			     n);
		if (!whole && !strstr(err, "out of memory") && wrong++ < 3)
			diag("allocation %ld failed: '%s'", n, err);
	}
	ok(wrong == 0,
	   "out of memory: each of the %ld allocations, failed "
	   "in turn, gives an 'out of memory' error (%ld did not)",
	   total, wrong);
	ok(swallowed == 0, "out of memory: no failure is swallowed (%ld were)",
	   swallowed);
	oom.count = 0;
	ok(build_all(path, err, sizeof(err)),
	   "out of memory: the same files load once memory is back");
}

/* ---- client groups ------------------------------------------------------ */

#define CLIENTS_TOP                                                            \
	UPSTREAM                                                               \
	    "listen = [\"127.0.0.1:5300\"];\n"                                 \
	    "block: { lists = [\"top.list\"]; domains = [\"d.example\"];\n"    \
	    "  answer = \"nxdomain\"; ttl = 30; firefox_canary = false; };\n"

static void test_clients(struct tmp *t)
{
	tmp_write(t, "top.list", "ads.example\n");
	tmp_write(t, "kids.list", "games.example\n");
	struct conf *cfg =
	    load_ok(t,
		    CLIENTS_TOP
		    "clients = (\n"
		    "  { name = \"kids\"; match = [\"192.168.1.64/26\", "
		    "\"fd00::64/122\"];\n"
		    "    block: { lists = [\"top.list\", \"kids.list\"]; "
		    "answer = \"null\";\n"
		    "             icloud_private_relay = true; }; },\n"
		    "  { name = \"guest_wifi-2\"; match = [\"10.9.0.1\"];\n"
		    "    upstream: { servers = [\"192.0.2.99:5353\"]; }; }\n"
		    ");\n",
		    "two client groups");
	if (!cfg)
		return;
	is_int(cfg->nclients, 2, "two groups");
	const struct conf_client *k = &cfg->clients[0], *g = &cfg->clients[1];
	is_str(k->name, "kids", "first group's name");
	is_int(k->line, 6, "its line");
	ok(k->nmatch == 2 && k->match[0].family == AF_INET &&
	       k->match[0].bits == 26 && k->match[1].family == AF_INET6 &&
	       k->match[1].bits == 122,
	   "kids: an IPv4 and an IPv6 prefix");
	is_str(k->match_text[1], "fd00::64/122", "  kept as written");
	ok(k->block.nlists == 2 && strstr(k->block.lists[1], "kids.list"),
	   "kids: their lists replace the top-level ones");
	ok(k->block.ndomains == 1 &&
	       strcmp(k->block.domains[0], "d.example") == 0,
	   "kids: the top-level domains are inherited");
	is_int(k->block.mode, CONF_BLOCK_NULL, "kids: their own answer");
	is_int(k->block.ttl, 30, "kids: the top-level ttl");
	ok(!k->block.firefox_canary, "kids: the top-level firefox_canary");
	ok(conf_block_icloud(&k->block), "kids: icloud_private_relay = true");
	ok(k->nservers == 0, "kids: no servers of their own");
	is_str(g->name, "guest_wifi-2", "second group's name");
	ok(g->nmatch == 1 && g->match[0].bits == 32, "a bare address: /32");
	ok(conf_block_same_names(&g->block, &cfg->block),
	   "guests: the top-level lists, domains and allow entries");
	is_int(g->block.mode, CONF_BLOCK_NXDOMAIN,
	       "guests: the top-level answer");
	ok(g->nservers == 1 &&
	       strcmp(g->servers[0].text, "192.0.2.99:5353") == 0,
	   "guests: servers of their own");
	ok(conf_block_icloud(&g->block),
	   "icloud_private_relay not set: on where names are blocked");
	ok(!conf_block_same_names(&k->block, &cfg->block),
	   "kids' names differ from the top level's");
	conf_free(cfg);

	cfg = load_ok(t, UPSTREAM, "no block group");
	if (cfg) {
		is_int(cfg->block.ttl, 10, "default block.ttl is 10 s");
		ok(cfg->block.firefox_canary, "firefox_canary on by default");
		ok(!conf_block_icloud(&cfg->block),
		   "icloud_private_relay off when nothing is blocked");
		is_int(cfg->nclients, 0, "no client groups");
	}
	conf_free(cfg);

	load_fails(t,
		   CLIENTS_TOP
		   "clients = (\n"
		   "  { name = \"kids\"; match = [\"10.0.0.1\"]; },\n"
		   "  { name = \"kids\"; match = [\"10.0.0.2\"]; }\n);\n",
		   NULL, 7,
		   "a second client group named 'kids' (the first "
		   "is on line 6)",
		   "duplicate group name");
	load_fails(t,
		   CLIENTS_TOP
		   "clients = ( { name = \"kids\";\n"
		   "  match = [\"10.0.0.1\",\n \"10.0.0.0/33\"]; } );\n",
		   NULL, 7, "match '10.0.0.0/33': prefix length out of range",
		   "bad prefix length");
	load_fails(t,
		   CLIENTS_TOP "clients = ( { name = \"kids\";\n"
			       "  match = [\"kids.example\"]; } );\n",
		   NULL, 6, "match 'kids.example'", "a name, not an address");
	load_fails(t,
		   CLIENTS_TOP
		   "clients = ( { name = \"kids\"; match = [\"10.0.0.1\"];\n"
		   "  lists = [\"x\"]; } );\n",
		   NULL, 6, "unknown setting 'lists' in a client group",
		   "unknown key in a group");
	load_fails(t,
		   CLIENTS_TOP
		   "clients = ( { name = \"kids\"; match = [\"10.0.0.1\"];\n"
		   "  block: {\n    list = [\"x\"]; }; } );\n",
		   NULL, 7, "unknown setting 'list' in a client group's block",
		   "unknown key in a group's block");
	load_fails(t,
		   CLIENTS_TOP
		   "clients = ( { name = \"kids\"; match = [\"10.0.0.1\"];\n"
		   "  upstream: { servers = [\"192.0.2.1\"];\n"
		   "    tries = 3; }; } );\n",
		   NULL, 7, "unknown setting 'tries'",
		   "tries in a group's upstream");
	load_fails(t,
		   CLIENTS_TOP
		   "clients = ( { name = \"kids\"; match = [\"10.0.0.1\"];\n"
		   "  upstream: { servers = [\"192.0.2.1:0\"]; }; } );\n",
		   NULL, 6, "port must be 1..65535", "a bad server");
	load_fails(t, CLIENTS_TOP "clients = (\n { name = \"kids\"; } );\n",
		   NULL, 6, "client group 'kids' needs 'match", "no match");
	load_fails(
	    t,
	    CLIENTS_TOP
	    "clients = (\n { name = \"Kids\"; match = [\"10.0.0.1\"]; } );\n",
	    NULL, 6, "client group name 'Kids'", "upper case in a name");
	load_fails(t,
		   CLIENTS_TOP "clients = (\n { name = \"default\"; match = "
			       "[\"10.0.0.1\"]; } );\n",
		   NULL, 6, "not 'default'", "the reserved name");
	load_fails(t,
		   CLIENTS_TOP "clients = (\n { match = [\"10.0.0.1\"]; } );\n",
		   NULL, 6, "missing 'name'", "no name");
	load_fails(t, CLIENTS_TOP "clients = { name = \"kids\"; };\n", NULL, 5,
		   "'clients' must be a list", "clients a group");
	load_fails(t,
		   CLIENTS_TOP
		   "clients = ( { name = \"kids\"; match = [\"10.0.0.1\"];\n"
		   "  block: { icloud_private_relay = 1; }; } );\n",
		   NULL, 6, "'icloud_private_relay' must be true or false",
		   "icloud_private_relay not a boolean");
	load_fails(t,
		   CLIENTS_TOP
		   "clients = ( { name = \"kids\"; match = [\"10.0.0.1\"];\n"
		   "  upstream: { servers = [\"127.0.0.1:5300\"]; }; } );\n",
		   NULL, 6, "a forwarding loop",
		   "a group's server is our listener");
}

int main(void)
{
	struct tmp t = {"/tmp/splitdns-test-XXXXXX", {{0}}, 0, ""};

	if (!mkdtemp(t.dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_defaults(&t);
	test_full(&t);
	test_errors(&t);
	test_zone_files(&t);
	test_listen_and_loops(&t);
	test_parse_addr();
	test_servers(&t);
	test_resolv(&t);
	test_clients(&t);
	test_oom(&t);
	tmp_clean(&t);
	return done_testing();
}
