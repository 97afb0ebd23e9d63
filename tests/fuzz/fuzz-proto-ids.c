/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: proto_ids_read(), the tree-less reader of KeyInstall/KeyRelease batches,
 * on a client's byte stream, held to the full path: whatever it takes, the full path must
 * take too, with the same method and the same ids in the same order (it may leave texts to
 * the full path, never take one the full path refuses).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/proto-ids-oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *want_ids[PROTO_IDS_MAX];

static void agree(const char *text, size_t len)
{
	struct proto_ids got;
	json_object *o;
	const char *method = NULL;
	size_t n = proto_ids_oracle(text, len, &o, &method, want_ids);
	int r = proto_ids_read(text, len, PROTO_IDS_MAX, &got);

	if (r < 0)
		abort();
	if (r > 0) {
		if (n != got.n || strcmp(method, got.method) != 0)
			abort();
		for (size_t i = 0; i < n; i++)
			if (strcmp(want_ids[i], got.ids[i]) != 0 || !keyid_is_valid(got.ids[i]))
				abort();
		proto_ids_done(&got);
	}
	json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	/* As the daemon reads a stream: frame by frame. */
	while (off < size) {
		size_t len;
		if (proto_frame(data + off, size - off, &len) <= 0)
			break;
		agree((const char *) data + off, len);
		off += len + 1;
	}
	return 0;
}
