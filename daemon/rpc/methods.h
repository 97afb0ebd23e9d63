/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control API's method table (docs/protocol.md), which main.c gives to server_new(). */
#pragma once

#include <stddef.h>

#include "call.h"

extern const struct method method_table[];
extern const size_t method_table_n;
