/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One keyscoped per state folder and per socket: each is guarded by a lock file that the
 * daemon holds for its whole life. The lock, not the existence of a file, decides: the kernel
 * drops it when the holder dies, however it dies, so the files a killed daemon left behind
 * are taken over by the next one.
 */
#pragma once

#include <sys/types.h>

/*
 * Takes a write lock (fcntl F_SETLK: not inherited by forked children, dropped when the process
 * ends) on path, creating it mode 0600 if missing, and writes our PID into it. Returns the
 * descriptor that holds the lock (keep it open), or -EBUSY with *ret_holder set to the PID of
 * the process that holds it (0 when it cannot be known, e.g. in another PID namespace), or
 * -errno.
 */
int lockfile_take(const char *path, pid_t *ret_holder);
