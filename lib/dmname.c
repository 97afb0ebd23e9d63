/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Mapping names (dmcrypt.h), apart from dmcrypt.c: what checks a name needs no libdevmapper. */
#include <string.h>

#include "dmcrypt.h"
#include "macro.h"

bool dmcrypt_name_is_valid(const char *name)
{
	size_t n = name ? strnlen(name, DMCRYPT_NAME_MAX + 1) : 0;

	if (n == 0 || n > DMCRYPT_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return !streq(name, "..") && !streq(name, "control");
}
