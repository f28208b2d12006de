/*
 * block.c - load the configured blocklists.
 *
 * The lists module does the parsing and the lookups; this file knows the
 * configuration's shape, reports per source, and for --explain rebuilds
 * one small set per source to say which of them covers a name (the server
 * keeps a single merged set, which cannot say).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "conf.h"
#include "errf.h"
#include "fetch.h"
#include "lists.h"

static bool add_domains(struct lists *l, char **names, size_t n,
			enum lists_kind kind, const char *what,
			const struct conf *cfg, int line, char *err,
			size_t errlen)
{
	const char *why;

	for (size_t i = 0; i < n; i++)
		if (!lists_add(l, names[i], kind, &why))
			return errf(err, errlen, "%s:%d: %s '%s': %s",
				    cfg->path, line, what, names[i], why);
	return true;
}

static bool add_file(struct lists *l, const char *path, const char *name,
		     block_report_fn report, void *ctx, char *err,
		     size_t errlen, struct block_source *src,
		     const char *cfg_path, int cfg_line)
{
	struct lists_file_stats st;
	char msgs[512], line[2400];

	if (!lists_load_file(l, path, &st, msgs, sizeof(msgs))) {
		msgs[strcspn(msgs, "\n")] = '\0';
		return errf(err, errlen, "%s:%d: block.lists: %s", cfg_path,
			    cfg_line, msgs);
	}
	if (src) {
		src->entries = st.entries;
		src->allows = st.allows;
		src->bad = st.bad + st.skipped_options;
	}
	if (!report)
		return true;
	snprintf(line, sizeof(line),
		 "blocklist %s: %zu lines, %zu names, %zu allowed, %zu "
		 "ignored, %zu bad, %zu with unsupported options, %zu "
		 "regular expressions, %zu $badfilter",
		 name, st.lines, st.entries, st.allows, st.ignored, st.bad,
		 st.skipped_options, st.regexes, st.badfilters);
	report(ctx, 0, line);
	for (char *m = msgs, *nl; *m; m = nl + 1) {
		if (!(nl = strchr(m, '\n')))
			nl = m + strlen(m) - 1;
		snprintf(line, sizeof(line), "%.*s", (int)(nl - m), m);
		report(ctx, 1, line);
	}
	return true;
}

/* block.regex: PCRE2 patterns, one source of their own.  A pattern that
 * does not compile is the configuration's mistake: file:line. */
static bool add_regexes(struct lists *l, const struct conf *cfg,
			const struct conf_block *b, char *err, size_t errlen)
{
	char why[200];

	for (size_t i = 0; i < b->nregex; i++)
		if (!lists_add_regex(l, b->regex[i], why, sizeof(why)))
			return errf(err, errlen, "%s:%d: block.regex '%s': %s",
				    cfg->path, b->regex_line, b->regex[i],
				    why);
	return true;
}

/*
 * A subscribed list (a URL) is read from its cached copy.  One that was
 * never downloaded, or whose copy cannot be read, is skipped with a
 * warning: a boot without network must still start, and block with what
 * it has.  Returns false only when out of memory.
 */
static bool add_url(struct lists *l, const struct conf *cfg,
		    const struct conf_block *b, const char *url,
		    block_report_fn report, void *ctx, char *err,
		    size_t errlen, struct block_source *src)
{
	char *copy = fetch_cache_path(cfg->state_dir, url, "");
	char line[2400];
	bool ok;

	if (!copy)
		return errf(err, errlen, "%s", "out of memory");
	if (access(copy, R_OK) != 0) {
		if (report) {
			snprintf(line, sizeof(line),
				 "blocklist %s: no downloaded copy yet (%s: "
				 "%s), skipped until it is fetched",
				 url, copy, strerror(errno));
			report(ctx, 1, line);
		}
		free(copy);
		return true;
	}
	ok = add_file(l, copy, url, report, ctx, err, errlen, src, cfg->path,
		      b->lists_line);
	free(copy);
	return ok;
}

void block_set_free(struct block_set *b)
{
	if (!b)
		return;
	lists_free(b->lists);
	free(b->src);
	free(b->hits);
	free(b);
}

void block_keep_hits(struct block_set *b, const struct block_set *old)
{
	if (!b || !old)
		return;
	for (unsigned i = 0; i < b->nsrc; i++)
		for (unsigned j = 0; j < old->nsrc; j++)
			if (strcmp(b->src[i].name, old->src[j].name) == 0) {
				b->hits[i] = old->hits[j];
				break;
			}
}

struct block_set *block_load(const struct conf *cfg, block_report_fn report,
			     void *ctx, char *err, size_t errlen)
{
	return block_load_conf(cfg, &cfg->block, report, ctx, err, errlen);
}

struct block_set *block_load_conf(const struct conf *cfg,
				  const struct conf_block *b,
				  block_report_fn report, void *ctx, char *err,
				  size_t errlen)
{
	struct block_set *set;
	struct lists *l;
	char line[256];

	err[0] = '\0';
	if (!b->nlists && !b->ndomains && !b->nregex)
		return NULL; /* allow entries alone block nothing */
	if (!(set = calloc(1, sizeof(*set))) ||
	    !(set->src = calloc(b->nlists + 3, sizeof(*set->src))) ||
	    !(set->lists = l = lists_new())) {
		errf(err, errlen, "%s", "out of memory");
		goto fail;
	}
	set->nsrc = (unsigned)b->nlists + 2;
	set->src[0] = (struct block_source){"block.domains", b->ndomains, 0, 0};
	set->src[1] = (struct block_source){"block.allow", 0, b->nallow, 0};
	if (lists_begin_source(l) < 0 ||
	    !add_domains(l, b->domains, b->ndomains, LISTS_BLOCK,
			 "block.domains", cfg, b->line, err, errlen) ||
	    lists_begin_source(l) < 0 ||
	    !add_domains(l, b->allow, b->nallow, LISTS_ALLOW, "block.allow",
			 cfg, b->line, err, errlen)) {
		if (!err[0])
			errf(err, errlen, "%s", "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < b->nlists; i++) {
		set->src[i + 2].name = b->lists[i];
		if (lists_begin_source(l) < 0) {
			errf(err, errlen,
			     "block.lists: out of memory or more "
			     "than %d files",
			     LISTS_SOURCES_MAX - 2);
			goto fail;
		}
		if (fetch_is_url(b->lists[i])
			    ? !add_url(l, cfg, b, b->lists[i], report, ctx,
				       err, errlen, &set->src[i + 2])
			    : !add_file(l, b->lists[i], b->lists[i], report,
					ctx, err, errlen, &set->src[i + 2],
					cfg->path, b->lists_line))
			goto fail;
	}
	/* After the list files, so that they stay sources 2 + i. */
	if (b->nregex) {
		set->src[set->nsrc++] =
			(struct block_source){"block.regex", b->nregex, 0, 0};
		if (lists_begin_source(l) < 0 ||
		    !add_regexes(l, cfg, b, err, errlen)) {
			if (!err[0])
				errf(err, errlen, "%s", "out of memory");
			goto fail;
		}
	}
	if (!lists_finish(l) ||
	    !(set->hits = calloc(lists_source_count(l), sizeof(*set->hits)))) {
		errf(err, errlen, "%s",
		     "out of memory freezing the blocklists");
		goto fail;
	}
	if (set->nsrc > lists_source_count(l))
		set->nsrc = lists_source_count(l);
	if (report) {
		snprintf(line, sizeof(line),
			 "blocking %zu names, %zu allowed, %zu regular "
			 "expressions, in %.1f MiB",
			 lists_count(l), lists_allow_count(l),
			 lists_regex_count(l),
			 (double)lists_memory(l) / (1024.0 * 1024.0));
		report(ctx, 0, line);
	}
	return set;
fail:
	block_set_free(set);
	return NULL;
}

void block_answer_init(const struct conf *cfg, struct answer_block *out)
{
	block_answer_of(&cfg->block, out);
}

void block_answer_of(const struct conf_block *b, struct answer_block *out)
{
	memset(out, 0, sizeof(*out));
	out->mode = (int)b->mode;
	out->has_a = b->has_a;
	out->has_aaaa = b->has_aaaa;
	memcpy(out->a, b->a, sizeof(out->a));
	memcpy(out->aaaa, b->aaaa, sizeof(out->aaaa));
	out->ttl = (uint32_t)b->ttl;
}

/* The verdict of one source of b alone, for a query of type qtype. */
static enum lists_verdict one(const struct conf *cfg,
			      const struct conf_block *b, char **names,
			      size_t n, enum lists_kind kind, const char *file,
			      bool regex, const uint8_t *name, size_t len,
			      uint16_t qtype)
{
	char err[1024];
	struct lists *l = lists_new();
	struct lists_scratch *sc = lists_scratch_new();
	enum lists_verdict v = LISTS_NONE;
	unsigned src;
	bool ok;

	if (!l || !sc)
		goto out;
	if (regex)
		ok = add_regexes(l, cfg, b, err, sizeof(err));
	else if (!file)
		ok = add_domains(l, names, n, kind, "", cfg, b->line, err,
				 sizeof(err));
	else if (fetch_is_url(file))
		ok = add_url(l, cfg, b, file, NULL, NULL, err, sizeof(err),
			     NULL);
	else
		ok = add_file(l, file, file, NULL, NULL, err, sizeof(err), NULL,
			      cfg->path, b->lists_line);
	if (ok && lists_finish(l))
		v = lists_match_source(l, name, len, qtype, sc, &src);
out:
	lists_scratch_free(sc);
	lists_free(l);
	return v;
}

static const char *const verdicts[] = {"", "blocks", "allows"};

int block_explain(FILE *out, const struct conf *cfg, const uint8_t *name,
		  size_t len, uint16_t qtype)
{
	return block_explain_conf(out, cfg, &cfg->block, name, len, qtype);
}

int block_explain_conf(FILE *out, const struct conf *cfg,
		       const struct conf_block *b, const uint8_t *name,
		       size_t len, uint16_t qtype)
{
	enum lists_verdict v;
	int found = 0;

	if ((v = one(cfg, b, b->domains, b->ndomains, LISTS_BLOCK, NULL, false,
		     name, len, qtype)) != LISTS_NONE &&
	    ++found)
		fprintf(out, "  source: block.domains (%s:%d) %s it\n",
			cfg->path, b->line, verdicts[v]);
	if ((v = one(cfg, b, b->allow, b->nallow, LISTS_ALLOW, NULL, false,
		     name, len, qtype)) != LISTS_NONE &&
	    ++found)
		fprintf(out, "  source: block.allow (%s:%d) %s it\n", cfg->path,
			b->line, verdicts[v]);
	for (size_t i = 0; i < b->nlists; i++)
		if ((v = one(cfg, b, NULL, 0, LISTS_BLOCK, b->lists[i], false,
			     name, len, qtype)) != LISTS_NONE &&
		    ++found)
			fprintf(out, "  source: %s %s it\n", b->lists[i],
				verdicts[v]);
	if (b->nregex &&
	    (v = one(cfg, b, NULL, 0, LISTS_BLOCK, NULL, true, name, len,
		     qtype)) != LISTS_NONE &&
	    ++found)
		fprintf(out, "  source: block.regex (%s:%d) %s it\n",
			cfg->path, b->regex_line, verdicts[v]);
	return found;
}
