/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pure parts of the kernel checks and of the request-key path: the DM_LIST_VERSIONS record
 * chain, /proc/misc, /proc/key-users, request-key.conf lines and request-key's own pattern
 * match, version order, KEYCTL_DESCRIBE text, and the escaping of untrusted text for logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <keyutils.h>
#include <linux/dm-ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcheck.h"
#include "keyring.h"
#include "macro.h"
#include "text.h"

/* Appends a dm_target_versions record (8-byte aligned, as the kernel lays them out). */
static size_t put_target(uint8_t *buf, size_t off, const char *name, unsigned a, unsigned b,
			 unsigned c, bool last)
{
	struct dm_target_versions t = { .version = { a, b, c } };
	size_t len = (sizeof(t) + strlen(name) + 1 + 7) & ~(size_t) 7;

	t.next = last ? 0 : (uint32_t) len;
	memcpy(buf + off, &t, sizeof(t));
	strcpy((char *) buf + off + sizeof(t), name);
	return off + len;
}

static void test_target_versions(void **state)
{
	uint8_t buf[512] = {};
	unsigned v[3];
	size_t n = 0;

	n = put_target(buf, n, "striped", 1, 6, 0, false);
	n = put_target(buf, n, "linear", 1, 4, 0, false);
	n = put_target(buf, n, "crypt", 1, 24, 0, true);
	assert_int_equal(kcheck_parse_target_versions(buf, n, "crypt", v), 1);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 24);
	assert_int_equal(v[2], 0);
	assert_int_equal(kcheck_parse_target_versions(buf, n, "linear", v), 1);
	assert_int_equal(v[1], 4);
	assert_int_equal(kcheck_parse_target_versions(buf, n, "cryp", v), 0);
	assert_int_equal(kcheck_parse_target_versions(buf, n, "crypto", v), 0);
	assert_int_equal(kcheck_parse_target_versions(buf, 0, "crypt", v), 0);

	/* Truncated: the last record's name has no NUL inside the data. */
	assert_int_equal(kcheck_parse_target_versions(buf, n - 8 + 2, "crypt", v), -EBADMSG);
	/* A header cut short. */
	assert_int_equal(kcheck_parse_target_versions(buf, 10, "crypt", v), -EBADMSG);
	/* A "next" that points past the end, or does not move forward. */
	((struct dm_target_versions *) buf)->next = 4096;
	assert_int_equal(kcheck_parse_target_versions(buf, n, "crypt", v), -EBADMSG);
	((struct dm_target_versions *) buf)->next = 3;
	assert_int_equal(kcheck_parse_target_versions(buf, n, "crypt", v), -EBADMSG);
}

static void test_version_cmp(void **state)
{
	static const unsigned min[3] = { 1, 18, 1 };
	static const unsigned older[3] = { 1, 18, 0 }, newer[3] = { 1, 19, 0 },
			      major[3] = { 2, 0, 0 }, same[3] = { 1, 18, 1 };

	assert_true(kcheck_version_cmp(older, min) < 0);
	assert_true(kcheck_version_cmp(newer, min) > 0);
	assert_true(kcheck_version_cmp(major, min) > 0);
	assert_int_equal(kcheck_version_cmp(same, min), 0);
}

static void test_misc(void **state)
{
	static const char text[] = "234 btrfs-control\n236 device-mapper\n 58 network_throughput\n"
				   "229 fuse\n";

	assert_int_equal(kcheck_parse_misc(text, "device-mapper"), 236);
	assert_int_equal(kcheck_parse_misc(text, "fuse"), 229);
	assert_int_equal(kcheck_parse_misc(text, "network_throughput"), 58);
	assert_int_equal(kcheck_parse_misc(text, "device"), -ENOENT);
	assert_int_equal(kcheck_parse_misc("236 device-mapperx\n", "device-mapper"), -ENOENT);
	assert_int_equal(kcheck_parse_misc("x device-mapper\n", "device-mapper"), -ENOENT);
	assert_int_equal(kcheck_parse_misc("", "device-mapper"), -ENOENT);
	assert_int_equal(kcheck_parse_misc("999 device-mapper", "device-mapper"), -ENOENT);
}

static void test_key_users(void **state)
{
	static const char text[] = "    0:     9 8/8 3/1000000 131112/25000000\n"
				   "65534:     2 2/2 2/200 93/20000\n";
	uint64_t keys = 0, bytes = 0;

	assert_int_equal(kcheck_parse_key_users(text, 0, &keys, &bytes), 0);
	assert_int_equal(keys, 3);
	assert_int_equal(bytes, 131112);
	assert_int_equal(kcheck_parse_key_users(text, 65534, &keys, &bytes), 0);
	assert_int_equal(keys, 2);
	assert_int_equal(bytes, 93);
	assert_int_equal(kcheck_parse_key_users(text, 1000, &keys, &bytes), -ENOENT);
	assert_int_equal(kcheck_parse_key_users("    0:     9 8/8\n", 0, &keys, &bytes), -EBADMSG);
	assert_int_equal(kcheck_parse_key_users("    0:  9 8/8 3/1 1/2 x\n", 0, &keys, &bytes),
			 -EBADMSG);
}

static void test_rk_match(void **state)
{
	assert_true(kcheck_rk_match("keyscope:*", 10, "keyscope:abc"));
	assert_true(kcheck_rk_match("keyscope:*", 10, "keyscope:"));
	assert_false(kcheck_rk_match("keyscope:*", 10, "keyscope"));
	assert_true(kcheck_rk_match("*", 1, ""));
	assert_true(kcheck_rk_match("*tok", 4, "volume=x tok"));
	assert_false(kcheck_rk_match("*tok", 4, "tok-no"));
	assert_true(kcheck_rk_match("a*z", 3, "az"));
	assert_true(kcheck_rk_match("a*z", 3, "abcz"));
	assert_false(kcheck_rk_match("a*z", 3, "a"));
	assert_true(kcheck_rk_match("logon", 5, "logon"));
	assert_false(kcheck_rk_match("logon", 5, "logonx"));
}

static void test_request_key_line(void **state)
{
	char prog[256];

	assert_int_equal(kcheck_parse_request_key_line(
				 "create logon keyscope:* * /usr/libexec/keyscope/keyscope-request-key "
				 "%k %d %c %u", prog, sizeof(prog)), 1);
	assert_string_equal(prog, "/usr/libexec/keyscope/keyscope-request-key");
	assert_int_equal(kcheck_parse_request_key_line("create\tlogon\tkeyscope:*\t*\t|/bin/h",
						       prog, sizeof(prog)), 1);
	assert_string_equal(prog, "/bin/h");
	assert_int_equal(kcheck_parse_request_key_line("create * * * /bin/h %k", prog,
						       sizeof(prog)), 1);
	/* Lines that do not take every logon keyscope:* request. */
	assert_int_equal(kcheck_parse_request_key_line("create user keyscope:* * /bin/h", prog,
						       sizeof(prog)), 0);
	assert_int_equal(kcheck_parse_request_key_line("create logon other:* * /bin/h", prog,
						       sizeof(prog)), 0);
	assert_int_equal(kcheck_parse_request_key_line("create logon keyscope:* *tok /bin/h",
						       prog, sizeof(prog)), 0);
	assert_int_equal(kcheck_parse_request_key_line("negate logon keyscope:* * /bin/h", prog,
						       sizeof(prog)), 0);
	assert_int_equal(kcheck_parse_request_key_line("# create logon keyscope:* * /bin/h",
						       prog, sizeof(prog)), 0);
	assert_int_equal(kcheck_parse_request_key_line(" create logon keyscope:* * /bin/h",
						       prog, sizeof(prog)), 0);
	assert_int_equal(kcheck_parse_request_key_line("", prog, sizeof(prog)), 0);
	/* Malformed: too few fields, a relative program. */
	assert_int_equal(kcheck_parse_request_key_line("create logon keyscope:* *", prog,
						       sizeof(prog)), -EBADMSG);
	assert_int_equal(kcheck_parse_request_key_line("create logon keyscope:* * bin/h", prog,
						       sizeof(prog)), -EBADMSG);
	assert_int_equal(kcheck_parse_request_key_line("create logon keyscope:* * /bin/h", prog,
						       4), -EBADMSG);
}

static void test_describe_parse(void **state)
{
	char a[] = "logon;0;0;3d010000;keyscope:abc", b[] = "user;65534;65534;1f010000;x;y",
	     c[] = "logon;0;0", d[] = "logon;x;0;0;k", e[] = "logon;0;0;zz;k";
	struct key_info i;

	assert_int_equal(keyring_describe_parse(a, &i), 0);
	assert_string_equal(i.type, "logon");
	assert_int_equal(i.uid, 0);
	assert_int_equal(i.perm, 0x3d010000);
	assert_string_equal(i.description, "keyscope:abc");
	assert_int_equal(keyring_describe_parse(b, &i), 0);
	assert_int_equal(i.uid, 65534);
	assert_string_equal(i.description, "x;y");
	assert_int_equal(keyring_describe_parse(c, &i), -EBADMSG);
	assert_int_equal(keyring_describe_parse(d, &i), -EBADMSG);
	assert_int_equal(keyring_describe_parse(e, &i), -EBADMSG);
}

static void test_text_escape(void **state)
{
	char out[64];

	assert_string_equal(text_escape("volume=x", 8, 128, out, sizeof(out)), "volume=x");
	assert_string_equal(text_escape("a\"b\\c\nd\xff", 8, 128, out, sizeof(out)),
			    "a\\x22b\\x5cc\\x0ad\\xff");
	assert_string_equal(text_escape("a\0b", 3, 128, out, sizeof(out)), "a\\x00b");
	assert_string_equal(text_escape("abcdef", 6, 3, out, sizeof(out)), "abc...");
	assert_string_equal(text_escape("abcdef", 6, 128, out, 4), "abc");
	assert_string_equal(text_escape("\n\n\n", 3, 128, out, 9), "\\x0a\\x0a");
	assert_string_equal(text_escape("", 0, 128, out, 1), "");

	assert_true(text_is_escaped("volume=x"));
	assert_true(text_is_escaped("a\\x22b\\x5cc"));
	assert_true(text_is_escaped(""));
	assert_false(text_is_escaped("a\"b"));
	assert_false(text_is_escaped("a\\b"));
	assert_false(text_is_escaped("a\\x2"));
	assert_false(text_is_escaped("a\\xZZ"));
	assert_false(text_is_escaped("a\nb"));
	assert_false(text_is_escaped("\xc3\xa9"));
}

static const struct kcheck_item *item(const struct kcheck_result *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->items[i].name, name) == 0)
			return &r->items[i];
	return NULL;
}

/*
 * The logon check destroys no key (that would set the kernel's key garbage collector walking
 * every key on the node while keyscoped starts): its probe stays in the process keyring, one
 * probe keyring however often the checks run.
 */
static void test_probe_kept(void **state)
{
	struct kcheck_options o = {};
	struct kcheck_result *r = calloc(1, sizeof(*r));
	key_serial_t ring, ring2, probe, links[4];

	assert_non_null(r);
	if (keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) < 0 && errno == ENOSYS) {
		print_message("skipped: no keyring system calls in this kernel\n");
		free(r);
		skip();
	}
	(void) kcheck_run(&o, r);
	assert_int_equal(item(r, "logon")->status, KCHECK_OK);
	ring = keyctl_search(KEY_SPEC_PROCESS_KEYRING, "keyring", "keyscope-check", 0);
	assert_true(ring > 0);
	probe = keyctl_search(ring, "logon", "keyscope-check:probe", 0);
	assert_true(probe > 0);
	(void) kcheck_run(&o, r);
	assert_int_equal(item(r, "logon")->status, KCHECK_OK);
	ring2 = keyctl_search(KEY_SPEC_PROCESS_KEYRING, "keyring", "keyscope-check", 0);
	assert_true(ring2 > 0);
	assert_int_equal(keyctl_read(KEY_SPEC_PROCESS_KEYRING, (char *) links, sizeof(links)),
			 (long) sizeof(key_serial_t));
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target_versions),
		cmocka_unit_test(test_version_cmp),
		cmocka_unit_test(test_misc),
		cmocka_unit_test(test_key_users),
		cmocka_unit_test(test_rk_match),
		cmocka_unit_test(test_request_key_line),
		cmocka_unit_test(test_describe_parse),
		cmocka_unit_test(test_text_escape),
		cmocka_unit_test(test_probe_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
