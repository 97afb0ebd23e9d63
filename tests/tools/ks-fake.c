/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fake keyscoped for tests of clients (the request-key handler):
 *
 *   ks-fake --hold SOCKET                 accepts and reads, never answers
 *   ks-fake SOCKET REPLY [PAYLOAD_BYTES]  answers every request with the JSON text REPLY, its
 *                                         NUL, and PAYLOAD_BYTES random bytes (0..64)
 *
 * The payload is random, made here: no key material passes through argv or files. Runs until
 * killed; one client at a time is enough for the handler.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

static int serve(int cfd, const char *reply, unsigned plen)
{
	uint8_t in[4096], payload[64];
	size_t have = 0;

	for (;;) {
		ssize_t k = read(cfd, in + have, sizeof(in) - have);
		uint8_t *nul;

		if (k <= 0)
			return 0;
		have += (size_t) k;
		nul = memchr(in, 0, have);
		if (!reply) {	/* --hold: swallow everything */
			have = 0;
			continue;
		}
		if (!nul) {
			if (have == sizeof(in))
				return 0;
			continue;
		}
		if (getrandom(payload, plen, 0) != (ssize_t) plen)
			return -EIO;
		if (loop_write(cfd, reply, strlen(reply) + 1) < 0 ||
		    (plen && loop_write(cfd, payload, plen) < 0))
			return 0;
		have -= (size_t) (nul + 1 - in);
		memmove(in, nul + 1, have);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path, *reply = NULL;
	unsigned plen = 0;
	int fd;

	if (argc == 3 && streq(argv[1], "--hold"))
		path = argv[2];
	else if ((argc == 3 || argc == 4) && !streq(argv[1], "--hold")) {
		path = argv[1];
		reply = argv[2];
		if (argc == 4 && parse_uint(argv[3], 0, 64, &plen) < 0)
			return 2;
	} else {
		fprintf(stderr, "usage: ks-fake --hold SOCKET | ks-fake SOCKET REPLY [PAYLOAD_BYTES]\n");
		return 2;
	}
	/* Bound and listening under a temporary name, then renamed: a client that sees the
	 * socket can connect (a test polls for it with -S). */
	if (strlen(path) + 4 >= sizeof(sa.sun_path))
		return 2;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.new", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	(void) unlink(sa.sun_path);
	if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0 ||
	    rename(sa.sun_path, path) < 0) {
		perror("ks-fake");
		return 1;
	}
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		(void) serve(cfd, reply, plen);
		close(cfd);
	}
}
