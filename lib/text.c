/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "text.h"

char *text_escape(const void *in, size_t len, size_t max_in, char *out, size_t outsize)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = in;
	size_t j = 0;

	for (size_t i = 0; i < len && i < max_in; i++) {
		uint8_t c = p[i];

		if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') {
			if (j + 1 >= outsize)
				break;
			out[j++] = (char) c;
		} else {
			if (j + 4 >= outsize)
				break;
			out[j++] = '\\';
			out[j++] = 'x';
			out[j++] = hex[c >> 4];
			out[j++] = hex[c & 15];
		}
	}
	if (len > max_in && j + 3 < outsize) {
		out[j++] = '.';
		out[j++] = '.';
		out[j++] = '.';
	}
	out[j] = 0;
	return out;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool text_is_escaped(const char *s)
{
	for (; *s; s++) {
		if (*s < 0x20 || *s > 0x7e || *s == '"')
			return false;
		if (*s == '\\') {
			if (s[1] != 'x' || !is_hex(s[2]) || !is_hex(s[3]))
				return false;
			s += 3;
		}
	}
	return true;
}
