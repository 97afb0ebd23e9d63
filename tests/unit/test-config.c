/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lib/config.c: the defaults every key has, drop-ins in systemd's conf.d order (file names
 * sorted across folders, a name in an earlier folder masking it in later ones, a link to
 * /dev/null masking with nothing, only "*.conf"), errors returned with the file and line and
 * nothing of a failed file's earlier lines lost from the caller's view, and the live flags.
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

#include "config.h"
#include "util.h"

static char root[64];

static void put(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	char path[256];

	snprintf(root, sizeof(root), "/tmp/test-config.XXXXXX");
	assert_non_null(mkdtemp(root));
	for (const char *d = "etc\0run\0lib\0"; *d; d += strlen(d) + 1) {
		snprintf(path, sizeof(path), "%s/%s", root, d);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_defaults(void **state)
{
	struct config c;
	const char *key;
	unsigned n = 0;

	assert_int_equal(config_init(&c), 0);
	assert_int_equal(c.client_timeout_sec, 30);
	assert_int_equal(c.barbican_auth, 1);
	assert_string_equal(c.barbican_roles, "creator");
	assert_int_equal(c.n_request_key_uids, 1);
	assert_false(c.barbican_cache);
	assert_true(c.volumes);
	/* Every key has a default that its own setter accepts (config_init() applied them). */
	for (unsigned i = 0; (key = config_key(i)); i++, n++)
		assert_int_equal(config_set(&c, key, config_value(&c, i)), 0);
	assert_true(n >= 30);
	assert_int_equal(config_set(&c, "no-such-key", "1"), -ENOENT);
	assert_true(config_set(&c, "client-timeout", "0") < 0);
	assert_int_equal(c.client_timeout_sec, 30);	/* a refused value changes nothing */
	config_done(&c);
}

static int key_index(const char *name)
{
	const char *key;

	for (unsigned i = 0; (key = config_key(i)); i++)
		if (streq(key, name))
			return (int) i;
	return -1;
}

static void test_live_flags(void **state)
{
	assert_true(config_key_live((unsigned) key_index("client-timeout")));
	assert_true(config_key_live((unsigned) key_index("log-level")));
	assert_true(config_key_live((unsigned) key_index("request-key-uids")));
	assert_true(config_key_live((unsigned) key_index("barbican-timeout")));
	assert_true(config_key_live((unsigned) key_index("barbican-cache-ttl")));
	assert_false(config_key_live((unsigned) key_index("socket")));
	assert_false(config_key_live((unsigned) key_index("barbican-url")));
	assert_false(config_key_live((unsigned) key_index("barbican-cache")));
	assert_false(config_key_live(1000));
}

static void test_dropin_order(void **state)
{
	char etc[128], run[128], lib[128], link[160];
	const char *dirs[] = { etc, run, lib, NULL };
	char **l = NULL;
	struct config c;
	struct config_error e = {};
	int n;

	snprintf(etc, sizeof(etc), "%s/etc", root);
	snprintf(run, sizeof(run), "%s/run", root);
	snprintf(lib, sizeof(lib), "%s/lib", root);
	put("main.conf", "client-timeout = 11\nlinger = 1\n");
	put("lib/10-vendor.conf", "client-timeout = 12\nmax-clients = 7\n");
	put("run/10-vendor.conf", "client-timeout = 13\n");	/* masks lib's */
	put("lib/20-vendor.conf", "linger = 2\n");
	put("etc/05-admin.conf", "linger = 3\n");		/* sorts first: lib's 20 wins */
	put("lib/30-masked.conf", "linger = 4\n");
	put("etc/40-notconf.txt", "linger = 5\n");
	snprintf(link, sizeof(link), "%s/30-masked.conf", etc);
	assert_int_equal(symlink("/dev/null", link), 0);

	n = config_dropins(dirs, &l, &e);
	assert_int_equal(n, 3);
	assert_non_null(strstr(l[0], "/etc/05-admin.conf"));
	assert_non_null(strstr(l[1], "/run/10-vendor.conf"));
	assert_non_null(strstr(l[2], "/lib/20-vendor.conf"));
	assert_null(l[3]);
	config_strv_free(l);

	snprintf(link, sizeof(link), "%s/main.conf", root);
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(config_load_all(&c, link, true, dirs, &e), 0);
	assert_int_equal(c.client_timeout_sec, 13);
	assert_int_equal(c.linger_sec, 2);
	assert_int_equal(c.max_clients, 256);	/* lib's 10-vendor.conf is masked whole */
	assert_string_equal(config_value(&c, (unsigned) key_index("client-timeout")), "13");
	assert_string_equal(config_value(&c, (unsigned) key_index("socket")),
			    KEYSCOPE_SOCKET_PATH);
	config_done(&c);
}

static void test_errors(void **state)
{
	char main_path[128], etc[128];
	const char *dirs[] = { etc, NULL };
	struct config_error e = {};
	struct config c;

	snprintf(main_path, sizeof(main_path), "%s/main.conf", root);
	snprintf(etc, sizeof(etc), "%s/etc", root);
	put("main.conf", "# fine\nclient-timeout = 5\n");
	put("etc/50-bad.conf", "\n\nclient-timeout = soon\n");
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(config_load_all(&c, main_path, true, dirs, &e), -EINVAL);
	assert_non_null(strstr(e.path, "/etc/50-bad.conf"));
	assert_int_equal(e.line, 3);
	assert_string_equal(e.message, "invalid value for 'client-timeout'");
	config_done(&c);

	put("etc/50-bad.conf", "what = 1\n");
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(config_load_all(&c, main_path, true, dirs, &e), -EINVAL);
	assert_int_equal(e.line, 1);
	assert_string_equal(e.message, "unknown option 'what'");
	config_done(&c);
	unlink(strcat(etc, "/50-bad.conf"));

	/* A missing default file is fine; a missing named one is not. */
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(config_load(&c, "/nonexistent/keyscoped.conf", false, &e), 0);
	assert_int_equal(config_load(&c, "/nonexistent/keyscoped.conf", true, &e), -ENOENT);
	assert_int_equal(e.line, 0);
	assert_non_null(strstr(e.message, "/nonexistent/keyscoped.conf"));
	config_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_live_flags),
		cmocka_unit_test(test_dropin_order),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
