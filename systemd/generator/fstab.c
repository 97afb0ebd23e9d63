/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fstab lines that mount a declared volume's /dev/mapper/NAME (fstab.h). A nofail mount
 * whose volume was pending at boot has no job left when the volume comes up later: its mount
 * unit, made wanted by the decrypted device's unit, is started when that device appears.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fstab.h"
#include "macro.h"
#include "unitname.h"

/* fstab's octal escapes ("\040" for a blank), in place; false for a bad one. */
static bool unoctal(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s != '\\') {
			*o++ = *s;
			continue;
		}
		if (s[1] < '0' || s[1] > '3' || s[2] < '0' || s[2] > '7' || s[3] < '0' || s[3] > '7')
			return false;
		*o++ = (char) ((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
		s += 3;
	}
	*o = 0;
	return true;
}

static bool has_option(const char *opts, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = opts; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, word, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

int fstab_foreach_mount(const char *fstab, const char *name,
			int (*cb)(void *userdata, const char *mount_unit), void *userdata)
{
	_cleanup_fclose_ FILE *f = fopen(fstab, "re");
	char line[4096], what[PATH_MAX], unit[PATH_MAX * 4 + 8];
	int r, n = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	snprintf(what, sizeof(what), "/dev/mapper/%s", name);
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *w = strtok_r(line, " \t\n", &save);
		char *where = w ? strtok_r(NULL, " \t\n", &save) : NULL;
		char *type = where ? strtok_r(NULL, " \t\n", &save) : NULL;
		char *opts = type ? strtok_r(NULL, " \t\n", &save) : NULL;

		if (!type || w[0] == '#' || !unoctal(w) || !streq(w, what) || !unoctal(where) ||
		    streq(type, "swap") || has_option(opts, "noauto") || streq(where, "/"))
			continue;
		r = unitname_path_escape(where, unit, sizeof(unit) - 8);
		if (r < 0)
			continue;	/* fstab-generator refuses it too */
		strcat(unit, ".mount");
		r = cb(userdata, unit);
		if (r < 0)
			return r;
		n++;
	}
	return n;
}
