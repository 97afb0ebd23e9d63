/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The keyscope LUKS2 token parser (lib/token.c): what keyscope writes parses back, the hostile
 * tokens found by an attack from outside (issue 10 item 6) are refused, other types are not ours.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "token.h"

#define ID "6a75fa55-a04a-4862-8b75-9118a6e2718d"
#define T(fields) "{\"type\":\"keyscope\",\"keyslots\":[]" fields "}"

static int parse(const char *json, struct token *t, const char **why)
{
	return token_parse(json, strlen(json), t, why);
}

static void test_valid(void **state)
{
	struct token t = {};
	const char *why = NULL;

	assert_int_equal(parse(T(",\"key-id\":\"" ID "\",\"key-source\":\"local\",\"key-size\":64"),
			       &t, &why), 1);
	assert_string_equal(t.key_id, ID);
	assert_string_equal(t.source, "local");
	assert_int_equal(t.key_size, 64);

	memset(&t, 'x', sizeof(t));
	assert_int_equal(parse(" " T(",\"key-size\":32,\"key-id\":\"a\",\"future\":[1,{}]") "\n",
			       &t, &why), 1);
	assert_string_equal(t.key_id, "a");
	assert_string_equal(t.source, "");	/* absent */
	assert_int_equal(t.key_size, 32);
}

static void test_not_ours(void **state)
{
	static const char *const others[] = {
		"{\"type\":\"systemd-tpm2\",\"keyslots\":[\"0\"],\"tpm2-blob\":\"AAAA\"}",
		"{\"type\":\"keyscope2\",\"keyslots\":[]}", "{\"type\":\"Keyscope\",\"keyslots\":[]}",
		"{\"type\":\"keyscope\\u0000x\",\"keyslots\":[],\"key-id\":\"a\",\"key-size\":64}",
		"{\"type\":7,\"keyslots\":[]}",
	};
	struct token t = { .key_size = 99 };

	for (size_t i = 0; i < ELEMENTSOF(others); i++) {
		if (parse(others[i], &t, NULL) != 0)
			fail_msg("not 0 for %s", others[i]);
		assert_int_equal(t.key_size, 99);	/* untouched */
	}
}

static void test_hostile(void **state)
{
	static char junk[5000];
	static const char *const bad[] = {
		/* the cases of issue 10 item 6 */
		T(",\"key-id\":\"" ID "\\u0000junk\",\"key-source\":\"local\",\"key-size\":64"),
		T(",\"key-id\":\"" ID "\",\"key-source\":\"local\",\"key-size\":\"64\""),
		T(",\"key-id\":\"" ID "\",\"key-source\":\"lo\\ncal\",\"key-size\":64"),
		T(",\"key-id\":\"" ID "\",\"key-source\":7,\"key-size\":64"),
		T(",\"key-id\":12345,\"key-source\":\"local\",\"key-size\":64"),
		T(",\"key-id\":\"" ID "\",\"key-source\":\"local\""),
		/* refused before, and still */
		T(",\"key-id\":\"a/b\",\"key-size\":64"), T(",\"key-id\":\"\",\"key-size\":64"),
		T(",\"key-id\":null,\"key-size\":64"), T(",\"key-id\":[\"a\"],\"key-size\":64"),
		T(",\"key-id\":{},\"key-size\":64"), T(",\"key-id\":\"a\",\"key-size\":48"),
		T(",\"key-id\":\"a\",\"key-size\":18446744073709551680"),
		/* more of the same */
		T(",\"key-size\":64"), T(",\"key-id\":\"a\",\"key-size\":64.0"),
		T(",\"key-id\":\"a\",\"key-size\":6.4e1"), T(",\"key-id\":\"a\",\"key-size\":true"),
		T(",\"key-id\":\"a\",\"key-size\":-64"), T(",\"key-id\":\"a\",\"key-size\":null"),
		T(",\"key-id\":\"a\",\"key-size\":64,\"key-source\":\"\""),
		T(",\"key-id\":\"a\",\"key-size\":64,\"key-source\":\"Local\""),
		T(",\"key-id\":\"a\",\"key-size\":64,\"key-source\":\"1local\""),
		T(",\"key-id\":\"a\",\"key-size\":64,\"key-source\":\"local\\u0000\""),
		T(",\"key-id\":\"a\",\"key-size\":64,\"key-source\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""),
		T(",\"key-id\":\"a\",\"key-size\":64,\"key-source\":null"),
		T(",\"key-id\":\"a\\u00e9\",\"key-size\":64"), T(",\"key-id\":\"a..b\",\"key-size\":64"),
		"{\"type\":\"keyscope\",\"key-id\":\"a\",\"key-size\":64}",
		"{\"type\":\"keyscope\",\"keyslots\":{},\"key-id\":\"a\",\"key-size\":64}",
		"{\"keyslots\":[],\"key-id\":\"a\",\"key-size\":64}",
		"", "[]", "\"keyscope\"", "{", "{}}", T(",\"key-id\":\"a\",\"key-size\":64") " x",
	};
	struct token t = { .key_size = 99 };
	const char *why;
	int n;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		why = NULL;
		if (parse(bad[i], &t, &why) != -EBADMSG)
			fail_msg("not refused: %s", bad[i]);
		assert_non_null(why);
		assert_int_equal(t.key_size, 99);	/* untouched */
	}
	/* 4 KiB of junk in the key-source and in the key-id */
	n = snprintf(junk, sizeof(junk), T(",\"key-id\":\"a\",\"key-size\":64,\"key-source\":\""));
	memset(junk + n, 'a', 4096);
	strcpy(junk + n + 4096, "\"}");
	assert_int_equal(parse(junk, &t, &why), -EBADMSG);
	n = snprintf(junk, sizeof(junk), T(",\"key-size\":64,\"key-id\":\""));
	memset(junk + n, 'a', 4096);
	strcpy(junk + n + 4096, "\"}");
	assert_int_equal(parse(junk, &t, &why), -EBADMSG);
	/* a NUL byte in the text itself, and a text over the bound */
	assert_int_equal(token_parse(T(",\"key-id\":\"a\",\"key-size\":64") "\0", 62, &t, NULL),
			 -EBADMSG);
	assert_int_equal(token_parse(junk, TOKEN_JSON_MAX + 1, &t, NULL), -EBADMSG);
	assert_int_equal(t.key_size, 99);
}

static void test_format_roundtrip(void **state)
{
	struct token t = { .key_id = ID, .source = "local", .key_size = 64 }, back = {};
	char buf[512];

	assert_int_equal(token_format(&t, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "{\"type\":\"keyscope\",\"keyslots\":[],\"key-id\":\"" ID "\","
				 "\"key-source\":\"local\",\"key-size\":64}");
	assert_int_equal(parse(buf, &back, NULL), 1);
	assert_string_equal(back.key_id, t.key_id);
	assert_string_equal(back.source, t.source);
	assert_int_equal(back.key_size, t.key_size);
	assert_int_equal(token_format(&t, buf, 20), -ENOBUFS);

	/* format refuses what the parser would refuse */
	t.key_size = 48;
	assert_int_equal(token_format(&t, buf, sizeof(buf)), -EINVAL);
	t.key_size = 32;
	strcpy(t.source, "lo cal");
	assert_int_equal(token_format(&t, buf, sizeof(buf)), -EINVAL);
	strcpy(t.source, "barbican");
	strcpy(t.key_id, "a/b");
	assert_int_equal(token_format(&t, buf, sizeof(buf)), -EINVAL);
}

static void test_source_grammar(void **state)
{
	assert_true(token_source_is_valid("local", 5));
	assert_true(token_source_is_valid("barbican", 8));
	assert_true(token_source_is_valid("kmip-2", 6));
	assert_true(token_source_is_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 31));
	assert_false(token_source_is_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 32));
	assert_false(token_source_is_valid("", 0));
	assert_false(token_source_is_valid("-a", 2));
	assert_false(token_source_is_valid("a_b", 3));
	assert_false(token_source_is_valid("local\0x", 7));
	assert_false(token_source_is_valid(NULL, 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_source_grammar),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
