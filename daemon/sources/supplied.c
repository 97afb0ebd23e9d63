/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys supplied by the caller for one call (contract in supplied.h). */
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "supplied.h"

/* The daemon runs one handler at a time: the key the running handler's call supplied. */
static struct {
	const char *id;
	const struct secret_buf *key;
} current;

bool supplied_has(const char *id)
{
	return current.key && id && streq(current.id, id);
}

int supplied_fetch(const char *id, struct secret_buf *ret)
{
	int r;

	if (!supplied_has(id))
		return -ENOENT;
	r = secret_buf_new(current.key->len, ret);
	if (r < 0)
		return r;
	memcpy(ret->data, current.key->data, current.key->len);
	return 0;
}

void supplied_set(const char *id, const struct secret_buf *key)
{
	current.id = id;
	current.key = key;
}
