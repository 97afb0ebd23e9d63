/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Keys supplied by the caller (docs/openstack.md): where the node is not delegated a key in
 * the key manager (OpenStack Nova reading keys with the user's token through castellan), the
 * client hands the key-id's material as the request's out-of-band payload of
 * keyscope.VolumeAttach or keyscope.VolumeFormat. It is the key-id's material for that one
 * call only: the key sources give it before the store and Barbican while the call's handler
 * runs (including its runs again after a wait), it is never written to the store, a cache or
 * a file, and it is wiped with the call. What stays is the kernel key of the scope, which goes
 * with the scope's last holder like any other.
 */
#pragma once

#include <stdbool.h>

#include "secret.h"

/* The running call's supplied key for id (volumes/supplied-methods.c); NULL, NULL clears it. */
void supplied_set(const char *id, const struct secret_buf *key);

/* For the key sources: 0 and a copy of the material when the running call supplied id,
 * -ENOENT when it did not, -ENOMEM. */
int supplied_fetch(const char *id, struct secret_buf *ret);
bool supplied_has(const char *id);
