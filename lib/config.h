/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "paths.h"

#define CONFIG_UIDS_MAX 64

#define CONFIG_KEYS_MAX 64

struct config {
	char *raw[CONFIG_KEYS_MAX];	/* each key's value as written; NULL: the default */
	char *socket_path;
	char *state_dir;
	char *keyring;		/* "@u", "@s", or a serial */
	unsigned linger_sec;	/* keep a scope's key this long after its last holder */
	int log_level;
	bool have_read_group;
	gid_t read_group;	/* members may call read-only methods */
	unsigned max_clients;
	unsigned unlock_concurrency;	/* keyslot unlocks (daemon/unlock.h) at once */
	unsigned client_timeout_sec;	/* a half-sent request is dropped after this */
	/* request-key upcalls (daemon/request.c, docs/request-key.md) */
	uid_t request_key_uids[CONFIG_UIDS_MAX];	/* requesters that may cause a fetch */
	unsigned n_request_key_uids;
	unsigned request_key_timeout_sec;	/* lifetime of a key handed out by an upcall */
	/* kernel checks (lib/kcheck.h) */
	unsigned expected_scopes;	/* key scopes the node is sized for */
	bool volumes;			/* the node opens dm-crypt volumes: needs device-mapper */
	/* Barbican (daemon/barbican.h, daemon/source.h); barbican_url NULL: off */
	char *barbican_url, *barbican_ca_file, *barbican_ca_dir;
	char *barbican_client_cert, *barbican_client_key;
	int barbican_auth;		/* enum barbican_auth */
	char *barbican_project_id, *barbican_user_id, *barbican_roles;
	char *keystone_url, *app_credential_file;
	unsigned barbican_connect_timeout_sec, barbican_timeout_sec, barbican_deadline_sec;
	unsigned barbican_retries, barbican_concurrency;
	bool barbican_cache, barbican_prefetch;
	unsigned barbican_cache_ttl_sec;
	char *barbican_consumer_service;
	unsigned barbican_consumer_grace_sec;
	/* metrics (daemon/observe.h): a textfile for node_exporter, NULL: off */
	char *metrics_file;
	unsigned metrics_interval_sec;
};

/*
 * Where a config file failed to parse: its path, the line (0: the file as a whole) and why;
 * the message names the path itself when line is 0, so callers print "path:line: message" or
 * "message".
 */
struct config_error {
	char path[4096];
	unsigned line;
	char message[256];
};

/* The built-in defaults. Returns 0 or -ENOMEM (c is then empty but safe to config_done()). */
int config_init(struct config *c);
void config_done(struct config *c);

/*
 * Reads "key = value" lines ('#' comments, blank lines) from path into c. A missing file is
 * fine when it is the default path (must_exist false). Returns 0 or -errno, with *err (may be
 * NULL) naming the file, the line and the problem; nothing is logged.
 */
int config_load(struct config *c, const char *path, bool must_exist, struct config_error *err);

/*
 * The drop-ins of dirs (a NULL-terminated list, highest priority first, as systemd's conf.d:
 * /etc before /run before /usr/lib): every "*.conf" in them, one per file name (the first
 * folder that has a name masks the same name in the later ones; a link to /dev/null masks it
 * with nothing), sorted by file name. Folders that do not exist are skipped. Returns the number
 * of paths in *ret (a NULL-terminated array; free with config_strv_free()) or -errno, with
 * *err naming the folder.
 */
int config_dropins(const char *const *dirs, char ***ret, struct config_error *err);
char **config_strv_free(char **l);

/*
 * The drop-in folders of a main config file, highest priority first, into dirs (5 entries,
 * NULL-terminated): for the default file (path NULL) keyscoped.conf.d in SYSCONFDIR/keyscope,
 * RUNSTATEDIR/keyscope, /usr/local/lib/keyscope and /usr/lib/keyscope; for another file, its
 * "PATH.d" alone, written into buf. Returns 0 or -ENAMETOOLONG.
 */
int config_dropin_dirs(const char *path, char *buf, size_t size, const char *dirs[static 5]);

/* config_load() of path, then of each of its drop-ins in order. */
int config_load_all(struct config *c, const char *path, bool must_exist,
		    const char *const *dirs, struct config_error *err);

/* Sets one option by its config-file name. Returns 0, -EINVAL (bad value) or -ENOENT (unknown). */
int config_set(struct config *c, const char *key, const char *value);

/*
 * The keys, for reloads: config_key(i) is the name of the i-th key (NULL past the last),
 * config_key_live(i) says whether a running keyscoped applies it on reload, and
 * config_value(c, i) is the value c was given for it, as written (its default when none).
 */
const char *config_key(unsigned i);
bool config_key_live(unsigned i);
const char *config_value(const struct config *c, unsigned i);
