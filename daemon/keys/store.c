/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The embedded key store (format and contracts in store.h). Not thread-safe: one struct store
 * holds one path buffer and one decryption context; the daemon uses it from one thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "keyid.h"
#include "macro.h"
#include "secret.h"
#include "store.h"
#include "util.h"

#define STORE_MAGIC "KSCPKEY1"
#define STORE_MAGIC_SIZE 8
#define STORE_VERSION 1
#define NONCE_SIZE 12
#define TAG_SIZE 16
#define KEY_LEN_MAX 64
#define KEY_SUFFIX ".key"

/* Offsets of the header fields; the header is authenticated as AAD. */
enum {
	OFF_VERSION = 8,
	OFF_KEY_LEN = 10,
	OFF_NAME_LEN = 12,
	OFF_RESERVED = 14,
	OFF_CREATED = 16,
	OFF_NONCE = 24,
	HEADER_SIZE = 36,
	BLOB_MAX = HEADER_SIZE + STORE_NAME_MAX + KEY_LEN_MAX + TAG_SIZE,
};

struct store {
	char *keys_dir;
	uint8_t *master;		/* secret memory, STORE_MASTER_KEY_SIZE bytes */
	EVP_CIPHER *cipher;		/* fetched once */
	EVP_CIPHER_CTX *dec;		/* keyed once with the master key; each get sets the nonce */
	char path[PATH_MAX];		/* store_path() */
	void *cache;			/* tsearch(3) tree of struct cached_blob, by id */
};

/*
 * Sealed files as last read, keyed by key-id and checked against the file's identity and
 * times with one stat() per get: a hit saves open, fstat, read and close. The bytes are
 * ciphertext, so ordinary memory is fine; every get still parses and authenticates them.
 */
struct cached_blob {
	char id[KEYID_MAX + 1];
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	uint8_t blob[BLOB_MAX];
};

static int cached_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cached_blob *) a)->id, ((const struct cached_blob *) b)->id);
}

static bool cached_matches(const struct cached_blob *c, const struct stat *st)
{
	return c->dev == st->st_dev && c->ino == st->st_ino && c->size == st->st_size &&
	       c->mtime.tv_sec == st->st_mtim.tv_sec && c->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       c->ctime.tv_sec == st->st_ctim.tv_sec && c->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void cache_forget(struct store *s, const char *id)
{
	struct cached_blob key, **node;
	struct cached_blob *c;

	if (strlen(id) > KEYID_MAX)
		return;
	strcpy(key.id, id);
	node = tfind(&key, &s->cache, cached_cmp);
	if (!node)
		return;
	c = *node;
	tdelete(c, &s->cache, cached_cmp);
	free(c);
}

/* A parsed blob: pointers into the caller's bytes. */
struct blob_view {
	size_t key_len;
	size_t name_len;
	uint64_t created;
	const uint8_t *header, *nonce, *name, *ct, *tag;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER *, EVP_CIPHER_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct store *, store_free);

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

static int random_bytes(void *p, size_t n)
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

static bool key_len_is_valid(size_t n)
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
static int name_check(const char *name)
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
static int blob_parse(const uint8_t *blob, size_t size, struct blob_view *ret)
{
	struct blob_view v = { .header = blob };

	if (!blob || size < HEADER_SIZE || size > BLOB_MAX)
		return -EBADMSG;
	if (memcmp(blob, STORE_MAGIC, STORE_MAGIC_SIZE) != 0 ||
	    get_le16(blob + OFF_VERSION) != STORE_VERSION || get_le16(blob + OFF_RESERVED) != 0)
		return -EBADMSG;
	v.key_len = get_le16(blob + OFF_KEY_LEN);
	v.name_len = get_le16(blob + OFF_NAME_LEN);
	if (!key_len_is_valid(v.key_len) || v.name_len > STORE_NAME_MAX)
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

/* Feeds AAD = key-id || header || name to an initialised GCM context. */
static int gcm_aad(EVP_CIPHER_CTX *ctx, const char *id, const uint8_t *header,
		   const uint8_t *name, size_t name_len)
{
	int outl;

	if (EVP_CipherUpdate(ctx, NULL, &outl, (const uint8_t *) id, (int) strlen(id)) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &outl, header, HEADER_SIZE) != 1)
		return -EIO;
	if (name_len > 0 && EVP_CipherUpdate(ctx, NULL, &outl, name, (int) name_len) != 1)
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
	return random_bytes(blob + OFF_NONCE, NONCE_SIZE);
}

/* The one seal of the store: it checks the id, key and name itself, for every caller. */
static int seal_blob(const EVP_CIPHER *cipher, const uint8_t *master, const char *id,
		     const void *key, size_t key_len, const char *name, uint64_t created,
		     uint8_t **ret, size_t *ret_size)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
	_cleanup_free_ uint8_t *blob = NULL;
	size_t size, name_len;
	uint8_t *ct;
	int outl, r;

	r = name_check(name);
	if (!keyid_is_valid(id) || !key || !key_len_is_valid(key_len) || r < 0)
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
static int unseal_view(EVP_CIPHER_CTX *ctx, const char *id, const struct blob_view *v,
		       struct secret_buf *ret_key, struct store_entry *ret_entry)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	uint8_t tag[TAG_SIZE], final[TAG_SIZE];
	int outl, r;

	r = secret_buf_new(v->key_len, &key);
	if (r < 0)
		return r;
	/* Only the nonce changes: the key schedule in ctx is reused. */
	if (EVP_DecryptInit_ex2(ctx, NULL, NULL, v->nonce, NULL) != 1)
		return -EIO;
	r = gcm_aad(ctx, id, v->header, v->name, v->name_len);
	if (r < 0)
		return r;
	if (EVP_DecryptUpdate(ctx, key.data, &outl, v->ct, (int) v->key_len) != 1 ||
	    outl != (int) v->key_len)
		return -EIO;
	memcpy(tag, v->tag, TAG_SIZE);
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, tag) != 1)
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

static int gcm_decrypt_ctx_new(const EVP_CIPHER *cipher, const uint8_t *master,
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

static EVP_CIPHER *gcm_fetch(void)
{
	return EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

int store_seal(const uint8_t master[static STORE_MASTER_KEY_SIZE], const char *id,
	       const void *key, size_t key_len, const char *name, uint64_t created,
	       uint8_t **ret, size_t *ret_size)
{
	_cleanup_(EVP_CIPHER_freep) EVP_CIPHER *cipher = gcm_fetch();

	if (!cipher)
		return -EOPNOTSUPP;
	return seal_blob(cipher, master, id, key, key_len, name, created, ret, ret_size);
}

/* The prologue of every unseal: a valid key-id, and a blob that parses before any cipher
 * work is done on it (garbage is refused cheaply). Returns 0, -EINVAL or -EBADMSG. */
static int unseal_prepare(const char *id, const uint8_t *blob, size_t size, struct blob_view *ret)
{
	if (!keyid_is_valid(id))
		return -EINVAL;
	return blob_parse(blob, size, ret);
}

/* unseal_view() of a blob with ctx, the store's own decryption context. */
static int unseal_blob(EVP_CIPHER_CTX *ctx, const char *id, const uint8_t *blob, size_t size,
		       struct secret_buf *ret_key, struct store_entry *ret_entry)
{
	struct blob_view v;
	int r;

	r = unseal_prepare(id, blob, size, &v);
	if (r < 0)
		return r;
	return unseal_view(ctx, id, &v, ret_key, ret_entry);
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
	cipher = gcm_fetch();
	if (!cipher)
		return -EOPNOTSUPP;
	r = gcm_decrypt_ctx_new(cipher, master, &ctx);
	if (r < 0)
		return r;
	return unseal_view(ctx, id, &v, ret_key, ret_entry);
}

int store_parse_header(const char *id, const uint8_t *blob, size_t size,
		       struct store_entry *ret_entry)
{
	struct blob_view v;
	int r;

	if (!keyid_is_valid(id))
		return -EINVAL;
	r = blob_parse(blob, size, &v);
	if (r < 0)
		return r;
	if (ret_entry)
		entry_fill(id, &v, ret_entry);
	return 0;
}

static int fsync_directory(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

/* Checks and reads an open master key file into secret memory. */
static int master_key_read(int fd, uint8_t **ret)
{
	_cleanup_secret_ uint8_t *key = NULL;
	uint8_t extra[1];
	_cleanup_erase_(extra);
	struct stat st;
	ssize_t k;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	/* 0400 or 0600: nothing for group and others, no execute, setuid, setgid or sticky. */
	if (st.st_uid != geteuid() || (st.st_mode & 07177) != 0)
		return -EPERM;
	if (st.st_size != STORE_MASTER_KEY_SIZE)
		return -EBADMSG;
	key = secret_alloc(STORE_MASTER_KEY_SIZE);
	if (!key)
		return -ENOMEM;
	k = loop_read(fd, key, STORE_MASTER_KEY_SIZE);
	if (k >= 0 && k != STORE_MASTER_KEY_SIZE)
		return -EBADMSG;
	if (k >= 0)
		k = loop_read(fd, extra, sizeof(extra));
	if (k != 0)
		return k < 0 ? (int) k : -EBADMSG;
	*ret = TAKE_PTR(key);
	return 0;
}

/*
 * Writes a fresh master key to a temporary file and link()s it into place: link() never
 * replaces, so when two processes race the first key wins, and a crash never leaves a
 * half-written master.key behind. Returns 0 (also when another process won) or -errno.
 */
static int master_key_create(const char *state_dir, const char *path)
{
	_cleanup_secret_ uint8_t *key = secret_alloc(STORE_MASTER_KEY_SIZE);
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (!key)
		return -ENOMEM;
	if (asprintf(&tmp, "%s.tmp.%d", path, (int) getpid()) < 0) {
		tmp = NULL; /* undefined after a failure */
		return -ENOMEM;
	}
	r = random_bytes(key, STORE_MASTER_KEY_SIZE);
	if (r < 0)
		return r;
	(void) unlink(tmp); /* left by a dead process that had our pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
	if (fd < 0)
		return -errno;
	r = loop_write(fd, key, STORE_MASTER_KEY_SIZE);
	if (r >= 0 && fchmod(fd, 0400) < 0)
		r = -errno;
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (r >= 0 && link(tmp, path) < 0 && errno != EEXIST)
		r = -errno;
	(void) unlink(tmp);
	if (r < 0)
		return r;
	return fsync_directory(state_dir);
}

static int master_key_load(const char *state_dir, uint8_t **ret)
{
	_cleanup_free_ char *path = path_join(state_dir, "master.key");
	int r;

	if (!path)
		return -ENOMEM;
	for (int attempt = 0; attempt < 2; attempt++) {
		/* O_NONBLOCK: a FIFO planted here must not hang us before fstat() refuses it. */
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW |
						    O_NONBLOCK);

		if (fd >= 0)
			return master_key_read(fd, ret);
		if (errno == ELOOP)
			return -EBADMSG;
		if (errno != ENOENT)
			return -errno;
		r = master_key_create(state_dir, path);
		if (r < 0)
			return r;
	}
	return -ENOENT;
}

int store_open(const char *state_dir, struct store **ret)
{
	_cleanup_(store_freep) struct store *s = NULL;
	int r;

	if (isempty(state_dir))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->keys_dir = path_join(state_dir, "keys");
	if (!s->keys_dir)
		return -ENOMEM;
	if (strlen(s->keys_dir) + 1 + KEYID_MAX + strlen(KEY_SUFFIX) >= sizeof(s->path))
		return -ENAMETOOLONG;
	r = mkdir_p(state_dir, 0700);
	if (r >= 0)
		r = mkdir_p(s->keys_dir, 0700);
	if (r < 0)
		return r;
	/* What atomic writes killed midway left behind (state files, master key, key files). */
	(void) remove_stale_tmp_files(state_dir);
	(void) remove_stale_tmp_files(s->keys_dir);
	r = master_key_load(state_dir, &s->master);
	if (r < 0)
		return r;
	s->cipher = gcm_fetch();
	if (!s->cipher)
		return -EOPNOTSUPP;
	r = gcm_decrypt_ctx_new(s->cipher, s->master, &s->dec);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

struct store *store_free(struct store *s)
{
	if (!s)
		return NULL;
	tdestroy(s->cache, free);
	EVP_CIPHER_CTX_free(s->dec); /* cleanses the key schedule */
	EVP_CIPHER_free(s->cipher);
	secret_free(s->master);
	free(s->keys_dir);
	free(s);
	return NULL;
}

/* An invalid id gives the keys directory itself, so that error messages stay readable. */
const char *store_path(struct store *s, const char *id)
{
	if (!keyid_is_valid(id))
		snprintf(s->path, sizeof(s->path), "%s", s->keys_dir);
	else
		snprintf(s->path, sizeof(s->path), "%s/%s" KEY_SUFFIX, s->keys_dir, id);
	return s->path;
}

/*
 * Reads a key file, refusing anything that is not a regular file of at most BLOB_MAX bytes
 * before reading it whole. O_NONBLOCK so that a FIFO cannot hang us. Returns 0 or -errno.
 */
static int key_file_read(const char *path, char **ret, size_t *ret_size)
{
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size > BLOB_MAX)
		return -EBADMSG;
	r = read_full_fd(fd, BLOB_MAX, ret, ret_size);
	return r == -EFBIG ? -EBADMSG : r;
}

/* Reads key id; with ret_key NULL it authenticates only. */
/* Returns the file's bytes from the cache, reading it again when it changed. */
static int key_file_cached(struct store *s, const char *id, const struct cached_blob **ret)
{
	struct cached_blob key, **node, *c;
	_cleanup_free_ char *blob = NULL;
	const char *path = store_path(s, id);
	struct stat st;
	size_t size;
	int r;

	if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size > BLOB_MAX)
		return -EBADMSG;
	strcpy(key.id, id);
	node = tfind(&key, &s->cache, cached_cmp);
	if (node && cached_matches(*node, &st)) {
		*ret = *node;
		return 0;
	}
	cache_forget(s, id);
	r = key_file_read(path, &blob, &size);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	strcpy(c->id, id);
	/* The identity is the one stat() saw before the read: a file replaced in between is
	 * read again next time. */
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->size = (off_t) size;
	c->mtime = st.st_mtim;
	c->ctime = st.st_ctim;
	memcpy(c->blob, blob, size);
	if (!tsearch(c, &s->cache, cached_cmp)) {
		free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

static int store_load(struct store *s, const char *id, struct secret_buf *ret_key,
		      struct store_entry *ret_entry)
{
	const struct cached_blob *c;
	int r;

	if (!keyid_is_valid(id))
		return -EINVAL;	/* before its path is made */
	r = key_file_cached(s, id, &c);
	if (r < 0)
		return r;
	return unseal_blob(s->dec, id, c->blob, (size_t) c->size, ret_key, ret_entry);
}

int store_get(struct store *s, const char *id, struct secret_buf *ret)
{
	return store_load(s, id, ret, NULL);
}

/* Authenticates the file too, so that a tampered header is refused as store_get() would. */
int store_stat(struct store *s, const char *id, struct store_entry *ret)
{
	return store_load(s, id, NULL, ret);
}

/* Seals key under a fresh key-id and writes its file. */
static int store_put(struct store *s, const void *key, size_t len, const char *name,
		     char *ret_id)
{
	_cleanup_free_ uint8_t *blob = NULL;
	char id[KEYID_MAX + 1];
	size_t size;
	int r;

	r = keyid_generate(id);
	if (r < 0)
		return r;
	r = seal_blob(s->cipher, s->master, id, key, len, name, (uint64_t) time(NULL), &blob,
		      &size);
	if (r < 0)
		return r;
	r = write_file_atomic(store_path(s, id), blob, size, 0600);
	if (r < 0)
		return r;
	memcpy(ret_id, id, strlen(id) + 1);
	return 0;
}

int store_create(struct store *s, unsigned bits, const char *name, char *ret_id)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	int r;

	if ((bits != 256 && bits != 512) || name_check(name) < 0)
		return -EINVAL;
	r = secret_buf_new(bits / 8, &key);
	if (r < 0)
		return r;
	r = random_bytes(key.data, key.len);
	if (r < 0)
		return r;
	return store_put(s, key.data, key.len, name, ret_id);
}

int store_import(struct store *s, const void *key, size_t len, const char *name, char *ret_id)
{
	if (!key || !key_len_is_valid(len) || name_check(name) < 0)
		return -EINVAL;
	return store_put(s, key, len, name, ret_id);
}

int store_clone(struct store *s, const char *id, const char *name, char *ret_id)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	int r;

	if (!keyid_is_valid(id) || name_check(name) < 0)
		return -EINVAL;
	r = store_get(s, id, &key);
	if (r < 0)
		return r;
	return store_put(s, key.data, key.len, name, ret_id);
}

bool store_has(struct store *s, const char *id)
{
	struct stat st;

	return keyid_is_valid(id) &&
	       fstatat(AT_FDCWD, store_path(s, id), &st, AT_SYMLINK_NOFOLLOW) >= 0;
}

int store_seal_other(struct store *s, const char *aad_id, const void *key, size_t key_len,
		     const char *name, uint64_t created, uint8_t **ret, size_t *ret_size)
{
	return seal_blob(s->cipher, s->master, aad_id, key, key_len, name, created, ret,
			 ret_size);
}

int store_unseal_other(struct store *s, const char *aad_id, const uint8_t *blob, size_t size,
		       struct secret_buf *ret_key, struct store_entry *ret_entry)
{
	return unseal_blob(s->dec, aad_id, blob, size, ret_key, ret_entry);
}

int store_delete(struct store *s, const char *id)
{
	if (!keyid_is_valid(id))
		return -EINVAL;
	cache_forget(s, id);
	if (unlink(store_path(s, id)) < 0)
		return -errno;
	/* The key is gone either way; a failed directory sync only risks it coming back. */
	(void) fsync_directory(s->keys_dir);
	return 0;
}

/* Writes the key-id of a directory entry "<id>.key" to id; false for any other name. */
static bool file_name_to_id(const char *fn, char id[static KEYID_MAX + 1])
{
	size_t n = strlen(fn), sl = strlen(KEY_SUFFIX);

	if (n <= sl || n - sl > KEYID_MAX || !streq(fn + n - sl, KEY_SUFFIX))
		return false;
	memcpy(id, fn, n - sl);
	id[n - sl] = 0;
	return keyid_is_valid(id);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_entry *) a)->id, ((const struct store_entry *) b)->id);
}

static int entries_grow(struct store_entry **list, size_t n, size_t *alloc)
{
	struct store_entry *l;
	size_t m;

	if (n < *alloc)
		return 0;
	m = *alloc ? *alloc * 2 : 16;
	if (m > SIZE_MAX / sizeof(**list))
		return -ENOMEM;
	l = realloc(*list, m * sizeof(**list));
	if (!l)
		return -ENOMEM;
	*list = l;
	*alloc = m;
	return 0;
}

/* Header of one key file; the file is not unsealed. */
static int store_list_one(struct store *s, const char *id, struct store_entry *ret)
{
	_cleanup_free_ char *blob = NULL;
	size_t size;
	int r;

	r = key_file_read(store_path(s, id), &blob, &size);
	if (r < 0)
		return r;
	return store_parse_header(id, (const uint8_t *) blob, size, ret);
}

int store_list(struct store *s, struct store_entry **ret, size_t *ret_n,
	       void (*bad)(const char *path, int error, void *userdata), void *userdata)
{
	_cleanup_free_ struct store_entry *list = NULL;
	_cleanup_(closedirp) DIR *d = opendir(s->keys_dir);
	size_t n = 0, alloc = 0;
	struct dirent *de;
	int r;

	if (!d)
		return -errno;
	for (errno = 0; (de = readdir(d)); errno = 0) {
		char id[KEYID_MAX + 1];

		if (!file_name_to_id(de->d_name, id))
			continue;
		r = entries_grow(&list, n, &alloc);
		if (r < 0)
			return r;
		r = store_list_one(s, id, &list[n]);
		if (r >= 0)
			n++;
		else if (r != -ENOENT && bad) /* ENOENT: deleted since readdir() */
			bad(store_path(s, id), r, userdata);
	}
	if (errno != 0)
		return -errno;
	if (n > 0)
		qsort(list, n, sizeof(*list), entry_cmp);
	*ret = TAKE_PTR(list);
	*ret_n = n;
	return 0;
}
