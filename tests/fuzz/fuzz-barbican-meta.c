/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: Barbican's secret metadata (GET /v1/secrets/<id>), then the
 * checks keyscope makes of it with payload lengths from the input, and a POST's secret_ref.
 * An accepted secret's name must pass keyscopectl's strict parser when the daemon lists it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "barbican.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void name_round_trip(const char *name)
{
	_cleanup_json_ json_object *o = json_object_new_object(), *back = NULL;
	const char *text;

	if (!o)
		return;
	json_object_object_add(o, "name", json_object_new_string(name));
	text = proto_to_string(o);
	if (text && proto_parse(text, strlen(text), &back, NULL, 0) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct barbican_meta m;
	char err[384], id[KEYID_MAX + 1];
	char *s;

	if (size < 1 || size > 2 * BARBICAN_META_MAX)
		return 0;
	/* A copy of exactly the input, so ASan sees any read past it. */
	s = malloc(size - 1 ? size - 1 : 1);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	if (barbican_parse_meta(s, size - 1, &m, err, sizeof(err)) == 0) {
		/* Every field is NUL-terminated inside its buffer. */
		if (strnlen(m.name, sizeof(m.name)) == sizeof(m.name) ||
		    strnlen(m.id, sizeof(m.id)) == sizeof(m.id))
			abort();
		name_round_trip(m.name);
		(void) barbican_check_meta(&m, m.id[0] ? m.id : "x", data[0], 1800000000, err,
					   sizeof(err));
		(void) barbican_check_meta(&m, "x", (size_t) data[0] * 8, 0, err, sizeof(err));
	}
	(void) barbican_parse_secret_ref(s, size - 1, id, err, sizeof(err));
	free(s);
	return 0;
}
