/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Recovery keyslots (recovery.h). Both methods work only on a keyscope-formatted volume (a
 * keyscope token; the token's key is the volume key, checked against the header's digest), so
 * a keyslot is never added under a key that is not the volume's, and the last keyslot is never
 * removed from a volume whose key the node cannot produce: removal needs the key to verify.
 * libcryptsetup writes the header atomically (two copies, sequence numbers), so a kill in the
 * middle leaves the keyslot either there or not; a retried add or remove finishes the job.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "luks.h"
#include "recovery.h"
#include "scope.h"
#include "unlock.h"

#define RECOVERY_PASS_MAX 64	/* the protocol's payload limit (proto.h) */

/* A LUKS2 block device with a keyscope token, whose token key in *key is the volume key. */
static int recovery_target(struct call *c, const char **ret_dev, struct luks_info *info,
			   struct secret_buf *key)
{
	const char *dev;
	struct stat st;
	int r;

	r = call_get_string(c, "device", true, PATH_MAX - 1, &dev);
	if (r < 0)
		return r;
	if (dev[0] != '/' || stat(dev, &st) < 0 || !S_ISBLK(st.st_mode))
		return call_error(c, -ENOTBLK, "keyscope.NoSuchDevice",
				  "%s is not a block device given by absolute path", dev);
	r = luks_read(dev, info);
	if (r == -ENOMEDIUM)
		return call_error(c, r, "keyscope.NotLuks", "%s has no LUKS header", dev);
	if (r < 0)
		return call_error(c, r, "keyscope.BadHeader", "cannot read the LUKS header of %s: %s",
				  dev, strerror(-r));
	if (info->token < 0 || !streq(info->type, "LUKS2"))
		return call_error(c, -EMEDIUMTYPE, "keyscope.NotKeyscopeVolume",
				  "%s has no keyscope token: its keyslots are not keyscope's to "
				  "change (use cryptsetup luksAddKey/luksKillSlot)", dev);
	r = scope_fetch(c->daemon->scopes, info->key_id, key);
	if (r < 0)
		return call_key_error(c, r, info->key_id, "fetching key");
	r = luks_verify_key(dev, key->data, key->len);
	if (r < 0)
		return call_error(c, r, "keyscope.WrongKey",
				  "key %s is not the volume key of %s (%s); its keyslots are left "
				  "as they are", info->key_id, dev, strerror(-r));
	*ret_dev = dev;
	return 0;
}

/*
 * The unlock module's key for this add: not the header fingerprint, which covers the digests
 * and so changes when the keyslot is added, but the LUKS UUID and the device, which do not.
 */
static int add_job_id(const char *dev, const struct luks_info *info, uint8_t out[static 32])
{
	static const uint8_t zero[32];
	char what[PATH_MAX + 64];
	int r = snprintf(what, sizeof(what), "recovery-add:%s:%s", info->uuid, dev);

	if (r < 0 || (size_t) r >= sizeof(what))
		return -ENAMETOOLONG;
	return luks_fingerprint_bind(zero, what, out);
}

static void on_add_done(void *userdata, int error)
{
	call_resume(userdata, error);
}

/* Answers an ended keyslot add: its keyslot number r, or why it failed. */
static int add_result(struct call *c, const char *dev, const struct luks_info *info, int r)
{
	if (r == -EPERM)
		return call_error(c, r, "keyscope.WrongKey", "key %s is not the volume key of %s",
				  info->key_id, dev);
	if (r == -ECHILD || r == -ETIMEDOUT)
		return call_error(c, r, "keyscope.RecoveryFailed",
				  "adding the recovery keyslot to %s ended without a result (its "
				  "process %s; see the daemon's log)", dev,
				  r == -ETIMEDOUT ? "ran out of time" : "died");
	if (r < 0)
		return call_error(c, r, "keyscope.RecoveryFailed",
				  "adding the recovery keyslot to %s failed: %s", dev, strerror(-r));
	log_notice("Added recovery keyslot %d to %s (key %s) for uid %u pid %d.", r, dev,
		   info->key_id, (unsigned) c->uid, (int) c->pid);
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "device", json_object_new_string(dev));
	json_object_object_add(c->reply, "key-id", json_object_new_string(info->key_id));
	json_object_object_add(c->reply, "keyslot", json_object_new_int(r));
	return 0;
}

int m_volume_recovery_add(struct call *c)
{
	static const char *const allowed[] = { "device", NULL };
	_cleanup_secret_buf_ struct secret_buf key = {};
	struct luks_info info;
	const char *dev;
	uint8_t fp[32];
	int r;

	if ((r = call_check_params(c, allowed)) < 0 ||
	    (r = recovery_target(c, &dev, &info, &key)) < 0)
		return r;
	r = add_job_id(dev, &info, fp);
	if (r < 0)
		return call_error(c, r, "keyscope.RecoveryFailed", "%s: %s", dev, strerror(-r));
	r = unlock_take(c->daemon->unlocks, fp, on_add_done, c, NULL);
	if (r != -ENOENT) {
		if (r == -EINPROGRESS)
			call_suspend(c);
		return r == -EINPROGRESS ? r : add_result(c, dev, &info, r);
	}
	/* Not started yet (or an earlier add ended): check, then start it. */
	if (info.keyslots > 0)
		return call_error(c, -EEXIST, "keyscope.RecoveryExists",
				  "%s has a keyslot already (%d); 'keyscopectl recovery remove' "
				  "it first to replace it", dev, info.keyslots);
	if (c->payload.len == 0 || c->payload.len > RECOVERY_PASS_MAX)
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "the recovery passphrase comes as the payload, 1..%d bytes",
				  RECOVERY_PASS_MAX);
	r = unlock_start_add(c->daemon->unlocks, fp, dev, &key, c->payload.data, c->payload.len,
			     on_add_done, c);
	if (r == -EINPROGRESS) {
		call_suspend(c);
		return r;
	}
	return call_error(c, r, "keyscope.RecoveryFailed", "cannot start adding a keyslot to %s: "
			  "%s", dev, strerror(-r));
}

int m_volume_recovery_remove(struct call *c)
{
	static const char *const allowed[] = { "device", NULL };
	_cleanup_secret_buf_ struct secret_buf key = {};
	struct luks_info info;
	const char *dev;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 ||
	    (r = recovery_target(c, &dev, &info, &key)) < 0)
		return r;
	if (info.keyslots == 0)
		return call_error(c, -ENOENT, "keyscope.NoRecoveryKeyslot",
				  "%s has no keyslot to remove", dev);
	r = luks_keyslots_destroy(dev);
	if (r < 0)
		return call_error(c, r, "keyscope.RecoveryFailed",
				  "removing the keyslots of %s failed: %s", dev, strerror(-r));
	log_notice("Removed %d recovery keyslot(s) from %s (key %s) for uid %u pid %d.", r, dev,
		   info.key_id, (unsigned) c->uid, (int) c->pid);
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "device", json_object_new_string(dev));
	json_object_object_add(c->reply, "key-id", json_object_new_string(info.key_id));
	json_object_object_add(c->reply, "removed", json_object_new_int(r));
	return 0;
}
