/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "keyid.h"
#include "scope-reply.h"
#include "util.h"
#include "scope.h"
#include "source.h"

/*
 * Room for n more bytes and the NUL: returns where they go, or NULL once an append failed.
 * textbuf_commit() then says where the writing ended.
 */
static char *textbuf_reserve(struct textbuf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->alloc - b->len < n + 1) {
		size_t a = b->alloc ? b->alloc : 4096;
		char *p;
		while (a - b->len < n + 1)
			a *= 2;
		p = realloc(b->p, a);
		if (!p) {
			b->oom = true;
			return NULL;
		}
		b->p = p;
		b->alloc = a;
	}
	return b->p + b->len;
}

static void textbuf_commit(struct textbuf *b, char *end)
{
	b->len = (size_t) (end - b->p);
	b->p[b->len] = 0;
}

static char *put(char *w, const char *s, size_t n)
{
	memcpy(w, s, n);
	return w + n;
}
/* A string literal: its length is known when compiling. */
#define PUT_LIT(w, lit) put((w), "" lit, sizeof(lit) - 1)

void textbuf_put(struct textbuf *b, const char *s, size_t n)
{
	char *w = textbuf_reserve(b, n);

	if (w)
		textbuf_commit(b, put(w, s, n));
}

void textbuf_str(struct textbuf *b, const char *s)
{
	textbuf_put(b, s, strlen(s));
}

void textbuf_u64(struct textbuf *b, uint64_t v)
{
	char tmp[20];

	textbuf_put(b, tmp, format_u64(tmp, v));
}

void textbuf_i64(struct textbuf *b, int64_t v)
{
	if (v < 0) {
		textbuf_put(b, "-", 1);
		textbuf_u64(b, (uint64_t) 0 - (uint64_t) v);
	} else
		textbuf_u64(b, (uint64_t) v);
}

char *textbuf_take(struct textbuf *b)
{
	char *p = b->p;

	if (b->oom || !p) {
		free(p);
		p = NULL;
	}
	*b = (struct textbuf) {};
	return p;
}

#define FIELD_KEY_ID "{\"key-id\":\""
#define FIELD_DESC "\",\"description\":\""
#define FIELD_SERIAL "\",\"serial\":"
#define FIELD_HOLDERS ",\"holders\":"
#define FIELD_MANUAL ",\"manual\":"
#define FIELD_FETCHES ",\"fetches\":"
#define FIELD_SOURCE ",\"source\":\""
#define U64_MAX_DIGITS 20

/*
 * Scope ids are [A-Za-z0-9._:-] (scope_id_is_valid): nothing in them needs escaping. One
 * reserve of the longest the object can be, then plain writes: it runs once per key of a batch.
 */
void scope_reply_put(struct textbuf *b, const struct scope *s, struct source *src)
{
	const char *kind = src ? (s->is_key ? source_kind(src, s->id) : "volume-key") : NULL;
	size_t id_len = strlen(s->id), desc_len = strlen(s->desc);
	size_t kind_len = kind ? strlen(kind) : 0;
	char *w = textbuf_reserve(b, sizeof(FIELD_KEY_ID) + id_len + sizeof(FIELD_DESC) +
				     desc_len + sizeof(FIELD_SERIAL) + 1 + sizeof(FIELD_HOLDERS) +
				     sizeof(FIELD_MANUAL) + sizeof(FIELD_FETCHES) +
				     4 * U64_MAX_DIGITS + sizeof(FIELD_SOURCE) + kind_len + 2);
	int64_t serial = s->serial;

	if (!w)
		return;
	w = PUT_LIT(w, FIELD_KEY_ID);
	w = put(w, s->id, id_len);
	w = PUT_LIT(w, FIELD_DESC);
	w = put(w, s->desc, desc_len);
	w = PUT_LIT(w, FIELD_SERIAL);
	if (serial < 0)
		*w++ = '-';
	w += format_u64(w, serial < 0 ? (uint64_t) 0 - (uint64_t) serial : (uint64_t) serial);
	w = PUT_LIT(w, FIELD_HOLDERS);
	w += format_u64(w, scope_holders(s));
	w = PUT_LIT(w, FIELD_MANUAL);
	w += format_u64(w, s->manual);
	w = PUT_LIT(w, FIELD_FETCHES);
	w += format_u64(w, s->fetches);
	if (kind) {
		w = PUT_LIT(w, FIELD_SOURCE);
		w = put(w, kind, kind_len);
		*w++ = '"';
	}
	*w++ = '}';
	textbuf_commit(b, w);
}

void scope_reply_put_gone(struct textbuf *b, const char *id)
{
	textbuf_str(b, "{\"key-id\":\"");
	textbuf_str(b, id);
	textbuf_str(b, "\",\"serial\":0,\"holders\":0}");
}
