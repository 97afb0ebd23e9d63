/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "token.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

bool token_source_is_valid(const char *s, size_t n)
{
	if (!s || n == 0 || n >= TOKEN_SOURCE_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* The string member field of o on its full length: NULL when absent, not a string, or when it
 * holds a NUL (json-c keeps "\u0000" inside the string, C string functions would stop there). */
static const char *full_string(json_object *o, const char *field, bool *present, size_t *ret_n)
{
	json_object *v;
	const char *s;
	int n;

	*present = json_object_object_get_ex(o, field, &v);
	if (!*present || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	n = json_object_get_string_len(v);
	if (!s || n < 0 || strlen(s) != (size_t) n)
		return NULL;
	*ret_n = (size_t) n;
	return s;
}

#define bad(why) ({ if (ret_reason) *ret_reason = (why); -EBADMSG; })

/* 1 when o is a token of type keyscope, 0 when of another type, -EBADMSG when it has none. */
static int token_is_ours(json_object *o, const char **ret_reason)
{
	bool present;
	size_t n;
	const char *type = full_string(o, "type", &present, &n);

	if (!present)
		return bad("the token has no \"type\"");
	/* A type that merely starts with "keyscope" (a NUL after it) is another type. */
	return type && streq(type, TOKEN_TYPE) ? 1 : 0;
}

static int token_key_size(json_object *o, size_t *ret, const char **ret_reason)
{
	json_object *v;
	int64_t ks;

	if (!json_object_object_get_ex(o, "key-size", &v))
		return bad("\"key-size\" is missing");
	if (!json_object_is_type(v, json_type_int))
		return bad("\"key-size\" is not a JSON integer");
	errno = 0;
	ks = json_object_get_int64(v);
	if (errno != 0 || (ks != 32 && ks != 64))
		return bad("\"key-size\" is not 32 or 64");
	*ret = (size_t) ks;
	return 0;
}

static int token_fields(json_object *o, struct token *t, const char **ret_reason)
{
	json_object *v;
	const char *s;
	bool present;
	size_t n;
	int r;

	if (!json_object_object_get_ex(o, "keyslots", &v) || !json_object_is_type(v, json_type_array))
		return bad("\"keyslots\" is missing or not an array");
	s = full_string(o, "key-id", &present, &n);
	if (!present)
		return bad("\"key-id\" is missing");
	if (!s)
		return bad("\"key-id\" is not a string, or holds a NUL");
	if (n > KEYID_MAX || !keyid_is_valid(s))
		return bad("\"key-id\" is not a valid key-id ([A-Za-z0-9._-], at most 128)");
	memcpy(t->key_id, s, n + 1);
	r = token_key_size(o, &t->key_size, ret_reason);
	if (r < 0)
		return r;
	s = full_string(o, "key-source", &present, &n);
	if (present) {
		if (!s)
			return bad("\"key-source\" is not a string, or holds a NUL");
		if (!token_source_is_valid(s, n))
			return bad("\"key-source\" is not a source name ([a-z][a-z0-9-]*, at most 31)");
		memcpy(t->source, s, n + 1);
	}
	return 0;
}

int token_parse(const char *json, size_t len, struct token *ret, const char **ret_reason)
{
	_cleanup_(json_object_putp) json_object *o = NULL;
	struct token t = {};
	json_tokener *tok;
	enum json_tokener_error e;
	size_t used;
	int r;

	if (!json || len == 0 || len > TOKEN_JSON_MAX || memchr(json, 0, len))
		return bad("the token is empty, too large, or holds a NUL byte");
	tok = json_tokener_new_ex(16);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, json, (int) len);
	e = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || e != json_tokener_success)
		return bad("the token is not valid JSON");
	for (; used < len; used++)
		if (!strchr(" \t\r\n", json[used]))
			return bad("the token has data after its JSON object");
	if (!json_object_is_type(o, json_type_object))
		return bad("the token is not a JSON object");
	r = token_is_ours(o, ret_reason);
	if (r <= 0)
		return r;
	r = token_fields(o, &t, ret_reason);
	if (r < 0)
		return r;
	*ret = t;
	return 1;
}

int token_format(const struct token *t, char *buf, size_t size)
{
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	const char *s;
	size_t n;

	if (!o)
		return -ENOMEM;
	if (!keyid_is_valid(t->key_id) || (t->key_size != 32 && t->key_size != 64) ||
	    (t->source[0] && !token_source_is_valid(t->source, strlen(t->source))))
		return -EINVAL;
	if (json_object_object_add(o, "type", json_object_new_string(TOKEN_TYPE)) < 0 ||
	    json_object_object_add(o, "keyslots", json_object_new_array()) < 0 ||
	    json_object_object_add(o, "key-id", json_object_new_string(t->key_id)) < 0 ||
	    (t->source[0] &&
	     json_object_object_add(o, "key-source", json_object_new_string(t->source)) < 0) ||
	    json_object_object_add(o, "key-size", json_object_new_int((int) t->key_size)) < 0)
		return -ENOMEM;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	if (n >= size)
		return -ENOBUFS;
	memcpy(buf, s, n + 1);
	return 0;
}
