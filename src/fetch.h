/*
 * fetch.h - list subscriptions: block.lists entries that are http:// or
 * https:// URLs, downloaded with libcurl into state_dir, and when to
 * download each of them again.
 *
 * Every download is a blocking libcurl transfer, so these functions run
 * on the reload/refresh thread only, never on a serving loop.  A
 * download goes to a temporary file beside the cached copy and replaces
 * it (rename) only when it is whole, within block.max_list_size, and the
 * answer was 200; 304 Not Modified keeps the copy.  The entity tag and
 * Last-Modified of the copy are kept in a small sidecar file so that the
 * next request is conditional (RFC 9110 13.1.2, 13.1.3).  The block
 * module reads the cached copy like any list file; this module parses
 * nothing of the list itself.  It logs nothing: failures go to the
 * caller's report function.
 */
#ifndef SPLITDNS_FETCH_H
#define SPLITDNS_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;

/* Call once at start, before any thread exists (curl_global_init), and
 * fetch_global_cleanup once at the end.  Returns false when libcurl
 * cannot start. */
bool fetch_global_init(void);
void fetch_global_cleanup(void);

/* Is this block.lists entry a URL (http:// or https://, any case)? */
bool fetch_is_url(const char *entry);

/* Check a URL's syntax without any network access: http or https, a
 * host, an optional port, no white space.  Returns false with a static
 * reason in *why. */
bool fetch_check_url(const char *url, const char **why);

/*
 * Where the cached copy of url lives under state_dir:
 * "STATE_DIR/lists/NAME.list", NAME being the URL's host and path with
 * every character but letters, digits, '.', '-' and '_' made '_' (cut to
 * 96 characters) and a 64-bit hash of the whole URL, so that two URLs
 * never share a file.  suffix ("" or ".meta") is appended.  Returns a new
 * string (caller frees) or NULL when out of memory.
 */
char *fetch_cache_path(const char *state_dir, const char *url,
		       const char *suffix);

/* The sidecar of a cached copy. */
struct fetch_meta {
	char etag[256];		 /* "" when the server sent none */
	char last_modified[128]; /* the header's text, "" when none */
	int64_t fetched;	 /* Unix time of the last 200 or 304, 0:
				    never */
};

/* Read the sidecar at path into *m (zeroed when absent or unreadable).
 * Returns false when there is none. */
bool fetch_meta_read(const char *path, struct fetch_meta *m);

/* Write *m to path through a temporary file and rename(); false with
 * errno set on failure.  Header values with control characters are
 * written as "" (they came from the network). */
bool fetch_meta_write(const char *path, const struct fetch_meta *m);

/* What one download did. */
enum fetch_result {
	FETCH_NEW,	 /* 200: the cached copy was replaced */
	FETCH_UNCHANGED, /* 304: the cached copy is still good */
	FETCH_FAILED,	 /* the copy (if any) is kept; why says why */
};

/*
 * Download cfg's list url (one of cfg->block.lists) into its cached
 * copy under cfg->state_dir, conditionally when a copy exists, within
 * cfg->block.fetch_timeout seconds and cfg->block.max_list_size bytes,
 * verifying https certificates against the system store or
 * cfg->block.ca.  On FETCH_FAILED, why holds the reason (curl's error
 * text, "HTTP status 500", "larger than ... bytes", a file error).
 * Blocking; allocates and frees one libcurl handle.  The transfer gives
 * up soon after *cancel (may be NULL) becomes true: shutting down.
 */
enum fetch_result fetch_list(const struct conf *cfg, const char *url,
			     const atomic_bool *cancel, char *why,
			     size_t whylen);

/* ---- when to download ---- */

/* One time table for the URLs of the configuration in force, owned by
 * main and used by one thread at a time (the build thread while it
 * runs, main between builds). */
struct fetch_sched;

struct fetch_sched *fetch_sched_new(void);
void fetch_sched_free(struct fetch_sched *s);

/*
 * Make the table hold exactly cfg's URL lists (the top level's and every
 * client group's, each URL once).  A URL already in it keeps
 * its time and backoff; a new one is due when its cached copy is
 * block.refresh seconds old (at once when it was never fetched).
 * now_ms is the monotonic clock (loop_now_ms), now_unix the wall clock.
 * Returns false when out of memory (the table is then left as it was).
 */
bool fetch_sched_sync(struct fetch_sched *s, const struct conf *cfg,
		      uint64_t now_ms, int64_t now_unix);

/* The earliest due time (monotonic ms) of the table, UINT64_MAX when it
 * holds no URL. */
uint64_t fetch_sched_next(const struct fetch_sched *s);

/* Report one line: warning != 0 for failures. */
typedef void (*fetch_report_fn)(void *ctx, int warning, const char *line);

/*
 * Download every URL of cfg that is due at now_ms (all of them when
 * force), and set its next time: block.refresh seconds on success; on
 * failure 60 seconds, doubling with each failure in a row, at most
 * block.refresh.  report hears one line per download (failures with the
 * URL and the reason).  Returns true when at least one cached copy is
 * new, so the block set must be rebuilt.  The table must have been
 * synced with cfg.  cancel: as for fetch_list; no download starts once
 * it is true.
 */
bool fetch_sched_run(struct fetch_sched *s, const struct conf *cfg, bool force,
		     uint64_t now_ms, const atomic_bool *cancel,
		     fetch_report_fn report, void *ctx);

#endif
