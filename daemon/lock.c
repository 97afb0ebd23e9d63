/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lock.h"
#include "log.h"
#include "util.h"

/* The PID the holder wrote, for when F_GETLK cannot name it (another PID namespace). */
static pid_t lockfile_written_pid(int fd)
{
	char buf[16] = {};
	unsigned pid;
	ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);

	if (k <= 0)
		return 0;
	buf[strcspn(buf, "\n")] = 0;
	return parse_uint(buf, 1, 0x7fffffff, &pid) < 0 ? 0 : (pid_t) pid;
}

int lockfile_take(const char *path, pid_t *ret_holder)
{
	_cleanup_close_ int fd = -EBADF;
	char buf[16];
	int n;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	/* The holder may exit between our attempt and our question: ask again then. */
	for (unsigned tries = 0;; tries++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

		if (fcntl(fd, F_SETLK, &fl) >= 0)
			break;
		if (errno != EACCES && errno != EAGAIN)
			return -errno;
		fl = (struct flock) { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fcntl(fd, F_GETLK, &fl) < 0)
			return -errno;
		if (fl.l_type != F_UNLCK || tries >= 3) {
			*ret_holder = fl.l_type != F_UNLCK && fl.l_pid > 0 ? fl.l_pid
								 : lockfile_written_pid(fd);
			return -EBUSY;
		}
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
	if (n < 0 || (size_t) n >= sizeof(buf))
		return -EINVAL;
	/*
	 * Only a hint for those who cannot ask the kernel: a full disk must not stop us. Written
	 * over the old PID, then cut to its length: truncating to 0 first would free the file's
	 * block, which on a file system mounted with discard waits for the device (0.5-3 ms of a
	 * start seen here, for each of the two lock files).
	 */
	if (pwrite(fd, buf, (size_t) n, 0) != n || ftruncate(fd, n) < 0)
		log_debug_errno(-errno, "Failed to write our PID into %s, ignoring: %m", path);
	return TAKE_FD(fd);
}
