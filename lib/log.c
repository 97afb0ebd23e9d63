/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *program = "keyscope";

void log_set_max_level(int level)
{
	max_level = level;
}

int log_get_max_level(void)
{
	return max_level;
}

void log_set_program(const char *name)
{
	const char *slash = strrchr(name, '/');

	program = slash ? slash + 1 : name;
}

int log_level_from_string(const char *s)
{
	static const char *const names[] = { "emerg", "alert", "crit", "err",
					     "warning", "notice", "info", "debug" };
	char *end;
	unsigned long v;

	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (streq(s, names[i]))
			return (int) i;
	if (streq(s, "error"))
		return LOG_ERR;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > LOG_DEBUG)
		return -EINVAL;
	return (int) v;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
{
	char buf[2048], fmt2[1024];
	int saved = errno, e = error < 0 ? -error : error;
	size_t j = 0;
	va_list ap;

	if (level > max_level)
		return error > 0 ? -error : error;

	/* Expand %m ourselves so the error passed in, not a clobbered errno, is printed. */
	for (const char *p = fmt; *p && j + 1 < sizeof(fmt2); p++) {
		if (p[0] == '%' && p[1] == '%') {
			if (j + 2 >= sizeof(fmt2))
				break;
			fmt2[j++] = '%';
			fmt2[j++] = '%';
			p++;
		} else if (p[0] == '%' && p[1] == 'm') {
			const char *m = strerror(e);
			for (; *m && j + 2 < sizeof(fmt2); m++) {
				if (*m == '%')
					fmt2[j++] = '%';
				fmt2[j++] = *m;
			}
			p++;
		} else
			fmt2[j++] = *p;
	}
	fmt2[j] = 0;

	va_start(ap, fmt);
	(void) vsnprintf(buf, sizeof(buf), fmt2, ap);
	va_end(ap);

	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "<%d>%s\n", level, buf);
	else if (max_level >= LOG_DEBUG)
		fprintf(stderr, "%s: %s (%s:%d)\n", program, buf, file, line);
	else
		fprintf(stderr, "%s: %s\n", program, buf);

	errno = saved;
	return error > 0 ? -error : error;
}
