/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Parse an unsigned decimal number in [min, max]. Returns 0, -EINVAL or -ERANGE. */
int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret);
int parse_bool(const char *s, bool *ret);

/* Reads the whole of a regular file of at most max bytes; NUL-terminates. Returns 0 or -errno. */
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);
/*
 * Reads a configuration file an administrator owns (keyscoped.conf, /etc/keyscope/volumes and
 * its drop-ins, node.conf): like read_full_file(), but a symbolic link is followed (configuration
 * management makes them), and a link to /dev/null masks the file, as systemd's drop-ins do: it
 * reads as empty. A FIFO or a device other than /dev/null is refused with -EBADFD without
 * blocking. Returns 0 or -errno.
 */
int read_config_file(const char *path, size_t max, char **ret, size_t *ret_size);
/* A sysfs attribute (which claims 4096 bytes whatever it holds), at most 4096 bytes;
 * NUL-terminated. Returns 0 or -errno. */
int read_sysfs(const char *path, char **ret, size_t *ret_size);
/* Like read_full_file() for an open descriptor (not closed). */
int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size);

/*
 * Writes data to path atomically (temporary file in the same directory, rename) with the given
 * mode; with WRITE_DURABLE also fsyncs the file and its directory, so it survives power loss.
 * Returns 0 or -errno; on failure path is untouched.
 */
#define WRITE_DURABLE 1u
int write_file_atomic_flags(const char *path, const void *data, size_t size, unsigned mode,
			    unsigned flags);
static inline int write_file_atomic(const char *path, const void *data, size_t size,
				    unsigned mode)
{
	return write_file_atomic_flags(path, data, size, mode, WRITE_DURABLE);
}

/*
 * Removes the "<name>.tmp.<pid>" files that write_file_atomic() leaves in dir when its process
 * is killed mid-write: regular files whose pid is not a running process, or is ours (at start
 * nothing of ours is in flight). Returns how many it removed, 0 when dir does not exist, or
 * -errno when dir cannot be read.
 */
int remove_stale_tmp_files(const char *dir);

/* Reads exactly n bytes, retrying on EINTR. Returns n, the short count at EOF, or -errno. */
ssize_t loop_read(int fd, void *buf, size_t n);
/* Writes exactly n bytes. Returns 0 or -errno. */
int loop_write(int fd, const void *buf, size_t n);

/* mkdir -p with mode for the last component. Returns 0 or -errno. */
int mkdir_p(const char *path, unsigned mode);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const void *p, size_t n, char *out);
/* The value of the 4 hex digits at p (either case), or -1. */
int hex4_value(const char *p);
/* Writes v in decimal at p (room for 20 bytes) without snprintf; returns the bytes written. */
size_t format_u64(char *p, uint64_t v);

/* Formats a message into err (may be NULL) and returns r: "return format_error(-EINVAL, ...)". */
int format_error(int r, char *err, size_t errlen, const char *fmt, ...) _printf_(4, 5);

/* Monotonic time in microseconds. */
uint64_t now_usec(void);

char *path_join(const char *a, const char *b);
