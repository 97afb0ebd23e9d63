/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "keyid.h"
#include "macro.h"

/* What each byte may not be in a key-id, so that one OR over the bytes says it all: anywhere
 * (KC_BAD), first (KC_NOT_FIRST: the first is a letter or a digit); and whether it is a '.'
 * (KC_DOT: two may not follow each other). */
enum { KC_BAD = 1, KC_NOT_FIRST = 2, KC_DOT = 4 };

/* Every byte is refused, then the allowed ones are set again: the overrides are the point. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
static const uint8_t keyid_class[256] = {
	[0 ... 255] = KC_BAD | KC_NOT_FIRST,
	['0' ... '9'] = 0, ['A' ... 'Z'] = 0, ['a' ... 'z'] = 0,
	['-'] = KC_NOT_FIRST, ['_'] = KC_NOT_FIRST, ['.'] = KC_NOT_FIRST | KC_DOT,
};
#pragma GCC diagnostic pop

/*
 * The length first (strnlen, a word at a time), then the bytes' classes folded into one
 * accumulator with a table look-up and an OR each, no branch, and a search for ".." only when
 * there is a '.': it runs on the install path and once per scope loaded at start (~190
 * instructions for a UUID, the strnlen included; ~240 with two accumulators, ~390 with a
 * branch per byte).
 */
bool keyid_is_valid(const char *id)
{
	const unsigned char *p = (const unsigned char *) id;
	unsigned any;
	size_t n;

	if (!p || (keyid_class[p[0]] & (KC_BAD | KC_NOT_FIRST)))
		return false;
	n = strnlen(id, KEYID_MAX + 1);
	if (n > KEYID_MAX)
		return false;
	any = 0;
#pragma GCC unroll 8
	for (size_t i = 1; i < n; i++)
		any |= keyid_class[p[i]];
	return !(any & KC_BAD) && (!(any & KC_DOT) || !memmem(id, n, "..", 2));
}

int keyid_to_description(const char *id, char *buf, size_t size)
{
	return keyid_is_valid(id) ? scope_id_to_description(id, buf, size) : -EINVAL;
}

const char *keyid_from_description(const char *desc)
{
	const char *id = scope_id_from_description(desc);

	return id && keyid_is_valid(id) ? id : NULL;
}

/*
 * A random UUID v4 from getrandom(2) (blocks only before the kernel's pool is initialised), the
 * version (4) and variant (10) bits set as RFC 9562 says. Not sd_id128_randomize(): this file
 * is in every program's lib/, and libsystemd would be loaded by keyscopectl for it alone.
 */
int keyid_generate(char buf[static 37])
{
	uint8_t u[16];
	size_t got = 0;
	int r;

	while (got < sizeof(u)) {
		ssize_t n = getrandom(u + got, sizeof(u) - got, 0);

		if (n < 0 && errno != EINTR)
			return -errno;
		got += n > 0 ? (size_t) n : 0;
	}
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	r = snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		     "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
		     u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	return r == 36 ? 0 : -EIO;
}

bool scope_id_is_valid(const char *id)
{
	if (id && strneq(id, SCOPE_VK_PREFIX, sizeof(SCOPE_VK_PREFIX) - 1))
		return keyid_is_valid(id + sizeof(SCOPE_VK_PREFIX) - 1);
	return keyid_is_valid(id);
}

int scope_id_to_description(const char *id, char *buf, size_t size)
{
	int r;

	if (!scope_id_is_valid(id))
		return -EINVAL;
	r = snprintf(buf, size, KEY_DESC_PREFIX "%s", id);
	if (r < 0 || (size_t) r >= size)
		return -ENOBUFS;
	return 0;
}

const char *scope_id_from_description(const char *desc)
{
	const char *id;

	if (!desc || !strneq(desc, KEY_DESC_PREFIX, sizeof(KEY_DESC_PREFIX) - 1))
		return NULL;
	id = desc + sizeof(KEY_DESC_PREFIX) - 1;
	return scope_id_is_valid(id) ? id : NULL;
}
