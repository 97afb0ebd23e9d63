/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The volume methods' requests: a device parameter, and VolumeAttach's parameters checked
 * into one struct attach_req (the table options of keyscope-volumes(5) among them).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "call.h"
#include "dmcrypt.h"
#include "scope.h"

struct attach_req {
	const char *dev, *name, *key_id, *passphrase;
	char scope_id[SCOPE_ID_MAX + 1];
	bool plain, read_only;
	bool pending;			/* kept pending while the key source is unreachable */
	unsigned dm_flags;		/* DMCRYPT_*, from the request's option names */
	const char *cipher;
	uint64_t key_bits, offset, sector_size;
	char name_buf[DMCRYPT_NAME_MAX + 1];
};

/* "device": an absolute path to a block device. Returns 0, or -errno with the call's error. */
int volume_get_device(struct call *c, const char **ret);

/*
 * Checks VolumeAttach's parameters into q (strings point into the call's parameters), with
 * the defaults filled in and the name derived when none is given. Returns 0, or -errno with
 * the call's error set.
 */
int attach_params(struct call *c, struct attach_req *q);
