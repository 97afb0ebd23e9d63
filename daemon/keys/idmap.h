/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A hash table of objects named by a string (a key-id or scope id), for the scopes and the
 * sealed-file cache: one probe sequence per lookup instead of a tsearch(3) tree's ~14 string
 * comparisons at 10,000 entries. Open addressing with linear probing; the objects are the
 * caller's, the table holds pointers. The hash is seeded per table (getrandom), so ids chosen
 * to collide cannot be prepared in advance. Not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct idmap {
	void **slots;
	size_t n, cap;			/* cap: 0 or a power of two */
	uint64_t seed;
	const char *(*name)(const void *item);	/* the string an item is found by */
};

/* Sets up an empty table (no allocation yet). */
void idmap_init(struct idmap *m, const char *(*name)(const void *item));
/* Frees the slots, calling f (may be NULL) on each item first. */
void idmap_done(struct idmap *m, void (*f)(void *item));

/* Hash of a name under m's seed; pass it to the *_hashed functions to hash once. */
uint64_t idmap_hash(const struct idmap *m, const char *name);

void *idmap_get(const struct idmap *m, const char *name);
void *idmap_get_hashed(const struct idmap *m, const char *name, uint64_t h);

/* Makes room for n items in all, so that loading n items rehashes nothing. 0 or -ENOMEM. */
int idmap_reserve(struct idmap *m, size_t n);

/* Adds item (whose name is not in m yet). Returns 0 or -ENOMEM. */
int idmap_put(struct idmap *m, void *item);
int idmap_put_hashed(struct idmap *m, void *item, uint64_t h);

/* Removes item (found by its name). Returns the item, or NULL when it was not there. */
void *idmap_remove(struct idmap *m, const void *item);

/* Calls f on each item, in no particular order; f must not change m. */
void idmap_foreach(const struct idmap *m, void (*f)(void *item, void *userdata), void *userdata);

/* The items as a malloc'ed array sorted by name (NULL with *ret_n 0 for an empty table). */
int idmap_sorted(const struct idmap *m, void ***ret, size_t *ret_n);
