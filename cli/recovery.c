/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * recovery add|remove, format --recovery-passphrase: a LUKS2 keyslot holding a keyscope
 * volume's key under a passphrase, so that cryptsetup open can open it without keyscope.
 * The passphrase comes from the terminal (asked twice, without echo) or, with
 * --passphrase-stdin, as the first line of standard input (without its newline, as cryptsetup
 * reads a passphrase from a pipe); never from argv or the environment. It goes to keyscoped as
 * the request's payload, which keyscoped hands to the keyslot helper; it is wiped here.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"
#include "secret.h"
#include "util.h"

#define PASS_MAX 64	/* the protocol's payload limit (proto.h) */
/* Argon2id takes seconds, and ~30 s under emulation: wait as long as keyscoped lets the
 * helper run (UNLOCK_TIMEOUT_USEC) unless --timeout says otherwise. */
#define ADD_TIMEOUT_MS 300000

/* Reads one line of at most PASS_MAX bytes from fd into buf (PASS_MAX + 2 bytes). Its length
 * without the newline, or -EMSGSIZE, -ENODATA (nothing), -errno. */
static ssize_t read_line(int fd, char *buf)
{
	size_t n = 0;

	for (;;) {
		ssize_t k = read(fd, buf + n, 1);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0 || buf[n] == '\n')
			break;
		if (++n > PASS_MAX)
			return -EMSGSIZE;
	}
	buf[n] = 0;
	return n ? (ssize_t) n : -ENODATA;
}

/* Asks on the terminal tty with echo off. */
static ssize_t ask(int tty, const char *prompt, char *buf)
{
	struct termios old, quiet;
	ssize_t n;

	if (tcgetattr(tty, &old) < 0)
		return -errno;
	quiet = old;
	quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	(void) !write(tty, prompt, strlen(prompt));
	if (tcsetattr(tty, TCSAFLUSH, &quiet) < 0)
		return -errno;
	n = read_line(tty, buf);
	(void) tcsetattr(tty, TCSAFLUSH, &old);
	(void) !write(tty, "\n", 1);
	return n;
}

static int pass_error(ssize_t n, bool from_stdin)
{
	if (n == -EMSGSIZE)
		fprintf(stderr, "keyscopectl: the recovery passphrase may be at most %d bytes.\n",
			PASS_MAX);
	else if (n == -ENODATA)
		fprintf(stderr, "keyscopectl: the recovery passphrase is empty.\n");
	else
		fprintf(stderr, "keyscopectl: cannot read the recovery passphrase from %s: %s\n",
			from_stdin ? "standard input" : "the terminal", strerror((int) -n));
	return -EINVAL;
}

/* The passphrase into buf (PASS_MAX + 2 bytes of secret memory). Its length or -errno. */
static ssize_t get_passphrase(const char *device, bool from_stdin, char *buf)
{
	_cleanup_secret_ char *again = NULL;
	_cleanup_close_ int tty = -EBADF;
	char prompt[300];
	ssize_t n;

	if (from_stdin) {
		n = read_line(STDIN_FILENO, buf);
		return n < 0 ? pass_error(n, true) : n;
	}
	tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty < 0) {
		fprintf(stderr, "keyscopectl: no terminal to ask for the recovery passphrase; give "
				"it on standard input with --passphrase-stdin.\n");
		return -ENOTTY;
	}
	again = secret_alloc(PASS_MAX + 2);
	if (!again)
		return -ENOMEM;
	snprintf(prompt, sizeof(prompt), "Recovery passphrase for %s: ", device);
	n = ask(tty, prompt, buf);
	if (n < 0)
		return pass_error(n, false);
	if (ask(tty, "Again: ", again) != n || memcmp(buf, again, (size_t) n) != 0) {
		fprintf(stderr, "keyscopectl: the passphrases differ; nothing was changed.\n");
		return -EINVAL;
	}
	return n;
}

static void print_recovery(json_object *rp)
{
	printf("%s: recovery keyslot %lld holds the volume key of %s under the passphrase "
	       "(cryptsetup open opens it)\n", json_str(rp, "device"), json_int(rp, "keyslot"),
	       json_str(rp, "key-id"));
}

/* Adds the keyslot with the passphrase pass (n bytes); prints the reply. Exit status. */
static int call_add(const char *device, const char *pass, size_t n, json_object **ret_reply,
		    json_object **ret_params)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "device", json_object_new_string(device));
	return ctl_call("keyscope.VolumeRecoveryAdd", p, pass, n, ret_reply, ret_params) < 0;
}

int recovery_add(int argc, char **argv)
{
	static const struct option options[] = {
		{ "passphrase-stdin", no_argument, NULL, 'P' },
		{}
	};
	_cleanup_secret_ char *pass = secret_alloc(PASS_MAX + 2);
	_cleanup_json_ json_object *reply = NULL;
	bool from_stdin = false;
	json_object *rp;
	ssize_t n;
	int c;

	optind = 0; /* 0: GNU getopt re-initialises its state between commands */
	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c != 'P')
			return ctl_usage();
		from_stdin = true;
	}
	if (optind != argc - 1)
		return ctl_usage();
	if (!pass)
		return 1;
	if (!ctl.timeout_given)
		ctl.timeout_ms = ADD_TIMEOUT_MS;	/* before the connection takes it */
	n = get_passphrase(argv[optind], from_stdin, pass);
	if (n < 0 || call_add(argv[optind], pass, (size_t) n, &reply, &rp))
		return 1;
	if (ctl.json)
		ctl_print_json(rp);
	else
		print_recovery(rp);
	return 0;
}

static void print_removed(json_object *rp)
{
	printf("%s: %lld keyslot(s) removed; it opens by keyring reference only (key %s)\n",
	       json_str(rp, "device"), json_int(rp, "removed"), json_str(rp, "key-id"));
}

int recovery_remove(int argc, char **argv)
{
	json_object *p;

	optind = 0;
	if (getopt_long(argc, argv, "", (const struct option[]) { {} }, NULL) >= 0 ||
	    optind != argc - 1)
		return ctl_usage();
	p = json_object_new_object();
	json_object_object_add(p, "device", json_object_new_string(argv[optind]));
	return ctl_call_print("keyscope.VolumeRecoveryRemove", p, print_removed);
}

int format_recovery(json_object *p, const char *device, bool from_stdin,
		    void (*print_format)(json_object *))
{
	_cleanup_secret_ char *pass = secret_alloc(PASS_MAX + 2);
	_cleanup_json_ json_object *reply = NULL, *reply2 = NULL;
	json_object *rp, *rp2;
	ssize_t n;

	if (!ctl.timeout_given)
		ctl.timeout_ms = ADD_TIMEOUT_MS;	/* before the connection takes it */
	/* Asked before the format, so that a mistyped passphrase changes nothing. */
	n = pass ? get_passphrase(device, from_stdin, pass) : -ENOMEM;
	if (n < 0) {
		json_object_put(p);
		return 1;
	}
	if (ctl_call("keyscope.VolumeFormat", p, NULL, 0, &reply, &rp) < 0)
		return 1;
	if (call_add(device, pass, (size_t) n, &reply2, &rp2)) {
		fprintf(stderr, "keyscopectl: %s is formatted, without a recovery keyslot; add it "
				"with 'keyscopectl recovery add %s'.\n", device, device);
		return 1;
	}
	json_object_object_add(rp, "recovery-keyslot",
			       json_object_new_int((int) json_int(rp2, "keyslot")));
	if (ctl.json) {
		ctl_print_json(rp);
		return 0;
	}
	print_format(rp);
	print_recovery(rp2);
	return 0;
}
