/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one reader of keyscope's "key = value" files (keyscoped.conf, the Barbican application
 * credential). A line holds "key = value", a comment ('#' or ';' first) or nothing; spaces and
 * tabs around keys and values, and a CR before the newline, belong to neither. Bounded (at most
 * max bytes, no NUL byte) and in place: keys and values point into the caller's text, so a
 * credential read into secret memory stays there.
 */
#pragma once

#include <stddef.h>

#define KVFILE_SECTIONS 1u	/* "[name]" lines are accepted and ignored (keyscoped.conf) */

/* One pair, with its line number (from 1). Returns 0 to go on, or -errno to stop there. */
typedef int (*kvfile_cb)(void *userdata, unsigned line, const char *key, char *value);

/*
 * Parses text: len bytes, with text[len] == 0; the text is cut into lines and pairs in place.
 * Returns 0 once cb has seen every pair; cb's -errno; -EFBIG when len > max; -EBADMSG for a
 * NUL byte inside the text or a line that is not "key = value". *ret_line (may be NULL) is the
 * line that failed (0 for the text as a whole).
 */
int kvfile_parse(char *text, size_t len, size_t max, unsigned flags, kvfile_cb cb,
		 void *userdata, unsigned *ret_line);

/* s without leading and trailing spaces, tabs and CRs (the end is cut in place). */
char *kvfile_strip(char *s);
