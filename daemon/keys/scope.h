/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Key scopes: one kernel logon key "keyscope:<key-id>" per key-id, counted by its holders.
 * The first holder installs the key into the keyscope keyring, the last release invalidates it
 * (after an optional linger). The holder counts are kept in <state-dir>/scopes.json so that a
 * restarted daemon neither drops keys in use nor keeps orphans.
 */
#pragma once

#include <keyutils.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "keyid.h"
#include "secret.h"

/* Fetches key id's material from a key source into *ret. Returns 0 or -errno. */
typedef int (*scope_fetch_t)(void *userdata, const char *id, struct secret_buf *ret);

enum scope_hold {
	SCOPE_MANUAL,		/* taken with KeyInstall, counted in scopes.json/journal */
	SCOPE_ATTACH,		/* a dm-crypt mapping; counted from the attachment records */
};

struct scope_verified;

/*
 * 39 bytes before the description: 96 bytes of heap a scope with a 36-character key-id (a
 * malloc chunk; 128 with the fields this had before issue 13's memory goal). What few scopes
 * need (a linger timer) is kept beside the table, in struct scopes.
 */
struct scope {
	const char *id;		/* a key-id, or "vk:<LUKS UUID>": inside desc */
	struct scope_verified *verified;	/* LUKS headers this key is known to open, or NULL */
	uint32_t fetches;	/* times the material was fetched from the key source */
	key_serial_t serial;	/* 0 while not in the kernel */
	key_serial_t recorded;	/* the serial scopes.json/journal name (set at load and reconcile) */
	unsigned manual;	/* holders taken with KeyInstall */
	unsigned attached;	/* dm-crypt mappings that reference the key */
	uint16_t key_len;	/* bytes of the installed key; 0 when adopted at start */
	bool revoked : 1;	/* the key source withdrew the key: drop it with the last mapping */
	bool is_key : 1;	/* id is a key-id (not "vk:"): there is a key source to ask */
	bool lingering : 1;	/* a linger timer runs (struct scopes has it) */
	bool in_block : 1;	/* carved from a struct scope_block (scope.c), not malloc()ed */
	char desc[];		/* the kernel key's description, "keyscope:<id>" */
};

struct scopes;

/*
 * keyring: the keyring to create the "keyscope" keyring in. Returns 0 or -errno (logged).
 */
int scopes_new(sd_event *event, key_serial_t parent, const char *state_dir, unsigned linger_sec,
	       scope_fetch_t fetch, void *userdata, struct scopes **ret);
struct scopes *scopes_free(struct scopes *t);

key_serial_t scopes_keyring(struct scopes *t);

/* Reads the saved manual holder counts (snapshot and journal). Returns 0 or -errno (logged). */
int scopes_load_records(struct scopes *t);

/* Counts one attachment holder of id found in the attachment records at start. */
int scope_restore_attached(struct scopes *t, const char *id);

/*
 * Reconciles the holder counts with the kernel: keys in the keyring that nobody holds are
 * invalidated, held keys that vanished are installed again. Returns 0 or -errno (logged); a
 * key that cannot be reinstalled is logged and keeps its record.
 */
int scopes_reconcile(struct scopes *t);

/* Fetches id's material from the key source into *ret (for checks before an acquire). */
int scope_fetch(struct scopes *t, const char *id, struct secret_buf *ret);

bool scope_is_verified(const struct scope *s, const uint8_t fp[static 32]);
int scope_add_verified(struct scope *s, const uint8_t fp[static 32]);

/*
 * Writes the holder counts if they changed since the last save. A write the state folder
 * refuses (ENOSPC, EROFS, EIO...) is logged once at error level and in sd_notify's STATUS, the
 * counts stay in memory and the write is retried on the next change and every 5 s: returns 0
 * then too, so that keys are served from a full disk. Returns 0 or -errno.
 */
int scopes_save(struct scopes *t);

/* At a clean stop: writes the snapshot when the journal has lines (or pending ones), so that the
 * next start replays none. A refused write leaves the journal as it is. Returns 0 or -errno. */
int scopes_compact(struct scopes *t);

/* While a batch call (several key-ids) runs: the per-key installed/invalidated events go out at
 * debug level and the method logs one line for the batch (issue 13); single calls stay at info. */
void scopes_set_batch(struct scopes *t, bool batch);

/* "PATH: error" while the holder counts cannot be written, NULL when they are saved. */
const char *scopes_state_problem(const struct scopes *t);

/*
 * Takes a holder of the given kind on id's scope, installing its kernel key when needed: from
 * material when the caller fetched it already (counted as this scope's fetch), else fetched.
 * Returns 0 and the scope, or -errno: -ENOENT unknown key-id, -EBADMSG unreadable key,
 * -EDQUOT/-ENOMEM kernel quota, others from the key source or the kernel.
 */
int scope_acquire(struct scopes *t, const char *id, enum scope_hold kind,
		  const struct secret_buf *material, struct scope **ret);

/*
 * Drops a holder of the given kind. Returns the number of holders left, -ENOENT when id has no
 * scope, -ENOLCK when it has no holder of that kind. The last holder invalidates the key.
 */
int scope_release(struct scopes *t, const char *id, enum scope_hold kind);

/*
 * The key source withdrew id (Barbican answered 403 or 404): its kernel key is invalidated now
 * when no dm-crypt mapping references it, else when the last mapping is released; manual
 * holders keep their count but no key. Returns 1 when the key was invalidated now, 0 when it
 * waits for mappings or there is no key, -ENOENT when id has no scope.
 */
int scope_revoke(struct scopes *t, const char *id);

struct scope *scope_find(struct scopes *t, const char *id);
unsigned scope_holders(const struct scope *s);
size_t scopes_count(struct scopes *t);

/* Calls f for each scope in key-id order. */
void scopes_foreach(struct scopes *t, void (*f)(struct scope *s, void *userdata),
		    void *userdata);
