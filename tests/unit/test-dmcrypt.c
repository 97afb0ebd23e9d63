/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The crypt table fields crash recovery reads back from device-mapper: which logon key a table
 * references (only ":<bytes>:logon:<description>" counts) and its backing device;
 * and the parameter string itself: the key by reference, and the
 * optional parameters that crypttab's discard and performance options and the LUKS2
 * persistent flags ask for, counted and in cryptsetup's order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
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

static struct dmcrypt_params base(void)
{
	struct dmcrypt_params p = { .key_size = 64, .iv_offset = 0, .offset = 32768,
				    .sector_size = 512 };

	snprintf(p.cipher, sizeof(p.cipher), "aes-xts-plain64");
	snprintf(p.key_desc, sizeof(p.key_desc), "keyscope:k1");
	snprintf(p.device, sizeof(p.device), "/dev/vdb");
	return p;
}

static void test_plain_table(void **state)
{
	struct dmcrypt_params p = base();
	char buf[1024];

	assert_int_equal(dmcrypt_table_params(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "aes-xts-plain64 :64:logon:keyscope:k1 0 /dev/vdb 32768");
	p.sector_size = 4096;
	assert_int_equal(dmcrypt_table_params(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "aes-xts-plain64 :64:logon:keyscope:k1 0 /dev/vdb 32768 "
				 "1 sector_size:4096");
}

static void test_flags(void **state)
{
	struct dmcrypt_params p = base();
	char buf[1024];

	p.flags = DMCRYPT_ALLOW_DISCARDS;
	assert_int_equal(dmcrypt_table_params(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "aes-xts-plain64 :64:logon:keyscope:k1 0 /dev/vdb 32768 "
				 "1 allow_discards");
	p.flags = DMCRYPT_FLAGS_ALL;
	p.sector_size = 4096;
	assert_int_equal(dmcrypt_table_params(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "aes-xts-plain64 :64:logon:keyscope:k1 0 /dev/vdb 32768 "
				 "6 allow_discards same_cpu_crypt submit_from_crypt_cpus "
				 "no_read_workqueue no_write_workqueue sector_size:4096");
	p.flags = DMCRYPT_NO_WRITE_WORKQUEUE | DMCRYPT_SAME_CPU_CRYPT;
	p.sector_size = 512;
	assert_int_equal(dmcrypt_table_params(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "aes-xts-plain64 :64:logon:keyscope:k1 0 /dev/vdb 32768 "
				 "2 same_cpu_crypt no_write_workqueue");
	p.flags = 1u << 20;
	assert_int_equal(dmcrypt_table_params(&p, buf, sizeof(buf)), -EINVAL);
	p.flags = DMCRYPT_FLAGS_ALL;
	assert_int_equal(dmcrypt_table_params(&p, buf, 70), -ENOBUFS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_desc),
		cmocka_unit_test(test_device),
		cmocka_unit_test(test_plain_table),
		cmocka_unit_test(test_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
