/*
 * errf.c - format an error message into a caller's buffer (see errf.h).
 */
#include <config.h>

#include <stdio.h>

#include "errf.h"

bool verrf(char *err, size_t len, const char *fmt, va_list ap)
{
	if (err && len)
		vsnprintf(err, len, fmt, ap);
	return false;
}

bool errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verrf(err, len, fmt, ap);
	va_end(ap);
	return false;
}
