/*
 * fetch.c - download subscribed blocklists with libcurl into state_dir,
 * and keep the time table of their refreshes.
 *
 * This is the only file that includes <curl/curl.h>.  One easy handle per
 * download, blocking, on the build thread; nothing here touches a
 * serving loop or the lists themselves.  Files: STATE_DIR/lists/NAME.list
 * (the last good copy), NAME.meta (its validators and when it was last
 * confirmed), and a NAME.list.XXXXXX temporary file while a download
 * runs, renamed over the copy only once it is complete and good.
 */
#include <config.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "errf.h"
#include "fetch.h"
#include "hash.h"
#include "loop.h"

/* The first retry after a failure, in seconds (doubling after that). */
#define FETCH_BACKOFF_MIN 60

bool fetch_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void fetch_global_cleanup(void) { curl_global_cleanup(); }

bool fetch_is_url(const char *entry)
{
	return strncasecmp(entry, "http://", 7) == 0 ||
	       strncasecmp(entry, "https://", 8) == 0;
}

/* What libcurl's parser lets through but a list URL must not have. */
static const char *plain_faults(const char *url)
{
	if (!fetch_is_url(url))
		return "not an http:// or https:// URL";
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return "white space or a control character in the URL";
	/* libcurl reads "http:///x" as host x: we want what is written. */
	const char *auth = strstr(url, "://") + 3;
	if (!*auth || *auth == '/' || *auth == '?' || *auth == '#')
		return "the URL has no host";
	return NULL;
}

bool fetch_check_url(const char *url, const char **why)
{
	char *host = NULL;
	CURLU *u;

	if ((*why = plain_faults(url)))
		return false;
	if (!(u = curl_url())) {
		*why = "out of memory";
		return false;
	}
	/* No scheme guessing, no default: the text says http(s)://. */
	CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc != CURLUE_OK)
#if LIBCURL_VERSION_NUM >= 0x075000
		*why = curl_url_strerror(rc); /* static text */
#else
		*why = "not a valid URL";
#endif
	else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		 !host || !*host)
		*why = "the URL has no host";
	curl_free(host);
	curl_url_cleanup(u);
	return *why == NULL;
}

char *fetch_cache_path(const char *state_dir, const char *url,
		       const char *suffix)
{
	const char *p = strstr(url, "://");
	size_t n = strlen(url);
	char name[97];
	size_t k = 0;

	p = p ? p + 3 : url;
	for (; *p && k < sizeof(name) - 1; p++) {
		unsigned char c = (unsigned char)*p;
		bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '.' || c == '-' ||
			    c == '_';
		name[k++] = keep ? (char)c : '_';
	}
	name[k] = '\0';
	/* Two fixed seeds: the name must be the same in every run. */
	uint32_t h1 = hash_bytes(0, (const uint8_t *)url, n);
	uint32_t h2 = hash_bytes(0x9e3779b9u, (const uint8_t *)url, n);
	size_t len = strlen(state_dir) + sizeof("/lists/") + k + 1 + 16 +
		     sizeof(".list") + strlen(suffix);
	char *out = malloc(len);
	if (out)
		snprintf(out, len,
			 "%s/lists/%s-%08" PRIx32 "%08" PRIx32 ".list%s",
			 state_dir, name, h1, h2, suffix);
	return out;
}

/* ---- the sidecar: "etag VALUE", "last-modified VALUE", "fetched N" ---- */

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return false;
	return true;
}

/* Copy a header's value (after "name:"), trimmed, into out; one too
 * long for out becomes "". */
static void header_value(const char *v, size_t len, char *out, size_t cap)
{
	while (len && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
		       v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= cap)
		len = 0; /* better no validator than a cut one */
	memcpy(out, v, len);
	out[len] = '\0';
}

bool fetch_meta_read(const char *path, struct fetch_meta *m)
{
	FILE *f = fopen(path, "r");
	char line[512];

	memset(m, 0, sizeof(*m));
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "etag ", 5) == 0)
			header_value(line + 5, strlen(line + 5), m->etag,
				     sizeof(m->etag));
		else if (strncmp(line, "last-modified ", 14) == 0)
			header_value(line + 14, strlen(line + 14),
				     m->last_modified,
				     sizeof(m->last_modified));
		else if (strncmp(line, "fetched ", 8) == 0)
			m->fetched = strtoll(line + 8, NULL, 10);
	}
	fclose(f);
	return true;
}

/* Write len bytes of text to path through path.XXXXXX and rename(). */
static bool replace_file(const char *path, const char *text, size_t len)
{
	size_t n = strlen(path) + 8;
	char *tmp = malloc(n);
	bool ok = false;
	int fd;

	if (!tmp)
		return false;
	snprintf(tmp, n, "%s.XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0) {
		free(tmp);
		return false;
	}
	ok = write(fd, text, len) == (ssize_t)len && fchmod(fd, 0644) == 0;
	ok = close(fd) == 0 && ok && rename(tmp, path) == 0;
	if (!ok) {
		int e = errno;
		unlink(tmp);
		errno = e;
	}
	free(tmp);
	return ok;
}

bool fetch_meta_write(const char *path, const struct fetch_meta *m)
{
	char text[sizeof(m->etag) + sizeof(m->last_modified) + 64];
	int n = snprintf(text, sizeof(text),
			 "etag %s\nlast-modified %s\nfetched %" PRId64 "\n",
			 printable(m->etag) ? m->etag : "",
			 printable(m->last_modified) ? m->last_modified : "",
			 m->fetched);

	return n > 0 && replace_file(path, text, (size_t)n);
}

/* ---- one download ---- */

struct transfer {
	const atomic_bool *cancel;
	FILE *out;
	curl_off_t size, max;
	bool too_big;
	bool conditional;      /* we have a copy and asked with its tags */
	struct fetch_meta got; /* validators of the last response */
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n;

	if ((curl_off_t)len > t->max - t->size) {
		t->too_big = true;
		return 0; /* CURLE_WRITE_ERROR ends the transfer */
	}
	t->size += (curl_off_t)len;
	return fwrite(data, 1, len, t->out);
}

/* Called by libcurl about once a second and on every chunk: a non-zero
 * return aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	const struct transfer *t = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return t->cancel && atomic_load(t->cancel);
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n;

	/* A redirect or a 100 Continue starts a new set of headers. */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
		memset(&t->got, 0, sizeof(t->got));
	else if (len > 5 && strncasecmp(data, "etag:", 5) == 0)
		header_value(data + 5, len - 5, t->got.etag,
			     sizeof(t->got.etag));
	else if (len > 14 && strncasecmp(data, "last-modified:", 14) == 0)
		header_value(data + 14, len - 14, t->got.last_modified,
			     sizeof(t->got.last_modified));
	return len;
}

static bool make_dirs(const char *state_dir, char *why, size_t whylen)
{
	size_t n = strlen(state_dir) + sizeof("/lists");
	char *dir = malloc(n);
	bool ok;

	if (!dir)
		return errf(why, whylen, "%s", "out of memory");
	snprintf(dir, n, "%s/lists", state_dir);
	ok = (mkdir(state_dir, 0755) == 0 || errno == EEXIST) &&
	     (mkdir(dir, 0755) == 0 || errno == EEXIST);
	if (!ok)
		errf(why, whylen, "%s: %s", dir, strerror(errno));
	free(dir);
	return ok;
}

/* Set the handle up for url; false when libcurl refuses an option. */
static bool setup(CURL *c, const struct conf *cfg, const char *url,
		  struct transfer *t, struct curl_slist *hdrs, char *errbuf)
{
	const struct conf_block *b = &cfg->block;
	bool ok = true;

#define SET(opt, val) (ok = ok && curl_easy_setopt(c, opt, val) == CURLE_OK)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, 5L);
	SET(CURLOPT_TIMEOUT, (long)b->fetch_timeout);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b->max_list_size);
	SET(CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl can decode */
	SET(CURLOPT_USERAGENT, "splitdns/" PACKAGE_VERSION);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, t);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, t);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, t);
	SET(CURLOPT_NOPROGRESS, 0L);
	if (hdrs)
		SET(CURLOPT_HTTPHEADER, hdrs);
	/* Verification stays on (libcurl's default); a CA file only
	 * replaces the system store. */
	if (b->ca)
		SET(CURLOPT_CAINFO, b->ca);
#undef SET
	return ok;
}

/* The conditional headers for a copy described by m (RFC 9110 13.1). */
static struct curl_slist *conditions(const struct fetch_meta *m, bool *oom)
{
	struct curl_slist *h = NULL, *n;
	char line[sizeof(m->etag) + sizeof(m->last_modified) + 32];

	*oom = false;
	if (m->etag[0]) {
		snprintf(line, sizeof(line), "If-None-Match: %s", m->etag);
		if (!(n = curl_slist_append(h, line)))
			goto oom;
		h = n;
	}
	if (m->last_modified[0]) {
		snprintf(line, sizeof(line), "If-Modified-Since: %s",
			 m->last_modified);
		if (!(n = curl_slist_append(h, line)))
			goto oom;
		h = n;
	}
	return h;
oom:
	*oom = true;
	curl_slist_free_all(h);
	return NULL;
}

/* After a transfer: keep the body (200), keep the copy (304), or fail
 * with the reason in why. */
static enum fetch_result finish(CURL *c, CURLcode rc, struct transfer *t,
				const char *errbuf, const char *copy,
				const char *tmp, const char *metapath,
				char *why, size_t whylen)
{
	long status = 0;

	if (t->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		errf(why, whylen,
		     "larger than block.max_list_size (%" PRId64 " bytes)",
		     (int64_t)t->max);
		return FETCH_FAILED;
	}
	if (rc != CURLE_OK) {
		errf(why, whylen, "%s",
		     errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return FETCH_FAILED;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	t->got.fetched = (int64_t)time(NULL);
	if (status == 304 && !t->conditional) {
		errf(why, whylen, "%s", "HTTP status 304 without a condition");
		return FETCH_FAILED;
	}
	if (status == 304) {
		struct fetch_meta old;
		fetch_meta_read(metapath, &old);
		/* RFC 9110 15.4.5: a 304 may carry new validators; those it
		 * leaves out stay as they were. */
		if (!t->got.etag[0])
			memcpy(t->got.etag, old.etag, sizeof(old.etag));
		if (!t->got.last_modified[0])
			memcpy(t->got.last_modified, old.last_modified,
			       sizeof(old.last_modified));
		if (!fetch_meta_write(metapath, &t->got)) {
			errf(why, whylen, "%s: %s", metapath, strerror(errno));
			return FETCH_FAILED;
		}
		return FETCH_UNCHANGED;
	}
	if (status != 200) {
		errf(why, whylen, "HTTP status %ld", status);
		return FETCH_FAILED;
	}
	if (fflush(t->out) != 0 || fsync(fileno(t->out)) != 0 ||
	    fchmod(fileno(t->out), 0644) != 0 || rename(tmp, copy) != 0) {
		errf(why, whylen, "%s: %s", copy, strerror(errno));
		return FETCH_FAILED;
	}
	/* The copy is in place; a sidecar that cannot be written only
	 * costs the next request its condition. */
	if (!fetch_meta_write(metapath, &t->got))
		unlink(metapath);
	return FETCH_NEW;
}

enum fetch_result fetch_list(const struct conf *cfg, const char *url,
			     const atomic_bool *cancel, char *why,
			     size_t whylen)
{
	char *copy = fetch_cache_path(cfg->state_dir, url, "");
	char *metapath = fetch_cache_path(cfg->state_dir, url, ".meta");
	char *tmp = fetch_cache_path(cfg->state_dir, url, ".XXXXXX");
	char errbuf[CURL_ERROR_SIZE] = "";
	struct transfer t = {.cancel = cancel,
			     .max = (curl_off_t)cfg->block.max_list_size};
	struct curl_slist *hdrs = NULL;
	struct fetch_meta m;
	enum fetch_result res = FETCH_FAILED;
	CURL *c = NULL;
	bool oom = false;
	int fd = -1;

	if (!copy || !metapath || !tmp) {
		errf(why, whylen, "%s", "out of memory");
		goto out;
	}
	if (!make_dirs(cfg->state_dir, why, whylen))
		goto out;
	/* Conditions only when there is a copy to keep. */
	if (access(copy, R_OK) == 0 && fetch_meta_read(metapath, &m))
		hdrs = conditions(&m, &oom);
	t.conditional = hdrs != NULL;
	if (oom || !(c = curl_easy_init())) {
		errf(why, whylen, "%s", "out of memory");
		goto out;
	}
	if ((fd = mkstemp(tmp)) < 0 || !(t.out = fdopen(fd, "w"))) {
		errf(why, whylen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (!setup(c, cfg, url, &t, hdrs, errbuf)) {
		errf(why, whylen, "%s", "libcurl refused an option");
		goto out;
	}
	res = finish(c, curl_easy_perform(c), &t, errbuf, copy, tmp, metapath,
		     why, whylen);
out:
	if (t.out)
		fclose(t.out);
	if (fd >= 0)
		close(fd);
	if (tmp && res != FETCH_NEW)
		unlink(tmp);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(copy);
	free(metapath);
	free(tmp);
	return res;
}

/* ---- the time table ---- */

struct sched_entry {
	char *url;
	uint64_t due_ms;
	int64_t backoff; /* seconds of the last retry wait, 0: no failure */
	bool fresh;	 /* url allocated by this sync (for its undo) */
};

struct fetch_sched {
	struct sched_entry *e;
	size_t n;
};

struct fetch_sched *fetch_sched_new(void)
{
	return calloc(1, sizeof(struct fetch_sched));
}

void fetch_sched_free(struct fetch_sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->e[i].url);
	free(s->e);
	free(s);
}

static struct sched_entry *find(struct sched_entry *e, size_t n,
				const char *url)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].url, url) == 0)
			return &e[i];
	return NULL;
}

/* When a URL first seen now is due: when its copy is refresh old. */
static uint64_t first_due(const struct conf *cfg, const char *url,
			  uint64_t now_ms, int64_t now_unix)
{
	char *copy = fetch_cache_path(cfg->state_dir, url, "");
	char *metapath = fetch_cache_path(cfg->state_dir, url, ".meta");
	struct fetch_meta m = {0};
	uint64_t due = now_ms;

	if (copy && metapath && access(copy, R_OK) == 0 &&
	    fetch_meta_read(metapath, &m) && m.fetched > 0) {
		int64_t left = m.fetched + cfg->block.refresh - now_unix;
		if (left > cfg->block.refresh) /* a clock set back */
			left = cfg->block.refresh;
		if (left > 0)
			due = now_ms + (uint64_t)left * 1000;
	}
	free(copy);
	free(metapath);
	return due;
}

bool fetch_sched_sync(struct fetch_sched *s, const struct conf *cfg,
		      uint64_t now_ms, int64_t now_unix)
{
	size_t total = cfg->block.nlists;
	for (size_t c = 0; c < cfg->nclients; c++)
		total += cfg->clients[c].block.nlists;
	struct sched_entry *e = calloc(total ? total : 1, sizeof(*e));
	size_t n = 0;

	if (!e)
		return false;
	/* The top-level lists, then each client group's (a URL named in
	 * several is fetched once). */
	for (size_t c = 0, i = 0; c <= cfg->nclients;) {
		const struct conf_block *b =
		    c == 0 ? &cfg->block : &cfg->clients[c - 1].block;
		if (i >= b->nlists) {
			c++;
			i = 0;
			continue;
		}
		const char *url = b->lists[i++];
		const struct sched_entry *old;
		if (!fetch_is_url(url) || find(e, n, url))
			continue;
		if ((old = find(s->e, s->n, url))) {
			e[n++] = *old; /* its string moves over below */
			continue;
		}
		e[n] = (struct sched_entry){
		    strdup(url), first_due(cfg, url, now_ms, now_unix), 0,
		    true};
		if (!e[n].url) {
			for (size_t j = 0; j < n; j++)
				if (e[j].fresh)
					free(e[j].url);
			free(e);
			return false;
		}
		n++;
	}
	for (size_t i = 0; i < s->n; i++)
		if (!find(e, n, s->e[i].url))
			free(s->e[i].url);
	for (size_t i = 0; i < n; i++)
		e[i].fresh = false;
	free(s->e);
	s->e = e;
	s->n = n;
	return true;
}

uint64_t fetch_sched_next(const struct fetch_sched *s)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].due_ms < next)
			next = s->e[i].due_ms;
	return next;
}

bool fetch_sched_run(struct fetch_sched *s, const struct conf *cfg, bool force,
		     uint64_t now_ms, const atomic_bool *cancel,
		     fetch_report_fn report, void *ctx)
{
	int64_t refresh = cfg->block.refresh;
	char why[CURL_ERROR_SIZE + 128], line[CURL_ERROR_SIZE + 2048];
	bool changed = false;

	for (size_t i = 0; i < s->n; i++) {
		struct sched_entry *e = &s->e[i];
		if (cancel && atomic_load(cancel))
			break;
		if (!force && e->due_ms > now_ms)
			continue;
		why[0] = '\0';
		enum fetch_result r =
		    fetch_list(cfg, e->url, cancel, why, sizeof(why));
		uint64_t done = loop_now_ms();
		if (r == FETCH_FAILED) {
			e->backoff =
			    e->backoff ? e->backoff * 2 : FETCH_BACKOFF_MIN;
			if (e->backoff > refresh)
				e->backoff = refresh;
			e->due_ms = done + (uint64_t)e->backoff * 1000;
			snprintf(line, sizeof(line),
				 "blocklist %s: download failed, keeping the "
				 "last good copy, next try in %" PRId64
				 " s: %s",
				 e->url, e->backoff, why);
			report(ctx, 1, line);
			continue;
		}
		e->backoff = 0;
		e->due_ms = done + (uint64_t)refresh * 1000;
		changed = changed || r == FETCH_NEW;
		snprintf(line, sizeof(line), "blocklist %s: %s", e->url,
			 r == FETCH_NEW ? "downloaded a new copy"
					: "not modified");
		report(ctx, 0, line);
	}
	return changed;
}
