/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What store.c (files, master key, inotify), store-format.c (the sealed format) and
 * store-cache.c (the cache of sealed files) share.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "macro.h"
#include "store.h"

#define STORE_MAGIC "KSCPKEY1"
#define STORE_MAGIC_SIZE 8
#define STORE_VERSION 1
#define NONCE_SIZE 12
#define TAG_SIZE 16
#define KEY_LEN_MAX 64
#define KEY_SUFFIX ".key"

/* Offsets of the header fields; the header is authenticated as AAD. */
enum {
	OFF_VERSION = 8,
	OFF_KEY_LEN = 10,
	OFF_NAME_LEN = 12,
	OFF_RESERVED = 14,
	OFF_CREATED = 16,
	OFF_NONCE = 24,
	HEADER_SIZE = 36,
	BLOB_MAX = HEADER_SIZE + STORE_NAME_MAX + KEY_LEN_MAX + TAG_SIZE,
};

/* A parsed blob: pointers into the caller's bytes. */
struct blob_view {
	size_t key_len;
	size_t name_len;
	uint64_t created;
	const uint8_t *header, *nonce, *name, *ct, *tag;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER *, EVP_CIPHER_free);

int store_random_bytes(void *p, size_t n);
bool store_key_len_is_valid(size_t n);
/* NULL stands for the empty name. Returns the name's length, or -EINVAL. */
int store_name_check(const char *name);
/* All-or-nothing parse of untrusted bytes. Returns 0 or -EBADMSG. */
int store_blob_parse(const uint8_t *blob, size_t size, struct blob_view *ret);
/* The one seal of the store: it checks the id, key and name itself, for every caller. */
int store_seal_blob(const EVP_CIPHER *cipher, const uint8_t *master, const char *id,
		    const void *key, size_t key_len, const char *name, uint64_t created,
		    uint8_t **ret, size_t *ret_size);
/* Authenticates and decrypts a parsed blob with ctx (keyed with the master key already);
 * ret_key may be NULL to authenticate only. id must be valid. Returns 0, -EBADMSG or -errno. */
int store_unseal_view(EVP_CIPHER_CTX *ctx, const char *id, const struct blob_view *v,
		      struct secret_buf *ret_key, struct store_entry *ret_entry);
/* store_unseal_view() of unparsed bytes, checking id first. */
int store_unseal_blob(EVP_CIPHER_CTX *ctx, const char *id, const uint8_t *blob, size_t size,
		      struct secret_buf *ret_key, struct store_entry *ret_entry);
int store_gcm_decrypt_ctx_new(const EVP_CIPHER *cipher, const uint8_t *master,
			      EVP_CIPHER_CTX **ret);
EVP_CIPHER *store_gcm_fetch(void);

/*
 * store-cache.c: the store's cache of sealed files, compact (issue 13): an entry is what a get
 * needs to rebuild the file's bytes exactly, with neither the fields every file has the same (magic,
 * version, reserved) nor the key-id's text: the key-id, a UUID as keyid_generate() writes
 * them, is kept as its 16 bytes. 86 bytes for a 256-bit key without a name (a 96-byte malloc
 * chunk), against 176 for the file and its id as text. A key-id that is not a lowercase UUID
 * (no key the store seals has one) is never cached: its gets read the file.
 *
 * store-cache.c has only the table and the entries; when an entry must go (inotify) is
 * store.c's. Not thread-safe.
 */
struct cache_key {
	uint8_t b[16];
};

struct store_cache {
	struct cached_file **slots;
	size_t n, cap;		/* cap: 0 or a power of two */
	size_t max;		/* entries kept; beyond it one is dropped per new one */
	size_t evict;		/* where the next eviction looks */
	uint64_t seed;
};

/* An empty cache of at most max entries (no allocation yet). */
void store_cache_init(struct store_cache *c, size_t max);
/* Drops every entry and the table. */
void store_cache_clear(struct store_cache *c);

/* The cache key of key-id id: true for a lowercase UUID, false (never cached) otherwise. */
bool store_cache_key(const char *id, struct cache_key *ret);

/*
 * Keeps the sealed file blob (size bytes) under k, in place of what k had. A file that does
 * not parse as a sealed file is not kept (its gets read it and fail as before). A failure
 * only costs a read next time.
 */
void store_cache_put(struct store_cache *c, const struct cache_key *k, const uint8_t *blob,
		     size_t size);
/*
 * Writes the file of k, byte for byte as it was put, to buf (BLOB_MAX bytes): returns its
 * size, or 0 when k is not cached.
 */
size_t store_cache_get(const struct store_cache *c, const struct cache_key *k, uint8_t *buf);
/* Whether k is cached. */
bool store_cache_has(const struct store_cache *c, const struct cache_key *k);
/* Drops k's entry, if any. */
void store_cache_forget(struct store_cache *c, const struct cache_key *k);
