/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where keyscoped's configuration comes from, read at start and again on SIGHUP
 * (`systemctl reload keyscoped`): the main file, its drop-ins (the "*.conf" files of the
 * keyscoped.conf.d folders in systemd's order: /etc, /run, /usr/local/lib, /usr/lib; FILE.d
 * alone for --config FILE), then the command-line flags, which override both. A reload applies the keys a running daemon
 * reads where it uses them (lib/config.c marks them "live") and names the others, which take
 * effect at the next start. A reload that cannot read a file is refused as a whole, with the
 * file and line; the running configuration is kept.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "call.h"
#include "config.h"

#define CONFIG_ARGS_MAX 32

struct config_args {
	const char *path;		/* --config FILE, or NULL for the default */
	const char *set[CONFIG_ARGS_MAX][2];	/* flags: key, value */
	size_t n_set;
	char dropin_dir[PATH_MAX];	/* FILE.d for --config FILE */
	const char *dirs[5];		/* the drop-in folders, highest priority first */
};

/* Fills a->dirs from a->path. Returns 0 or -ENAMETOOLONG (logged). */
int config_args_dirs(struct config_args *a);

/* Reads the whole configuration into c (config_init()'d here). Returns 0 or -errno, logged
 * with the file and line at fault. */
int config_read(const struct config_args *a, struct config *c);

/*
 * Re-reads the configuration and applies what changed to running (d->config), logging each
 * change and each key that needs a restart. Returns the number of keys applied, or -errno
 * when the configuration was refused (running is then unchanged).
 */
int daemon_reload(struct daemon *d, struct config *running, const struct config_args *a);
