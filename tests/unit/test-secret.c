/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Secret memory (lib/secret.c): buffers come zeroed, and a free leaves no byte of what they
 * held, whether secret_free() wipes the whole size or secret_free_used() the bytes in use. A
 * freed pool slot is not read (under ASan that would fault): the next allocation, which takes
 * the same slot, is, and must be all zeroes. A buffer that grows keeps its bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "secret.h"

static void assert_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			fail_msg("byte %zu of %zu is 0x%02x, not 0", i, n, p[i]);
}

static void test_alloc_zeroed(void **state)
{
	static const size_t sizes[] = { 1, 32, 64, 200, 400, 4096, 70000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = secret_alloc(sizes[i]);

		assert_non_null(p);
		assert_int_equal(secret_size(p), sizes[i]);
		assert_zero(p, sizes[i]);
		memset(p, 0xa5, sizes[i]);
		secret_free(p);
	}
	assert_null(secret_free(NULL));
	assert_null(secret_free_used(NULL, 10));
}

/* A slot that held a key, freed either way, comes back all zeroes. */
static void test_free_wipes(void **state)
{
	for (int used = 0; used < 2; used++)
		for (size_t n = 1; n <= 400; n += 13) {
			uint8_t *p = secret_alloc(n), *q;

			assert_non_null(p);
			memset(p, 0x5a, n);
			if (used)
				secret_free_used(p, n);
			else
				secret_free(p);
			q = secret_alloc(n);
			assert_non_null(q);
			assert_zero(q, n);
			secret_free(q);
		}
}

/* Only the first bytes were written: wiping those leaves the whole slot zero. */
static void test_free_used_prefix(void **state)
{
	uint8_t *p = secret_alloc(400), *q;

	assert_non_null(p);
	memset(p, 0x77, 37);
	secret_free_used(p, 37);
	q = secret_alloc(400);
	assert_non_null(q);
	assert_zero(q, 400);
	/* used past the size is the size. */
	memset(q, 0x11, 400);
	secret_free_used(q, SIZE_MAX);
	q = secret_alloc(400);
	assert_non_null(q);
	assert_zero(q, 400);
	secret_free(q);
}

static void test_erase(void **state)
{
	uint8_t *p = secret_alloc(256);

	assert_non_null(p);
	memset(p, 0x33, 256);
	secret_erase(p + 16, 100);
	assert_zero(p + 16, 100);
	assert_int_equal(p[15], 0x33);
	assert_int_equal(p[116], 0x33);
	secret_erase(NULL, 10);
	secret_erase(p, 0);
	assert_int_equal(p[0], 0x33);
	secret_free(p);
}

/* Growing keeps the bytes and adds zeroes, from a pool slot and from a mapping alike. */
static void test_grow(void **state)
{
	static const size_t steps[] = { 32, 100, 400, 4096, 4097, 70000, 300000 };
	uint8_t *p = NULL;
	size_t had = 0;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		uint8_t *q = secret_realloc(p, steps[i]);

		assert_non_null(q);
		assert_int_equal(secret_size(q), steps[i]);
		for (size_t j = 0; j < had; j++)
			if (q[j] != (uint8_t) (j * 7 + 1))
				fail_msg("byte %zu changed growing to %zu", j, steps[i]);
		assert_zero(q + had, steps[i] - had);
		for (size_t j = had; j < steps[i]; j++)
			q[j] = (uint8_t) (j * 7 + 1);
		p = q;
		had = steps[i];
	}
	/* Shrinking wipes the tail, which comes back as zeroes when it grows again. */
	p = secret_realloc(p, 5000);
	assert_non_null(p);
	assert_int_equal(secret_size(p), 5000);
	p = secret_realloc(p, 9000);
	assert_non_null(p);
	assert_int_equal(p[4999], (uint8_t) (4999 * 7 + 1));
	assert_zero(p + 5000, 4000);
	assert_null(secret_realloc(p, 0));
	secret_free_used(p, 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_zeroed),
		cmocka_unit_test(test_free_wipes),
		cmocka_unit_test(test_free_used_prefix),
		cmocka_unit_test(test_erase),
		cmocka_unit_test(test_grow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
