/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Untrusted text made safe to log: bounded, printable ASCII, the rest escaped. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Writes at most max_in bytes of in (len bytes, may hold NULs or anything else) into out as
 * printable ASCII: bytes 0x20..0x7e stay, except '"' and '\\', which like every other byte
 * become "\xHH". When in is longer than max_in, "..." follows. out is always NUL-terminated
 * (outsize >= 1); it needs 4 * max_in + 4 bytes to hold everything. Returns out.
 */
char *text_escape(const void *in, size_t len, size_t max_in, char *out, size_t outsize);

/* Is s (NUL-terminated) already in text_escape()'s form: printable ASCII, no '"', and every
 * '\\' followed by "xHH"? */
bool text_is_escaped(const char *s);
