/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: a kernel uevent as keyscoped reads it from NETLINK_KOBJECT_UEVENT
 * (lib/uevent.c). The input is copied into a buffer of exactly its size, so that ASan catches
 * a read past the message; the answer must match a plain reading of the rule: the message
 * starts with "remove@" and one of its NUL-separated strings is exactly "SUBSYSTEM=block".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uevent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool reference(const char *b, size_t len)
{
	size_t start = 0;
	bool found = false;

	if (len < 8 || strncmp(b, "remove@", 7) != 0)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || b[i] == 0) {
			if (i - start == 15 && memcmp(b + start, "SUBSYSTEM=block", 15) == 0)
				found = true;
			start = i + 1;
		}
	}
	return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *b = malloc(size ? size : 1);

	if (!b)
		return 0;
	memcpy(b, data, size);
	if (uevent_is_block_remove(b, size) != reference(b, size))
		abort();
	free(b);
	return 0;
}
