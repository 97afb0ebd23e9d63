/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The text replies about scopes (scope-reply.c) are the bytes json-c wrote before, field for
 * field: serials negative, zero and large, counters at their limits, with and without a source,
 * and many objects in one buffer across its growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyid.h"
#include "scope.h"
#include "scope-reply.h"

static struct scope *scope_make(const char *id, key_serial_t serial, unsigned manual,
				unsigned attached, uint32_t fetches, bool is_key)
{
	size_t pl = strlen(KEY_DESC_PREFIX), n = strlen(id);
	struct scope *s = calloc(1, sizeof(*s) + pl + n + 1);

	assert_non_null(s);
	memcpy(s->desc, KEY_DESC_PREFIX, pl);
	memcpy(s->desc + pl, id, n + 1);
	s->id = s->desc + pl;
	s->serial = serial;
	s->manual = manual;
	s->attached = attached;
	s->fetches = fetches;
	s->is_key = is_key;
	return s;
}

static void check_one(struct scope *s, struct source *src, const char *want)
{
	struct textbuf b = {};
	char *text;

	scope_reply_put(&b, s, src);
	text = textbuf_take(&b);
	assert_non_null(text);
	assert_string_equal(text, want);
	free(text);
	free(s);
}

static void test_fields(void **state)
{
	/* A volume key's scope never asks the source, so any non-NULL source will do. */
	struct source *src = (struct source *) (uintptr_t) 1;

	check_one(scope_make("k1", 0, 0, 0, 0, true), NULL,
		  "{\"key-id\":\"k1\",\"description\":\"keyscope:k1\",\"serial\":0,"
		  "\"holders\":0,\"manual\":0,\"fetches\":0}");
	check_one(scope_make("6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01", 123456789, 1, 2, 3, true),
		  NULL,
		  "{\"key-id\":\"6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01\",\"description\":"
		  "\"keyscope:6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01\",\"serial\":123456789,"
		  "\"holders\":3,\"manual\":1,\"fetches\":3}");
	check_one(scope_make("neg", INT32_MIN, 0, 0, UINT32_MAX, true), NULL,
		  "{\"key-id\":\"neg\",\"description\":\"keyscope:neg\",\"serial\":-2147483648,"
		  "\"holders\":0,\"manual\":0,\"fetches\":4294967295}");
	check_one(scope_make("max", INT32_MAX, UINT32_MAX, 0, 10, true), NULL,
		  "{\"key-id\":\"max\",\"description\":\"keyscope:max\",\"serial\":2147483647,"
		  "\"holders\":4294967295,\"manual\":4294967295,\"fetches\":10}");
	check_one(scope_make("vk:0d6c3a4e-2b1f-4c5d-8e9f-a0b1c2d3e4f5", 99, 0, 1, 0, false), src,
		  "{\"key-id\":\"vk:0d6c3a4e-2b1f-4c5d-8e9f-a0b1c2d3e4f5\",\"description\":"
		  "\"keyscope:vk:0d6c3a4e-2b1f-4c5d-8e9f-a0b1c2d3e4f5\",\"serial\":99,"
		  "\"holders\":1,\"manual\":0,\"fetches\":0,\"source\":\"volume-key\"}");
}

/* Objects appended one after another through several reallocations stay whole. */
static void test_many(void **state)
{
	struct textbuf b = {};
	char want[256], *text, *at;
	int n;

	for (unsigned i = 0; i < 3000; i++) {
		char id[32];
		struct scope *s;

		snprintf(id, sizeof(id), "key-%u", i);
		s = scope_make(id, (key_serial_t) (i * 1000003u), i % 3, i % 5, i, true);
		if (i > 0)
			textbuf_put(&b, ",", 1);
		scope_reply_put(&b, s, NULL);
		free(s);
	}
	scope_reply_put_gone(&b, "gone");
	text = textbuf_take(&b);
	assert_non_null(text);
	at = text;
	for (unsigned i = 0; i < 3000; i++) {
		n = snprintf(want, sizeof(want), "%s{\"key-id\":\"key-%u\",\"description\":"
			     "\"keyscope:key-%u\",\"serial\":%d,\"holders\":%u,\"manual\":%u,"
			     "\"fetches\":%u}", i > 0 ? "," : "", i, i, (int) (i * 1000003u),
			     i % 3 + i % 5, i % 3, i);
		assert_true(n > 0 && (size_t) n < sizeof(want));
		assert_memory_equal(at, want, (size_t) n);
		at += n;
	}
	assert_string_equal(at, "{\"key-id\":\"gone\",\"serial\":0,\"holders\":0}");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
