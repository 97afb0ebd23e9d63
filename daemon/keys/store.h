/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The embedded key store: the default key source. Each key is one file under
 * <state-dir>/keys/<key-id>.key, sealed with AES-256-GCM under the node master key
 * (<state-dir>/master.key, 32 random bytes, mode 0400, created on first open). The key-id and
 * the file's header are the additional authenticated data, so a file renamed to another key-id,
 * or with any byte changed, is refused.
 *
 * File layout (all integers little-endian), parsed all-or-nothing:
 *   magic     8 bytes  "KSCPKEY1"
 *   version   u16      1
 *   key_len   u16      32 or 64 (bytes of key material)
 *   name_len  u16      0..STORE_NAME_MAX (bytes of the UTF-8 name that follows)
 *   reserved  u16      0
 *   created   u64      seconds since the epoch
 *   nonce     12 bytes
 *   name      name_len bytes (no NUL inside)
 *   ct        key_len bytes
 *   tag       16 bytes
 * AAD = key-id || header (magic..nonce) || name.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "keyid.h"
#include "secret.h"

#define STORE_NAME_MAX 255
#define STORE_MASTER_KEY_SIZE 32

struct store;

struct store_entry {
	char id[KEYID_MAX + 1];
	char name[STORE_NAME_MAX + 1];
	unsigned bits;		/* 256 or 512 */
	uint64_t created;	/* seconds since the epoch */
};

/*
 * Opens the store in state_dir, creating state_dir/keys and the master key when missing, and
 * removes the temporary files that atomic writes killed midway left in both
 * (remove_stale_tmp_files()). Returns 0, or -errno; a master key that is not exactly 32 bytes,
 * not a regular file or not mode 0400/0600 owned by us is refused with -EBADMSG/-EPERM (the
 * caller names the file).
 */
int store_open(const char *state_dir, struct store **ret);
struct store *store_free(struct store *s);

/* Path of the file of key-id id (for error messages). Valid until the next call. */
const char *store_path(struct store *s, const char *id);

/*
 * Creates a new random key of bits (256 or 512). Writes the new key-id to ret_id
 * (KEYID_MAX + 1 bytes). Returns 0 or -errno.
 */
int store_create(struct store *s, unsigned bits, const char *name, char *ret_id);

/* Stores existing material (exactly 32 or 64 bytes) under a new key-id. */
int store_import(struct store *s, const void *key, size_t len, const char *name, char *ret_id);

/*
 * Reads and unseals key id into *ret (a secret buffer of the exact key length).
 * Returns 0; -ENOENT when there is no such key; -EBADMSG when the file is corrupt, truncated,
 * tampered with or sealed under another master key; -EINVAL for an invalid key-id.
 * The sealed file stays in the store's cache (store.c), so that the key's re-install after a
 * release reads no file.
 */
int store_get(struct store *s, const char *id, struct secret_buf *ret);

/*
 * Reads key id's sealed file into the store's cache when it is not there, without unsealing,
 * for the store_get() that follows.
 * Returns 0; -ENOENT when there is no such key; -EBADMSG or -errno for a file that cannot be
 * read (store_get() will say the same); -EINVAL for an invalid key-id.
 */
int store_preload(struct store *s, const char *id);

/*
 * Gives the store the daemon's event loop: the record of changed files (inotify) is then read
 * once per loop iteration instead of once per get. Without it every get reads that record.
 */
void store_set_event(struct store *s, sd_event *event);

/* Sealed files in the store's cache now (at most 16,384, whatever the number of keys). */
size_t store_cached(const struct store *s);

/* Metadata of key id without unsealing. Same errors as store_get(). */
int store_stat(struct store *s, const char *id, struct store_entry *ret);

/* Seals a copy of key id's material under a new key-id (clone-key). */
int store_clone(struct store *s, const char *id, const char *name, char *ret_id);

/* Removes key id. Returns 0 or -ENOENT. */
int store_delete(struct store *s, const char *id);

/*
 * Lists the entries (sorted by key-id). *ret is malloc'ed. Files that fail to parse are
 * skipped and reported through the callback (may be NULL) with their path and error.
 */
int store_list(struct store *s, struct store_entry **ret, size_t *ret_n,
	       void (*bad)(const char *path, int error, void *userdata), void *userdata);

/* Whether the store holds a file for key id (not authenticated: for "which source"). */
bool store_has(struct store *s, const char *id);

/*
 * Seals and unseals other secrets of the node under the master key, in the same format (the
 * Barbican offline cache, daemon/sources/cache.c). aad_id names the purpose and the key, e.g.
 * "cache.<key-id>": a blob sealed for one purpose is refused for any other, and never passes
 * for a key of the store. Same results as store_seal() and store_unseal().
 */
int store_seal_other(struct store *s, const char *aad_id, const void *key, size_t key_len,
		     const char *name, uint64_t created, uint8_t **ret, size_t *ret_size);
int store_unseal_other(struct store *s, const char *aad_id, const uint8_t *blob, size_t size,
		       struct secret_buf *ret_key, struct store_entry *ret_entry);

/*
 * Pure functions on the sealed format, exposed for unit tests and the fuzz harness.
 * store_seal() returns a malloc'ed blob; store_unseal() parses untrusted bytes.
 */
int store_seal(const uint8_t master[static STORE_MASTER_KEY_SIZE], const char *id,
	       const void *key, size_t key_len, const char *name, uint64_t created,
	       uint8_t **ret, size_t *ret_size);
int store_unseal(const uint8_t master[static STORE_MASTER_KEY_SIZE], const char *id,
		 const uint8_t *blob, size_t size, struct secret_buf *ret_key,
		 struct store_entry *ret_entry);
/* Parses the header only (no master key needed). */
int store_parse_header(const char *id, const uint8_t *blob, size_t size,
		       struct store_entry *ret_entry);
