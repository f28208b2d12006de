/*
 * errf.c - format an error message into a caller's buffer (see errf.h).
 */
#include <config.h>

#include <stdio.h>

#include "errf.h"

/* Room for any message of the loaders (conf.h's CONF_ERR_MAX). */
#define ERRF_MSG_MAX 1024

bool verrf(char *err, size_t len, const char *fmt, va_list ap)
{
	if (err && len)
		vsnprintf(err, len, fmt, ap);
	return false;
}

bool verrf_at(char *err, size_t len, const char *file, unsigned line,
	      const char *fmt, va_list ap)
{
	char msg[ERRF_MSG_MAX];

	verrf(msg, sizeof(msg), fmt, ap);
	if (line)
		return errf(err, len, "%s:%u: %s", file, line, msg);
	return errf(err, len, "%s: %s", file, msg);
}

bool errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verrf(err, len, fmt, ap);
	va_end(ap);
	return false;
}
