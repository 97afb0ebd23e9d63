/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The holder counts on disk (daemon/keys/scope-state.c, scope-snapshot.c) against the kernel
 * keyring of this process: a clean stop leaves a snapshot one scope a line and an empty
 * journal, and a start after it writes nothing; the file an older keyscoped wrote (one line,
 * entries without a serial) loads with its journal and is rewritten in the line layout at stop,
 * still JSON; a snapshot torn anywhere is refused and left as it was; a garbled line goes to
 * json-c (a hand-edited entry is read, a malformed one skipped); a torn journal line is not
 * continued by the next append; a stop killed between the snapshot and the journal loses
 * nothing; a second reconciliation (after the start-up fetches) keeps the keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyring.h"
#include "log.h"
#include "scope-internal.h"
#include "util.h"

#define A "48b5a730-99af-44c9-ae2d-a99da8f6d970"
#define B "7d0e1c52-4b8e-4a55-9a3e-0c2f7c1d9a11"

static char dir[] = "/tmp/keyscope-test-scope-state.XXXXXX";
static char snap[64], journal[64];
static key_serial_t parent;

static void put(const char *path, const char *text)
{
	assert_int_equal(write_file_atomic_flags(path, text, strlen(text), 0600, 0), 0);
}

static char *get(const char *path)
{
	char *text = NULL;

	assert_int_equal(read_full_file(path, 1 << 20, &text, NULL), 0);
	return text;
}

static bool startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static struct scopes *load(int expect)
{
	struct scopes *t = NULL;

	assert_int_equal(scopes_new(NULL, parent, dir, 0, NULL, NULL, &t), 0);
	assert_int_equal(scopes_load_records(t), expect);
	return t;
}

static unsigned manual(struct scopes *t, const char *id)
{
	struct scope *s = scope_find(t, id);

	return s ? s->manual : 0;
}

static int setup(void **state)
{
	assert_non_null(mkdtemp(dir));
	snprintf(snap, sizeof(snap), "%s/scopes.json", dir);
	snprintf(journal, sizeof(journal), "%s/scopes.journal", dir);
	log_set_max_level(LOG_CRIT);
	parent = add_key("keyring", "keyscope-unit", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
	assert_true(parent > 0);
	return 0;
}

static int clean(void **state)
{
	unlink(snap);
	unlink(journal);
	return 0;
}

/* Scope ids of two kinds: i < 100000 a UUID (a block's slot), else one of 100 characters. */
static void test_id(char *buf, size_t size, unsigned i)
{
	if (i < 100000)
		snprintf(buf, size, "%08x-0000-4000-8000-%012x", i, i * 7);
	else
		snprintf(buf, size, "long-%095u", i);
}

/*
 * Scopes come from blocks of slots (scope.c): thousands added, removed in an order that empties
 * some blocks and leaves others with holes, and added again into the holes keep their ids
 * and counts, and no block stays once its scopes are gone.
 */
static void test_scope_blocks(void **state)
{
	struct scopes *t = load(0);
	const unsigned n = 2000;
	char id[128];
#if defined(__SANITIZE_ADDRESS__)
	const bool blocks = false;	/* under AddressSanitizer each scope is malloc()ed */
#else
	const bool blocks = true;
#endif

	for (unsigned i = 0; i < n; i++) {
		test_id(id, sizeof(id), i);
		assert_int_equal(scope_record_set(t, id, i + 1, 0), 0);
	}
	for (unsigned i = 0; i < 50; i++) {
		test_id(id, sizeof(id), 100000 + i);
		assert_int_equal(scope_record_set(t, id, 7, 0), 0);
	}
	assert_int_equal(scope_blocks(t) > 0, blocks);
	if (blocks)
		assert_true(scope_blocks(t) >= 2000 / 340 && scope_blocks(t) <= 2000 / 340 + 1);
	/* Every third gone, then the first 1,000 (whole blocks empty). */
	for (unsigned i = 0; i < n; i += 3) {
		test_id(id, sizeof(id), i);
		assert_int_equal(scope_record_set(t, id, 0, 0), 0);
	}
	for (unsigned i = 0; i < 1000; i++) {
		test_id(id, sizeof(id), i);
		assert_int_equal(scope_record_set(t, id, 0, 0), 0);
	}
	for (unsigned i = 0; i < n; i++) {
		test_id(id, sizeof(id), i);
		assert_int_equal(manual(t, id), i < 1000 || i % 3 == 0 ? 0 : i + 1);
	}
	if (blocks)
		assert_true(scope_blocks(t) <= 4);
	/* Into the holes again, with other counts. */
	for (unsigned i = 0; i < n; i++) {
		test_id(id, sizeof(id), i);
		if (i < 1000 || i % 3 == 0)
			assert_int_equal(scope_record_set(t, id, i + 5, 0), 0);
	}
	for (unsigned i = 0; i < n; i++) {
		struct scope *s;
		test_id(id, sizeof(id), i);
		s = scope_find(t, id);
		assert_non_null(s);
		assert_string_equal(s->id, id);
		assert_string_equal(s->desc + strlen(KEY_DESC_PREFIX), id);
		assert_int_equal(s->manual, i < 1000 || i % 3 == 0 ? i + 5 : i + 1);
	}
	for (unsigned i = 0; i < 50; i++) {
		test_id(id, sizeof(id), 100000 + i);
		assert_int_equal(manual(t, id), 7);
	}
	for (unsigned i = 0; i < n; i++) {
		test_id(id, sizeof(id), i);
		assert_int_equal(scope_record_set(t, id, 0, 0), 0);
	}
	assert_int_equal(scope_blocks(t), 0);	/* the long ids were never in one */
	scopes_free(t);
}

/* Two keys installed, one held twice: what a clean stop leaves, and that a start writes none. */
static void test_stop_then_start(void **state)
{
	unsigned char bytes[32] = { 1, 2, 3 };
	struct secret_buf key = { bytes, sizeof(bytes) };
	struct scopes *t = load(0);
	struct scope *sa, *sb;
	struct stat st0, st1, j0, j1;
	key_serial_t ka, kb;
	char *text;

	assert_int_equal(scope_acquire(t, A, SCOPE_MANUAL, &key, &sa), 0);
	assert_int_equal(scope_acquire(t, A, SCOPE_MANUAL, &key, &sa), 0);
	assert_int_equal(scope_acquire(t, B, SCOPE_MANUAL, &key, &sb), 0);
	ka = sa->serial;
	kb = sb->serial;
	assert_int_equal(scopes_save(t), 0);
	assert_int_equal(scopes_compact(t), 0);
	scopes_free(t);

	text = get(journal);
	assert_string_equal(text, "1\n");	/* nothing to replay */
	free(text);
	text = get(snap);
	assert_true(startswith(text, "{\"version\":1,\"generation\":1,\"scopes\":[\n"));
	assert_non_null(strstr(text, "\n{\"key-id\":\"" A "\",\"manual\":2,\"serial\":"));
	free(text);

	assert_int_equal(stat(snap, &st0), 0);
	assert_int_equal(stat(journal, &j0), 0);
	t = load(0);
	assert_int_equal(manual(t, A), 2);
	assert_int_equal(manual(t, B), 1);
	assert_int_equal(scopes_reconcile(t), 0);
	assert_int_equal(scope_find(t, A)->serial, ka);	/* adopted as recorded */
	assert_int_equal(scope_find(t, B)->serial, kb);
	/* The start-up fetches done, the daemon reconciles again: the keys are the scopes'. */
	assert_int_equal(scopes_reconcile(t), 0);
	assert_int_equal(scope_find(t, A)->serial, ka);
	assert_true(keyctl(KEYCTL_DESCRIBE, ka, NULL, 0) > 0);
	assert_true(keyctl(KEYCTL_DESCRIBE, kb, NULL, 0) > 0);
	assert_int_equal(stat(snap, &st1), 0);
	assert_int_equal(stat(journal, &j1), 0);
	/* Nothing moved: neither file was written. */
	assert_int_equal(st0.st_ino, st1.st_ino);
	assert_int_equal(j0.st_ino, j1.st_ino);
	assert_int_equal(j0.st_size, j1.st_size);

	/* A change after such a start goes to the journal it continued. */
	assert_int_equal(scope_release(t, B, SCOPE_MANUAL), 0);
	assert_int_equal(scopes_save(t), 0);
	scopes_free(t);
	t = load(0);
	assert_int_equal(manual(t, A), 2);
	assert_null(scope_find(t, B));
	assert_int_equal(scopes_reconcile(t), 0);
	assert_int_equal(scope_release(t, A, SCOPE_MANUAL), 1);
	assert_int_equal(scope_release(t, A, SCOPE_MANUAL), 0);
	assert_int_equal(scopes_save(t), 0);
	scopes_free(t);
}

/* The previous format: one line, an entry without a serial, and its journal. */
static void test_upgrade(void **state)
{
	json_object *root, *a;
	struct scopes *t;
	char *text;

	put(snap, "{\"version\":1,\"generation\":5,\"scopes\":[{\"key-id\":\"" A "\",\"manual\":2,"
	    "\"serial\":123},{\"key-id\":\"" B "\",\"manual\":1}]}");
	put(journal, "5\n3 " A " 124\n0 vk:6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01 0\n");
	t = load(0);
	assert_int_equal(manual(t, A), 3);
	assert_int_equal(scope_find(t, A)->recorded, 124);
	assert_int_equal(manual(t, B), 1);
	assert_int_equal(scope_find(t, B)->recorded, 0);
	assert_int_equal(t->map.n, 2);
	assert_true(t->snapshot_relayout);
	assert_int_equal(scopes_compact(t), 0);
	scopes_free(t);

	text = get(snap);
	assert_true(startswith(text, "{\"version\":1,\"generation\":6,\"scopes\":[\n"));
	/* Still JSON, as an older keyscoped reads it. */
	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "scopes", &a));
	assert_int_equal(json_object_array_length(a), 2);
	json_object_put(root);
	free(text);
	t = load(0);
	assert_false(t->snapshot_relayout);
	assert_int_equal(manual(t, A), 3);
	assert_int_equal(manual(t, B), 1);
	scopes_free(t);
}

/* Cut anywhere, the snapshot is refused with the file left as it was; whole, it loads. */
static void test_torn_snapshot(void **state)
{
	static const char whole[] = "{\"version\":1,\"generation\":9,\"scopes\":[\n"
		"{\"key-id\":\"" A "\",\"manual\":2,\"serial\":912038451},\n"
		"{\"key-id\":\"" B "\",\"manual\":1,\"serial\":0}\n]}\n";
	char cut[sizeof(whole)];

	for (size_t n = 0; n + 1 < sizeof(whole) - 1; n++) {
		struct scopes *t;
		char *text;

		memcpy(cut, whole, n);
		cut[n] = '\0';
		put(snap, cut);
		t = load(-EBADMSG);
		assert_int_equal(t->map.n, 0);
		scopes_free(t);
		text = get(snap);
		assert_string_equal(text, cut);
		free(text);
	}
	put(snap, whole);
	{
		struct scopes *t = load(0);
		assert_int_equal(manual(t, A), 2);
		assert_int_equal(scope_find(t, A)->recorded, 912038451);
		assert_int_equal(t->generation, 9);
		assert_false(t->snapshot_relayout);
		scopes_free(t);
	}
}

/* A line the line reader does not take goes to json-c, which reads a hand-edited entry and
 * skips a malformed one. */
static void test_garbled_line(void **state)
{
	struct scopes *t;

	put(snap, "{\"version\":1,\"generation\":9,\"scopes\":[\n"
	    "{\"key-id\":\"" A "\", \"manual\": 2, \"serial\": 7},\n"
	    "{\"key-id\":\"" B "\",\"manual\":1,\"serial\":0}\n]}\n");
	t = load(0);
	assert_int_equal(manual(t, A), 2);
	assert_int_equal(manual(t, B), 1);
	assert_true(t->snapshot_relayout);
	scopes_free(t);

	put(snap, "{\"version\":1,\"generation\":9,\"scopes\":[\n"
	    "{\"key-id\":\"a..b\",\"manual\":2,\"serial\":7},\n"
	    "{\"key-id\":\"" B "\",\"holders\":1,\"serial\":0},\n"
	    "{\"key-id\":\"" A "\",\"manual\":3,\"serial\":0}\n]}\n");
	t = load(0);
	assert_int_equal(t->map.n, 1);
	assert_int_equal(manual(t, A), 3);
	scopes_free(t);
}

/* A torn last journal line is skipped, and the next save does not continue it. */
static void test_torn_journal(void **state)
{
	struct scopes *t;
	struct scope *s;

	put(snap, "{\"version\":1,\"generation\":4,\"scopes\":[\n"
	    "{\"key-id\":\"" A "\",\"manual\":1,\"serial\":0}\n]}\n");
	put(journal, "4\n2 " A " 0\n1 " B);
	t = load(0);
	assert_int_equal(manual(t, A), 2);
	assert_null(scope_find(t, B));
	assert_int_equal(scope_record_set(t, B, 5, 0), 0);
	s = scope_find(t, B);
	scope_note(t, s);
	assert_int_equal(scopes_save(t), 0);
	scopes_free(t);
	t = load(0);
	assert_int_equal(manual(t, A), 2);
	assert_int_equal(manual(t, B), 5);
	scopes_free(t);
}

/* A stop killed after the new snapshot, before the journal was started anew: the old journal
 * names the old generation and is ignored, since the snapshot has its lines. */
static void test_killed_in_compaction(void **state)
{
	struct scopes *t;

	put(snap, "{\"version\":1,\"generation\":8,\"scopes\":[\n"
	    "{\"key-id\":\"" A "\",\"manual\":2,\"serial\":0}\n]}\n");
	put(journal, "7\n2 " A " 0\n0 " A " 0\n");
	t = load(0);
	assert_int_equal(manual(t, A), 2);
	assert_int_equal(scopes_save(t), 0);
	scopes_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_scope_blocks, clean),
		cmocka_unit_test_teardown(test_stop_then_start, clean),
		cmocka_unit_test_teardown(test_upgrade, clean),
		cmocka_unit_test_teardown(test_torn_snapshot, clean),
		cmocka_unit_test_teardown(test_garbled_line, clean),
		cmocka_unit_test_teardown(test_torn_journal, clean),
		cmocka_unit_test_teardown(test_killed_in_compaction, clean),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
