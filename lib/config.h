/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "paths.h"

#define CONFIG_UIDS_MAX 64

struct config {
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

void config_init(struct config *c);
void config_done(struct config *c);

/*
 * Reads "key = value" lines ('#' comments, blank lines) from path into c. A missing file is
 * fine when it is the default path (must_exist false). Every error names the file and line.
 * Returns 0 or -errno (already logged).
 */
int config_load(struct config *c, const char *path, bool must_exist);

/* Sets one option by its config-file name. Returns 0, -EINVAL (bad value) or -ENOENT (unknown). */
int config_set(struct config *c, const char *key, const char *value);
