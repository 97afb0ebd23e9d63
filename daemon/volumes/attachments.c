/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The attachment records (attachments.json), their one JSON form, and their reconciliation
 * with device-mapper. Crash recovery (intents, orphan mappings) is in recover.c.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "attachments-internal.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#define ATTACHMENTS_FILE "attachments.json"
#define ATTACHMENTS_MAX_FILE (16u * 1024 * 1024)

struct attachment *attachment_find(struct attachments *a, const char *name)
{
	for (struct attachment *x = a->list; x; x = x->next)
		if (streq(x->name, name))
			return x;
	return NULL;
}

const char *attachments_path(const struct attachments *a)
{
	return a->path;
}

size_t attachments_count(const struct attachments *a)
{
	size_t n = 0;

	for (const struct attachment *x = a ? a->list : NULL; x; x = x->next)
		n++;
	return n;
}

const char *attachment_resource(const struct attachment *x)
{
	return *x->luks_uuid ? x->luks_uuid : x->device;
}

/* Whether another attachment (a snapshot of the same volume) still consumes x's secret. */
static bool consumer_in_use(struct attachments *a, const struct attachment *x)
{
	for (struct attachment *y = a->list; y; y = y->next)
		if (y != x && streq(y->key_id, x->key_id) &&
		    streq(attachment_resource(y), attachment_resource(x)))
			return true;
	return false;
}

/* x (unlinked from a) is gone: the last mapping of its volume takes the consumer with it. */
void attachment_consumer_drop(struct attachments *a, const struct attachment *x, bool grace)
{
	if (*x->key_id && !consumer_in_use(a, x))
		source_consumer(a->source, x->key_id, attachment_resource(x), false, grace);
}

json_object *attachment_to_json(struct attachments *a, const struct attachment *x)
{
	json_object *o = json_object_new_object();
	char path[DMCRYPT_NAME_MAX + 16];
	struct scope *s;

	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(x->name));
	if (a) {
		snprintf(path, sizeof(path), "/dev/mapper/%s", x->name);
		json_object_object_add(o, "path", json_object_new_string(path));
	}
	json_object_object_add(o, "device", json_object_new_string(x->device));
	json_object_object_add(o, "kind", json_object_new_string(x->kind));
	json_object_object_add(o, "luks-uuid", json_object_new_string(x->luks_uuid));
	json_object_object_add(o, "key-id", json_object_new_string(x->key_id));
	json_object_object_add(o, "scope", json_object_new_string(x->scope));
	json_object_object_add(o, "dm-uuid", json_object_new_string(x->dm_uuid));
	json_object_object_add(o, "source", json_object_new_string(x->source));
	if (a) {
		s = scope_find(a->scopes, x->scope);
		json_object_object_add(o, "serial", json_object_new_int(s ? s->serial : 0));
		json_object_object_add(o, "holders",
				       json_object_new_int(s ? (int) scope_holders(s) : 0));
	}
	json_object_object_add(o, "since", json_object_new_int64((int64_t) x->since));
	return o;
}

static int attachments_save(struct attachments *a)
{
	_cleanup_json_ json_object *root = json_object_new_object();
	json_object *arr = json_object_new_array();
	const char *text;

	if (!root || !arr) {
		json_object_put(arr);
		return -ENOMEM;
	}
	json_object_object_add(root, "version", json_object_new_int(ATTACHMENTS_VERSION));
	json_object_object_add(root, "attachments", arr);
	for (struct attachment *x = a->list; x; x = x->next)
		json_object_array_add(arr, attachment_to_json(NULL, x));
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	/* Mappings do not outlive a reboot either: no fsync, as for scopes.json. */
	return write_file_atomic_flags(a->path, text, strlen(text), 0600, 0);
}

void attachments_save_or_warn(struct attachments *a)
{
	int r = attachments_save(a);

	if (r < 0)
		log_warning_errno(r, "Failed to rewrite %s, ignoring: %m", a->path);
}

static void vanished_drop(struct attachments *a, size_t i)
{
	memmove(a->vanished[i], a->vanished[i + 1], sizeof(a->vanished[0]) * (a->n_vanished - i - 1));
	memmove(a->vanished_uuid[i], a->vanished_uuid[i + 1],
		sizeof(a->vanished_uuid[0]) * (a->n_vanished - i - 1));
	a->n_vanished--;
}

static void vanished_remove(struct attachments *a, const char *name)
{
	for (size_t i = 0; i < a->n_vanished; i++)
		if (streq(a->vanished[i], name)) {
			vanished_drop(a, i);
			return;
		}
}

void attachments_vanished_add(struct attachments *a, const struct attachment *x)
{
	vanished_remove(a, x->name);
	if (a->n_vanished == VANISHED_MAX)
		vanished_drop(a, 0);
	snprintf(a->vanished[a->n_vanished], sizeof(a->vanished[0]), "%s", x->name);
	snprintf(a->vanished_uuid[a->n_vanished++], sizeof(a->vanished_uuid[0]), "%s", x->dm_uuid);
}

/*
 * Whether the device under a live mapping is gone (a disk unplugged, a volume detached from
 * the node): the kernel keeps the mapping, which then fails every I/O. Its table's device no
 * longer lists the mapping among its holders in sysfs; a device that took the same numbers
 * since is another one and does not list it either. False when it cannot be told.
 */
static bool backing_gone(const struct dmcrypt_info *di)
{
	char dev[32], path[96];
	struct stat st;

	if (dmcrypt_params_device(di->params, dev, sizeof(dev)) < 0 ||
	    stat("/sys/dev/block", &st) < 0)
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%s/holders/dm-%u", dev, (unsigned) di->minor);
	return lstat(path, &st) < 0 && errno == ENOENT;
}

enum { MAPPING_LIVE, MAPPING_VANISHED, MAPPING_ORPHAN };

/* x's mapping: still ours and on its device, gone, or ours on a device that is gone (in di). */
static int mapping_state(const struct attachment *x, struct dmcrypt_info *di)
{
	if (dmcrypt_info(x->name, di) < 0)
		return MAPPING_LIVE;	/* cannot tell: keep the record, do not drop a holder */
	if (!di->exists || !streq(di->uuid, x->dm_uuid))
		return MAPPING_VANISHED;
	return di->live_table && backing_gone(di) ? MAPPING_ORPHAN : MAPPING_LIVE;
}

bool attachment_alive(const struct attachment *x)
{
	struct dmcrypt_info di;

	return mapping_state(x, &di) != MAPPING_VANISHED;
}

static int copy_field(json_object *o, const char *field, char *dst, size_t size, bool need)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, field, &v) || !json_object_is_type(v, json_type_string))
		return need ? -EBADMSG : 0;
	s = json_object_get_string(v);
	if ((size_t) json_object_get_string_len(v) != strlen(s) || strlen(s) >= size)
		return -EBADMSG;
	strcpy(dst, s);
	return 0;
}

int attachment_parse(json_object *o, int version, struct attachment *x)
{
	/* Version 1 named the scope "key-id" and the delegated key "source-key-id"; version 2
	 * uses the names of the wire (keyscope.VolumeList): "scope" and "key-id". */
	const char *scope_field = version >= 2 ? "scope" : "key-id";
	const char *key_field = version >= 2 ? "key-id" : "source-key-id";
	json_object *v;

	if (copy_field(o, "name", x->name, sizeof(x->name), true) < 0 ||
	    copy_field(o, "device", x->device, sizeof(x->device), true) < 0 ||
	    copy_field(o, "kind", x->kind, sizeof(x->kind), true) < 0 ||
	    copy_field(o, "luks-uuid", x->luks_uuid, sizeof(x->luks_uuid), false) < 0 ||
	    copy_field(o, scope_field, x->scope, sizeof(x->scope), true) < 0 ||
	    copy_field(o, key_field, x->key_id, sizeof(x->key_id), false) < 0 ||
	    copy_field(o, "source", x->source, sizeof(x->source), false) < 0 ||
	    copy_field(o, "dm-uuid", x->dm_uuid, sizeof(x->dm_uuid), true) < 0 ||
	    !dmcrypt_name_is_valid(x->name) || !scope_id_is_valid(x->scope) ||
	    (*x->key_id && !keyid_is_valid(x->key_id)))
		return -EBADMSG;
	if (!*x->source)
		strcpy(x->source, "local");
	if (!*x->key_id && keyid_is_valid(x->scope))
		snprintf(x->key_id, sizeof(x->key_id), "%.*s", KEYID_MAX, x->scope);
	if (json_object_object_get_ex(o, "since", &v))
		x->since = (uint64_t) json_object_get_int64(v);
	return 0;
}

/* Reads attachments.json into a->list (in file order), holders not counted yet. */
static int records_read(struct attachments *a, bool *changed)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_object *root = NULL;
	json_object *arr, *v;
	int version = 1, r;

	r = read_full_file(a->path, ATTACHMENTS_MAX_FILE, &text, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return log_error_errno(r, "Failed to read %s: %m", a->path);
	root = json_tokener_parse(text);
	if (!root || !json_object_object_get_ex(root, "attachments", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		log_error("%s is not a keyscope attachment file; move it away to start without "
			  "records (mappings stay open).", a->path);
		return -EBADMSG;
	}
	if (json_object_object_get_ex(root, "version", &v))
		version = json_object_get_int(v);
	for (size_t i = json_object_array_length(arr); i-- > 0;) {
		struct attachment *x = calloc(1, sizeof(*x));
		if (!x)
			return log_oom();
		if (attachment_parse(json_object_array_get_idx(arr, i), version, x) < 0) {
			log_warning("%s: record %zu is malformed, ignoring.", a->path, i);
			free(x);
			*changed = true;
			continue;
		}
		x->next = a->list;
		a->list = x;
	}
	return 0;
}

void attachment_unlink(struct attachments *a, struct attachment *x)
{
	for (struct attachment **p = &a->list; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			return;
		}
}

/* Counts a holder for each record whose mapping is there; drops and reports the others. */
static int records_hold(struct attachments *a, bool *changed)
{
	struct attachment *gone = NULL, *x, *next;
	int r;

	for (x = a->list; x; x = next) {
		next = x->next;
		if (!attachment_alive(x)) {
			log_warning("Attachment %s (%s, key %s) has no mapping any more: closed "
				    "behind keyscoped's back or lost in a reboot; dropping its record.",
				    x->name, x->device, x->scope);
			attachments_vanished_add(a, x);
			attachment_unlink(a, x);
			x->next = gone;
			gone = x;
			*changed = true;
			continue;
		}
		r = scope_restore_attached(a->scopes, x->scope);
		if (r < 0)
			return log_oom();
	}
	/* Once every live record is in: a snapshot still attached keeps the consumer. */
	while (gone) {
		x = gone;
		gone = x->next;
		attachment_consumer_drop(a, x, true);
		free(x);
	}
	return 0;
}

/*
 * Is block device maj:min, or one it is stacked on (LVM over it), a mapping that references a
 * keyscope kernel key? Then 1 and its name in ret_name.
 */
static int on_keyscope_volume(unsigned maj, unsigned min, int depth, char *ret_name, size_t size)
{
	_cleanup_free_ char *name = NULL;
	char path[128], desc[256];
	struct dmcrypt_info di;
	size_t len = 0;
	DIR *d;
	int r = 0;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/dm/name", maj, min);
	if (read_sysfs(path, &name, &len) >= 0) {
		while (len > 0 && name[len - 1] == '\n')
			name[--len] = 0;
		if (dmcrypt_info(name, &di) >= 0 && di.exists && streq(di.target, "crypt") &&
		    dmcrypt_params_key_desc(di.params, desc, sizeof(desc)) >= 0 &&
		    strncmp(desc, "keyscope:", 9) == 0) {
			snprintf(ret_name, size, "%s", name);
			return 1;
		}
	}
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/slaves", maj, min);
	if (depth > 8 || !(d = opendir(path)))
		return 0;
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		char dev[PATH_MAX + 8];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(dev, sizeof(dev), "/dev/%s", e->d_name);
		if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode))
			r = on_keyscope_volume(major(st.st_rdev), minor(st.st_rdev), depth + 1,
					       ret_name, size);
	}
	closedir(d);
	return r;
}

int attachments_check_state_dir(const char *state_dir)
{
	char name[DMCRYPT_NAME_MAX + 1], dir[PATH_MAX];
	struct stat st;
	char *slash;

	/* a folder still to be made: the file system of its nearest existing parent */
	snprintf(dir, sizeof(dir), "%s", state_dir);
	while (stat(dir, &st) < 0 && (slash = strrchr(dir, '/')) && slash != dir)
		*slash = 0;
	if ((stat(dir, &st) < 0 && stat("/", &st) < 0) || major(st.st_dev) == 0 ||
	    on_keyscope_volume(major(st.st_dev), minor(st.st_dev), 0, name, sizeof(name)) <= 0)
		return 0;
	return log_error_errno(-ELOOP, "The state directory %s is on /dev/mapper/%s, a volume "
			       "keyscope opens with a key from that directory: at the next boot it "
			       "could not be opened. Move the state directory (state-dir in "
			       "keyscoped.conf) to a file system keyscope does not open.",
			       state_dir, name);
}

int attachments_load(const char *state_dir, struct scopes *scopes, struct source *source,
		     struct attachments **ret)
{
	struct attachments *a = calloc(1, sizeof(*a));
	bool changed = false;
	int r;

	if (!a)
		return log_oom();
	a->scopes = scopes;
	a->source = source;
	a->path = path_join(state_dir, ATTACHMENTS_FILE);
	a->intents_dir = path_join(state_dir, INTENTS_DIR);
	if (!a->path || !a->intents_dir) {
		attachments_free(a);
		return log_oom();
	}
	r = records_read(a, &changed);
	if (r >= 0)
		r = attachments_recover(a, &changed);
	if (r >= 0)
		r = records_hold(a, &changed);
	if (r < 0) {
		attachments_free(a);
		return r;
	}
	if (changed)
		attachments_save_or_warn(a);
	*ret = a;
	return 0;
}

struct attachments *attachments_free(struct attachments *a)
{
	if (!a)
		return NULL;
	while (a->list) {
		struct attachment *x = a->list;
		a->list = x->next;
		free(x);
	}
	a->uevents = sd_event_source_disable_unref(a->uevents);
	a->soon = sd_event_source_disable_unref(a->soon);
	free(a->path);
	free(a->intents_dir);
	free(a);
	return NULL;
}

int attachment_add(struct attachments *a, struct attachment *x)
{
	int r;

	x->next = a->list;
	a->list = x;
	r = attachments_save(a);
	if (r < 0) {
		a->list = x->next;
		x->next = NULL;
		return r;
	}
	vanished_remove(a, x->name);
	return 0;
}

void attachment_remove(struct attachments *a, struct attachment *x)
{
	attachment_unlink(a, x);
	attachment_consumer_drop(a, x, false);
	free(x);
	attachments_save_or_warn(a);
}

/*
 * The mapping of a device that is gone is closed: at once when nothing holds it open, else by
 * the kernel at its last close (deferred remove: a file system still mounted on it). dm-crypt
 * keeps its own copy of the key, so the holder goes now either way. False when device-mapper
 * refused (the record stays, and the next reconcile tries again).
 */
static bool close_orphan(const struct attachment *x, const struct dmcrypt_info *di)
{
	bool deferred = di->open_count > 0;
	int r = dmcrypt_remove(x->name, deferred);

	if (r < 0 && r != -ENXIO && r != -ENODEV) {
		log_warning_errno(r, "The device %s under /dev/mapper/%s is gone, but removing the "
				  "mapping failed (%m); keeping its record and its holder on key "
				  "%s.", x->device, x->name, x->scope);
		return false;
	}
	if (deferred)
		log_warning("The device %s under /dev/mapper/%s is gone (unplugged?); the mapping "
			    "is open (%d: mounted?) and goes at its last close; released its holder "
			    "on key %s.", x->device, x->name, di->open_count, x->scope);
	else
		log_warning("The device %s under /dev/mapper/%s is gone (unplugged?); removed the "
			    "mapping and released its holder on key %s.", x->device, x->name,
			    x->scope);
	return true;
}

void attachments_reconcile(struct attachments *a)
{
	bool changed = false;
	struct attachment *x, *next;
	struct dmcrypt_info di;

	for (x = a->list; x; x = next) {
		next = x->next;
		switch (mapping_state(x, &di)) {
		case MAPPING_LIVE:
			continue;
		case MAPPING_ORPHAN:
			if (!close_orphan(x, &di))
				continue;
			break;
		default:
			log_warning("Mapping %s of %s vanished (closed behind keyscoped's back?); "
				    "releasing its holder on key %s.", x->name, x->device, x->scope);
		}
		(void) scope_release(a->scopes, x->scope, SCOPE_ATTACH);
		attachments_vanished_add(a, x);
		attachment_unlink(a, x);
		attachment_consumer_drop(a, x, true);
		free(x);
		changed = true;
	}
	if (changed)
		attachments_save_or_warn(a);
}

const char *attachments_vanished(const struct attachments *a, const char *name)
{
	for (size_t i = 0; i < a->n_vanished; i++)
		if (streq(a->vanished[i], name))
			return a->vanished_uuid[i];
	return NULL;
}

void attachments_to_json(struct attachments *a, json_object *reply)
{
	json_object *arr = json_object_new_array(), *van = json_object_new_array();

	for (struct attachment *x = a->list; x; x = x->next)
		json_object_array_add(arr, attachment_to_json(a, x));
	for (size_t i = 0; i < a->n_vanished; i++)
		json_object_array_add(van, json_object_new_string(a->vanished[i]));
	json_object_object_add(reply, "attachments", arr);
	json_object_object_add(reply, "vanished", van);
}
