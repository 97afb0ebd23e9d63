/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Intents and crash recovery. A volume method records what it is about to do in
 * <state-dir>/intents/<operation>.<name> before it touches the kernel or a header, and forgets
 * it when it is done or undone. At start, with the records read but their holders not yet
 * counted, each intent left by a killed daemon is finished or rolled back, and every
 * device-mapper device that is keyscope's (DM UUID CRYPT-LUKS1-/LUKS2-/PLAIN- and a table that
 * references a logon key "keyscope:<scope>") but has no record is adopted or left and reported.
 * The rule (docs/volumes.md, "After a crash"):
 * - attach: a live table referencing the intent's scope is adopted when its key can be had
 *   (it is in the keyscope keyring, or the key source gives it) or the mapping is open; a
 *   mapping with no table or only an inactive one, or whose key cannot be had, is removed
 *   (never when open: then it is left and reported).
 * - detach: finished (the mapping removed, its record dropped) unless the mapping is open.
 * - resize: finished: a loaded inactive table is resumed, a suspended mapping resumed.
 * - format, rebind: finished when the header has no token (format: killed between the header
 *   and the token) or another key-id's (rebind) and the intent's key opens it: the token is
 *   written; a format killed before the header left none, which is said; else the header is
 *   left as it is and reported.
 * - no intent, no record (the state folder was lost): a live keyscope table is adopted when its
 *   key can be had or it is open; anything else is left alone and reported, never removed.
 */
#include <dirent.h>
#include <errno.h>
#include <keyutils.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attachments-internal.h"
#include "log.h"
#include "proto.h"
#include "luks.h"
#include "util.h"

#define INTENT_MAX_FILE (64u * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);
#define _cleanup_closedir_ _cleanup_(closedirp)

static const char *const op_names[] = {
	[INTENT_ATTACH] = "attach", [INTENT_DETACH] = "detach", [INTENT_RESIZE] = "resize",
	[INTENT_FORMAT] = "format", [INTENT_REBIND] = "rebind",
};

struct recovery {
	struct attachments *a;
	unsigned intents, adopted, removed, finished, resumed, left;
};

/* <intents>/<op>.<name>, or <op>.dev-<major>-<minor> for the header operations. */
static int intent_path(struct attachments *a, enum intent_op op, const struct attachment *x,
		       char *buf, size_t size)
{
	uint32_t maj, min;
	int r;

	if (op == INTENT_FORMAT || op == INTENT_REBIND) {
		r = blockdev_devnum(x->device, &maj, &min);
		if (r < 0)
			return r;
		r = snprintf(buf, size, "%s/%s.dev-%u-%u", a->intents_dir, op_names[op], maj, min);
	} else
		r = snprintf(buf, size, "%s/%s.%s", a->intents_dir, op_names[op], x->name);
	return r < 0 || (size_t) r >= size ? -ENAMETOOLONG : 0;
}

int intent_begin(struct attachments *a, enum intent_op op, const struct attachment *x)
{
	_cleanup_json_ json_object *o = attachment_to_json(NULL, x);
	char path[PATH_MAX];
	const char *text;
	int r;

	if (!o)
		return -ENOMEM;
	r = intent_path(a, op, x, path, sizeof(path));
	if (r < 0)
		return r;
	r = mkdir_p(a->intents_dir, 0700);
	if (r < 0)
		return r;
	json_object_object_add(o, "version", json_object_new_int(ATTACHMENTS_VERSION));
	json_object_object_add(o, "operation", json_object_new_string(op_names[op]));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	/* Against SIGKILL, not power loss: the page cache outlives the process, and a power loss
	 * takes the mappings with it. So, as for attachments.json, no fsync. */
	return write_file_atomic_flags(path, text, strlen(text), 0600, 0);
}

void intent_end(struct attachments *a, enum intent_op op, const struct attachment *x)
{
	char path[PATH_MAX];

	if (intent_path(a, op, x, path, sizeof(path)) >= 0 && unlink(path) < 0 && errno != ENOENT)
		log_warning_errno(-errno, "Failed to remove intent %s, ignoring: %m", path);
}

/* Whether scope's key can be had: in the keyscope keyring now, or from the key source. */
static bool key_obtainable(struct attachments *a, const char *scope)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	char desc[256];
	int r;

	if (scope_id_to_description(scope, desc, sizeof(desc)) < 0)
		return false;
	if (keyctl_search(scopes_keyring(a->scopes), "logon", desc, 0) > 0)
		return true;
	if (!keyid_is_valid(scope))
		return false;	/* a volume key scope comes only from a keyslot unlock */
	r = scope_fetch(a->scopes, scope, &key);
	return r >= 0 || r == -EINPROGRESS;
}

/* The scope a crypt table references, or NULL when it references no keyscope key. */
static const char *table_scope(const char *target, const char *params, char *buf, size_t size)
{
	if (!streq(target, "crypt") || dmcrypt_params_key_desc(params, buf, size) < 0)
		return NULL;
	return scope_id_from_description(buf);
}

static void link_record(struct recovery *rc, struct attachment *x, const struct dmcrypt_info *di)
{
	x->next = rc->a->list;
	rc->a->list = x;
	rc->adopted++;
	if (*x->key_id)
		source_consumer(rc->a->source, x->key_id, attachment_resource(x), true, false);
	if (di->suspended && dmcrypt_resume(x->name) >= 0) {
		log_info("Crash recovery: resumed suspended mapping %s.", x->name);
		rc->resumed++;
	}
}

/* Removes name's mapping unless it is open; reports either way. */
static void remove_mapping(struct recovery *rc, const char *name, const struct dmcrypt_info *di,
			   const char *why)
{
	int r;

	if (di->open_count > 0) {
		log_error("Crash recovery: mapping %s (%s) is open (%d openers) but cannot be "
			  "adopted; left alone: close it and remove it with 'dmsetup remove %s'.",
			  name, why, di->open_count, name);
		rc->left++;
		return;
	}
	r = dmcrypt_remove(name, false);
	if (r < 0 && r != -ENXIO && r != -ENODEV) {
		log_error_errno(r, "Crash recovery: cannot remove mapping %s (%s): %m", name, why);
		rc->left++;
		return;
	}
	log_warning("Crash recovery: removed mapping %s (%s).", name, why);
	rc->removed++;
}

static void resolve_attach(struct recovery *rc, struct attachment *x)
{
	struct dmcrypt_info di;
	char desc[256];
	const char *s;

	if (attachment_find(rc->a, x->name) || dmcrypt_info(x->name, &di) < 0 || !di.exists) {
		free(x);	/* recorded (done), or killed before the mapping was created */
		return;
	}
	if (!streq(di.uuid, x->dm_uuid)) {
		log_warning("Crash recovery: %s is not the mapping an interrupted attach created "
			    "(DM UUID %s); left alone.", x->name, di.uuid);
		free(x);
		return;
	}
	s = di.live_table ? table_scope(di.target, di.params, desc, sizeof(desc)) : NULL;
	if (s && streq(s, x->scope) &&
	    (di.open_count > 0 || key_obtainable(rc->a, x->scope))) {
		log_warning("Crash recovery: adopted mapping %s of %s (key %s), whose attach was "
			    "interrupted.", x->name, x->device, x->scope);
		link_record(rc, x, &di);
		return;
	}
	remove_mapping(rc, x->name, &di, !di.live_table ? "an interrupted attach, no live table"
				   : !s || !streq(s, x->scope) ? "an interrupted attach, another key"
				   : "an interrupted attach, key not obtainable");
	free(x);
}

static void resolve_detach(struct recovery *rc, struct attachment *x)
{
	struct attachment *rec = attachment_find(rc->a, x->name);
	struct dmcrypt_info di;

	free(x);
	if (!rec || dmcrypt_info(rec->name, &di) < 0)
		return;
	if (di.exists && streq(di.uuid, rec->dm_uuid)) {
		if (di.open_count > 0) {
			log_warning("Crash recovery: an interrupted detach of %s is not finished: "
				    "the mapping is open; it stays attached.", rec->name);
			return;
		}
		if (dmcrypt_remove(rec->name, false) < 0)
			return;
	}
	log_info("Crash recovery: finished the interrupted detach of %s.", rec->name);
	rc->finished++;
	attachment_unlink(rc->a, rec);
	attachment_consumer_drop(rc->a, rec, false);
	free(rec);
}

static void resolve_resize(struct recovery *rc, struct attachment *x)
{
	struct dmcrypt_info di;
	char d1[256], d2[256];
	const char *live, *inactive;

	if (dmcrypt_info(x->name, &di) < 0 || !di.exists || !streq(di.uuid, x->dm_uuid)) {
		free(x);
		return;
	}
	live = table_scope(di.target, di.params, d1, sizeof(d1));
	inactive = di.inactive_table ? table_scope(di.inactive_target, di.inactive_params, d2,
						   sizeof(d2)) : NULL;
	if (di.inactive_table && (!inactive || !live || !streq(live, inactive))) {
		log_error("Crash recovery: the inactive table of %s does not reference its key; "
			  "not resumed ('dmsetup clear %s' drops it).", x->name, x->name);
		rc->left++;
	} else if ((di.inactive_table || di.suspended) && dmcrypt_resume(x->name) >= 0) {
		log_info("Crash recovery: finished the interrupted resize of %s (resumed).",
			 x->name);
		rc->resumed++;
	}
	free(x);
}

/*
 * format, rebind: the token names the intent's key once its header opens with that key. A
 * format killed before libcryptsetup wrote its header left no LUKS header: nothing to finish,
 * the device is formatted again. Killed between the header and the token, it left a header
 * with neither keyslot nor token, which records no key size: the digest check decides.
 */
static void resolve_token(struct recovery *rc, enum intent_op op, const struct attachment *x)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	struct luks_info info = { .token = -1 };
	int r;

	r = luks_read(x->device, &info);
	if (r >= 0 && info.token >= 0 && streq(info.key_id, x->key_id))
		return;		/* done before the kill */
	if (r == -ENOMEDIUM && op == INTENT_FORMAT) {
		log_warning("Crash recovery: the interrupted format of %s stopped before its "
			    "header was written: %s holds no LUKS header and no keyscope volume; "
			    "'keyscopectl format %s --key %s' formats it again.", x->device,
			    x->device, x->device, x->key_id);
		return;
	}
	if (r >= 0 && (op == INTENT_FORMAT ? info.token >= 0
		       : *x->luks_uuid && !streq(info.uuid, x->luks_uuid))) {
		log_warning("Crash recovery: %s's header is not the one an interrupted %s was "
			    "writing; left alone.", x->device, op_names[op]);
		return;
	}
	if (r >= 0)
		r = scope_fetch(rc->a->scopes, x->key_id, &key);
	if (r >= 0 && ((info.key_size && key.len != info.key_size) ||
		       luks_verify_key(x->device, key.data, key.len) < 0))
		r = -EPERM;
	if (r >= 0)
		r = luks_set_token(x->device, x->key_id, source_kind(rc->a->source, x->key_id),
				   key.len);
	if (r < 0) {
		/* E.g. a Barbican key, fetched in the background (-EINPROGRESS): the token can be
		 * written later by hand, since rebind opens a header that records no key size. */
		log_error_errno(r, "Crash recovery: an interrupted %s of %s with key %s cannot be "
				"finished (%m); its header is left as it is: 'keyscopectl rebind "
				"%s --key %s' writes the token once the key can be had%s.",
				op_names[op], x->device, x->key_id, x->device, x->key_id,
				op == INTENT_FORMAT ? ", 'keyscopectl format --force' starts again" : "");
		rc->left++;
		return;
	}
	log_info("Crash recovery: finished the interrupted %s of %s (token names key %s).",
		 op_names[op], x->device, x->key_id);
	rc->finished++;
}

static int token_intent_parse(json_object *o, struct attachment *x)
{
	static const struct { const char *field; size_t off, size; } f[] = {
		{ "device", offsetof(struct attachment, device), PATH_MAX },
		{ "key-id", offsetof(struct attachment, key_id), KEYID_MAX + 1 },
		{ "luks-uuid", offsetof(struct attachment, luks_uuid), 40 },
	};
	json_object *v;

	for (size_t i = 0; i < ELEMENTSOF(f); i++) {
		if (!json_object_object_get_ex(o, f[i].field, &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    (size_t) json_object_get_string_len(v) >= f[i].size ||
		    strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
			return -EBADMSG;
		strcpy((char *) x + f[i].off, json_object_get_string(v));
	}
	return keyid_is_valid(x->key_id) && x->device[0] == '/' ? 0 : -EBADMSG;
}

static int intent_op_of(const char *file)
{
	for (size_t i = 0; i < ELEMENTSOF(op_names); i++) {
		size_t n = strlen(op_names[i]);
		if (strncmp(file, op_names[i], n) == 0 && file[n] == '.')
			return (int) i;
	}
	return -EINVAL;
}

static void resolve_file(struct recovery *rc, const char *path, enum intent_op op)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_object *o = NULL;
	struct attachment *x = calloc(1, sizeof(*x));
	int r;

	if (!x)
		return;
	r = read_full_file(path, INTENT_MAX_FILE, &text, NULL);
	if (r >= 0 && !(o = json_tokener_parse(text)))
		r = -EBADMSG;
	if (r >= 0)
		r = op == INTENT_FORMAT || op == INTENT_REBIND ? token_intent_parse(o, x)
							       : attachment_parse(o, 2, x);
	if (r < 0) {
		log_warning_errno(r, "Crash recovery: intent %s is unreadable, ignoring: %m", path);
		free(x);
		return;
	}
	rc->intents++;
	switch (op) {
	case INTENT_ATTACH:
		return resolve_attach(rc, x);
	case INTENT_DETACH:
		return resolve_detach(rc, x);
	case INTENT_RESIZE:
		return resolve_resize(rc, x);
	default:
		resolve_token(rc, op, x);
		free(x);
	}
}

static int intents_resolve(struct recovery *rc)
{
	_cleanup_closedir_ DIR *d = opendir(rc->a->intents_dir);
	struct dirent *de;
	char path[PATH_MAX];
	int op;

	if (!d)
		return errno == ENOENT ? 0 : log_error_errno(-errno, "Failed to open %s: %m",
							     rc->a->intents_dir);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", rc->a->intents_dir, de->d_name);
		op = strstr(de->d_name, ".tmp.") ? -EINVAL : intent_op_of(de->d_name);
		if (op >= 0)
			resolve_file(rc, path, (enum intent_op) op);
		/* Resolved, or a half-written temporary file of a killed write. */
		if (unlink(path) < 0 && errno != ENOENT)
			log_warning_errno(-errno, "Failed to remove %s, ignoring: %m", path);
	}
	return 0;
}

static bool startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* What a keyscope DM UUID says: the kind, and for LUKS the header's UUID (with dashes). */
static const char *dm_uuid_kind(const char *uuid, char *luks_uuid, size_t size)
{
	const char *hex;

	if (startswith(uuid, "CRYPT-PLAIN-"))
		return "plain";
	if (!startswith(uuid, "CRYPT-LUKS2-") && !startswith(uuid, "CRYPT-LUKS1-"))
		return NULL;
	hex = uuid + strlen("CRYPT-LUKS2-");
	if (strspn(hex, "0123456789abcdef") == 32 && hex[32] == '-')
		snprintf(luks_uuid, size, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
			 hex + 16, hex + 20);
	return uuid[10] == '2' ? "luks2" : "luks1";
}

/* A record for a mapping found without one, from its DM UUID and table. */
static struct attachment *orphan_record(struct recovery *rc, const char *name, const char *kind,
					const char *scope, const struct dmcrypt_info *di)
{
	struct attachment *x = calloc(1, sizeof(*x));
	char devnum[64], link[80], *real;

	if (!x)
		return NULL;
	snprintf(x->name, sizeof(x->name), "%s", name);
	snprintf(x->kind, sizeof(x->kind), "%s", kind);
	(void) dm_uuid_kind(di->uuid, x->luks_uuid, sizeof(x->luks_uuid));
	snprintf(x->scope, sizeof(x->scope), "%s", scope);
	if (keyid_is_valid(scope))
		snprintf(x->key_id, sizeof(x->key_id), "%s", scope);
	snprintf(x->dm_uuid, sizeof(x->dm_uuid), "%s", di->uuid);
	snprintf(x->source, sizeof(x->source), "%s", source_kind(rc->a->source, scope));
	x->since = (uint64_t) time(NULL);
	if (dmcrypt_params_device(di->params, devnum, sizeof(devnum)) >= 0) {
		snprintf(link, sizeof(link), "/dev/block/%s", devnum);
		real = realpath(link, NULL);
		snprintf(x->device, sizeof(x->device), "%s", real ?: link);
		free(real);
	}
	return x;
}

static int orphan_check(const char *name, void *userdata)
{
	struct recovery *rc = userdata;
	struct dmcrypt_info di;
	struct attachment *x;
	char luks_uuid[40], d1[256], d2[256];
	const char *kind, *live, *inactive;

	if (attachment_find(rc->a, name) || dmcrypt_info(name, &di) < 0 || !di.exists)
		return 0;
	kind = dm_uuid_kind(di.uuid, luks_uuid, sizeof(luks_uuid));
	live = di.live_table ? table_scope(di.target, di.params, d1, sizeof(d1)) : NULL;
	inactive = di.inactive_table ? table_scope(di.inactive_target, di.inactive_params, d2,
						   sizeof(d2)) : NULL;
	if (!kind || (!live && !inactive))
		return 0;	/* not keyscope's */
	if (live && (di.open_count > 0 || key_obtainable(rc->a, live))) {
		x = orphan_record(rc, name, kind, live, &di);
		if (!x)
			return -ENOMEM;
		log_warning("Crash recovery: adopted mapping %s of %s (key %s), which had no "
			    "record.", name, x->device, live);
		link_record(rc, x, &di);
		return 0;
	}
	log_error("Crash recovery: mapping %s references key keyscope:%s but has no record%s; "
		  "left alone: if nothing uses it, remove it with 'dmsetup remove %s'.", name,
		  live ?: inactive, live ? " and its key cannot be had" : " and no live table",
		  name);
	rc->left++;
	return 0;
}

/* A mapping left suspended by a killed reload would hang every I/O: resume it. */
static void resume_suspended(struct recovery *rc)
{
	struct dmcrypt_info di;

	for (struct attachment *x = rc->a->list; x; x = x->next)
		if (dmcrypt_info(x->name, &di) >= 0 && di.exists && di.suspended &&
		    streq(di.uuid, x->dm_uuid) && dmcrypt_resume(x->name) >= 0) {
			log_warning("Crash recovery: resumed suspended mapping %s.", x->name);
			rc->resumed++;
		}
}

int attachments_recover(struct attachments *a, bool *changed)
{
	struct recovery rc = { .a = a };
	int r;

	r = intents_resolve(&rc);
	if (r < 0)
		return r;
	if (dmcrypt_available()) {
		r = dmcrypt_foreach(orphan_check, &rc);
		if (r == -ENOMEM)
			return log_oom();
		if (r < 0)
			log_warning_errno(r, "Cannot list device-mapper devices, not looking for "
					  "orphan mappings: %m");
		resume_suspended(&rc);
	}
	if (rc.adopted || rc.removed || rc.finished)
		*changed = true;
	if (rc.intents || rc.adopted || rc.removed || rc.left || rc.resumed)
		log_notice("Crash recovery: %u interrupted operations; mappings adopted %u, "
			   "removed %u, left %u; operations finished %u; resumed %u.", rc.intents,
			   rc.adopted, rc.removed, rc.left, rc.finished, rc.resumed);
	return 0;
}
