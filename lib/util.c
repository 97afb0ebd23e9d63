/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (isempty(s) || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	uint64_t v;
	int r = parse_uint64(s, min, max, &v);

	if (r < 0)
		return r;
	*ret = (unsigned) v;
	return 0;
}

int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (streq(s, yes[i])) {
			*ret = true;
			return 0;
		}
		if (streq(s, no[i])) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

ssize_t loop_read(int fd, void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = read(fd, (char *) buf + done, n - done);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		done += (size_t) k;
	}
	return (ssize_t) done;
}

int loop_write(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		n -= (size_t) k;
	}
	return 0;
}

/* hint: the size fstat() gave, or 0: the first buffer holds it and a page more, so that a
 * file read whole comes in one read(2) and its end in a second, with no copy on the way. */
static int read_full_fd_hint(int fd, size_t max, size_t hint, char **ret, size_t *ret_size)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 0, alloc = 0;

	for (;;) {
		ssize_t k;

		if (alloc - size < 4096) {
			size_t n = alloc ? alloc * 2 : hint < max ? hint + 4096 : 4096;
			char *b;

			if (n > max + 1)
				n = max + 1;
			if (n <= size)
				return -EFBIG;
			b = realloc(buf, n + 1);
			if (!b)
				return -ENOMEM;
			buf = b;
			alloc = n;
		}
		k = read(fd, buf + size, alloc - size);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		size += (size_t) k;
		if (size > max)
			return -EFBIG;
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf)
			return -ENOMEM;
	}
	buf[size] = 0;
	*ret = TAKE_PTR(buf);
	if (ret_size)
		*ret_size = size;
	return 0;
}

int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size)
{
	return read_full_fd_hint(fd, max, 0, ret, ret_size);
}

int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
	_cleanup_close_ int fd = -EBADF;
	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if ((uint64_t) st.st_size > max)
		return -EFBIG;
	return read_full_fd_hint(fd, max, (size_t) st.st_size, ret, ret_size);
}

int read_config_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
	_cleanup_close_ int fd = -EBADF;
	struct stat st, null;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISCHR(st.st_mode) && stat("/dev/null", &null) == 0 && S_ISCHR(null.st_mode) &&
	    st.st_rdev == null.st_rdev) {
		char *empty = calloc(1, 1);

		if (!empty)
			return -ENOMEM;
		*ret = empty;
		if (ret_size)
			*ret_size = 0;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if ((uint64_t) st.st_size > max)
		return -EFBIG;
	return read_full_fd(fd, max, ret, ret_size);
}

int read_sysfs(const char *path, char **ret, size_t *ret_size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	return read_full_fd(fd, 4096, ret, ret_size);
}

char *path_join(const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s", a, b) < 0)
		return NULL;
	return p;
}

static int fsync_directory_of(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -EBADF;
	char *slash;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

int write_file_atomic_flags(const char *path, const void *data, size_t size, unsigned mode,
			    unsigned flags)
{
	bool durable = flags & WRITE_DURABLE;
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int) getpid()) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	r = fchmod(fd, mode) < 0 ? -errno : 0;
	if (r >= 0)
		r = loop_write(fd, data, size);
	if (r >= 0 && durable && fsync(fd) < 0)
		r = -errno;
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void) unlink(tmp);
		return r;
	}
	return durable ? fsync_directory_of(path) : 0;
}

/* The pid of a name "<name>.tmp.<pid>" as write_file_atomic() makes them, or 0. */
static pid_t tmp_file_pid(const char *fn)
{
	const char *p = NULL, *q;
	char *end;
	long v;

	for (q = strstr(fn, ".tmp."); q; q = strstr(q + 1, ".tmp."))
		p = q;
	if (!p || p == fn || p[5] < '1' || p[5] > '9' || strlen(p + 5) > 10)
		return 0;
	errno = 0;
	v = strtol(p + 5, &end, 10);
	if (errno != 0 || *end || v <= 0 || v > INT_MAX)
		return 0;
	return (pid_t) v;
}

int remove_stale_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0, r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	for (errno = 0; (de = readdir(d)); errno = 0) {
		pid_t pid = tmp_file_pid(de->d_name);
		struct stat st;

		if (pid == 0 || (pid != getpid() && (kill(pid, 0) >= 0 || errno != ESRCH)))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) >= 0)
			n++;
	}
	if (errno != 0)
		r = -errno;
	closedir(d);
	return r < 0 ? r : n;
}

int mkdir_p(const char *path, unsigned mode)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int hex4_value(const char *p)
{
	int v = 0;

	for (int j = 0; j < 4; j++) {
		char c = p[j];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/*
 * Two digits per division, from a table of the 100 pairs, into a length counted first: a
 * reply writes four numbers per scope (~280 instructions for a 10-digit serial a digit at a
 * time, through a reversed copy).
 */
size_t format_u64(char *p, uint64_t v)
{
	static const char pairs[] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	uint64_t t = v;
	size_t n = 1;
	char *e;

	if (v < 10) {
		p[0] = (char) ('0' + v);
		return 1;
	}
	for (; t >= 10000; t /= 10000)
		n += 4;
	n += (t >= 10) + (t >= 100) + (t >= 1000);
	e = p + n;
	while (v >= 100) {
		unsigned d = (unsigned) (v % 100) * 2;

		v /= 100;
		*--e = pairs[d + 1];
		*--e = pairs[d];
	}
	if (v >= 10) {
		e[-1] = pairs[v * 2 + 1];
		e[-2] = pairs[v * 2];
	} else
		e[-1] = (char) ('0' + v);
	return n;
}

void hex_encode(const void *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = 0;
}

uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int format_error(int r, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		(void) vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}
