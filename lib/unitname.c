/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "unitname.h"

static bool plain_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == ':' || c == '_' || c == '.';
}

/* Escapes len bytes of s onto buf at *o. */
static int escape_n(const char *s, size_t len, char *buf, size_t size, size_t *o)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char) s[i];
		bool esc = !plain_char((char) c) || (c == '.' && *o == 0);

		if (*o + (esc ? 4 : 1) >= size)
			return -ENAMETOOLONG;
		if (esc)
			*o += (size_t) snprintf(buf + *o, size - *o, "\\x%02x", c);
		else
			buf[(*o)++] = (char) c;
	}
	buf[*o] = '\0';
	return 0;
}

int unitname_escape(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (!s || !*s || size == 0)
		return -EINVAL;
	/* '/' maps to '-' everywhere in a plain escape, also first */
	for (size_t i = 0; s[i]; i++) {
		int r;

		if (s[i] == '/') {
			if (o + 1 >= size)
				return -ENAMETOOLONG;
			buf[o++] = '-';
			buf[o] = '\0';
			continue;
		}
		r = escape_n(s + i, 1, buf, size, &o);
		if (r < 0)
			return r;
	}
	return 0;
}

int unitname_path_escape(const char *path, char *buf, size_t size)
{
	const char *p = path;
	size_t o = 0;

	if (!path || path[0] != '/' || size < 2)
		return -EINVAL;
	buf[0] = '\0';
	while (*p) {
		size_t n;
		int r;

		p += strspn(p, "/");
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		if (o > 0) {
			if (o + 1 >= size)
				return -ENAMETOOLONG;
			buf[o++] = '-';
			buf[o] = '\0';
		}
		r = escape_n(p, n, buf, size, &o);
		if (r < 0)
			return r;
		p += n;
	}
	if (o == 0) {
		buf[0] = '-';	/* "/" itself */
		buf[1] = '\0';
	}
	return 0;
}

int unitname_from_device(const char *path, char *buf, size_t size)
{
	size_t n;
	int r;

	r = unitname_path_escape(path, buf, size);
	if (r < 0)
		return r;
	n = strlen(buf);
	if (n + sizeof(".device") > size)
		return -ENAMETOOLONG;
	memcpy(buf + n, ".device", sizeof(".device"));
	return 0;
}
