/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The embedded key store (format and contracts in store.h; the sealed format's functions are
 * store-format.c). Not thread-safe: one struct store holds one path buffer and one decryption
 * context; the daemon uses it from one thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keyid.h"
#include "secret.h"
#include "store-internal.h"
#include "util.h"

#define KEY_SUFFIX ".key"
/*
 * Sealed files kept; beyond it one is dropped per new one. 16,384 compact entries (~96 bytes
 * of heap each, store-internal.h, and a slot of 8 in a table of at most 32,768) are 1.75 MiB at
 * most: the files of 10,000 held keys are 1.0 MiB with their table.
 */
#define CACHE_MAX 16384
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | \
		    IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct store {
	char *keys_dir;
	int keys_fd;			/* keys_dir, for openat() */
	uint8_t *master;		/* secret memory, STORE_MASTER_KEY_SIZE bytes */
	EVP_CIPHER *cipher;		/* fetched once */
	EVP_CIPHER_CTX *dec;		/* keyed once with the master key; each get sets the nonce */
	char path[PATH_MAX];		/* store_path() */

	/*
	 * Sealed files as last read, by key-id: a hit saves open, fstat, read and close, and
	 * needs no stat(2) either. inotify on keys/ says which files changed: its queue is read
	 * before the first get of each event-loop iteration (each get, without an event loop), so
	 * a change made before a request was read is seen by that request. A file changed through
	 * keys/ (edited, replaced, renamed, removed, chmod-ed) is read again; only a hard link
	 * from elsewhere written through that other name would go unseen. Without a watch (the
	 * kernel's inotify limits) nothing is cached. The bytes are ciphertext, so ordinary memory
	 * is fine; every get still parses and authenticates them.
	 *
	 * A get keeps its file (the key's re-install after a release reads no file: the warm
	 * install), as do an existence check (preload) and a stat, up to CACHE_MAX entries. The
	 * entries are compact (store-internal.h: the key-id as 16 bytes, the file without its constant
	 * fields, ~96 bytes of heap), so the files of 10,000 held keys cost 1.0 MiB with their
	 * table (1.7 MiB as whole files and key-id strings). A key-id that is not a lowercase UUID
	 * is not cached: no key the store seals has one.
	 */
	struct store_cache cache;
	int inotify_fd;			/* -1: no watch, no cache */
	sd_event *event;
	uint64_t drained;		/* the event-loop iteration the queue was last read in */
	bool drained_valid;
};

static void cache_forget(struct store *s, const char *id)
{
	struct cache_key k;

	if (store_cache_key(id, &k))
		store_cache_forget(&s->cache, &k);
}

static void cache_clear(struct store *s)
{
	store_cache_clear(&s->cache);
}

static void watch_stop(struct store *s)
{
	cache_clear(s);
	s->inotify_fd = safe_close(s->inotify_fd);
}

static void watch_event(struct store *s, const struct inotify_event *e)
{
	size_t n = e->len ? strnlen(e->name, e->len) : 0, sl = strlen(KEY_SUFFIX);
	char id[KEYID_MAX + 1];

	if (e->mask & (IN_Q_OVERFLOW)) {
		cache_clear(s);	/* events were lost: trust nothing */
		return;
	}
	if (e->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
		watch_stop(s);	/* keys/ itself went: no more cache */
		return;
	}
	if (n <= sl || n - sl > KEYID_MAX || memcmp(e->name + n - sl, KEY_SUFFIX, sl) != 0)
		return;
	memcpy(id, e->name, n - sl);
	id[n - sl] = 0;
	cache_forget(s, id);
}

/* Reads the inotify queue (once per event-loop iteration). */
static void watch_drain(struct store *s)
{
	_Alignas(struct inotify_event) char buf[4096];
	uint64_t it;

	if (s->inotify_fd < 0)
		return;
	if (s->event && sd_event_get_iteration(s->event, &it) >= 0) {
		if (s->drained_valid && it == s->drained)
			return;
		s->drained = it;
		s->drained_valid = true;
	}
	for (;;) {
		ssize_t k = read(s->inotify_fd, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0 || errno != EAGAIN)
				watch_stop(s);
			return;
		}
		for (char *p = buf; p < buf + k;) {
			const struct inotify_event *e = (const struct inotify_event *) p;
			watch_event(s, e);
			if (s->inotify_fd < 0)
				return;
			p += sizeof(*e) + e->len;
		}
	}
}

void store_set_event(struct store *s, sd_event *event)
{
	s->event = event;
	s->drained_valid = false;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct store *, store_free);

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
	r = store_random_bytes(key, STORE_MASTER_KEY_SIZE);
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
	s->keys_fd = s->inotify_fd = -EBADF;
	store_cache_init(&s->cache, CACHE_MAX);
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
	s->keys_fd = open(s->keys_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (s->keys_fd < 0)
		return -errno;
	/* Before anything is cached. Without inotify the store works uncached. */
	s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->inotify_fd >= 0 && inotify_add_watch(s->inotify_fd, s->keys_dir, WATCH_MASK) < 0)
		s->inotify_fd = safe_close(s->inotify_fd);
	r = master_key_load(state_dir, &s->master);
	if (r < 0)
		return r;
	s->cipher = store_gcm_fetch();
	if (!s->cipher)
		return -EOPNOTSUPP;
	r = store_gcm_decrypt_ctx_new(s->cipher, s->master, &s->dec);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

struct store *store_free(struct store *s)
{
	if (!s)
		return NULL;
	cache_clear(s);
	safe_close(s->inotify_fd);
	safe_close(s->keys_fd);
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
 * Reads a key file (a name in keys/, or a path), refusing anything that is not a regular file
 * of at most BLOB_MAX bytes before reading it whole. O_NONBLOCK so that a FIFO cannot hang us.
 * Returns 0 or -errno.
 */
static int key_file_read(int dir_fd, const char *path, uint8_t *buf, size_t *ret_size)
{
	const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK;
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	ssize_t k;

	/*
	 * O_NOATIME: reading a key is no reason to write its inode. Under relatime the first read
	 * after a key file was written would (a journalled metadata write a key, ~7 % of a cold
	 * batched install); a file we neither own nor have CAP_FOWNER for refuses the flag with
	 * EPERM, and is then opened without it.
	 */
	fd = openat(dir_fd, path, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dir_fd, path, flags);
	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size > BLOB_MAX)
		return -EBADMSG;
	/* One byte more than allowed: a file that grew since fstat() is refused too. A file
	 * whose size fstat() gave comes whole in one read(2): no second one to see its end. */
	k = read(fd, buf, BLOB_MAX + 1);
	if (k < 0 && errno != EINTR)
		return -errno;
	if (k != st.st_size) {
		ssize_t more = loop_read(fd, buf + (k > 0 ? k : 0), BLOB_MAX + 1 - (k > 0 ? k : 0));
		if (more < 0)
			return (int) more;
		k = (k > 0 ? k : 0) + more;
	}
	if (k > BLOB_MAX)
		return -EBADMSG;
	*ret_size = (size_t) k;
	return 0;
}

/* "<id>.key" into buf (KEYID_MAX + sizeof(KEY_SUFFIX) bytes); id is valid. */
static const char *key_file_name(const char *id, char *buf)
{
	size_t n = strlen(id);

	memcpy(buf, id, n);
	memcpy(buf + n, KEY_SUFFIX, sizeof(KEY_SUFFIX));
	return buf;
}

/*
 * Checks key-id id and makes its cache key. A lowercase UUID is a valid key-id, so for the
 * store's own ids the check is the key's parse (~230 instructions; keyid_is_valid() would be
 * ~190 more, on every get and existence check). Reads the record of changed files first.
 * Returns 1 with *ret set when the cache may hold id, 0 when it cannot, -EINVAL for an
 * invalid key-id.
 */
static int cache_key_of(struct store *s, const char *id, struct cache_key *ret)
{
	bool uuid = id && store_cache_key(id, ret);

	if (!uuid && !keyid_is_valid(id))
		return -EINVAL;
	watch_drain(s);
	return uuid && s->inotify_fd >= 0;
}

/*
 * The sealed bytes of key id into buf (BLOB_MAX + 1 bytes), from the cache or read; keyed and
 * k are cache_key_of()'s.
 */
static int key_file_get(struct store *s, const char *id, bool keyed, const struct cache_key *k,
			uint8_t *buf, size_t *ret_size)
{
	char name[KEYID_MAX + sizeof(KEY_SUFFIX)];
	size_t n;
	int r;

	if (keyed && (n = store_cache_get(&s->cache, k, buf)) > 0) {
		*ret_size = n;
		return 0;
	}
	r = key_file_read(s->keys_fd, key_file_name(id, name), buf, ret_size);
	if (r < 0)
		return r;
	if (keyed)
		store_cache_put(&s->cache, k, buf, *ret_size);
	return 0;
}

size_t store_cached(const struct store *s)
{
	return s->cache.n;
}

static int store_load(struct store *s, const char *id, struct secret_buf *ret_key,
		      struct store_entry *ret_entry)
{
	uint8_t buf[BLOB_MAX + 1];
	struct cache_key k;
	struct blob_view v;
	size_t size;
	int keyed, r;

	keyed = cache_key_of(s, id, &k);	/* before its path is made */
	if (keyed < 0)
		return keyed;
	r = key_file_get(s, id, keyed, &k, buf, &size);
	if (r < 0)
		return r;
	r = store_blob_parse(buf, size, &v);
	if (r < 0)
		return r;
	return store_unseal_view(s->dec, id, &v, ret_key, ret_entry);
}

int store_preload(struct store *s, const char *id)
{
	uint8_t buf[BLOB_MAX + 1];
	struct cache_key k;
	int keyed = cache_key_of(s, id, &k);
	size_t size;

	if (keyed < 0)
		return keyed;
	if (keyed && store_cache_has(&s->cache, &k))
		return 0;
	return key_file_get(s, id, keyed, &k, buf, &size);
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
	r = store_seal_blob(s->cipher, s->master, id, key, len, name, (uint64_t) time(NULL), &blob,
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

	if ((bits != 256 && bits != 512) || store_name_check(name) < 0)
		return -EINVAL;
	r = secret_buf_new(bits / 8, &key);
	if (r < 0)
		return r;
	r = store_random_bytes(key.data, key.len);
	if (r < 0)
		return r;
	return store_put(s, key.data, key.len, name, ret_id);
}

int store_import(struct store *s, const void *key, size_t len, const char *name, char *ret_id)
{
	if (!key || !store_key_len_is_valid(len) || store_name_check(name) < 0)
		return -EINVAL;
	return store_put(s, key, len, name, ret_id);
}

int store_clone(struct store *s, const char *id, const char *name, char *ret_id)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	int r;

	if (!keyid_is_valid(id) || store_name_check(name) < 0)
		return -EINVAL;
	r = store_get(s, id, &key);
	if (r < 0)
		return r;
	return store_put(s, key.data, key.len, name, ret_id);
}

bool store_has(struct store *s, const char *id)
{
	char name[KEYID_MAX + sizeof(KEY_SUFFIX)];
	struct cache_key k;
	int keyed = cache_key_of(s, id, &k);
	struct stat st;

	if (keyed < 0)
		return false;
	if (keyed && store_cache_has(&s->cache, &k))
		return true;
	return fstatat(s->keys_fd, key_file_name(id, name), &st, AT_SYMLINK_NOFOLLOW) >= 0;
}

int store_seal_other(struct store *s, const char *aad_id, const void *key, size_t key_len,
		     const char *name, uint64_t created, uint8_t **ret, size_t *ret_size)
{
	return store_seal_blob(s->cipher, s->master, aad_id, key, key_len, name, created, ret,
			 ret_size);
}

int store_unseal_other(struct store *s, const char *aad_id, const uint8_t *blob, size_t size,
		       struct secret_buf *ret_key, struct store_entry *ret_entry)
{
	return store_unseal_blob(s->dec, aad_id, blob, size, ret_key, ret_entry);
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
	char name[KEYID_MAX + sizeof(KEY_SUFFIX)];
	uint8_t blob[BLOB_MAX + 1];
	size_t size;
	int r;

	r = key_file_read(s->keys_fd, key_file_name(id, name), blob, &size);
	if (r < 0)
		return r;
	return store_parse_header(id, blob, size, ret);
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
