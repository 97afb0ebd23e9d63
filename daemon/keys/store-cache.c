/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The compact cache of sealed files (declared in store-internal.h). A hash table of entry pointers, open
 * addressing with linear probing as daemon/keys/idmap.c, but keyed by the key-id's 16 bytes:
 * no string to hash or compare, and none to keep.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "store-internal.h"

#define LOAD_NUM 3	/* grow when more than 3/4 full */
#define LOAD_DEN 4

/*
 * A sealed file without what store_blob_parse() requires to be the same in every file (magic,
 * version 1, reserved 0) and with its two lengths in a byte each (a key is 32 or 64 bytes, a
 * name at most 255): rest is the file from OFF_CREATED on (created, nonce, name, ct, tag).
 */
struct cached_file {
	struct cache_key key;
	uint8_t key_len, name_len;
	uint8_t rest[];
};

static size_t rest_size(const struct cached_file *e)
{
	return (OFF_NONCE - OFF_CREATED) + NONCE_SIZE + e->name_len + e->key_len + TAG_SIZE;
}

void store_cache_init(struct store_cache *c, size_t max)
{
	*c = (struct store_cache) { .max = max };
	/* Without randomness the table still works; only collisions become predictable. */
	if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != sizeof(c->seed))
		c->seed = (uint64_t) (uintptr_t) c ^ 0x9e3779b97f4a7c15ull;
}

void store_cache_clear(struct store_cache *c)
{
	for (size_t i = 0; i < c->cap; i++)
		free(c->slots[i]);
	free(c->slots);
	c->slots = NULL;
	c->n = c->cap = c->evict = 0;
}

/*
 * Eight lowercase hex digits (ASCII, first digit in the lowest byte) to four bytes, eight at a
 * time in a word: each byte is range-checked by adding a bias that carries into its high bit
 * exactly from the range's bound on (no byte is 0x80 or more, so no carry crosses bytes).
 * Returns false when any byte is not one of 0-9a-f.
 */
static bool hex8_decode(uint64_t x, uint8_t out[static 4])
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x80 * ones;
	uint64_t digit, lower, v;
	uint32_t w;

	if (x & high)
		return false;
	digit = (x + 0x50 * ones) & ~(x + 0x46 * ones) & high;	/* 0x30 <= b <= 0x39 */
	lower = (x + 0x1f * ones) & ~(x + 0x19 * ones) & high;	/* 0x61 <= b <= 0x66 */
	if ((digit | lower) != high)
		return false;
	v = (x & 0x0f * ones) + (lower >> 7) * 9;	/* each byte its digit's value */
	v = ((v << 4) | (v >> 8)) & 0x00ff00ff00ff00ffull;	/* pairs in the even bytes */
	v = (v | (v >> 8)) & 0x0000ffff0000ffffull;
	w = htole32((uint32_t) (v | (v >> 16)));
	memcpy(out, &w, sizeof(w));
	return true;
}

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/*
 * Lowercase only, so that one key-id has one key and one key one key-id. Every get and
 * existence check runs this, twice per key of an install: the 32 digits are gathered from
 * 8-4-4-4-12 and decoded a word at a time (~280 instructions a digit pair at a time).
 */
bool store_cache_key(const char *id, struct cache_key *ret)
{
	const unsigned char *p = (const unsigned char *) id;
	uint8_t digits[32];
	struct cache_key k;

	if (strnlen(id, 37) != 36 || p[8] != '-' || p[13] != '-' || p[18] != '-' || p[23] != '-')
		return false;
	memcpy(digits, p, 8);
	memcpy(digits + 8, p + 9, 4);
	memcpy(digits + 12, p + 14, 4);
	memcpy(digits + 16, p + 19, 4);
	memcpy(digits + 20, p + 24, 12);
	for (size_t j = 0; j < 4; j++)
		if (!hex8_decode(load_le64(digits + 8 * j), k.b + 4 * j))
			return false;
	*ret = k;
	return true;
}

static uint64_t key_hash(const struct store_cache *c, const struct cache_key *k)
{
	uint64_t a, b, h;

	memcpy(&a, k->b, sizeof(a));
	memcpy(&b, k->b + sizeof(a), sizeof(b));
	h = (a ^ c->seed) * 0x9e3779b97f4a7c15ull;
	h = (h ^ (h >> 32) ^ b) * 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

/* The slot of k, or of the empty slot that ends its probe; c->cap > 0. */
static size_t slot_of(const struct store_cache *c, const struct cache_key *k)
{
	size_t mask = c->cap - 1, i = key_hash(c, k) & mask;

	while (c->slots[i] && memcmp(&c->slots[i]->key, k, sizeof(*k)) != 0)
		i = (i + 1) & mask;
	return i;
}

static const struct cached_file *find(const struct store_cache *c, const struct cache_key *k)
{
	return c->cap ? c->slots[slot_of(c, k)] : NULL;
}

static int resize(struct store_cache *c, size_t cap)
{
	struct store_cache m = *c;

	if (cap > SIZE_MAX / sizeof(*m.slots))
		return -ENOMEM;
	m.slots = calloc(cap, sizeof(*m.slots));
	if (!m.slots)
		return -ENOMEM;
	m.cap = cap;
	for (size_t i = 0; i < c->cap; i++)
		if (c->slots[i])
			m.slots[slot_of(&m, &c->slots[i]->key)] = c->slots[i];
	free(c->slots);
	*c = m;
	return 0;
}

/* Whether slot j lies cyclically in [home, hole): an entry at j may then not move to hole. */
static bool stays(size_t home, size_t hole, size_t j)
{
	return hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
}

/* Empties slot i and closes the hole (backward shift), so that no probe is cut short. */
static void slot_clear(struct store_cache *c, size_t i)
{
	size_t mask = c->cap - 1;

	free(c->slots[i]);
	c->slots[i] = NULL;
	c->n--;
	for (size_t j = (i + 1) & mask; c->slots[j]; j = (j + 1) & mask) {
		if (stays(key_hash(c, &c->slots[j]->key) & mask, i, j))
			continue;
		c->slots[i] = c->slots[j];
		c->slots[j] = NULL;
		i = j;
	}
}

void store_cache_forget(struct store_cache *c, const struct cache_key *k)
{
	size_t i;

	if (c->cap == 0)
		return;
	i = slot_of(c, k);
	if (c->slots[i])
		slot_clear(c, i);
}

static void evict_one(struct store_cache *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		size_t j = (c->evict + i) & (c->cap - 1);
		if (c->slots[j]) {
			c->evict = j + 1;
			slot_clear(c, j);
			return;
		}
	}
}

void store_cache_put(struct store_cache *c, const struct cache_key *k, const uint8_t *blob,
		     size_t size)
{
	struct cached_file *e;
	struct blob_view v;

	/* Parsed, the fields left out are known to be the ones store_cache_get() writes. */
	if (store_blob_parse(blob, size, &v) < 0 || v.key_len > UINT8_MAX)
		return;
	store_cache_forget(c, k);
	if (c->n >= c->max)
		evict_one(c);
	if ((c->n + 1) * LOAD_DEN > c->cap * LOAD_NUM && resize(c, c->cap ? c->cap * 2 : 64) < 0)
		return;
	e = malloc(sizeof(*e) + size - OFF_CREATED);
	if (!e)
		return;
	e->key = *k;
	e->key_len = (uint8_t) v.key_len;
	e->name_len = (uint8_t) v.name_len;
	memcpy(e->rest, blob + OFF_CREATED, size - OFF_CREATED);
	c->slots[slot_of(c, k)] = e;
	c->n++;
}

size_t store_cache_get(const struct store_cache *c, const struct cache_key *k, uint8_t *buf)
{
	const struct cached_file *e = find(c, k);

	if (!e)
		return 0;
	memcpy(buf, STORE_MAGIC, STORE_MAGIC_SIZE);
	buf[OFF_VERSION] = STORE_VERSION;
	buf[OFF_VERSION + 1] = 0;
	buf[OFF_KEY_LEN] = e->key_len;
	buf[OFF_KEY_LEN + 1] = 0;
	buf[OFF_NAME_LEN] = e->name_len;
	buf[OFF_NAME_LEN + 1] = 0;
	buf[OFF_RESERVED] = buf[OFF_RESERVED + 1] = 0;
	memcpy(buf + OFF_CREATED, e->rest, rest_size(e));
	return OFF_CREATED + rest_size(e);
}

bool store_cache_has(const struct store_cache *c, const struct cache_key *k)
{
	return find(c, k) != NULL;
}
