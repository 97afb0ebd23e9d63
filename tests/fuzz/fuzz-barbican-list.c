/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: a page of Barbican's secret list (GET /v1/secrets?acl_only=true).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "barbican.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct barbican_list l = {};
	char err[256];
	char *s;

	if (size > 2 * BARBICAN_BODY_MAX)
		return 0;
	s = malloc(size ? size : 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	if (barbican_parse_list(s, size, &l, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < l.n; i++)
			if (!keyid_is_valid(l.items[i].id))
				abort();	/* every entry is named by a valid key-id */
		barbican_list_done(&l);
	}
	free(s);
	return 0;
}
