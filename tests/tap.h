/*
 * tap.h - a header-only Test Anything Protocol helper for the C unit tests.
 *
 * Each check prints one "ok N - name" or "not ok N - name" line, with the
 * caller's file:line and what was got and expected as "#" diagnostics on
 * failure; done_testing() prints the plan "1..N" last, which the TAP
 * producer may do (automake's tap-driver accepts it).
 *
 * The counters live in one static struct: each test program is a single
 * translation unit, so this is all the state there is.
 */
#ifndef SPLITDNS_TAP_H
#define SPLITDNS_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static struct {
	int run;
	int failed;
} tap;

static inline bool tap_vok(bool pass, const char *file, int line,
			   const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static inline bool tap_vok(bool pass, const char *file, int line,
			   const char *fmt, va_list ap)
{
	tap.run++;
	printf("%sok %d - ", pass ? "" : "not ", tap.run);
	vprintf(fmt, ap);
	printf("\n");
	if (!pass) {
		printf("#   Failed test at %s line %d.\n", file, line);
		tap.failed++;
	}
	fflush(stdout);
	return pass;
}

static inline bool tap_ok(bool pass, const char *file, int line,
			  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline bool tap_ok(bool pass, const char *file, int line,
			  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pass = tap_vok(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

/* A diagnostic line, shown by the harness but never a result. */
static inline void diag(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static inline void diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

static inline void tap_hex(const char *what, const void *p, size_t len)
{
	const unsigned char *b = p;

	printf("#   %s (%zu bytes):", what, len);
	for (size_t i = 0; i < len; i++)
		printf("%s%02x", i % 16 ? " " : "\n#     ", b[i]);
	printf("\n");
}

static inline bool tap_is_int(long long got, long long want, const char *file,
			      int line, const char *name)
{
	bool pass = tap_ok(got == want, file, line, "%s", name);
	if (!pass)
		printf("#          got: %lld\n#     expected: %lld\n", got,
		       want);
	return pass;
}

static inline bool tap_is_mem(const void *got, size_t glen, const void *want,
			      size_t wlen, const char *name, const char *file,
			      int line)
{
	bool pass = glen == wlen && (glen == 0 || memcmp(got, want, glen) == 0);
	tap_ok(pass, file, line, "%s", name);
	if (!pass) {
		tap_hex("got", got, glen);
		tap_hex("expected", want, wlen);
	}
	return pass;
}

static inline bool tap_is_str(const char *got, const char *want,
			      const char *file, int line, const char *name)
{
	bool pass = got && want ? strcmp(got, want) == 0 : got == want;
	tap_ok(pass, file, line, "%s", name);
	if (!pass)
		printf("#          got: '%s'\n#     expected: '%s'\n",
		       got ? got : "(null)", want ? want : "(null)");
	return pass;
}

/* got contains want as a substring. */
static inline bool tap_like(const char *got, const char *want, const char *file,
			    int line, const char *name)
{
	bool pass = got && strstr(got, want) != NULL;
	tap_ok(pass, file, line, "%s", name);
	if (!pass)
		printf(
		    "#          got: '%s'\n#     expected to contain: '%s'\n",
		    got ? got : "(null)", want);
	return pass;
}

/* Mark the following checks as known failures (reason), or stop (NULL). */

/* Print the plan; 0 when every check passed, else 1. */
static inline int done_testing(void)
{
	printf("1..%d\n", tap.run);
	if (tap.failed)
		printf("# Looks like you failed %d test%s of %d.\n", tap.failed,
		       tap.failed == 1 ? "" : "s", tap.run);
	fflush(stdout);
	return tap.failed ? 1 : 0;
}

#define ok(cond, ...) tap_ok((cond) != 0, __FILE__, __LINE__, __VA_ARGS__)
#define is_int(a, b, name)                                                     \
	tap_is_int((long long)(a), (long long)(b), __FILE__, __LINE__, (name))
/* Variadic so that an argument may be a macro giving "pointer, length":
 * is_mem(a, alen, b, blen, name). */
#define is_mem(...) tap_is_mem(__VA_ARGS__, __FILE__, __LINE__)
#define is_str(a, b, name) tap_is_str((a), (b), __FILE__, __LINE__, (name))
#define like(a, b, name) tap_like((a), (b), __FILE__, __LINE__, (name))

#endif
