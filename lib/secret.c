/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "secret.h"

/*
 * Secrets never share pages with ordinary heap memory: mlock() and MADV_DONTDUMP apply to them
 * alone, and freed memory is wiped before anything else can reuse it.
 *
 * Small secrets (keys, the common case: every install unseals one) come from a pool of
 * fixed-size slots in dedicated locked mappings that are never returned; a map, mlock, munlock
 * and munmap per key cost two thirds of a key's install time. Larger buffers get a mapping of
 * their own, unmapped on free. The header in front of the data says which, and the size.
 */
struct secret_header {
	size_t map_size;	/* 0 for a pool slot */
	size_t size;
	int locked;
	struct secret_header *next_free;
};

#define HEADER_SIZE ((sizeof(struct secret_header) + 15) & ~(size_t) 15)

void secret_erase(void *p, size_t n)
{
	if (p && n > 0)
		explicit_bzero(p, n);
}

static struct secret_header *header_of(const void *p)
{
	return (struct secret_header *) ((uint8_t *) p - HEADER_SIZE);
}

/* Under AddressSanitizer every secret gets its own mapping, so a use after free still faults. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define SLOT_SIZE 512u
#define POOL_CHUNK (64u * 1024)
#define POOL_MAX_CHUNKS 64u	/* 4 MiB of locked slots at most; beyond, single mappings */

static struct secret_header *pool_free;
static unsigned pool_chunks;

static int pool_grow(void)
{
	uint8_t *chunk;
	int locked;

	if (pool_chunks >= POOL_MAX_CHUNKS)
		return -ENOMEM;
	chunk = mmap(NULL, POOL_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (chunk == MAP_FAILED)
		return -errno;
	(void) madvise(chunk, POOL_CHUNK, MADV_DONTDUMP);
	(void) madvise(chunk, POOL_CHUNK, MADV_WIPEONFORK);
	locked = mlock(chunk, POOL_CHUNK) == 0;
	for (size_t off = 0; off + SLOT_SIZE <= POOL_CHUNK; off += SLOT_SIZE) {
		struct secret_header *h = (struct secret_header *) (chunk + off);
		h->locked = locked;
		h->next_free = pool_free;
		pool_free = h;
	}
	pool_chunks++;
	return 0;
}

static void *pool_alloc(size_t n)
{
	struct secret_header *h;

	if (!pool_free && pool_grow() < 0)
		return NULL;
	h = pool_free;
	pool_free = h->next_free;
	h->next_free = NULL;
	h->map_size = 0;
	h->size = n;
	return (uint8_t *) h + HEADER_SIZE;
}

void *secret_alloc(size_t n)
{
	struct secret_header *h;
	size_t map_size;
	long page = sysconf(_SC_PAGESIZE);

	if (n == 0 || n > SIZE_MAX - HEADER_SIZE - (size_t) page) {
		errno = EINVAL;
		return NULL;
	}
	if (HEADER_SIZE + n <= SLOT_SIZE && !SANITIZED) {
		void *p = pool_alloc(n);
		if (p)
			return p;	/* else fall back to a mapping of its own */
	}
	map_size = (HEADER_SIZE + n + (size_t) page - 1) & ~((size_t) page - 1);

	h = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h == MAP_FAILED)
		return NULL;

	/* Both are best effort: without CAP_IPC_LOCK the limit may be small. */
	(void) madvise(h, map_size, MADV_DONTDUMP);
	(void) madvise(h, map_size, MADV_WIPEONFORK);
	h->locked = mlock(h, map_size) == 0;
	h->next_free = NULL;
	h->map_size = map_size;
	h->size = n;
	return (uint8_t *) h + HEADER_SIZE;
}

void *secret_free_used(void *p, size_t used)
{
	struct secret_header *h;
	size_t map_size;

	if (!p)
		return NULL;
	h = header_of(p);
	map_size = h->map_size;
	explicit_bzero(p, used < h->size ? used : h->size);
	if (map_size == 0) {
		h->size = 0;
		h->next_free = pool_free;
		pool_free = h;
		return NULL;
	}
	if (h->locked)
		(void) munlock(h, map_size);
	(void) munmap(h, map_size);
	return NULL;
}

void *secret_free(void *p)
{
	return secret_free_used(p, SIZE_MAX);
}

/* The copy way: a pool slot, or a mapping mremap() could not grow (a locked one past
 * RLIMIT_MEMLOCK). The old buffer is wiped as it is freed. */
static void *realloc_copy(void *p, size_t n)
{
	size_t old = header_of(p)->size;
	void *q = secret_alloc(n);

	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	secret_free(p);
	return q;
}

void *secret_realloc(void *p, size_t n)
{
	struct secret_header *h, *nh;
	long page = sysconf(_SC_PAGESIZE);
	size_t map_size;

	if (!p)
		return secret_alloc(n);
	if (n == 0 || n > SIZE_MAX - HEADER_SIZE - (size_t) page) {
		errno = EINVAL;
		return NULL;
	}
	h = header_of(p);
	if (n <= h->size) {
		explicit_bzero((uint8_t *) p + n, h->size - n);
		h->size = n;
		return p;
	}
	map_size = (HEADER_SIZE + n + (size_t) page - 1) & ~((size_t) page - 1);
	if (h->map_size == 0)
		return realloc_copy(p, n);
	if (map_size == h->map_size) {
		h->size = n;	/* the bytes up to the page's end are the mapping's zeroes */
		return p;
	}
	nh = mremap(h, h->map_size, map_size, MREMAP_MAYMOVE);
	if (nh == MAP_FAILED)
		return realloc_copy(p, n);
	/* A locked mapping stays locked as it grows; the advice is set again for the new pages. */
	(void) madvise(nh, map_size, MADV_DONTDUMP);
	(void) madvise(nh, map_size, MADV_WIPEONFORK);
	if (!nh->locked)
		nh->locked = mlock(nh, map_size) == 0;
	nh->map_size = map_size;
	nh->size = n;
	return (uint8_t *) nh + HEADER_SIZE;
}

size_t secret_size(const void *p)
{
	return p ? header_of(p)->size : 0;
}

int secret_buf_new(size_t len, struct secret_buf *ret)
{
	unsigned char *d = secret_alloc(len);

	if (!d)
		return -ENOMEM;
	ret->data = d;
	ret->len = len;
	return 0;
}

void secret_buf_done(struct secret_buf *b)
{
	if (!b)
		return;
	b->data = secret_free(b->data);
	b->len = 0;
}

int secret_memcmp(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d != 0;
}
