/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The volume methods with a key supplied as the request's payload (sources/supplied.h). */
#include <errno.h>
#include <string.h>

#include "attach.h"
#include "call.h"
#include "keyid.h"
#include "supplied-methods.h"
#include "supplied.h"

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
	supplied_set(id, &c->payload);
	r = handler(c);
	supplied_set(NULL, NULL);
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
