/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /etc/keyscope/volumes and /etc/keyscope/volumes.d/ *.conf: the volumes a node opens at boot,
 * one a line in crypttab(5)'s syntax, "NAME DEVICE [KEY [OPTIONS]]" (keyscope-volumes(5)).
 * The file is the operator's, so a mistake on one line refuses that line only (with file, line
 * number and the word at fault) and every other line still counts: a typo never blocks a boot.
 * Functions return >= 0 on success and -errno on failure; nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmcrypt.h"
#include "keyid.h"

#define VOLUMES_FILE "/etc/keyscope/volumes"
#define VOLUMES_DIR "/etc/keyscope/volumes.d"
#define VOLUMES_FILE_MAX (1024 * 1024)	/* bytes of one file */
#define VOLUMES_LINE_MAX 4096		/* bytes of one line, newline excluded */
#define VOLUMES_MAX 4096		/* volumes over all files */
#define VOLUMES_ERRORS_MAX 256		/* bad lines kept with their message; more are counted */
#define VOLUMES_DEVICE_MAX 512		/* bytes of a device path, NUL included */
#define VOLUMES_WORD_MAX 64		/* bytes of a bad word quoted in a message */

enum {
	VOLUME_NOFAIL = 1u << 0,
	VOLUME_NOAUTO = 1u << 1,
	VOLUME_NETDEV = 1u << 2,
	VOLUME_READONLY = 1u << 3,
	VOLUME_DISCARD = 1u << 4,
	VOLUME_NO_READ_WORKQUEUE = 1u << 5,
	VOLUME_NO_WRITE_WORKQUEUE = 1u << 6,
	VOLUME_SAME_CPU_CRYPT = 1u << 7,
	VOLUME_SUBMIT_FROM_CRYPT_CPUS = 1u << 8,
	VOLUME_PLAIN = 1u << 9,
	VOLUME_PASSPHRASE_HEX = 1u << 10,
	VOLUME_DEVICE_TIMEOUT = 1u << 11,	/* device_timeout_usec was given */
};

enum volume_device_kind {
	VOLUME_DEVICE_PATH,		/* "/dev/vdb", "/dev/disk/by-path/..." */
	VOLUME_DEVICE_UUID,		/* "UUID=..." */
	VOLUME_DEVICE_PARTUUID,		/* "PARTUUID=..." */
	VOLUME_DEVICE_LABEL,		/* "LABEL=..." */
};

struct volume {
	char name[DMCRYPT_NAME_MAX + 1];	/* the mapping: /dev/mapper/NAME */
	enum volume_device_kind kind;
	char tag[VOLUMES_DEVICE_MAX];		/* the value after UUID=, PARTUUID=, LABEL= */
	char device[VOLUMES_DEVICE_MAX];	/* the node to open: /dev/disk/by-uuid/... */
	char key_id[KEYID_MAX + 1];		/* empty: the key-id in the volume's token */
	unsigned flags;				/* VOLUME_* */
	uint64_t device_timeout_usec;		/* with VOLUME_DEVICE_TIMEOUT */
	char cipher[64];			/* plain only; empty: the default */
	unsigned key_bits;			/* plain only; 0: the default */
	uint64_t offset;			/* plain only; 512-byte sectors */
	unsigned sector_size;			/* plain only; 0: the default */
	const char *file;			/* where it was declared (owned by struct volumes) */
	unsigned line;
};

struct volume_error {
	const char *file;
	unsigned line;				/* 0: the file as a whole */
	char message[VOLUMES_WORD_MAX * 4 + 160];
};

struct volumes {
	struct volume *v;
	size_t n;
	struct volume_error *errors;
	size_t n_errors;			/* kept in errors[] */
	size_t n_bad;				/* all bad lines, also those beyond the cap */
	char **files;				/* names of the files read, for file pointers */
	size_t n_files;
};

/*
 * Parses one line (len bytes, no newline; may hold anything). Returns 1 and fills *ret (but
 * not file/line), 0 for a blank or comment line, or -EINVAL with a message in err that names
 * the word at fault and the fix.
 */
int volumes_parse_line(const char *line, size_t len, struct volume *ret, char *err,
		       size_t errlen);

/*
 * Adds the volumes of buf (len bytes, the contents of file) to vs; bad lines go to
 * vs->errors. Returns 0, or -ENOMEM (vs stays consistent).
 */
int volumes_parse_buffer(struct volumes *vs, const char *file, const char *buf, size_t len);

/*
 * Reads path (a missing file is no error and adds nothing). A file that cannot be read is one
 * error in vs. Returns 0 or -ENOMEM.
 */
int volumes_load_file(struct volumes *vs, const char *path);

/* Reads file, then dir's *.conf in lexical (byte) order. Returns 0 or -ENOMEM. */
int volumes_load(struct volumes *vs, const char *file, const char *dir);

void volumes_done(struct volumes *vs);

/* The volume declared under name, or NULL. */
const struct volume *volumes_find(const struct volumes *vs, const char *name);

/* Is the option word one keyscope-volumes(5) allows? (For docs checks and tests.) */
bool volumes_option_is_known(const char *word);

/*
 * The name auto-attach = all opens an undeclared volume under, the same at every boot:
 * "keyscope-<DM name>" for a device-mapper device (an LVM volume "vg-lv", a snapshot: its
 * name is stable, and it shares its origin's LUKS UUID), else "keyscope-<LUKS UUID>". Never the
 * kernel name. Returns 0, -EINVAL when no valid name results, or -errno.
 */
int volumes_stable_name(const char *device, const char *luks_uuid, char *buf, size_t size);

/*
 * The declared volume that device (a block device whose LUKS UUID is luks_uuid, or "") is:
 * UUID= by the header's UUID, PARTUUID= and LABEL= by udev's ID_PART_ENTRY_UUID and
 * ID_FS_LABEL (in the environment of a udev program) or the /dev/disk link, a path by its
 * device number. NULL when none.
 */
const struct volume *volumes_find_device(const struct volumes *vs, const char *device,
					 const char *luks_uuid);
