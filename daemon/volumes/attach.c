/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * format, attach, detach, resize, rebind: dm-crypt volumes opened by keyring reference.
 * Every method validates everything first and undoes what it did when a later step fails, so a
 * failed attach leaves no mapping, no extra holder and no orphan kernel key.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "kernel.h"
#include "log.h"
#include "luks.h"
#include "proto.h"
#include "source.h"
#include "unlock.h"
#include "util.h"

#define ATTACHMENTS_FILE "attachments.json"
#define ATTACHMENTS_MAX_FILE (16u * 1024 * 1024)
#define VANISHED_MAX 64

struct attachments {
	struct attachment *list;
	char *path;
	struct scopes *scopes;
	struct source *source;
	char vanished[VANISHED_MAX][DMCRYPT_NAME_MAX + 1];
	size_t n_vanished;
};

/* ---- records ---------------------------------------------------------------------------- */

static struct attachment *attachment_find(struct attachments *a, const char *name)
{
	for (struct attachment *x = a->list; x; x = x->next)
		if (streq(x->name, name))
			return x;
	return NULL;
}

/* What Barbican knows the volume as: its LUKS UUID (shared by its snapshots), or the device. */
static const char *consumer_resource(const struct attachment *x)
{
	return *x->luks_uuid ? x->luks_uuid : x->device;
}

/* Whether another attachment (a snapshot of the same volume) still consumes x's secret. */
static bool consumer_in_use(struct attachments *a, const struct attachment *x)
{
	for (struct attachment *y = a->list; y; y = y->next)
		if (y != x && streq(y->source_key_id, x->source_key_id) &&
		    streq(consumer_resource(y), consumer_resource(x)))
			return true;
	return false;
}

/* x (unlinked from a) is gone: the last mapping of its volume takes the consumer with it. */
static void consumer_drop(struct attachments *a, const struct attachment *x, bool grace)
{
	if (!consumer_in_use(a, x))
		source_consumer(a->source, x->source_key_id, consumer_resource(x), false, grace);
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
	json_object_object_add(root, "version", json_object_new_int(1));
	json_object_object_add(root, "attachments", arr);
	for (struct attachment *x = a->list; x; x = x->next) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(x->name));
		json_object_object_add(o, "device", json_object_new_string(x->device));
		json_object_object_add(o, "kind", json_object_new_string(x->kind));
		json_object_object_add(o, "luks-uuid", json_object_new_string(x->luks_uuid));
		json_object_object_add(o, "key-id", json_object_new_string(x->key_id));
		json_object_object_add(o, "source-key-id", json_object_new_string(x->source_key_id));
		json_object_object_add(o, "dm-uuid", json_object_new_string(x->dm_uuid));
		json_object_object_add(o, "source", json_object_new_string(x->source));
		json_object_object_add(o, "since", json_object_new_int64((int64_t) x->since));
		json_object_array_add(arr, o);
	}
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	/* Mappings do not outlive a reboot either: no fsync, as for scopes.json. */
	return write_file_atomic_flags(a->path, text, strlen(text), 0600, 0);
}

static void vanished_remove(struct attachments *a, const char *name)
{
	for (size_t i = 0; i < a->n_vanished; i++)
		if (streq(a->vanished[i], name)) {
			memmove(a->vanished[i], a->vanished[i + 1],
				sizeof(a->vanished[0]) * (a->n_vanished - i - 1));
			a->n_vanished--;
			return;
		}
}

static void vanished_add(struct attachments *a, const char *name)
{
	vanished_remove(a, name);
	if (a->n_vanished == VANISHED_MAX) {
		memmove(a->vanished[0], a->vanished[1], sizeof(a->vanished[0]) * (VANISHED_MAX - 1));
		a->n_vanished--;
	}
	snprintf(a->vanished[a->n_vanished++], sizeof(a->vanished[0]), "%s", name);
}

/* Whether x's mapping still exists as ours (same DM UUID). */
static bool attachment_alive(const struct attachment *x)
{
	struct dmcrypt_info info;

	if (dmcrypt_info(x->name, &info) < 0)
		return true;	/* cannot tell: keep the record, do not drop a holder */
	return info.exists && streq(info.uuid, x->dm_uuid);
}

static int copy_field(json_object *o, const char *field, char *dst, size_t size, bool need)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, field, &v) || !json_object_is_type(v, json_type_string))
		return need ? -EBADMSG : 0;
	s = json_object_get_string(v);
	if (strlen(s) >= size)
		return -EBADMSG;
	strcpy(dst, s);
	return 0;
}

static int record_parse(json_object *o, struct attachment *x)
{
	json_object *v;

	if (copy_field(o, "name", x->name, sizeof(x->name), true) < 0 ||
	    copy_field(o, "device", x->device, sizeof(x->device), true) < 0 ||
	    copy_field(o, "kind", x->kind, sizeof(x->kind), true) < 0 ||
	    copy_field(o, "luks-uuid", x->luks_uuid, sizeof(x->luks_uuid), false) < 0 ||
	    copy_field(o, "key-id", x->key_id, sizeof(x->key_id), true) < 0 ||
	    copy_field(o, "source-key-id", x->source_key_id, sizeof(x->source_key_id), false) < 0 ||
	    copy_field(o, "source", x->source, sizeof(x->source), false) < 0 ||
	    copy_field(o, "dm-uuid", x->dm_uuid, sizeof(x->dm_uuid), true) < 0 ||
	    !dmcrypt_name_is_valid(x->name) || !scope_id_is_valid(x->key_id))
		return -EBADMSG;
	if (!*x->source)
		strcpy(x->source, "local");
	if (!*x->source_key_id && keyid_is_valid(x->key_id))
		snprintf(x->source_key_id, sizeof(x->source_key_id), "%.*s", KEYID_MAX, x->key_id);
	if (json_object_object_get_ex(o, "since", &v))
		x->since = (uint64_t) json_object_get_int64(v);
	return 0;
}

int attachments_load(const char *state_dir, struct scopes *scopes, struct source *source,
		     struct attachments **ret)
{
	_cleanup_free_ struct attachments *a = calloc(1, sizeof(*a));
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_object *root = NULL;
	json_object *arr;
	struct attachment *gone = NULL;
	bool changed = false;
	int r;

	if (!a)
		return log_oom();
	a->scopes = scopes;
	a->source = source;
	a->path = path_join(state_dir, ATTACHMENTS_FILE);
	if (!a->path)
		return log_oom();
	r = read_full_file(a->path, ATTACHMENTS_MAX_FILE, &text, NULL);
	if (r == -ENOENT) {
		*ret = TAKE_PTR(a);
		return 0;
	}
	if (r < 0) {
		free(a->path);
		return log_error_errno(r, "Failed to read %s: %m", a->path);
	}
	root = json_tokener_parse(text);
	if (!root || !json_object_object_get_ex(root, "attachments", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		log_error("%s is not a keyscope attachment file; move it away to start without "
			  "records (mappings stay open).", a->path);
		free(a->path);
		return -EBADMSG;
	}
	for (size_t i = json_object_array_length(arr); i-- > 0;) {
		struct attachment *x = calloc(1, sizeof(*x));
		if (!x)
			return log_oom();
		if (record_parse(json_object_array_get_idx(arr, i), x) < 0) {
			log_warning("%s: record %zu is malformed, ignoring.", a->path, i);
			free(x);
			changed = true;
			continue;
		}
		if (!attachment_alive(x)) {
			log_warning("Attachment %s (%s, key %s) has no mapping any more: closed "
				    "behind keyscoped's back or lost in a reboot; dropping its record.",
				    x->name, x->device, x->key_id);
			vanished_add(a, x->name);
			x->next = gone;
			gone = x;
			changed = true;
			continue;
		}
		r = scope_restore_attached(scopes, x->key_id);
		if (r < 0) {
			free(x);
			return log_oom();
		}
		x->next = a->list;
		a->list = x;
	}
	/* Once every live record is in: a snapshot still attached keeps the consumer. */
	while (gone) {
		struct attachment *x = gone;
		gone = x->next;
		consumer_drop(a, x, true);
		free(x);
	}
	if (changed && (r = attachments_save(a)) < 0)
		log_warning_errno(r, "Failed to rewrite %s, ignoring: %m", a->path);
	*ret = TAKE_PTR(a);
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
	free(a->path);
	free(a);
	return NULL;
}

static void attachment_unlink(struct attachments *a, struct attachment *x)
{
	for (struct attachment **p = &a->list; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			return;
		}
}

void attachments_reconcile(struct attachments *a)
{
	bool changed = false;
	struct attachment *x, *next;

	for (x = a->list; x; x = next) {
		next = x->next;
		if (attachment_alive(x))
			continue;
		log_warning("Mapping %s of %s vanished (closed behind keyscoped's back?); releasing "
			    "its holder on key %s.", x->name, x->device, x->key_id);
		(void) scope_release(a->scopes, x->key_id, SCOPE_ATTACH);
		vanished_add(a, x->name);
		attachment_unlink(a, x);
		consumer_drop(a, x, true);
		free(x);
		changed = true;
	}
	if (changed)
		(void) attachments_save(a);
}

static json_object *attachment_to_json(struct attachments *a, const struct attachment *x)
{
	json_object *o = json_object_new_object();
	struct scope *s = scope_find(a->scopes, x->key_id);
	char path[DMCRYPT_NAME_MAX + 16];

	snprintf(path, sizeof(path), "/dev/mapper/%s", x->name);
	json_object_object_add(o, "name", json_object_new_string(x->name));
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "device", json_object_new_string(x->device));
	json_object_object_add(o, "kind", json_object_new_string(x->kind));
	json_object_object_add(o, "luks-uuid", json_object_new_string(x->luks_uuid));
	json_object_object_add(o, "key-id", json_object_new_string(x->source_key_id));
	json_object_object_add(o, "scope", json_object_new_string(x->key_id));
	json_object_object_add(o, "dm-uuid", json_object_new_string(x->dm_uuid));
	json_object_object_add(o, "source", json_object_new_string(x->source));
	json_object_object_add(o, "serial", json_object_new_int(s ? s->serial : 0));
	json_object_object_add(o, "holders", json_object_new_int(s ? (int) scope_holders(s) : 0));
	json_object_object_add(o, "since", json_object_new_int64((int64_t) x->since));
	return o;
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

/* ---- methods ---------------------------------------------------------------------------- */

static struct attachments *attachments_of(struct call *c)
{
	return c->server->attachments;
}

static int need_dm(struct call *c)
{
	const char *why;

	if (dmcrypt_available())
		return 0;
	/* The start-up kernel check (daemon/kernel.c) knows why; say it. */
	why = kernel_dm_problem();
	return call_error(c, -EOPNOTSUPP, "keyscope.NoDeviceMapper",
			  "device-mapper is not available on this kernel: %s. keyscoped serves "
			  "keys here but cannot open volumes; 'keyscopectl check' says more",
			  why ?: "/dev/mapper/control is missing or does not answer");
}

/* A block device given by absolute path. */
static int get_device(struct call *c, const char **ret)
{
	struct stat st;
	const char *dev;
	int r;

	r = call_get_string(c, "device", true, PATH_MAX - 1, &dev);
	if (r < 0)
		return r;
	if (dev[0] != '/')
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "device '%s' must be an absolute path", dev);
	if (stat(dev, &st) < 0)
		return call_error(c, -errno, "keyscope.NoSuchDevice", "device %s: %s", dev,
				  strerror(errno));
	if (!S_ISBLK(st.st_mode))
		return call_error(c, -ENOTBLK, "keyscope.NoSuchDevice",
				  "%s is not a block device (for a file, use losetup first)", dev);
	*ret = dev;
	return 0;
}

/* Fails when another process has the device open exclusively (mounted, mapped, in use). */
static int device_not_busy(struct call *c, const char *dev)
{
	int fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);

	if (fd < 0 && errno == EBUSY)
		return call_error(c, -EBUSY, "keyscope.DeviceBusy",
				  "%s is in use (mounted, mapped or held open by another process)",
				  dev);
	if (fd < 0)
		return call_error(c, -errno, "keyscope.NoSuchDevice", "cannot open %s: %s", dev,
				  strerror(errno));
	close(fd);
	return 0;
}

int m_volume_format(struct call *c)
{
	static const char *const allowed[] = { "device", "key-id", "force", NULL };
	_cleanup_secret_buf_ struct secret_buf key = {};
	struct luks_info info;
	const char *dev, *id;
	bool force = false;
	char what[128];
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = get_device(c, &dev)) < 0 ||
	    (r = call_get_key_id(c, "key-id", &id)) < 0 || (r = call_get_bool(c, "force", &force)) < 0)
		return r;
	r = device_not_busy(c, dev);
	if (r < 0)
		return r;
	if (!force && device_probe_content(dev, what, sizeof(what)) > 0)
		return call_error(c, -EEXIST, "keyscope.DeviceNotEmpty",
				  "%s holds %s; refusing to format it (use --force to overwrite)",
				  dev, what);
	r = scope_fetch(c->server->scopes, id, &key);
	if (r < 0)
		return call_key_error(c, r, id, "formatting with key");
	r = luks_format(dev, key.data, key.len, id, source_kind(c->server->source, id));
	if (r < 0)
		return call_error(c, r, "keyscope.FormatFailed", "formatting %s failed: %s", dev,
				  strerror(-r));
	r = luks_read(dev, &info);
	if (r < 0)
		return call_error(c, r, "keyscope.FormatFailed",
				  "%s was formatted but its header cannot be read back: %s", dev,
				  strerror(-r));
	log_info("Formatted %s as LUKS2 (%s, %u-byte sectors, UUID %s) with key %s for uid %u "
		 "pid %d.", dev, info.cipher, info.sector_size, info.uuid, id, (unsigned) c->uid,
		 (int) c->pid);
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "device", json_object_new_string(dev));
	json_object_object_add(c->reply, "key-id", json_object_new_string(id));
	json_object_object_add(c->reply, "luks-uuid", json_object_new_string(info.uuid));
	json_object_object_add(c->reply, "cipher", json_object_new_string(info.cipher));
	json_object_object_add(c->reply, "key-size", json_object_new_int((int) info.key_size * 8));
	json_object_object_add(c->reply, "sector-size", json_object_new_int((int) info.sector_size));
	return 0;
}

/* Default mapping name: "keyscope-" and the device's kernel name (vdb, dm-3, loop0). */
static int default_name(const char *dev, char *buf, size_t size)
{
	char link[64], target[PATH_MAX];
	uint32_t maj, min;
	ssize_t n;
	int r;

	r = blockdev_devnum(dev, &maj, &min);
	if (r < 0)
		return r;
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", maj, min);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	r = snprintf(buf, size, "keyscope-%s", strrchr(target, '/') ? strrchr(target, '/') + 1
								  : target);
	return r < 0 || (size_t) r >= size ? -ENAMETOOLONG : 0;
}

struct attach_req {
	const char *dev, *name, *key_id, *passphrase;
	char scope_id[SCOPE_ID_MAX + 1];
	bool plain, read_only;
	const char *cipher;
	uint64_t key_bits, offset, sector_size;
	char name_buf[DMCRYPT_NAME_MAX + 1];
};

static int attach_params(struct call *c, struct attach_req *q)
{
	static const char *const allowed[] = { "device", "name", "key-id", "plain", "cipher",
					       "key-size", "offset", "sector-size", "read-only",
					       "passphrase", NULL };
	int r;

	q->cipher = "aes-xts-plain64";
	q->key_bits = 512;
	q->sector_size = 512;
	if ((r = call_check_params(c, allowed)) < 0 || (r = get_device(c, &q->dev)) < 0 ||
	    (r = call_get_string(c, "name", false, 4096, &q->name)) < 0 ||
	    (r = call_get_bool(c, "plain", &q->plain)) < 0 ||
	    (r = call_get_bool(c, "read-only", &q->read_only)) < 0 ||
	    (r = call_get_string(c, "cipher", false, 63, &q->cipher)) < 0 ||
	    (r = call_get_string(c, "passphrase", false, 16, &q->passphrase)) < 0 ||
	    (r = call_get_uint(c, "key-size", false, 512, &q->key_bits)) < 0 ||
	    (r = call_get_uint(c, "offset", false, UINT64_MAX / 2, &q->offset)) < 0 ||
	    (r = call_get_uint(c, "sector-size", false, 4096, &q->sector_size)) < 0)
		return r;
	if (json_object_object_get_ex(c->params, "key-id", NULL) &&
	    (r = call_get_key_id(c, "key-id", &q->key_id)) < 0)
		return r;
	if (q->key_bits != 256 && q->key_bits != 512)
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "key-size must be 256 or 512 bits");
	if (q->passphrase && (!streq(q->passphrase, "hex") || q->plain || !q->key_id))
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "passphrase must be \"hex\" (the os-brick way: the lowercase hex of "
				  "the delegated key unlocks a keyslot), with key-id and without plain");
	if (q->sector_size != 512 && q->sector_size != 4096)
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "sector-size must be 512 or 4096");
	if (!q->name) {
		r = default_name(q->dev, q->name_buf, sizeof(q->name_buf));
		if (r < 0)
			return call_error(c, r, "keyscope.InvalidParameter",
					  "cannot derive a name for %s (%s); give --name", q->dev,
					  strerror(-r));
		q->name = q->name_buf;
	}
	if (!dmcrypt_name_is_valid(q->name))
		return call_error(c, -EINVAL, "keyscope.InvalidName",
				  "'%.64s' is not a valid volume name: 1-%d characters of "
				  "[A-Za-z0-9._-], not starting with '.' or '-'", q->name,
				  DMCRYPT_NAME_MAX);
	return 0;
}

/* Takes the holder for a LUKS volume: the key must open the header, checked once per header. */
static int hold_luks(struct call *c, struct attach_req *q, const struct luks_info *info,
		     struct scope **ret)
{
	struct scopes *t = c->server->scopes;
	_cleanup_secret_buf_ struct secret_buf key = {};
	struct scope *s = scope_find(t, q->key_id);
	int r;

	if (!s || s->serial <= 0 || !scope_is_verified(s, info->fingerprint)) {
		r = scope_fetch(t, q->key_id, &key);
		if (r < 0)
			return call_key_error(c, r, q->key_id, "fetching key");
		if (key.len != info->key_size || luks_verify_key(q->dev, key.data, key.len) < 0)
			return call_error(c, -EPERM, "keyscope.WrongKey",
					  "key %s does not open the LUKS header of %s (volume key "
					  "digest mismatch); nothing was attached", q->key_id, q->dev);
	}
	r = scope_acquire(t, q->key_id, SCOPE_ATTACH, key.len ? &key : NULL, &s);
	if (r < 0)
		return call_key_error(c, r, q->key_id, "installing key");
	(void) scope_add_verified(s, info->fingerprint);
	*ret = s;
	return 0;
}

/* The unlock a suspended attach waits for has ended: run the call again (or end it). */
static void on_unlock_done(void *userdata, int error)
{
	call_resume(userdata, error);
}

/*
 * Volumes formatted elsewhere (os-brick): the delegated key's lowercase hex is a keyslot
 * passphrase. Unlock it once, in a helper process (unlock.h: the key derivation takes seconds
 * and must not stall other clients; this call waits suspended and runs again), and install
 * the recovered volume key as the scope "vk:<LUKS UUID>" that every snapshot of the volume
 * shares: their opens then skip the key derivation entirely.
 */
static int hold_passphrase(struct call *c, struct attach_req *q, const struct luks_info *info,
			   struct scope **ret)
{
	struct scopes *t = c->server->scopes;
	_cleanup_secret_buf_ struct secret_buf key = {}, hex = {}, vk = {};
	struct scope *s = scope_find(t, q->scope_id);
	uint8_t fp[32];
	int r;

	/* The volume key scope is open to the key-ids that unlocked a keyslot, not to any. */
	r = luks_fingerprint_bind(info->fingerprint, q->key_id, fp);
	if (r < 0)
		return r;
	if (!s || s->serial <= 0 || !scope_is_verified(s, fp)) {
		r = unlock_take(c->server->unlocks, fp, on_unlock_done, c, &vk);
		if (r == -ENOENT) {
			r = scope_fetch(t, q->key_id, &key);
			if (r < 0)
				return call_key_error(c, r, q->key_id, "fetching key");
			r = secret_buf_new(key.len * 2 + 1, &hex);
			if (r < 0)
				return r;
			hex_encode(key.data, key.len, (char *) hex.data);
			r = unlock_start(c->server->unlocks, fp, q->dev, hex.data, key.len * 2,
					 on_unlock_done, c);
			if (r == -EINPROGRESS) {
				call_suspend(c);
				return r;
			}
			return call_error(c, r, "keyscope.AttachFailed",
					  "cannot start unlocking %s: %s", q->dev, strerror(-r));
		}
		if (r == -EINPROGRESS) {
			call_suspend(c);
			return r;
		}
		if (r == -EPERM)
			return call_error(c, r, "keyscope.WrongKey",
					  "the hex of key %s unlocks no keyslot of %s; nothing was "
					  "attached", q->key_id, q->dev);
		if (r == -ECHILD || r == -ETIMEDOUT)
			return call_error(c, r, "keyscope.AttachFailed",
					  "the keyslot unlock of %s ended without a result (its "
					  "process %s; see the daemon's log); nothing was attached",
					  q->dev, r == -ETIMEDOUT ? "ran out of time" : "died");
		if (r < 0)
			return call_error(c, r, "keyscope.BadHeader", "unlocking %s failed: %s",
					  q->dev, strerror(-r));
		log_info("Unlocked a keyslot of %s with key %s: its volume key becomes scope %s.",
			 q->dev, q->key_id, q->scope_id);
	}
	r = scope_acquire(t, q->scope_id, SCOPE_ATTACH, vk.len ? &vk : NULL, &s);
	if (r < 0)
		return call_key_error(c, r, q->scope_id, "installing volume key");
	(void) scope_add_verified(s, fp);
	*ret = s;
	return 0;
}

static int attach_error(struct call *c, int r, const struct attach_req *q, size_t key_size)
{
	switch (r) {
	case -EEXIST:
		return call_error(c, r, "keyscope.NameTaken",
				  "a device-mapper device named %s exists already; choose another "
				  "--name", q->name);
	case -ENOKEY:
	case -EKEYREVOKED:
	case -EINVAL:
		return call_error(c, r, "keyscope.KeyNotUsable",
				  "the kernel refused the table for %s: key keyscope:%s is not "
				  "reachable from keyscoped's keyrings or is not %zu bytes (%s)",
				  q->name, q->key_id, key_size, strerror(-r));
	default:
		return call_error(c, r, "keyscope.AttachFailed", "loading the table for %s failed: %s",
				  q->name, strerror(-r));
	}
}

int m_volume_attach(struct call *c)
{
	struct attachments *a = attachments_of(c);
	struct attach_req q = {};
	struct dmcrypt_params p = { .read_only = false };
	struct luks_info info = { .token = -1 };
	struct dmcrypt_info di;
	struct attachment *x;
	struct scope *s = NULL;
	uint64_t sectors;
	int r;

	if ((r = attach_params(c, &q)) < 0 || (r = need_dm(c)) < 0)
		return r;
	if (attachment_find(a, q.name) || (dmcrypt_info(q.name, &di) >= 0 && di.exists))
		return attach_error(c, -EEXIST, &q, 0);
	r = q.plain ? -ENOMEDIUM : luks_read(q.dev, &info);
	if (r == -ENOMEDIUM && !q.plain)
		return call_error(c, r, "keyscope.NotLuks",
				  "%s has no LUKS header; format it with 'keyscopectl format' or "
				  "give --plain with its cipher and key size", q.dev);
	if (r < 0 && r != -ENOMEDIUM)
		return call_error(c, r, "keyscope.BadHeader", "cannot read the LUKS header of %s: %s",
				  q.dev, strerror(-r));
	if (q.passphrase) {
		if (info.keyslots == 0)
			return call_error(c, -EINVAL, "keyscope.BadHeader",
					  "%s has no keyslot to unlock with a passphrase", q.dev);
		snprintf(q.scope_id, sizeof(q.scope_id), SCOPE_VK_PREFIX "%s", info.uuid);
	} else if (!q.plain) {
		if (info.token >= 0 && q.key_id && !streq(q.key_id, info.key_id))
			return call_error(c, -EINVAL, "keyscope.InvalidParameter",
					  "%s's keyscope token names key %s, not %s; use 'keyscopectl "
					  "rebind' to change it", q.dev, info.key_id, q.key_id);
		if (!q.key_id && info.token < 0)
			return call_error(c, -EINVAL, "keyscope.InvalidParameter",
					  "%s has no keyscope token; give --key", q.dev);
		if (!q.key_id)
			q.key_id = info.key_id;
		if (info.key_size != 32 && info.key_size != 64)
			return call_error(c, -EINVAL, "keyscope.BadHeader",
					  "%s has a %zu-byte volume key; keyscope opens 32 or 64",
					  q.dev, info.key_size);
	} else if (!q.key_id)
		return call_error(c, -EINVAL, "keyscope.InvalidParameter", "--plain needs --key");
	if (!q.passphrase)
		snprintf(q.scope_id, sizeof(q.scope_id), "%s", q.key_id);

	r = blockdev_size(q.dev, &sectors, NULL);
	if (r < 0)
		return call_error(c, r, "keyscope.NoSuchDevice", "size of %s: %s", q.dev, strerror(-r));
	snprintf(p.cipher, sizeof(p.cipher), "%s", q.plain ? q.cipher : info.cipher);
	p.key_size = q.plain ? q.key_bits / 8 : info.key_size;
	(void) scope_id_to_description(q.scope_id, p.key_desc, sizeof(p.key_desc));
	p.iv_offset = q.plain ? 0 : info.iv_offset;
	snprintf(p.device, sizeof(p.device), "%s", q.dev);
	p.offset = q.plain ? q.offset : info.data_offset;
	p.sector_size = q.plain ? (unsigned) q.sector_size : info.sector_size;
	p.read_only = q.read_only;
	if (sectors <= p.offset)
		return call_error(c, -ENOSPC, "keyscope.NoSuchDevice",
				  "%s is too small: %llu sectors, data starts at %llu", q.dev,
				  (unsigned long long) sectors, (unsigned long long) p.offset);
	p.size = (sectors - p.offset) / (p.sector_size / 512) * (p.sector_size / 512);

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	snprintf(x->name, sizeof(x->name), "%s", q.name);
	snprintf(x->device, sizeof(x->device), "%s", q.dev);
	snprintf(x->kind, sizeof(x->kind), "%s", q.plain ? "plain" : info.type);
	for (char *k = x->kind; *k; k++)
		*k = (char) (*k >= 'A' && *k <= 'Z' ? *k + 32 : *k);
	snprintf(x->luks_uuid, sizeof(x->luks_uuid), "%s", q.plain ? "" : info.uuid);
	snprintf(x->key_id, sizeof(x->key_id), "%s", q.scope_id);
	snprintf(x->source_key_id, sizeof(x->source_key_id), "%s", q.key_id);
	snprintf(x->source, sizeof(x->source), "%s", source_kind(c->server->source, q.key_id));
	x->since = (uint64_t) time(NULL);
	if (q.plain)
		snprintf(x->dm_uuid, sizeof(x->dm_uuid), "CRYPT-PLAIN-%s", q.name);
	else {
		char u[40], *o = u;
		for (const char *i = info.uuid; *i && o < u + sizeof(u) - 1; i++)
			if (*i != '-')
				*o++ = *i;
		*o = 0;
		snprintf(x->dm_uuid, sizeof(x->dm_uuid), "CRYPT-%s-%s-%s", info.type, u, q.name);
	}

	/* Hold the key, load the table, record it; undo in reverse order on failure. */
	if (q.plain) {
		r = scope_acquire(c->server->scopes, q.key_id, SCOPE_ATTACH, NULL, &s);
		if (r < 0) {
			free(x);
			return call_key_error(c, r, q.key_id, "installing key");
		}
	} else if ((r = q.passphrase ? hold_passphrase(c, &q, &info, &s)
				     : hold_luks(c, &q, &info, &s)) < 0) {
		free(x);
		return r;
	}
	if (s->key_len && s->key_len != p.key_size) {
		size_t have = s->key_len;	/* the release below may free s */

		(void) scope_release(c->server->scopes, q.scope_id, SCOPE_ATTACH);
		free(x);
		return call_error(c, -EINVAL, "keyscope.KeyNotUsable",
				  "key %s is %zu bytes but the table for %s needs %zu; nothing was "
				  "attached", q.key_id, have, q.name, p.key_size);
	}
	r = dmcrypt_create(q.name, x->dm_uuid, &p);
	if (r < 0) {
		(void) scope_release(c->server->scopes, q.scope_id, SCOPE_ATTACH);
		free(x);
		return attach_error(c, r, &q, p.key_size);
	}
	x->next = a->list;
	a->list = x;
	r = attachments_save(a);
	if (r < 0) {
		a->list = x->next;
		(void) dmcrypt_remove(q.name, false);
		(void) scope_release(c->server->scopes, q.scope_id, SCOPE_ATTACH);
		free(x);
		return call_error(c, r, "keyscope.StateError",
				  "cannot record the attachment in %s (%s); rolled back", a->path,
				  strerror(-r));
	}
	vanished_remove(a, q.name);
	log_info("Attached %s as /dev/mapper/%s by reference to keyscope:%s (serial %d, %u "
		 "holders) for uid %u pid %d.", q.dev, q.name, q.scope_id, (int) s->serial,
		 scope_holders(s), (unsigned) c->uid, (int) c->pid);
	/* Barbican counts the volume as a consumer of its secret; never blocks the attach. */
	source_consumer(c->server->source, x->source_key_id, consumer_resource(x), true, false);
	c->reply = attachment_to_json(a, x);
	json_object_object_add(c->reply, "fetches", json_object_new_int64((int64_t) s->fetches));
	return 0;
}

static int get_attachment(struct call *c, struct attachment **ret)
{
	const char *name;
	int r = call_get_string(c, "name", true, 4096, &name);

	if (r < 0)
		return r;
	*ret = attachment_find(attachments_of(c), name);
	if (!*ret)
		return call_error(c, -ENOENT, "keyscope.NoSuchVolume",
				  "no volume named '%.64s' is attached by keyscoped "
				  "(see 'keyscopectl status')", name);
	return 0;
}

int m_volume_detach(struct call *c)
{
	static const char *const allowed[] = { "name", "deferred", NULL };
	struct attachments *a = attachments_of(c);
	struct attachment *x;
	struct dmcrypt_info di;
	bool deferred = false;
	int r, left;

	if ((r = call_check_params(c, allowed)) < 0 || (r = get_attachment(c, &x)) < 0 ||
	    (r = call_get_bool(c, "deferred", &deferred)) < 0)
		return r;
	/* Never remove a mapping that is no longer ours (closed behind our back and the name
	 * reused by another tool): drop our record and holder instead. */
	if (dmcrypt_info(x->name, &di) >= 0 && di.exists && !streq(di.uuid, x->dm_uuid)) {
		r = call_error(c, -ESTALE, "keyscope.NoSuchVolume",
			       "/dev/mapper/%s is not keyscope's mapping any more (DM UUID %s, "
			       "ours was %s); its record and holder were dropped, the mapping "
			       "left alone", x->name, di.uuid, x->dm_uuid);
		attachments_reconcile(a);	/* frees x */
		return r;
	}
	r = dmcrypt_remove(x->name, deferred);
	if (r == -EBUSY) {
		int opens = dmcrypt_info(x->name, &di) >= 0 ? di.open_count : -1;
		return call_error(c, r, "keyscope.VolumeBusy",
				  "/dev/mapper/%s is in use (open count %d: mounted, or held by "
				  "another mapping or process); close it first or use --deferred",
				  x->name, opens);
	}
	if (r < 0 && r != -ENXIO && r != -ENODEV)
		return call_error(c, r, "keyscope.DetachFailed", "removing /dev/mapper/%s failed: %s",
				  x->name, strerror(-r));
	left = scope_release(c->server->scopes, x->key_id, SCOPE_ATTACH);
	log_info("Detached /dev/mapper/%s%s; key %s has %d holders left%s, for uid %u pid %d.",
		 x->name, deferred ? " (deferred)" : "", x->key_id, left < 0 ? 0 : left,
		 left == 0 ? " and was invalidated" : "", (unsigned) c->uid, (int) c->pid);
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "name", json_object_new_string(x->name));
	json_object_object_add(c->reply, "key-id", json_object_new_string(x->source_key_id));
	json_object_object_add(c->reply, "scope", json_object_new_string(x->key_id));
	json_object_object_add(c->reply, "holders", json_object_new_int(left < 0 ? 0 : left));
	attachment_unlink(a, x);
	consumer_drop(a, x, false);
	free(x);
	r = attachments_save(a);
	if (r < 0)
		log_warning_errno(r, "Failed to rewrite %s, ignoring: %m", a->path);
	return 0;
}

int m_volume_resize(struct call *c)
{
	static const char *const allowed[] = { "name", NULL };
	struct attachment *x;
	struct dmcrypt_info di;
	uint64_t sectors, offset, size;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = get_attachment(c, &x)) < 0 ||
	    (r = need_dm(c)) < 0)
		return r;
	r = dmcrypt_info(x->name, &di);
	if (r < 0 || !di.exists)
		return call_error(c, r < 0 ? r : -ENXIO, "keyscope.NoSuchVolume",
				  "/dev/mapper/%s is gone", x->name);
	/* The data offset is the last number before the optional arguments. */
	if (sscanf(di.params, "%*s %*s %*s %*s %" SCNu64, &offset) != 1)
		return call_error(c, -EBADMSG, "keyscope.ResizeFailed",
				  "cannot read the table of %s", x->name);
	r = blockdev_size(x->device, &sectors, NULL);
	if (r < 0 || sectors <= offset)
		return call_error(c, r < 0 ? r : -ENOSPC, "keyscope.ResizeFailed",
				  "cannot size %s", x->device);
	size = sectors - offset;
	if (strstr(di.params, "sector_size:4096"))
		size -= size % 8;
	r = dmcrypt_resize(x->name, size);
	if (r < 0)
		return call_error(c, r, "keyscope.ResizeFailed", "reloading %s failed: %s", x->name,
				  strerror(-r));
	log_info("Resized /dev/mapper/%s from %llu to %llu sectors for uid %u pid %d.", x->name,
		 (unsigned long long) di.size, (unsigned long long) size, (unsigned) c->uid,
		 (int) c->pid);
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "name", json_object_new_string(x->name));
	json_object_object_add(c->reply, "old-size", json_object_new_int64((int64_t) di.size));
	json_object_object_add(c->reply, "size", json_object_new_int64((int64_t) size));
	return 0;
}

int m_volume_rebind(struct call *c)
{
	static const char *const allowed[] = { "device", "key-id", NULL };
	_cleanup_secret_buf_ struct secret_buf key = {};
	struct luks_info info;
	const char *dev, *id;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = get_device(c, &dev)) < 0 ||
	    (r = call_get_key_id(c, "key-id", &id)) < 0)
		return r;
	r = luks_read(dev, &info);
	if (r < 0)
		return call_error(c, r, r == -ENOMEDIUM ? "keyscope.NotLuks" : "keyscope.BadHeader",
				  "cannot read a LUKS header on %s: %s", dev, strerror(-r));
	if (!streq(info.type, "LUKS2"))
		return call_error(c, -EMEDIUMTYPE, "keyscope.BadHeader",
				  "%s is %s; only LUKS2 carries a keyscope token", dev, info.type);
	r = scope_fetch(c->server->scopes, id, &key);
	if (r < 0)
		return call_key_error(c, r, id, "fetching key");
	if (key.len != info.key_size || luks_verify_key(dev, key.data, key.len) < 0)
		return call_error(c, -EPERM, "keyscope.WrongKey",
				  "key %s does not open the LUKS header of %s; the token is unchanged",
				  id, dev);
	r = luks_set_token(dev, id, source_kind(c->server->source, id));
	if (r < 0)
		return call_error(c, r, "keyscope.RebindFailed", "rewriting the token of %s: %s",
				  dev, strerror(-r));
	log_info("Rebound %s from key %s to key %s for uid %u pid %d.", dev,
		 info.token >= 0 ? info.key_id : "(none)", id, (unsigned) c->uid, (int) c->pid);
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "device", json_object_new_string(dev));
	json_object_object_add(c->reply, "key-id", json_object_new_string(id));
	json_object_object_add(c->reply, "previous-key-id",
			       json_object_new_string(info.token >= 0 ? info.key_id : "(none)"));
	return 0;
}

int m_volume_list(struct call *c)
{
	static const char *const allowed[] = { NULL };
	int r;

	if ((r = call_check_params(c, allowed)) < 0)
		return r;
	attachments_reconcile(attachments_of(c));
	c->reply = json_object_new_object();
	attachments_to_json(attachments_of(c), c->reply);
	return 0;
}
