/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tree-less reader of KeyInstall/KeyRelease batches (proto-ids.h). It is a recogniser of
 * a narrow form, not a JSON parser: whatever is outside that form gives 0 and goes to
 * proto_parse(), so both paths refuse the same texts with the same words.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyid.h"
#include "macro.h"
#include "proto-ids.h"

struct cursor {
	const char *p;
	size_t n, i;
};

static void skip_ws(struct cursor *c)
{
	while (c->i < c->n && (c->p[c->i] == ' ' || c->p[c->i] == '\t' || c->p[c->i] == '\r' ||
			       c->p[c->i] == '\n'))
		c->i++;
}

/* The punctuation ch after optional white space. */
static bool take(struct cursor *c, char ch)
{
	skip_ws(c);
	if (c->i >= c->n || c->p[c->i] != ch)
		return false;
	c->i++;
	return true;
}

/* The bytes that keep a string off the plain path: a backslash, controls, non-ASCII. */
static const uint8_t not_plain[256] = {
	[0 ... 0x1f] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1,
};

/*
 * A string of at most max bytes that need no escape and are ASCII: sets its start and length.
 * Anything with a backslash, a control byte or a byte >= 0x80 is not taken (the full path
 * decides). memchr() finds the end, then the bytes' classes are ORed without a branch: it runs
 * once per key-id of a batch (~530 instructions for a UUID with four compares per byte).
 */
static bool take_plain_string(struct cursor *c, const char **ret, size_t *ret_len, size_t max)
{
	const unsigned char *s;
	const char *q;
	unsigned bad = 0;
	size_t len;

	if (!take(c, '"'))
		return false;
	s = (const unsigned char *) c->p + c->i;
	q = memchr(s, '"', c->n - c->i < max + 1 ? c->n - c->i : max + 1);
	if (!q)
		return false;	/* longer than max, or no end */
	len = (size_t) ((const unsigned char *) q - s);
#pragma GCC unroll 8
	for (size_t k = 0; k < len; k++)
		bad |= not_plain[s[k]];
	if (bad)
		return false;
	*ret = c->p + c->i;
	*ret_len = len;
	c->i += len + 1;
	return true;
}

static bool take_literal(struct cursor *c, const char *s)
{
	const char *v;
	size_t n;

	return take_plain_string(c, &v, &n, strlen(s)) && n == strlen(s) && memcmp(v, s, n) == 0;
}

/* The key-ids array: the strings' bounds are recorded in spans, 2 a key-id. */
static bool take_ids(struct cursor *c, size_t max, size_t *spans, size_t *ret_n)
{
	size_t n = 0;

	if (!take(c, '['))
		return false;
	do {
		const char *v;
		size_t len;
		if (n >= max || !take_plain_string(c, &v, &len, KEYID_MAX))
			return false;
		spans[2 * n] = (size_t) (v - c->p);
		spans[2 * n + 1] = len;
		n++;
	} while (take(c, ','));
	if (!take(c, ']'))
		return false;
	*ret_n = n;
	return true;
}

static bool take_method(struct cursor *c, const char **ret)
{
	static const char *const names[] = { "keyscope.KeyInstall", "keyscope.KeyRelease" };
	const char *v;
	size_t n;

	if (!take_plain_string(c, &v, &n, 32))
		return false;
	for (size_t i = 0; i < 2; i++)
		if (n == strlen(names[i]) && memcmp(v, names[i], n) == 0) {
			*ret = names[i];
			return true;
		}
	return false;
}

static bool take_parameters(struct cursor *c, size_t max, size_t *spans, size_t *ret_n)
{
	return take(c, '{') && take_literal(c, "key-ids") && take(c, ':') &&
	       take_ids(c, max, spans, ret_n) && take(c, '}');
}

/* The whole text: the two members once each, in either order, then only white space. */
static bool recognise(struct cursor *c, size_t max, size_t *spans, size_t *ret_n,
		      const char **ret_method)
{
	bool have_method = false, have_params = false;

	if (!take(c, '{'))
		return false;
	do {
		const char *name;
		size_t len;
		if (!take_plain_string(c, &name, &len, 16) || !take(c, ':'))
			return false;
		if (len == 6 && memcmp(name, "method", 6) == 0 && !have_method) {
			if (!take_method(c, ret_method))
				return false;
			have_method = true;
		} else if (len == 10 && memcmp(name, "parameters", 10) == 0 && !have_params) {
			if (!take_parameters(c, max, spans, ret_n))
				return false;
			have_params = true;
		} else
			return false;
	} while (take(c, ','));
	if (!take(c, '}') || !have_method || !have_params)
		return false;
	skip_ws(c);
	return c->i == c->n;
}

int proto_ids_read(const char *text, size_t len, size_t max, struct proto_ids *ret)
{
	struct cursor c = { .p = text, .n = len };
	_cleanup_free_ size_t *spans = NULL;
	const char *method = NULL;
	size_t n = 0, bytes = 0;
	char *mem, *s;
	const char **ids;

	/* The array cannot hold more ids than every third byte: bound the spans by both. */
	if (!text || max == 0)
		return 0;
	if (max > len / 3 + 1)
		max = len / 3 + 1;
	spans = malloc(2 * max * sizeof(*spans));
	if (!spans)
		return -ENOMEM;
	if (!recognise(&c, max, spans, &n, &method))
		return 0;
	for (size_t i = 0; i < n; i++)
		bytes += spans[2 * i + 1] + 1;
	mem = malloc(n * sizeof(*ids) + bytes);
	if (!mem)
		return -ENOMEM;
	ids = (const char **) (void *) mem;
	s = mem + n * sizeof(*ids);
	for (size_t i = 0; i < n; i++) {
		memcpy(s, text + spans[2 * i], spans[2 * i + 1]);
		s[spans[2 * i + 1]] = 0;
		/* The one check of each id: the handlers trust ids from here on. */
		if (!keyid_is_valid(s)) {
			free(mem);
			return 0;
		}
		ids[i] = s;
		s += spans[2 * i + 1] + 1;
	}
	*ret = (struct proto_ids) { .method = method, .ids = ids, .n = n, .mem = mem };
	return 1;
}

void proto_ids_done(struct proto_ids *p)
{
	free(p->mem);
	*p = (struct proto_ids) {};
}
