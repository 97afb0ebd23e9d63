/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "keyid.h"
#include "scope-reply.h"
#include "util.h"
#include "scope.h"
#include "source.h"

void textbuf_put(struct textbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->alloc - b->len < n + 1) {
		size_t a = b->alloc ? b->alloc : 4096;
		char *p;
		while (a - b->len < n + 1)
			a *= 2;
		p = realloc(b->p, a);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->alloc = a;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
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

/* Scope ids are [A-Za-z0-9._:-] (scope_id_is_valid): nothing in them needs escaping. */
void scope_reply_put(struct textbuf *b, const struct scope *s, struct source *src)
{
	textbuf_str(b, "{\"key-id\":\"");
	textbuf_str(b, s->id);
	textbuf_str(b, "\",\"description\":\"");
	textbuf_str(b, s->desc);
	textbuf_str(b, "\",\"serial\":");
	textbuf_i64(b, s->serial);
	textbuf_str(b, ",\"holders\":");
	textbuf_u64(b, scope_holders(s));
	textbuf_str(b, ",\"manual\":");
	textbuf_u64(b, s->manual);
	textbuf_str(b, ",\"fetches\":");
	textbuf_u64(b, s->fetches);
	if (src) {
		textbuf_str(b, ",\"source\":\"");
		textbuf_str(b, s->is_key ? source_kind(src, s->id) : "volume-key");
		textbuf_put(b, "\"", 1);
	}
	textbuf_put(b, "}", 1);
}

void scope_reply_put_gone(struct textbuf *b, const char *id)
{
	textbuf_str(b, "{\"key-id\":\"");
	textbuf_str(b, id);
	textbuf_str(b, "\",\"serial\":0,\"holders\":0}");
}
