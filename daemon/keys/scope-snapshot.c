/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scopes.json, the snapshot of the holder counts: its text and its two readers.
 *
 * The file is JSON, written one scope to a line:
 *
 *   {"version":1,"generation":G,"scopes":[
 *   {"key-id":"ID","manual":M,"serial":S},
 *   {"key-id":"ID","manual":M,"serial":S}
 *   ]}
 *
 * so that a start reads it line by line, without building a json-c tree of 10,000 objects
 * (that tree was most of the start-up at 10,000 scopes), and any JSON reader, an older
 * keyscoped's included, still reads it. The line reader takes exactly this layout and nothing
 * else: anything it does not recognise (a file an older keyscoped wrote on one line, one edited
 * by hand, a torn or garbled one) goes to the json-c reader, which keeps the rules the file
 * always had (malformed entries skipped with a warning, a file that is not JSON refused). So
 * both readers give the same scopes for any file the line reader takes (fuzz-snapshot checks it).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proto.h"
#include "scope-internal.h"
#include "util.h"

#define HEAD_A "{\"version\":1,\"generation\":"
#define HEAD_B ",\"scopes\":[\n"
#define ENTRY_A "{\"key-id\":\""
#define ENTRY_B "\",\"manual\":"
#define ENTRY_C ",\"serial\":"
#define TAIL "]}\n"

#define lit(p, s) (memcmp((p), (s), sizeof(s) - 1) == 0)

static size_t put_lit(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return n;
}

#define PUT(p, s) put_lit((p), (s), sizeof(s) - 1)

/* One entry line; ids are [A-Za-z0-9._:-] (scope_id_is_valid), nothing to escape. */
static size_t entry_line(char *p, const struct scope *s, bool last)
{
	size_t k = PUT(p, ENTRY_A);

	k += put_lit(p + k, s->id, strlen(s->id));
	k += PUT(p + k, ENTRY_B);
	k += format_u64(p + k, s->manual);
	k += PUT(p + k, ENTRY_C);
	k += format_u64(p + k, s->serial > 0 ? (uint64_t) s->serial : 0);
	k += last ? PUT(p + k, "}\n") : PUT(p + k, "},\n");
	return k;
}

int scope_snapshot_text(struct scopes *t, uint64_t generation, char **ret, size_t *ret_len)
{
	size_t alloc = 128 + t->map.n * (SCOPE_ID_MAX + 64), k, left = 0;
	char *p = malloc(alloc);

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < t->map.cap; i++)
		if (t->map.slots[i] && ((struct scope *) t->map.slots[i])->manual > 0)
			left++;
	k = PUT(p, HEAD_A);
	k += format_u64(p + k, generation);
	k += PUT(p + k, HEAD_B);
	for (size_t i = 0; i < t->map.cap && left > 0; i++) {
		const struct scope *s = t->map.slots[i];
		if (!s || s->manual == 0)
			continue;
		k += entry_line(p + k, s, --left == 0);
	}
	k += PUT(p + k, TAIL);
	*ret = p;
	*ret_len = k;
	return 0;
}

/*
 * A JSON number as the writer writes it, at [*p, end): 1..19 digits (no overflow), no leading
 * zero, at most max. Advances *p past it. Returns 0 or -EBADMSG.
 */
static int read_number(const char **p, const char *end, uint64_t max, uint64_t *ret)
{
	const char *s = *p, *e = end - s > 19 ? s + 19 : end;
	uint64_t v = 0;

	for (; s < e && (unsigned) (*s - '0') < 10; s++)
		v = v * 10 + (uint64_t) (*s - '0');
	if (s == *p || (s < end && (unsigned) (*s - '0') < 10) || v > max ||
	    (**p == '0' && s - *p > 1))
		return -EBADMSG;
	*p = s;
	*ret = v;
	return 0;
}

/*
 * One entry line at p, within [p, end). Returns the byte after its LF (*ret_more: a comma came
 * before it), or NULL when it is not one (-EBADMSG in *ret_r) or memory ran out (-ENOMEM).
 */
static char *entry_parse(struct scopes *t, char *p, const char *end, bool *ret_more, int *ret_r)
{
	char *id = p + sizeof(ENTRY_A) - 1, *quote;
	const char *q;
	uint64_t manual, serial;

	*ret_r = -EBADMSG;
	if ((size_t) (end - p) < sizeof(ENTRY_A) - 1 || !lit(p, ENTRY_A))
		return NULL;
	quote = memchr(id, '"', end - id > (ptrdiff_t) SCOPE_ID_MAX ? SCOPE_ID_MAX + 1 :
		       (size_t) (end - id));
	if (!quote || (size_t) (end - quote) < sizeof(ENTRY_B) - 1 || !lit(quote, ENTRY_B))
		return NULL;
	q = quote + sizeof(ENTRY_B) - 1;
	if (read_number(&q, end, UINT32_MAX, &manual) < 0 || manual == 0 ||
	    (size_t) (end - q) < sizeof(ENTRY_C) - 1 || !lit(q, ENTRY_C))
		return NULL;
	q += sizeof(ENTRY_C) - 1;
	if (read_number(&q, end, INT32_MAX, &serial) < 0 || end - q < 2 || *q++ != '}')
		return NULL;
	*ret_more = *q == ',';
	q += *ret_more;
	if (q >= end || *q++ != '\n')
		return NULL;
	/* The id as a string for a moment: the text goes to json-c as it was when we decline. */
	*quote = '\0';
	/* The table takes only valid ids (scope_add_hashed() checks; -EINVAL): not checked twice. */
	*ret_r = scope_record_set(t, id, manual, serial);
	if (*ret_r == -EINVAL)
		*ret_r = -EBADMSG;
	*quote = '"';
	return *ret_r < 0 ? NULL : (char *) q;
}

/* Empties the table again (it was empty before the line reader began). */
static void scopes_clear(struct scopes *t)
{
	for (size_t i = 0; i < t->map.cap; i++)
		if (t->map.slots[i])
			scope_free(t, t->map.slots[i]);
	idmap_done(&t->map, NULL);
}

int scope_snapshot_read_lines(struct scopes *t, char *text, size_t size)
{
	enum { ENTRY_OR_TAIL, ENTRY, TAIL_ONLY } want = ENTRY_OR_TAIL;
	const char *end = text + size, *q;
	char *p, *next;
	uint64_t gen;
	bool more;
	int r;

	/* A NUL ends the text for json-c: leave such a file to it. */
	if (size < sizeof(HEAD_A) - 1 || !lit(text, HEAD_A) || memchr(text, '\0', size))
		return 0;
	q = text + sizeof(HEAD_A) - 1;
	if (read_number(&q, end, INT64_MAX, &gen) < 0 ||
	    (size_t) (end - q) < sizeof(HEAD_B) - 1 || !lit(q, HEAD_B))
		return 0;
	p = text + (q - text) + sizeof(HEAD_B) - 1;
	/* A hint, so that the table is not rehashed as it fills: a line is 40-170 bytes. */
	(void) idmap_reserve(&t->map, (size_t) (end - p) / 64);
	for (;;) {
		if (want != ENTRY && (size_t) (end - p) == sizeof(TAIL) - 1 && lit(p, TAIL))
			break;
		r = -EBADMSG;
		next = want == TAIL_ONLY ? NULL : entry_parse(t, p, end, &more, &r);
		if (!next) {
			scopes_clear(t);
			return r == -ENOMEM ? -ENOMEM : 0;
		}
		want = more ? ENTRY : TAIL_ONLY;
		p = next;
	}
	t->generation = gen;
	return 1;
}

/* One entry of the "scopes" array. Returns 0, -EBADMSG (skip it) or -ENOMEM. */
static int json_entry_load(struct scopes *t, json_object *o)
{
	json_object *id, *m, *k;
	int64_t manual, serial = 0;

	if (!json_object_object_get_ex(o, "key-id", &id) ||
	    !json_object_object_get_ex(o, "manual", &m) ||
	    !scope_id_is_valid(json_object_get_string(id)))
		return -EBADMSG;
	if (json_object_object_get_ex(o, "serial", &k))
		serial = json_object_get_int64(k);
	manual = json_object_get_int64(m);
	if (manual <= 0 || manual > UINT32_MAX)
		return 0;
	if (serial < 0 || serial > INT32_MAX)
		serial = 0;
	return scope_record_set(t, json_object_get_string(id), (uint64_t) manual,
				(uint64_t) serial);
}

int scope_snapshot_read_json(struct scopes *t, const char *text, const char *path)
{
	_cleanup_json_ json_object *root = json_tokener_parse(text);
	json_object *a, *g;
	int r;

	if (!root || !json_object_object_get_ex(root, "scopes", &a) ||
	    !json_object_is_type(a, json_type_array))
		return -EBADMSG;
	if (idmap_reserve(&t->map, json_object_array_length(a)) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		r = json_entry_load(t, json_object_array_get_idx(a, i));
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			log_warning("%s: entry %zu is malformed, ignoring.", path, i);
	}
	if (json_object_object_get_ex(root, "generation", &g))
		t->generation = (uint64_t) json_object_get_int64(g);
	return 0;
}
