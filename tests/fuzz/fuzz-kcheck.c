/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: the parsers of kernel and file text behind the kernel checks and the
 * request-key handler. The first byte picks the parser; the rest is its input:
 * 0 DM_LIST_VERSIONS records, 1 /proc/misc, 2 /proc/key-users, 3 a request-key.conf line,
 * 4 KEYCTL_DESCRIBE text, 5 text_escape() and text_is_escaped().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kcheck.h"
#include "keyring.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, out[4 * 64 + 4], prog[256];
	struct key_info info;
	uint64_t a, b;
	unsigned v[3];

	if (size < 1 || size > 65536)
		return 0;
	/* A copy of exactly the input, so ASan sees any read past it; NUL-terminated for text. */
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = 0;
	switch (data[0] % 6) {
	case 0:
		(void) kcheck_parse_target_versions(s, size - 1, "crypt", v);
		break;
	case 1:
		(void) kcheck_parse_misc(s, "device-mapper");
		break;
	case 2:
		(void) kcheck_parse_key_users(s, 0, &a, &b);
		break;
	case 3:
		(void) kcheck_parse_request_key_line(s, prog, sizeof(prog));
		(void) kcheck_rk_match(s, strlen(s), "keyscope:0");
		break;
	case 4:
		if (strlen(s) < sizeof(info.description))
			(void) keyring_describe_parse(s, &info);
		break;
	case 5:
		(void) text_escape(s, size - 1, 64, out, sizeof(out));
		if (!text_is_escaped(out))
			abort();	/* whatever comes out must be in escaped form */
		(void) text_is_escaped(s);
		break;
	}
	free(s);
	return 0;
}
