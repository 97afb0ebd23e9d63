/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bottom layer: cleanup attributes and small macros. Depends on nothing else in the tree.
 */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Take a pointer out of a cleanup variable: the caller now owns it. */
#define TAKE_PTR(p)                                \
	({                                         \
		__typeof__(p) _p_ = (p);           \
		(p) = NULL;                        \
		_p_;                               \
	})

#define TAKE_FD(fd)                                \
	({                                         \
		int _fd_ = (fd);                   \
		(fd) = -EBADF;                     \
		_fd_;                              \
	})

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)           \
	static inline void func##p(type *p)               \
	{                                                 \
		if (*p)                                   \
			func(*p);                         \
	}

static inline void freep(void *p)
{
	free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Returns NULL so that "p = x_free(p);" reads naturally. */
static inline void *mfree(void *p)
{
	free(p);
	return NULL;
}

static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		(void) close(fd);
		errno = saved;
	}
	return -EBADF;
}

static inline void closep(int *fd)
{
	safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)



static inline int negative_errno(void)
{
	/* Some libc paths leave errno at 0 on failure; never report success by accident. */
	return errno > 0 ? -errno : -EIO;
}

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
#define isempty(s) (!(s) || !(s)[0])

#define RET_NERRNO(expr)                           \
	({                                         \
		long _r_ = (expr);                 \
		_r_ < 0 ? negative_errno() : (int) _r_; \
	})

#include <stdio.h>
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)
