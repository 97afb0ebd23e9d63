/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "key = value" reader (contracts in kvfile.h). */
#include <errno.h>
#include <string.h>

#include "kvfile.h"

char *kvfile_strip(char *s)
{
	char *e;

	s += strspn(s, " \t\r");
	e = s + strlen(s);
	while (e > s && strchr(" \t\r", e[-1]))
		*--e = 0;
	return s;
}

int kvfile_parse(char *text, size_t len, size_t max, unsigned flags, kvfile_cb cb,
		 void *userdata, unsigned *ret_line)
{
	char *p = text, *line;
	unsigned n = 0;
	int r = 0;

	if (len > max)
		r = -EFBIG;
	else if (memchr(text, 0, len))
		r = -EBADMSG;
	while (r == 0 && (line = strsep(&p, "\n"))) {
		char *eq;

		n++;
		line = kvfile_strip(line);
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[' && (flags & KVFILE_SECTIONS))
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			r = -EBADMSG;
			break;
		}
		*eq = 0;
		r = cb(userdata, n, kvfile_strip(line), kvfile_strip(eq + 1));
	}
	if (ret_line)
		*ret_line = r < 0 ? n : 0;
	return r;
}
