/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control socket's file and folder (server.h); the server that serves it is server.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "server.h"
#include "util.h"

int server_make_dir(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash;
	struct stat st;
	bool existed;
	int r;

	if (!dir)
		return log_oom();
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	existed = stat(dir, &st) >= 0;
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return log_error_errno(r, "Failed to create %s: %m", dir);
	/* Our umask is 0077; read-group members must be able to reach the socket. A directory
	 * that was there already keeps its mode. */
	if (!existed && chmod(dir, 0755) < 0)
		log_warning_errno(-errno, "Failed to make %s searchable, ignoring: %m", dir);
	return 0;
}

int server_socket_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "Socket path %s is too long.", path);
	strcpy(sa.sun_path, path);
	r = server_make_dir(path);
	if (r < 0)
		return r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(-errno, "Failed to create socket: %m");
	/* A socket file left by a daemon that was killed: main.c holds the socket's lock. */
	(void) unlink(path);
	if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
		return log_error_errno(-errno, "Failed to bind %s: %m", path);
	if (chmod(path, 0666) < 0)
		return log_error_errno(-errno, "Failed to set mode of %s: %m", path);
	if (listen(fd, SOMAXCONN) < 0)
		return log_error_errno(-errno, "Failed to listen on %s: %m", path);
	return TAKE_FD(fd);
}
