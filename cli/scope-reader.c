/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "scope-reader.h"
#include "util.h"

#define KEY_ID_WIDTH 40
#define SERIAL_WIDTH 10
#define HOLDERS_WIDTH 7

static char *rows_room(struct scope_reply *r, size_t n)
{
	if (r->alloc - r->len < n) {
		size_t a = r->alloc ? r->alloc : 64 * 1024;
		char *p;
		while (a - r->len < n)
			a *= 2;
		p = realloc(r->rows, a);
		if (!p)
			return NULL;
		r->rows = p;
		r->alloc = a;
	}
	return r->rows + r->len;
}

/* v right-aligned in width characters, as printf's "%*lld": returns the bytes written. */
static size_t put_int(char *o, int64_t v, size_t width)
{
	char tmp[24];
	size_t n = sizeof(tmp), len, pad;
	uint64_t u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

	do
		tmp[--n] = (char) ('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		tmp[--n] = '-';
	len = sizeof(tmp) - n;
	pad = len < width ? width - len : 0;
	memset(o, ' ', pad);
	memcpy(o + pad, tmp + n, len);
	return pad + len;
}

static int put_row(const struct proto_scope_row *row, void *userdata)
{
	struct scope_reply *r = userdata;
	size_t pad = row->key_id_len < KEY_ID_WIDTH ? KEY_ID_WIDTH - row->key_id_len : 0;
	char *o = rows_room(r, row->key_id_len + pad + 2 * 24 + 3), *start = o;

	if (!o)
		return -ENOMEM;
	memcpy(o, row->key_id, row->key_id_len);
	o += row->key_id_len;
	memset(o, ' ', pad);
	o += pad;
	*o++ = ' ';
	o += put_int(o, row->serial, SERIAL_WIDTH);
	*o++ = ' ';
	o += put_int(o, row->holders, HOLDERS_WIDTH);
	*o++ = '\n';
	r->len += (size_t) (o - start);
	return 0;
}

/* The reply with parameters.scopes' value replaced by [], parsed with json-c. */
static int parse_rest(struct scope_reply *r, const char *text, size_t len)
{
	static const struct proto_parse_opts opts = {
		.max = PROTO_MAX_REPLY, .depth = PROTO_MAX_DEPTH, .what = "reply",
	};
	const struct proto_scan *s = &r->scan;
	_cleanup_free_ char *rest = NULL;
	size_t n = 0;

	if (!s->has_scopes)
		return proto_parse_full(text, len, &opts, &r->tree, r->err, sizeof(r->err));
	rest = malloc(len - (s->scopes_end - s->scopes_start) + 2);
	if (!rest)
		return -ENOMEM;
	memcpy(rest, text, s->scopes_start);
	n = s->scopes_start;
	memcpy(rest + n, "[]", 2);
	n += 2;
	memcpy(rest + n, text + s->scopes_end, len - s->scopes_end);
	n += len - s->scopes_end;
	return proto_parse_full(rest, n, &opts, &r->tree, r->err, sizeof(r->err));
}

static int read_reply(const char *text, size_t len, void *userdata)
{
	struct scope_reply *r = userdata;
	static const char header[] = "KEY-ID                                       SERIAL HOLDERS\n";
	char *o = rows_room(r, sizeof(header) - 1);
	int k;

	if (!o)
		return -ENOMEM;
	memcpy(o, header, sizeof(header) - 1);
	r->len += sizeof(header) - 1;
	k = proto_scan_scopes(text, len, put_row, r, &r->scan, r->err, sizeof(r->err));
	if (k < 0)
		return k;
	if (r->scan.error || r->want_rest)
		k = parse_rest(r, text, len);
	if (k < 0)
		return k;
	return (int) r->scan.payload_size;
}

int scope_reply_call(const char *method, struct scope_reply *r, json_object **ret_params)
{
	json_object *rp;
	int k;

	k = ctl_call_with(method, read_reply, r, r->err);
	if (k < 0)
		return k;
	if (r->scan.error || r->want_rest) {
		k = ctl_reply_check(r->tree, &rp);
		if (k < 0)
			return k;
		*ret_params = rp;
	} else
		*ret_params = NULL;
	return 0;
}

void scope_reply_done(struct scope_reply *r)
{
	free(r->rows);
	json_object_put(r->tree);
	*r = (struct scope_reply) {};
}

void scope_reply_print(const struct scope_reply *r)
{
	if (r->scan.has_scopes)
		fwrite(r->rows, 1, r->len, stdout);
}
