/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tree-less reader of the scope replies (lib/proto-scan.c): good replies give the rows
 * json-c would, bad, truncated and oversized ones are refused with a reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto-scan.h"

struct rows {
	size_t n;
	char ids[4][128];
	int64_t serial[4], holders[4];
	int fail_at;		/* >0: the row callback fails at this row */
};

static int collect(const struct proto_scope_row *row, void *userdata)
{
	struct rows *r = userdata;

	if (r->fail_at && (int) r->n + 1 == r->fail_at)
		return -ENOSPC;
	if (r->n < 4) {
		assert_true(row->key_id_len < sizeof(r->ids[0]));
		memcpy(r->ids[r->n], row->key_id, row->key_id_len);
		r->ids[r->n][row->key_id_len] = 0;
		r->serial[r->n] = row->serial;
		r->holders[r->n] = row->holders;
	}
	r->n++;
	return 0;
}

static int scan(const char *text, struct rows *rows, struct proto_scan *ret, char *err)
{
	memset(rows, 0, sizeof(*rows));
	return proto_scan_scopes(text, strlen(text), collect, rows, ret, err, 256);
}

static const char good[] =
	"{\"parameters\":{\"keyring\":963337616,\"scopes\":["
	"{\"key-id\":\"48b5a730-99af-44c9-ae2d-a99da8f6d970\","
	"\"description\":\"keyscope:48b5a730-99af-44c9-ae2d-a99da8f6d970\",\"serial\":608868430,"
	"\"holders\":2,\"manual\":2,\"fetches\":1,\"source\":\"local\"},"
	"{\"key-id\":\"vk:5e0c\",\"description\":\"keyscope:vk:5e0c\",\"serial\":0,\"holders\":1,"
	"\"manual\":0,\"fetches\":0,\"source\":\"volume-key\"}]}}";

static void test_good(void **state)
{
	struct proto_scan s;
	struct rows r;
	char err[256];

	assert_int_equal(scan(good, &r, &s, err), 0);
	assert_false(s.error);
	assert_true(s.has_scopes);
	assert_int_equal(s.scopes, 2);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.ids[0], "48b5a730-99af-44c9-ae2d-a99da8f6d970");
	assert_int_equal(r.serial[0], 608868430);
	assert_int_equal(r.holders[0], 2);
	assert_string_equal(r.ids[1], "vk:5e0c");
	assert_int_equal(r.serial[1], 0);
	assert_int_equal(r.holders[1], 1);
	assert_int_equal(s.payload_size, 0);
	/* the span of the scopes' value: what Status replaces with [] */
	assert_int_equal(good[s.scopes_start], '[');
	assert_int_equal(good[s.scopes_end - 1], ']');
	assert_int_equal(s.scopes_end, strlen(good) - 2);
}

static void test_escapes_and_unknown_fields(void **state)
{
	static const char text[] =
		" {\"new-top\":[1,{\"a\":null}], \"parameters\" : {\"scopes\" : [ {\"k\\u0065y-id\":"
		"\"\\u00e9\\ud83d\\udd11\\\"\\\\\\/\\t\xc3\xa9\",\"serial\":-0,\"holders\":"
		"9223372036854775807,\"later\":{\"b\":[true,false,1.5e-3,-2E+7]}} ],"
		"\"extra\":\"x\"}, \"payload-size\":32}\r\n\t ";
	struct proto_scan s;
	struct rows r;
	char err[256];

	assert_int_equal(scan(text, &r, &s, err), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ids[0], "\xc3\xa9\xf0\x9f\x94\x91\"\\/\t\xc3\xa9");
	assert_int_equal(r.serial[0], 0);
	assert_int_equal(r.holders[0], INT64_MAX);
	assert_int_equal(s.payload_size, 32);
}

static void test_empty_none_error(void **state)
{
	struct proto_scan s;
	struct rows r;
	char err[256];

	assert_int_equal(scan("{\"parameters\":{\"scopes\":[]}}", &r, &s, err), 0);
	assert_true(s.has_scopes);
	assert_int_equal(s.scopes, 0);
	assert_int_equal(scan("{\"parameters\":{\"keyring\":1}}", &r, &s, err), 0);
	assert_false(s.has_scopes);
	assert_int_equal(scan("{\"error\":\"keyscope.PermissionDenied\",\"parameters\":"
			      "{\"message\":\"no\"}}", &r, &s, err), 0);
	assert_true(s.error);
	assert_int_equal(scan("{\"error\":\"keyscope.X\"}", &r, &s, err), 0);
	assert_true(s.error);
	/* min and max int64 */
	assert_int_equal(scan("{\"parameters\":{\"scopes\":[{\"key-id\":\"\",\"serial\":"
			      "-9223372036854775808,\"holders\":0}]}}", &r, &s, err), 0);
	assert_int_equal(r.serial[0], INT64_MIN);
}

/* What proto_parse_full() refuses, the reader refuses as malformed JSON. */
static void test_bad_json(void **state)
{
	static const char *const bad[] = {
		"", " ", "x", "[]", "1", "\"s\"", "null", "{", "{}}", "{} {}", "{'a':1}",
		"{\"a\":1,}", "{,}", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{\"a\":[1,]}", "{\"a\":[,1]}",
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":NaN}",
		"{\"a\":Infinity}", "{\"a\":01}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":1e}",
		"{\"a\":tru}", "{\"a\":truex}", "{\"a\":\"\\x\"}", "{\"a\":\"\\U0041\"}",
		"{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}",
		"{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"x}", "{\"a\":1}x",
		"{\"a\":1}\v", "\f{}", "{\"parameters\":{\"scopes\":[[[[[[[1]]]]]]]}}",
		"{\"a\":[[[[[[[[]]]]]]]]}", "{\"a\":[[[[[[[1]]]]]]]}",
		"{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"serial\":1,\"holders\":1,"
		"\"x\":[[[[1]]]]}]}}",
	};
	static const struct proto_parse_opts opts = {
		.max = PROTO_MAX_REPLY, .depth = PROTO_MAX_DEPTH, .what = "reply",
	};
	struct proto_scan s;
	struct rows r;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *o = NULL;

		assert_int_equal(proto_parse_full(bad[i], strlen(bad[i]), &opts, &o, NULL, 0),
				 -EBADMSG);
		err[0] = 0;
		if (scan(bad[i], &r, &s, err) != -EBADMSG)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(strstr(err, i == 0 ? "empty" : "malformed JSON at byte"));
	}
	assert_int_equal(proto_scan_scopes("{}\0{}", 5, collect, &r, &s, err, sizeof(err)),
			 -EBADMSG);
	assert_int_equal(proto_scan_scopes("{\"a\":\"\0\"}", 8, collect, &r, &s, err,
					   sizeof(err)), -EBADMSG);
}

/* Nesting at the bounds json-c is given: the reader agrees with it on the syntax of each. */
static void test_depth_agrees(void **state)
{
	static const char *const texts[] = {
		"{\"a\":[[[[[[1]]]]]]}", "{\"a\":[[[[[[[1]]]]]]]}", "{\"a\":[[[[[[[]]]]]]]}",
		"{\"a\":[[[[[[[[]]]]]]]]}", "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":1}}}}}}}",
		"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{}}}}}}}}",
		"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":1}}}}}}}}",
		"{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"serial\":1,\"holders\":1,"
		"\"x\":[[[1]]]}]}}",
	};
	static const struct proto_parse_opts opts = {
		.max = PROTO_MAX_REPLY, .depth = PROTO_MAX_DEPTH, .what = "reply",
	};
	struct proto_scan s;
	struct rows r;
	char err[256];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		json_object *o = NULL;
		int jc = proto_parse_full(texts[i], strlen(texts[i]), &opts, &o, NULL, 0);
		int sc = scan(texts[i], &r, &s, err);

		json_object_put(o);
		/* "no parameters" (-EPROTO) is a verdict on the shape: the syntax passed */
		if ((jc == 0) != (sc != -EBADMSG))
			fail_msg("json-c %d, reader %d (%s): %s", jc, sc, err, texts[i]);
	}
}

/* Strict JSON of another shape: refused with -EPROTO, naming what is wrong. */
static void test_bad_shape(void **state)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "{}", "no parameters" },
		{ "{\"parameters\":[]}", "'parameters' is not an object" },
		{ "{\"parameters\":{},\"parameters\":{}}", "'parameters' twice" },
		{ "{\"parameters\":{\"scopes\":{}}}", "'scopes' is not an array" },
		{ "{\"parameters\":{\"scopes\":[],\"scopes\":[]}}", "'scopes' twice" },
		{ "{\"parameters\":{\"scopes\":[1]}}", "not an object" },
		{ "{\"parameters\":{\"scopes\":[{\"serial\":1,\"holders\":1}]}}", "lacks" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"holders\":1}]}}", "lacks" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"serial\":1}]}}", "lacks" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":1,\"serial\":1,\"holders\":1}]}}",
		  "key-id is not a string" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"serial\":\"1\",\"holders\":1}]}}",
		  "not an integer" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"serial\":1.5,\"holders\":1}]}}",
		  "not an integer" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"serial\":1e3,\"holders\":1}]}}",
		  "not an integer" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"serial\":null,\"holders\":1}]}}",
		  "not an integer" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"serial\":9223372036854775808,"
		  "\"holders\":1}]}}", "range" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"serial\":-9223372036854775809,"
		  "\"holders\":1}]}}", "range" },
		{ "{\"parameters\":{\"scopes\":[{\"key-id\":\"a\",\"key-id\":\"b\",\"serial\":1,"
		  "\"holders\":1}]}}", "twice" },
		{ "{\"parameters\":{},\"payload-size\":0}", "payload-size" },
		{ "{\"parameters\":{},\"payload-size\":65}", "payload-size" },
		{ "{\"parameters\":{},\"payload-size\":\"5\"}", "payload-size" },
		{ "{\"parameters\":{},\"payload-size\":1.0}", "payload-size" },
	};
	struct proto_scan s;
	struct rows r;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (scan(bad[i].text, &r, &s, err) != -EPROTO || !strstr(err, bad[i].why))
			fail_msg("%s: %s", bad[i].text, err);
	}
}

/* Every prefix of a good reply (a reply cut short) is refused. */
static void test_truncated(void **state)
{
	struct proto_scan s;
	struct rows r;
	char err[256];

	for (size_t n = 0; n < strlen(good); n++) {
		int k = proto_scan_scopes(good, n, collect, &r, &s, err, sizeof(err));
		if (k != -EBADMSG)
			fail_msg("a reply cut at %zu of %zu bytes gave %d", n, strlen(good), k);
	}
}

static void test_callback_failure(void **state)
{
	struct proto_scan s;
	struct rows r = { .fail_at = 2 };
	char err[256];

	assert_int_equal(proto_scan_scopes(good, strlen(good), collect, &r, &s, err, sizeof(err)),
			 -ENOSPC);
	assert_int_equal(r.n, 1);
}

static int long_id(const struct proto_scope_row *row, void *userdata)
{
	size_t *len = userdata;

	for (size_t i = 0; i < row->key_id_len; i += 2)
		assert_memory_equal(row->key_id + i, "\xc3\xa9", 2);
	assert_int_equal(row->holders, 2);
	*len = row->key_id_len;
	return 0;
}

/* A reply up to PROTO_MAX_REPLY: 10,000 scopes and more, and a 1 MiB key-id of escapes. */
static void test_huge(void **state)
{
	static const char row[] =
		"{\"key-id\":\"%08zx-99af-44c9-ae2d-a99da8f6d970\",\"description\":"
		"\"keyscope:%08zx-99af-44c9-ae2d-a99da8f6d970\",\"serial\":%zu,\"holders\":1,"
		"\"manual\":1,\"fetches\":1,\"source\":\"local\"}";
	size_t max = PROTO_MAX_REPLY, n = 0, count = 0;
	char *text = malloc(max + 4096), err[256];
	struct proto_scan s;
	struct rows r = {};

	assert_non_null(text);
	n += (size_t) sprintf(text, "{\"parameters\":{\"keyring\":1,\"scopes\":[");
	while (n + 400 < max) {
		n += (size_t) sprintf(text + n, row, count, count, count + 1);
		text[n++] = ',';
		count++;
	}
	n += (size_t) sprintf(text + n - 1, "]}}") - 1;
	assert_true(n <= max && count > 70000);
	assert_int_equal(proto_scan_scopes(text, n, collect, &r, &s, err, sizeof(err)), 0);
	assert_int_equal(s.scopes, count);
	assert_int_equal(r.n, count);
	assert_string_equal(r.ids[3], "00000003-99af-44c9-ae2d-a99da8f6d970");
	assert_int_equal(r.serial[3], 4);

	/* one byte over the bound: refused before reading */
	memset(text + n - 3, ' ', max + 1 - n);
	memcpy(text + max + 1 - 3, "]}}", 3);
	memset(&r, 0, sizeof(r));
	assert_int_equal(proto_scan_scopes(text, max + 1, collect, &r, &s, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "larger than"));
	assert_int_equal(r.n, 0);

	/* a long key-id: 1 MiB of "\u00e9" decodes to 2 bytes each */
	n = (size_t) sprintf(text, "{\"parameters\":{\"scopes\":[{\"key-id\":\"");
	for (size_t i = 0; i < 1024 * 1024 / 6; i++)
		n += (size_t) sprintf(text + n, "\\u00e9");
	n += (size_t) sprintf(text + n, "\",\"serial\":1,\"holders\":2}]}}");
	count = 0;
	assert_int_equal(proto_scan_scopes(text, n, long_id, &count, &s, err, sizeof(err)), 0);
	assert_int_equal(count, 1024 * 1024 / 6 * 2);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_escapes_and_unknown_fields),
		cmocka_unit_test(test_empty_none_error),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_depth_agrees),
		cmocka_unit_test(test_bad_shape),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_callback_failure),
		cmocka_unit_test(test_huge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
