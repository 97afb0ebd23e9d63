/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscope.VolumeFormat. Everything is checked before the device is written: not in use, room
 * for the 16 MiB header and data after it, empty (or --force), the key at hand. libcryptsetup
 * then writes the header and the token in two steps, under a format intent: a kill between
 * them leaves a header without keyslot or token, which crash recovery completes at the next
 * start (docs/volumes.md, "After a crash"); a kill before the header leaves no LUKS header.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "format.h"
#include "log.h"
#include "luks.h"
#include "source.h"

int volume_token_intent(struct call *c, enum intent_op op, const char *dev, const char *id,
			const char *luks_uuid, struct attachment *t)
{
	int r;

	snprintf(t->device, sizeof(t->device), "%s", dev);
	snprintf(t->key_id, sizeof(t->key_id), "%s", id);
	snprintf(t->scope, sizeof(t->scope), "%s", id);
	snprintf(t->luks_uuid, sizeof(t->luks_uuid), "%s", luks_uuid);
	r = intent_begin(c->daemon->attachments, op, t);
	if (r < 0)
		return call_error(c, r, "keyscope.StateError",
				  "cannot record the %s of %s in the state folder (%s); the header "
				  "is unchanged", op == INTENT_FORMAT ? "format" : "rebind", dev,
				  strerror(-r));
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

/* Room for the header and data after it: attach refuses a volume without data. */
static int device_fits(struct call *c, const char *dev)
{
	uint64_t sectors;
	int r = blockdev_size(dev, &sectors, NULL);

	if (r < 0)
		return call_error(c, r, "keyscope.NoSuchDevice", "size of %s: %s", dev,
				  strerror(-r));
	if (sectors < LUKS_FORMAT_MIN_SECTORS)
		return call_error(c, -ENOSPC, "keyscope.NoSuchDevice",
				  "%s is too small to format: %llu sectors; the LUKS2 header takes "
				  "the first 16 MiB (%u sectors) and data must follow it (at least "
				  "%u sectors in all); nothing was written", dev,
				  (unsigned long long) sectors, LUKS_FORMAT_DATA_OFFSET,
				  LUKS_FORMAT_MIN_SECTORS);
	return 0;
}

/* Without --force, a device must look empty. A format killed between its header and its
 * token is named as such: nothing opens that header until the token is there. */
static int device_empty(struct call *c, const char *dev, bool force)
{
	struct luks_info info;
	char what[128];

	if (force || device_probe_content(dev, what, sizeof(what)) <= 0)
		return 0;
	if (luks_read(dev, &info) >= 0 && streq(info.type, "LUKS2") && info.token < 0 &&
	    info.keyslots == 0)
		return call_error(c, -EEXIST, "keyscope.DeviceNotEmpty",
				  "%s holds a LUKS2 header with neither a keyslot nor a keyscope "
				  "token, as a format interrupted before its token leaves it (keyscoped "
				  "completes it at start when its intent is still there); nothing can "
				  "open it: use --force to format it again", dev);
	return call_error(c, -EEXIST, "keyscope.DeviceNotEmpty",
			  "%s holds %s; refusing to format it (use --force to overwrite)", dev,
			  what);
}

static void format_reply(struct call *c, const char *dev, const char *id,
			 const struct luks_info *info)
{
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "device", json_object_new_string(dev));
	json_object_object_add(c->reply, "key-id", json_object_new_string(id));
	json_object_object_add(c->reply, "luks-uuid", json_object_new_string(info->uuid));
	json_object_object_add(c->reply, "cipher", json_object_new_string(info->cipher));
	json_object_object_add(c->reply, "key-size", json_object_new_int((int) info->key_size * 8));
	json_object_object_add(c->reply, "sector-size",
			       json_object_new_int((int) info->sector_size));
}

int volume_format(struct call *c, const char *dev, const char *id, bool force)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	struct attachment t = {};
	struct luks_info info;
	int r;

	if ((r = device_not_busy(c, dev)) < 0 || (r = device_fits(c, dev)) < 0 ||
	    (r = device_empty(c, dev, force)) < 0)
		return r;
	r = scope_fetch(c->daemon->scopes, id, &key);
	if (r < 0)
		return call_key_error(c, r, id, "formatting with key");
	r = volume_token_intent(c, INTENT_FORMAT, dev, id, "", &t);
	if (r < 0)
		return r;
	r = luks_format(dev, key.data, key.len, id, source_kind(c->daemon->source, id));
	intent_end(c->daemon->attachments, INTENT_FORMAT, &t);
	if (r < 0)
		return call_error(c, r, "keyscope.FormatFailed", "formatting %s failed: %s", dev,
				  strerror(-r));
	r = luks_read(dev, &info);
	if (r < 0)
		return call_error(c, r, "keyscope.FormatFailed",
				  "%s was formatted but its header cannot be read back: %s", dev,
				  strerror(-r));
	log_event(EVENT_VOLUME_FORMATTED, LOG_INFO, EVENT_PEER(c, NULL, dev, id),
		  "Formatted %s as LUKS2 (%s, %u-byte sectors, UUID %s) with key %s for uid %u "
		  "pid %d.", dev, info.cipher, info.sector_size, info.uuid, id, (unsigned) c->uid,
		  (int) c->pid);
	format_reply(c, dev, id, &info);
	return 0;
}
