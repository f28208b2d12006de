/*
 * conf.c - read splitdns.conf and zone files with libconfig.
 *
 * Everything is copied into plain structures and the libconfig objects are
 * destroyed before returning, so no other module sees libconfig.  Every
 * setting is checked for name, type and range here; unknown settings are
 * errors, because a misspelt option that is silently ignored is the worst
 * kind of configuration bug.
 */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <inttypes.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "errf.h"
#include "fetch.h"
#include "wire.h"

#define CONFIG_MAX_LISTEN 64
#define CONFIG_MAX_SERVERS 32

/* Loader state for one call of conf_load. */
struct loader {
	char *err;
	size_t errlen;
	const char *file; /* the file being read, for settings without one */
	const char *main; /* the main configuration file */
	char *text;       /* the text of text_path, for wrapped() */
	char text_path[1024];
};

static bool fail(struct loader *ld, const config_setting_t *s,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(struct loader *ld, const config_setting_t *s,
		 const char *fmt, ...)
{
	const char *file = s ? config_setting_source_file(s) : NULL;
	/* Line 0: the root group, or a setting that is missing. */
	unsigned line = s ? config_setting_source_line(s) : 0;
	va_list ap;

	va_start(ap, fmt);
	verrf_at(ld->err, ld->errlen, file ? file : ld->file, line, fmt, ap);
	va_end(ap);
	return false;
}

/*
 * Running out of memory is an error like any other: conf_load returns it,
 * and a reload that meets it keeps the configuration it has.  These write
 * "file: out of memory" to the loader's error and return NULL (or false).
 */
static bool oom(struct loader *ld)
{
	return errf(ld->err, ld->errlen, "%s: out of memory", ld->file);
}

static char *ld_strdup(struct loader *ld, const char *s)
{
	char *d = strdup(s);
	if (!d)
		oom(ld);
	return d;
}

static void *ld_calloc(struct loader *ld, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		oom(ld);
	return p;
}

/* "dir/name" in a new string, or name itself when it is absolute. */
static char *ld_path(struct loader *ld, const char *dir, const char *name)
{
	if (name[0] == '/')
		return ld_strdup(ld, name);
	char *p = ld_calloc(ld, strlen(dir) + strlen(name) + 2, 1);
	if (p)
		sprintf(p, "%s/%s", dir, name);
	return p;
}

/* Reject members of group g whose names are not in known (NULL-ended). */
static bool check_names(struct loader *ld, const config_setting_t *g,
			const char *const *known, const char *where)
{
	int n = config_setting_length(g);
	for (int i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = name && strcmp(name, *k) == 0;
		if (!ok)
			return fail(ld, m, "unknown setting '%s'%s%s",
				    name ? name : "?", where ? " in " : "",
				    where ? where : "");
	}
	return true;
}

/* The source line of setting s ("" when the file cannot be read, NULL
 * when out of memory).  The text of one file is kept in the loader
 * between calls. */
static const char *source_line(struct loader *ld, const config_setting_t *s)
{
	const char *file = config_setting_source_file(s);
	unsigned line = config_setting_source_line(s);

	if (!file || !line)
		return "";
	if (!ld->text || strcmp(ld->text_path, file) != 0) {
		FILE *f = fopen(file, "r");
		free(ld->text);
		ld->text = NULL;
		snprintf(ld->text_path, sizeof(ld->text_path), "%s", file);
		if (!f)
			return "";
		size_t cap = 4096, n = 0, r;
		ld->text = malloc(cap + 1);
		while (ld->text && (r = fread(ld->text + n, 1, cap - n, f)) > 0) {
			n += r;
			if (n == cap) {
				char *t = realloc(ld->text, cap * 2 + 1);
				if (!t) {
					free(ld->text);
					ld->text = NULL;
					break;
				}
				ld->text = t;
				cap *= 2;
			}
		}
		fclose(f);
		if (!ld->text)
			return NULL;
		ld->text[n] = '\0';
	}
	const char *p = ld->text;
	for (unsigned i = 1; i < line && p; i++)
		if ((p = strchr(p, '\n')))
			p++;
	return p ? p : "";
}

/*
 * libconfig 1.5 reads a decimal integer beyond 32 bits as a 32-bit one,
 * silently wrapped.  So compare the value with the number as written in
 * the file ("name = 123" or "name: 123" on the setting's line); a number
 * that does not read back the same is out of range.
 */
static bool wrapped(const char *line, const char *name, long long v)
{
	const char *p = line;
	size_t n = strlen(name);

	while ((p = strstr(p, name))) {
		const char *q = p + n;
		bool word = (p == line || !(isalnum((unsigned char)p[-1]) ||
					    p[-1] == '_')) &&
			    !(isalnum((unsigned char)*q) || *q == '_');
		p = q;
		if (!word)
			continue;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '=' && *q != ':')
			continue;
		q++;
		while (*q == ' ' || *q == '\t')
			q++;
		if (!(*q == '-' || *q == '+' || isdigit((unsigned char)*q)))
			return false;
		errno = 0;
		long long w = strtoll(q, NULL, 0);
		return errno == ERANGE || w != v;
	}
	return false; /* not found as written: trust libconfig */
}

/* Integer member name of g in [lo, hi]; *out keeps its default when the
 * member is absent. */
static bool get_int(struct loader *ld, const config_setting_t *g,
		    const char *name, int64_t lo, int64_t hi, int64_t *out)
{
	config_setting_t *s = config_setting_get_member(g, name);
	if (!s)
		return true;
	int t = config_setting_type(s);
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
		return fail(ld, s, "'%s' must be an integer", name);
	long long v = config_setting_get_int64(s);
	const char *line = source_line(ld, s);
	if (!line)
		return oom(ld);
	if (v < lo || v > hi || wrapped(line, name, v))
		return fail(ld, s, "'%s' is out of range, must be %" PRId64
				   "..%" PRId64, name, lo, hi);
	*out = v;
	return true;
}

static bool get_bool(struct loader *ld, const config_setting_t *g,
		     const char *name, bool *out)
{
	config_setting_t *s = config_setting_get_member(g, name);
	if (!s)
		return true;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail(ld, s, "'%s' must be true or false", name);
	*out = config_setting_get_bool(s) != 0;
	return true;
}

static bool get_string(struct loader *ld, const config_setting_t *g,
		       const char *name, bool required, const char **out,
		       int *line)
{
	config_setting_t *s = config_setting_get_member(g, name);
	if (!s) {
		if (required)
			return fail(ld, g, "missing '%s'", name);
		return true;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(ld, s, "'%s' must be a string", name);
	*out = config_setting_get_string(s);
	if (line)
		*line = (int)config_setting_source_line(s);
	return true;
}

/* A list or array of strings; returns the setting (or NULL when absent)
 * through *list. */
static bool get_strings(struct loader *ld, const config_setting_t *g,
			const char *name, config_setting_t **list)
{
	config_setting_t *s = config_setting_get_member(g, name);
	*list = s;
	if (!s)
		return true;
	int t = config_setting_type(s);
	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
		return fail(ld, s, "'%s' must be a list of strings", name);
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return fail(ld, e, "'%s' must be a list of strings",
				    name);
	}
	return true;
}

/* A list of strings copied into *out (n entries). */
static bool get_string_list(struct loader *ld, const config_setting_t *g,
			    const char *name, char ***out, size_t *n,
			    int *line)
{
	config_setting_t *list;

	if (!get_strings(ld, g, name, &list))
		return false;
	if (!list)
		return true;
	size_t len = (size_t)config_setting_length(list);
	if (!(*out = ld_calloc(ld, len, sizeof(**out))))
		return false;
	*n = len;
	if (line)
		*line = (int)config_setting_source_line(list);
	for (size_t i = 0; i < len; i++)
		if (!((*out)[i] = ld_strdup(
			  ld, config_setting_get_string(
				  config_setting_get_elem(list, (unsigned)i)))))
			return false;
	return true;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A port number in text: digits only, 1 to 65535. */
static bool parse_port(const char *port, unsigned long *p, const char **why)
{
	char *end;

	errno = 0;
	*p = strtoul(port, &end, 10);
	if (*port < '0' || *port > '9' || *end || errno || *p == 0 ||
	    *p > 65535) {
		*why = "port must be 1..65535";
		return false;
	}
	return true;
}

bool conf_parse_addr(const char *text, uint16_t default_port,
		       struct conf_addr *out, const char **why)
{
	char host[64];
	const char *port = NULL;
	size_t n = strlen(text);

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || (size_t)(close - text - 1) >= sizeof(host)) {
			*why = "missing ']'";
			return false;
		}
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0') {
			*why = "expected ':PORT' after ']'";
			return false;
		}
	} else {
		const char *colon = strchr(text, ':');
		if (n >= sizeof(host)) {
			*why = "address too long";
			return false;
		}
		memcpy(host, text, n + 1);
		/* One colon: IPv4 with a port.  More: a bare IPv6 address. */
		if (colon && !strchr(colon + 1, ':')) {
			host[colon - text] = '\0';
			port = colon + 1;
		}
	}
	unsigned long p = default_port;
	if (port && !parse_port(port, &p, why))
		return false;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
	char norm[INET6_ADDRSTRLEN];
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		out->len = sizeof(*v4);
		inet_ntop(AF_INET, &v4->sin_addr, norm, sizeof(norm));
		snprintf(out->addr, sizeof(out->addr), "%s:%lu", norm, p);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		out->len = sizeof(*v6);
		inet_ntop(AF_INET6, &v6->sin6_addr, norm, sizeof(norm));
		snprintf(out->addr, sizeof(out->addr), "[%s]:%lu", norm, p);
	} else {
		*why = "not an IPv4 or IPv6 address";
		return false;
	}
	memcpy(out->text, out->addr, sizeof(out->addr));
	return true;
}

/* A certificate name after '#': a host name of letters, digits, '-' and
 * dots (RFC 1123 2.1), at most 253 octets, without the final dot. */
static bool tls_name_ok(const char *name, size_t n)
{
	if (n == 0 || n > 253 || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return false;
		if (c == '.' && i + 1 < n && name[i + 1] == '.')
			return false;
	}
	return true;
}

static bool listen_path(const char *p, struct conf_addr *out, const char **why);

/* "NAME[:PORT][/PATH][#ADDR]" after "https://" (RFC 8484 3: the URI
 * template's host and path; POST needs no variable).  NAME is what the
 * certificate must carry, unless it is an address itself (then the
 * certificate must carry that address, as with tls:// without a
 * name).  Without #ADDR, a NAME is looked up when the server is first
 * used (out->lookup), the port waiting in out->port. */
static bool parse_https(const char *rest, struct conf_addr *out,
			const char **why)
{
#ifndef HAVE_TLS
	(void)rest;
	memset(out, 0, sizeof(*out));
	*why = "this splitdns was built without TLS (--without-tls): "
	       "https:// upstreams are not available";
	return false;
#else
	char host[256];
	const char *hash = strchr(rest, '#');
	size_t n = hash ? (size_t)(hash - rest) : strlen(rest);
	const char *slash = memchr(rest, '/', n);
	size_t hn = slash ? (size_t)(slash - rest) : n;
	const char *port = NULL;
	unsigned long p = 443;

	memset(out, 0, sizeof(*out));
	if (hn >= sizeof(host)) {
		*why = "host name too long";
		return false;
	}
	memcpy(host, rest, hn);
	host[hn] = '\0';
	char *colon = host[0] == '[' ? strchr(host, ']') : host;
	if (!colon) {
		*why = "missing ']'";
		return false;
	}
	if ((colon = strchr(colon, ':'))) {
		*colon = '\0';
		port = colon + 1;
	}
	if (port && !parse_port(port, &p, why))
		return false;
	bool literal = host[0] == '[' ||
		       (host[0] && strspn(host, "0123456789.") == strlen(host));
	if (literal) {
		/* An address: the certificate must carry it. */
		if (hash) {
			*why = "'#ADDR' is for a server named by a host name";
			return false;
		}
		if (!conf_parse_addr(host, (uint16_t)p, out, why))
			return false;
	} else {
		size_t nl = strlen(host);
		if (nl > 1 && host[nl - 1] == '.')
			host[--nl] = '\0';
		if (!tls_name_ok(host, nl)) {
			*why = "NAME must be a host name (letters, digits, "
			       "'-', dots) or an address";
			return false;
		}
		if (hash) {
			/* An address ("[v6]" too) without a port: the
			 * port is the URL's. */
			if (!conf_parse_addr(hash + 1, (uint16_t)p, out, why))
				return false;
			struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
			if (ntohs(v4->sin_port) != p) {
				*why = "'#ADDR' is an address without a port "
				       "(the port is the URL's)";
				return false;
			}
		} else {
			out->lookup = true;
			snprintf(out->addr, sizeof(out->addr), "?:%lu", p);
		}
		for (size_t i = 0; i < nl; i++)
			out->tls_name[i] =
			    (char)tolower((unsigned char)host[i]);
		out->tls_name[nl] = '\0';
	}
	out->port = (uint16_t)p;
	out->kind = CONF_HTTPS;
	char pathbuf[sizeof(out->path)];
	size_t pn = slash ? n - hn : 0;
	if (pn >= sizeof(pathbuf)) {
		*why = "path too long";
		return false;
	}
	memcpy(pathbuf, slash ? slash : "/dns-query", slash ? pn : 11);
	pathbuf[slash ? pn : 10] = '\0';
	if (!listen_path(pathbuf, out, why))
		return false;
	/* https://NAME:PORT/PATH#ADDR, NAME an address in brackets. */
	const char *h = out->tls_name;
	char hbuf[sizeof(out->addr)];
	if (!h[0]) {
		memcpy(hbuf, out->addr, sizeof(hbuf));
		*strrchr(hbuf, ':') = '\0';
		h = hbuf;
	}
	char a[sizeof(out->addr)] = "";
	if (out->tls_name[0] && !out->lookup) {
		memcpy(a, out->addr, sizeof(a));
		*strrchr(a, ':') = '\0';
	}
	snprintf(out->host, sizeof(out->host), "%s", h);
	snprintf(out->text, sizeof(out->text), "https://%s:%lu%s%s%s", h, p,
		 out->path, a[0] ? "#" : "", a);
	return true;
#endif
}

bool conf_parse_server(const char *text, struct conf_addr *out,
		       const char **why)
{
	static const struct {
		const char *scheme;
		enum conf_transport kind;
		uint16_t port;
	} schemes[] = {{"udp://", CONF_UDP, 53},
		       {"tcp://", CONF_TCP, 53},
		       {"tls://", CONF_TLS, 853}};
	enum conf_transport kind = CONF_UDP;
	uint16_t port = 53;
	const char *rest = text, *hash;
	char host[64];

	for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++)
		if (strncasecmp(text, schemes[i].scheme, 6) == 0) {
			kind = schemes[i].kind;
			port = schemes[i].port;
			rest = text + 6;
		}
	if (rest == text && strncasecmp(text, "https://", 8) == 0)
		return parse_https(text + 8, out, why);
	if (rest == text && strstr(text, "://")) {
		*why = "unknown scheme: expected ADDR[:PORT], udp://, tcp://, "
		       "tls:// or https://";
		return false;
	}
#ifndef HAVE_TLS
	if (kind == CONF_TLS) {
		*why = "this splitdns was built without TLS (--without-tls): "
		       "tls:// upstreams are not available";
		return false;
	}
#endif
	hash = strchr(rest, '#');
	if (hash && kind != CONF_TLS) {
		*why = "'#NAME' belongs to tls:// servers only";
		return false;
	}
	size_t n = hash ? (size_t)(hash - rest) : strlen(rest);
	if (n >= sizeof(host)) {
		*why = "address too long";
		return false;
	}
	memcpy(host, rest, n);
	host[n] = '\0';
	if (!conf_parse_addr(host, port, out, why))
		return false;
	out->kind = kind;
	if (hash) {
		size_t nl = strlen(hash + 1);
		if (nl > 1 && hash[nl] == '.')
			nl--; /* "name." is "name" */
		if (!tls_name_ok(hash + 1, nl)) {
			*why = "'#NAME' must be a host name (letters, digits, "
			       "'-', dots)";
			return false;
		}
		for (size_t i = 0; i < nl; i++)
			out->tls_name[i] = (char)tolower(
				(unsigned char)hash[1 + i]);
		out->tls_name[nl] = '\0';
	}
	if (kind != CONF_UDP)
		snprintf(out->text, sizeof(out->text), "%s%s%s%s",
			 schemes[kind].scheme, out->addr,
			 out->tls_name[0] ? "#" : "", out->tls_name);
	return true;
}

int conf_read_resolv(const char *path, struct conf_addr *out, size_t max)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t n = 0;

	if (!f)
		return -1;
	while (n < max && fgets(line, sizeof(line), f)) {
		char word[32], addr[128];
		const char *why;
		if (sscanf(line, " %31s %127s", word, addr) != 2 ||
		    strcmp(word, "nameserver") != 0)
			continue;
		char *pct = strchr(addr, '%'); /* scoped link-local */
		if (pct)
			continue;
		if (conf_parse_addr(addr, 53, &out[n], &why))
			n++;
	}
	fclose(f);
	return (int)n;
}

bool conf_parse_prefix(const char *text, struct conf_prefix *out,
			 const char **why)
{
	char addr[64];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);

	memset(out, 0, sizeof(*out));
	*why = "expected ADDRESS/PREFIX, e.g. 192.168.0.0/16 or fd00::/8";
	if (n >= sizeof(addr))
		return false;
	memcpy(addr, text, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, out->addr) == 1)
		out->family = AF_INET6;
	else
		return false;
	int max = out->family == AF_INET ? 32 : 128;
	out->bits = max;
	if (slash) {
		char *end;
		long b = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || b < 0 || b > max) {
			*why = "prefix length out of range";
			return false;
		}
		out->bits = (int)b;
	}
	return true;
}

static bool load_access(struct loader *ld, config_setting_t *root,
			struct conf *cfg)
{
	static const char *const known[] = {"allow", NULL};
	static const char *const defaults[] = {
		"127.0.0.0/8",	  "::1/128",	     "10.0.0.0/8",
		"172.16.0.0/12",  "192.168.0.0/16", "100.64.0.0/10",
		"169.254.0.0/16", "fc00::/7",	     "fe80::/10"};
	config_setting_t *g = config_setting_get_member(root, "access");
	config_setting_t *list = NULL;
	const char *why;

	if (g) {
		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			return fail(ld, g, "'access' must be a group { ... }");
		if (!check_names(ld, g, known, "access") ||
		    !get_strings(ld, g, "allow", &list))
			return false;
	}
	size_t n = list ? (size_t)config_setting_length(list)
			: sizeof(defaults) / sizeof(*defaults);
	if (!(cfg->access = ld_calloc(ld, n, sizeof(*cfg->access))))
		return false;
	cfg->naccess = n;
	if (!list) {
		for (size_t i = 0; i < cfg->naccess; i++)
			conf_parse_prefix(defaults[i], &cfg->access[i], &why);
		return true;
	}
	for (size_t i = 0; i < cfg->naccess; i++) {
		config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		if (!conf_parse_prefix(config_setting_get_string(e),
					 &cfg->access[i], &why))
			return fail(ld, e, "access.allow '%s': %s",
				    config_setting_get_string(e), why);
	}
	return true;
}

/* What one client may take (limit.h); each limit 0 turns it off. */
static bool load_limits(struct loader *ld, config_setting_t *root,
			struct conf *cfg)
{
	static const char *const known[] = {"client_qps", "client_burst",
					    "client_inflight", "slip", NULL};
	config_setting_t *g = config_setting_get_member(root, "limits");
	int64_t qps = 0, burst = 0, inflight = 256, slip = 2;

	if (g) {
		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			return fail(ld, g, "'limits' must be a group { ... }");
		if (!check_names(ld, g, known, "limits") ||
		    !get_int(ld, g, "client_qps", 0, 1000000, &qps) ||
		    !get_int(ld, g, "client_burst", 0, 10000000, &burst) ||
		    !get_int(ld, g, "client_inflight", 0, 16384, &inflight) ||
		    !get_int(ld, g, "slip", 0, 100, &slip))
			return false;
	}
	cfg->limit_qps = (uint32_t)qps;
	cfg->limit_burst = (uint32_t)burst;
	cfg->limit_inflight = (uint32_t)inflight;
	cfg->limit_slip = (uint32_t)slip;
	return true;
}

static bool load_cache(struct loader *ld, config_setting_t *root,
		       struct conf *cfg)
{
	static const char *const known[] = {"size", "min_ttl", "max_ttl",
					    "negative_ttl", "serve_stale",
					    "prefetch", NULL};
	config_setting_t *g = config_setting_get_member(root, "cache");

	cfg->cache_size = 10000;
	cfg->cache_min_ttl = 0;
	cfg->cache_max_ttl = 86400;
	cfg->cache_negative_ttl = 300;
	/* RFC 8767 5 suggests keeping stale data 1 to 3 days. */
	cfg->cache_serve_stale = 86400;
	cfg->cache_prefetch = false;
	if (!g)
		return true;
	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return fail(ld, g, "'cache' must be a group { ... }");
	if (!check_names(ld, g, known, "cache") ||
	    !get_int(ld, g, "size", 0, 10000000, &cfg->cache_size) ||
	    !get_int(ld, g, "min_ttl", 0, 86400, &cfg->cache_min_ttl) ||
	    !get_int(ld, g, "max_ttl", 0, 604800, &cfg->cache_max_ttl) ||
	    !get_int(ld, g, "negative_ttl", 0, 86400,
		     &cfg->cache_negative_ttl) ||
	    !get_int(ld, g, "serve_stale", 0, 7 * 86400,
		     &cfg->cache_serve_stale) ||
	    !get_bool(ld, g, "prefetch", &cfg->cache_prefetch))
		return false;
	if (cfg->cache_min_ttl > cfg->cache_max_ttl)
		return fail(ld, g, "cache.min_ttl is above cache.max_ttl");
	return true;
}

static bool load_user(struct loader *ld, config_setting_t *root,
		      struct conf *cfg)
{
	const char *user = NULL;

	if (!get_string(ld, root, "user", false, &user, &cfg->user_line))
		return false;
	if (user && !*user)
		return fail(ld, config_setting_get_member(root, "user"),
			    "'user' is empty");
	if (user) {
		errno = 0;
		if (!getpwnam(user))
			return fail(ld, config_setting_get_member(root, "user"),
				    "user '%s': %s", user,
				    errno ? strerror(errno) : "no such user");
		if (!(cfg->user = ld_strdup(ld, user)))
			return false;
	}
	return true;
}

/* control, control_mode, control_group (splitdns.conf(5), CONTROL). */
static bool load_control(struct loader *ld, config_setting_t *root,
			 struct conf *cfg)
{
	const char *path = NULL, *mode = NULL, *group = NULL;
	config_setting_t *s;

	cfg->control_mode = 0660;
	if (!get_string(ld, root, "control", false, &path, NULL) ||
	    !get_string(ld, root, "control_mode", false, &mode, NULL) ||
	    !get_string(ld, root, "control_group", false, &group, NULL))
		return false;
	if (path && path[0] != '/')
		return fail(ld, config_setting_get_member(root, "control"),
			    "'control' must be an absolute path");
	if (path && strlen(path) >= 108)
		return fail(ld, config_setting_get_member(root, "control"),
			    "'control' is longer than 107 octets");
	if (mode) {
		char *end;
		unsigned long m = strtoul(mode, &end, 8);
		s = config_setting_get_member(root, "control_mode");
		if (!*mode || *end || m > 0777)
			return fail(ld, s, "'control_mode' must be octal "
					   "permission bits such as \"0660\"");
		cfg->control_mode = (unsigned)m;
	}
	if (group) {
		s = config_setting_get_member(root, "control_group");
		errno = 0;
		if (!*group || !getgrnam(group))
			return fail(ld, s, "control_group '%s': %s", group,
				    errno ? strerror(errno) : "no such group");
		if (!(cfg->control_group = ld_strdup(ld, group)))
			return false;
	}
	if (path && !(cfg->control = ld_strdup(ld, path)))
		return false;
	return true;
}

/* metrics = "ADDR:PORT" (splitdns.conf(5), METRICS). */
static bool load_metrics(struct loader *ld, config_setting_t *root,
			 struct conf *cfg)
{
	const char *text = NULL;
	config_setting_t *s = config_setting_get_member(root, "metrics");

	if (!get_string(ld, root, "metrics", false, &text, NULL))
		return false;
	if (!text)
		return true;
#ifndef HAVE_METRICS
	return fail(ld, s, "'metrics': this splitdns was built without "
			   "metrics (configure found no libmicrohttpd)");
#else
	const char *why = NULL;
	if (!conf_parse_addr(text, 0, &cfg->metrics, &why))
		return fail(ld, s, "metrics '%s': %s", text, why);
	if (cfg->metrics.ss.ss_family == AF_INET6
		? ((struct sockaddr_in6 *)&cfg->metrics.ss)->sin6_port == 0
		: ((struct sockaddr_in *)&cfg->metrics.ss)->sin_port == 0)
		return fail(ld, s, "metrics '%s': give ADDR:PORT (or "
				   "[IPv6]:PORT) with a port from 1 to 65535",
			    text);
	cfg->metrics.line = config_setting_source_line(s);
	cfg->metrics_on = true;
	return true;
#endif
}

/* dnstap, dnstap_identity, dnstap_version (splitdns.conf(5), DNSTAP). */
static bool load_dnstap(struct loader *ld, config_setting_t *root,
			struct conf *cfg)
{
	const char *target = NULL, *identity = NULL, *version = NULL;
	config_setting_t *s = config_setting_get_member(root, "dnstap");

	if (!get_string(ld, root, "dnstap", false, &target, NULL) ||
	    !get_string(ld, root, "dnstap_identity", false, &identity, NULL) ||
	    !get_string(ld, root, "dnstap_version", false, &version, NULL))
		return false;
	if (!target)
		return true;
#ifndef HAVE_DNSTAP
	return fail(ld, s, "this splitdns was built without dnstap "
			   "(libfstrm, protobuf-c): 'dnstap' is not available");
#else
	const char *path =
		strncmp(target, "unix:", 5) == 0 ? target + 5 : target;
	if (path[0] != '/')
		return fail(ld, s, "'dnstap' must be an absolute path or "
				   "\"unix:\" and an absolute path");
	if (path != target && strlen(path) >= 108)
		return fail(ld, s, "'dnstap' socket path is longer than 107 "
				   "octets");
	if (!(cfg->dnstap = ld_strdup(ld, target)) ||
	    (identity && !(cfg->dnstap_identity = ld_strdup(ld, identity))) ||
	    (version && !(cfg->dnstap_version = ld_strdup(ld, version))))
		return false;
	return true;
#endif
}

static bool same_endpoint(const struct conf_addr *a,
			  const struct conf_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss;
		const struct sockaddr_in *y = (const void *)&b->ss;
		if (x->sin_port != y->sin_port)
			return false;
		/* A wildcard listener also receives what goes to loopback
		 * (the host's other addresses are not checked). */
		return x->sin_addr.s_addr == y->sin_addr.s_addr ||
		       (y->sin_addr.s_addr == htonl(INADDR_ANY) &&
			(ntohl(x->sin_addr.s_addr) >> 24) == 127);
	}
	const struct sockaddr_in6 *x = (const void *)&a->ss;
	const struct sockaddr_in6 *y = (const void *)&b->ss;
	return x->sin6_port == y->sin6_port &&
	       (memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 ||
		(IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr) &&
		 IN6_IS_ADDR_LOOPBACK(&x->sin6_addr)));
}

/* The path of an https:// listener: printable ASCII from '/', without a
 * query or fragment (RFC 3986 3.3; RFC 8484 4.1 gives the URI template's
 * path to the client). */
static bool listen_path(const char *p, struct conf_addr *out,
			const char **why)
{
	size_t n = strlen(p);
	if (n >= sizeof(out->path)) {
		*why = "path too long";
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (p[i] <= ' ' || p[i] > '~' || p[i] == '?' || p[i] == '#' ||
		    p[i] == '%') {
			*why = "the path may hold printable ASCII but no "
			       "space, '?', '#' or '%'";
			return false;
		}
	memcpy(out->path, p, n + 1);
	return true;
}

bool conf_parse_listen(const char *text, struct conf_addr *out,
		       const char **why)
{
	static const struct {
		const char *prefix;
		enum conf_transport kind;
		uint16_t port;
	} forms[] = {{"tls://", CONF_TLS, 853}, {"https://", CONF_HTTPS, 443}};
	enum conf_transport kind = CONF_UDP;
	uint16_t port = 53;
	const char *rest = text;
	char addr[64];

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (strncmp(text, forms[i].prefix, strlen(forms[i].prefix)) ==
		    0) {
			kind = forms[i].kind;
			port = forms[i].port;
			rest = text + strlen(forms[i].prefix);
		}
	if (kind == CONF_UDP && strstr(text, "://")) {
		*why = "a listen address is ADDR[:PORT], tls://ADDR[:PORT] or "
		       "https://ADDR[:PORT][/PATH]";
		return false;
	}
#ifndef HAVE_TLS
	if (kind != CONF_UDP) {
		*why = "this splitdns was built without TLS (--without-tls): "
		       "tls:// and https:// listeners are not available";
		return false;
	}
#endif
	const char *slash = kind == CONF_HTTPS ? strchr(rest, '/') : NULL;
	size_t alen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (alen >= sizeof(addr)) {
		*why = "address too long";
		return false;
	}
	memcpy(addr, rest, alen);
	addr[alen] = '\0';
	if (!conf_parse_addr(addr, port, out, why))
		return false;
	out->kind = kind;
	if (kind == CONF_UDP)
		return true;
	if (kind == CONF_HTTPS &&
	    !listen_path(slash ? slash : "/dns-query", out, why))
		return false;
	char norm[sizeof(out->text)];
	int len = snprintf(norm, sizeof(norm), "%s%s%s",
			   forms[kind == CONF_HTTPS].prefix, out->text,
			   out->path);
	if (len < 0 || (size_t)len >= sizeof(norm)) {
		*why = "too long";
		return false;
	}
	memcpy(out->text, norm, sizeof(norm));
	return true;
}

static bool load_addrs(struct loader *ld, config_setting_t *list,
		       struct conf_addr **out, size_t *n, size_t max,
		       const char *what,
		       bool (*parse)(const char *, struct conf_addr *,
				     const char **))
{
	size_t len = (size_t)config_setting_length(list);
	if (len == 0)
		return fail(ld, list, "'%s' is empty", what);
	if (len > max)
		return fail(ld, list, "'%s' has more than %zu entries", what,
			    max);
	if (!(*out = ld_calloc(ld, len, sizeof(**out))))
		return false;
	*n = len;
	for (size_t i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(list,
							      (unsigned)i);
		const char *why;
		if (!parse(config_setting_get_string(e), &(*out)[i], &why))
			return fail(ld, e, "%s: '%s': %s", what,
				    config_setting_get_string(e), why);
		(*out)[i].line = (int)config_setting_source_line(e);
	}
	return true;
}

/* The folder of path, in a new string; NULL when out of memory. */
static char *dir_of(struct loader *ld, const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return ld_strdup(ld, ".");
	char *d = ld_strdup(ld, path);
	if (d)
		d[slash - path == 0 ? 1 : slash - path] = '\0';
	return d;
}

/* Read libconfig file path into c, reporting errors through ld. */
static bool read_file(struct loader *ld, config_t *c, const char *path)
{
	char *dir = dir_of(ld, path);

	config_init(c);
	if (!dir)
		return false;
	config_set_include_dir(c, dir);
	free(dir);
	if (config_read_file(c, path) == CONFIG_TRUE)
		return true;
	if (config_error_type(c) == CONFIG_ERR_FILE_IO || !config_error_file(c))
		errf(ld->err, ld->errlen, "%s: cannot read: %s", path,
		     strerror(errno ? errno : ENOENT));
	else
		errf(ld->err, ld->errlen, "%s:%d: %s", config_error_file(c),
		     config_error_line(c), config_error_text(c));
	return false;
}

static bool load_record(struct loader *ld, config_setting_t *g,
			struct conf_record *r)
{
	static const char *const known[] = {"name", "type", "data", "ttl",
					    NULL};
	const char *name = NULL, *type = NULL, *data = NULL;
	int64_t ttl = -1;

	r->line = (int)config_setting_source_line(g);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return fail(ld, g, "a record must be a group { name = ...; "
				   "type = ...; data = ...; }");
	if (!check_names(ld, g, known, "a record") ||
	    !get_string(ld, g, "name", true, &name, NULL) ||
	    !get_string(ld, g, "type", true, &type, NULL) ||
	    !get_string(ld, g, "data", true, &data, NULL) ||
	    !get_int(ld, g, "ttl", 0, INT32_MAX, &ttl))
		return false;
	r->ttl = ttl;
	return (r->name = ld_strdup(ld, name)) &&
	       (r->type = ld_strdup(ld, type)) &&
	       (r->data = ld_strdup(ld, data));
}

static bool load_zone(struct loader *ld, struct conf_zone *z)
{
	static const char *const known[] = {"origin", "ttl", "authoritative",
					    "ptr", "reverse", "records", NULL};
	config_t c;
	const char *origin = NULL;
	bool ok = false;

	z->ttl = 300;
	if (!read_file(ld, &c, z->path)) {
		if (!strstr(ld->err, ": cannot read: "))
			goto out; /* a syntax error has the zone file's line */
		/* Say where the main file names the zone file, too. */
		char inner[CONF_ERR_MAX];
		snprintf(inner, sizeof(inner), "%s", ld->err);
		errf(ld->err, ld->errlen, "%s:%d: zone file %.900s", ld->main,
		     z->line, inner);
		goto out;
	}
	ld->file = z->path;
	config_setting_t *root = config_root_setting(&c);
	if (!check_names(ld, root, known, NULL) ||
	    !get_string(ld, root, "origin", true, &origin, &z->origin_line) ||
	    !get_int(ld, root, "ttl", 0, INT32_MAX, &z->ttl) ||
	    !get_bool(ld, root, "authoritative", &z->authoritative) ||
	    !get_bool(ld, root, "ptr", &z->ptr) ||
	    !get_string_list(ld, root, "reverse", &z->reverse, &z->nreverse,
			     &z->reverse_line))
		goto out;
	if (!(z->origin = ld_strdup(ld, origin)))
		goto out;
	config_setting_t *recs = config_setting_get_member(root, "records");
	if (recs) {
		if (config_setting_type(recs) != CONFIG_TYPE_LIST) {
			fail(ld, recs, "'records' must be a list ( {...}, ... )");
			goto out;
		}
		size_t n = (size_t)config_setting_length(recs);
		if (!(z->records = ld_calloc(ld, n, sizeof(*z->records))))
			goto out;
		z->nrecords = n;
		for (size_t i = 0; i < z->nrecords; i++)
			if (!load_record(ld, config_setting_get_elem(recs, (unsigned)i),
					 &z->records[i]))
				goto out;
	}
	ok = true;
out:
	config_destroy(&c);
	return ok;
}

static bool load_upstream(struct loader *ld, config_setting_t *root,
			  struct conf *cfg)
{
	static const char *const known[] = {"servers", "timeout_ms", "tries",
					    NULL};
	config_setting_t *up = config_setting_get_member(root, "upstream");
	config_setting_t *list = NULL;
	int64_t timeout = 1000, tries = 2;

	if (up) {
		if (config_setting_type(up) != CONFIG_TYPE_GROUP)
			return fail(ld, up, "'upstream' must be a group { ... }");
		if (!check_names(ld, up, known, "upstream") ||
		    !get_strings(ld, up, "servers", &list) ||
		    !get_int(ld, up, "timeout_ms", 100, 30000, &timeout) ||
		    !get_int(ld, up, "tries", 1, 10, &tries))
			return false;
	}
	cfg->timeout_ms = (int)timeout;
	cfg->tries = (int)tries;
	if (list)
		return load_addrs(ld, list, &cfg->servers, &cfg->nservers,
				  CONFIG_MAX_SERVERS, "upstream.servers",
				  conf_parse_server);
	cfg->servers_from_resolv = true;
	if (!(cfg->servers =
		  ld_calloc(ld, CONFIG_MAX_SERVERS, sizeof(*cfg->servers))))
		return false;
	int n = conf_read_resolv("/etc/resolv.conf", cfg->servers,
				   CONFIG_MAX_SERVERS);
	if (n <= 0) {
		return errf(ld->err, ld->errlen,
			    "%s: no upstream.servers, and /etc/resolv.conf "
			    "names no usable nameserver",
			    cfg->path);
	}
	cfg->nservers = (size_t)n;
	return true;
}

static bool load_listen(struct loader *ld, config_setting_t *root,
			struct conf *cfg,
			const char *const *override, size_t n_override)
{
	config_setting_t *list;
	const char *why;

	if (!get_strings(ld, root, "listen", &list))
		return false;
	if (override && n_override) {
		if (!(cfg->listen =
			  ld_calloc(ld, n_override, sizeof(*cfg->listen))))
			return false;
		cfg->nlisten = n_override;
		for (size_t i = 0; i < n_override; i++)
			if (!conf_parse_listen(override[i], &cfg->listen[i],
					       &why)) {
				return errf(ld->err, ld->errlen, "-l %s: %s",
					    override[i], why);
			}
		return true;
	}
	if (list)
		return load_addrs(ld, list, &cfg->listen, &cfg->nlisten,
				  CONFIG_MAX_LISTEN, "listen", conf_parse_listen);
	static const char *const defaults[] = {"127.0.0.1:53", "[::1]:53"};
	if (!(cfg->listen = ld_calloc(ld, 2, sizeof(*cfg->listen))))
		return false;
	cfg->nlisten = 2;
	for (size_t i = 0; i < 2; i++)
		conf_parse_addr(defaults[i], 53, &cfg->listen[i], &why);
	return true;
}

static bool load_zones(struct loader *ld, config_setting_t *root,
		       struct conf *cfg)
{
	config_setting_t *list;

	if (!get_strings(ld, root, "zones", &list))
		return false;
	if (!list)
		return true;
	size_t n = (size_t)config_setting_length(list);
	if (!(cfg->zones = ld_calloc(ld, n, sizeof(*cfg->zones))))
		return false;
	cfg->nzones = n;
	char *dir = dir_of(ld, cfg->path);
	if (!dir)
		return false;
	for (size_t i = 0; i < cfg->nzones; i++) {
		config_setting_t *e =
		    config_setting_get_elem(list, (unsigned)i);
		struct conf_zone *z = &cfg->zones[i];
		z->line = (int)config_setting_source_line(e);
		z->path = ld_path(ld, dir, config_setting_get_string(e));
		if (!z->path || !load_zone(ld, z)) {
			free(dir);
			return false;
		}
	}
	free(dir);
	return true;
}

static bool load_tcp(struct loader *ld, config_setting_t *root,
		     struct conf *cfg)
{
	static const char *const known[] = {
		"max_connections", "idle_timeout_ms", "query_timeout_ms",
		"write_timeout_ms", "max_per_client", "max_output",
		"max_output_total", NULL};
	config_setting_t *g = config_setting_get_member(root, "tcp");
	int64_t maxc = 256, idle = 10000, query = 5000, write = 10000;
	int64_t per_client = 32, out = 1 << 20, total = 32 << 20;

	if (g) {
		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			return fail(ld, g, "'tcp' must be a group { ... }");
		if (!check_names(ld, g, known, "tcp") ||
		    !get_int(ld, g, "max_connections", 1, 65535, &maxc) ||
		    !get_int(ld, g, "idle_timeout_ms", 1000, 600000, &idle) ||
		    !get_int(ld, g, "query_timeout_ms", 500, 60000, &query) ||
		    !get_int(ld, g, "write_timeout_ms", 1000, 600000, &write) ||
		    !get_int(ld, g, "max_per_client", 1, 65535, &per_client) ||
		    !get_int(ld, g, "max_output", 131072, 1LL << 30, &out) ||
		    !get_int(ld, g, "max_output_total", 131072, INT32_MAX,
			     &total))
			return false;
	}
	cfg->tcp_max_connections = (int)maxc;
	cfg->tcp_idle_timeout_ms = (int)idle;
	cfg->tcp_query_timeout_ms = (int)query;
	cfg->tcp_write_timeout_ms = (int)write;
	cfg->tcp_max_per_client = (int)per_client;
	cfg->tcp_max_output = out;
	cfg->tcp_max_output_total = total;
	return true;
}

/* The tls group: how tls:// upstreams are trusted and their connections
 * kept, and the certificate of tls:// and https:// listeners and their
 * limits.  A listener of either kind needs tls.cert and tls.key; the PEM
 * itself is read with the snapshot (tls_creds_new), so that a reload
 * reads renewed files. */
static bool load_tls(struct loader *ld, config_setting_t *root,
		     struct conf *cfg)
{
	static const char *const known[] = {"ca",
					    "upstream_idle_timeout_ms",
					    "upstream_max_queries",
					    "cert",
					    "key",
					    "handshake_timeout_ms",
					    "max_handshakes",
					    "max_streams",
					    NULL};
	config_setting_t *g = config_setting_get_member(root, "tls");
	int64_t idle = 10000, maxq = 10000;
	int64_t handshake = 5000, max_handshakes = 64, streams = 100;
	const char *ca = NULL, *cert = NULL, *key = NULL;

	if (g) {
		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			return fail(ld, g, "'tls' must be a group { ... }");
		if (!check_names(ld, g, known, "tls") ||
		    !get_string(ld, g, "ca", false, &ca, &cfg->tls_ca_line) ||
		    !get_int(ld, g, "upstream_idle_timeout_ms", 1000, 600000,
			     &idle) ||
		    !get_int(ld, g, "upstream_max_queries", 1, 1000000, &maxq) ||
		    !get_string(ld, g, "cert", false, &cert,
				&cfg->tls_cert_line) ||
		    !get_string(ld, g, "key", false, &key, NULL) ||
		    !get_int(ld, g, "handshake_timeout_ms", 500, 60000,
			     &handshake) ||
		    !get_int(ld, g, "max_handshakes", 1, 65535,
			     &max_handshakes) ||
		    !get_int(ld, g, "max_streams", 1, 1000, &streams))
			return false;
		if ((cert == NULL) != (key == NULL))
			return fail(ld, g, "'tls' needs both 'cert' and 'key'");
	}
	cfg->tls_idle_timeout_ms = (int)idle;
	cfg->tls_max_queries = (int)maxq;
	cfg->tls_handshake_timeout_ms = (int)handshake;
	cfg->tls_max_handshakes = (int)max_handshakes;
	cfg->https_max_streams = (int)streams;
	for (size_t i = 0; i < cfg->nlisten && !cert; i++) {
		const struct conf_addr *a = &cfg->listen[i];
		if (a->kind != CONF_TLS && a->kind != CONF_HTTPS)
			continue;
		if (a->line)
			return errf(ld->err, ld->errlen,
				    "%s:%d: listen %s needs tls.cert and "
				    "tls.key",
				    ld->main, a->line, a->text);
		return errf(ld->err, ld->errlen,
			    "%s: listen %s needs tls.cert and tls.key",
			    ld->main, a->text);
	}
	if (!ca && !cert)
		return true;
	char *dir = dir_of(ld, cfg->path);
	if (!dir)
		return false;
	if (cert) {
		cfg->tls_cert = ld_path(ld, dir, cert);
		cfg->tls_key = cfg->tls_cert ? ld_path(ld, dir, key) : NULL;
		if (!cfg->tls_key) {
			free(dir);
			return false;
		}
	}
	if (!ca) {
		free(dir);
		return true;
	}
	cfg->tls_ca = ld_path(ld, dir, ca);
	free(dir);
	if (!cfg->tls_ca)
		return false;
	FILE *f = fopen(cfg->tls_ca, "r");
	if (!f)
		return fail(ld, config_setting_get_member(g, "ca"),
			    "tls.ca '%s': %s", cfg->tls_ca, strerror(errno));
	fclose(f);
	return true;
}

static bool load_forward(struct loader *ld, config_setting_t *g,
			 struct conf_forward *f)
{
	static const char *const known[] = {"domain", "servers", "refuse",
					    NULL};
	const char *domain = NULL, *why;
	config_setting_t *list = NULL;
	uint8_t wire[255];

	f->line = (int)config_setting_source_line(g);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return fail(ld, g, "a forward rule must be a group { domain = "
				   "...; servers = [...]; }");
	if (!check_names(ld, g, known, "a forward rule") ||
	    !get_string(ld, g, "domain", true, &domain, NULL) ||
	    !get_strings(ld, g, "servers", &list) ||
	    !get_bool(ld, g, "refuse", &f->refuse))
		return false;
	if (wire_name_from_text(domain, NULL, 0, wire, &why) < 0)
		return fail(ld, g, "forward domain '%s': %s", domain, why);
	if (!(f->domain = ld_strdup(ld, domain)))
		return false;
	size_t n = list ? (size_t)config_setting_length(list) : 0;
	if (f->refuse && n)
		return fail(ld, g, "forward rule for '%s': 'refuse = true' "
				   "takes no servers", domain);
	if (!f->refuse && n == 0)
		return fail(ld, g, "forward rule for '%s' needs servers (or "
				   "'refuse = true')", domain);
	if (n)
		return load_addrs(ld, list, &f->servers, &f->nservers,
				  CONFIG_MAX_SERVERS, "servers", conf_parse_server);
	return true;
}

/* A forward rule's domain in lowered wire form, for finding repeats. */
struct fwd_key {
	uint8_t name[WIRE_NAME_MAX];
	size_t len;
	size_t i; /* the rule's index */
};

static int fwd_key_cmp(const void *a, const void *b)
{
	const struct fwd_key *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);
	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

/* A second rule for a domain (case and the final dot aside) is refused
 * at the first such rule in file order, naming the first rule's line.
 * Sorted once: thousands of rules cost n log n, not n squared. */
static bool forwards_unique(struct loader *ld, config_setting_t *list,
			    const struct conf *cfg)
{
	size_t n = cfg->nforwards, dup = n, orig = 0;
	struct fwd_key *k = ld_calloc(ld, n ? n : 1, sizeof(*k));
	const char *why;

	if (!k)
		return false;
	for (size_t i = 0; i < n; i++) {
		int len = wire_name_from_text(cfg->forwards[i].domain, NULL, 0,
					      k[i].name, &why);
		k[i].len = len > 0 ? (size_t)len : 0;
		wire_name_lower(k[i].name, k[i].name, k[i].len);
		k[i].i = i;
	}
	qsort(k, n, sizeof(*k), fwd_key_cmp);
	size_t first = 0; /* where the run of equal names starts */
	for (size_t r = 1; r < n; r++) {
		if (k[r].len != k[r - 1].len ||
		    memcmp(k[r].name, k[r - 1].name, k[r].len) != 0) {
			first = r;
			continue;
		}
		/* k[first] has the run's smallest index: the first rule. */
		if (k[r].i < dup) {
			dup = k[r].i;
			orig = k[first].i;
		}
	}
	free(k);
	if (dup == n)
		return true;
	return fail(ld, config_setting_get_elem(list, (unsigned)dup),
		    "a second forward rule for '%s' (the first is on line %d)",
		    cfg->forwards[dup].domain, cfg->forwards[orig].line);
}

static bool load_forwards(struct loader *ld, config_setting_t *root,
			  struct conf *cfg)
{
	config_setting_t *list = config_setting_get_member(root, "forward");

	if (!list)
		return true;
	if (config_setting_type(list) != CONFIG_TYPE_LIST)
		return fail(ld, list, "'forward' must be a list ( {...}, ... )");
	size_t n = (size_t)config_setting_length(list);
	if (!(cfg->forwards = ld_calloc(ld, n, sizeof(*cfg->forwards))))
		return false;
	cfg->nforwards = n;
	for (size_t i = 0; i < cfg->nforwards; i++) {
		config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		if (!load_forward(ld, g, &cfg->forwards[i]))
			return false;
	}
	return forwards_unique(ld, list, cfg);
}

static bool loop_in(struct loader *ld, const struct conf *cfg,
		    const struct conf_addr *servers, size_t n,
		    const char *what)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < cfg->nlisten; j++)
			if (same_endpoint(&servers[i], &cfg->listen[j])) {
				char where[32] = "";
				if (servers[i].line)
					snprintf(where, sizeof(where), ":%d",
						 servers[i].line);
				return errf(ld->err, ld->errlen,
					    "%s%s: %s %s is our own listen "
					    "address %s: a forwarding loop",
					    cfg->path, where, what,
					    servers[i].text,
					    cfg->listen[j].text);
			}
	return true;
}

static bool block_answer(struct loader *ld, config_setting_t *s,
			 struct conf_block *b, const char *text)
{
	static const struct {
		const char *name;
		enum conf_block_mode mode;
	} modes[] = {{"null", CONF_BLOCK_NULL},
		     {"nxdomain", CONF_BLOCK_NXDOMAIN},
		     {"nodata", CONF_BLOCK_NODATA},
		     {"refused", CONF_BLOCK_REFUSED}};
	char buf[256], *save = NULL;

	for (size_t i = 0; i < sizeof(modes) / sizeof(*modes); i++)
		if (strcasecmp(text, modes[i].name) == 0) {
			b->mode = modes[i].mode;
			return true;
		}
	/* Otherwise one IPv4 and/or one IPv6 address. */
	snprintf(buf, sizeof(buf), "%s", text);
	b->mode = CONF_BLOCK_ADDRESS;
	for (char *w = strtok_r(buf, " ,", &save); w;
	     w = strtok_r(NULL, " ,", &save)) {
		if (!b->has_a && inet_pton(AF_INET, w, b->a) == 1)
			b->has_a = true;
		else if (!b->has_aaaa && inet_pton(AF_INET6, w, b->aaaa) == 1)
			b->has_aaaa = true;
		else
			return fail(ld, s, "block.answer '%s': expected null, "
					   "nxdomain, nodata, refused, or an "
					   "IPv4 and/or an IPv6 address", text);
	}
	if (!b->has_a && !b->has_aaaa)
		return fail(ld, s, "block.answer is empty");
	return true;
}

static bool add_list(struct loader *ld, struct conf_block *b,
		     const char *entry)
{
	char **more = realloc(b->lists, (b->nlists + 1) * sizeof(*more));

	if (!more)
		return oom(ld);
	b->lists = more;
	if (!(more[b->nlists] = ld_strdup(ld, entry)))
		return false;
	b->nlists++;
	return true;
}

/* Expand each list pattern (relative to the main file's folder); URLs
 * are kept as written. */
static bool block_lists(struct loader *ld, config_setting_t *g,
			struct conf_block *b, const char *dir)
{
	config_setting_t *list;

	if (!get_strings(ld, g, "lists", &list))
		return false;
	if (!list)
		return true;
	b->lists_line = (int)config_setting_source_line(list);
	for (int i = 0; i < config_setting_length(list); i++) {
		config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		const char *p = config_setting_get_string(e);
		const char *why;
		glob_t gl;
		if (fetch_is_url(p)) { /* downloaded, never globbed */
			if (!fetch_check_url(p, &why))
				return fail(ld, e, "block.lists '%s': %s", p,
					    why);
			if (!add_list(ld, b, p))
				return false;
			continue;
		}
		char *path = ld_path(ld, dir, p);
		if (!path)
			return false;
		int rc = glob(path, GLOB_NOCHECK, NULL, &gl);
		free(path);
		if (rc != 0) {
			globfree(&gl);
			if (rc == GLOB_NOSPACE)
				return oom(ld);
			return fail(ld, e, "block.lists '%s': bad pattern", p);
		}
		char **more = realloc(b->lists, (b->nlists + gl.gl_pathc) *
							sizeof(*more));
		if (more)
			b->lists = more;
		for (size_t j = 0; more && j < gl.gl_pathc; j++)
			if (!(more[b->nlists] = strdup(gl.gl_pathv[j])))
				more = NULL;
			else
				b->nlists++;
		globfree(&gl);
		if (!more)
			return oom(ld);
	}
	return true;
}

static const char *const block_known[] = {
    "answer", "lists", "domains",	 "allow", "regex",
    "ttl",    "cname", "firefox_canary", "icloud_private_relay",
    NULL};

/* The top-level block group has these too: how subscribed lists are
 * downloaded is one setting for every client group. */
static const char *const block_known_top[] = {
    "answer",	     "lists",	     "domains",		      "allow",
    "regex",	     "ttl",	     "cname",		      "firefox_canary",
    "icloud_private_relay", "refresh", "fetch_timeout", "max_list_size",
    "ca",	     NULL};

/* Replace the string list *v (n entries) by member name of g, when g has
 * it. */
static bool replace_strings(struct loader *ld, const config_setting_t *g,
			    const char *name, char ***v, size_t *n)
{
	if (!config_setting_get_member(g, name))
		return true;
	free_strings(*v, *n);
	*v = NULL;
	*n = 0;
	return get_string_list(ld, g, name, v, n, NULL);
}

/* The keys of block group g (named where, for messages) over what b
 * holds already: the defaults, or the top-level values for a client
 * group.  Lists, domains and allow entries given replace the old ones. */
/* Where block.regex is, for its messages; always true. */
static bool regex_line(const config_setting_t *g, struct conf_block *b)
{
	const config_setting_t *r = config_setting_get_member(g, "regex");
	if (r)
		b->regex_line = (int)config_setting_source_line(r);
	return true;
}

/* How subscribed lists are downloaded (the top-level block group only:
 * one setting for every client group). */
static bool block_fetch(struct loader *ld, config_setting_t *g,
			struct conf_block *b, const char *dir)
{
	const char *ca = NULL;

	if (!get_int(ld, g, "refresh", 1, 30 * 86400, &b->refresh) ||
	    !get_int(ld, g, "fetch_timeout", 1, 3600, &b->fetch_timeout) ||
	    !get_int(ld, g, "max_list_size", 1, (int64_t)1 << 30,
		     &b->max_list_size) ||
	    !get_string(ld, g, "ca", false, &ca, NULL) ||
	    (ca && !(b->ca = ld_path(ld, dir, ca))))
		return false;
	if (b->ca && access(b->ca, R_OK) != 0)
		return fail(ld, config_setting_get_member(g, "ca"),
			    "block.ca '%s': %s", b->ca, strerror(errno));
	return true;
}

static bool block_group(struct loader *ld, config_setting_t *g,
			struct conf_block *b, const char *dir,
			const char *where)
{
	const char *answer = NULL;
	bool icloud = false;

	b->line = (int)config_setting_source_line(g);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return fail(ld, g, "'%s' must be a group { ... }", where);
	if (config_setting_get_member(g, "lists")) {
		free_strings(b->lists, b->nlists);
		b->lists = NULL;
		b->nlists = 0;
	}
	bool top = strcmp(where, "block") == 0;
	for (const char *const *k = block_known_top; !top && *k; k++) {
		const char *const *j = block_known;
		while (*j && strcmp(*j, *k) != 0)
			j++;
		if (!*j && config_setting_get_member(g, *k))
			return fail(ld, config_setting_get_member(g, *k),
				    "'%s' is one setting for every client "
				    "group: set block.%s in the top-level "
				    "block group",
				    *k, *k);
	}
	if (!check_names(ld, g, top ? block_known_top : block_known,
			 where) ||
	    !get_string(ld, g, "answer", false, &answer, NULL))
		return false;
	if (answer) {
		/* A new answer replaces the inherited one whole. */
		b->has_a = b->has_aaaa = false;
		if (!block_answer(ld, config_setting_get_member(g, "answer"), b,
				  answer))
			return false;
	}
	if (!block_lists(ld, g, b, dir) ||
	    !replace_strings(ld, g, "domains", &b->domains, &b->ndomains) ||
	    !replace_strings(ld, g, "allow", &b->allow, &b->nallow) ||
	    !replace_strings(ld, g, "regex", &b->regex, &b->nregex) ||
	    !regex_line(g, b) ||
	    !get_int(ld, g, "ttl", 0, 604800, &b->ttl) ||
	    !get_bool(ld, g, "cname", &b->cname) ||
	    !get_bool(ld, g, "firefox_canary", &b->firefox_canary))
		return false;
	if (config_setting_get_member(g, "icloud_private_relay")) {
		if (!get_bool(ld, g, "icloud_private_relay", &icloud))
			return false;
		b->icloud_private_relay = icloud;
	}
	return true;
}

static bool load_block(struct loader *ld, config_setting_t *root,
		       struct conf *cfg)
{
	config_setting_t *g = config_setting_get_member(root, "block");
	struct conf_block *b = &cfg->block;
	bool ok;

	/* Short, so that an allow entry added by a reload reaches clients
	 * within seconds (splitdns.conf(5), block.ttl). */
	b->ttl = 10;
	b->cname = true;
	b->refresh = 86400;
	b->fetch_timeout = 60;
	b->max_list_size = 64 << 20;
	b->firefox_canary = true;
	b->icloud_private_relay = -1;
	if (!g)
		return true;
	char *dir = dir_of(ld, cfg->path);
	if (!dir)
		return false;
	ok = block_group(ld, g, b, dir, "block") && block_fetch(ld, g, b, dir);
	free(dir);
	return ok;
}

bool conf_block_icloud(const struct conf_block *b)
{
	if (b->icloud_private_relay >= 0)
		return b->icloud_private_relay != 0;
	return b->nlists > 0 || b->ndomains > 0;
}

static bool same_strings(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

bool conf_block_same_names(const struct conf_block *a,
			   const struct conf_block *b)
{
	return same_strings(a->lists, a->nlists, b->lists, b->nlists) &&
	       same_strings(a->domains, a->ndomains, b->domains, b->ndomains) &&
	       same_strings(a->allow, a->nallow, b->allow, b->nallow) &&
	       same_strings(a->regex, a->nregex, b->regex, b->nregex);
}

/* A copy of string list v (n entries) in *out, *nout; what was copied
 * before running out of memory is there for conf_free. */
static bool copy_strings(struct loader *ld, char **v, size_t n, char ***out,
			 size_t *nout)
{
	*out = NULL;
	*nout = 0;
	if (n == 0)
		return true;
	if (!(*out = ld_calloc(ld, n, sizeof(**out))))
		return false;
	*nout = n;
	for (size_t i = 0; i < n; i++)
		if (!((*out)[i] = ld_strdup(ld, v[i])))
			return false;
	return true;
}

/* dst = src with its string lists copied. */
static bool copy_block(struct loader *ld, struct conf_block *dst,
		       const struct conf_block *src)
{
	*dst = *src;
	dst->domains = dst->allow = dst->regex = NULL;
	dst->ndomains = dst->nallow = dst->nregex = 0;
	dst->ca = NULL; /* the top level's: downloads are one setting */
	return copy_strings(ld, src->lists, src->nlists, &dst->lists,
			    &dst->nlists) &&
	       copy_strings(ld, src->regex, src->nregex, &dst->regex,
			    &dst->nregex) &&
	       copy_strings(ld, src->domains, src->ndomains, &dst->domains,
			    &dst->ndomains) &&
	       copy_strings(ld, src->allow, src->nallow, &dst->allow,
			    &dst->nallow);
}

/* A group name is a word for logs, counters and control commands. */
static bool good_group_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 32 || strcmp(name, "default") == 0)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static bool client_match(struct loader *ld, config_setting_t *g,
			 struct conf_client *c)
{
	config_setting_t *list;
	const char *why;

	if (!get_strings(ld, g, "match", &list))
		return false;
	if (!list || config_setting_length(list) == 0)
		return fail(ld, list ? list : g,
			    "client group '%s' needs "
			    "'match = [\"ADDRESS/PREFIX\", ...]'",
			    c->name);
	size_t n = (size_t)config_setting_length(list);
	if (!(c->match = ld_calloc(ld, n, sizeof(*c->match))) ||
	    !(c->match_text = ld_calloc(ld, n, sizeof(*c->match_text))))
		return false;
	for (size_t i = 0; i < n; i++) {
		config_setting_t *e =
		    config_setting_get_elem(list, (unsigned)i);
		const char *text = config_setting_get_string(e);
		if (!conf_parse_prefix(text, &c->match[i], &why))
			return fail(ld, e, "client group '%s': match '%s': %s",
				    c->name, text, why);
		if (!(c->match_text[i] = ld_strdup(ld, text)))
			return false;
		c->nmatch = i + 1;
	}
	return true;
}

/* upstream: { servers = [...]; }, the shape of the top-level group. */
static bool client_upstream(struct loader *ld, config_setting_t *g,
			    struct conf_client *c)
{
	static const char *const known[] = {"servers", NULL};
	config_setting_t *up = config_setting_get_member(g, "upstream");
	config_setting_t *list;

	if (!up)
		return true;
	if (config_setting_type(up) != CONFIG_TYPE_GROUP)
		return fail(ld, up,
			    "client group '%s': 'upstream' must be a "
			    "group { servers = [...]; }",
			    c->name);
	if (!check_names(ld, up, known,
			 "a client group's upstream "
			 "(timeout_ms and tries are the "
			 "top-level ones)") ||
	    !get_strings(ld, up, "servers", &list))
		return false;
	if (!list)
		return fail(ld, up,
			    "client group '%s': 'upstream' needs "
			    "'servers'",
			    c->name);
	return load_addrs(ld, list, &c->servers, &c->nservers,
			  CONFIG_MAX_SERVERS, "servers", conf_parse_server);
}

static bool load_client(struct loader *ld, config_setting_t *g,
			const struct conf *cfg, struct conf_client *c,
			const char *dir)
{
	static const char *const known[] = {"name", "match", "block",
					    "upstream", NULL};
	const char *name = NULL;

	c->line = (int)config_setting_source_line(g);
	/* Inherit first, so that conf_free finds a whole block to free. */
	if (!copy_block(ld, &c->block, &cfg->block))
		return false;
	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return fail(ld, g,
			    "a client group must be a group { name = "
			    "...; match = [...]; }");
	if (!check_names(ld, g, known, "a client group") ||
	    !get_string(ld, g, "name", true, &name, NULL))
		return false;
	if (!good_group_name(name))
		return fail(ld, config_setting_get_member(g, "name"),
			    "client group name '%s': 1 to 32 of a-z, 0-9, _ "
			    "and -, and not 'default'",
			    name);
	if (!(c->name = ld_strdup(ld, name)) || !client_match(ld, g, c))
		return false;
	config_setting_t *b = config_setting_get_member(g, "block");
	if (b && !block_group(ld, b, &c->block, dir, "a client group's block"))
		return false;
	return client_upstream(ld, g, c);
}

static bool load_clients(struct loader *ld, config_setting_t *root,
			 struct conf *cfg)
{
	config_setting_t *list = config_setting_get_member(root, "clients");
	bool ok = true;

	if (!list)
		return true;
	if (config_setting_type(list) != CONFIG_TYPE_LIST)
		return fail(ld, list,
			    "'clients' must be a list ( {...}, ... )");
	size_t n = (size_t)config_setting_length(list);
	if (n > CONF_MAX_CLIENTS)
		return fail(ld, list, "'clients' has more than %d groups",
			    CONF_MAX_CLIENTS);
	if (!(cfg->clients = ld_calloc(ld, n, sizeof(*cfg->clients))))
		return false;
	char *dir = dir_of(ld, cfg->path);
	if (!dir)
		return false;
	for (size_t i = 0; ok && i < n; i++) {
		config_setting_t *g =
		    config_setting_get_elem(list, (unsigned)i);
		cfg->nclients = i + 1;
		ok = load_client(ld, g, cfg, &cfg->clients[i], dir);
		for (size_t j = 0; ok && j < i; j++)
			if (strcmp(cfg->clients[j].name,
				   cfg->clients[i].name) == 0)
				ok = fail(ld, g,
					  "a second client group named "
					  "'%s' (the first is on line "
					  "%d)",
					  cfg->clients[i].name,
					  cfg->clients[j].line);
	}
	free(dir);
	return ok;
}

/* state_dir, relative to the main file's folder. */
static bool load_state_dir(struct loader *ld, config_setting_t *root,
			   struct conf *cfg)
{
	const char *text = "/var/lib/splitdns";
	char *dir;

	if (!get_string(ld, root, "state_dir", false, &text, NULL))
		return false;
	if (!*text)
		return fail(ld, config_setting_get_member(root, "state_dir"),
			    "'state_dir' is empty");
	if (!(dir = dir_of(ld, cfg->path)))
		return false;
	cfg->state_dir = ld_path(ld, dir, text);
	free(dir);
	return cfg->state_dir != NULL;
}

/* log_queries, log_max_size, log_keep, log_queue, log_privacy
 * (splitdns.conf(5), QUERY LOG). */
static bool load_query_log(struct loader *ld, config_setting_t *root,
			   struct conf *cfg)
{
	static const char *const privacy[] = {"none", "mask", "hide"};
	const char *path = NULL, *priv = NULL;
	char *dir;

	cfg->log_max_size = 100 * 1024 * 1024;
	cfg->log_keep = 5;
	cfg->log_queue = 4096;
	if (!get_string(ld, root, "log_queries", false, &path, NULL) ||
	    !get_int(ld, root, "log_max_size", 0, INT64_C(1) << 40,
		     &cfg->log_max_size) ||
	    !get_int(ld, root, "log_keep", 0, 100, &cfg->log_keep) ||
	    !get_int(ld, root, "log_queue", 1, 1 << 20, &cfg->log_queue) ||
	    !get_string(ld, root, "log_privacy", false, &priv, NULL))
		return false;
	if (cfg->log_max_size && cfg->log_max_size < 4096)
		return fail(ld, config_setting_get_member(root, "log_max_size"),
			    "'log_max_size' must be 0 or at least 4096");
	if (priv) {
		size_t i = 0;
		while (i < 3 && strcmp(priv, privacy[i]) != 0)
			i++;
		if (i == 3)
			return fail(ld,
				    config_setting_get_member(root,
							      "log_privacy"),
				    "log_privacy '%s': must be \"none\", "
				    "\"mask\" or \"hide\"",
				    priv);
		cfg->log_privacy = (enum conf_log_privacy)i;
	}
	if (!path)
		return true;
	if (!*path)
		return fail(ld, config_setting_get_member(root, "log_queries"),
			    "'log_queries' is empty");
	if (strcmp(path, "syslog") == 0)
		return (cfg->log_queries = ld_strdup(ld, path)) != NULL;
	if (!(dir = dir_of(ld, cfg->path)))
		return false;
	cfg->log_queries = ld_path(ld, dir, path);
	free(dir);
	if (cfg->log_queries && strlen(cfg->log_queries) >= PATH_MAX - 8)
		return fail(ld, config_setting_get_member(root, "log_queries"),
			    "'log_queries' is too long");
	return cfg->log_queries != NULL;
}

/* An upstream that is one of our own listeners would forward to itself. */
static bool check_loops(struct loader *ld, const struct conf *cfg)
{
	if (!loop_in(ld, cfg, cfg->servers, cfg->nservers,
		     cfg->servers_from_resolv
			     ? "upstream (from /etc/resolv.conf)"
			     : "upstream"))
		return false;
	for (size_t i = 0; i < cfg->nforwards; i++)
		if (!loop_in(ld, cfg, cfg->forwards[i].servers,
			     cfg->forwards[i].nservers, "forward server"))
			return false;
	for (size_t i = 0; i < cfg->nclients; i++)
		if (!loop_in(ld, cfg, cfg->clients[i].servers,
			     cfg->clients[i].nservers, "client group server"))
			return false;
	return true;
}

/* An https:// server without #ADDR is looked up through the plain
 * servers of upstream.servers (never through itself, nor through
 * another encrypted server that might need the same lookup): there
 * must be one. */
static bool lookup_in(struct loader *ld, const struct conf *cfg,
		      const struct conf_addr *servers, size_t n)
{
	bool plain = false;

	for (size_t i = 0; i < cfg->nservers; i++)
		plain = plain || cfg->servers[i].kind == CONF_UDP ||
			cfg->servers[i].kind == CONF_TCP;
	for (size_t i = 0; i < n && !plain; i++)
		if (servers[i].lookup)
			return errf(ld->err, ld->errlen,
				    "%s:%d: %s: its address is looked up "
				    "through the plain (udp:// or tcp://) "
				    "servers of upstream.servers, and there "
				    "are none: add one, or give the address "
				    "as https://%s...#ADDR",
				    cfg->path, servers[i].line, servers[i].text,
				    servers[i].host);
	return true;
}

static bool check_lookups(struct loader *ld, const struct conf *cfg)
{
	if (!lookup_in(ld, cfg, cfg->servers, cfg->nservers))
		return false;
	for (size_t i = 0; i < cfg->nforwards; i++)
		if (!lookup_in(ld, cfg, cfg->forwards[i].servers,
			       cfg->forwards[i].nservers))
			return false;
	for (size_t i = 0; i < cfg->nclients; i++)
		if (!lookup_in(ld, cfg, cfg->clients[i].servers,
			       cfg->clients[i].nservers))
			return false;
	return true;
}

struct conf *conf_load(const char *path, const char *const *override,
			   size_t n_override, char *err, size_t errlen)
{
	static const char *const known[] = {
		"listen",	 "upstream",	      "zones",
		"edns_size",	 "tcp",		      "forward",
		"private_local", "rebind_protection", "rebind_ok",
		"block",	 "access",	      "user",
		"cache",	 "threads",	      "limits",
		"control",	 "control_mode",      "control_group",
		"state_dir",	 "clients",	      "tls",
		/* the query log */
		"log_queries", "log_max_size", "log_keep", "log_queue",
		"log_privacy", "metrics",
		"dnstap",	 "dnstap_identity",   "dnstap_version",
		NULL};
	struct loader ld = {err, errlen, path, path, NULL, ""};
	struct conf *cfg = ld_calloc(&ld, 1, sizeof(*cfg));
	config_t c;
	int64_t edns = 1232, threads = 0;
	bool ok = false;

	if (!cfg)
		return NULL;
	cfg->private_local = true;
	cfg->rebind_protection = true;
	if (!(cfg->path = ld_strdup(&ld, path))) {
		conf_free(cfg);
		return NULL;
	}
	if (!read_file(&ld, &c, path))
		goto out;
	config_setting_t *root = config_root_setting(&c);
	if (!check_names(&ld, root, known, NULL) ||
	    !load_listen(&ld, root, cfg, override, n_override) ||
	    !load_upstream(&ld, root, cfg) ||
	    !get_int(&ld, root, "edns_size", 512, 4096, &edns) ||
	    !get_int(&ld, root, "threads", 0, CONF_MAX_THREADS, &threads) ||
	    !load_tcp(&ld, root, cfg) || !load_forwards(&ld, root, cfg) ||
	    !get_bool(&ld, root, "private_local", &cfg->private_local) ||
	    !get_bool(&ld, root, "rebind_protection",
		      &cfg->rebind_protection) ||
	    !get_string_list(&ld, root, "rebind_ok", &cfg->rebind_ok,
			     &cfg->nrebind_ok, NULL) ||
	    !load_block(&ld, root, cfg) || !load_access(&ld, root, cfg) ||
	    !load_user(&ld, root, cfg) || !load_cache(&ld, root, cfg) ||
	    !load_limits(&ld, root, cfg) || !load_control(&ld, root, cfg) ||
	    !load_metrics(&ld, root, cfg) ||
	    !load_dnstap(&ld, root, cfg) ||
	    !load_state_dir(&ld, root, cfg) || !load_tls(&ld, root, cfg) ||
	    !load_clients(&ld, root, cfg) || !check_loops(&ld, cfg) ||
	    !load_query_log(&ld, root, cfg) ||
	    !check_lookups(&ld, cfg) || !load_zones(&ld, root, cfg))
		goto out;
	cfg->edns_size = (int)edns;
	cfg->threads = (int)threads;
	ok = true;
out:
	config_destroy(&c);
	free(ld.text);
	if (!ok) {
		conf_free(cfg);
		return NULL;
	}
	return cfg;
}

void conf_free(struct conf *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nzones; i++) {
		struct conf_zone *z = &cfg->zones[i];
		for (size_t j = 0; j < z->nrecords; j++) {
			free(z->records[j].name);
			free(z->records[j].type);
			free(z->records[j].data);
		}
		free(z->records);
		free_strings(z->reverse, z->nreverse);
		free(z->origin);
		free(z->path);
	}
	free(cfg->zones);
	for (size_t i = 0; i < cfg->nforwards; i++) {
		free(cfg->forwards[i].domain);
		free(cfg->forwards[i].servers);
	}
	free(cfg->forwards);
	free_strings(cfg->rebind_ok, cfg->nrebind_ok);
	free_strings(cfg->block.lists, cfg->block.nlists);
	free_strings(cfg->block.domains, cfg->block.ndomains);
	free_strings(cfg->block.allow, cfg->block.nallow);
	free_strings(cfg->block.regex, cfg->block.nregex);
	free(cfg->block.ca);
	free(cfg->state_dir);
	for (size_t i = 0; i < cfg->nclients; i++) {
		struct conf_client *c = &cfg->clients[i];
		free(c->name);
		free(c->match);
		free_strings(c->match_text, c->nmatch);
		free_strings(c->block.lists, c->block.nlists);
		free_strings(c->block.domains, c->block.ndomains);
		free_strings(c->block.allow, c->block.nallow);
		free_strings(c->block.regex, c->block.nregex);
		free(c->servers);
	}
	free(cfg->clients);
	free(cfg->access);
	free(cfg->user);
	free(cfg->control);
	free(cfg->control_group);
	free(cfg->dnstap);
	free(cfg->dnstap_identity);
	free(cfg->dnstap_version);
	free(cfg->tls_ca);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->log_queries);
	free(cfg->listen);
	free(cfg->servers);
	free(cfg->path);
	free(cfg);
}
