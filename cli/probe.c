/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscopectl probe DEVICE: is this a keyscope volume? The LUKS2 header is read by a program of
 * its own, keyscope-probe (helpers/keyscope-probe.c, which documents the udev properties it
 * prints), found next to keyscopectl (a build folder) or else in LIBEXECDIR, and exec'd in
 * place of this process. keyscopectl itself links no libcryptsetup: every other command starts
 * without loading it and the libraries it brings (docs/benchmarks.md, "keyscopectl start").
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
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
