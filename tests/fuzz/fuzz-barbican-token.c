/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: Keystone's token response, ISO 8601 times, Retry-After values and application
 * credential files: the first byte picks the parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "barbican.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct barbican_token_info t;
	struct secret_buf secret = {};
	char err[256], id[256];
	uint64_t sec;
	int64_t when;
	char *s;

	if (size < 1 || size > 65536)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = 0;	/* the string parsers take NUL-terminated text */
	switch (data[0] % 4) {
	case 0:
		(void) barbican_parse_token(s, size - 1, &t, err, sizeof(err));
		break;
	case 1:
		(void) barbican_parse_time(s, &when);
		break;
	case 2:
		if (barbican_parse_retry_after(s, 1800000000, &sec) == 0 && sec > 86400)
			abort();
		break;
	case 3:
		if (barbican_parse_app_credential(s, size - 1, id, sizeof(id), &secret, err,
						  sizeof(err)) == 0)
			secret_buf_done(&secret);
		break;
	}
	free(s);
	return 0;
}
