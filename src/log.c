/*
 * log.c - logging to stderr or syslog.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "log.h"

static bool to_syslog;
static bool debug_on;

void log_init(bool use_syslog, bool verbose)
{
	to_syslog = use_syslog;
	debug_on = verbose;
	if (use_syslog)
		openlog("splitdns", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

bool log_verbose(void)
{
	return debug_on;
}

static void emit(int prio, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void emit(int prio, const char *fmt, va_list ap)
{
	if (to_syslog) {
		vsyslog(prio, fmt, ap);
		return;
	}
	fputs("splitdns: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

#define LOG_FN(fn, prio, guard)                                            \
	void fn(const char *fmt, ...)                                      \
	{                                                                  \
		va_list ap;                                                \
		if (!(guard))                                              \
			return;                                            \
		va_start(ap, fmt);                                         \
		emit(prio, fmt, ap);                                       \
		va_end(ap);                                                \
	}

LOG_FN(log_err, LOG_ERR, true)
LOG_FN(log_warn, LOG_WARNING, true)
LOG_FN(log_info, LOG_INFO, true)
LOG_FN(log_debug, LOG_DEBUG, debug_on)
