/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto-scan.h"
#include "util.h"

struct strbuf {
	char *p;
	size_t alloc;
};

struct scanner {
	const uint8_t *p;
	size_t n, i;
	int r;			/* the first failure */
	const char *why;
	size_t at;		/* where it was found */
	struct strbuf name, value;	/* decoded member names, decoded key-ids */
	proto_scope_fn row;
	void *userdata;
	struct proto_scan *out;
};

/* A value reader: the value starts at s->i; it is consumed, or false is returned. */
typedef bool (*value_fn)(struct scanner *s, int depth, void *ctx);
/* A member reader: name (decoded, name_len bytes), its value at s->i. */
typedef bool (*member_fn)(struct scanner *s, const char *name, size_t name_len, int depth,
			  void *ctx);

static bool fail_at(struct scanner *s, int r, const char *why)
{
	if (s->r == 0) {
		s->r = r;
		s->why = why;
		s->at = s->i;
	}
	return false;
}

#define bad_json(s, why) fail_at(s, -EBADMSG, why)
#define bad_shape(s, why) fail_at(s, -EPROTO, why)

static void skip_ws(struct scanner *s)
{
	while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\n' || s->p[s->i] == '\t' ||
			       s->p[s->i] == '\r'))
		s->i++;
}

static bool expect(struct scanner *s, char c, const char *why)
{
	skip_ws(s);
	if (s->i >= s->n || s->p[s->i] != c)
		return bad_json(s, why);
	s->i++;
	return true;
}

/* One UTF-8 sequence at p[i] (a byte >= 0x80), RFC 3629: its length, or 0 when invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n, size_t i)
{
	uint8_t c = p[i];
	size_t k;
	uint32_t cp, min;

	if ((c & 0xe0) == 0xc0)
		k = 1, cp = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		k = 2, cp = c & 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		k = 3, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (n - i <= k)
		return 0;
	for (size_t j = 1; j <= k; j++) {
		if ((p[i + j] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i + j] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k + 1;
}

/*
 * An escape at p[i] (a backslash): its length, its code point in *ret (a surrogate pair
 * joined), or 0 when it is not one json-c reads to the same thing: \u0000 and lone surrogates
 * are refused as proto_parse_full() refuses them.
 */
static size_t escape_seq(const uint8_t *p, size_t n, size_t i, uint32_t *ret)
{
	static const char simple[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";
	const char *e;
	int u, lo;

	if (n - i < 2)
		return 0;
	if (p[i + 1] != 'u') {
		e = p[i + 1] ? strchr(simple, p[i + 1]) : NULL;
		if (!e)
			return 0;
		*ret = (uint8_t) value[e - simple];
		return 2;
	}
	if (n - i < 6 || (u = hex4_value((const char *) p + i + 2)) <= 0 || (u >= 0xdc00 && u <= 0xdfff))
		return 0;
	if (u < 0xd800 || u > 0xdbff) {
		*ret = (uint32_t) u;
		return 6;
	}
	if (n - i < 12 || p[i + 6] != '\\' || p[i + 7] != 'u')
		return 0;
	lo = hex4_value((const char *) p + i + 8);
	if (lo < 0xdc00 || lo > 0xdfff)
		return 0;
	*ret = 0x10000 + (((uint32_t) u - 0xd800) << 10) + ((uint32_t) lo - 0xdc00);
	return 12;
}

static size_t utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char) (0xc0 | cp >> 6);
		o[1] = (char) (0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char) (0xe0 | cp >> 12);
		o[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char) (0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char) (0xf0 | cp >> 18);
	o[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char) (0x80 | (cp & 0x3f));
	return 4;
}

/* The text between the quotes, already checked, with its escapes decoded into b. */
static bool decode(struct scanner *s, struct strbuf *b, size_t from, size_t to, size_t *ret_len)
{
	size_t o = 0;

	if (b->alloc < to - from) {	/* an escape never decodes longer than it is */
		char *p = realloc(b->p, to - from);
		if (!p)
			return fail_at(s, -ENOMEM, "out of memory");
		b->p = p;
		b->alloc = to - from;
	}
	for (size_t i = from; i < to;) {
		uint32_t cp;
		if (s->p[i] != '\\') {
			b->p[o++] = (char) s->p[i++];
			continue;
		}
		i += escape_seq(s->p, to, i, &cp);
		o += utf8_put(b->p + o, cp);
	}
	*ret_len = o;
	return true;
}

/* The bytes that end a string's plain run: its end, an escape, NUL, non-ASCII. */
static const bool string_stop[256] = {
	[0] = true, ['"'] = true, ['\\'] = true, [0x80 ... 0xff] = true,
};

/* Whether any of the eight bytes in w is zero (exact: no false positives on the whole word). */
static bool has_zero_byte(uint64_t w)
{
	return ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL) != 0;
}

/* From p[i], past the whole words of plain bytes: eight a step while none ends the run. */
static size_t skip_plain_words(const uint8_t *p, size_t i, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL;

	while (n - i >= 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if ((w & (ones * 0x80)) || has_zero_byte(w) || has_zero_byte(w ^ (ones * '"')) ||
		    has_zero_byte(w ^ (ones * '\\')))
			break;
		i += 8;
	}
	return i;
}

/*
 * The string at s->i (a '"'). With b, its decoded text in *ret and *ret_len: in place when it
 * has no escape, else in b. Raw control characters pass, as json-c lets them.
 */
static bool scan_string(struct scanner *s, struct strbuf *b, const char **ret, size_t *ret_len)
{
	const uint8_t *p = s->p;
	size_t n = s->n, i = s->i + 1, start = i;
	bool escaped = false;

	for (;;) {
		size_t k;
		uint32_t cp;

		i = skip_plain_words(p, i, n);
		while (i < n && !string_stop[p[i]])
			i++;
		if (i >= n) {
			s->i = n;
			return bad_json(s, "a string does not end");
		}
		if (p[i] == '"')
			break;
		if (p[i] == 0) {
			s->i = i;
			return bad_json(s, "a NUL byte");
		}
		k = p[i] == '\\' ? escape_seq(p, n, i, &cp) : utf8_seq(p, n, i);
		if (k == 0) {
			s->i = i;
			return bad_json(s, p[i] == '\\' ? "an invalid escape, \\u0000 or a lone "
							  "surrogate" : "invalid UTF-8");
		}
		escaped |= p[i] == '\\';
		i += k;
	}
	s->i = i + 1;
	if (!b)
		return true;
	if (!escaped) {
		*ret = (const char *) p + start;
		*ret_len = i - start;
		return true;
	}
	if (!decode(s, b, start, i, ret_len))
		return false;
	*ret = b->p;
	return true;
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/*
 * A number, RFC 8259's grammar. *ret_int: whether it is an integer (no fraction, no exponent)
 * that fits int64; then its value in *ret_v.
 */
static bool scan_number(struct scanner *s, bool *ret_int, int64_t *ret_v)
{
	const uint8_t *p = s->p;
	size_t n = s->n, i = s->i;
	bool neg = false, integer = true, fits = true;
	uint64_t v = 0;

	if (p[i] == '-')
		neg = true, i++;
	if (i >= n || !is_digit(p[i]))
		return bad_json(s, "a bad number");
	if (p[i] == '0')
		i++;
	else
		for (; i < n && is_digit(p[i]); i++) {
			unsigned d = p[i] - '0';
			if (v > (UINT64_MAX - d) / 10)
				fits = false;
			else
				v = v * 10 + d;
		}
	if (i < n && p[i] == '.') {
		integer = false;
		if (++i >= n || !is_digit(p[i]))
			return bad_json(s, "a bad number");
		while (i < n && is_digit(p[i]))
			i++;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		integer = false;
		if (++i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (i >= n || !is_digit(p[i]))
			return bad_json(s, "a bad number");
		while (i < n && is_digit(p[i]))
			i++;
	}
	s->i = i;
	if (i < n && (is_digit(p[i]) || p[i] == '.' || p[i] == 'e' || p[i] == 'E' ||
		      p[i] == '+' || p[i] == '-'))
		return bad_json(s, "a bad number");	/* "01", "1.2.3" */
	if (fits && (neg ? v > (uint64_t) INT64_MAX + 1 : v > (uint64_t) INT64_MAX))
		fits = false;
	*ret_int = integer && fits;
	if (*ret_int)
		*ret_v = neg ? (int64_t) (0 - v) : (int64_t) v;
	return true;
}

static bool scan_word(struct scanner *s)
{
	static const char *const words[] = { "true", "false", "null" };
	size_t left = s->n - s->i;

	for (size_t w = 0; w < 3; w++) {
		size_t k = strlen(words[w]);
		if (left >= k && memcmp(s->p + s->i, words[w], k) == 0 &&
		    (left == k || s->p[s->i + k] < 'a' || s->p[s->i + k] > 'z')) {
			s->i += k;
			return true;
		}
	}
	return bad_json(s, "an unexpected token");
}

static bool scan_value(struct scanner *s, int depth, void *ctx);

/* An object at s->i: member for each member (or scan_value when NULL). */
static bool scan_object(struct scanner *s, int depth, member_fn member, void *ctx)
{
	if (depth > PROTO_MAX_DEPTH)
		return bad_json(s, "nesting too deep");
	s->i++;
	skip_ws(s);
	if (s->i < s->n && s->p[s->i] == '}') {
		s->i++;
		return true;
	}
	for (;;) {
		const char *name;
		size_t name_len;

		skip_ws(s);
		if (s->i >= s->n || s->p[s->i] != '"')
			return bad_json(s, "a member name expected");
		if (!scan_string(s, &s->name, &name, &name_len) ||
		    !expect(s, ':', "':' expected after a member name"))
			return false;
		skip_ws(s);
		if (!(member ? member(s, name, name_len, depth + 1, ctx)
			     : scan_value(s, depth + 1, NULL)))
			return false;
		skip_ws(s);
		if (s->i < s->n && s->p[s->i] == ',') {
			s->i++;
			continue;
		}
		return expect(s, '}', "',' or '}' expected in an object");
	}
}

/* An array at s->i: element for each element. */
static bool scan_array(struct scanner *s, int depth, value_fn element, void *ctx)
{
	if (depth > PROTO_MAX_DEPTH)
		return bad_json(s, "nesting too deep");
	s->i++;
	skip_ws(s);
	if (s->i < s->n && s->p[s->i] == ']') {
		s->i++;
		return true;
	}
	for (;;) {
		skip_ws(s);
		if (!element(s, depth + 1, ctx))
			return false;
		skip_ws(s);
		if (s->i < s->n && s->p[s->i] == ',') {
			s->i++;
			continue;
		}
		return expect(s, ']', "',' or ']' expected in an array");
	}
}

/* Any value, checked and skipped. */
static bool scan_value(struct scanner *s, int depth, void *ctx)
{
	bool integer;
	int64_t v;

	if (depth > PROTO_MAX_DEPTH)
		return bad_json(s, "nesting too deep");
	if (s->i >= s->n)
		return bad_json(s, "a value expected");
	switch (s->p[s->i]) {
	case '{':
		return scan_object(s, depth, NULL, NULL);
	case '[':
		return scan_array(s, depth, scan_value, NULL);
	case '"':
		return scan_string(s, NULL, NULL, NULL);
	case '-':
	case '0' ... '9':
		return scan_number(s, &integer, &v);
	default:
		return scan_word(s);
	}
}

static bool name_is(const char *name, size_t len, const char *what)
{
	return len == strlen(what) && memcmp(name, what, len) == 0;
}

/* An integer member of a scope: a JSON number without fraction or exponent, in int64. */
static bool scan_int(struct scanner *s, int depth, int64_t *ret)
{
	bool integer;

	if (depth > PROTO_MAX_DEPTH)
		return bad_json(s, "nesting too deep");
	if (s->i >= s->n || !(s->p[s->i] == '-' || is_digit(s->p[s->i]))) {
		if (!scan_value(s, depth, NULL))
			return false;
		return bad_shape(s, "a scope's serial or holders is not an integer");
	}
	if (!scan_number(s, &integer, ret))
		return false;
	return integer || bad_shape(s, "a scope's serial or holders is not an integer in "
				       "int64's range");
}

struct scope_fields {
	struct proto_scope_row row;
	unsigned seen;		/* 1: key-id, 2: serial, 4: holders */
};

static bool scope_member(struct scanner *s, const char *name, size_t len, int depth, void *ctx)
{
	struct scope_fields *f = ctx;
	unsigned bit = name_is(name, len, "key-id") ? 1 : name_is(name, len, "serial") ? 2 :
		       name_is(name, len, "holders") ? 4 : 0;

	if (bit == 0)
		return scan_value(s, depth, NULL);
	if (f->seen & bit)
		return bad_shape(s, "a scope has a member twice");
	f->seen |= bit;
	if (bit == 2)
		return scan_int(s, depth, &f->row.serial);
	if (bit == 4)
		return scan_int(s, depth, &f->row.holders);
	if (depth > PROTO_MAX_DEPTH)
		return bad_json(s, "nesting too deep");
	if (s->i >= s->n || s->p[s->i] != '"') {
		if (!scan_value(s, depth, NULL))
			return false;
		return bad_shape(s, "a scope's key-id is not a string");
	}
	return scan_string(s, &s->value, &f->row.key_id, &f->row.key_id_len);
}

static bool scope_element(struct scanner *s, int depth, void *ctx)
{
	struct scope_fields f = {};
	size_t at = s->i;
	int r;

	if (s->i >= s->n || s->p[s->i] != '{') {
		if (!scan_value(s, depth, NULL))
			return false;
		return bad_shape(s, "an element of scopes is not an object");
	}
	if (!scan_object(s, depth, scope_member, &f))
		return false;
	if (f.seen != 7) {
		s->i = at;
		return bad_shape(s, "a scope lacks its key-id, serial or holders");
	}
	s->out->scopes++;
	r = s->row(&f.row, s->userdata);
	return r >= 0 || fail_at(s, r, "the reader of the scopes failed");
}

static bool param_member(struct scanner *s, const char *name, size_t len, int depth, void *ctx)
{
	bool ok;

	if (!name_is(name, len, "scopes"))
		return scan_value(s, depth, NULL);
	if (s->out->has_scopes)
		return bad_shape(s, "'scopes' twice in the parameters");
	if (depth > PROTO_MAX_DEPTH)
		return bad_json(s, "nesting too deep");
	s->out->has_scopes = true;
	s->out->scopes_start = s->i;
	if (s->i >= s->n || s->p[s->i] != '[') {
		if (!scan_value(s, depth, NULL))
			return false;
		return bad_shape(s, "'scopes' is not an array");
	}
	ok = scan_array(s, depth, scope_element, NULL);
	s->out->scopes_end = s->i;
	return ok;
}

static bool top_member(struct scanner *s, const char *name, size_t len, int depth, void *ctx)
{
	bool *seen_parameters = ctx;
	bool integer;
	int64_t v;

	if (name_is(name, len, "error")) {
		s->out->error = true;
		return scan_value(s, depth, NULL);
	}
	if (name_is(name, len, "payload-size")) {
		if (s->out->payload_size)
			return bad_shape(s, "'payload-size' twice");
		if (s->i >= s->n || !(s->p[s->i] == '-' || is_digit(s->p[s->i])))
			return bad_shape(s, "'payload-size' is not an integer");
		if (!scan_number(s, &integer, &v))
			return false;
		if (!integer || v < 1 || v > PROTO_MAX_PAYLOAD)
			return bad_shape(s, "'payload-size' out of its range 1..64");
		s->out->payload_size = (unsigned) v;
		return true;
	}
	if (!name_is(name, len, "parameters"))
		return scan_value(s, depth, NULL);
	if (*seen_parameters)
		return bad_shape(s, "'parameters' twice");
	*seen_parameters = true;
	if (s->i >= s->n || s->p[s->i] != '{') {
		if (!scan_value(s, depth, NULL))
			return false;
		return bad_shape(s, "'parameters' is not an object");
	}
	return scan_object(s, depth, param_member, NULL);
}

static bool scan_reply(struct scanner *s)
{
	bool seen_parameters = false;

	skip_ws(s);
	if (s->i >= s->n || s->p[s->i] != '{')
		return bad_json(s, "the reply is not a JSON object");
	if (!scan_object(s, 1, top_member, &seen_parameters))
		return false;
	skip_ws(s);
	if (s->i < s->n)
		return bad_json(s, "trailing data after the JSON object");
	if (!seen_parameters && !s->out->error)
		return bad_shape(s, "the reply has no parameters");
	return true;
}

int proto_scan_scopes(const char *text, size_t len, proto_scope_fn row, void *userdata,
		      struct proto_scan *ret, char *err, size_t errlen)
{
	struct proto_scan out = {};
	struct scanner s = {
		.p = (const uint8_t *) text, .n = len, .row = row, .userdata = userdata,
		.out = &out,
	};
	bool ok;

	if (!text || len == 0)
		return format_error(-EBADMSG, err, errlen, "empty reply");
	if (len > PROTO_MAX_REPLY)
		return format_error(-EBADMSG, err, errlen, "reply larger than %d bytes",
				    PROTO_MAX_REPLY);
	ok = scan_reply(&s);
	free(s.name.p);
	free(s.value.p);
	if (!ok) {
		if (s.r == -EBADMSG)
			return format_error(s.r, err, errlen, "malformed JSON at byte %zu: %s",
					    s.at, s.why);
		return format_error(s.r, err, errlen, "%s (byte %zu)", s.why, s.at);
	}
	*ret = out;
	return 0;
}
