/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * A key-id names a key at its key source and, as "keyscope:<key-id>", the kernel key. It is
 * also a file name in the embedded store and part of dm-crypt tables, so the grammar is
 * narrow: 1..KEYID_MAX characters from [A-Za-z0-9._-], starting with a letter or digit.
 * Barbican's UUIDs and the store's own ids fit; whitespace, '/', ':' and ".." never do.
 */
#define KEYID_MAX 128
#define KEY_DESC_PREFIX "keyscope:"
#define KEY_DESC_MAX (sizeof(KEY_DESC_PREFIX) - 1 + 3 + KEYID_MAX)	/* room for "vk:" */

bool keyid_is_valid(const char *id);

/*
 * Writes "keyscope:<id>" into buf (at least KEY_DESC_MAX + 1 bytes).
 * Returns 0, or -EINVAL when id is not a valid key-id.
 */
int keyid_to_description(const char *id, char *buf, size_t size);

/* Returns the key-id inside a "keyscope:<id>" description, or NULL if it is not one. */
const char *keyid_from_description(const char *desc);

/*
 * A scope is named by a key-id, or, for a volume whose delegated key is a LUKS passphrase (the
 * os-brick way), by "vk:<LUKS UUID>": the scope of the volume key recovered from its keyslot,
 * shared by the volume's snapshots. ':' never occurs in a key-id, so the two cannot collide.
 */
#define SCOPE_VK_PREFIX "vk:"
#define SCOPE_ID_MAX (sizeof(SCOPE_VK_PREFIX) - 1 + KEYID_MAX)
bool scope_id_is_valid(const char *id);
int scope_id_to_description(const char *id, char *buf, size_t size);
const char *scope_id_from_description(const char *desc);

/* Writes a fresh random key-id (a UUID v4 string, 37 bytes with NUL). Returns 0 or -errno. */
int keyid_generate(char buf[static 37]);
