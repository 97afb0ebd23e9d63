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

struct scope {
	char id[KEYID_MAX + 1];
	key_serial_t serial;	/* 0 while not in the kernel */
	unsigned manual;	/* holders taken with KeyInstall */
	uint64_t fetches;	/* times the material was fetched from the key source */
	sd_event_source *linger;
	struct scopes *owner;
};

struct scopes;

/*
 * keyring: the keyring to create the "keyscope" keyring in. Returns 0 or -errno (logged).
 */
int scopes_new(sd_event *event, key_serial_t parent, const char *state_dir, unsigned linger_sec,
	       scope_fetch_t fetch, void *userdata, struct scopes **ret);
struct scopes *scopes_free(struct scopes *t);

key_serial_t scopes_keyring(struct scopes *t);

/*
 * Reads the saved holder counts and reconciles them with the kernel: keys in the keyring that
 * nobody holds are invalidated, held keys that vanished are installed again. Returns 0 or
 * -errno (logged); a key that cannot be reinstalled is logged and keeps its record.
 */
int scopes_load(struct scopes *t);

/* Writes the holder counts if they changed since the last save. Returns 0 or -errno. */
int scopes_save(struct scopes *t);

/*
 * Takes a manual holder on id's scope, installing its kernel key when needed.
 * Returns 0 and the scope, or -errno: -ENOENT unknown key-id, -EBADMSG unreadable key,
 * -EDQUOT/-ENOMEM kernel quota, others from the key source or the kernel.
 */
int scope_acquire(struct scopes *t, const char *id, struct scope **ret);

/*
 * Drops a manual holder. Returns the number of holders left, -ENOENT when id has no scope,
 * -ENOLCK when it has no manual holder.
 */
int scope_release(struct scopes *t, const char *id);

struct scope *scope_find(struct scopes *t, const char *id);
unsigned scope_holders(const struct scope *s);
size_t scopes_count(struct scopes *t);

/* Calls f for each scope in key-id order. */
void scopes_foreach(struct scopes *t, void (*f)(struct scope *s, void *userdata),
		    void *userdata);
