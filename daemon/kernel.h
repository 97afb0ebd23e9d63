/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel checks (lib/kcheck.h, the same "keyscopectl check" runs) as keyscoped runs them at
 * start: each item is logged, a missing one with what to do; nothing stops the daemon. Without
 * device-mapper it still serves keys, and methods that need dm-crypt answer with the check's
 * message. Only the logging is the daemon's: the checks and their options are in lib/.
 */
#pragma once

#include "config.h"
#include "kcheck.h"

/* Runs and logs the checks. Returns 0 when everything needed is there, -ENODEV otherwise. */
int kernel_check_at_start(const struct config *cfg);

/* Why dm-crypt volumes cannot be opened on this kernel, or NULL when they can (or unchecked). */
const char *kernel_dm_problem(void);
