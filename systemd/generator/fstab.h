/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Calls cb with the mount unit name ("srv-data.mount") of each line of fstab that mounts
 * /dev/mapper/NAME (not noauto, not swap, not "/"). Returns how many, 0 without the file, or
 * -errno (a failing cb's).
 */
int fstab_foreach_mount(const char *fstab, const char *name,
			int (*cb)(void *userdata, const char *mount_unit), void *userdata);
