/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dm-crypt mappings whose key is a kernel key referenced by description, through libdevmapper.
 * A table never carries key bytes: its key field is ":<bytes>:logon:<description>", and the
 * kernel looks the key up in the keyrings of the process that loads the table.
 * Functions return >= 0 on success and -errno on failure.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DMCRYPT_NAME_MAX 80	/* leaves room in the 128-byte DM UUID for CRYPT-LUKS2-<uuid>- */

/* dm-crypt's optional parameters (the kernel's Documentation/admin-guide/device-mapper/
 * dm-crypt.rst), as crypttab's discard, same-cpu-crypt, submit-from-crypt-cpus,
 * no-read-workqueue and no-write-workqueue and the LUKS2 persistent flags ask for them. */
enum {
	DMCRYPT_ALLOW_DISCARDS = 1u << 0,	/* allow_discards */
	DMCRYPT_SAME_CPU_CRYPT = 1u << 1,	/* same_cpu_crypt */
	DMCRYPT_SUBMIT_FROM_CRYPT_CPUS = 1u << 2,	/* submit_from_crypt_cpus */
	DMCRYPT_NO_READ_WORKQUEUE = 1u << 3,	/* no_read_workqueue (dm-crypt 1.22, Linux 5.9) */
	DMCRYPT_NO_WRITE_WORKQUEUE = 1u << 4,	/* no_write_workqueue (likewise) */
	DMCRYPT_FLAGS_ALL = (1u << 5) - 1,
};

struct dmcrypt_params {
	char cipher[64];		/* "aes-xts-plain64" */
	size_t key_size;		/* bytes of the referenced key */
	char key_desc[256];		/* "keyscope:<key-id>" */
	uint64_t iv_offset;		/* sectors */
	char device[PATH_MAX];		/* backing block device */
	uint64_t offset;		/* data offset on the device, 512-byte sectors */
	uint64_t size;			/* length of the mapping, 512-byte sectors */
	unsigned sector_size;		/* 512 or 4096 */
	bool read_only;
	unsigned flags;			/* DMCRYPT_* */
};

/* "[A-Za-z0-9._-]", 1..DMCRYPT_NAME_MAX, not starting with '.' or '-'. */
bool dmcrypt_name_is_valid(const char *name);

/* Writes the crypt target's parameter string into buf. Returns 0, -EINVAL or -ENOBUFS. */
int dmcrypt_table_params(const struct dmcrypt_params *p, char *buf, size_t size);

/*
 * Creates mapping name with uuid and a single crypt target, secure-data flagged. Returns 0;
 * -EEXIST when the name is taken; -ENOKEY when the kernel could not find the key (not
 * reachable from this process's keyrings, or of another size); -errno.
 * It does not wait for udev: the mapping is loaded and live when it returns 0, and
 * *ret_cookie (0: nothing to wait for, udev does not run) names the udev events it caused:
 * give it to dmcrypt_udev_poll() until that returns non-zero, to dmcrypt_udev_wait(), or to
 * dmcrypt_udev_abandon(). On failure *ret_cookie is 0.
 */
int dmcrypt_create_nowait(const char *name, const char *uuid, const struct dmcrypt_params *p,
			  uint32_t *ret_cookie);
/* 1 when udev has processed the cookie's events (its nodes exist; the cookie is released),
 * 0 not yet, -EIO when the cookie is broken (released too). Never blocks. */
int dmcrypt_udev_poll(uint32_t cookie);
/* Waits for it, blocking (dm_udev_wait()). */
void dmcrypt_udev_wait(uint32_t cookie);
/* Stops waiting for a cookie udev has not completed (it stays stuck, or keyscoped stops). */
void dmcrypt_udev_abandon(uint32_t cookie);

/* Removes mapping name (deferred: when its last opener closes it). -EBUSY when open. */
int dmcrypt_remove(const char *name, bool deferred);

struct dmcrypt_info {
	bool exists;
	bool live_table;		/* a table is loaded and active */
	bool inactive_table;		/* a table is loaded but not resumed yet (see inactive) */
	bool suspended;
	bool read_only;
	int open_count;
	uint32_t major, minor;
	char uuid[130];
	char target[16];		/* "crypt" for ours */
	uint64_t size;			/* sectors */
	char params[1024];		/* the crypt parameters as the kernel reports them */
	char inactive_target[16];	/* the same for the inactive table, when there is one */
	char inactive_params[1024];
};

/* Fills ret for mapping name; ret->exists false when there is none. Returns 0 or -errno. */
int dmcrypt_info(const char *name, struct dmcrypt_info *ret);

/*
 * Calls f for each device-mapper device's name, stopping at f's first non-zero return (which is
 * returned). Returns 0 or -errno.
 */
int dmcrypt_foreach(int (*f)(const char *name, void *userdata), void *userdata);

/* The key description of crypt parameters that reference a logon key (":64:logon:D ..." → D),
 * or -ENOKEY when they do not. */
int dmcrypt_params_key_desc(const char *params, char *buf, size_t size);

/* The backing device field of crypt parameters ("254:16"). */
int dmcrypt_params_device(const char *params, char *buf, size_t size);

/* Resumes mapping name (swapping in its inactive table when it has one). */
int dmcrypt_resume(const char *name);

/* Reloads mapping name with its own parameters and a new length (suspend, reload, resume). */
int dmcrypt_resize(const char *name, uint64_t new_size);

/* Size of a block device in 512-byte sectors, and its logical block size. */
int blockdev_size(const char *path, uint64_t *ret_sectors, unsigned *ret_logical_block);

/* "major:minor" of a block device path; -ENOTBLK when it is not one. */
int blockdev_devnum(const char *path, uint32_t *ret_major, uint32_t *ret_minor);

/* Whether the kernel has device-mapper at all (/dev/mapper/control answers). */
bool dmcrypt_available(void);
