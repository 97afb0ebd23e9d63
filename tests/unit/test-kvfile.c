/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lib/kvfile.c, the one "key = value" reader: pairs with their line numbers, stripped keys and
 * values, comments, blank lines, CRLF, sections only when asked, an early stop by the
 * callback, and refusals (a line without '=', a NUL byte, a text over its bound) naming the
 * line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kvfile.h"

struct seen {
	char text[512];
	int stop_at;	/* line whose pair returns -ENOTUNIQ; 0: none */
};

static int record(void *userdata, unsigned line, const char *key, char *value)
{
	struct seen *s = userdata;
	size_t n = strlen(s->text);

	snprintf(s->text + n, sizeof(s->text) - n, "%u[%s][%s]", line, key, value);
	return (int) line == s->stop_at ? -ENOTUNIQ : 0;
}

static int parse(const char *in, unsigned flags, struct seen *s, unsigned *line)
{
	char buf[512];
	size_t n = strlen(in);

	memcpy(buf, in, n + 1);
	return kvfile_parse(buf, n, 256, flags, record, s, line);
}

static void test_pairs(void **state)
{
	struct seen s = {};
	unsigned line = 99;

	assert_int_equal(parse("# comment\n a = 1 \n\n; other\r\nkey\t=\tsome value\r\nempty =\n"
			       "x = y = z", 0, &s, &line), 0);
	assert_string_equal(s.text, "2[a][1]5[key][some value]6[empty][]7[x][y = z]");
	assert_int_equal(line, 0);
}

static void test_sections(void **state)
{
	struct seen s = {};
	unsigned line;

	assert_int_equal(parse("[keyscoped]\nlinger = 5\n", KVFILE_SECTIONS, &s, &line), 0);
	assert_string_equal(s.text, "2[linger][5]");
	memset(&s, 0, sizeof(s));
	assert_int_equal(parse("[keyscoped]\nlinger = 5\n", 0, &s, &line), -EBADMSG);
	assert_int_equal(line, 1);
}

static void test_refusals(void **state)
{
	char buf[16] = "a = 1\0b = 2";
	struct seen s = {};
	unsigned line;

	assert_int_equal(parse("a = 1\n\njust words\nb = 2\n", 0, &s, &line), -EBADMSG);
	assert_int_equal(line, 3);
	assert_string_equal(s.text, "1[a][1]");	/* nothing after the bad line */
	memset(&s, 0, sizeof(s));
	assert_int_equal(kvfile_parse(buf, 11, 256, 0, record, &s, &line), -EBADMSG);
	assert_int_equal(line, 0);
	assert_string_equal(s.text, "");
	assert_int_equal(kvfile_parse(buf, 11, 10, 0, record, &s, &line), -EFBIG);
	assert_int_equal(line, 0);
	s.stop_at = 2;
	assert_int_equal(parse("a = 1\nb = 2\nc = 3\n", 0, &s, &line), -ENOTUNIQ);
	assert_int_equal(line, 2);
	assert_string_equal(s.text, "1[a][1]2[b][2]");
}

static void test_strip(void **state)
{
	char a[] = " \t x y \t\r", b[] = "", c[] = " \t ";

	assert_string_equal(kvfile_strip(a), "x y");
	assert_string_equal(kvfile_strip(b), "");
	assert_string_equal(kvfile_strip(c), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_strip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
