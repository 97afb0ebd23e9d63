/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto_ids_read(), the tree-less reader of KeyInstall/KeyRelease batches: it takes the forms
 * clients send, and for every text, taken or not, it agrees with the full path
 * (proto-ids-oracle.h): it never takes a text the full path refuses, nor reads other ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto-ids-oracle.h"

static const char *oracle_ids[PROTO_IDS_MAX];

/* Reads text both ways; asserts they agree; returns proto_ids_read()'s result. */
static int read_both(const char *text, struct proto_ids *ret)
{
	struct proto_ids got = {};
	json_object *o;
	const char *method = NULL;
	size_t n = proto_ids_oracle(text, strlen(text), &o, &method, oracle_ids);
	int r = proto_ids_read(text, strlen(text), PROTO_IDS_MAX, &got);

	assert_true(r >= 0);
	if (r > 0) {
		assert_int_equal(got.n, n);
		assert_string_equal(got.method, method);
		for (size_t i = 0; i < n; i++)
			assert_string_equal(got.ids[i], oracle_ids[i]);
	}
	json_object_put(o);
	if (ret)
		*ret = got;
	else
		proto_ids_done(&got);
	return r;
}

static void test_takes(void **state)
{
	struct proto_ids p;

	assert_int_equal(read_both("{\"method\":\"keyscope.KeyInstall\",\"parameters\":"
				   "{\"key-ids\":[\"3f1c2a9e-7b6d-4e21-9a0f-5c8d7e6b4a21\",\"b.c\","
				   "\"3f1c2a9e-7b6d-4e21-9a0f-5c8d7e6b4a21\"]}}", &p), 1);
	assert_string_equal(p.method, "keyscope.KeyInstall");
	assert_int_equal(p.n, 3);
	assert_string_equal(p.ids[0], "3f1c2a9e-7b6d-4e21-9a0f-5c8d7e6b4a21");
	assert_string_equal(p.ids[1], "b.c");
	assert_string_equal(p.ids[2], p.ids[0]);	/* duplicates are the handler's affair */
	proto_ids_done(&p);
	assert_null(p.mem);

	/* White space anywhere between tokens, the members in the other order. */
	assert_int_equal(read_both(" {\n\t\"parameters\" : { \"key-ids\" : [ \"a_b\" ] } ,\r\n"
				   "  \"method\" : \"keyscope.KeyRelease\" }  \n", &p), 1);
	assert_string_equal(p.method, "keyscope.KeyRelease");
	assert_int_equal(p.n, 1);
	assert_string_equal(p.ids[0], "a_b");
	proto_ids_done(&p);
}

/* Texts it leaves to the full path: refused there, or right but outside the narrow form. */
static void test_leaves(void **state)
{
	static const char *const texts[] = {
		"",
		"{}",
		"[]",
		"{\"method\":\"keyscope.KeyInstall\"}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":\"a\"}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[1]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\",null]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\",]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"]},}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"]}}x",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"]}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"]}}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"",
		"{'method':'keyscope.KeyInstall','parameters':{'key-ids':['a']}}",
		/* ids the grammar refuses */
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a..b\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\".a\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a/b\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a b\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"\xc3\xa9\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"\xff\"]}}",
		/* escapes: refused (\u0000) or right (\u0062 is b): the full path decides */
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\\u0000\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\\u0062\"]}}",
		"{\"method\":\"keyscope.Key\\u0049nstall\",\"parameters\":{\"key-ids\":[\"a\"]}}",
		/* a member twice, an extra member, the other form beside it */
		"{\"method\":\"keyscope.KeyInstall\",\"method\":\"keyscope.KeyRelease\","
		"\"parameters\":{\"key-ids\":[\"a\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"]},"
		"\"parameters\":{\"key-ids\":[\"b\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"],"
		"\"key-ids\":[\"b\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"],"
		"\"key-id\":\"a\"}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-id\":\"a\"}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"]},"
		"\"payload-size\":64}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[\"a\"]},\"x\":1}",
		/* other methods, nesting */
		"{\"method\":\"keyscope.KeyDelete\",\"parameters\":{\"key-ids\":[\"a\"]}}",
		"{\"method\":\"keyscope.KeyInstallX\",\"parameters\":{\"key-ids\":[\"a\"]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":[[\"a\"]]}}",
		"{\"method\":\"keyscope.KeyInstall\",\"parameters\":[{\"key-ids\":[\"a\"]}]}",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		if (read_both(texts[i], NULL) != 0)
			fail_msg("taken: %s", texts[i]);
	}
}

/* The sizes: 1..PROTO_IDS_MAX ids, ids of up to KEYID_MAX bytes. */
static void test_sizes(void **state)
{
	size_t size = 64 + (PROTO_IDS_MAX + 1) * (KEYID_MAX + 4);
	char *t = malloc(size), id[KEYID_MAX + 2];
	struct proto_ids p;
	size_t k;

	assert_non_null(t);
	memset(id, 'a', sizeof(id));
	id[KEYID_MAX] = 0;
	for (size_t n = PROTO_IDS_MAX; n <= PROTO_IDS_MAX + 1; n++) {
		k = (size_t) snprintf(t, size, "{\"method\":\"keyscope.KeyInstall\","
				      "\"parameters\":{\"key-ids\":[");
		for (size_t i = 0; i < n; i++)
			k += (size_t) snprintf(t + k, size - k, "%s\"x%zu\"", i ? "," : "", i);
		snprintf(t + k, size - k, "]}}");
		assert_int_equal(read_both(t, &p), n <= PROTO_IDS_MAX ? 1 : 0);
		if (n <= PROTO_IDS_MAX) {
			assert_int_equal(p.n, n);
			assert_string_equal(p.ids[n - 1], "x1023");
		}
		proto_ids_done(&p);
	}
	snprintf(t, size, "{\"method\":\"keyscope.KeyRelease\",\"parameters\":{\"key-ids\":[\"%s\"]}}",
		 id);
	assert_int_equal(read_both(t, &p), 1);
	assert_int_equal(strlen(p.ids[0]), KEYID_MAX);
	proto_ids_done(&p);
	id[KEYID_MAX] = 'a';
	id[KEYID_MAX + 1] = 0;
	snprintf(t, size, "{\"method\":\"keyscope.KeyRelease\",\"parameters\":{\"key-ids\":[\"%s\"]}}",
		 id);
	assert_int_equal(read_both(t, NULL), 0);
	/* A smaller bound than the protocol's: the caller's. */
	snprintf(t, size, "{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-ids\":"
		 "[\"a\",\"b\"]}}");
	assert_int_equal(proto_ids_read(t, strlen(t), 1, &p), 0);
	assert_int_equal(proto_ids_read(t, strlen(t), 2, &p), 1);
	proto_ids_done(&p);
	free(t);
}

/* Only the len bytes given are read: a longer buffer's rest is not the request's. */
static void test_length(void **state)
{
	static const char t[] = "{\"method\":\"keyscope.KeyInstall\",\"parameters\":"
				"{\"key-ids\":[\"a\"]}}";
	struct proto_ids p;

	for (size_t n = 0; n < sizeof(t) - 1; n++)
		assert_int_equal(proto_ids_read(t, n, PROTO_IDS_MAX, &p), 0);
	assert_int_equal(proto_ids_read(t, sizeof(t) - 1, PROTO_IDS_MAX, &p), 1);
	proto_ids_done(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_takes),
		cmocka_unit_test(test_leaves),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
