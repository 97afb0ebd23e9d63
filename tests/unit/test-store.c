/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The embedded key store: the sealed format as pure functions (round trips, truncation, bit
 * flips, wrong master key or key-id, malformed headers) and the store on disk in a mkdtemp()
 * directory (master key creation and checks, create/import/get/clone/delete/list, tampered,
 * renamed and foreign files, invalid key-ids at every entry point).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "secret.h"
#include "store.h"
#include "store-internal.h"
#include "util.h"

#define HDR 36
#define TAG 16

static const uint8_t master_a[STORE_MASTER_KEY_SIZE] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
};
static const char id_a[] = "6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01";
static const char id_b[] = "6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e02";

/* Every one of these must be refused with -EINVAL by every entry point. */
static const char *invalid_ids[] = {
	"", "a/b", "..", "a b", "a\nb", ".x", "keyscope:x", "-x", "_x", "a..b", "/", "a/../b",
	"a\tb", "\xc3\xa9", NULL, /* the 5000-character id is added by the tests */
};

static const uint8_t *key_bytes(size_t len)
{
	static uint8_t k[64];

	for (size_t i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t) (0xa0 ^ (i * 7));
	return len <= sizeof(k) ? k : NULL;
}

static char *long_id(void)
{
	char *s = malloc(5001);

	assert_non_null(s);
	memset(s, 'a', 5000);
	s[5000] = 0;
	return s;
}

static uint8_t *seal(const char *id, size_t key_len, const char *name, size_t *ret_size)
{
	uint8_t *blob = NULL;

	assert_int_equal(store_seal(master_a, id, key_bytes(key_len), key_len, name, 1700000000,
				    &blob, ret_size), 0);
	assert_non_null(blob);
	return blob;
}

/* A failing call must leave its output parameters alone. */
static void assert_unseal_refused(const char *id, const uint8_t *blob, size_t size, int error)
{
	struct secret_buf key = { .data = (unsigned char *) 0x1, .len = 4242 };
	struct store_entry e, sentinel;

	memset(&e, 0x5a, sizeof(e));
	memset(&sentinel, 0x5a, sizeof(sentinel));
	assert_int_equal(store_unseal(master_a, id, blob, size, &key, &e), error);
	assert_ptr_equal(key.data, (unsigned char *) 0x1);
	assert_int_equal(key.len, 4242);
	assert_memory_equal(&e, &sentinel, sizeof(e));
}

static void assert_header_refused(const char *id, const uint8_t *blob, size_t size, int error)
{
	struct store_entry e, sentinel;

	memset(&e, 0x5a, sizeof(e));
	memset(&sentinel, 0x5a, sizeof(sentinel));
	assert_int_equal(store_parse_header(id, blob, size, &e), error);
	assert_memory_equal(&e, &sentinel, sizeof(e));
}

/* ---- the sealed format ------------------------------------------------------------------ */

static void roundtrip_one(size_t key_len, const char *name)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	_cleanup_free_ uint8_t *blob = NULL;
	struct store_entry e, h;
	size_t size;

	blob = seal(id_a, key_len, name, &size);
	assert_int_equal(size, HDR + (name ? strlen(name) : 0) + key_len + TAG);
	assert_memory_equal(blob, "KSCPKEY1", 8);
	assert_int_equal(store_unseal(master_a, id_a, blob, size, &key, &e), 0);
	assert_int_equal(key.len, key_len);
	assert_memory_equal(key.data, key_bytes(key_len), key_len);
	assert_string_equal(e.id, id_a);
	assert_string_equal(e.name, name ? name : "");
	assert_int_equal(e.bits, key_len * 8);
	assert_int_equal(e.created, 1700000000);
	assert_int_equal(store_parse_header(id_a, blob, size, &h), 0);
	assert_memory_equal(&e, &h, sizeof(e));
	/* The ciphertext is not the key. */
	assert_memory_not_equal(blob + size - TAG - key_len, key_bytes(key_len), key_len);
}

static void test_seal_roundtrip(void **state)
{
	char longest[STORE_NAME_MAX + 1];
	const char *names[] = { NULL, "", "volume-1", "snap of vol 7 (daily)",
				"\xc3\xbc" "n" "\xc3\xaf" "c" "\xc3\xb8" "d" "\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\x91",
				longest };

	memset(longest, 'n', STORE_NAME_MAX);
	longest[STORE_NAME_MAX] = 0;
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		roundtrip_one(32, names[i]);
		roundtrip_one(64, names[i]);
	}
}

static void test_seal_fresh_nonce(void **state)
{
	_cleanup_free_ uint8_t *a = NULL, *b = NULL;
	size_t sa, sb;

	a = seal(id_a, 32, "x", &sa);
	b = seal(id_a, 32, "x", &sb);
	assert_int_equal(sa, sb);
	assert_memory_not_equal(a + 24, b + 24, 12);
	assert_memory_not_equal(a + sa - TAG - 32, b + sb - TAG - 32, 32 + TAG);
}

static void test_unseal_truncated(void **state)
{
	for (size_t key_len = 32; key_len <= 64; key_len += 32) {
		_cleanup_free_ uint8_t *blob = NULL;
		size_t size;

		blob = seal(id_a, key_len, "name", &size);
		for (size_t n = 0; n < size; n++) {
			/* A copy of exactly n bytes, so ASan sees any read past the end. */
			_cleanup_free_ uint8_t *t = malloc(n ? n : 1);

			assert_non_null(t);
			memcpy(t, blob, n);
			assert_unseal_refused(id_a, t, n, -EBADMSG);
			assert_header_refused(id_a, t, n, -EBADMSG);
		}
	}
}

static void test_unseal_bitflip(void **state)
{
	_cleanup_free_ uint8_t *blob = NULL;
	size_t size, n = 0;

	blob = seal(id_a, 64, "volume", &size);
	for (size_t i = 0; i < size; i++)
		for (int bit = 0; bit < 8; bit++, n++) {
			blob[i] ^= (uint8_t) (1u << bit);
			assert_unseal_refused(id_a, blob, size, -EBADMSG);
			blob[i] ^= (uint8_t) (1u << bit);
		}
	assert_int_equal(n, size * 8);
	assert_int_equal(store_unseal(master_a, id_a, blob, size, NULL, NULL), 0);
}

static void test_unseal_trailing_garbage(void **state)
{
	_cleanup_free_ uint8_t *blob = NULL, *big = NULL;
	size_t size;

	blob = seal(id_a, 32, NULL, &size);
	big = calloc(1, size + 400);
	assert_non_null(big);
	memcpy(big, blob, size);
	for (size_t extra = 1; extra <= 400; extra++) {
		assert_unseal_refused(id_a, big, size + extra, -EBADMSG);
		assert_header_refused(id_a, big, size + extra, -EBADMSG);
	}
}

static void test_unseal_wrong_master(void **state)
{
	_cleanup_free_ uint8_t *blob = NULL;
	uint8_t other[STORE_MASTER_KEY_SIZE];
	struct secret_buf key = {};
	size_t size;

	blob = seal(id_a, 32, "v", &size);
	for (size_t i = 0; i < sizeof(other); i++) {
		memcpy(other, master_a, sizeof(other));
		other[i] ^= 0x80;
		assert_int_equal(store_unseal(other, id_a, blob, size, &key, NULL), -EBADMSG);
		assert_null(key.data);
	}
}

static void test_unseal_wrong_id(void **state)
{
	const char *others[] = { id_b, "6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e0", "x",
				 "6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e011",
				 "6F1C2F1E-4C1B-4B7E-9A55-0C4A0D2B9E01" };
	_cleanup_free_ uint8_t *blob = NULL;
	size_t size;

	blob = seal(id_a, 32, "v", &size);
	for (size_t i = 0; i < ELEMENTSOF(others); i++)
		assert_unseal_refused(others[i], blob, size, -EBADMSG);
}

/* A blob whose header is valid unless the caller breaks it; the tag is not valid. */
static size_t build_blob(uint8_t *b, unsigned key_len, const void *name, size_t name_len)
{
	memset(b, 0, 512);
	memcpy(b, "KSCPKEY1", 8);
	b[8] = 1;
	b[10] = (uint8_t) key_len;
	b[11] = (uint8_t) (key_len >> 8);
	b[12] = (uint8_t) name_len;
	b[13] = (uint8_t) (name_len >> 8);
	memcpy(b + HDR, name, name_len);
	return HDR + name_len + key_len + TAG;
}

static void test_parse_header_fields(void **state)
{
	static const char *bad_names[] = {
		"a\nb", "\t", "x\x7f", "\x1b[31m", "\xff", "\xc0\x80", "\xc1\xbf", "\xe0\x80\xaf",
		"\xed\xa0\x80", "\xe2\x82", "\xc2\x85", "\xe2\x80\xae", "\xe2\x81\xa6", "\xf4\x90\x80\x80",
		"\xf8\x88\x80\x80\x80", "\xe2\x80\xa8",
	};
	uint8_t b[512];
	struct store_entry e;
	size_t size;

	size = build_blob(b, 64, "ok", 2);
	assert_int_equal(store_parse_header(id_a, b, size, &e), 0);
	assert_string_equal(e.name, "ok");
	assert_int_equal(e.bits, 512);
	assert_unseal_refused(id_a, b, size, -EBADMSG); /* tag */

	for (unsigned v = 0; v < 4; v++) {
		size = build_blob(b, 32, "", 0);
		b[8] = (uint8_t) v;
		assert_int_equal(store_parse_header(id_a, b, size, &e), v == 1 ? 0 : -EBADMSG);
	}
	size = build_blob(b, 32, "", 0);
	b[9] = 1; /* version 257 */
	assert_header_refused(id_a, b, size, -EBADMSG);
	for (size_t i = 0; i < 2; i++) {
		size = build_blob(b, 32, "", 0);
		b[14 + i] = 1; /* reserved */
		assert_header_refused(id_a, b, size, -EBADMSG);
	}
	size = build_blob(b, 32, "", 0);
	b[0] = 'k';
	assert_header_refused(id_a, b, size, -EBADMSG);

	for (unsigned kl = 0; kl <= 300; kl++)
		if (kl != 32 && kl != 64) {
			size = build_blob(b, 0, "", 0);
			b[10] = (uint8_t) kl;
			b[11] = (uint8_t) (kl >> 8);
			assert_header_refused(id_a, b, HDR + kl + TAG, -EBADMSG);
		}
	/* name_len 256: the blob size matches it, the limit does not. */
	size = build_blob(b, 32, "", 0);
	b[12] = 0;
	b[13] = 1;
	memset(b + HDR, 'a', 256);
	assert_header_refused(id_a, b, HDR + 256 + 32 + TAG, -EBADMSG);

	for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
		size = build_blob(b, 32, bad_names[i], strlen(bad_names[i]));
		assert_header_refused(id_a, b, size, -EBADMSG);
	}
	size = build_blob(b, 32, "a\0b", 3);
	assert_header_refused(id_a, b, size, -EBADMSG);
}

static void test_seal_invalid_args(void **state)
{
	static const size_t bad_lens[] = { 0, 1, 16, 31, 33, 48, 63, 65, 128 };
	static const char *bad_names[] = { "\n", "a\tb", "\x7f", "\x1b[2J", "\xff", "\xc2\x85",
					   "\xe2\x80\xae", "\xed\xa0\x80", "\xe2\x82" };
	char too_long[STORE_NAME_MAX + 2];
	uint8_t *blob = (uint8_t *) 0x1;
	size_t size = 77;

	memset(too_long, 'n', STORE_NAME_MAX + 1);
	too_long[STORE_NAME_MAX + 1] = 0;
	for (size_t i = 0; i < ELEMENTSOF(bad_lens); i++)
		assert_int_equal(store_seal(master_a, id_a, key_bytes(64), bad_lens[i], NULL, 0,
					    &blob, &size), -EINVAL);
	for (size_t i = 0; i < ELEMENTSOF(bad_names); i++)
		assert_int_equal(store_seal(master_a, id_a, key_bytes(32), 32, bad_names[i], 0,
					    &blob, &size), -EINVAL);
	assert_int_equal(store_seal(master_a, id_a, key_bytes(32), 32, too_long, 0, &blob, &size),
			 -EINVAL);
	assert_int_equal(store_seal(master_a, id_a, NULL, 32, NULL, 0, &blob, &size), -EINVAL);
	assert_ptr_equal(blob, (uint8_t *) 0x1);
	assert_int_equal(size, 77);
}

static void test_format_invalid_ids(void **state)
{
	_cleanup_free_ uint8_t *blob = NULL;
	_cleanup_free_ char *lid = long_id();
	uint8_t *out = (uint8_t *) 0x1;
	size_t size, osize = 77;

	blob = seal(id_a, 32, NULL, &size);
	invalid_ids[ELEMENTSOF(invalid_ids) - 1] = lid;
	for (size_t i = 0; i < ELEMENTSOF(invalid_ids); i++) {
		const char *id = invalid_ids[i];

		assert_int_equal(store_seal(master_a, id, key_bytes(32), 32, NULL, 0, &out, &osize),
				 -EINVAL);
		assert_unseal_refused(id, blob, size, -EINVAL);
		assert_header_refused(id, blob, size, -EINVAL);
	}
	assert_int_equal(store_parse_header(NULL, blob, size, NULL), -EINVAL);
	assert_int_equal(store_unseal(master_a, NULL, blob, size, NULL, NULL), -EINVAL);
	assert_ptr_equal(out, (uint8_t *) 0x1);
	assert_int_equal(osize, 77);
	invalid_ids[ELEMENTSOF(invalid_ids) - 1] = NULL;
}

/* ---- the store on disk ------------------------------------------------------------------ */

struct fixture {
	char *dir;	/* mkdtemp() */
	char *state;	/* dir/state: store_open() creates it */
	struct store *s;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test-store-XXXXXX";

	if (!f || !mkdtemp(tmpl))
		return -1;
	f->dir = strdup(tmpl);
	f->state = path_join(tmpl, "state");
	if (!f->dir || !f->state || store_open(f->state, &f->s) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_free(f->s);
	(void) nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f->state);
	free(f->dir);
	free(f);
	return 0;
}

static char *fpath(struct fixture *f, const char *rel)
{
	char *p = path_join(f->state, rel);

	assert_non_null(p);
	return p;
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void write_bytes(const char *path, const void *p, size_t n, unsigned mode)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(loop_write(fd, p, n), 0);
}

static void read_key_file(struct fixture *f, const char *id, char **ret, size_t *ret_size)
{
	assert_int_equal(read_full_file(store_path(f->s, id), 4096, ret, ret_size), 0);
}

static void assert_get_refused(struct store *s, const char *id, int error)
{
	struct secret_buf key = { .data = (unsigned char *) 0x1, .len = 4242 };
	struct store_entry e, sentinel;

	memset(&e, 0x5a, sizeof(e));
	memset(&sentinel, 0x5a, sizeof(sentinel));
	assert_int_equal(store_get(s, id, &key), error);
	assert_int_equal(store_stat(s, id, &e), error);
	assert_ptr_equal(key.data, (unsigned char *) 0x1);
	assert_int_equal(key.len, 4242);
	assert_memory_equal(&e, &sentinel, sizeof(e));
}

static void assert_get_equals(struct store *s, const char *id, const void *k, size_t len)
{
	_cleanup_secret_buf_ struct secret_buf key = {};

	assert_int_equal(store_get(s, id, &key), 0);
	assert_int_equal(key.len, len);
	assert_memory_equal(key.data, k, len);
}

static void assert_get_ok(struct store *s, const char *id)
{
	_cleanup_secret_buf_ struct secret_buf key = {};

	assert_int_equal(store_get(s, id, &key), 0);
	assert_true(key.len == 32 || key.len == 64);
}

static void test_open_creates_master(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *mk = fpath(f, "master.key"), *keys = fpath(f, "keys");
	_cleanup_free_ char *before = NULL, *after = NULL;
	char id[KEYID_MAX + 1];
	size_t n1, n2;
	struct stat st;

	assert_int_equal(lstat(mk, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(st.st_size, 32);
	assert_int_equal(stat(f->state, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(keys, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(count_entries(f->state), 2); /* no temporary file left behind */

	assert_int_equal(store_create(f->s, 256, "kept", id), 0);
	assert_int_equal(read_full_file(mk, 64, &before, &n1), 0);
	f->s = store_free(f->s);
	assert_int_equal(store_open(f->state, &f->s), 0);
	assert_int_equal(read_full_file(mk, 64, &after, &n2), 0);
	assert_int_equal(n1, 32);
	assert_int_equal(n2, 32);
	assert_memory_equal(before, after, 32);
	assert_get_ok(f->s, id);
}

static void assert_open_refused(const char *dir, int error)
{
	struct store *s = (struct store *) 0x1;

	assert_int_equal(store_open(dir, &s), error);
	assert_ptr_equal(s, (struct store *) 0x1);
}

static void test_open_master_checks(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *mk = fpath(f, "master.key"), *other = fpath(f, "other");
	static const mode_t bad_modes[] = { 0644, 0440, 0404, 0602, 0410, 0401, 0500, 0700,
					    04400, 02400, 01400 };
	static const size_t bad_sizes[] = { 0, 1, 31, 33, 64, 4096 };
	_cleanup_free_ char *orig = NULL;
	struct store *s = NULL;
	size_t n;

	f->s = store_free(f->s);
	assert_int_equal(read_full_file(mk, 64, &orig, &n), 0);
	for (size_t i = 0; i < ELEMENTSOF(bad_modes); i++) {
		assert_int_equal(chmod(mk, bad_modes[i]), 0);
		assert_open_refused(f->state, -EPERM);
	}
	assert_int_equal(chmod(mk, 0600), 0);
	assert_int_equal(store_open(f->state, &s), 0);
	s = store_free(s);

	for (size_t i = 0; i < ELEMENTSOF(bad_sizes); i++) {
		_cleanup_free_ char *junk = calloc(1, bad_sizes[i] + 1);

		assert_int_equal(unlink(mk), 0);
		write_bytes(mk, junk, bad_sizes[i], 0400);
		assert_open_refused(f->state, -EBADMSG);
	}
	/* Not a regular file: symlink, directory, FIFO (must not hang). */
	write_bytes(other, orig, 32, 0400);
	assert_int_equal(unlink(mk), 0);
	assert_int_equal(symlink(other, mk), 0);
	assert_open_refused(f->state, -EBADMSG);
	assert_int_equal(unlink(mk), 0);
	assert_int_equal(mkdir(mk, 0700), 0);
	assert_open_refused(f->state, -EBADMSG);
	assert_int_equal(rmdir(mk), 0);
	assert_int_equal(mkfifo(mk, 0600), 0);
	assert_open_refused(f->state, -EBADMSG);
	assert_int_equal(unlink(mk), 0);

	write_bytes(mk, orig, 32, 0400);
	if (geteuid() == 0) {
		assert_int_equal(chown(mk, 65534, 65534), 0);
		assert_open_refused(f->state, -EPERM);
		assert_int_equal(chown(mk, 0, 0), 0);
	} else
		print_message("owner check skipped: chown() to another uid needs root\n");
	assert_int_equal(store_open(f->state, &f->s), 0);
	assert_open_refused("", -EINVAL);
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	char id256[KEYID_MAX + 1], id512[KEYID_MAX + 1], id32[KEYID_MAX + 1];
	char id64[KEYID_MAX + 1], clone[KEYID_MAX + 1];
	_cleanup_secret_buf_ struct secret_buf k256 = {}, k512 = {};
	_cleanup_free_ struct store_entry *list = NULL;
	struct store_entry e;
	const char *sorted[5];
	struct stat st;
	size_t n;

	assert_int_equal(store_create(f->s, 256, "vol-1", id256), 0);
	assert_int_equal(store_create(f->s, 512, NULL, id512), 0);
	assert_int_equal(store_import(f->s, key_bytes(32), 32, "imported", id32), 0);
	assert_int_equal(store_import(f->s, key_bytes(64), 64, "", id64), 0);
	assert_true(keyid_is_valid(id256) && strlen(id256) == 36);
	assert_int_equal(store_get(f->s, id256, &k256), 0);
	assert_int_equal(store_get(f->s, id512, &k512), 0);
	assert_int_equal(k256.len, 32);
	assert_int_equal(k512.len, 64);
	assert_memory_not_equal(k512.data, k512.data + 32, 32);
	assert_get_equals(f->s, id32, key_bytes(32), 32);
	assert_get_equals(f->s, id64, key_bytes(64), 64);

	assert_int_equal(store_stat(f->s, id256, &e), 0);
	assert_string_equal(e.id, id256);
	assert_string_equal(e.name, "vol-1");
	assert_int_equal(e.bits, 256);
	assert_true(e.created + 60 >= (uint64_t) time(NULL) && e.created <= (uint64_t) time(NULL));
	assert_int_equal(stat(store_path(f->s, id256), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(store_clone(f->s, id256, "clone", clone), 0);
	assert_string_not_equal(clone, id256);
	assert_get_equals(f->s, clone, k256.data, 32);
	assert_int_equal(store_delete(f->s, id256), 0);
	assert_get_refused(f->s, id256, -ENOENT);
	assert_int_equal(store_delete(f->s, id256), -ENOENT);
	assert_int_equal(store_clone(f->s, id256, NULL, (char[KEYID_MAX + 1]) {}), -ENOENT);
	assert_get_equals(f->s, clone, k256.data, 32);

	assert_int_equal(store_list(f->s, &list, &n, NULL, NULL), 0);
	assert_int_equal(n, 4);
	sorted[0] = id512, sorted[1] = id32, sorted[2] = id64, sorted[3] = clone;
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			assert_true(strcmp(list[i - 1].id, list[i].id) < 0);
		for (size_t j = 0; j < 4; j++)
			if (sorted[j] && streq(list[i].id, sorted[j]))
				sorted[j] = NULL;
		if (streq(list[i].id, clone))
			assert_string_equal(list[i].name, "clone");
	}
	assert_true(!sorted[0] && !sorted[1] && !sorted[2] && !sorted[3]);
	assert_int_equal(count_entries(store_path(f->s, "")), 4);
}

static void test_create_import_invalid(void **state)
{
	static const unsigned bad_bits[] = { 0, 1, 128, 192, 255, 257, 384, 511, 513, 1024 };
	static const size_t bad_lens[] = { 0, 1, 16, 31, 33, 48, 63, 65, 128 };
	struct fixture *f = *state;
	char id[KEYID_MAX + 1] = "untouched";
	char too_long[STORE_NAME_MAX + 2];

	for (size_t i = 0; i < ELEMENTSOF(bad_bits); i++)
		assert_int_equal(store_create(f->s, bad_bits[i], NULL, id), -EINVAL);
	for (size_t i = 0; i < ELEMENTSOF(bad_lens); i++)
		assert_int_equal(store_import(f->s, key_bytes(64), bad_lens[i], NULL, id), -EINVAL);
	assert_int_equal(store_import(f->s, NULL, 32, NULL, id), -EINVAL);
	memset(too_long, 'n', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = 0;
	assert_int_equal(store_create(f->s, 256, too_long, id), -EINVAL);
	assert_int_equal(store_create(f->s, 256, "a\nb", id), -EINVAL);
	assert_int_equal(store_import(f->s, key_bytes(32), 32, "\x1b[31m", id), -EINVAL);
	assert_string_equal(id, "untouched");
	assert_int_equal(count_entries(store_path(f->s, "")), 0);
	too_long[STORE_NAME_MAX] = 0;
	assert_int_equal(store_create(f->s, 256, too_long, id), 0);
}

static void test_invalid_ids(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *lid = long_id();
	char out[KEYID_MAX + 1] = "untouched", valid[KEYID_MAX + 1], keys[4096];

	assert_int_equal(store_create(f->s, 256, NULL, valid), 0);
	snprintf(keys, sizeof(keys), "%s", store_path(f->s, ""));
	invalid_ids[ELEMENTSOF(invalid_ids) - 1] = lid;
	for (size_t i = 0; i < ELEMENTSOF(invalid_ids); i++) {
		const char *id = invalid_ids[i];

		assert_get_refused(f->s, id, -EINVAL);
		assert_int_equal(store_clone(f->s, id, NULL, out), -EINVAL);
		assert_int_equal(store_delete(f->s, id), -EINVAL);
		assert_string_equal(store_path(f->s, id), keys);
	}
	assert_get_refused(f->s, NULL, -EINVAL);
	assert_int_equal(store_delete(f->s, NULL), -EINVAL);
	invalid_ids[ELEMENTSOF(invalid_ids) - 1] = NULL;
	assert_string_equal(out, "untouched");
	assert_int_equal(count_entries(f->state), 2);
	assert_int_equal(count_entries(keys), 1);
	assert_get_ok(f->s, valid);
}

static void test_get_tampered(void **state)
{
	struct fixture *f = *state;
	_cleanup_secret_buf_ struct secret_buf good = {};
	_cleanup_free_ char *blob = NULL;
	_cleanup_free_ uint8_t *big = NULL;
	char id[KEYID_MAX + 1], path[4096];
	size_t size;

	assert_int_equal(store_create(f->s, 512, "tamper me", id), 0);
	assert_int_equal(store_get(f->s, id, &good), 0);
	read_key_file(f, id, &blob, &size);
	snprintf(path, sizeof(path), "%s", store_path(f->s, id));
	for (size_t i = 0; i < size; i++)
		for (int bit = 0; bit < 8; bit++) {
			blob[i] ^= (char) (1u << bit);
			write_bytes(path, blob, size, 0600);
			assert_get_refused(f->s, id, -EBADMSG);
			blob[i] ^= (char) (1u << bit);
		}
	for (size_t n = 0; n < size; n++) {
		write_bytes(path, blob, n, 0600);
		assert_get_refused(f->s, id, -EBADMSG);
	}
	big = calloc(1, 1 << 20);
	assert_non_null(big);
	memcpy(big, blob, size);
	for (size_t n = size + 1; n <= (1 << 20); n = n < size + 64 ? n + 1 : n * 4) {
		write_bytes(path, big, n, 0600);
		assert_get_refused(f->s, id, -EBADMSG);
	}
	/* The decryption context survives thousands of failures. */
	write_bytes(path, blob, size, 0600);
	assert_get_equals(f->s, id, good.data, good.len);
}

static void test_get_renamed_and_foreign(void **state)
{
	struct fixture *f = *state;
	char a[KEYID_MAX + 1], b[KEYID_MAX + 1], pa[4096], pc[4096];
	_cleanup_free_ char *blob = NULL, *other_state = NULL;
	struct store *other = NULL;
	size_t size;

	assert_int_equal(store_create(f->s, 256, NULL, a), 0);
	assert_int_equal(store_create(f->s, 256, NULL, b), 0);
	read_key_file(f, a, &blob, &size);
	/* a's file under b's name */
	write_bytes(store_path(f->s, b), blob, size, 0600);
	assert_get_refused(f->s, b, -EBADMSG);
	/* a's file renamed to a fresh id */
	snprintf(pa, sizeof(pa), "%s", store_path(f->s, a));
	snprintf(pc, sizeof(pc), "%s", store_path(f->s, "renamed-key"));
	assert_int_equal(rename(pa, pc), 0);
	assert_get_refused(f->s, "renamed-key", -EBADMSG);
	assert_get_refused(f->s, a, -ENOENT);
	assert_int_equal(rename(pc, pa), 0);
	assert_get_ok(f->s, a);

	/* a's file in a store with another master key */
	other_state = path_join(f->dir, "other");
	assert_int_equal(store_open(other_state, &other), 0);
	write_bytes(store_path(other, a), blob, size, 0600);
	assert_get_refused(other, a, -EBADMSG);
	store_free(other);
}

/*
 * A get caches the sealed file: a file replaced by rename (a restored backup), moved away or
 * removed behind the store's back must be seen by the next get, as an edit in place is.
 */
static void test_get_sees_changes(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *blob_a = NULL, *blob_b = NULL, *tmp = NULL, *moved = NULL;
	char a[KEYID_MAX + 1], b[KEYID_MAX + 1], path[4096];
	size_t size_a, size_b;

	assert_int_equal(store_create(f->s, 512, NULL, a), 0);
	assert_int_equal(store_create(f->s, 256, NULL, b), 0);
	assert_get_ok(f->s, a);
	assert_true(store_has(f->s, a));
	read_key_file(f, a, &blob_a, &size_a);
	read_key_file(f, b, &blob_b, &size_b);
	snprintf(path, sizeof(path), "%s", store_path(f->s, a));
	tmp = fpath(f, "keys/restore.tmp");
	/* b's file renamed over a's: sealed for another key-id, so refused. */
	write_bytes(tmp, blob_b, size_b, 0600);
	assert_int_equal(rename(tmp, path), 0);
	assert_get_refused(f->s, a, -EBADMSG);
	write_bytes(tmp, blob_a, size_a, 0600);
	assert_int_equal(rename(tmp, path), 0);
	assert_get_ok(f->s, a);
	moved = fpath(f, "moved.key");
	assert_int_equal(rename(path, moved), 0);
	assert_get_refused(f->s, a, -ENOENT);
	assert_false(store_has(f->s, a));
	assert_int_equal(rename(moved, path), 0);
	assert_get_ok(f->s, a);
	assert_int_equal(unlink(path), 0);
	assert_get_refused(f->s, a, -ENOENT);
	assert_int_equal(store_preload(f->s, a), -ENOENT);
	assert_int_equal(store_preload(f->s, b), 0);
}

/*
 * A get keeps the sealed file in the cache, so that the key's re-install after a release reads
 * no file (the warm install, issue 13); the compact entry gives back the file's exact bytes, for
 * both key sizes and the longest name; the cache never grows beyond its cap.
 */
static void test_cache_kept_after_get(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *blob = NULL, *name = NULL;
	_cleanup_free_ uint8_t *k = NULL;
	char a[KEYID_MAX + 1], b[KEYID_MAX + 1], c[KEYID_MAX + 1], id[KEYID_MAX + 1];
	struct store_entry e;
	size_t size, len = 64;

	k = malloc(len);
	name = malloc(STORE_NAME_MAX + 1);
	assert_non_null(k);
	assert_non_null(name);
	memset(k, 0x42, len);
	memset(name, 'n', STORE_NAME_MAX);
	name[STORE_NAME_MAX] = 0;
	assert_int_equal(store_import(f->s, k, len, name, a), 0);
	assert_int_equal(store_create(f->s, 256, NULL, b), 0);
	assert_int_equal(store_import(f->s, k, 32, "x", c), 0);
	assert_int_equal(store_cached(f->s), 0);
	assert_int_equal(store_preload(f->s, a), 0);
	assert_int_equal(store_preload(f->s, a), 0);
	assert_int_equal(store_cached(f->s), 1);
	assert_get_equals(f->s, a, k, len);	/* from the cache, which keeps it */
	assert_int_equal(store_cached(f->s), 1);
	assert_get_equals(f->s, a, k, len);
	assert_int_equal(store_stat(f->s, a, &e), 0);
	assert_string_equal(e.name, name);
	assert_int_equal(e.bits, 512);
	assert_get_equals(f->s, c, k, 32);	/* read, then kept */
	assert_int_equal(store_cached(f->s), 2);
	assert_get_equals(f->s, c, k, 32);
	assert_int_equal(store_stat(f->s, b, &e), 0);
	assert_int_equal(store_cached(f->s), 3);
	assert_get_ok(f->s, b);
	assert_int_equal(store_cached(f->s), 3);
	assert_int_equal(store_delete(f->s, c), 0);
	assert_int_equal(store_cached(f->s), 2);
	assert_get_refused(f->s, c, -ENOENT);

	/* A key-id that is not a lowercase UUID is served from its file, never cached. */
	read_key_file(f, b, &blob, &size);
	write_bytes(store_path(f->s, "not-a-uuid"), blob, size, 0600);
	assert_get_refused(f->s, "not-a-uuid", -EBADMSG);	/* sealed for b */
	assert_int_equal(store_preload(f->s, "not-a-uuid"), 0);
	assert_int_equal(store_cached(f->s), 2);

	/* 17,000 files read by existence checks: the cache stops at its cap. */
	for (int i = 0; i < 17000; i++) {
		snprintf(id, sizeof(id), "%08x-0000-4000-8000-000000000000", i);
		write_bytes(store_path(f->s, id), blob, size, 0600);
		assert_int_equal(store_preload(f->s, id), 0);
	}
	assert_int_equal(store_cached(f->s), 16384);
	assert_get_ok(f->s, b);
	assert_get_equals(f->s, a, k, len);
}

/* Sets path's access time 1,000 s before its modification time: relatime updates the next. */
static void age_atime(const char *path, struct stat *ret)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	st.st_atim = st.st_mtim;
	st.st_atim.tv_sec -= 1000;
	assert_int_equal(utimensat(AT_FDCWD, path, (struct timespec[2]) { st.st_atim, st.st_mtim },
				   0), 0);
	assert_int_equal(stat(path, ret), 0);
	assert_int_equal(ret->st_atim.tv_sec, st.st_atim.tv_sec);
}

/* Reading a key for a get writes nothing: not even its file's access time. */
static void test_get_keeps_atime(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *probe = path_join(f->dir, "probe");
	char id[KEYID_MAX + 1], c;
	struct stat before, after;
	int fd;

	/* Does this file system update access times at all (not mounted noatime)? */
	write_bytes(probe, "x", 1, 0600);
	age_atime(probe, &before);
	fd = open(probe, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, &c, 1), 1);
	close(fd);
	assert_int_equal(stat(probe, &after), 0);
	if (after.st_atim.tv_sec == before.st_atim.tv_sec) {
		print_message("skipped: %s does not update access times (noatime?)\n", f->dir);
		skip();
	}

	assert_int_equal(store_create(f->s, 256, NULL, id), 0);
	assert_int_equal(store_cached(f->s), 0);
	age_atime(store_path(f->s, id), &before);
	assert_get_ok(f->s, id);	/* read from its file */
	assert_int_equal(store_cached(f->s), 1);
	assert_int_equal(stat(store_path(f->s, id), &after), 0);
	assert_int_equal(after.st_atim.tv_sec, before.st_atim.tv_sec);
	assert_int_equal(after.st_atim.tv_nsec, before.st_atim.tv_nsec);
}

static void test_get_not_regular(void **state)
{
	struct fixture *f = *state;
	char a[KEYID_MAX + 1], p[4096];

	assert_int_equal(store_create(f->s, 256, NULL, a), 0);
	snprintf(p, sizeof(p), "%s", store_path(f->s, a));
	assert_int_equal(mkdir(store_path(f->s, "dir"), 0700), 0);
	assert_get_refused(f->s, "dir", -EBADMSG);
	assert_int_equal(symlink(p, store_path(f->s, "link")), 0);
	assert_get_refused(f->s, "link", -EBADMSG);
	assert_int_equal(mkfifo(store_path(f->s, "fifo"), 0600), 0);
	assert_get_refused(f->s, "fifo", -EBADMSG);
}

struct bad_report {
	size_t n;
	char paths[8][4096];
	int errors[8];
};

static void on_bad(const char *path, int error, void *userdata)
{
	struct bad_report *r = userdata;

	assert_true(r->n < 8);
	snprintf(r->paths[r->n], sizeof(r->paths[0]), "%s", path);
	r->errors[r->n++] = error;
}

static void test_list_bad_files(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ struct store_entry *list = NULL;
	struct bad_report rep = {};
	char ids[3][KEYID_MAX + 1];
	_cleanup_free_ char *junk = NULL;
	size_t n = 99;

	assert_int_equal(store_list(f->s, &list, &n, on_bad, &rep), 0);
	assert_int_equal(n, 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(store_create(f->s, i ? 512 : 256, i == 1 ? "one" : NULL, ids[i]), 0);
	write_bytes(store_path(f->s, "corrupt"), "KSCPKEY1 garbage", 16, 0600);
	assert_int_equal(mkdir(store_path(f->s, "dir"), 0700), 0);
	junk = path_join(store_path(f->s, ""), "README");
	write_bytes(junk, "x", 1, 0600);
	free(junk);
	junk = path_join(store_path(f->s, ""), "bad id.key");
	write_bytes(junk, "x", 1, 0600);
	free(junk);
	junk = path_join(store_path(f->s, ""), "x.key.tmp.123");
	write_bytes(junk, "x", 1, 0600);

	assert_int_equal(store_list(f->s, &list, &n, on_bad, &rep), 0);
	assert_int_equal(n, 3);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(list[i - 1].id, list[i].id) < 0);
	for (size_t i = 0; i < n; i++)
		if (streq(list[i].id, ids[1])) {
			assert_string_equal(list[i].name, "one");
			assert_int_equal(list[i].bits, 512);
		}
	assert_int_equal(rep.n, 2);
	for (size_t i = 0; i < rep.n; i++) {
		assert_int_equal(rep.errors[i], -EBADMSG);
		assert_true(streq(rep.paths[i], store_path(f->s, "corrupt")) ||
			    streq(rep.paths[i], store_path(f->s, "dir")));
	}
	free(list);
	list = NULL;
	rep.n = 0;
	assert_int_equal(store_list(f->s, &list, &n, NULL, NULL), 0);
	assert_int_equal(n, 3);
}

static void test_store_path(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *want = NULL;

	assert_true(asprintf(&want, "%s/keys/%s.key", f->state, id_a) > 0);
	assert_string_equal(store_path(f->s, id_a), want);
	want[strlen(want) - strlen(id_a) - 5] = 0;
	assert_string_equal(store_path(f->s, "a/../b"), want);
}

/* Not a pass/fail test: the cost of one store_get(), for the report and the benchmark. */
static void test_get_many(void **state)
{
	struct fixture *f = *state;
	char id[KEYID_MAX + 1];
	uint64_t t0, t1;

	assert_int_equal(store_create(f->s, 512, "bench", id), 0);
	t0 = now_usec();
	for (int i = 0; i < 10000; i++) {
		_cleanup_secret_buf_ struct secret_buf key = {};

		assert_int_equal(store_get(f->s, id, &key), 0);
	}
	t1 = now_usec();
	print_message("10000 store_get: %.3f s, %.2f us per call\n", (double) (t1 - t0) / 1e6,
		      (double) (t1 - t0) / 10000.0);
}

/* store_cache_key() as it was written first, a digit at a time: what the word-at-a-time one
 * must agree with. */
static bool cache_key_reference(const char *id, struct cache_key *ret)
{
	static const uint8_t at[16] = { 0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34 };

	if (strlen(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-')
		return false;
	for (size_t j = 0; j < 16; j++) {
		int v = 0;
		for (int d = 0; d < 2; d++) {
			char c = id[at[j] + d];
			if (c >= '0' && c <= '9')
				v = v << 4 | (c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v << 4 | (c - 'a' + 10);
			else
				return false;
		}
		ret->b[j] = (uint8_t) v;
	}
	return true;
}

static void check_cache_key(const char *id)
{
	struct cache_key want, got;
	bool w = cache_key_reference(id, &want), g = store_cache_key(id, &got);

	if (w != g)
		fail_msg("store_cache_key(\"%s\") %s it", id, g ? "took" : "refused");
	if (w)
		assert_memory_equal(want.b, got.b, sizeof(want.b));
}

/* Every byte value at every position of a UUID, and every length around 36. */
static void test_cache_key(void **state)
{
	static const char *ids[] = {
		"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
		"0123abcd-4567-89ef-fedc-ba9876543210", "6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01",
	};
	char id[64];

	for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
		check_cache_key(ids[i]);
		for (size_t at = 0; at < 37; at++)
			for (int c = 1; c < 256; c++) {
				strcpy(id, ids[i]);
				id[at] = (char) c;
				if (at == 36)
					id[37] = 0;
				check_cache_key(id);
			}
		for (size_t n = 0; n < 36; n++) {
			memcpy(id, ids[i], n);
			id[n] = 0;
			check_cache_key(id);
		}
	}
	check_cache_key("6F1C2F1E-4C1B-4B7E-9A55-0C4A0D2B9E01");
	check_cache_key("6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e012");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_roundtrip),
		cmocka_unit_test(test_seal_fresh_nonce),
		cmocka_unit_test(test_unseal_truncated),
		cmocka_unit_test(test_unseal_bitflip),
		cmocka_unit_test(test_unseal_trailing_garbage),
		cmocka_unit_test(test_unseal_wrong_master),
		cmocka_unit_test(test_unseal_wrong_id),
		cmocka_unit_test(test_parse_header_fields),
		cmocka_unit_test(test_seal_invalid_args),
		cmocka_unit_test(test_format_invalid_ids),
		cmocka_unit_test(test_cache_key),
		cmocka_unit_test_setup_teardown(test_open_creates_master, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_master_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_import_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_renamed_and_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_not_regular, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_sees_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_kept_after_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_keeps_atime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_bad_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_many, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
