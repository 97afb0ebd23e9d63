/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thin wrappers around add_key(2), keyctl(2) and request_key(2). Each returns >= 0 on success
 * (a serial where there is one) and -errno on failure.
 */
#pragma once

#include <keyutils.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Permissions of a keyscope logon key: a possessor may view it, search for it (that is how
 * dm-crypt finds it) and link it, nothing more: no read (the logon type refuses reads anyway),
 * no write (nobody can swap the payload under a live volume) and no setattr (nobody can widen
 * these permissions or set a timeout). The owner may only view, so "keyctl show" lists it.
 * Group and others get nothing. The daemon replaces a key by invalidating it and adding anew.
 */
#define KEYSCOPE_KEY_PERM (KEY_POS_VIEW | KEY_POS_SEARCH | KEY_POS_LINK | KEY_USR_VIEW)
/* The keyscope keyring: everything for the possessor; the owner may view and list it. */
#define KEYSCOPE_KEYRING_PERM (KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ)

/* Parses "@u", "@s", "@us", "@p", "@t" or a decimal serial. Returns 0 or -EINVAL. */
int keyring_parse_spec(const char *spec, key_serial_t *ret);

/*
 * Finds the keyring called name linked directly in parent, or creates and links it with
 * KEYSCOPE_KEYRING_PERM. Returns its serial or -errno.
 */
key_serial_t keyring_find_or_create(key_serial_t parent, const char *name);

/*
 * Adds (or updates) a logon key with the given description in keyring, sets perm, returns the
 * serial or -errno. The payload is not copied or kept by this function.
 */
key_serial_t keyring_add_logon(key_serial_t keyring, const char *desc, const void *data,
			       size_t len, uint32_t perm);

int keyring_invalidate(key_serial_t key);
int keyring_unlink(key_serial_t key, key_serial_t keyring);
int keyring_set_timeout(key_serial_t key, unsigned seconds);

/*
 * Lists the serials linked in keyring. *ret is malloc'ed (free it); returns the count or
 * -errno.
 */
int keyring_list(key_serial_t keyring, key_serial_t **ret);

struct key_info {
	char type[32];
	uint32_t uid, gid, perm;
	char description[4096];
};

/* KEYCTL_DESCRIBE, split into its fields. Returns 0 or -errno (-EBADMSG if malformed). */
int keyring_describe(key_serial_t key, struct key_info *ret);
/* Parses the text KEYCTL_DESCRIBE returns (modified in place). Returns 0 or -EBADMSG. */
int keyring_describe_parse(char *buf, struct key_info *ret);

/* request_key(2) without callout, retried on EINTR. Returns the serial or -errno. */
key_serial_t keyring_request(const char *type, const char *desc, key_serial_t dest);
