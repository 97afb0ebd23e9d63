/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replies about scopes (KeyInstall, KeyRelease, ScopeList, Status) written straight into one
 * text buffer, without a json-c tree: at 10,000 scopes the tree, its serialisation and its
 * freeing cost more than the kernel work. The text is what json-c wrote before, field for field.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct scope;
struct source;

struct textbuf {
	char *p;
	size_t len, alloc;
	bool oom;	/* an append failed: the text is incomplete */
};

void textbuf_put(struct textbuf *b, const char *s, size_t n);
void textbuf_str(struct textbuf *b, const char *s);
void textbuf_u64(struct textbuf *b, uint64_t v);
void textbuf_i64(struct textbuf *b, int64_t v);
/* Takes the text (NUL-terminated) or returns NULL (and frees) when an append failed. */
char *textbuf_take(struct textbuf *b);

/*
 * One scope as a JSON object: key-id, description, serial, holders, manual, fetches and, with
 * src, where its key comes from ("local", "barbican", "supplied", or "volume-key").
 */
void scope_reply_put(struct textbuf *b, const struct scope *s, struct source *src);
/* A key-id that has no scope (any more): key-id, serial 0, holders 0. */
void scope_reply_put_gone(struct textbuf *b, const char *id);
