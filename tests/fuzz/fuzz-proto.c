/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: the daemon's view of a client's byte stream. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(json_object *o)
{
	static const char *const allowed[] = { "key-id", "name", "bits", NULL };
	struct proto_request req;
	const char *s;
	uint64_t u;
	bool b;
	char err[256];

	if (proto_request_check(o, &req, err, sizeof(err)) < 0)
		return;
	(void) proto_check_fields(req.parameters, allowed, err, sizeof(err));
	(void) proto_get_string(req.parameters, "key-id", true, 4096, &s, err, sizeof(err));
	(void) proto_get_uint(req.parameters, "bits", false, 65536, &u, err, sizeof(err));
	(void) proto_get_bool(req.parameters, "force", false, &b, err, sizeof(err));
	(void) proto_reply_error(o, &s);
	(void) proto_to_string(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	/* Walk the stream as the daemon does: frame, parse, check, consume. */
	while (off < size) {
		json_object *o = NULL;
		size_t len;
		char err[256];
		int r = proto_frame(data + off, size - off, &len);

		if (r <= 0)
			break;
		if (proto_parse((const char *) data + off, len, &o, err, sizeof(err)) >= 0) {
			exercise(o);
			json_object_put(o);
		}
		off += len + 1;
	}
	return 0;
}
