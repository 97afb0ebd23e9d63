/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parameter checks and error replies shared by the methods. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "call.h"
#include "keyid.h"
#include "proto.h"
#include "source.h"
#include "store.h"

int call_check_params(struct call *c, const char *const *allowed)
{
	char err[256];
	int r = proto_check_fields(c->params, allowed, err, sizeof(err));

	return r < 0 ? call_error(c, r, "keyscope.InvalidParameter", "%s", err) : 0;
}

int call_get_key_id(struct call *c, const char *field, const char **ret)
{
	char err[256];
	const char *id = NULL;
	int r;

	r = proto_get_string(c->params, field, true, PROTO_MAX_MESSAGE, &id, err, sizeof(err));
	if (r < 0)
		return call_error(c, r, "keyscope.InvalidParameter", "%s", err);
	if (!keyid_is_valid(id))
		return call_error(c, -EINVAL, "keyscope.InvalidKeyId",
				  "'%.*s%s' is not a valid key-id: 1-%d characters of "
				  "[A-Za-z0-9._-], starting with a letter or digit, no '..'",
				  64, id, strlen(id) > 64 ? "..." : "", KEYID_MAX);
	*ret = id;
	return 0;
}

int call_get_name(struct call *c, const char **ret)
{
	char err[256];
	int r = proto_get_string(c->params, "name", false, STORE_NAME_MAX, ret, err, sizeof(err));

	return r < 0 ? call_error(c, r, "keyscope.InvalidParameter", "%s", err) : 0;
}

int call_key_error(struct call *c, int r, const char *id, const char *what)
{
	struct store *st = c->daemon->store;
	const char *name, *message;

	/* Waiting for the key source is not an error: the server runs the handler again. */
	if (r == -EINPROGRESS)
		return r;
	/* Barbican's refusals say what to do next better than an errno can. */
	if (c->daemon->source && source_error(c->daemon->source, id, &name, &message))
		return call_error(c, r, name, "%s", message);
	switch (r) {
	case -ENOENT:
		return call_error(c, r, "keyscope.NoSuchKey", "no key %s in the key store", id);
	case -EBADMSG:
		return call_error(c, r, "keyscope.CorruptKey",
				  "key file %s is corrupt, truncated, tampered with or sealed "
				  "under another master key; restore it from a backup",
				  store_path(st, id));
	case -EDQUOT:
	case -ENOMEM:
		return call_error(c, r, "keyscope.KeyQuota",
				  "%s %s: the kernel's key quota for root is full (or memory is "
				  "short); raise /proc/sys/kernel/keys/root_maxkeys and "
				  "root_maxbytes", what, id);
	case -EINVAL:
		return call_error(c, r, "keyscope.InvalidParameter", "%s %s: invalid argument",
				  what, id);
	default:
		return call_error(c, r, "keyscope.KeyError", "%s %s failed: %s", what, id,
				  strerror(-r));
	}
}

int call_get_string(struct call *c, const char *field, bool required, size_t max,
		    const char **ret)
{
	char err[256];
	int r = proto_get_string(c->params, field, required, max, ret, err, sizeof(err));

	return r < 0 ? call_error(c, r, "keyscope.InvalidParameter", "%s", err) : 0;
}

int call_get_uint(struct call *c, const char *field, bool required, uint64_t max,
		  uint64_t *ret)
{
	char err[256];
	int r = proto_get_uint(c->params, field, required, max, ret, err, sizeof(err));

	return r < 0 ? call_error(c, r, "keyscope.InvalidParameter", "%s", err) : 0;
}

int call_get_bool(struct call *c, const char *field, bool *ret)
{
	char err[256];
	int r = proto_get_bool(c->params, field, false, ret, err, sizeof(err));

	return r < 0 ? call_error(c, r, "keyscope.InvalidParameter", "%s", err) : 0;
}
