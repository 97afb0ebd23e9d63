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
#include "attachments.h"
#include "event.h"
#include "format.h"
#include "kernel.h"
#include "log.h"
#include "luks.h"
#include "pending.h"
#include "proto.h"
#include "settle.h"
#include "attach-params.h"
#include "source.h"
#include "unlock.h"
#include "util.h"

static struct attachments *attachments_of(struct call *c)
{
	return c->daemon->attachments;
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

int m_volume_format(struct call *c)
{
	static const char *const allowed[] = { "device", "key-id", "force", NULL };
	const char *dev, *id;
	bool force = false;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = volume_get_device(c, &dev)) < 0 ||
	    (r = call_get_key_id(c, "key-id", &id)) < 0 || (r = call_get_bool(c, "force", &force)) < 0)
		return r;
	return volume_format(c, dev, id, force);
}

/* Takes the holder for a LUKS volume: the key must open the header, checked once per header. */
static int hold_luks(struct call *c, struct attach_req *q, const struct luks_info *info,
		     struct scope **ret)
{
	struct scopes *t = c->daemon->scopes;
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
	struct scopes *t = c->daemon->scopes;
	_cleanup_secret_buf_ struct secret_buf key = {}, hex = {}, vk = {};
	struct scope *s = scope_find(t, q->scope_id);
	uint8_t fp[32];
	int r;

	/* The volume key scope is open to the key-ids that unlocked a keyslot, not to any. */
	r = luks_fingerprint_bind(info->fingerprint, q->key_id, fp);
	if (r < 0)
		return r;
	if (!s || s->serial <= 0 || !scope_is_verified(s, fp)) {
		r = unlock_take(c->daemon->unlocks, fp, on_unlock_done, c, &vk);
		if (r == -ENOENT) {
			r = scope_fetch(t, q->key_id, &key);
			if (r < 0)
				return call_key_error(c, r, q->key_id, "fetching key");
			r = secret_buf_new(key.len * 2 + 1, &hex);
			if (r < 0)
				return r;
			hex_encode(key.data, key.len, (char *) hex.data);
			r = unlock_start(c->daemon->unlocks, fp, q->dev, hex.data, key.len * 2,
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

/* Reads the header and settles which key and scope the table references. */
static int attach_key(struct call *c, struct attach_req *q, struct luks_info *info)
{
	const char *why = NULL;
	int r = q->plain ? -ENOMEDIUM : luks_read_reason(q->dev, info, &why);

	if (r == -ENOMEDIUM && !q->plain)
		return call_error(c, r, "keyscope.NotLuks",
				  "%s has no LUKS header; format it with 'keyscopectl format' or "
				  "give --plain with its cipher and key size", q->dev);
	if (r == -EBADMSG && why)
		return call_error(c, r, "keyscope.BadHeader", "%s: %s (see 'cryptsetup token "
				  "export')", q->dev, why);
	if (r < 0 && r != -ENOMEDIUM)
		return call_error(c, r, "keyscope.BadHeader", "cannot read the LUKS header of %s: %s",
				  q->dev, strerror(-r));
	if (q->passphrase) {
		if (info->keyslots == 0)
			return call_error(c, -EINVAL, "keyscope.BadHeader",
					  "%s has no keyslot to unlock with a passphrase", q->dev);
		snprintf(q->scope_id, sizeof(q->scope_id), SCOPE_VK_PREFIX "%s", info->uuid);
		return 0;
	}
	if (q->plain && !q->key_id)
		return call_error(c, -EINVAL, "keyscope.InvalidParameter", "--plain needs --key");
	if (!q->plain) {
		if (info->token >= 0 && q->key_id && !streq(q->key_id, info->key_id))
			return call_error(c, -EINVAL, "keyscope.InvalidParameter",
					  "%s's keyscope token names key %s, not %s; use 'keyscopectl "
					  "rebind' to change it", q->dev, info->key_id, q->key_id);
		if (!q->key_id && info->token < 0)
			return call_error(c, -EINVAL, "keyscope.InvalidParameter",
					  "%s has no keyscope token; give --key", q->dev);
		if (!q->key_id)
			q->key_id = info->key_id;
		if (info->key_size != 32 && info->key_size != 64)
			return call_error(c, -EINVAL, "keyscope.BadHeader",
					  "%s has a %zu-byte volume key; keyscope opens 32 or 64",
					  q->dev, info->key_size);
	}
	snprintf(q->scope_id, sizeof(q->scope_id), "%s", q->key_id);
	return 0;
}

/* The crypt table: the header's (or --plain's) cipher and layout over the whole device. */
static int attach_table(struct call *c, const struct attach_req *q, const struct luks_info *info,
			struct dmcrypt_params *p)
{
	uint64_t sectors;
	int r;

	r = blockdev_size(q->dev, &sectors, NULL);
	if (r < 0)
		return call_error(c, r, "keyscope.NoSuchDevice", "size of %s: %s", q->dev,
				  strerror(-r));
	snprintf(p->cipher, sizeof(p->cipher), "%s", q->plain ? q->cipher : info->cipher);
	p->key_size = q->plain ? q->key_bits / 8 : info->key_size;
	(void) scope_id_to_description(q->scope_id, p->key_desc, sizeof(p->key_desc));
	p->iv_offset = q->plain ? 0 : info->iv_offset;
	snprintf(p->device, sizeof(p->device), "%s", q->dev);
	p->offset = q->plain ? q->offset : info->data_offset;
	p->sector_size = q->plain ? (unsigned) q->sector_size : info->sector_size;
	p->read_only = q->read_only;
	/* the request's flags, and those the LUKS2 header keeps, as cryptsetup open does */
	p->flags = q->dm_flags | (q->plain ? 0 : info->dm_flags);
	if (sectors <= p->offset)
		return call_error(c, -ENOSPC, "keyscope.NoSuchDevice",
				  "%s is too small: %llu sectors, data starts at %llu", q->dev,
				  (unsigned long long) sectors, (unsigned long long) p->offset);
	p->size = (sectors - p->offset) / (p->sector_size / 512) * (p->sector_size / 512);
	return 0;
}

/* The record to be: what attachments.json and the reply will say. */
static void attach_record(struct call *c, const struct attach_req *q,
			  const struct luks_info *info, struct attachment *x)
{
	char u[40], *o = u;

	snprintf(x->name, sizeof(x->name), "%s", q->name);
	snprintf(x->device, sizeof(x->device), "%s", q->dev);
	snprintf(x->kind, sizeof(x->kind), "%s", q->plain ? "plain" : info->type);
	for (char *k = x->kind; *k; k++)
		*k = (char) (*k >= 'A' && *k <= 'Z' ? *k + 32 : *k);
	snprintf(x->luks_uuid, sizeof(x->luks_uuid), "%s", q->plain ? "" : info->uuid);
	snprintf(x->scope, sizeof(x->scope), "%s", q->scope_id);
	snprintf(x->key_id, sizeof(x->key_id), "%s", q->key_id);
	snprintf(x->source, sizeof(x->source), "%s", source_kind(c->daemon->source, q->key_id));
	x->since = (uint64_t) time(NULL);
	if (q->plain) {
		snprintf(x->dm_uuid, sizeof(x->dm_uuid), "CRYPT-PLAIN-%s", q->name);
		return;
	}
	for (const char *i = info->uuid; *i && o < u + sizeof(u) - 1; i++)
		if (*i != '-')
			*o++ = *i;
	*o = 0;
	snprintf(x->dm_uuid, sizeof(x->dm_uuid), "CRYPT-%s-%s-%s", info->type, u, q->name);
}

/* Takes the scope's holder (installing its kernel key) for the table's key size. */
static int attach_hold(struct call *c, struct attach_req *q, const struct luks_info *info,
		       size_t key_size, struct scope **ret)
{
	size_t have;
	int r;

	if (q->plain) {
		r = scope_acquire(c->daemon->scopes, q->key_id, SCOPE_ATTACH, NULL, ret);
		if (r < 0)
			return call_key_error(c, r, q->key_id, "installing key");
	} else if ((r = q->passphrase ? hold_passphrase(c, q, info, ret)
				      : hold_luks(c, q, info, ret)) < 0)
		return r;
	if (!(*ret)->key_len || (*ret)->key_len == key_size)
		return 0;
	have = (*ret)->key_len;	/* the release below may free the scope */
	(void) scope_release(c->daemon->scopes, q->scope_id, SCOPE_ATTACH);
	return call_error(c, -EINVAL, "keyscope.KeyNotUsable",
			  "key %s is %zu bytes but the table for %s needs %zu; nothing was "
			  "attached", q->key_id, have, q->name, key_size);
}

/*
 * The intent first (a kill from here on is recovered at start), then table, then record.
 * *ret_cookie: udev's work on the new mapping, not waited for here (settle.h).
 */
static int attach_commit(struct call *c, const struct attach_req *q,
			 const struct dmcrypt_params *p, struct attachment *x, uint32_t *ret_cookie)
{
	struct attachments *a = attachments_of(c);
	int r;

	r = intent_begin(a, INTENT_ATTACH, x);
	if (r < 0)
		return call_error(c, r, "keyscope.StateError",
				  "cannot record the attach of %s in %s (%s); nothing was attached",
				  q->name, attachments_path(a), strerror(-r));
	settle_prepare(c->daemon->settles);
	r = dmcrypt_create_nowait(q->name, x->dm_uuid, p, ret_cookie);
	if (r < 0) {
		intent_end(a, INTENT_ATTACH, x);
		return attach_error(c, r, q, p->key_size);
	}
	r = attachment_add(a, x);
	if (r < 0) {
		/* udev's work on it first: the remove waits for its own */
		dmcrypt_udev_wait(*ret_cookie);
		*ret_cookie = 0;
		(void) dmcrypt_remove(q->name, false);
		intent_end(a, INTENT_ATTACH, x);
		return call_error(c, r, "keyscope.StateError",
				  "cannot record the attachment in %s (%s); rolled back",
				  attachments_path(a), strerror(-r));
	}
	intent_end(a, INTENT_ATTACH, x);
	return 0;
}

/*
 * A unit's attach ("pending") that finds its volume attached from the same device already (a
 * pending volume attached in the background, the unit started again) is done, not refused.
 */
static bool attached_already(struct call *c, const struct attach_req *q)
{
	struct attachment *x = attachment_find(attachments_of(c), q->name);

	if (!q->pending || !x || !streq(x->device, q->dev))
		return false;
	c->reply = attachment_to_json(attachments_of(c), x);
	json_object_object_add(c->reply, "already", json_object_new_boolean(1));
	return true;
}

static int volume_attach(struct call *c);

static void on_settled(void *userdata, int error)
{
	call_complete(userdata);	/* the reply was made; the node exists now (or is late) */
}

/* Answers the attach once udev has made /dev/mapper/NAME, as cryptsetup open does. */
static void attach_settle(struct call *c, uint32_t cookie, const char *name)
{
	if (!cookie)
		return;
	if (settle_wait(c->daemon->settles, cookie, name, on_settled, c) >= 0) {
		call_defer(c);
		return;
	}
	dmcrypt_udev_wait(cookie);	/* out of memory: the old way */
}

/* A string parameter attach_params() has checked already, or NULL. */
static const char *param_str(struct call *c, const char *field)
{
	json_object *v;

	return json_object_object_get_ex(c->params, field, &v) &&
	       json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int m_volume_attach(struct call *c)
{
	const char *name = param_str(c, "name"), *dev = param_str(c, "device");
	json_object *v;
	int r = volume_attach(c);

	/* The key source is down (Barbican, the network at boot): keep it, answer pending.
	 * Only with a name: a derived one follows the kernel's order and could be another's. */
	if (r < 0 && r != -EINPROGRESS && c->error &&
	    streq(c->error, "keyscope.KeySourceUnavailable") && name && dev &&
	    json_object_object_get_ex(c->params, "pending", &v) && json_object_get_boolean(v) &&
	    pending_add(c, name, dev) >= 0)
		return 0;
	/* attached by a client while pending: no more tries (a try's own end is pending.c's) */
	if (r >= 0 && name && !c->done &&
	    !(c->reply && json_object_object_get_ex(c->reply, "pending", NULL)))
		(void) pending_cancel(c->daemon, name);
	return r;
}

static int volume_attach(struct call *c)
{
	struct attachments *a = attachments_of(c);
	struct attach_req q = {};
	struct dmcrypt_params p = { .read_only = false };
	struct luks_info info = { .token = -1 };
	struct dmcrypt_info di;
	_cleanup_free_ struct attachment *x = NULL;
	struct scope *s = NULL;
	uint32_t cookie = 0;
	int r;

	if ((r = attach_params(c, &q)) < 0 || (r = need_dm(c)) < 0)
		return r;
	if (attached_already(c, &q))
		return 0;
	if (attachment_find(a, q.name) || (dmcrypt_info(q.name, &di) >= 0 && di.exists))
		return attach_error(c, -EEXIST, &q, 0);
	if ((r = attach_key(c, &q, &info)) < 0 || (r = attach_table(c, &q, &info, &p)) < 0)
		return r;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	attach_record(c, &q, &info, x);
	/* Hold the key, load the table, record it; undo in reverse order on failure. */
	r = attach_hold(c, &q, &info, p.key_size, &s);
	if (r < 0)
		return r;
	r = attach_commit(c, &q, &p, x, &cookie);
	if (r < 0) {
		(void) scope_release(c->daemon->scopes, q.scope_id, SCOPE_ATTACH);
		return r;
	}
	log_event(EVENT_VOLUME_ATTACHED, LOG_INFO, EVENT_PEER(c, q.name, q.dev, q.key_id),
		  "Attached %s as /dev/mapper/%s by reference to keyscope:%s (serial %d, %u "
		  "holders) for uid %u pid %d.", q.dev, q.name, q.scope_id, (int) s->serial,
		  scope_holders(s), (unsigned) c->uid, (int) c->pid);
	/* Barbican counts the volume as a consumer of its secret; never blocks the attach. */
	source_consumer(c->daemon->source, x->key_id, attachment_resource(x), true, false);
	c->reply = attachment_to_json(a, x);
	json_object_object_add(c->reply, "fetches", json_object_new_int64((int64_t) s->fetches));
	TAKE_PTR(x);	/* the records own it now */
	attach_settle(c, cookie, q.name);
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

/*
 * Not attached, and pending: detach forgets it (its unit stops). Or its mapping vanished, or
 * its device did and keyscoped closed it (unplugged): what detach would do is done, and the
 * unit that stops because its device went (BindsTo=) stops cleanly.
 */
static bool detach_not_attached(struct call *c, int *ret_r)
{
	const char *name = param_str(c, "name"), *was = NULL;
	struct attachments *a = attachments_of(c);
	struct dmcrypt_info di;
	bool pending;

	if (!name || attachment_find(a, name))
		return false;
	pending = pending_cancel(c->daemon, name);
	if (!pending && !(was = attachments_vanished(a, name)))
		return false;
	/* vanished, and another mapping took the name: not ours to call detached (ours still
	 * there is the unplugged one the kernel removes at its last close: a umount running) */
	if (!pending && dmcrypt_info(name, &di) >= 0 && di.exists && !streq(di.uuid, was)) {
		*ret_r = call_error(c, -ESTALE, "keyscope.NoSuchVolume",
				    "/dev/mapper/%s is not keyscope's mapping any more (DM UUID %s); "
				    "its record and holder were dropped, the mapping left alone",
				    name, di.uuid);
		return true;
	}
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "name", json_object_new_string(name));
	json_object_object_add(c->reply, pending ? "pending" : "vanished",
			       json_object_new_boolean(1));
	json_object_object_add(c->reply, "key-id", json_object_new_string(""));
	json_object_object_add(c->reply, "holders", json_object_new_int(0));
	return true;
}

int m_volume_detach(struct call *c)
{
	static const char *const allowed[] = { "name", "deferred", NULL };
	struct attachments *a = attachments_of(c);
	struct attachment *x;
	struct dmcrypt_info di;
	bool deferred = false;
	int r, left;

	if ((r = call_check_params(c, allowed)) < 0)
		return r;
	r = 0;
	if (detach_not_attached(c, &r))
		return r;
	if ((r = get_attachment(c, &x)) < 0 || (r = call_get_bool(c, "deferred", &deferred)) < 0)
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
	/* Safe by order without it (the mapping goes before its record), but with it a start
	 * after a kill finishes what the client asked for. */
	if ((r = intent_begin(a, INTENT_DETACH, x)) < 0)
		log_warning_errno(r, "Failed to record the detach of %s, going on: %m", x->name);
	r = dmcrypt_remove(x->name, deferred);
	if (r < 0 && (r != -ENXIO && r != -ENODEV))
		intent_end(a, INTENT_DETACH, x);
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
	left = scope_release(c->daemon->scopes, x->scope, SCOPE_ATTACH);
	log_event(EVENT_VOLUME_DETACHED, LOG_INFO, EVENT_PEER(c, x->name, x->device, x->key_id),
		  "Detached /dev/mapper/%s%s; key %s has %d holders left%s, for uid %u pid %d.",
		  x->name, deferred ? " (deferred)" : "", x->scope, left < 0 ? 0 : left,
		  left == 0 ? " and was invalidated" : "", (unsigned) c->uid, (int) c->pid);
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "name", json_object_new_string(x->name));
	json_object_object_add(c->reply, "key-id", json_object_new_string(x->key_id));
	json_object_object_add(c->reply, "scope", json_object_new_string(x->scope));
	json_object_object_add(c->reply, "holders", json_object_new_int(left < 0 ? 0 : left));
	intent_end(a, INTENT_DETACH, x);
	attachment_remove(a, x);
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
	if ((r = intent_begin(attachments_of(c), INTENT_RESIZE, x)) < 0)
		log_warning_errno(r, "Failed to record the resize of %s, going on: %m", x->name);
	r = dmcrypt_resize(x->name, size);
	intent_end(attachments_of(c), INTENT_RESIZE, x);
	if (r < 0)
		return call_error(c, r, "keyscope.ResizeFailed", "reloading %s failed: %s", x->name,
				  strerror(-r));
	log_event(EVENT_VOLUME_RESIZED, LOG_INFO, EVENT_PEER(c, x->name, x->device, x->key_id),
		  "Resized /dev/mapper/%s from %llu to %llu sectors for uid %u pid %d.", x->name,
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
	struct attachment t = {};
	struct luks_info info;
	const char *dev, *id;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = volume_get_device(c, &dev)) < 0 ||
	    (r = call_get_key_id(c, "key-id", &id)) < 0)
		return r;
	r = luks_read(dev, &info);
	if (r < 0)
		return call_error(c, r, r == -ENOMEDIUM ? "keyscope.NotLuks" : "keyscope.BadHeader",
				  "cannot read a LUKS header on %s: %s", dev, strerror(-r));
	if (!streq(info.type, "LUKS2"))
		return call_error(c, -EMEDIUMTYPE, "keyscope.BadHeader",
				  "%s is %s; only LUKS2 carries a keyscope token", dev, info.type);
	r = scope_fetch(c->daemon->scopes, id, &key);
	if (r < 0)
		return call_key_error(c, r, id, "fetching key");
	/* key_size 0: a header without keyslot and token (a format killed before its token). */
	if ((info.key_size && key.len != info.key_size) ||
	    luks_verify_key(dev, key.data, key.len) < 0)
		return call_error(c, -EPERM, "keyscope.WrongKey",
				  "key %s does not open the LUKS header of %s; the token is unchanged",
				  id, dev);
	r = volume_token_intent(c, INTENT_REBIND, dev, id, info.uuid, &t);
	if (r < 0)
		return r;
	r = luks_set_token(dev, id, source_kind(c->daemon->source, id), key.len);
	intent_end(attachments_of(c), INTENT_REBIND, &t);
	if (r < 0)
		return call_error(c, r, "keyscope.RebindFailed", "rewriting the token of %s: %s",
				  dev, strerror(-r));
	log_event(EVENT_VOLUME_REBOUND, LOG_INFO, EVENT_PEER(c, NULL, dev, id),
		  "Rebound %s from key %s to key %s for uid %u pid %d.", dev,
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
