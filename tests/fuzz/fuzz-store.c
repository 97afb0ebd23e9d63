/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness for the sealed key file format: arbitrary bytes go to store_parse_header()
 * and store_unseal() under a fixed master key and key-id. Whatever parses must agree between
 * the two, and a blob that unseals must seal and unseal again to the same key and entry. The
 * store's compact cache (store-cache.c) must give back every blob that parses byte for byte and
 * keep none that does not; the input's first bytes as a key-id must make a cache key only when
 * they are a lowercase UUID (a valid key-id), and that key must print back as them.
 *
 *   clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Ilib -Idaemon \
 *         lib/secret.c lib/util.c lib/keyid.c daemon/keys/store.c daemon/keys/store-format.c \
 *         daemon/keys/store-cache.c tests/fuzz/fuzz-store.c \
 *         $(pkg-config --cflags --libs libcrypto) -o fuzz-store
 *   mkdir -p corpus && ./fuzz-store -max_total_time=60 corpus tests/fuzz/corpus/store
 *
 * Built with -DFUZZ_STORE_SEEDS instead (and without -fsanitize=fuzzer) it is a program that
 * writes the seed corpus, sealed under the same master key and key-id, into the directory named
 * by its argument.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyid.h"
#include "secret.h"
#include "store-internal.h"
#include "store.h"

static const uint8_t fuzz_master[STORE_MASTER_KEY_SIZE] = {
	0x6b, 0x65, 0x79, 0x73, 0x63, 0x6f, 0x70, 0x65, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6d, 0x61,
	0x73, 0x74, 0x65, 0x72, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36,
};
static const char fuzz_id[] = "0b8e7d4c-1f2a-4e3b-8c5d-6a7b8c9d0e1f";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A blob that unsealed must survive another seal/unseal unchanged. */
static void check_reseal(const struct secret_buf *key, const struct store_entry *e)
{
	_cleanup_secret_buf_ struct secret_buf again = {};
	struct store_entry e2;
	uint8_t *blob = NULL;
	size_t n;

	if (store_seal(fuzz_master, fuzz_id, key->data, key->len, e->name, e->created, &blob,
		       &n) < 0)
		abort();
	if (store_unseal(fuzz_master, fuzz_id, blob, n, &again, &e2) < 0 ||
	    again.len != key->len || memcmp(again.data, key->data, key->len) != 0 ||
	    memcmp(e, &e2, sizeof(e2)) != 0)
		abort();
	free(blob);
}

/* The cache keeps exactly the blobs that parse, and gives them back unchanged. */
static void check_cache(const uint8_t *data, size_t size)
{
	static struct store_cache c;
	static bool ready;
	uint8_t buf[BLOB_MAX + 1];
	struct cache_key k;
	struct blob_view v;
	size_t n;

	if (!ready) {
		store_cache_init(&c, 4);
		ready = true;
	}
	if (!store_cache_key(fuzz_id, &k))
		abort();
	store_cache_put(&c, &k, data, size);
	n = store_cache_get(&c, &k, buf);
	if (store_blob_parse(data, size, &v) < 0) {
		if (n != 0)
			abort();	/* kept what does not parse */
	} else if (n != size || memcmp(buf, data, size) != 0)
		abort();
	store_cache_clear(&c);
}

static void check_cache_key(const uint8_t *data, size_t size)
{
	char id[48], back[40];
	struct cache_key k;
	size_t n = size < sizeof(id) - 1 ? size : sizeof(id) - 1;
	const uint8_t *b = k.b;

	memcpy(id, data, n);
	id[n] = 0;
	if (!store_cache_key(id, &k))
		return;
	snprintf(back, sizeof(back), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8],
		 b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	if (!keyid_is_valid(id) || strcmp(back, id) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	struct store_entry h, e;
	int rh, ru;

	check_cache(data, size);
	check_cache_key(data, size);

	memset(&h, 0, sizeof(h));
	memset(&e, 0, sizeof(e));
	rh = store_parse_header(fuzz_id, data, size, &h);
	ru = store_unseal(fuzz_master, fuzz_id, data, size, &key, &e);
	if (rh < 0 && ru >= 0)
		abort(); /* unsealed what does not parse */
	if (ru < 0) {
		if (key.data || key.len)
			abort(); /* output written on failure */
		return 0;
	}
	if (memcmp(&h, &e, sizeof(e)) != 0 || key.len * 8 != e.bits ||
	    strnlen(e.name, sizeof(e.name)) == sizeof(e.name))
		abort();
	check_reseal(&key, &e);
	return 0;
}

#ifdef FUZZ_STORE_SEEDS
static int write_seed(const char *dir, const char *file, size_t key_len, const char *name)
{
	uint8_t key[64], *blob = NULL;
	char path[4096];
	size_t n;
	FILE *f;
	int r;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t) (i * 37 + 11);
	r = store_seal(fuzz_master, fuzz_id, key, key_len, name, 1700000000, &blob, &n);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "we");
	if (!f || fwrite(blob, 1, n, f) != n || fclose(f) != 0)
		r = -1;
	free(blob);
	return r;
}

int main(int argc, char *argv[])
{
	char longest[STORE_NAME_MAX + 1];

	if (argc != 2) {
		fprintf(stderr, "Usage: %s DIRECTORY\n", argv[0]);
		return EXIT_FAILURE;
	}
	memset(longest, 'n', STORE_NAME_MAX);
	longest[STORE_NAME_MAX] = 0;
	if (write_seed(argv[1], "key32-noname", 32, NULL) < 0 ||
	    write_seed(argv[1], "key64-noname", 64, NULL) < 0 ||
	    write_seed(argv[1], "key32-name", 32, "volume-1") < 0 ||
	    write_seed(argv[1], "key64-utf8", 64, "sn\xc3\xa4pshot \xe2\x9c\x93") < 0 ||
	    write_seed(argv[1], "key64-name255", 64, longest) < 0) {
		fprintf(stderr, "Failed to write seeds to %s\n", argv[1]);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
#endif
