/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: a LUKS2 token's JSON text as a crafted header holds it (lib/token.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyid.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct token t, back;
	const char *why = NULL;
	char buf[512];
	int r;

	r = token_parse((const char *) data, size, &t, &why);
	if (r < 0 && !why)
		abort();
	if (r != 1)
		return 0;
	/* What is accepted is exactly what the grammars allow, and writes back the same. */
	if (!keyid_is_valid(t.key_id) || (t.key_size != 32 && t.key_size != 64) ||
	    (t.source[0] && !token_source_is_valid(t.source, strlen(t.source))))
		abort();
	if (token_format(&t, buf, sizeof(buf)) != 0 ||
	    token_parse(buf, strlen(buf), &back, NULL) != 1 || strcmp(back.key_id, t.key_id) ||
	    strcmp(back.source, t.source) || back.key_size != t.key_size)
		abort();
	return 0;
}
