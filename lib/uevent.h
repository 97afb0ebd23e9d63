/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * A kernel uevent as NETLINK_KOBJECT_UEVENT delivers it: "ACTION@DEVPATH" and then
 * "KEY=value" strings, each ended by a NUL (the last one possibly not). Returns true when the
 * message of len bytes says that a block device went away (remove@..., SUBSYSTEM=block).
 * Reads no byte beyond len.
 */
bool uevent_is_block_remove(const char *buf, size_t len);
