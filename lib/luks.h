/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LUKS2 headers through libcryptsetup: format with a given volume key and a "keyscope" token,
 * read a header and its token without any key, check a key against the header's digest.
 * Functions return >= 0 on success and -errno on failure.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyid.h"
#include "secret.h"
#include "token.h"

#define LUKS_TOKEN_TYPE TOKEN_TYPE
#define LUKS_SOURCE_MAX TOKEN_SOURCE_MAX

struct luks_info {
	char type[8];			/* "LUKS1" or "LUKS2" */
	char uuid[40];			/* with dashes */
	char cipher[64];		/* "aes-xts-plain64" */
	size_t key_size;		/* volume key bytes */
	uint64_t data_offset;		/* 512-byte sectors */
	uint64_t iv_offset;
	unsigned sector_size;
	int token;			/* keyscope token id, -1 when none */
	char key_id[KEYID_MAX + 1];	/* from the token */
	char source[LUKS_SOURCE_MAX];	/* from the token */
	uint8_t fingerprint[32];	/* SHA-256 over the UUID and the volume key digests */
	int keyslots;			/* active keyslots */
	unsigned dm_flags;		/* DMCRYPT_*: the LUKS2 persistent activation flags */
};

/*
 * Reads device's LUKS header. Returns 0; -ENOMEDIUM when the device has no LUKS header;
 * -EBADMSG for a keyscope token that is malformed; -errno otherwise.
 */
int luks_read(const char *device, struct luks_info *ret);
/* The same; for -EBADMSG also a static string saying what is wrong in *ret_reason (may be NULL). */
int luks_read_reason(const char *device, struct luks_info *ret, const char **ret_reason);

/* out = SHA-256(fp || key_id): a header fingerprint bound to the key-id that unlocked it. */
int luks_fingerprint_bind(const uint8_t fp[static 32], const char *key_id, uint8_t out[static 32]);

/* Checks key against the header's volume key digest. 0 when it matches, -EPERM when not. */
int luks_verify_key(const char *device, const void *key, size_t len);

/* The data offset of luks_format's header (its default 16 MiB header area), in 512-byte
 * sectors, and the smallest device it formats: the header and one sector of data. */
#define LUKS_FORMAT_DATA_OFFSET 32768u
#define LUKS_FORMAT_MIN_SECTORS (LUKS_FORMAT_DATA_OFFSET + 8u)

/*
 * Formats device as LUKS2 whose volume key is key (32 bytes: AES-128-XTS; 64: AES-256-XTS),
 * 4096-byte sectors where the device allows, no keyslot, and a keyscope token naming key_id
 * and source. libcryptsetup writes the header, then the token: a kill between the two leaves
 * a header without keyslot or token, which luks_set_token() completes. -ENOSPC (nothing
 * written) for a device smaller than LUKS_FORMAT_MIN_SECTORS.
 */
int luks_format(const char *device, const void *key, size_t len, const char *key_id,
		const char *source);

/*
 * Writes the keyscope token (rebind to another key-id, or the token an interrupted format did
 * not write). key_size: the volume key's size, which the caller has checked against the
 * header's digest; -EINVAL when the header records another.
 */
int luks_set_token(const char *device, const char *key_id, const char *source, size_t key_size);

/* Unlocks a keyslot with a passphrase and returns the volume key in *ret. -EPERM: wrong. */
int luks_volume_key_from_passphrase(const char *device, const void *pass, size_t len,
				    struct secret_buf *ret);

/*
 * Adds a keyslot to device's LUKS2 header that opens it with pass (len bytes): the volume key
 * vk (checked against the header's digest) under the passphrase, with libcryptsetup's default
 * PBKDF for LUKS2 (Argon2id, benchmarked to its default time and memory: slow on purpose).
 * Returns the keyslot number; -EPERM when vk is not the volume key.
 */
int luks_keyslot_add(const char *device, const void *vk, size_t vk_len, const void *pass,
		     size_t len);

/* Destroys every active keyslot of device's LUKS2 header. Returns how many it destroyed. */
int luks_keyslots_destroy(const char *device);

/*
 * What a device holds, by its first bytes (libblkid): writes e.g. "LUKS2 header",
 * "ext4 file system", "gpt partition table" into what and returns 1; 0 when it looks empty.
 */
int device_probe_content(const char *device, char *what, size_t size);
