/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A reader for the one request that carries many key-ids, without a json-c tree:
 *
 *   {"method": "keyscope.KeyInstall" | "keyscope.KeyRelease",
 *    "parameters": {"key-ids": ["ID", ...]}}
 *
 * white space (" \t\r\n") allowed between tokens and after the object, the members in either
 * order. It takes a text only where the full path (proto_parse(), proto_request_check(), the
 * methods' key-id checks) would take it with the same method and ids: every byte is ASCII, a
 * key-id carries no escape and passes keyid_is_valid(), no member is there twice, the array
 * holds 1..max ids. Any other text, right or wrong, is left to the full path, which answers
 * it as before: this reader never refuses a request itself.
 */
#pragma once

#include <stddef.h>

/* The most key-ids one KeyInstall or KeyRelease takes (docs/protocol.md). */
#define PROTO_IDS_MAX 1024

struct proto_ids {
	const char *method;	/* a static string: "keyscope.KeyInstall" or "keyscope.KeyRelease" */
	const char **ids;	/* n checked key-ids, NUL-terminated copies */
	size_t n;
	char *mem;		/* the one allocation that holds ids and the strings */
};

/*
 * Reads text (len bytes). Returns 1 and *ret (free with proto_ids_done()) when the text is a
 * request of the shape above with 1..max key-ids, 0 when it is not (take the full path), or
 * -ENOMEM. *ret is written only when 1 is returned.
 */
int proto_ids_read(const char *text, size_t len, size_t max, struct proto_ids *ret);

void proto_ids_done(struct proto_ids *p);
