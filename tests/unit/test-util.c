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

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_u64_edges),
		cmocka_unit_test(test_format_u64_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
