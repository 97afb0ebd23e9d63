/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: keyscopectl's tree-less reader of the scope replies (lib/proto-scan.c),
 * held against json-c. Whatever the reader accepts, proto_parse_full() must accept, and the
 * rows must be the tree's; what the reader refuses as malformed JSON while json-c takes it may
 * only be a number outside RFC 8259's grammar ("1.", "-01").
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto-scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct rows {
	json_object *scopes;	/* json-c's reading of the same text */
	size_t n;
};

static int check_row(const struct proto_scope_row *row, void *userdata)
{
	struct rows *r = userdata;
	json_object *s, *v;

	/* Rows come before the verdict; compare them only when json-c read the text too. */
	if (r->scopes) {
		assert(r->n < json_object_array_length(r->scopes));
		s = json_object_array_get_idx(r->scopes, r->n);
		assert(json_object_object_get_ex(s, "key-id", &v));
		assert(json_object_is_type(v, json_type_string));
		assert((size_t) json_object_get_string_len(v) == row->key_id_len);
		assert(memcmp(json_object_get_string(v), row->key_id, row->key_id_len) == 0);
		assert(json_object_object_get_ex(s, "serial", &v));
		assert(json_object_is_type(v, json_type_int));
		assert(json_object_get_int64(v) == row->serial);
		assert(json_object_object_get_ex(s, "holders", &v));
		assert(json_object_is_type(v, json_type_int));
		assert(json_object_get_int64(v) == row->holders);
	}
	r->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct proto_parse_opts opts = {
		.max = PROTO_MAX_REPLY, .depth = PROTO_MAX_DEPTH, .what = "reply",
	};
	const char *text = (const char *) data;
	json_object *o = NULL, *p = NULL, *v;
	struct rows rows = {};
	struct proto_scan scan;
	char err[256] = "";
	int r, rt;

	rt = proto_parse_full(text, size, &opts, &o, NULL, 0);
	if (rt == 0 && json_object_object_get_ex(o, "parameters", &p) &&
	    json_object_is_type(p, json_type_object))
		(void) json_object_object_get_ex(p, "scopes", &rows.scopes);
	if (rows.scopes && !json_object_is_type(rows.scopes, json_type_array))
		rows.scopes = NULL;
	r = proto_scan_scopes(text, size, check_row, &rows, &scan, err, sizeof(err));
	if (r == 0) {
		assert(rt == 0);
		assert(scan.error == json_object_object_get_ex(o, "error", NULL));
		assert(scan.has_scopes == (rows.scopes != NULL));
		assert(scan.scopes == rows.n);
		if (rows.scopes) {
			assert(rows.n == json_object_array_length(rows.scopes));
			assert(scan.scopes_start < scan.scopes_end && scan.scopes_end <= size);
			assert(text[scan.scopes_start] == '[' && text[scan.scopes_end - 1] == ']');
		}
		if (json_object_object_get_ex(o, "payload-size", &v))
			assert(json_object_get_int64(v) == (int64_t) scan.payload_size);
		else
			assert(scan.payload_size == 0);
	} else {
		assert(r == -EBADMSG || r == -EPROTO);
		assert(err[0]);
		if (r == -EBADMSG && rt == 0)
			assert(strstr(err, "number"));
	}
	json_object_put(o);
	return 0;
}
