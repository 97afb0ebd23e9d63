/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: the volumes file (lib/volumes.c) and the unit names made from what it
 * accepts (lib/unitname.c). The input is one file's contents. Whatever it holds, every volume
 * kept has a valid mapping name, an absolute device path with a device unit name, and an empty
 * or valid key-id; every bad line has a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmcrypt.h"
#include "keyid.h"
#include "unitname.h"
#include "volumes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char unit[4 * VOLUMES_DEVICE_MAX + 16];
	struct volumes vs = {};
	char *s;

	if (size > VOLUMES_FILE_MAX)
		return 0;
	s = malloc(size ? size : 1);	/* exactly the input, so ASan sees a read past it */
	if (!s)
		return 0;
	memcpy(s, data, size);
	if (volumes_parse_buffer(&vs, "fuzz", s, size) < 0)
		abort();
	for (size_t i = 0; i < vs.n; i++) {
		const struct volume *v = &vs.v[i];

		if (!dmcrypt_name_is_valid(v->name) || v->device[0] != '/' ||
		    (v->key_id[0] && !keyid_is_valid(v->key_id)) ||
		    unitname_from_device(v->device, unit, sizeof(unit)) < 0 ||
		    unitname_escape(v->name, unit, sizeof(unit)) < 0)
			abort();
	}
	for (size_t i = 0; i < vs.n_errors; i++)
		if (!vs.errors[i].message[0] || !vs.errors[i].line)
			abort();
	if (vs.n_errors > vs.n_bad)
		abort();
	volumes_done(&vs);
	free(s);
	return 0;
}
