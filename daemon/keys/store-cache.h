/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store's cache of sealed files, compact (issue 13): an entry is what a get needs to
 * rebuild the file's bytes exactly, with neither the fields every file has the same (magic,
 * version, reserved) nor the key-id's text: the key-id, a UUID as keyid_generate() writes
 * them, is kept as its 16 bytes. 86 bytes for a 256-bit key without a name (a 96-byte malloc
 * chunk), against 176 for the file and its id as text. A key-id that is not a lowercase UUID
 * (no key the store seals has one) is never cached: its gets read the file.
 *
 * Only the table and the entries are here; when an entry must go (inotify) is store.c's.
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
