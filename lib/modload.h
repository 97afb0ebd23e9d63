/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Loading a kernel module as modprobe would, through libkmod opened with dlopen() on the first
 * call: only "keyscopectl check" and keyscoped's start-up check ever load a module, so no
 * program links libkmod, and a system without it runs everything else. Library code: no logs.
 */
#pragma once

#include <stddef.h>

#define MODLOAD_LIBKMOD "libkmod.so.2"

/*
 * Loads module name and its dependencies. Returns 0 (also when it is loaded already) or
 * -errno with why in err: -ENOPKG when libkmod cannot be opened, -ENOENT when there is no such
 * module, -EPERM when it is blacklisted or the caller may not load modules.
 */
int modload_load(const char *name, char *err, size_t errlen);
