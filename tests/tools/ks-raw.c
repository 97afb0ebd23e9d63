/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ks-raw SOCKET [TIMEOUT_MS]: sends standard input to keyscoped's socket byte for byte, closes
 * the sending side, and prints what comes back with each message's NUL turned into a newline.
 * For tests that speak the protocol wrong on purpose.
 *
 * ks-raw --hold SECS SOCKET: sends standard input but keeps the connection open, and prints
 * "closed after N ms" when the daemon closes it, or "open after SECS s" (exit 4).
 *
 * ks-raw --count N SOCKET [TIMEOUT_MS]: sends standard input in one write, keeps the sending
 * side open, and prints what comes back until N messages have arrived (exit 0), or says how
 * many did when nothing more comes within TIMEOUT_MS or the daemon closes (exit 3).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

static int hold(int fd, unsigned secs)
{
	uint64_t t0 = now_usec();

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t el = (now_usec() - t0) / 1000;
		char buf[4096];
		ssize_t k;

		if (el >= (uint64_t) secs * 1000) {
			printf("open after %u s\n", secs);
			return 4;
		}
		if (poll(&p, 1, (int) ((uint64_t) secs * 1000 - el)) <= 0)
			continue;
		k = read(fd, buf, sizeof(buf));
		if (k <= 0) {
			printf("closed after %llu ms\n",
			       (unsigned long long) ((now_usec() - t0) / 1000));
			return 0;
		}
	}
}

/* Counts message ends (NULs); payload bytes are not expected in the replies counted. */
static void show(char *buf, ssize_t k, unsigned *seen)
{
	for (ssize_t i = 0; i < k; i++)
		if (buf[i] == 0) {
			buf[i] = '\n';
			(*seen)++;
		}
	fwrite(buf, 1, (size_t) k, stdout);
}

int main(int argc, char **argv)
{
	unsigned hold_secs = 0, count = 0, seen = 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *in = NULL;
	unsigned timeout_ms = 5000;
	size_t n;
	int fd;

	if (argc == 4 && streq(argv[1], "--hold")) {
		if (parse_uint(argv[2], 1, 3600, &hold_secs) < 0)
			return 2;
		argv += 2;
		argc -= 2;
	} else if (argc >= 4 && streq(argv[1], "--count")) {
		if (parse_uint(argv[2], 1, 1000000, &count) < 0)
			return 2;
		argv += 2;
		argc -= 2;
	}
	if (argc < 2 || argc > 3 || strlen(argv[1]) >= sizeof(sa.sun_path) ||
	    (argc == 3 && parse_uint(argv[2], 1, 600000, &timeout_ms) < 0)) {
		fprintf(stderr, "Usage: ks-raw [--hold SECS | --count N] SOCKET [TIMEOUT_MS] < REQUESTS\n");
		return 2;
	}
	if (read_full_fd(STDIN_FILENO, 64u * 1024 * 1024, &in, &n) < 0) {
		fprintf(stderr, "ks-raw: cannot read stdin\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
		fprintf(stderr, "ks-raw: connect %s: %m\n", argv[1]);
		return 1;
	}
	/* The daemon may close on us mid-way (oversized request): that is a result, not an error. */
	(void) loop_write(fd, in, n);
	if (hold_secs)
		return hold(fd, hold_secs);
	if (!count)
		(void) shutdown(fd, SHUT_WR);
	while (!count || seen < count) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[65536];
		ssize_t k;

		if (poll(&p, 1, (int) timeout_ms) <= 0) {
			fflush(stdout);
			if (count)
				fprintf(stderr, "ks-raw: %u of %u replies, then nothing for %u ms\n",
					seen, count, timeout_ms);
			else
				fprintf(stderr, "ks-raw: no more data within %u ms\n", timeout_ms);
			return 3;
		}
		k = read(fd, buf, sizeof(buf));
		if (k < 0 && errno == ECONNRESET)
			break;
		if (k < 0) {
			fprintf(stderr, "ks-raw: read: %m\n");
			return 1;
		}
		if (k == 0)
			break;
		show(buf, k, &seen);
	}
	if (count && seen < count) {
		fflush(stdout);
		fprintf(stderr, "ks-raw: %u of %u replies, then the daemon closed\n", seen, count);
		return 3;
	}
	return 0;
}
