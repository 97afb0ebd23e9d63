/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscopectl probe DEVICE: is this a keyscope volume? The LUKS2 header is read by a program of
 * its own, keyscope-probe (helpers/keyscope-probe.c, which documents the udev properties it
 * prints), found next to keyscopectl (a build folder) or else in LIBEXECDIR, and exec'd in
 * place of this process. keyscopectl itself links no libcryptsetup: every other command starts
 * without loading it and the libraries it brings (docs/benchmarks.md, "keyscopectl start").
 *
 * Run by udev (IMPORT{program} in 69-keyscope.rules) for a volume that /etc/keyscope/volumes
 * declares, it reads no header at all: blkid (60-persistent-storage.rules) has the LUKS UUID
 * and the partition's identifiers in the event's environment already, and what udev needs is
 * the declared unit, which reads the header itself when it attaches. At boot that is every
 * volume: one process start and no header read per volume, instead of two starts (one with
 * libcryptsetup's dozen libraries) and a read (P6 in docs/benchmarks.md).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "declared.h"
#include "macro.h"
#include "paths.h"

#define PROBE_HELPER "keyscope-probe"

/* keyscope-probe next to the running keyscopectl, else in LIBEXECDIR; false if neither. */
static bool helper_find(char *path, size_t size)
{
	char self[PATH_MAX], *slash;
	ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int r;

	if (k > 0) {
		self[k] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			r = snprintf(path, size, "%s/" PROBE_HELPER, self);
			if (r > 0 && (size_t) r < size && access(path, X_OK) == 0)
				return true;
		}
	}
	snprintf(path, size, "%s", KEYSCOPE_LIBEXECDIR "/" PROBE_HELPER);
	return access(path, X_OK) == 0;
}

/*
 * Under udev, for a declared volume: its properties without the header (above). 1 when it
 * printed them, 0 when the helper must read the header (not run by udev for this device, not
 * LUKS to blkid, or not declared).
 */
static int probe_declared(const char *dev)
{
	const char *devname = getenv("DEVNAME"), *type = getenv("ID_FS_TYPE");
	const char *uuid = getenv("ID_FS_UUID");
	struct declared d;

	if (ctl.json || !getenv("DEVPATH") || !devname || !streq(devname, dev) || !type ||
	    !streq(type, "crypto_LUKS") || !uuid || !declared_uuid_is_valid(uuid))
		return 0;
	declared_find(dev, uuid, &d);
	if (!d.name[0])
		return 0;
	printf("KEYSCOPE_LUKS_UUID=%s\n", uuid);
	declared_print(&d);
	return 1;
}

int probe_main(int argc, char **argv)
{
	static const struct option options[] = { {} };
	char helper[PATH_MAX];
	char *args[4];
	int c, n = 0;

	optind = 0; /* 0: GNU getopt re-initialises its state between commands */
	/* --help is the dispatcher's (cli/dispatch.c); the synopsis is in cli/commands.c. */
	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
		return ctl_usage();
	if (optind != argc - 1)
		return ctl_usage();
	if (probe_declared(argv[optind]))
		return fflush(stdout) == 0 ? 0 : 1;
	if (!helper_find(helper, sizeof(helper))) {
		fprintf(stderr, "keyscopectl: probe needs " PROBE_HELPER ", which is neither next "
				"to keyscopectl nor in " KEYSCOPE_LIBEXECDIR ": install keyscope "
				"completely (make install).\n");
		return 1;
	}
	args[n++] = (char *) PROBE_HELPER;
	if (ctl.json)
		args[n++] = (char *) "--json";
	args[n++] = argv[optind];
	args[n] = NULL;
	(void) fflush(stdout);
	execv(helper, args);
	fprintf(stderr, "keyscopectl: cannot run %s: %m\n", helper);
	return 1;
}
