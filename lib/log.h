/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging to stderr. Under systemd (JOURNAL_STREAM set) lines carry the "<N>" priority prefix
 * that journald understands; on a terminal they carry the program name. Never log a key.
 */
#pragma once

#include <errno.h>
#include <syslog.h>

#include "macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_program(const char *name);

/*
 * Logs at the given syslog level; "%m" in fmt is replaced by strerror(-error) when error is
 * non-zero. Returns error if it is negative, -error if positive, so that callers can write
 * "return log_error_errno(r, ...)".
 */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
	_printf_(5, 6);

#define log_full_errno(level, error, ...) \
	log_internal((level), (error), __FILE__, __LINE__, __VA_ARGS__)

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

/* Parses "debug", "info", ... or a number 0..7. Returns the level or -EINVAL. */
int log_level_from_string(const char *s);
