/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kernel feature checks, used by keyscoped at start and by "keyscopectl check": keyring system
 * calls, the logon key type, /sbin/request-key and keyscope's drop-in, device-mapper and its
 * crypt target (loaded with libkmod where it is a module that can be loaded), and the root key
 * quotas against the number of scopes the node is sized for. Each item says ok or missing and,
 * when missing, what to do. Library code: it does not log.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kcheck_status {
	KCHECK_OK,
	KCHECK_WARNING,		/* usable, but something deserves attention */
	KCHECK_MISSING,
	KCHECK_SKIPPED,		/* not checked: a check it depends on failed */
};

#define KCHECK_TEXT_MAX 320

struct kcheck_item {
	const char *name;	/* "keyring", "logon", "request-key", ... */
	enum kcheck_status status;
	bool needed;		/* by the configured features: a missing needed item fails */
	char detail[KCHECK_TEXT_MAX];
	char fix[KCHECK_TEXT_MAX];	/* empty when there is nothing to do */
};

struct kcheck_options {
	bool need_request_key;	/* upcalls are enabled (request-key-uids is not empty) */
	bool need_dm;		/* the node opens dm-crypt volumes */
	bool load_modules;	/* load dm_crypt (and dm_mod) with libkmod when missing */
	unsigned expected_scopes;	/* kernel keys the node must be able to hold at once */
	/* Paths, for tests; NULL for the real ones. */
	const char *request_key_path;	/* /sbin/request-key */
	const char *request_key_dir;	/* /etc/request-key.d */
};

#define KCHECK_MAX_ITEMS 12

struct kcheck_result {
	struct kcheck_item items[KCHECK_MAX_ITEMS];
	size_t n;
	bool ok;		/* every needed item is ok or a warning */
	bool dm_ok;		/* device-mapper and a crypt target that takes keyring keys */
	char dm_problem[2 * KCHECK_TEXT_MAX + 8];	/* why not, when !dm_ok */
	unsigned dm_version[3], crypt_version[3];	/* 0.0.0 when unknown */
	bool module_loaded;	/* this run loaded a module */
};

struct config;

/* Fills *ret from keyscoped.conf's features; load_modules false: never load a module. */
void kcheck_options_from_config(const struct config *cfg, bool load_modules,
				struct kcheck_options *ret);

/*
 * Runs every check. Always fills *ret (the checks never fail as a whole); returns 0 when
 * ret->ok, -ENODEV otherwise.
 */
int kcheck_run(const struct kcheck_options *o, struct kcheck_result *ret);

const char *kcheck_status_to_string(enum kcheck_status s);

/* The smallest crypt target version that takes ":<size>:logon:<desc>" keys safely. */
#define KCHECK_CRYPT_MIN_MAJOR 1
#define KCHECK_CRYPT_MIN_MINOR 18
#define KCHECK_CRYPT_MIN_PATCH 1

/* ---- pure parsers of kernel and file data, exposed for unit tests and the fuzz harness ---- */

/* Compares two versions; <0, 0, >0 like strcmp. */
int kcheck_version_cmp(const unsigned a[3], const unsigned b[3]);

/*
 * Looks for target name in the buffer a DM_LIST_VERSIONS ioctl filled (struct
 * dm_target_versions records chained by their "next" offsets), never reading outside
 * [buf, buf + len). Returns 1 and the version when found, 0 when not, -EBADMSG when the chain is
 * malformed.
 */
int kcheck_parse_target_versions(const void *buf, size_t len, const char *name,
				 unsigned ret_version[3]);

/* Returns the minor of misc device name in /proc/misc text, or -ENOENT. */
int kcheck_parse_misc(const char *text, const char *name);

/*
 * Parses the line of uid in /proc/key-users text ("  0:  9 8/8 3/1000000 131112/25000000").
 * Returns 0 and the keys and bytes charged to uid, -ENOENT when uid has no line, -EBADMSG.
 */
int kcheck_parse_key_users(const char *text, unsigned uid, uint64_t *ret_keys,
			   uint64_t *ret_bytes);

/*
 * Does this request-key.conf line send "create logon keyscope:<id>" requests to a program?
 * Returns 1 and the program's path (without a leading '|') in prog, 0 when the line is a
 * comment or matches something else, -EBADMSG when it is malformed.
 */
int kcheck_parse_request_key_line(const char *line, char *prog, size_t progsize);

/* request-key's pattern match: one '*' anywhere in pattern. */
bool kcheck_rk_match(const char *pattern, size_t plen, const char *datum);
