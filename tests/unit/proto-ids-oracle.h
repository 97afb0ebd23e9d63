/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * For tests and the fuzz harness only: what the full path (proto_parse(),
 * proto_request_check(), the KeyInstall/KeyRelease parameter checks of daemon/rpc/methods.c)
 * makes of a text, written plainly on json-c, so that proto_ids_read() can be held to it.
 * Returns the number of key-ids (1..PROTO_IDS_MAX) of a batch request the full path takes,
 * its method in *ret_method and the ids in ret_ids[] (pointing into *ret_obj, which the caller
 * puts), or 0 when the full path refuses the text or it is no key-ids batch of those methods.
 */
#pragma once

#include <string.h>

#include "keyid.h"
#include "proto.h"
#include "proto-ids.h"

static inline size_t proto_ids_oracle(const char *text, size_t len, json_object **ret_obj,
				      const char **ret_method, const char **ret_ids)
{
	static const char *const allowed[] = { "key-id", "key-ids", NULL };
	struct proto_request req;
	json_object *o = NULL, *a;
	char err[256];
	size_t n;

	*ret_obj = NULL;
	if (proto_parse(text, len, &o, err, sizeof(err)) < 0)
		return 0;
	*ret_obj = o;
	if (proto_request_check(o, &req, err, sizeof(err)) < 0 || req.payload_size ||
	    (strcmp(req.method, "keyscope.KeyInstall") && strcmp(req.method, "keyscope.KeyRelease")))
		return 0;
	if (!req.parameters || proto_check_fields(req.parameters, allowed, err, sizeof(err)) < 0 ||
	    json_object_object_get_ex(req.parameters, "key-id", NULL) ||
	    !json_object_object_get_ex(req.parameters, "key-ids", &a) ||
	    !json_object_is_type(a, json_type_array))
		return 0;
	n = json_object_array_length(a);
	if (n == 0 || n > PROTO_IDS_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		const char *id = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) || !keyid_is_valid(id) ||
		    strlen(id) != (size_t) json_object_get_string_len(v))
			return 0;
		ret_ids[i] = id;
	}
	*ret_method = req.method;
	return n;
}
