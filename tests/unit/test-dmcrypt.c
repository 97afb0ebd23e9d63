/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The crypt table fields crash recovery reads back from device-mapper: which logon key a table
 * references (only ":<bytes>:logon:<description>" counts) and its backing device.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "dmcrypt.h"
#include "macro.h"

static void test_key_desc(void **state)
{
	char d[64];

	assert_int_equal(dmcrypt_params_key_desc("aes-xts-plain64 :64:logon:keyscope:abc 0 "
						 "254:16 32768 1 sector_size:4096", d, sizeof(d)), 0);
	assert_string_equal(d, "keyscope:abc");
	assert_int_equal(dmcrypt_params_key_desc("aes-xts-plain64 :32:logon:keyscope:vk:"
						 "60f481c1 0 7:0 0", d, sizeof(d)), 0);
	assert_string_equal(d, "keyscope:vk:60f481c1");
	/* A key carried in the table, another key type, garbage: no reference. */
	assert_int_equal(dmcrypt_params_key_desc("aes-xts-plain64 00ff 0 7:0 0", d, sizeof(d)),
			 -ENOKEY);
	assert_int_equal(dmcrypt_params_key_desc("aes :64:user:keyscope:abc 0 7:0 0", d,
						 sizeof(d)), -ENOKEY);
	assert_int_equal(dmcrypt_params_key_desc("aes :64:logon: 0 7:0 0", d, sizeof(d)),
			 -ENOKEY);
	assert_int_equal(dmcrypt_params_key_desc("", d, sizeof(d)), -ENOKEY);
	assert_int_equal(dmcrypt_params_key_desc("aes", d, sizeof(d)), -ENOKEY);
	assert_int_equal(dmcrypt_params_key_desc("aes :64:logon:x", d, sizeof(d)), 0);
	assert_string_equal(d, "x");
	/* Longer than the buffer: refused, not cut. */
	assert_int_equal(dmcrypt_params_key_desc("aes :64:logon:keyscope:0123456789 0 7:0 0", d,
						 8), -ENOKEY);
}

static void test_device(void **state)
{
	char d[16];

	assert_int_equal(dmcrypt_params_device("aes :64:logon:k 0 254:16 32768", d, sizeof(d)), 0);
	assert_string_equal(d, "254:16");
	assert_int_equal(dmcrypt_params_device("aes :64:logon:k 0", d, sizeof(d)), -EBADMSG);
	assert_int_equal(dmcrypt_params_device("aes k 0 /dev/very/long/path/name 0", d, sizeof(d)),
			 -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_desc),
		cmocka_unit_test(test_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
