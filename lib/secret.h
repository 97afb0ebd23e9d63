/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Memory for key material: zeroed on allocation, locked in RAM where the kernel allows it,
 * excluded from core dumps, wiped before it is freed.
 */
#pragma once

#include <stddef.h>
#include <string.h>

#include "macro.h"

/* Wipes n bytes at p in a way the compiler may not elide. */
void secret_erase(void *p, size_t n);

/*
 * Returns a zeroed buffer of n bytes (n > 0), or NULL with errno set. Not thread-safe: the
 * pool of small slots is per process and unlocked (keyscope's programs are single-threaded).
 */
void *secret_alloc(size_t n);

/* Wipes and frees a buffer from secret_alloc(); accepts NULL; returns NULL. */
void *secret_free(void *p);

/*
 * secret_free() of a buffer whose bytes from used on were never written, or were wiped since:
 * they are zero, so only the first used bytes are wiped (at most the size). For large buffers
 * that are mostly empty (a client's receive and reply buffers, hundreds of KiB each), whose
 * owner tracks the high-water mark. A free slot must be all zeroes: secret_alloc() hands it
 * out as it is. Accepts NULL; returns NULL.
 */
void *secret_free_used(void *p, size_t used);

/*
 * Resizes a buffer from secret_alloc() (or NULL) to n bytes (n > 0), keeping its first bytes;
 * the new ones are zero. A buffer with a mapping of its own grows by mremap(), which moves
 * its pages rather than copying them, so nothing is left behind to wipe; a pool slot is
 * copied and wiped. Returns the buffer, or NULL with errno set (p is then still the caller's).
 */
void *secret_realloc(void *p, size_t n);

/* Size given to secret_alloc() for p. */
size_t secret_size(const void *p);

static inline void secret_freep(void *p)
{
	secret_free(*(void **) p);
}
#define _cleanup_secret_ _cleanup_(secret_freep)

/* A fixed-size secret on the stack: wiped when it leaves scope. */
struct secret_stack {
	void *p;
	size_t n;
};
static inline void secret_stack_erase(struct secret_stack *s)
{
	secret_erase(s->p, s->n);
}
#define _cleanup_erase_(buf)                                                       \
	_cleanup_(secret_stack_erase) _unused_ struct secret_stack buf##_guard_ = { \
		(buf), sizeof(buf)                                                 \
	}

/*
 * A key's bytes and their exact length; owned, wiped on free.
 */
struct secret_buf {
	unsigned char *data;
	size_t len;
};

/* Returns 0 and fills *ret with a fresh zeroed buffer of len bytes, or -ENOMEM. */
int secret_buf_new(size_t len, struct secret_buf *ret);
void secret_buf_done(struct secret_buf *b);
#define _cleanup_secret_buf_ _cleanup_(secret_buf_done)

/* Constant-time comparison of two buffers of the same length. Returns 0 when equal. */
int secret_memcmp(const void *a, const void *b, size_t n);
