/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What boot-time tools (keyscope-generator, keyscopectl probe) need from keyscoped.conf, read
 * without keyscoped: whether a remote key source is set, where the embedded store lives, and
 * auto-attach. keyscoped itself validates the whole file at start; this reader skips what it
 * does not know and keeps the defaults for values it cannot use, so a boot tool never fails
 * on the file. Returns 0 (also for a missing file) or -errno.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>

#define NODECONF_FILE "/etc/keyscope/keyscoped.conf"
#define NODECONF_STATE_DIR "/var/lib/keyscope"
#define NODECONF_NO_AUTO_ATTACH "/etc/keyscope/no-auto-attach"

enum auto_attach {
	/* what udev starts when a keyscope volume appears: */
	AUTO_ATTACH_DECLARED,	/* the unit of a volume /etc/keyscope/volumes declares (default) */
	AUTO_ATTACH_ALL,	/* that, and any other keyscope volume, named from its LUKS UUID */
	AUTO_ATTACH_NONE,	/* nothing; declared volumes still open at boot (generator) */
};

struct nodeconf {
	bool remote;			/* barbican-url is set */
	char state_dir[PATH_MAX];
	enum auto_attach auto_attach;
};

int nodeconf_read(const char *path, struct nodeconf *ret);

/* "declared", "all", "none" -> the value; -EINVAL otherwise. */
int auto_attach_from_string(const char *s);
