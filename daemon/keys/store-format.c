/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sealed key file format (store.h): pure functions, no files. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>

#include "keyid.h"
#include "secret.h"
#include "store-internal.h"

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t) (p[0] | p[1] << 8);
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t) v;
}

int store_random_bytes(void *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = getrandom((uint8_t *) p + done, n - done, 0);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t) k;
	}
	return 0;
}

bool store_key_len_is_valid(size_t n)
{
	return n == 32 || n == 64;
}

/*
 * Names are shown in terminals and logs: code points that are not printable (C0 and C1
 * controls, DEL) or that reorder or hide text (bidi and line/paragraph separators) are refused.
 */
static bool codepoint_is_printable(uint32_t c)
{
	if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
		return false;
	if ((c >= 0x200e && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069))
		return false;
	return true;
}

/* Length of the well-formed UTF-8 sequence of a printable code point at s, or 0. */
static size_t utf8_printable_len(const uint8_t *s, size_t n)
{
	size_t len;
	uint32_t c;

	if (s[0] < 0x80)
		return codepoint_is_printable(s[0]) ? 1 : 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and code points beyond Unicode. */
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return codepoint_is_printable(c) ? len : 0;
}

static bool name_bytes_are_valid(const uint8_t *s, size_t n)
{
	if (n > STORE_NAME_MAX)
		return false;
	for (size_t i = 0, k; i < n; i += k) {
		k = utf8_printable_len(s + i, n - i);
		if (k == 0)
			return false;
	}
	return true;
}

/* NULL stands for the empty name. Returns the name's length, or -EINVAL. */
int store_name_check(const char *name)
{
	size_t n;

	if (!name)
		return 0;
	n = strnlen(name, STORE_NAME_MAX + 1);
	if (!name_bytes_are_valid((const uint8_t *) name, n))
		return -EINVAL;
	return (int) n;
}

/* All-or-nothing parse of untrusted bytes. Returns 0 or -EBADMSG. */
int store_blob_parse(const uint8_t *blob, size_t size, struct blob_view *ret)
{
	struct blob_view v = { .header = blob };

	if (!blob || size < HEADER_SIZE || size > BLOB_MAX)
		return -EBADMSG;
	if (memcmp(blob, STORE_MAGIC, STORE_MAGIC_SIZE) != 0 ||
	    get_le16(blob + OFF_VERSION) != STORE_VERSION || get_le16(blob + OFF_RESERVED) != 0)
		return -EBADMSG;
	v.key_len = get_le16(blob + OFF_KEY_LEN);
	v.name_len = get_le16(blob + OFF_NAME_LEN);
	if (!store_key_len_is_valid(v.key_len) || v.name_len > STORE_NAME_MAX)
		return -EBADMSG;
	if (size != HEADER_SIZE + v.name_len + v.key_len + TAG_SIZE)
		return -EBADMSG;
	v.created = get_le64(blob + OFF_CREATED);
	v.nonce = blob + OFF_NONCE;
	v.name = blob + HEADER_SIZE;
	v.ct = v.name + v.name_len;
	v.tag = v.ct + v.key_len;
	if (!name_bytes_are_valid(v.name, v.name_len))
		return -EBADMSG;
	*ret = v;
	return 0;
}

static void entry_fill(const char *id, const struct blob_view *v, struct store_entry *ret)
{
	memset(ret, 0, sizeof(*ret));
	memcpy(ret->id, id, strlen(id) + 1);
	memcpy(ret->name, v->name, v->name_len);
	ret->bits = (unsigned) v->key_len * 8;
	ret->created = v->created;
}

/*
 * Feeds AAD = key-id || header || name to an initialised GCM context, in one update: GCM's AAD
 * is a stream, so one update of the concatenation authenticates the same bytes as one update
 * per part, and each update costs ~500 instructions in the provider. None of it is secret.
 */
static int gcm_aad(EVP_CIPHER_CTX *ctx, const char *id, const uint8_t *header,
		   const uint8_t *name, size_t name_len)
{
	uint8_t aad[KEYID_MAX + HEADER_SIZE + STORE_NAME_MAX];
	size_t id_len = strnlen(id, KEYID_MAX + 1);
	int outl;

	if (id_len > KEYID_MAX || name_len > STORE_NAME_MAX)
		return -EINVAL;
	memcpy(aad, id, id_len);
	memcpy(aad + id_len, header, HEADER_SIZE);
	if (name_len > 0)
		memcpy(aad + id_len + HEADER_SIZE, name, name_len);
	if (EVP_CipherUpdate(ctx, NULL, &outl, aad, (int) (id_len + HEADER_SIZE + name_len)) != 1)
		return -EIO;
	return 0;
}

/* Fills the header of blob (nonce included) for a key of key_len and a name of name_len. */
static int header_build(uint8_t *blob, size_t key_len, size_t name_len, uint64_t created)
{
	memcpy(blob, STORE_MAGIC, STORE_MAGIC_SIZE);
	put_le16(blob + OFF_VERSION, STORE_VERSION);
	put_le16(blob + OFF_KEY_LEN, (uint16_t) key_len);
	put_le16(blob + OFF_NAME_LEN, (uint16_t) name_len);
	put_le16(blob + OFF_RESERVED, 0);
	put_le64(blob + OFF_CREATED, created);
	return store_random_bytes(blob + OFF_NONCE, NONCE_SIZE);
}

/* The one seal of the store: it checks the id, key and name itself, for every caller. */
int store_seal_blob(const EVP_CIPHER *cipher, const uint8_t *master, const char *id,
		     const void *key, size_t key_len, const char *name, uint64_t created,
		     uint8_t **ret, size_t *ret_size)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
	_cleanup_free_ uint8_t *blob = NULL;
	size_t size, name_len;
	uint8_t *ct;
	int outl, r;

	r = store_name_check(name);
	if (!keyid_is_valid(id) || !key || !store_key_len_is_valid(key_len) || r < 0)
		return -EINVAL;
	name_len = (size_t) r;
	size = HEADER_SIZE + name_len + key_len + TAG_SIZE;
	blob = malloc(size);
	ctx = EVP_CIPHER_CTX_new();
	if (!blob || !ctx)
		return -ENOMEM;
	r = header_build(blob, key_len, name_len, created);
	if (r < 0)
		return r;
	if (name_len > 0)
		memcpy(blob + HEADER_SIZE, name, name_len);
	ct = blob + HEADER_SIZE + name_len;
	if (EVP_EncryptInit_ex2(ctx, cipher, master, blob + OFF_NONCE, NULL) != 1)
		return -EIO;
	r = gcm_aad(ctx, id, blob, blob + HEADER_SIZE, name_len);
	if (r < 0)
		return r;
	if (EVP_EncryptUpdate(ctx, ct, &outl, key, (int) key_len) != 1 || outl != (int) key_len ||
	    EVP_EncryptFinal_ex(ctx, ct + key_len, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, ct + key_len) != 1)
		return -EIO;
	*ret = TAKE_PTR(blob);
	*ret_size = size;
	return 0;
}

/*
 * Authenticates and decrypts a parsed blob with ctx, a GCM decryption context already keyed
 * with the master key. ret_key may be NULL to authenticate only. Returns 0, -EBADMSG or -errno.
 */
int store_unseal_view(EVP_CIPHER_CTX *ctx, const char *id, const struct blob_view *v,
		       struct secret_buf *ret_key, struct store_entry *ret_entry)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	uint8_t tag[TAG_SIZE], final[TAG_SIZE];
	OSSL_PARAM params[2];
	int outl, r;

	r = secret_buf_new(v->key_len, &key);
	if (r < 0)
		return r;
	/* Only the nonce changes: the key schedule in ctx is reused. The expected tag goes with
	 * the init (the provider keeps it for the final), not through a ctrl of its own. */
	memcpy(tag, v->tag, TAG_SIZE);
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, TAG_SIZE);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_DecryptInit_ex2(ctx, NULL, NULL, v->nonce, params) != 1)
		return -EIO;
	r = gcm_aad(ctx, id, v->header, v->name, v->name_len);
	if (r < 0)
		return r;
	if (EVP_DecryptUpdate(ctx, key.data, &outl, v->ct, (int) v->key_len) != 1 ||
	    outl != (int) v->key_len)
		return -EIO;
	if (EVP_DecryptFinal_ex(ctx, final, &outl) != 1)
		return -EBADMSG;
	if (ret_entry)
		entry_fill(id, v, ret_entry);
	if (ret_key) {
		*ret_key = key;
		key = (struct secret_buf) {}; /* transferred */
	}
	return 0;
}

int store_gcm_decrypt_ctx_new(const EVP_CIPHER *cipher, const uint8_t *master,
			       EVP_CIPHER_CTX **ret)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (!ctx)
		return -ENOMEM;
	if (EVP_DecryptInit_ex2(ctx, cipher, master, NULL, NULL) != 1)
		return -EIO;
	*ret = TAKE_PTR(ctx);
	return 0;
}

EVP_CIPHER *store_gcm_fetch(void)
{
	return EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

int store_seal(const uint8_t master[static STORE_MASTER_KEY_SIZE], const char *id,
	       const void *key, size_t key_len, const char *name, uint64_t created,
	       uint8_t **ret, size_t *ret_size)
{
	_cleanup_(EVP_CIPHER_freep) EVP_CIPHER *cipher = store_gcm_fetch();

	if (!cipher)
		return -EOPNOTSUPP;
	return store_seal_blob(cipher, master, id, key, key_len, name, created, ret, ret_size);
}

/* The prologue of every unseal: a valid key-id, and a blob that parses before any cipher
 * work is done on it (garbage is refused cheaply). Returns 0, -EINVAL or -EBADMSG. */
static int unseal_prepare(const char *id, const uint8_t *blob, size_t size, struct blob_view *ret)
{
	if (!keyid_is_valid(id))
		return -EINVAL;
	return store_blob_parse(blob, size, ret);
}

/* store_unseal_view() of a blob with ctx, the store's own decryption context. */
int store_unseal_blob(EVP_CIPHER_CTX *ctx, const char *id, const uint8_t *blob, size_t size,
		       struct secret_buf *ret_key, struct store_entry *ret_entry)
{
	struct blob_view v;
	int r;

	r = unseal_prepare(id, blob, size, &v);
	if (r < 0)
		return r;
	return store_unseal_view(ctx, id, &v, ret_key, ret_entry);
}

int store_unseal(const uint8_t master[static STORE_MASTER_KEY_SIZE], const char *id,
		 const uint8_t *blob, size_t size, struct secret_buf *ret_key,
		 struct store_entry *ret_entry)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
	_cleanup_(EVP_CIPHER_freep) EVP_CIPHER *cipher = NULL;
	struct blob_view v;
	int r;

	r = unseal_prepare(id, blob, size, &v);
	if (r < 0)
		return r;
	cipher = store_gcm_fetch();
	if (!cipher)
		return -EOPNOTSUPP;
	r = store_gcm_decrypt_ctx_new(cipher, master, &ctx);
	if (r < 0)
		return r;
	return store_unseal_view(ctx, id, &v, ret_key, ret_entry);
}

int store_parse_header(const char *id, const uint8_t *blob, size_t size,
		       struct store_entry *ret_entry)
{
	struct blob_view v;
	int r;

	if (!keyid_is_valid(id))
		return -EINVAL;
	r = store_blob_parse(blob, size, &v);
	if (r < 0)
		return r;
	if (ret_entry)
		entry_fill(id, &v, ret_entry);
	return 0;
}
