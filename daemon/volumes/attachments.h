/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Attachments: the dm-crypt mappings keyscoped opened, each holding its scope's kernel key.
 * Recorded in <state-dir>/attachments.json and reconciled with the kernel's device-mapper
 * devices at start, on every status call and when a block device goes away.
 *
 * Intents: before a volume method changes the kernel or a header (a table load, a remove, a
 * reload, a header or token write) it records what it is about to do in
 * <state-dir>/intents/<operation>.<name>; the record goes when the operation ended either way.
 * At start, an intent left by a killed daemon is finished or rolled back, and keyscope's
 * mappings that have no record are adopted or removed (docs/volumes.md, "After a crash").
 */
#pragma once

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "dmcrypt.h"
#include "keyid.h"
#include "scope.h"
#include "source.h"

struct attachment {
	char name[DMCRYPT_NAME_MAX + 1];
	char device[PATH_MAX];
	char kind[16];			/* "luks2", "luks1", "plain" */
	char luks_uuid[40];		/* "" for plain */
	char scope[SCOPE_ID_MAX + 1];	/* the scope held: a key-id or "vk:<LUKS UUID>" */
	char key_id[KEYID_MAX + 1];	/* the delegated key ("" when adopted from a vk: table) */
	char dm_uuid[130];
	char source[16];		/* the key source: "local" or "barbican" */
	uint64_t since;			/* seconds since the epoch */
	struct attachment *next;
};

struct attachments;

/*
 * The state folder holds the keys that open keyscope volumes, so it cannot live on one (nor on
 * LVM over one): the next boot could not open it. Returns 0, or -ELOOP having logged which
 * volume and what to do. Called at start, before anything is written there.
 */
int attachments_check_state_dir(const char *state_dir);

/*
 * Loads the records, finishes or rolls back the intents a killed daemon left, and reconciles
 * both with device-mapper: a record whose mapping is gone is dropped and reported, a keyscope
 * mapping without a record is adopted or removed; each remaining record counts as a holder of
 * its scope. Before scopes_reconcile(), which then ensures the held kernel keys.
 */
int attachments_load(const char *state_dir, struct scopes *scopes, struct source *source,
		     struct attachments **ret);
struct attachments *attachments_free(struct attachments *a);

const char *attachments_path(const struct attachments *a);
/* How many mappings are recorded (for the metrics). */
size_t attachments_count(const struct attachments *a);
struct attachment *attachment_find(struct attachments *a, const char *name);

/* Links x (allocated by the caller) and rewrites the records; on failure x is unlinked and
 * stays the caller's. Returns 0 or -errno. */
int attachment_add(struct attachments *a, struct attachment *x);

/* x's mapping is gone: unlinks and frees x, drops the Barbican consumer when it was the
 * volume's last mapping, and rewrites the records. The scope holder is the caller's. */
void attachment_remove(struct attachments *a, struct attachment *x);

/* What Barbican knows the volume as: its LUKS UUID (shared by its snapshots), or the device. */
const char *attachment_resource(const struct attachment *x);

/* Drops records whose mapping vanished (closed behind our back), releasing their holders, and
 * closes the mappings whose device is gone (unplugged; an open one at its last close, deferred),
 * releasing theirs. Each dropped name joins the vanished list. */
void attachments_reconcile(struct attachments *a);

/* Whether name is in the vanished list (dropped by a reconcile, not attached again since): the
 * DM UUID its mapping had, or NULL. */
const char *attachments_vanished(const struct attachments *a, const char *name);

/*
 * Reconciles once the event loop runs (a device unplugged while keyscoped was down) and after
 * each block device the kernel reports removed (NETLINK_KOBJECT_UEVENT), so that the mapping,
 * holder and kernel key of an unplugged volume go without anyone asking (volumes/unplug.c).
 * Returns 0 (a uevent socket that cannot be had is logged: then calls reconcile), or -errno.
 */
int attachments_watch(struct attachments *a, sd_event *event);

/* The one serialiser of a record: the fields of attachments.json, and with a the live fields
 * of a reply (path, serial, holders). */
json_object *attachment_to_json(struct attachments *a, const struct attachment *x);

/* Adds the attachments and the vanished names to a Status reply. */
void attachments_to_json(struct attachments *a, json_object *reply);

enum intent_op {
	INTENT_ATTACH,		/* name, device, scope: before the table load */
	INTENT_DETACH,		/* name: before the remove */
	INTENT_RESIZE,		/* name: before the reload and resume */
	INTENT_FORMAT,		/* device, key-id: before the header is written */
	INTENT_REBIND,		/* device, key-id, luks-uuid: before the token is rewritten */
};

/* Records the intent (x: the record to be, or for format/rebind its device and key-id).
 * Returns 0 or -errno; the operation must not start without it. */
int intent_begin(struct attachments *a, enum intent_op op, const struct attachment *x);
/* The operation ended (done or undone): forgets the intent. */
void intent_end(struct attachments *a, enum intent_op op, const struct attachment *x);
