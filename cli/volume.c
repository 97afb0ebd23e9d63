/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* format, attach, detach, resize, rebind: volumes opened by keyring reference. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "dmcrypt.h"
#include "keyid.h"
#include "secret.h"
#include "util.h"

static bool key_arg_ok(const char *id)
{
	if (keyid_is_valid(id))
		return true;
	fprintf(stderr, "keyscopectl: '%.64s' is not a valid key-id.\n", id);
	return false;
}

/*
 * --key-stdin: the key-id's raw material (32 or 64 bytes) on standard input goes to keyscoped
 * as the request's payload, for this call only (docs/openstack.md): never argv or a file.
 */
static int call_with_stdin_key(const char *method, json_object *p, void (*print)(json_object *))
{
	_cleanup_json_ json_object *reply = NULL;
	_cleanup_secret_ unsigned char *key = NULL;
	json_object *rp;
	ssize_t n;

	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "keyscopectl: --key-stdin reads the raw key from standard input; "
				"give it through a pipe, not a terminal.\n");
		goto fail;
	}
	key = secret_alloc(65);	/* one more than the largest key: tells 64 from longer */
	if (!key)
		goto fail;
	n = loop_read(STDIN_FILENO, key, 65);
	if (n != 32 && n != 64) {
		fprintf(stderr, "keyscopectl: --key-stdin needs exactly 32 or 64 raw bytes on "
				"standard input, got %s%zd.\n", n == 65 ? "more than " : "",
			n == 65 ? (ssize_t) 64 : n);
		goto fail;
	}
	if (ctl_call(method, p, key, (size_t) n, &reply, &rp) < 0)
		return 1;
	if (ctl.json)
		ctl_print_json(rp);
	else
		print(rp);
	return 0;
fail:
	json_object_put(p);
	return 1;
}

static void print_format(json_object *rp)
{
	printf("%s: LUKS2 %s, %lld-bit key %s, %lld-byte sectors, UUID %s\n",
	       json_str(rp, "device"), json_str(rp, "cipher"), json_int(rp, "key-size"),
	       json_str(rp, "key-id"), json_int(rp, "sector-size"), json_str(rp, "luks-uuid"));
}

int format_main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "force", no_argument, NULL, 'f' },
		{ "key-stdin", no_argument, NULL, 'i' },
		{ "recovery-passphrase", no_argument, NULL, 'R' },
		{ "passphrase-stdin", no_argument, NULL, 'P' },
		{}
	};
	const char *key = NULL;
	bool force = false, key_stdin = false, recovery = false, pass_stdin = false;
	json_object *p;
	int c;

	optind = 0; /* 0: GNU getopt re-initialises its state between commands */
	while ((c = getopt_long(argc, argv, "k:f", options, NULL)) >= 0) {
		if (c == 'k')
			key = optarg;
		else if (c == 'f')
			force = true;
		else if (c == 'i')
			key_stdin = true;
		else if (c == 'R')
			recovery = true;
		else if (c == 'P')
			pass_stdin = true;
		else
			return ctl_usage();
	}
	/* A supplied key is not the node's: keyscoped could not add its keyslot afterwards. */
	if (optind != argc - 1 || !key || (pass_stdin && !recovery) || (recovery && key_stdin))
		return ctl_usage();
	if (!key_arg_ok(key))
		return 2;
	p = json_object_new_object();
	json_object_object_add(p, "device", json_object_new_string(argv[optind]));
	json_object_object_add(p, "key-id", json_object_new_string(key));
	if (force)
		json_object_object_add(p, "force", json_object_new_boolean(1));
	if (key_stdin)
		return call_with_stdin_key("keyscope.VolumeFormat", p, print_format);
	if (recovery)
		return format_recovery(p, argv[optind], pass_stdin, print_format);
	return ctl_call_print("keyscope.VolumeFormat", p, print_format);
}

static void print_attach(json_object *rp)
{
	if (json_object_object_get_ex(rp, "pending", NULL)) {
		printf("%s: pending (%s); keyscoped attaches it when the key source answers\n",
		       json_str(rp, "name"), json_str(rp, "reason"));
		return;
	}
	printf("%s: %s on keyscope:%s (serial %lld, %lld holders)\n", json_str(rp, "path"),
	       json_str(rp, "device"), json_str(rp, "scope"), json_int(rp, "serial"),
	       json_int(rp, "holders"));
}

struct attach_cli {
	bool key_stdin, stable;
};

/* One attach option into the request p; false: a usage error (already said, if specific). */
static bool attach_opt(int c, json_object *p, struct attach_cli *a)
{
	/* crypttab's words, as /etc/keyscope/volumes writes them (keyscope-volumes(5)) */
	static const char *const flag_params[] = { ['D'] = "discard", ['C'] = "same-cpu-crypt",
						   ['U'] = "submit-from-crypt-cpus",
						   ['R'] = "no-read-workqueue",
						   ['W'] = "no-write-workqueue" };
	uint64_t v;

	switch (c) {
	case 'n': json_object_object_add(p, "name", json_object_new_string(optarg)); return true;
	case 'k':
		if (!key_arg_ok(optarg))
			return false;
		json_object_object_add(p, "key-id", json_object_new_string(optarg));
		return true;
	case 'p': json_object_object_add(p, "plain", json_object_new_boolean(1)); return true;
	case 'r': json_object_object_add(p, "read-only", json_object_new_boolean(1)); return true;
	case 'i': a->key_stdin = true; return true;
	case 'N':	/* keyscoped reads the header: the unit that asks sees no devices */
		a->stable = true;
		json_object_object_add(p, "stable-name", json_object_new_boolean(1));
		return true;
	case 'Q': json_object_object_add(p, "pending", json_object_new_boolean(1)); return true;
	case 'D': case 'C': case 'U': case 'R': case 'W':
		json_object_object_add(p, flag_params[c], json_object_new_boolean(1));
		return true;
	case 'c': json_object_object_add(p, "cipher", json_object_new_string(optarg)); return true;
	case 'P':
		if (!streq(optarg, "hex")) {
			fprintf(stderr, "keyscopectl: --passphrase takes 'hex' (the key's lowercase "
					"hex is the LUKS passphrase, as os-brick formats volumes).\n");
			return false;
		}
		json_object_object_add(p, "passphrase", json_object_new_string(optarg));
		return true;
	case 's': case 'o': case 'S':
		if (parse_uint64(optarg, 0, UINT32_MAX * 1024ull, &v) < 0) {
			fprintf(stderr, "keyscopectl: '%s' is not a number.\n", optarg);
			return false;
		}
		json_object_object_add(p, c == 's' ? "key-size" : c == 'o' ? "offset" : "sector-size",
				       json_object_new_int64((int64_t) v));
		return true;
	default:
		return false;
	}
}

int attach_main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "key", required_argument, NULL, 'k' },
		{ "plain", no_argument, NULL, 'p' },
		{ "cipher", required_argument, NULL, 'c' },
		{ "key-size", required_argument, NULL, 's' },
		{ "offset", required_argument, NULL, 'o' },
		{ "sector-size", required_argument, NULL, 'S' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "passphrase", required_argument, NULL, 'P' },
		{ "key-stdin", no_argument, NULL, 'i' },
		{ "discard", no_argument, NULL, 'D' },
		{ "same-cpu-crypt", no_argument, NULL, 'C' },
		{ "submit-from-crypt-cpus", no_argument, NULL, 'U' },
		{ "no-read-workqueue", no_argument, NULL, 'R' },
		{ "no-write-workqueue", no_argument, NULL, 'W' },
		{ "stable-name", no_argument, NULL, 'N' },
		{ "pending", no_argument, NULL, 'Q' },
		{}
	};
	json_object *p = json_object_new_object();
	struct attach_cli a = {};
	int c;

	optind = 0; /* 0: GNU getopt re-initialises its state between commands */
	while ((c = getopt_long(argc, argv, "n:k:", options, NULL)) >= 0)
		if (!attach_opt(c, p, &a))
			goto bad;
	if (optind != argc - 1 || (a.stable && json_object_object_get_ex(p, "name", NULL)))
		goto bad;
	json_object_object_add(p, "device", json_object_new_string(argv[optind]));
	if (a.key_stdin) {
		if (!json_object_object_get_ex(p, "key-id", NULL)) {
			fprintf(stderr, "keyscopectl: --key-stdin needs --key, the key-id whose "
					"material is on standard input.\n");
			goto bad;
		}
		return call_with_stdin_key("keyscope.VolumeAttach", p, print_attach);
	}
	return ctl_call_print("keyscope.VolumeAttach", p, print_attach);
bad:
	json_object_put(p);
	return ctl_usage();
}

static void print_detach(json_object *rp)
{
	if (json_object_object_get_ex(rp, "pending", NULL)) {
		printf("%s was pending, not attached: no longer tried\n", json_str(rp, "name"));
		return;
	}
	if (json_object_object_get_ex(rp, "vanished", NULL)) {
		printf("%s was closed already (its mapping or its device vanished)\n",
		       json_str(rp, "name"));
		return;
	}
	printf("detached %s; key %s has %lld holders left\n", json_str(rp, "name"),
	       json_str(rp, "key-id"), json_int(rp, "holders"));
}

/*
 * --device DEVICE: the attachment opened from DEVICE (as attach was given it), for
 * keyscope-attach@.service, whose stop cannot know a --stable-name (the device may be gone).
 * Returns 1 and the name in buf, 0 when none, or -EIO.
 */
static int name_of_device(const char *device, char *buf, size_t size)
{
	_cleanup_json_ json_object *reply = NULL;
	json_object *rp, *arr;
	int r;

	r = ctl_call("keyscope.VolumeList", NULL, NULL, 0, &reply, &rp);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(rp, "attachments", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i);

		if (streq(json_str(o, "device"), device)) {
			snprintf(buf, size, "%s", json_str(o, "name"));
			return 1;
		}
	}
	return 0;
}

int detach_main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "deferred", no_argument, NULL, 'd' },
		{ "device", required_argument, NULL, 'D' },
		{}
	};
	const char *device = NULL, *name;
	char buf[DMCRYPT_NAME_MAX + 1];
	bool deferred = false;
	json_object *p;
	int c, r;

	optind = 0; /* 0: GNU getopt re-initialises its state between commands */
	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c == 'd')
			deferred = true;
		else if (c == 'D')
			device = optarg;
		else
			return ctl_usage();
	}
	if (optind != argc - (device ? 0 : 1))
		return ctl_usage();
	name = device ? NULL : argv[optind];
	if (device) {
		r = name_of_device(device, buf, sizeof(buf));
		if (r < 0)
			return 1;
		if (r == 0) {
			printf("nothing attached from %s\n", device);
			return 0;	/* a stop with nothing to close is no failure */
		}
		name = buf;
	}
	p = json_object_new_object();
	json_object_object_add(p, "name", json_object_new_string(name));
	if (deferred)
		json_object_object_add(p, "deferred", json_object_new_boolean(1));
	return ctl_call_print("keyscope.VolumeDetach", p, print_detach);
}

static void print_resize(json_object *rp)
{
	printf("%s: %lld -> %lld sectors\n", json_str(rp, "name"), json_int(rp, "old-size"),
	       json_int(rp, "size"));
}

int resize_main(int argc, char **argv)
{
	json_object *p;

	if (argc != 2)
		return ctl_usage();
	p = json_object_new_object();
	json_object_object_add(p, "name", json_object_new_string(argv[1]));
	return ctl_call_print("keyscope.VolumeResize", p, print_resize);
}

static void print_rebind(json_object *rp)
{
	printf("%s: key %s (was %s)\n", json_str(rp, "device"), json_str(rp, "key-id"),
	       json_str(rp, "previous-key-id"));
}

int rebind_main(int argc, char **argv)
{
	static const struct option options[] = { { "key", required_argument, NULL, 'k' }, {} };
	const char *key = NULL;
	json_object *p;
	int c;

	optind = 0; /* 0: GNU getopt re-initialises its state between commands */
	while ((c = getopt_long(argc, argv, "k:", options, NULL)) >= 0) {
		if (c != 'k')
			return ctl_usage();
		key = optarg;
	}
	if (optind != argc - 1 || !key)
		return ctl_usage();
	if (!key_arg_ok(key))
		return 2;
	p = json_object_new_object();
	json_object_object_add(p, "device", json_object_new_string(argv[optind]));
	json_object_object_add(p, "key-id", json_object_new_string(key));
	return ctl_call_print("keyscope.VolumeRebind", p, print_rebind);
}
