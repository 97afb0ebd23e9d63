/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What store.c (files, master key, cache) and store-format.c (the sealed format) share. */
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
