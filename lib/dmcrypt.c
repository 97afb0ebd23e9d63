/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "dmcrypt.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct dm_task *, dm_task_destroy);
#define _cleanup_dm_task_ _cleanup_(dm_task_destroyp)

/* libdevmapper prints its own errors to stderr; keep them out of ours unless debugging. */
static void dm_log_quiet(int level, const char *file, int line, int dm_errno_or_class,
			 const char *f, ...)
{
}

/* Every time: libcryptsetup installs its own libdevmapper logger when it runs. */
static void dm_quiet(void)
{
	if (!getenv("KEYSCOPE_DM_DEBUG"))
		dm_log_with_errno_init(dm_log_quiet);
}

int dmcrypt_table_params(const struct dmcrypt_params *p, char *buf, size_t size)
{
	static const char *const words[] = { "allow_discards", "same_cpu_crypt",
					     "submit_from_crypt_cpus", "no_read_workqueue",
					     "no_write_workqueue" };
	unsigned count = (unsigned) __builtin_popcount(p->flags) + (p->sector_size != 512);
	size_t n;
	int r;

	if (!*p->cipher || strpbrk(p->cipher, " \t\n") || !*p->key_desc ||
	    strpbrk(p->key_desc, " \t\n") || p->key_size == 0 || !*p->device ||
	    strpbrk(p->device, " \t\n") || (p->sector_size != 512 && p->sector_size != 4096) ||
	    (p->flags & ~(unsigned) DMCRYPT_FLAGS_ALL))
		return -EINVAL;
	r = snprintf(buf, size, "%s :%zu:logon:%s %llu %s %llu", p->cipher, p->key_size,
		     p->key_desc, (unsigned long long) p->iv_offset, p->device,
		     (unsigned long long) p->offset);
	if (r < 0 || (size_t) r >= size)
		return -ENOBUFS;
	n = (size_t) r;
	/* "<count> <word>...", in the order cryptsetup writes them */
	if (count) {
		r = snprintf(buf + n, size - n, " %u", count);
		if (r < 0 || (size_t) r >= size - n)
			return -ENOBUFS;
		n += (size_t) r;
	}
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!(p->flags & (1u << i)))
			continue;
		r = snprintf(buf + n, size - n, " %s", words[i]);
		if (r < 0 || (size_t) r >= size - n)
			return -ENOBUFS;
		n += (size_t) r;
	}
	if (p->sector_size != 512) {
		r = snprintf(buf + n, size - n, " sector_size:%u", p->sector_size);
		if (r < 0 || (size_t) r >= size - n)
			return -ENOBUFS;
	}
	return 0;
}

/*
 * Runs a task with a udev cookie, without waiting for udev: *ret_cookie is what
 * dmcrypt_udev_poll() then waits for (0: nothing, udev does not run). A failed task has none:
 * libdevmapper completed the cookie itself, and it is released here. Returns 0 or the task's
 * errno.
 */
static int dm_run_nowait(struct dm_task *dmt, uint16_t flags, uint32_t *ret_cookie)
{
	uint32_t cookie = 0;
	int ok, e;

	*ret_cookie = 0;
	/* Without udev, libdevmapper makes the nodes itself, in dm_udev_wait(0) below. */
	if (!dm_udev_get_sync_support())
		flags &= (uint16_t) ~DM_UDEV_DISABLE_LIBRARY_FALLBACK;
	if (!dm_task_set_cookie(dmt, &cookie, flags))
		return -EIO;
	ok = dm_task_run(dmt);
	e = dm_task_get_errno(dmt);
	if (!ok || !cookie) {
		(void) dm_udev_wait(cookie);
		return ok ? 0 : e > 0 ? -e : -EIO;
	}
	*ret_cookie = cookie;
	return 0;
}

/* Runs a task and waits for udev; returns 0 or the task's errno. */
static int dm_run(struct dm_task *dmt, bool udev_cookie)
{
	uint32_t cookie = 0;
	int ok, e;

	if (udev_cookie) {
		int r = dm_run_nowait(dmt, 0, &cookie);
		(void) dm_udev_wait(cookie);
		return r;
	}
	ok = dm_task_run(dmt);
	e = dm_task_get_errno(dmt);
	if (ok)
		return 0;
	return e > 0 ? -e : -EIO;
}

int dmcrypt_create_nowait(const char *name, const char *uuid, const struct dmcrypt_params *p,
			  uint32_t *ret_cookie)
{
	_cleanup_dm_task_ struct dm_task *dmt = NULL;
	char params[2048];
	int r;

	*ret_cookie = 0;
	dm_quiet();
	if (!dmcrypt_name_is_valid(name))
		return -EINVAL;
	r = dmcrypt_table_params(p, params, sizeof(params));
	if (r < 0)
		return r;
	dmt = dm_task_create(DM_DEVICE_CREATE);
	if (!dmt)
		return -ENOMEM;
	if (!dm_task_set_name(dmt, name) || (uuid && !dm_task_set_uuid(dmt, uuid)) ||
	    !dm_task_secure_data(dmt) || (p->read_only && !dm_task_set_ro(dmt)) ||
	    !dm_task_add_target(dmt, 0, p->size, "crypt", params))
		return -ENOMEM;
	/* udev makes the nodes; libdevmapper must not make them too, from another event's
	 * poll, while udev is still at it (as cryptsetup asks when udev runs) */
	r = dm_run_nowait(dmt, DM_UDEV_DISABLE_LIBRARY_FALLBACK, ret_cookie);
	/* The kernel says EINVAL for a key it cannot find or of the wrong size; tell them
	 * apart from other table errors by what we know: the mapping does not exist. */
	if (r == -EBUSY || r == -EEXIST) {
		struct dmcrypt_info info;
		if (dmcrypt_info(name, &info) >= 0 && info.exists)
			return -EEXIST;
	}
	return r;
}

int dmcrypt_udev_poll(uint32_t cookie)
{
	int ready = 0;

	if (!cookie)
		return 1;
	if (!dm_udev_wait_immediate(cookie, &ready))
		return -EIO;	/* the semaphore is gone or broken: nothing left to wait for */
	return ready;
}

void dmcrypt_udev_wait(uint32_t cookie)
{
	if (cookie)
		(void) dm_udev_wait(cookie);
}

void dmcrypt_udev_abandon(uint32_t cookie)
{
	int ready = 0;

	if (!cookie)
		return;
	/* count udev's part as done, then take ours: the semaphore goes */
	(void) dm_udev_complete(cookie);
	(void) dm_udev_wait_immediate(cookie, &ready);
}

int dmcrypt_remove(const char *name, bool deferred)
{
	_cleanup_dm_task_ struct dm_task *dmt = NULL;

	dm_quiet();
	dmt = dm_task_create(DM_DEVICE_REMOVE);
	if (!dmt)
		return -ENOMEM;
	if (!dm_task_set_name(dmt, name) || (deferred && !dm_task_deferred_remove(dmt)))
		return -ENOMEM;
	return dm_run(dmt, true);
}

/* The first target of name's live or inactive table into type and params ("" when none). */
static int dm_table(const char *name, bool inactive, struct dm_info *ret_info, uint64_t *ret_len,
		    char *type, size_t type_size, char *params, size_t params_size,
		    const char **ret_uuid, struct dm_task **ret_dmt)
{
	_cleanup_dm_task_ struct dm_task *dmt = NULL;
	uint64_t start = 0, length = 0;
	char *t = NULL, *p = NULL;

	dmt = dm_task_create(DM_DEVICE_TABLE);
	if (!dmt)
		return -ENOMEM;
	if (!dm_task_set_name(dmt, name) || !dm_task_secure_data(dmt) ||
	    (inactive && !dm_task_query_inactive_table(dmt)))
		return -ENOMEM;
	if (!dm_task_run(dmt)) {
		int e = dm_task_get_errno(dmt);
		if (e == ENXIO || e == ENODEV) {
			ret_info->exists = 0;
			return 0;
		}
		return e > 0 ? -e : -EIO;
	}
	if (!dm_task_get_info(dmt, ret_info))
		return -EIO;
	(void) dm_get_next_target(dmt, NULL, &start, &length, &t, &p);
	snprintf(type, type_size, "%s", t ?: "");
	snprintf(params, params_size, "%s", p ?: "");
	*ret_len = length;
	if (ret_uuid) {
		*ret_uuid = dm_task_get_uuid(dmt);
		*ret_dmt = TAKE_PTR(dmt);
	}
	return 0;
}

int dmcrypt_info(const char *name, struct dmcrypt_info *ret)
{
	_cleanup_dm_task_ struct dm_task *dmt = NULL;
	struct dmcrypt_info info = {};
	struct dm_info di = {};
	const char *uuid = NULL;
	uint64_t length, ilength;
	int r;

	dm_quiet();
	r = dm_table(name, false, &di, &length, info.target, sizeof(info.target), info.params,
		     sizeof(info.params), &uuid, &dmt);
	if (r < 0)
		return r;
	if (!di.exists) {
		*ret = info;
		return 0;
	}
	info.exists = true;
	info.live_table = di.live_table;
	info.inactive_table = di.inactive_table;
	info.suspended = di.suspended;
	info.read_only = di.read_only;
	info.open_count = di.open_count;
	info.major = di.major;
	info.minor = di.minor;
	if (uuid)
		snprintf(info.uuid, sizeof(info.uuid), "%s", uuid);
	info.size = length;
	if (di.inactive_table) {
		r = dm_table(name, true, &di, &ilength, info.inactive_target,
			     sizeof(info.inactive_target), info.inactive_params,
			     sizeof(info.inactive_params), NULL, NULL);
		if (r < 0)
			return r;
	}
	*ret = info;
	return 0;
}

int dmcrypt_foreach(int (*f)(const char *name, void *userdata), void *userdata)
{
	_cleanup_dm_task_ struct dm_task *dmt = NULL;
	struct dm_names *n;
	unsigned next = 0;
	int r;

	dm_quiet();
	dmt = dm_task_create(DM_DEVICE_LIST);
	if (!dmt)
		return -ENOMEM;
	if (!dm_task_run(dmt)) {
		int e = dm_task_get_errno(dmt);
		return e > 0 ? -e : -EIO;
	}
	n = dm_task_get_names(dmt);
	if (!n || !n->dev)
		return 0;
	do {
		n = (struct dm_names *) ((char *) n + next);
		r = f(n->name, userdata);
		if (r != 0)
			return r;
		next = n->next;
	} while (next);
	return 0;
}

int dmcrypt_params_key_desc(const char *params, char *buf, size_t size)
{
	const char *k = strchr(params, ' '), *end, *d;

	/* "<cipher> :<bytes>:logon:<description> <iv-offset> ..." */
	if (!k || k[1] != ':')
		return -ENOKEY;
	k++;
	end = strchr(k, ' ');
	if (!end)
		end = k + strlen(k);
	d = strchr(k + 1, ':');
	if (!d || d >= end || strncmp(d, ":logon:", 7) != 0)
		return -ENOKEY;
	d += 7;
	if (end == d || (size_t) (end - d) >= size)
		return -ENOKEY;
	memcpy(buf, d, (size_t) (end - d));
	buf[end - d] = 0;
	return 0;
}

int dmcrypt_params_device(const char *params, char *buf, size_t size)
{
	char dev[PATH_MAX];

	if (sscanf(params, "%*s %*s %*s %4095s", dev) != 1 || strlen(dev) >= size)
		return -EBADMSG;
	strcpy(buf, dev);
	return 0;
}

static int dm_simple(int task, const char *name, bool cookie)
{
	_cleanup_dm_task_ struct dm_task *dmt = dm_task_create(task);

	if (!dmt || !dm_task_set_name(dmt, name))
		return -ENOMEM;
	return dm_run(dmt, cookie);
}

int dmcrypt_resize(const char *name, uint64_t new_size)
{
	_cleanup_dm_task_ struct dm_task *dmt = NULL;
	struct dmcrypt_info info;
	int r;

	r = dmcrypt_info(name, &info);
	if (r < 0)
		return r;
	if (!info.exists)
		return -ENXIO;
	if (!streq(info.target, "crypt"))
		return -EMEDIUMTYPE;
	/* Refuse a table that carries a key instead of a reference: we would copy it. */
	if (!strstr(info.params, ":logon:"))
		return -EMEDIUMTYPE;
	dmt = dm_task_create(DM_DEVICE_RELOAD);
	if (!dmt)
		return -ENOMEM;
	/* A read-only mapping stays read-only: the reload carries the flag. */
	if (!dm_task_set_name(dmt, name) || !dm_task_secure_data(dmt) ||
	    (info.read_only && !dm_task_set_ro(dmt)) ||
	    !dm_task_add_target(dmt, 0, new_size, "crypt", info.params))
		return -ENOMEM;
	r = dm_run(dmt, false);
	if (r < 0)
		return r;
	/* Resume swaps the loaded table in; the kernel suspends around it. */
	return dm_simple(DM_DEVICE_RESUME, name, true);
}

int dmcrypt_resume(const char *name)
{
	dm_quiet();
	return dm_simple(DM_DEVICE_RESUME, name, true);
}

int blockdev_size(const char *path, uint64_t *ret_sectors, unsigned *ret_logical_block)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t bytes;
	int lbs = 512;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
		return -errno;
	(void) ioctl(fd, BLKSSZGET, &lbs);
	*ret_sectors = bytes / 512;
	if (ret_logical_block)
		*ret_logical_block = (unsigned) lbs;
	return 0;
}

int blockdev_devnum(const char *path, uint32_t *ret_major, uint32_t *ret_minor)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	*ret_major = major(st.st_rdev);
	*ret_minor = minor(st.st_rdev);
	return 0;
}

static bool misc_has_device_mapper(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/misc", "re");
	char line[128];

	if (!f)
		return true;	/* cannot tell: let libdevmapper answer */
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " device-mapper\n"))
			return true;
	return false;
}

bool dmcrypt_available(void)
{
	_cleanup_dm_task_ struct dm_task *dmt = NULL;

	dm_quiet();
	/* Ask libdevmapper only when the kernel registered device-mapper: on a kernel without
	 * it, libdevmapper would mknod a /dev/mapper/control that answers nothing. */
	if (access("/dev/mapper/control", F_OK) < 0 || !misc_has_device_mapper())
		return false;
	dmt = dm_task_create(DM_DEVICE_VERSION);
	return dmt && dm_task_run(dmt);
}
