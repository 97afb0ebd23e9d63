/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * systemd's escaping of unit names (systemd.unit(5), "String Escaping for Inclusion in Unit
 * Names"), as `systemd-escape` and `systemd-escape --path` print it. libsystemd has no public
 * API for it. Returns 0, -EINVAL for input systemd would refuse, -ENAMETOOLONG when buf is
 * too small.
 */
#pragma once

#include <stddef.h>

/* "dm-3" -> "dm\x2d3"; '/' -> '-'; a leading '.' and every byte outside [A-Za-z0-9:_.]
 * become "\xHH". Empty input is refused. */
int unitname_escape(const char *s, char *buf, size_t size);

/* "/dev/disk/by-uuid/ab-c" -> "dev-disk-by\x2duuid-ab\x2dc": an absolute path, duplicate
 * and trailing slashes dropped, "/" -> "-"; a path with a "." or ".." component is refused. */
int unitname_path_escape(const char *path, char *buf, size_t size);

/* The device unit of a path: "/dev/vdb" -> "dev-vdb.device". */
int unitname_from_device(const char *path, char *buf, size_t size);
