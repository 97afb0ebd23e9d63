/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys supplied by the caller for one call (contract in supplied.h). */
#include <errno.h>
#include <string.h>

#include "attach.h"
#include "keyid.h"
#include "proto.h"
#include "server.h"
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

static int run_supplied(struct call *c, int (*handler)(struct call *c))
{
	json_object *v;
	const char *id;
	int r;

	if (c->payload.len == 0)
		return handler(c);
	if (!json_object_object_get_ex(c->params, "key-id", &v) ||
	    json_object_get_type(v) != json_type_string)
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "%s with a key as payload needs 'key-id', the key-id the key "
				  "is the material of", c->method);
	id = json_object_get_string(v);
	if (!keyid_is_valid(id))
		return handler(c);	/* the handler names the bad key-id */
	if (c->payload.len != 32 && c->payload.len != 64)
		return call_error(c, -EINVAL, "keyscope.InvalidKeyLength",
				  "a supplied key must be exactly 32 or 64 bytes, got %zu",
				  c->payload.len);
	current.id = id;
	current.key = &c->payload;
	r = handler(c);
	current.id = NULL;
	current.key = NULL;
	return r;
}

int supplied_volume_attach(struct call *c)
{
	return run_supplied(c, m_volume_attach);
}

int supplied_volume_format(struct call *c)
{
	return run_supplied(c, m_volume_format);
}
