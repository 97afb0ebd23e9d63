/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: the crypt table parameters device-mapper reports, as crash recovery reads
 * them (lib/dmcrypt.c): the logon key description and the backing device field.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmcrypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, desc[256], dev[64];

	if (size > 65536)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (dmcrypt_params_key_desc(s, desc, sizeof(desc)) == 0 &&
	    (strlen(desc) == 0 || strlen(desc) >= sizeof(desc) || strchr(desc, ' ')))
		abort();
	if (dmcrypt_params_device(s, dev, sizeof(dev)) == 0 && strlen(dev) >= sizeof(dev))
		abort();
	free(s);
	return 0;
}
