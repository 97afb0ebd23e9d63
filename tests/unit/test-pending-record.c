/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pending volume records (daemon/volumes/pending-record.c): what is written reads back as the
 * same attach request; every refusal names its line and the key at fault; requests the
 * format could not give back are not written.
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

#include "macro.h"
#include "pending-record.h"

static json_object *request(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "device", json_object_new_string("/dev/disk/by-uuid/0b5e"));
	json_object_object_add(o, "name", json_object_new_string("data"));
	json_object_object_add(o, "key-id", json_object_new_string("3f1c-aa"));
	json_object_object_add(o, "discard", json_object_new_boolean(1));
	json_object_object_add(o, "read-only", json_object_new_boolean(0));
	json_object_object_add(o, "sector-size", json_object_new_int64(4096));
	json_object_object_add(o, "passphrase", json_object_new_string("hex"));
	return o;
}

static int parse(const char *text, struct pending_record *rec, unsigned *line, char *err)
{
	char *t = strdup(text);
	int r;

	assert_non_null(t);
	*line = 99;
	r = pending_record_parse(t, strlen(t), rec, line, err, 256);
	free(t);
	return r;
}

static void test_round_trip(void **state)
{
	struct pending_record in = { .since = 1700000000, .params = request() }, out = {};
	_cleanup_free_ char *text = NULL;
	char err[256];
	unsigned line;

	strcpy(in.boot_id, "1b2c3d4e-0000-4111-8222-333344445555");
	strcpy(in.reason, "Barbican at https://kms:9311 does not answer:\n connect refused ");
	assert_int_equal(pending_record_format(&in, &text), 0);
	assert_non_null(strstr(text, "reason = Barbican at https://kms:9311 does not answer:  "
			       "connect refused\n"));
	assert_int_equal(parse(text, &out, &line, err), 0);
	assert_int_equal(line, 0);
	assert_true(json_object_equal(in.params, out.params));
	assert_string_equal(out.boot_id, in.boot_id);
	assert_int_equal(out.since, 1700000000);
	assert_string_equal(pending_record_name(&out), "data");
	assert_string_equal(pending_record_device(&out), "/dev/disk/by-uuid/0b5e");
	pending_record_done(&out);
	pending_record_done(&in);
}

static void test_refused(void **state)
{
	static const struct { const char *text, *word; unsigned line; } bad[] = {
		{ "version = 1\nname = data\ndevice = /dev/vdb\nbogus = 1\n", "'bogus'", 4 },
		{ "version = 1\nname = ../x\ndevice = /dev/vdb\n", "'../x'", 2 },
		{ "version = 1\nname = data\ndevice = vdb\n", "'vdb'", 3 },
		{ "version = 1\nname = data\nname = logs\ndevice = /dev/vdb\n", "twice", 3 },
		{ "version = 2\nname = data\ndevice = /dev/vdb\n", "version '2'", 1 },
		{ "version = 1\nname = data\ndevice = /dev/vdb\ndiscard = maybe\n", "'discard'", 4 },
		{ "version = 1\nname = data\ndevice = /dev/vdb\nsector-size = 8192\n",
		  "'sector-size'", 4 },
		{ "version = 1\nname = data\ndevice = /dev/vdb\npassphrase = 00ff\n", "'00ff'", 4 },
		{ "version = 1\nname = data\ndevice = /dev/vdb\nkey-id = -x\n", "key-id", 4 },
		{ "version = 1\n\nname data\n", "not 'key = value'", 3 },
		{ "name = data\ndevice = /dev/vdb\n", "no version", 0 },
		{ "version = 1\nname = data\n", "no name or no device", 0 },
		{ "version = 1\nboot-id = ZZ\nname = data\ndevice = /dev/vdb\n", "boot-id", 2 },
	};
	struct pending_record rec = { .since = 7 };
	char err[256];
	unsigned line;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		assert_int_equal(parse(bad[i].text, &rec, &line, err), -EBADMSG);
		if (!strstr(err, bad[i].word) || line != bad[i].line)
			fail_msg("case %zu: line %u, '%s'", i, line, err);
		assert_null(rec.params);	/* untouched */
		assert_int_equal(rec.since, 7);
	}
}

static void test_bounded(void **state)
{
	size_t n = PENDING_RECORD_MAX + 1;
	char *t = malloc(n + 1), err[256];
	struct pending_record rec = {};
	unsigned line;

	assert_non_null(t);
	memset(t, '#', n);
	t[n] = 0;
	assert_int_equal(pending_record_parse(t, n, &rec, &line, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "larger than"));
	strcpy(t, "version = 1\nname = data\ndevice = /dev/vdb\n");
	t[12] = 0;	/* a NUL inside */
	assert_int_equal(pending_record_parse(t, 43, &rec, &line, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "NUL"));
	free(t);
}

static void test_not_written(void **state)
{
	struct pending_record rec = { .params = request() };
	_cleanup_free_ char *text = NULL;

	json_object_object_add(rec.params, "device", json_object_new_string("/dev/a\nb"));
	assert_int_equal(pending_record_format(&rec, &text), -EINVAL);
	json_object_object_add(rec.params, "device", json_object_new_string(" /dev/a"));
	assert_int_equal(pending_record_format(&rec, &text), -EINVAL);
	json_object_object_add(rec.params, "device", json_object_new_string("/dev/a"));
	json_object_object_add(rec.params, "payload", json_object_new_string("x"));
	assert_int_equal(pending_record_format(&rec, &text), -EINVAL);
	json_object_object_del(rec.params, "payload");
	json_object_object_add(rec.params, "discard", json_object_new_string("yes"));
	assert_int_equal(pending_record_format(&rec, &text), -EINVAL);
	json_object_object_add(rec.params, "discard", json_object_new_boolean(1));
	assert_int_equal(pending_record_format(&rec, &text), 0);
	/* the retry's request has no "pending": a record that had one would not be a retry */
	json_object_object_add(rec.params, "pending", json_object_new_boolean(1));
	free(text);
	text = NULL;
	assert_int_equal(pending_record_format(&rec, &text), -EINVAL);
	pending_record_done(&rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_not_written),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
