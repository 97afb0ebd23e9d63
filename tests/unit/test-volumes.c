/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The volumes file (lib/volumes.c): every field form and option, every refusal with the word
 * at fault, bad lines refused alone while the good ones count, drop-ins in byte order; and the
 * unit name escaper (lib/unitname.c) against what systemd-escape prints.
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
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "unitname.h"
#include "util.h"
#include "volumes.h"

static int parse(const char *line, struct volume *v, char *err)
{
	memset(v, 0x5a, sizeof(*v));
	err[0] = '\0';
	return volumes_parse_line(line, strlen(line), v, err, 512);
}

static void test_fields(void **state)
{
	struct volume v;
	char err[512];

	assert_int_equal(parse("data UUID=0b5e7a52-1111-2222-3333-444455556666", &v, err), 1);
	assert_string_equal(v.name, "data");
	assert_int_equal(v.kind, VOLUME_DEVICE_UUID);
	assert_string_equal(v.device, "/dev/disk/by-uuid/0b5e7a52-1111-2222-3333-444455556666");
	assert_string_equal(v.tag, "0b5e7a52-1111-2222-3333-444455556666");
	assert_string_equal(v.key_id, "");
	assert_int_equal(v.flags, 0);

	assert_int_equal(parse("\t logs \t /dev/disk/by-path/pci-0000:00:05.0 - none \r", &v,
			       err), 1);
	assert_string_equal(v.name, "logs");
	assert_int_equal(v.kind, VOLUME_DEVICE_PATH);
	assert_string_equal(v.device, "/dev/disk/by-path/pci-0000:00:05.0");

	assert_int_equal(parse("a PARTUUID=6f1c-01 key-1 nofail", &v, err), 1);
	assert_string_equal(v.device, "/dev/disk/by-partuuid/6f1c-01");
	assert_string_equal(v.key_id, "key-1");
	assert_int_equal(v.flags, VOLUME_NOFAIL);

	/* udev's by-label names encode what is not [0-9A-Za-z#+-.:=@_] */
	assert_int_equal(parse("b LABEL=my/disk\\1 none -", &v, err), 1);
	assert_int_equal(v.kind, VOLUME_DEVICE_LABEL);
	assert_string_equal(v.device, "/dev/disk/by-label/my\\x2fdisk\\x5c1");

	assert_int_equal(parse("c /dev/vdb", &v, err), 1);
	assert_string_equal(v.device, "/dev/vdb");
}

static void test_options(void **state)
{
	struct volume v;
	char err[512];

	assert_int_equal(parse("d /dev/vdb - nofail,noauto,_netdev,readonly,discard,"
			       "no-read-workqueue,no-write-workqueue,same-cpu-crypt,"
			       "submit-from-crypt-cpus,x-systemd.device-timeout=2min,luks",
			       &v, err), 1);
	assert_int_equal(v.flags, VOLUME_NOFAIL | VOLUME_NOAUTO | VOLUME_NETDEV |
				  VOLUME_READONLY | VOLUME_DISCARD | VOLUME_NO_READ_WORKQUEUE |
				  VOLUME_NO_WRITE_WORKQUEUE | VOLUME_SAME_CPU_CRYPT |
				  VOLUME_SUBMIT_FROM_CRYPT_CPUS | VOLUME_DEVICE_TIMEOUT);
	assert_int_equal(v.device_timeout_usec, 120000000);
	assert_int_equal(parse("d /dev/vdb - read-only,x-systemd.device-timeout=0", &v, err), 1);
	assert_int_equal(v.flags, VOLUME_READONLY | VOLUME_DEVICE_TIMEOUT);
	assert_int_equal(v.device_timeout_usec, 0);
	assert_int_equal(parse("d /dev/vdb - x-systemd.device-timeout=500ms", &v, err), 1);
	assert_int_equal(v.device_timeout_usec, 500000);
	assert_int_equal(parse("d /dev/vdb - x-systemd.device-timeout=90", &v, err), 1);
	assert_int_equal(v.device_timeout_usec, 90000000);

	assert_int_equal(parse("p /dev/vdc k1 plain,cipher=aes-xts-plain64,size=512,offset=2048,"
			       "sector-size=4096", &v, err), 1);
	assert_true(v.flags & VOLUME_PLAIN);
	assert_string_equal(v.cipher, "aes-xts-plain64");
	assert_int_equal(v.key_bits, 512);
	assert_int_equal(v.offset, 2048);
	assert_int_equal(v.sector_size, 4096);

	assert_int_equal(parse("o /dev/vdd k2 passphrase=hex", &v, err), 1);
	assert_int_equal(v.flags, VOLUME_PASSPHRASE_HEX);
	assert_true(volumes_option_is_known("discard"));
	assert_false(volumes_option_is_known("tries=3"));
}

static void test_blank_and_comments(void **state)
{
	struct volume v;
	char err[512];

	assert_int_equal(parse("", &v, err), 0);
	assert_int_equal(parse("   \t ", &v, err), 0);
	assert_int_equal(parse("# data UUID=x", &v, err), 0);
	assert_int_equal(parse("   #", &v, err), 0);
}

static const struct {
	const char *line, *message;
} bad[] = {
	{ "data", "'data': expected NAME DEVICE" },
	{ "a b c d e", "more than 4 fields" },
	{ "-x /dev/vdb", "name '-x' is not a valid mapping name" },
	{ "control /dev/vdb", "name 'control'" },
	{ "a/b /dev/vdb", "name 'a/b'" },
	{ "a vdb", "device 'vdb' is not an absolute path" },
	{ "a /dev/../etc/passwd", "device '/dev/../etc/passwd'" },
	{ "a UUID=", "device 'UUID='" },
	{ "a LABEL=..", "device 'LABEL=..'" },
	{ "a UUID=ab$c", "device 'UUID=ab$c'" },
	{ "a UUID=x /etc/key.bin", "key '/etc/key.bin' is not a key-id" },
	{ "a UUID=x k nofial", "unknown option 'nofial'" },
	{ "a UUID=x k discard,,tries=3", "unknown option 'tries=3'" },
	{ "a UUID=x k x-systemd.device-timeout=soon", "option 'x-systemd.device-timeout=soon'" },
	{ "a UUID=x k x-systemd.device-timeout=2d", "option 'x-systemd.device-timeout=2d'" },
	{ "a UUID=x k x-systemd.device-timeout=86401", "x-systemd.device-timeout=86401" },
	{ "a UUID=x - plain", "'plain' needs a key-id" },
	{ "a UUID=x - passphrase=hex", "'passphrase=hex' needs a key-id" },
	{ "a UUID=x k passphrase=raw", "option 'passphrase=raw'" },
	{ "a UUID=x k plain,passphrase=hex", "exclude each other" },
	{ "a UUID=x k cipher=aes-xts-plain64", "apply to plain volumes only" },
	{ "a UUID=x k plain,size=128", "option 'size=128'" },
	{ "a UUID=x k plain,sector-size=1024", "option 'sector-size=1024'" },
	{ "a UUID=x k plain,cipher=aes xts", "more than 4 fields" },
	{ "a UUID=x k plain,cipher=a;b", "option 'cipher=a;b'" },
	{ "a UUID=x k plain,offset=-1", "option 'offset=-1'" },
};

static void test_bad_lines(void **state)
{
	struct volume v;
	char err[512];

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		if (parse(bad[i].line, &v, err) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i].line);
		if (!strstr(err, bad[i].message))
			fail_msg("\"%s\": expected \"%s\", got \"%s\"", bad[i].line,
				 bad[i].message, err);
	}
	/* a NUL inside the line, and a line over the bound */
	assert_int_equal(volumes_parse_line("a /dev/x\0y", 10, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
	{
		char *huge = malloc(VOLUMES_LINE_MAX + 2);

		assert_non_null(huge);
		memset(huge, 'a', VOLUMES_LINE_MAX + 1);
		huge[VOLUMES_LINE_MAX + 1] = '\0';
		assert_int_equal(volumes_parse_line(huge, VOLUMES_LINE_MAX + 1, &v, err,
						    sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "line too long"));
		free(huge);
	}
	/* a long bad word is quoted bounded and escaped */
	assert_int_equal(parse("a UUID=x k \x01\x02nofail", &v, err), -EINVAL);
	assert_non_null(strstr(err, "'\\x01\\x02nofail'"));
}

/* One bad line is refused with its file and number; the lines around it still count. */
static void test_buffer(void **state)
{
	static const char text[] =
		"# volumes\n"
		"\n"
		"data UUID=0b5e7a52-1111-2222-3333-444455556666 - nofail\n"
		"bad UUID=x - nofial\n"
		"logs /dev/vdc k1\n"
		"data /dev/vdd\n"
		"last /dev/vde";	/* no newline at the end */
	struct volumes vs = {};

	assert_int_equal(volumes_parse_buffer(&vs, "/etc/keyscope/volumes", text,
					      sizeof(text) - 1), 0);
	assert_int_equal(vs.n, 3);
	assert_string_equal(vs.v[0].name, "data");
	assert_int_equal(vs.v[0].line, 3);
	assert_string_equal(vs.v[1].name, "logs");
	assert_int_equal(vs.v[1].line, 5);
	assert_string_equal(vs.v[2].name, "last");
	assert_string_equal(vs.v[2].file, "/etc/keyscope/volumes");
	assert_int_equal(vs.n_errors, 2);
	assert_int_equal(vs.n_bad, 2);
	assert_int_equal(vs.errors[0].line, 4);
	assert_non_null(strstr(vs.errors[0].message, "unknown option 'nofial'"));
	assert_int_equal(vs.errors[1].line, 6);
	assert_non_null(strstr(vs.errors[1].message,
			       "name 'data' is already declared at /etc/keyscope/volumes:3"));
	assert_non_null(volumes_find(&vs, "logs"));
	assert_null(volumes_find(&vs, "bad"));
	volumes_done(&vs);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The main file first, then volumes.d/ *.conf in byte order; other names are not read. */
static void test_load_dir(void **state)
{
	char dir[] = "/tmp/test-volumes.XXXXXX", p[320], d[300];
	struct volumes vs = {};

	assert_non_null(mkdtemp(dir));
	snprintf(d, sizeof(d), "%s/volumes.d", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	snprintf(p, sizeof(p), "%s/volumes", dir);
	write_file(p, "main /dev/vda\n");
	snprintf(p, sizeof(p), "%s/b.conf", d);
	write_file(p, "bee /dev/vdc\n");
	snprintf(p, sizeof(p), "%s/A.conf", d);
	write_file(p, "ay /dev/vdb\nbee /dev/vdx\n");
	snprintf(p, sizeof(p), "%s/c.conf.disabled", d);
	write_file(p, "no /dev/vdz\n");
	snprintf(p, sizeof(p), "%s/volumes", dir);
	assert_int_equal(volumes_load(&vs, p, d), 0);
	assert_int_equal(vs.n, 3);
	assert_string_equal(vs.v[0].name, "main");
	assert_string_equal(vs.v[1].name, "ay");
	assert_string_equal(vs.v[2].name, "bee");
	assert_string_equal(vs.v[2].device, "/dev/vdx");	/* A.conf sorts before b.conf */
	assert_int_equal(vs.n_errors, 1);
	assert_non_null(strstr(vs.errors[0].file, "/b.conf"));
	volumes_done(&vs);

	/* neither file nor folder: nothing, no error */
	assert_int_equal(volumes_load(&vs, "/nonexistent/volumes", "/nonexistent/volumes.d"), 0);
	assert_int_equal(vs.n + vs.n_errors, 0);
	volumes_done(&vs);
	assert_int_equal(system(((void) snprintf(d, sizeof(d), "rm -rf %s", dir), d)), 0);
}

/*
 * Configuration management installs drop-ins as symbolic links, and systemd's convention masks
 * one with a link to /dev/null: a link is followed, /dev/null reads as empty, and a FIFO is
 * refused by name without blocking the generator.
 */
static void test_load_links(void **state)
{
	char dir[] = "/tmp/test-volumes.XXXXXX", p[320], d[300], t[320];
	struct volumes vs = {};

	assert_non_null(mkdtemp(dir));
	snprintf(d, sizeof(d), "%s/volumes.d", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	snprintf(t, sizeof(t), "%s/managed", dir);
	write_file(t, "linked /dev/vdb\n");
	snprintf(p, sizeof(p), "%s/volumes", dir);
	assert_int_equal(symlink(t, p), 0);
	snprintf(p, sizeof(p), "%s/a.conf", d);
	assert_int_equal(symlink(t, p), 0);		/* the same line again: a duplicate */
	snprintf(p, sizeof(p), "%s/b.conf", d);
	assert_int_equal(symlink("/dev/null", p), 0);
	snprintf(p, sizeof(p), "%s/c.conf", d);
	assert_int_equal(mkfifo(p, 0644), 0);
	snprintf(p, sizeof(p), "%s/volumes", dir);
	assert_int_equal(volumes_load(&vs, p, d), 0);
	assert_int_equal(vs.n, 1);
	assert_string_equal(vs.v[0].name, "linked");
	assert_int_equal(vs.n_errors, 2);
	assert_non_null(strstr(vs.errors[0].file, "/a.conf"));
	assert_non_null(strstr(vs.errors[1].file, "/c.conf"));
	assert_non_null(strstr(vs.errors[1].message, "not a regular file"));
	volumes_done(&vs);
	assert_int_equal(system(((void) snprintf(d, sizeof(d), "rm -rf %s", dir), d)), 0);
}

static void test_escape(void **state)
{
	static const struct {
		const char *in, *out;
	} plain[] = {
		{ "dm-3", "dm\\x2d3" }, { "data", "data" }, { "my.vol", "my.vol" },
		{ ".hidden", "\\x2ehidden" }, { "a b", "a\\x20b" }, { "\xc3\xa4", "\\xc3\\xa4" },
		{ "x/y", "x-y" }, { "a\\b", "a\\x5cb" }, { "a:b_c.d", "a:b_c.d" },
	}, path[] = {
		{ "/dev/disk/by-uuid/0b5e7a52-1111", "dev-disk-by\\x2duuid-0b5e7a52\\x2d1111" },
		{ "/dev/vdb", "dev-vdb" }, { "//", "-" }, { "/dev//mapper/", "dev-mapper" },
		{ "/dev/disk/by-label/my\\x20disk", "dev-disk-by\\x2dlabel-my\\x5cx20disk" },
		{ "/dev/.x", "dev-.x" },
	};
	char buf[128];

	for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
		assert_int_equal(unitname_escape(plain[i].in, buf, sizeof(buf)), 0);
		assert_string_equal(buf, plain[i].out);
	}
	for (size_t i = 0; i < ELEMENTSOF(path); i++) {
		assert_int_equal(unitname_path_escape(path[i].in, buf, sizeof(buf)), 0);
		assert_string_equal(buf, path[i].out);
	}
	assert_int_equal(unitname_path_escape("relative", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(unitname_path_escape("/dev/../x", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(unitname_escape("", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(unitname_escape("a-b", buf, 4), -ENAMETOOLONG);
	assert_int_equal(unitname_from_device("/dev/mapper/a-b", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "dev-mapper-a\\x2db.device");
	assert_int_equal(unitname_from_device("/dev/vdb", buf, 14), -ENAMETOOLONG);
	assert_int_equal(unitname_from_device("/dev/vdb", buf, 15), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_blank_and_comments),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_buffer),
		cmocka_unit_test(test_load_dir),
		cmocka_unit_test(test_load_links),
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
