/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The volume methods' requests (attach-params.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luks.h"
#include "macro.h"
#include "attach-params.h"
#include "util.h"
#include "volumes.h"

/* A block device given by absolute path. */
int volume_get_device(struct call *c, const char **ret)
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


/* crypttab's performance and discard options, carried to the table's optional parameters. */
static int attach_flags(struct call *c, unsigned *flags)
{
	static const struct {
		const char *param;
		unsigned flag;
	} map[] = {
		{ "discard", DMCRYPT_ALLOW_DISCARDS },
		{ "same-cpu-crypt", DMCRYPT_SAME_CPU_CRYPT },
		{ "submit-from-crypt-cpus", DMCRYPT_SUBMIT_FROM_CRYPT_CPUS },
		{ "no-read-workqueue", DMCRYPT_NO_READ_WORKQUEUE },
		{ "no-write-workqueue", DMCRYPT_NO_WRITE_WORKQUEUE },
	};

	for (size_t i = 0; i < ELEMENTSOF(map); i++) {
		bool on = false;
		int r = call_get_bool(c, map[i].param, &on);

		if (r < 0)
			return r;
		if (on)
			*flags |= map[i].flag;
	}
	return 0;
}

/*
 * stable-name (keyscope-attach@.service, auto-attach = all): a name that does not follow the
 * kernel's probe order, keyscope-<LUKS UUID> or keyscope-<DM name> (lib/volumes.h). Read here,
 * not by keyscopectl: the unit that runs it sees no devices (PrivateDevices=yes).
 */
static int stable_name(struct call *c, struct attach_req *q)
{
	struct luks_info info;
	int r = luks_read(q->dev, &info);

	if (r < 0)
		return call_error(c, r, r == -ENOMEDIUM ? "keyscope.NotLuks" : "keyscope.BadHeader",
				  "stable-name: cannot read the LUKS header of %s: %s", q->dev,
				  r == -ENOMEDIUM ? "there is none" : strerror(-r));
	r = volumes_stable_name(q->dev, info.uuid, q->name_buf, sizeof(q->name_buf));
	if (r < 0)
		return call_error(c, r, "keyscope.InvalidName",
				  "stable-name: no valid name for %s (%s); give a name", q->dev,
				  strerror(-r));
	q->name = q->name_buf;
	return 0;
}

int attach_params(struct call *c, struct attach_req *q)
{
	static const char *const allowed[] = { "device", "name", "key-id", "plain", "cipher",
					       "key-size", "offset", "sector-size", "read-only",
					       "passphrase", "discard", "same-cpu-crypt",
					       "submit-from-crypt-cpus", "no-read-workqueue",
					       "no-write-workqueue", "pending", "stable-name", NULL };
	bool stable = false;
	int r;

	r = attach_flags(c, &q->dm_flags);
	if (r < 0)
		return r;

	q->cipher = "aes-xts-plain64";
	q->key_bits = 512;
	q->sector_size = 512;
	if ((r = call_check_params(c, allowed)) < 0 || (r = volume_get_device(c, &q->dev)) < 0 ||
	    (r = call_get_string(c, "name", false, 4096, &q->name)) < 0 ||
	    (r = call_get_bool(c, "plain", &q->plain)) < 0 ||
	    (r = call_get_bool(c, "read-only", &q->read_only)) < 0 ||
	    (r = call_get_bool(c, "pending", &q->pending)) < 0 ||
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
	if ((r = call_get_bool(c, "stable-name", &stable)) < 0)
		return r;
	if (stable && q->name)
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "give name or stable-name, not both");
	if (stable)
		return stable_name(c, q);
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
