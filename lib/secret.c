/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "secret.h"

/*
 * Each allocation is its own mapping, so that mlock() and MADV_DONTDUMP apply to the secret
 * alone and munmap() returns it to the kernel instead of to a heap that could hand the same
 * page out again. The header in front of the data keeps the sizes needed to undo it all.
 */
struct secret_header {
	size_t map_size;
	size_t size;
	int locked;
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

void *secret_alloc(size_t n)
{
	struct secret_header *h;
	size_t map_size;
	long page = sysconf(_SC_PAGESIZE);

	if (n == 0 || n > SIZE_MAX - HEADER_SIZE - (size_t) page) {
		errno = EINVAL;
		return NULL;
	}
	map_size = (HEADER_SIZE + n + (size_t) page - 1) & ~((size_t) page - 1);

	h = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h == MAP_FAILED)
		return NULL;

	/* Both are best effort: without CAP_IPC_LOCK the limit may be small. */
	(void) madvise(h, map_size, MADV_DONTDUMP);
	(void) madvise(h, map_size, MADV_WIPEONFORK);
	h->locked = mlock(h, map_size) == 0;
	h->map_size = map_size;
	h->size = n;
	return (uint8_t *) h + HEADER_SIZE;
}

void *secret_free(void *p)
{
	struct secret_header *h;
	size_t map_size;

	if (!p)
		return NULL;
	h = header_of(p);
	map_size = h->map_size;
	explicit_bzero(p, h->size);
	if (h->locked)
		(void) munlock(h, map_size);
	(void) munmap(h, map_size);
	return NULL;
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
