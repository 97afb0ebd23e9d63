/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lib/util.c's decimal writer: every length from 1 to 20 digits, both sides of each power of
 * ten, 0 and UINT64_MAX, and a spread of values, against snprintf's "%" PRIu64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static void check_u64(uint64_t v)
{
	char want[32], got[32];
	size_t n;

	snprintf(want, sizeof(want), "%" PRIu64, v);
	memset(got, 'x', sizeof(got));
	n = format_u64(got, v);
	if (n != strlen(want) || memcmp(got, want, n) != 0)
		fail_msg("format_u64(%s) wrote \"%.*s\" (%zu bytes)", want, (int) n, got, n);
	/* Exactly n bytes written: the next is untouched. */
	assert_int_equal(got[n], 'x');
}

static void test_format_u64_edges(void **state)
{
	uint64_t p = 1;

	check_u64(0);
	check_u64(UINT64_MAX);
	check_u64(UINT64_MAX - 1);
	for (int i = 0; i < 20; i++) {
		check_u64(p);
		check_u64(p - 1);
		check_u64(p + 1);
		check_u64(p * 9);
		if (i < 19) {
			check_u64(p * 10 - 1);
			check_u64(p * 5);
			p *= 10;
		}
	}
	check_u64(10000000000000000000u);
	check_u64(9999999999999999999u);
	check_u64(INT64_MAX);
	check_u64((uint64_t) INT64_MAX + 1);
	check_u64(UINT32_MAX);
}

static void test_format_u64_spread(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15u;

	for (uint64_t v = 0; v < 100000; v++)
		check_u64(v);
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check_u64(x);
		check_u64(x >> (i % 64));
	}
}

/* read_full_file() of files around its buffer sizes and its limit: every byte, a NUL after. */
static void test_read_full_file(void **state)
{
	static const size_t sizes[] = {
		0, 1, 4095, 4096, 4097, 8191, 12288, 100000, 131072, 700001,
	};
	char path[] = "/tmp/test-util-read.XXXXXX";
	int fd = mkstemp(path);
	char *data = malloc(700001);

	assert_true(fd >= 0);
	assert_non_null(data);
	for (size_t i = 0; i < 700001; i++)
		data[i] = (char) ('a' + i % 23);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], got = 7;
		char *text = NULL;

		assert_int_equal(ftruncate(fd, 0), 0);
		assert_int_equal(pwrite(fd, data, n, 0), (ssize_t) n);
		assert_int_equal(read_full_file(path, n, &text, &got), 0);	/* max == size */
		assert_int_equal(got, n);
		assert_memory_equal(text, data, n);
		assert_int_equal(text[n], 0);
		free(text);
		if (n > 0) {
			text = NULL;
			assert_int_equal(read_full_file(path, n - 1, &text, &got), -EFBIG);
			assert_null(text);
		}
	}
	close(fd);
	unlink(path);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_u64_edges),
		cmocka_unit_test(test_format_u64_spread),
		cmocka_unit_test(test_read_full_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
