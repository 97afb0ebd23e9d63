/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscope-unlock DEVICE: keyscoped's keyslot unlock process (daemon/volumes/unlock.c starts
 * it; it is not meant to be run by hand). It opens a keyslot of the LUKS2 header on DEVICE with
 * a passphrase and hands back the volume key:
 *
 *   fd 3  the passphrase, read to end of file (at most UNLOCK_PASS_MAX bytes);
 *   fd 4  the answer, written in one write(2) of at most PIPE_BUF bytes, so atomically:
 *         int32 error (0 or -errno: -EPERM when the passphrase opens no keyslot),
 *         uint32 length, then the volume key (length bytes, only when error is 0).
 *
 * keyscope-unlock --add-keyslot DEVICE: the other slow key derivation, the other way round
 * (keyscopectl recovery add): adds a keyslot holding the volume key under a passphrase, with
 * libcryptsetup's default PBKDF (Argon2id):
 *
 *   fd 3  uint32 length, the volume key (length bytes), then the passphrase to end of file;
 *   fd 4  int32 the new keyslot's number or -errno (-EPERM: not the volume key), uint32 0.
 *
 * keyscoped gives it nothing else: 0-2 are /dev/null, every other descriptor is closed before
 * exec, the environment holds only PATH, PR_SET_PDEATHSIG is set. The passphrase and the key
 * never appear in argv, the environment or a file. Here the process makes itself not dumpable
 * (no core, no ptrace by others of its uid, /proc/PID/mem closed), locks its memory (the
 * key derivation's too: MCL_FUTURE) and wipes the secrets before it exits.
 *
 * Exit status: 0 when an answer was written, 1 when none could be, 2 on a usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "luks.h"
#include "secret.h"
#include "util.h"

#define UNLOCK_PASS_FD 3
#define UNLOCK_ANSWER_FD 4
#define UNLOCK_PASS_MAX 4096	/* keyscoped writes it into an empty pipe without blocking */
#define UNLOCK_KEY_MAX 512	/* LUKS2 allows 512-byte volume keys */

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

/* Reads the passphrase to end of file into pass (UNLOCK_PASS_MAX + 1 bytes). Its length,
 * -EMSGSIZE when longer than UNLOCK_PASS_MAX, -EINVAL when empty, or -errno. */
static ssize_t read_passphrase(unsigned char *pass)
{
	size_t got = 0;

	for (;;) {
		ssize_t k = read(UNLOCK_PASS_FD, pass + got, UNLOCK_PASS_MAX + 1 - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		got += (size_t) k;
		if (got > UNLOCK_PASS_MAX)
			return -EMSGSIZE;
	}
	return got ? (ssize_t) got : -EINVAL;
}

/* Unlocks and writes the answer. 0, or -errno when no answer could be written. */
static int unlock(const char *device)
{
	_cleanup_secret_ unsigned char *pass = secret_alloc(UNLOCK_PASS_MAX + 1);
	_cleanup_secret_ unsigned char *msg = secret_alloc(8 + UNLOCK_KEY_MAX);
	_cleanup_secret_buf_ struct secret_buf vk = {};
	uint32_t n = 0;
	int32_t err;
	ssize_t len;
	int r;

	if (!pass || !msg)
		return -ENOMEM;
	len = read_passphrase(pass);
	r = len < 0 ? (int) len : luks_volume_key_from_passphrase(device, pass, (size_t) len, &vk);
	secret_erase(pass, UNLOCK_PASS_MAX + 1);
	if (r >= 0 && (vk.len == 0 || vk.len > UNLOCK_KEY_MAX))
		r = -EMSGSIZE;
	err = r < 0 ? r : 0;
	if (r >= 0) {
		n = (uint32_t) vk.len;
		memcpy(msg + 8, vk.data, vk.len);
	}
	memcpy(msg, &err, 4);
	memcpy(msg + 4, &n, 4);
	return loop_write(UNLOCK_ANSWER_FD, msg, 8 + n);
}

/* Splits "uint32 length, key, passphrase" (len bytes in in) into vk and the passphrase. */
static int split_key(const unsigned char *in, size_t len, size_t *ret_vk_len)
{
	uint32_t n;

	if (len < 4)
		return -EINVAL;
	memcpy(&n, in, 4);
	if (n == 0 || n > UNLOCK_KEY_MAX || len <= 4 + (size_t) n)
		return -EINVAL;
	*ret_vk_len = n;
	return 0;
}

/* Adds the keyslot and writes the answer. 0, or -errno when no answer could be written. */
static int add_keyslot(const char *device)
{
	_cleanup_secret_ unsigned char *in = secret_alloc(UNLOCK_PASS_MAX + 1);
	unsigned char msg[8] = {};
	size_t vk_len = 0;
	int32_t res;
	ssize_t len;
	int r;

	if (!in)
		return -ENOMEM;
	len = read_passphrase(in);
	r = len < 0 ? (int) len : split_key(in, (size_t) len, &vk_len);
	if (r >= 0)
		r = luks_keyslot_add(device, in + 4, vk_len, in + 4 + vk_len,
				     (size_t) len - 4 - vk_len);
	secret_erase(in, UNLOCK_PASS_MAX + 1);
	res = r;
	memcpy(msg, &res, 4);
	return loop_write(UNLOCK_ANSWER_FD, msg, sizeof(msg));
}

int main(int argc, char **argv)
{
	bool add = argc == 3 && streq(argv[1], "--add-keyslot");
	const char *device = argc == 2 || add ? argv[argc - 1] : NULL;
	sigset_t none;

	if (!device || device[0] != '/') {
		fprintf(stderr, "Usage: keyscope-unlock [--add-keyslot] DEVICE (run by keyscoped, "
				"with the input on fd 3 and the answer on fd 4)\n");
		return 2;
	}
	(void) prctl(PR_SET_DUMPABLE, 0);
	/* keyscoped ignores SIGPIPE and blocks the signals it reads from a signalfd. */
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
	(void) signal(SIGPIPE, SIG_DFL);
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0)
		(void) mlockall(MCL_CURRENT | MCL_FUTURE);
	return (add ? add_keyslot(device) : unlock(device)) < 0 ? 1 : 0;
}
