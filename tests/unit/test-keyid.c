/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Key-ids: the grammar (accept/reject tables), the kernel key-description both ways, and the
 * store's generated ids (UUID v4 format, uniqueness).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyid.h"
#include "macro.h"

static const char *valid_ids[] = {
	"a", "Z", "0", "9", "abc", "a.b", "a-b", "a_b", "a.", "a-", "a_", "A1.2-3_4", "a.b.c",
	"0-0", "6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01", "6F1C2F1E-4C1B-4B7E-9A55-0C4A0D2B9E01",
	"vol_key.v2", "renamed-key",
};

static const char *invalid_ids[] = {
	"", ".", "..", ".x", "-x", "_x", "a..b", "a..", "a/b", "/", "/a", "a/", "a b", " a",
	"a ", "a\nb", "a\n", "a\tb", "a\rb", "a:b", "keyscope:x", "a\x7f", "\xc3\xa9", "a\xff",
	"a*", "a?", "a%s", "a\\b", "a,b", "a;b", "a@b", "a+b", "a~b", "a=b", "a'b", "a\"b",
	"a|b", "a$b", "a#b", "a!b", "(a)", "[a]", "{a}", "<a>", "a/../b", "a/./b",
};

static void test_valid(void **state)
{
	char max[KEYID_MAX + 1];

	for (size_t i = 0; i < ELEMENTSOF(valid_ids); i++) {
		if (!keyid_is_valid(valid_ids[i]))
			fail_msg("refused valid key-id \"%s\"", valid_ids[i]);
	}
	memset(max, 'k', KEYID_MAX);
	max[KEYID_MAX] = 0;
	assert_true(keyid_is_valid(max));
}

static void test_invalid(void **state)
{
	char *huge = malloc(5001);
	char over[KEYID_MAX + 2];

	for (size_t i = 0; i < ELEMENTSOF(invalid_ids); i++) {
		if (keyid_is_valid(invalid_ids[i]))
			fail_msg("accepted invalid key-id \"%s\"", invalid_ids[i]);
	}
	assert_false(keyid_is_valid(NULL));
	memset(over, 'k', KEYID_MAX + 1);
	over[KEYID_MAX + 1] = 0;
	assert_false(keyid_is_valid(over));
	assert_non_null(huge);
	memset(huge, 'a', 5000);
	huge[5000] = 0;
	assert_false(keyid_is_valid(huge));
	free(huge);
}

/* The rule written out plainly, to hold the table-driven check to it byte by byte. */
static bool ref_char_ok(int c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '-' || c == '_' || c == '.');
}

static void test_every_byte(void **state)
{
	(void) state;
	for (int c = 1; c < 256; c++) {
		char first[2] = { (char) c, 0 }, later[3] = { 'a', (char) c, 0 },
		     after_dot[4] = { 'a', '.', (char) c, 0 };
		if (keyid_is_valid(first) != ref_char_ok(c, true) ||
		    keyid_is_valid(later) != ref_char_ok(c, false) ||
		    keyid_is_valid(after_dot) != (ref_char_ok(c, false) && c != '.'))
			fail_msg("byte 0x%02x judged wrongly", c);
	}
	assert_false(keyid_is_valid(""));
	assert_false(keyid_is_valid("a..b"));
	assert_true(keyid_is_valid("a.b.c"));
}

static void test_to_description(void **state)
{
	char buf[KEY_DESC_MAX + 1], max[KEYID_MAX + 1], want[KEY_DESC_MAX + 1];
	const char *id = "6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01";

	assert_int_equal(keyid_to_description(id, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "keyscope:6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01");
	assert_int_equal(keyid_to_description("a", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "keyscope:a");

	/* The longest id fits; KEY_DESC_MAX leaves room for a "vk:" scope prefix. */
	memset(max, 'k', KEYID_MAX);
	max[KEYID_MAX] = 0;
	snprintf(want, sizeof(want), "keyscope:%s", max);
	assert_int_equal(keyid_to_description(max, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
	assert_int_equal(strlen(buf) + strlen(SCOPE_VK_PREFIX), KEY_DESC_MAX);

	/* Exact buffer size: strlen("keyscope:a") + 1 = 11. */
	assert_int_equal(keyid_to_description("a", buf, 11), 0);
	assert_int_equal(keyid_to_description("a", buf, 10), -ENOBUFS);
	assert_int_equal(keyid_to_description("a", buf, 1), -ENOBUFS);

	for (size_t i = 0; i < ELEMENTSOF(invalid_ids); i++)
		assert_int_equal(keyid_to_description(invalid_ids[i], buf, sizeof(buf)), -EINVAL);
	assert_int_equal(keyid_to_description(NULL, buf, sizeof(buf)), -EINVAL);
}

static void test_from_description(void **state)
{
	static const char *refused[] = {
		"", "keyscope:", "keyscope", "keyscopea", "Keyscope:a", "KEYSCOPE:a", " keyscope:a",
		"user:a", "logon:keyscope:a", "keyscope::a", "keyscope:keyscope:a", "keyscope:..",
		"keyscope:.a", "keyscope:a/b", "keyscope:a b", "keyscope:a\n", "cryptsetup:a",
	};
	const char *d = "keyscope:6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01";

	assert_ptr_equal(keyid_from_description(d), d + strlen("keyscope:"));
	assert_string_equal(keyid_from_description("keyscope:a.b"), "a.b");
	for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
		if (keyid_from_description(refused[i]))
			fail_msg("accepted description \"%s\"", refused[i]);
	}
	assert_null(keyid_from_description(NULL));
}

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* 8-4-4-4-12 lower-case hex, version 4, RFC 4122 variant. */
static void assert_uuid_v4(const char *s)
{
	assert_int_equal(strlen(s), 36);
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(s[i], '-');
		else
			assert_true(is_lower_hex(s[i]));
	}
	assert_int_equal(s[14], '4');
	assert_non_null(strchr("89ab", s[19]));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *) a, (const char *) b);
}

static void test_generate(void **state)
{
	static char ids[1000][37];
	char desc[KEY_DESC_MAX + 1];

	for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
		memset(ids[i], 0x5a, sizeof(ids[i]));
		assert_int_equal(keyid_generate(ids[i]), 0);
		assert_uuid_v4(ids[i]);
		assert_true(keyid_is_valid(ids[i]));
		assert_int_equal(keyid_to_description(ids[i], desc, sizeof(desc)), 0);
		assert_string_equal(keyid_from_description(desc), ids[i]);
	}
	qsort(ids, ELEMENTSOF(ids), sizeof(ids[0]), cmp_str);
	for (size_t i = 1; i < ELEMENTSOF(ids); i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
}

static void test_scope_ids(void **state)
{
	char buf[KEY_DESC_MAX + 1];

	assert_true(scope_id_is_valid("abc"));
	assert_true(scope_id_is_valid("vk:6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01"));
	assert_false(scope_id_is_valid("vk:"));
	assert_false(scope_id_is_valid("vk:a/b"));
	assert_false(scope_id_is_valid("xx:abc"));
	assert_false(keyid_is_valid("vk:abc"));	/* a volume key scope is never a key-id */
	assert_int_equal(scope_id_to_description("vk:abc", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "keyscope:vk:abc");
	assert_string_equal(scope_id_from_description("keyscope:vk:abc"), "vk:abc");
	assert_null(keyid_from_description("keyscope:vk:abc"));
	assert_int_equal(keyid_to_description("vk:abc", buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_to_description),
		cmocka_unit_test(test_scope_ids),
		cmocka_unit_test(test_from_description),
		cmocka_unit_test(test_generate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
