/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscope-probe [--json] DEVICE: the work of `keyscopectl probe DEVICE` (cli/probe.c execs it;
 * not meant to be run by hand). A program of its own so that keyscopectl's other commands do
 * not load libcryptsetup and what it brings (libdevmapper, libblkid, libcrypto, libargon2,
 * libselinux, libudev...) at every start: docs/benchmarks.md, "keyscopectl start".
 *
 * Is this a keyscope volume? Reads the LUKS2 header and its keyscope
 * token locally (no keyscoped, no key) and prints udev properties for IMPORT{program}:
 *
 *	KEYSCOPE_KEY_ID=<key-id>
 *	KEYSCOPE_KEY_SOURCE=<source>		(when the token names one)
 *	KEYSCOPE_LUKS_UUID=<uuid>
 *	KEYSCOPE_INSTANCE=<kernel name, escaped as systemd-escape does>
 *
 * and, from /etc/keyscope/volumes and keyscoped.conf (also for a LUKS volume without a token
 * that the volumes file declares, such as an os-brick one):
 *
 *	KEYSCOPE_VOLUME_NAME=<the declared name>
 *	KEYSCOPE_VOLUME_UNIT=keyscope-volume@<name, escaped>.service	(or, noauto:
 *	KEYSCOPE_VOLUME_NOAUTO=1, and no unit: udev opens it not)
 *	KEYSCOPE_AUTO_ATTACH=declared|all|none
 *
 * Under udev, keyscopectl answers for a declared volume itself, without this helper and without
 * the header (cli/probe.c): KEYSCOPE_LUKS_UUID (blkid's) and the KEYSCOPE_VOLUME_* lines only.
 *
 * A device that is not LUKS, LUKS1, or LUKS2 without a keyscope token prints nothing and exits
 * 0: udev runs this on LUKS devices that are not ours too. A header is device content anyone
 * with write access may have crafted, so every value is checked before it is printed and the
 * output is all or nothing: a token with one bad field prints nothing and exits 1.
 */
#include <errno.h>
#include <libcryptsetup.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "declared.h"
#include "dmcrypt.h"
#include "luks.h"
#include "macro.h"
#include "proto.h"

/*
 * udev waits for IMPORT{program} (180 s by default, then kills the worker). A device that
 * stops answering must not hold the event that long: SIGALRM's default action ends us.
 */
#define PROBE_TIMEOUT_SEC 20

static void crypt_log_quiet(int level, const char *msg, void *usrptr)
{
}

/*
 * The block device's kernel name (vdb, dm-3), escaped the way systemd escapes a unit
 * instance: '-' becomes "\x2d", so keyscope-attach@dm\x2d3.service binds to dev-dm\x2d3.device
 * and %I gives back dm-3. Only names whose /dev/<name> is this device and whose mapping name
 * keyscope-<name> is valid qualify: the unit opens /dev/%I as keyscope-%I. Returns 1 and fills
 * buf, 0 when the device has no such name (a regular file, cciss!c0d0), -errno on failure.
 */
static int kernel_instance(const char *device, char *buf, size_t size)
{
	char link[64], target[PATH_MAX], node[PATH_MAX], mapping[DMCRYPT_NAME_MAX + 2];
	struct stat st, st2;
	const char *kname;
	size_t o = 0;
	ssize_t n;

	if (stat(device, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return 0;
	(void) snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(st.st_rdev),
			minor(st.st_rdev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	kname = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	n = snprintf(mapping, sizeof(mapping), "keyscope-%s", kname);
	if (n < 0 || (size_t) n >= sizeof(mapping) || !dmcrypt_name_is_valid(mapping))
		return 0;
	n = snprintf(node, sizeof(node), "/dev/%s", kname);
	if (n < 0 || (size_t) n >= sizeof(node) || stat(node, &st2) < 0 ||
	    !S_ISBLK(st2.st_mode) || st2.st_rdev != st.st_rdev)
		return 0;
	for (const char *p = kname; *p; p++) {
		bool esc = *p == '-' || (*p == '.' && p == kname);

		if (o + (esc ? 4 : 1) >= size)
			return -ENAMETOOLONG;
		if (esc)
			o += (size_t) sprintf(buf + o, "\\x%02x", (unsigned) *p);
		else
			buf[o++] = *p;
	}
	buf[o] = '\0';
	return 1;
}

static void print_json(const struct luks_info *info, const char *instance,
		       const struct declared *d)
{
	_cleanup_json_ json_object *o = json_object_new_object();

	if (info->token >= 0) {
		json_object_object_add(o, "key-id", json_object_new_string(info->key_id));
		if (info->source[0])
			json_object_object_add(o, "key-source",
					       json_object_new_string(info->source));
	}
	json_object_object_add(o, "luks-uuid", json_object_new_string(info->uuid));
	if (instance)
		json_object_object_add(o, "instance", json_object_new_string(instance));
	if (d->name[0]) {
		json_object_object_add(o, "volume-name", json_object_new_string(d->name));
		if (d->unit[0])
			json_object_object_add(o, "volume-unit", json_object_new_string(d->unit));
		else
			json_object_object_add(o, "volume-noauto", json_object_new_boolean(1));
	}
	json_object_object_add(o, "auto-attach", json_object_new_string(d->auto_attach));
	/* As keyscopectl --json prints every reply (cli/ctl.c). */
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* The properties, all at once; a declared volume without a token has only its unit's. */
static int print_props(const struct luks_info *info, const char *instance,
		       const struct declared *d, bool json)
{
	if (json) {
		print_json(info, instance, d);
		return 0;
	}
	if (info->token >= 0) {
		printf("KEYSCOPE_KEY_ID=%s\n", info->key_id);
		if (info->source[0])
			printf("KEYSCOPE_KEY_SOURCE=%s\n", info->source);
		printf("KEYSCOPE_LUKS_UUID=%s\n", info->uuid);
		if (instance)
			printf("KEYSCOPE_INSTANCE=%s\n", instance);
	}
	declared_print(d);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* argv: [--json] DEVICE, as cli/probe.c passes them (it checked the usage). */
int main(int argc, char **argv)
{
	char instance[4 * DMCRYPT_NAME_MAX + 1];
	struct declared declared;
	struct luks_info info;
	const char *dev, *why = NULL;
	bool json = argc == 3 && streq(argv[1], "--json");
	struct stat st;
	int r, have_instance;

	if (argc != 2 + json) {
		fprintf(stderr, "Usage: keyscope-probe [--json] DEVICE (run by keyscopectl probe)\n");
		return 2;
	}
	dev = argv[1 + json];
	if (stat(dev, &st) < 0) {
		fprintf(stderr, "keyscopectl: cannot probe %s: %m\n", dev);
		return 1;
	}
	(void) signal(SIGALRM, SIG_DFL);
	(void) alarm(PROBE_TIMEOUT_SEC);
	/* libcryptsetup's default log goes to stderr, which udev logs; only our own lines do. */
	if (!getenv("KEYSCOPE_CRYPT_DEBUG"))
		crypt_set_log_callback(NULL, crypt_log_quiet, NULL);

	/* The token parser attach uses (lib/token.c): what one refuses, the other refuses. */
	r = luks_read_reason(dev, &info, &why);
	if (r == -ENOMEDIUM)
		return 0;	/* no LUKS header: not ours, not an error */
	if (r == -EBADMSG) {
		fprintf(stderr, "keyscopectl: %s: %s; not treated as a keyscope volume (see "
				"'cryptsetup token export').\n", dev,
			why ?: "the LUKS header or its keyscope token is malformed");
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "keyscopectl: cannot read the LUKS header of %s: %s\n", dev,
			strerror(-r));
		return 1;
	}
	if (!declared_uuid_is_valid(info.uuid)) {
		if (info.token < 0)
			return 0;	/* not ours, and no UUID= line can name it */
		fprintf(stderr, "keyscopectl: %s: the LUKS UUID holds invalid characters; not "
				"treated as a keyscope volume.\n", dev);
		return 1;
	}
	declared_find(dev, info.uuid, &declared);
	if (info.token < 0)	/* LUKS1, or LUKS2 without a keyscope token: ours if declared */
		return declared.name[0] ? print_props(&info, NULL, &declared, json) : 0;
	have_instance = kernel_instance(dev, instance, sizeof(instance));
	if (have_instance < 0) {
		fprintf(stderr, "keyscopectl: cannot find the kernel name of %s: %s\n", dev,
			strerror(-have_instance));
		return 1;
	}
	return print_props(&info, have_instance ? instance : NULL, &declared, json);
}
