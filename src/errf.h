/*
 * errf.h - the one way to format an error message into a caller's buffer.
 *
 * Every message that names something read from a file or a packet goes
 * through here with a literal format, so the compiler checks each call
 * (format attribute, -Wformat=2 -Wformat-nonliteral in configure.ac).
 * Text from files and packets is an argument ("%s"), never the format:
 * a '%' in a zone record once became a printf directive and crashed the
 * daemon.
 */
#ifndef SPLITDNS_ERRF_H
#define SPLITDNS_ERRF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Format into err (len bytes, always NUL-terminated, cut when too long;
 * nothing is written when err is NULL or len is 0).  Returns false, so
 * that a check can end in "return errf(...)".
 */
bool errf(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* errf with a va_list, for wrappers that find the message's place. */
bool verrf(char *err, size_t len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* verrf prefixed with where: "file:line: message", or "file: message"
 * when line is 0. */
bool verrf_at(char *err, size_t len, const char *file, unsigned line,
	      const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

#endif
