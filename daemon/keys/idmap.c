/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "idmap.h"

#define LOAD_NUM 3	/* grow when more than 3/4 full */
#define LOAD_DEN 4

void idmap_init(struct idmap *m, const char *(*name)(const void *item))
{
	*m = (struct idmap) { .name = name };
	/* Without randomness the table still works; only collisions become predictable. */
	if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != sizeof(m->seed))
		m->seed = (uint64_t) (uintptr_t) m ^ 0x9e3779b97f4a7c15ull;
}

void idmap_done(struct idmap *m, void (*f)(void *item))
{
	if (f)
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i])
				f(m->slots[i]);
	free(m->slots);
	m->slots = NULL;
	m->n = m->cap = 0;
}

/*
 * The name eight bytes at a time (each word folded in with a multiply and a shift), over the
 * seed, then a final mix so that the low bits carry all input: ~60 instructions for a UUID, a
 * quarter of a byte-wise FNV-1a, and every scope loaded, installed or looked up hashes once.
 */
uint64_t idmap_hash(const struct idmap *m, const char *name)
{
	size_t n = strlen(name);
	uint64_t h = (0xcbf29ce484222325ull ^ m->seed) + n, w;

	for (; n >= 8; n -= 8, name += 8) {
		memcpy(&w, name, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	if (n > 0) {
		w = 0;
		memcpy(&w, name, n);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

void *idmap_get_hashed(const struct idmap *m, const char *name, uint64_t h)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		void *it = m->slots[i];
		if (!it)
			return NULL;
		if (strcmp(m->name(it), name) == 0)
			return it;
	}
}

void *idmap_get(const struct idmap *m, const char *name)
{
	return m->cap ? idmap_get_hashed(m, name, idmap_hash(m, name)) : NULL;
}

static void slot_insert(void **slots, size_t cap, void *item, uint64_t h)
{
	size_t i = h & (cap - 1);

	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = item;
}

static int resize(struct idmap *m, size_t cap)
{
	void **slots;

	if (cap > SIZE_MAX / sizeof(*slots))
		return -ENOMEM;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i])
			slot_insert(slots, cap, m->slots[i], idmap_hash(m, m->name(m->slots[i])));
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int idmap_reserve(struct idmap *m, size_t n)
{
	size_t cap = m->cap ? m->cap : 64;

	while (n * LOAD_DEN > cap * LOAD_NUM) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	return cap > m->cap ? resize(m, cap) : 0;
}

int idmap_put_hashed(struct idmap *m, void *item, uint64_t h)
{
	int r;

	if ((m->n + 1) * LOAD_DEN > m->cap * LOAD_NUM) {
		r = resize(m, m->cap ? m->cap * 2 : 64);
		if (r < 0)
			return r;
	}
	slot_insert(m->slots, m->cap, item, h);
	m->n++;
	return 0;
}

int idmap_put(struct idmap *m, void *item)
{
	return idmap_put_hashed(m, item, idmap_hash(m, m->name(item)));
}

/* Whether slot j lies cyclically in [home, hole): an entry at j may then not move to hole. */
static bool stays(size_t home, size_t hole, size_t j)
{
	return hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
}

void *idmap_remove(struct idmap *m, const void *item)
{
	size_t mask = m->cap - 1, i;
	void *found;

	if (m->cap == 0)
		return NULL;
	for (i = idmap_hash(m, m->name(item)) & mask;; i = (i + 1) & mask) {
		if (!m->slots[i])
			return NULL;
		if (strcmp(m->name(m->slots[i]), m->name(item)) == 0)
			break;
	}
	found = m->slots[i];
	m->slots[i] = NULL;
	m->n--;
	/* Backward-shift deletion: close the hole so that no probe sequence is cut short. */
	for (size_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
		size_t home = idmap_hash(m, m->name(m->slots[j])) & mask;
		if (stays(home, i, j))
			continue;
		m->slots[i] = m->slots[j];
		m->slots[j] = NULL;
		i = j;
	}
	return found;
}

void idmap_foreach(const struct idmap *m, void (*f)(void *item, void *userdata), void *userdata)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i])
			f(m->slots[i], userdata);
}

static int cmp_items(const void *a, const void *b, void *userdata)
{
	const struct idmap *m = userdata;

	return strcmp(m->name(*(void *const *) a), m->name(*(void *const *) b));
}

int idmap_sorted(const struct idmap *m, void ***ret, size_t *ret_n)
{
	void **v;
	size_t k = 0;

	if (m->n == 0) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	v = malloc(m->n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i])
			v[k++] = m->slots[i];
	qsort_r(v, k, sizeof(*v), cmp_items, (void *) m);
	*ret = v;
	*ret_n = k;
	return 0;
}
