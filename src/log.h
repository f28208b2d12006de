/*
 * log.h - messages to stderr (foreground) or syslog (detached).
 *
 * The destination and verbosity are set once by main before anything else
 * runs; this is the one piece of process-wide state outside main.
 */
#ifndef SPLITDNS_LOG_H
#define SPLITDNS_LOG_H

#include <stdbool.h>

/* Choose the destination; verbose enables log_debug. */
void log_init(bool use_syslog, bool verbose);

bool log_verbose(void);

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
