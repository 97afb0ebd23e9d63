/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kernel uevent messages (uevent.h). */
#include <string.h>

#include "uevent.h"

bool uevent_is_block_remove(const char *buf, size_t len)
{
	static const char subsystem[] = "SUBSYSTEM=block";

	if (len < 8 || memcmp(buf, "remove@", 7) != 0)
		return false;
	for (size_t i = 0, n; i < len; i += n + 1) {
		n = strnlen(buf + i, len - i);
		if (n == sizeof(subsystem) - 1 && memcmp(buf + i, subsystem, n) == 0)
			return true;
	}
	return false;
}
