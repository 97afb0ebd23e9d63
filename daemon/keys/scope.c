/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Scopes, their holders and their kernel keys; persistence is scope-state.c. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "event.h"
#include "keyring.h"
#include "log.h"
#include "metrics.h"
#include "scope-internal.h"
#include "util.h"

/* The fingerprints a scope's key is known to open, out of the scope: most scopes have none. */
struct scope_verified {
	uint32_t n;
	uint8_t fp[][32];
};

/* A linger timer, beside the table (most scopes never linger): keyed by its scope's id. */
struct linger {
	struct scopes *owner;
	struct scope *scope;
	sd_event_source *timer;
};

static const char *scope_name(const void *item)
{
	return ((const struct scope *) item)->id;
}

static const char *linger_name(const void *item)
{
	return ((const struct linger *) item)->scope->id;
}

static void linger_free(void *item)
{
	struct linger *l = item;

	sd_event_source_disable_unref(l->timer);
	free(l);
}

/* Stops s's linger timer, if it runs. */
static void linger_stop(struct scopes *t, struct scope *s)
{
	struct linger key = { .scope = s };

	if (!s->lingering)
		return;
	s->lingering = false;
	linger_free(idmap_remove(&t->lingers, &key));
}

int scopes_new(sd_event *event, key_serial_t parent, const char *state_dir, unsigned linger_sec,
	       scope_fetch_t fetch, void *userdata, struct scopes **ret)
{
	_cleanup_free_ struct scopes *t = calloc(1, sizeof(*t));
	key_serial_t k;

	if (!t)
		return log_oom();
	t->journal_fd = -EBADF;
	idmap_init(&t->map, scope_name);
	idmap_init(&t->lingers, linger_name);
	t->state_path = path_join(state_dir, "scopes.json");
	t->journal_path = path_join(state_dir, "scopes.journal");
	if (!t->state_path || !t->journal_path) {
		free(t->state_path);
		free(t->journal_path);
		return log_oom();
	}
	k = keyring_find_or_create(parent, KEYSCOPE_KEYRING_NAME);
	if (k < 0) {
		free(t->state_path);
		free(t->journal_path);
		return log_error_errno(k, "Failed to find or create the keyring '%s': %m",
				       KEYSCOPE_KEYRING_NAME);
	}
	t->keyring = k;
	t->event = sd_event_ref(event);
	t->linger_sec = linger_sec;
	t->fetch = fetch;
	t->userdata = userdata;
	*ret = TAKE_PTR(t);
	return 0;
}

/*
 * Scopes whose description fits a slot (every key-id of 47 characters or fewer: a UUID is 36,
 * "vk:" and a UUID 39) are carved from blocks of SCOPE_BLOCK bytes, aligned to their size so
 * that a slot finds its block by masking its address. A malloc() per scope was ~175 of a
 * scope's ~1,400 instructions at a start with 10,000, and a start or a batch makes thousands
 * at once. A block that empties is unmapped; under AddressSanitizer every scope is malloc()ed,
 * so that a use after free is still caught.
 */
#define SCOPE_BLOCK 32768
#define SCOPE_SLOT 96
#define SCOPE_BLOCK_HEAD 64
#define SCOPE_BLOCK_SLOTS ((SCOPE_BLOCK - SCOPE_BLOCK_HEAD) / SCOPE_SLOT)

struct scope_block {
	struct scope_block *prev, *next;	/* in scopes.partial while a slot is free */
	void *free;				/* freed slots, each holding the next */
	unsigned used, carved;			/* slots handed out; slots ever handed out */
};

_Static_assert(sizeof(struct scope_block) <= SCOPE_BLOCK_HEAD, "block head too large");
_Static_assert(SCOPE_BLOCK_HEAD % _Alignof(struct scope) == 0 &&
	       SCOPE_SLOT % _Alignof(struct scope) == 0, "misaligned slots");

#if defined(__SANITIZE_ADDRESS__)
#define SCOPE_BLOCKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCOPE_BLOCKS 0
#endif
#endif
#ifndef SCOPE_BLOCKS
#define SCOPE_BLOCKS 1
#endif

/*
 * A block mapped on its own, aligned to its size (twice the size mapped, the ends unmapped):
 * aligned_alloc() left a freed gap beside each block in the heap, 250 KiB more RssAnon at a
 * start with 10,000 scopes.
 */
static struct scope_block *block_map(void)
{
	uintptr_t p, a;
	void *m = mmap(NULL, 2 * SCOPE_BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	p = (uintptr_t) m;
	a = (p + SCOPE_BLOCK - 1) & ~(uintptr_t) (SCOPE_BLOCK - 1);
	if (a > p)
		(void) munmap(m, a - p);
	if (p + 2 * SCOPE_BLOCK > a + SCOPE_BLOCK)
		(void) munmap((void *) (a + SCOPE_BLOCK), p + 2 * SCOPE_BLOCK - (a + SCOPE_BLOCK));
	return (struct scope_block *) a;
}

static void partial_unlink(struct scopes *t, struct scope_block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		t->partial = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->prev = b->next = NULL;
}

static void partial_push(struct scopes *t, struct scope_block *b)
{
	b->prev = NULL;
	b->next = t->partial;
	if (t->partial)
		t->partial->prev = b;
	t->partial = b;
}

/*
 * size bytes for a scope, from a block when they fit a slot, its fields zeroed (not calloc():
 * the bytes after them, the description, are written at once by the caller).
 */
static struct scope *scope_alloc(struct scopes *t, size_t size)
{
	struct scope_block *b = t->partial;
	struct scope *s;

	if (!SCOPE_BLOCKS || size > SCOPE_SLOT) {
		s = malloc(size);
		if (s)
			memset(s, 0, offsetof(struct scope, desc));
		return s;
	}
	if (!b) {
		b = block_map();
		if (!b)
			return NULL;
		*b = (struct scope_block) {};
		partial_push(t, b);
		t->blocks++;
	}
	if (b->free) {
		s = b->free;
		memcpy(&b->free, s, sizeof(void *));
	} else
		s = (struct scope *) ((char *) b + SCOPE_BLOCK_HEAD +
				      (size_t) b->carved++ * SCOPE_SLOT);
	if (++b->used == SCOPE_BLOCK_SLOTS)
		partial_unlink(t, b);
	memset(s, 0, offsetof(struct scope, desc));
	s->in_block = true;
	return s;
}

size_t scope_blocks(const struct scopes *t)
{
	return t->blocks;
}

/* The caller stopped s's linger timer (scope_remove() does), or frees all of them. */
void scope_free(struct scopes *t, struct scope *s)
{
	struct scope_block *b;

	if (!s)
		return;
	free(s->verified);
	if (!s->in_block) {
		free(s);
		return;
	}
	b = (struct scope_block *) ((uintptr_t) s & ~(uintptr_t) (SCOPE_BLOCK - 1));
	if (b->used-- == SCOPE_BLOCK_SLOTS)
		partial_push(t, b);
	if (b->used == 0) {
		partial_unlink(t, b);
		(void) munmap(b, SCOPE_BLOCK);
		t->blocks--;
		return;
	}
	memcpy(s, &b->free, sizeof(void *));
	b->free = s;
}

struct scopes *scopes_free(struct scopes *t)
{
	if (!t)
		return NULL;
	idmap_done(&t->lingers, linger_free);
	for (size_t i = 0; i < t->map.cap; i++)
		scope_free(t, t->map.slots[i]);
	idmap_done(&t->map, NULL);
	scopes_state_done(t);
	sd_event_unref(t->event);
	free(t->state_path);
	free(t->journal_path);
	free(t);
	return NULL;
}

key_serial_t scopes_keyring(struct scopes *t)
{
	return t->keyring;
}

size_t scopes_count(struct scopes *t)
{
	return t->map.n;
}

unsigned scope_holders(const struct scope *s)
{
	return s->manual + s->attached;
}

bool scope_is_verified(const struct scope *s, const uint8_t fp[static 32])
{
	for (uint32_t i = 0; s->verified && i < s->verified->n; i++)
		if (memcmp(s->verified->fp[i], fp, 32) == 0)
			return true;
	return false;
}

int scope_add_verified(struct scope *s, const uint8_t fp[static 32])
{
	uint32_t n = s->verified ? s->verified->n : 0;
	struct scope_verified *v;

	if (scope_is_verified(s, fp))
		return 0;
	if (n >= UINT32_MAX / 32 - 1)
		return -ENOMEM;
	v = realloc(s->verified, sizeof(*v) + (n + 1) * sizeof(v->fp[0]));
	if (!v)
		return -ENOMEM;
	memcpy(v->fp[n], fp, 32);
	v->n = n + 1;
	s->verified = v;
	return 0;
}

int scope_fetch(struct scopes *t, const char *id, struct secret_buf *ret)
{
	if (!keyid_is_valid(id))	/* a volume key scope has nothing to fetch */
		return -EINVAL;
	return t->fetch(t->userdata, id, ret);
}

struct scope *scope_find(struct scopes *t, const char *id)
{
	return id ? idmap_get(&t->map, id) : NULL;
}

/*
 * The one way into the table, so that every id in it is a valid scope id: finding an id
 * there proves it valid (scope_get() checks no more). The description is made once, here.
 * Returns 0, -EINVAL or -ENOMEM.
 */
int scope_add_hashed(struct scopes *t, const char *id, uint64_t h, struct scope **ret)
{
	size_t n, pl = strlen(KEY_DESC_PREFIX);
	struct scope *s;

	if (!scope_id_is_valid(id))
		return -EINVAL;
	n = strlen(id);
	/* offsetof: desc starts at byte 39, before the struct's padding to 40. */
	s = scope_alloc(t, offsetof(struct scope, desc) + pl + n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s->desc, KEY_DESC_PREFIX, pl);
	memcpy(s->desc + pl, id, n + 1);
	s->id = s->desc + pl;
	s->is_key = !strneq(id, SCOPE_VK_PREFIX, strlen(SCOPE_VK_PREFIX));
	if (idmap_put_hashed(&t->map, s, h) < 0) {
		scope_free(t, s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

int scope_add(struct scopes *t, const char *id, struct scope **ret)
{
	return scope_add_hashed(t, id, idmap_hash(&t->map, id), ret);
}

void scope_remove(struct scopes *t, struct scope *s)
{
	linger_stop(t, s);
	(void) idmap_remove(&t->map, s);
	scope_free(t, s);
}

int scope_install(struct scopes *t, struct scope *s, const struct secret_buf *material)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	key_serial_t k;
	int r;

	if (!material) {
		/* A volume key comes only from unlocking a keyslot (attach --passphrase). */
		if (!s->is_key)
			return -ENOKEY;
		r = t->fetch(t->userdata, s->id, &key);
		if (r < 0)
			return r;
		material = &key;
	}
	s->fetches++;
	k = keyring_add_logon(t->keyring, s->desc, material->data, material->len,
			      KEYSCOPE_KEY_PERM);
	if (k < 0)
		return k;
	s->serial = k;
	s->key_len = (uint16_t) material->len;	/* a logon key's payload is at most 32 KiB */
	log_event(EVENT_KEY_INSTALLED, t->batch ? LOG_DEBUG : LOG_INFO, EVENT_KEY(s->id),
		  "Installed %s as key %d.", s->desc, (int) k);
	metrics_count(METRIC_KEY_INSTALLS);
	return 0;
}

/* A key can vanish behind our back (keyctl invalidate, unlink): check before trusting it. */
static bool scope_key_alive(const struct scope *s)
{
	struct key_info info;
	const char *id;

	if (s->serial <= 0 || keyring_describe(s->serial, &info) < 0)
		return false;
	id = scope_id_from_description(info.description);
	return streq(info.type, "logon") && id && streq(id, s->id);
}

void scopes_set_batch(struct scopes *t, bool batch)
{
	t->batch = batch;
}

static void scope_drop_key(struct scopes *t, struct scope *s)
{
	int r;

	if (s->serial <= 0)
		return;
	r = keyring_invalidate(s->serial);
	if (r < 0 && r != -ENOKEY && r != -EKEYREVOKED && r != -EKEYEXPIRED)
		log_warning_errno(r, "Failed to invalidate key %d of scope %s, ignoring: %m",
				  (int) s->serial, s->id);
	else
		log_event(EVENT_KEY_INVALIDATED, t->batch ? LOG_DEBUG : LOG_INFO, EVENT_KEY(s->id),
			  "Invalidated key %d of scope %s.", (int) s->serial, s->id);
	metrics_count(METRIC_KEY_INVALIDATIONS);
	s->serial = 0;
	if (s->manual > 0)
		scope_note(t, s);	/* the record must not name a serial to trust any more */
}

/*
 * Finds id's scope or adds an empty one; *ret_created says which. One hash, one probe. The id
 * is checked before a scope is added: the table holds only valid ids, so a found one is.
 */
static int scope_get(struct scopes *t, const char *id, struct scope **ret, bool *ret_created)
{
	struct scope *s;
	uint64_t h;
	int r;

	if (!id)
		return -EINVAL;
	h = idmap_hash(&t->map, id);
	s = idmap_get_hashed(&t->map, id, h);
	*ret_created = !s;
	if (!s) {
		r = scope_add_hashed(t, id, h, &s);
		if (r < 0)
			return r;
	}
	*ret = s;
	return 0;
}

int scope_acquire(struct scopes *t, const char *id, enum scope_hold kind,
		  const struct secret_buf *material, struct scope **ret)
{
	struct scope *s;
	bool created, installed = false;
	int r;

	r = scope_get(t, id, &s, &created);
	if (r < 0)
		return r;
	if (created || !scope_key_alive(s) || s->revoked) {
		/* A withdrawn key is fetched again: the key source says whether it still may. */
		if (!s->revoked)
			s->serial = 0;
		r = scope_install(t, s, material);
		if (r < 0) {
			if (created)
				scope_remove(t, s);
			return r;
		}
		s->revoked = false;
		installed = true;
	} else if (material)
		s->fetches++;	/* the caller fetched to check a header */
	linger_stop(t, s);
	if (kind == SCOPE_MANUAL) {
		s->manual++;
		scope_note(t, s);
	} else {
		s->attached++;
		/* A held key made again: the record must name its new serial, or a start after a
		 * crash finds the key only by describing every unclaimed one. */
		if (installed && s->manual > 0)
			scope_note(t, s);
	}
	*ret = s;
	return 0;
}

int scope_restore_attached(struct scopes *t, const char *id)
{
	struct scope *s;
	bool created;
	int r;

	r = scope_get(t, id, &s, &created);
	if (r < 0)
		return r;
	s->attached++;
	return 0;
}

static int on_linger(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct linger *l = userdata;
	struct scopes *t = l->owner;
	struct scope *s = l->scope;

	log_debug("Linger of scope %s ended.", s->id);
	scope_drop_key(t, s);
	scope_remove(t, s);
	return 0;
}

static int linger_start(struct scopes *t, struct scope *s)
{
	struct linger *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	*l = (struct linger) { .owner = t, .scope = s };
	r = sd_event_add_time_relative(t->event, &l->timer, CLOCK_MONOTONIC,
				       (uint64_t) t->linger_sec * 1000000u, 0, on_linger, l);
	if (r >= 0 && idmap_put(&t->lingers, l) < 0)
		r = -ENOMEM;
	if (r < 0) {
		linger_free(l);
		return r;
	}
	s->lingering = true;
	return 0;
}

int scope_release(struct scopes *t, const char *id, enum scope_hold kind)
{
	struct scope *s = scope_find(t, id);
	int r;

	if (!s)
		return -ENOENT;
	if (kind == SCOPE_MANUAL) {
		if (s->manual == 0)
			return -ENOLCK;
		s->manual--;
		scope_note(t, s);
	} else {
		if (s->attached == 0)
			return -ENOLCK;
		s->attached--;
	}
	metrics_count(METRIC_KEY_RELEASES);
	if (kind == SCOPE_ATTACH && s->attached == 0 && s->revoked && s->serial > 0) {
		log_info("Last mapping of withdrawn key %s released: invalidating its kernel key.",
			 s->id);
		scope_drop_key(t, s);
	}
	if (scope_holders(s) > 0)
		return (int) scope_holders(s);

	if (t->linger_sec > 0 && s->serial > 0 && !s->revoked) {
		r = linger_start(t, s);
		if (r >= 0)
			return 0;
		log_warning_errno(r, "Failed to arm linger timer of %s, dropping now: %m", s->id);
	}
	scope_drop_key(t, s);
	scope_remove(t, s);
	return 0;
}

int scope_revoke(struct scopes *t, const char *id)
{
	struct scope *s = scope_find(t, id);

	if (!s)
		return -ENOENT;
	s->revoked = true;
	linger_stop(t, s);
	if (s->attached > 0 || s->serial <= 0)
		return 0;
	scope_drop_key(t, s);
	if (scope_holders(s) == 0)
		scope_remove(t, s);
	return 1;
}

void scopes_foreach(struct scopes *t, void (*f)(struct scope *s, void *userdata),
		    void *userdata)
{
	_cleanup_free_ void **v = NULL;
	size_t n;

	/* Sorted, so that lists read the same every time; f may not add or remove scopes.
	 * Without memory to sort, in table order. */
	if (idmap_sorted(&t->map, &v, &n) < 0) {
		for (size_t i = 0; i < t->map.cap; i++)
			if (t->map.slots[i])
				f(t->map.slots[i], userdata);
		return;
	}
	for (size_t i = 0; i < n; i++)
		f(v[i], userdata);
}
