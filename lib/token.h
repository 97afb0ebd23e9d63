/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The keyscope LUKS2 token: the one parser of it, used by attach, probe and format alike.
 *
 *	{"type":"keyscope","keyslots":[],"key-id":"<key-id>","key-source":"local","key-size":64}
 *
 * A header is device content anyone with write access may have crafted, so the parse is
 * exact and all or nothing: "type" the string "keyscope", "keyslots" an array, "key-id" a
 * string of the key-id grammar (keyid.h), "key-size" a JSON integer 32 or 64, "key-source" (may
 * be absent) a string of the source grammar; every string on its full JSON length, so a
 * "\u0000" inside one is refused, not cut. Other members are ignored: LUKS2 lets tokens carry
 * them. No logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "keyid.h"

#define TOKEN_TYPE "keyscope"
#define TOKEN_SOURCE_MAX 32		/* source bytes with the NUL */
#define TOKEN_JSON_MAX (64 * 1024)	/* a token's JSON text; ours is ~130 bytes */

struct token {
	char key_id[KEYID_MAX + 1];
	char source[TOKEN_SOURCE_MAX];	/* "" when the token names none */
	size_t key_size;		/* volume key bytes: 32 or 64 */
};

/*
 * A key source is a short lower-case word: [a-z][a-z0-9-]*, 1..TOKEN_SOURCE_MAX - 1 bytes.
 * s is n bytes (NUL not needed). Returns true when it fits.
 */
bool token_source_is_valid(const char *s, size_t n);

/*
 * Parses one LUKS2 token's JSON text (len bytes). Returns 1 and fills *ret for a valid keyscope
 * token; 0 when the token is of another type (not ours: *ret untouched); -EBADMSG when it is
 * not a JSON object, or is a keyscope token with a missing or bad field, with the reason in
 * *ret_reason (a static string; may be NULL) -- *ret untouched then.
 */
int token_parse(const char *json, size_t len, struct token *ret, const char **ret_reason);

/*
 * Writes the token for t as compact JSON into buf. Returns 0; -EINVAL when a field of t would
 * not parse back with token_parse(); -ENOBUFS when size is too small.
 */
int token_format(const struct token *t, char *buf, size_t size);
