/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hash table of scopes and sealed files (daemon/keys/idmap.c): every item put is found,
 * every item removed is gone and the others are still found (removal closes its hole without
 * cutting another item's probe sequence short), sorted output, growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"

#define N 5000

struct item {
	char name[16];
	bool in;
};

static const char *item_name(const void *p)
{
	return ((const struct item *) p)->name;
}

static void count_one(void *p, void *userdata)
{
	(*(size_t *) userdata)++;
	assert_true(((struct item *) p)->in);
}

static void assert_contents(struct idmap *m, struct item *items, size_t n)
{
	size_t in = 0, seen = 0;

	for (size_t i = 0; i < n; i++) {
		void *got = idmap_get(m, items[i].name);
		if (items[i].in) {
			assert_ptr_equal(got, &items[i]);
			in++;
		} else
			assert_null(got);
	}
	assert_int_equal(m->n, in);
	idmap_foreach(m, count_one, &seen);
	assert_int_equal(seen, in);
}

static void test_put_get_remove(void **state)
{
	struct item *items = calloc(N, sizeof(*items));
	struct idmap m;

	assert_non_null(items);
	idmap_init(&m, item_name);
	assert_null(idmap_get(&m, "absent"));
	assert_null(idmap_remove(&m, &(struct item) { .name = "absent" }));
	for (size_t i = 0; i < N; i++) {
		snprintf(items[i].name, sizeof(items[i].name), "id-%zu", i);
		assert_int_equal(idmap_put(&m, &items[i]), 0);
		items[i].in = true;
	}
	assert_contents(&m, items, N);
	/* Every third, then every other one: holes in the middle of long probe runs. */
	for (size_t step = 3; step >= 2; step--)
		for (size_t i = 0; i < N; i += step) {
			void *got = idmap_remove(&m, &items[i]);
			assert_ptr_equal(got, items[i].in ? &items[i] : NULL);
			items[i].in = false;
			if (i % 512 == 0)
				assert_contents(&m, items, N);
		}
	assert_contents(&m, items, N);
	for (size_t i = 0; i < N; i += 2) {
		assert_int_equal(idmap_put(&m, &items[i]), 0);
		items[i].in = true;
	}
	assert_contents(&m, items, N);
	idmap_done(&m, NULL);
	assert_null(idmap_get(&m, items[1].name));
	free(items);
}

static void test_sorted(void **state)
{
	static const char *names[] = { "b", "a", "d", "c", "aa", "B" };
	struct item items[6];
	struct idmap m;
	void **v;
	size_t n;

	idmap_init(&m, item_name);
	assert_int_equal(idmap_sorted(&m, &v, &n), 0);
	assert_null(v);
	assert_int_equal(n, 0);
	for (size_t i = 0; i < 6; i++) {
		snprintf(items[i].name, sizeof(items[i].name), "%s", names[i]);
		assert_int_equal(idmap_put(&m, &items[i]), 0);
	}
	assert_int_equal(idmap_sorted(&m, &v, &n), 0);
	assert_int_equal(n, 6);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(item_name(v[i - 1]), item_name(v[i])) < 0);
	assert_string_equal(item_name(v[0]), "B");
	free(v);
	idmap_done(&m, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_remove),
		cmocka_unit_test(test_sorted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
