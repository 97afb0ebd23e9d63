/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Key sources (contracts in source.h): the embedded store, Barbican, the sealed offline cache;
 * collections and waits that let a method call wait for Barbican without blocking the loop;
 * KeyList and clone-key on Barbican; consumers; prefetch and revalidation of the cache.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "barbican.h"
#include "log.h"
#include "proto.h"
#include "scope.h"
#include "source.h"
#include "supplied.h"
#include "util.h"

#define CACHE_DIR "cache"
#define CACHE_AAD_PREFIX "cache."
#define CACHE_FILE_MAX 1024
#define HINT_TTL_USEC (60u * 1000000)	/* list entries stand in for a metadata GET this long */
#define LIST_THRESHOLD 8		/* a batch this large lists the delegations first */
#define REVALIDATE_RETRY_SEC 30
#define CONSUMER_RETRY_MIN_SEC 15
#define CONSUMER_RETRY_MAX_SEC 3600
#define CONSUMERS_FILE "consumers.json"
#define CONSUMERS_MAX_FILE (8u << 20)

/* One key-id fetched from Barbican for the waits that need it. */
struct fetched {
	char id[KEYID_MAX + 1];
	struct source *src;
	struct barbican_op *op;
	bool started, done, from_cache, have_meta;
	int error;
	const char *error_name;
	char message[512];
	struct secret_buf key;
	struct barbican_meta meta;
	struct source_wait **waiters;	/* not yet told */
	size_t n_waiters, alloc_waiters;
	unsigned refs;			/* waits that hold it */
};

struct source_wait {
	struct source *src;
	struct source_wait *prev, *next;
	bool linked;
	struct fetched **items;
	size_t n, pending;
	sd_event_source *defer;
	void (*cb)(void *userdata, int error);
	void *userdata;
};

struct hint {
	char id[KEYID_MAX + 1];
	struct barbican_meta meta;
	uint64_t at;
};

enum job_kind { JOB_LIST, JOB_CLONE, JOB_CONSUMER, JOB_PREFETCH, JOB_REVALIDATE, JOB_PASS_LIST };

struct pass;

/* Background and method operations on Barbican, kept so that source_free() can end them. */
struct job {
	struct source *src;
	struct job *prev, *next;
	enum job_kind kind;
	struct barbican_op *op;
	char id[KEYID_MAX + 1];
	void *userdata;
	source_list_cb list_cb;
	source_clone_cb clone_cb;
	/* consumers */
	char resource[256];
	bool add, want, sent;
	uint64_t not_before;		/* CLOCK_REALTIME usec; 0: at once */
	unsigned attempts;
	sd_event_source *retry;
	struct pass *pass;
};

/* A prefetch or revalidation round: counts its fetches, reports and reschedules at the end. */
struct pass {
	enum job_kind kind;
	unsigned pending, ok, withdrawn, unreachable, failed;
};

struct source {
	sd_event *event;
	const struct config *cfg;
	struct store *store;
	struct barbican *bb;
	struct scopes *scopes;
	char *cache_dir;
	char *consumers_path;		/* <state-dir>/consumers.json, with Barbican */
	bool consumers_dirty;
	sd_event_source *consumers_saver;
	void *fetched;			/* tsearch(3) of struct fetched */
	void *hints;			/* tsearch(3) of struct hint */
	bool collecting;
	char (*collected)[KEYID_MAX + 1];
	size_t n_collected, alloc_collected;
	struct source_wait *waits;
	struct barbican_op *listing;
	struct fetched **after_list;
	size_t n_after_list, alloc_after_list;
	struct job *jobs;
	sd_event_source *revalidate;
	bool pass_running;
	uint64_t fetched_ok, fetch_failures, cache_hits, cache_writes, withdrawn;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

static void fetched_start(struct source *s, struct fetched *f);
static void schedule_revalidation(struct source *s, uint64_t sec);

/* A quarter of the cache's TTL, at least 1 s and, for a retry, at most REVALIDATE_RETRY_SEC:
 * a cached copy is always looked at again before it expires. */
static uint64_t revalidation_sec(const struct source *s, bool retry)
{
	uint64_t q = s->cfg->barbican_cache_ttl_sec / 4;

	if (q == 0)
		q = 1;
	return retry && q > REVALIDATE_RETRY_SEC ? REVALIDATE_RETRY_SEC : q;
}

/* ---- small helpers ------------------------------------------------------------------------- */


static int id_cmp(const void *a, const void *b)
{
	return strcmp((const char *) a, (const char *) b);	/* id is each struct's first field */
}

static const char *error_name_of(const struct barbican_error *e)
{
	switch (e->cls) {
	case BARBICAN_DENIED:
		return "keyscope.KeyNotDelegated";
	case BARBICAN_NOT_FOUND:
		return "keyscope.NoSuchKey";
	case BARBICAN_AUTH:
		return "keyscope.KeySourceAuth";
	case BARBICAN_UNREACHABLE:
		return "keyscope.KeySourceUnavailable";
	case BARBICAN_TLS:
		return "keyscope.KeySourceTLS";
	case BARBICAN_REFUSED:
		return e->error == -EMEDIUMTYPE ? "keyscope.KeyRefused" : "keyscope.KeySourceError";
	default:
		return "keyscope.KeySourceError";
	}
}

/* Whether the cache may stand in: Barbican (or the way to it) is down, not saying no. */
static bool cache_may_serve(const struct barbican_error *e)
{
	return e->cls == BARBICAN_UNREACHABLE || e->cls == BARBICAN_BAD_REPLY ||
	       e->cls == BARBICAN_TLS;
}

static bool withdrawn(const struct barbican_error *e)
{
	return e->cls == BARBICAN_DENIED || e->cls == BARBICAN_NOT_FOUND;
}

bool source_has_barbican(const struct source *s)
{
	return s->bb != NULL;
}

const char *source_kind(struct source *s, const char *id)
{
	if (supplied_has(id))
		return "supplied";
	if (!s->bb || store_has(s->store, id))
		return "local";
	return "barbican";
}

/* ---- the sealed cache ---------------------------------------------------------------------- */

static bool cache_on(const struct source *s)
{
	return s->cache_dir != NULL;
}

static int cache_names(struct source *s, const char *id, char *path, size_t psize, char *aad,
		       size_t asize)
{
	int k;

	if (!keyid_is_valid(id))
		return -EINVAL;
	k = snprintf(aad, asize, CACHE_AAD_PREFIX "%s", id);
	if (k < 0 || (size_t) k >= asize || !keyid_is_valid(aad))
		return -ENAMETOOLONG;
	k = snprintf(path, psize, "%s/%s.key", s->cache_dir, id);
	return k < 0 || (size_t) k >= psize ? -ENAMETOOLONG : 0;
}

static void cache_put(struct source *s, const char *id, const struct secret_buf *key,
		      const char *type)
{
	_cleanup_free_ uint8_t *blob = NULL;
	char path[PATH_MAX], aad[KEYID_MAX + 1];
	size_t size;
	int r;

	if (!cache_on(s))
		return;
	r = cache_names(s, id, path, sizeof(path), aad, sizeof(aad));
	if (r >= 0)
		r = store_seal_other(s->store, aad, key->data, key->len,
				     streq(type, "passphrase") ? "passphrase" : "symmetric",
				     (uint64_t) time(NULL), &blob, &size);
	/* Durable: the cache is for the reboot that follows. */
	if (r >= 0)
		r = write_file_atomic(path, blob, size, 0600);
	if (r < 0)
		log_warning_errno(r, "Failed to keep a sealed copy of key %s in %s, ignoring: %m",
				  id, s->cache_dir);
	else
		s->cache_writes++;
}

/* Returns 0 and the material and its age, -ENOENT, -ESTALE (expired: removed) or -errno. */
static int cache_get(struct source *s, const char *id, struct secret_buf *ret,
		     uint64_t *ret_age, char *ret_type, size_t type_size)
{
	_cleanup_free_ char *blob = NULL;
	char path[PATH_MAX], aad[KEYID_MAX + 1];
	struct store_entry e;
	int64_t now = (int64_t) time(NULL);
	size_t size;
	int r;

	if (!cache_on(s))
		return -ENOENT;
	r = cache_names(s, id, path, sizeof(path), aad, sizeof(aad));
	if (r < 0)
		return r;
	r = read_full_file(path, CACHE_FILE_MAX, &blob, &size);
	if (r < 0)
		return r == -EFBIG ? -EBADMSG : r;
	r = store_unseal_other(s->store, aad, (const uint8_t *) blob, size, ret, &e);
	if (r < 0)
		return r;
	if ((int64_t) e.created > now + 300 ||
	    now - (int64_t) e.created > (int64_t) s->cfg->barbican_cache_ttl_sec) {
		secret_buf_done(ret);
		(void) unlink(path);
		log_info("Cached copy of key %s expired (barbican-cache-ttl %us): removed.", id,
			 s->cfg->barbican_cache_ttl_sec);
		return -ESTALE;
	}
	*ret_age = (uint64_t) (now - (int64_t) e.created);
	snprintf(ret_type, type_size, "%.31s", e.name);
	return 0;
}

static void cache_drop(struct source *s, const char *id, const char *why)
{
	char path[PATH_MAX], aad[KEYID_MAX + 1];

	if (!cache_on(s) || cache_names(s, id, path, sizeof(path), aad, sizeof(aad)) < 0)
		return;
	if (unlink(path) >= 0)
		log_notice("Dropped the cached copy of key %s: %s.", id, why);
}

/* A 403 or 404: the node must not keep the key. */
static void key_withdrawn(struct source *s, const char *id, const struct barbican_error *e)
{
	int r;

	s->withdrawn++;
	cache_drop(s, id, e->cls == BARBICAN_DENIED ? "its delegation to this node was withdrawn"
						    : "it no longer exists in Barbican");
	if (!s->scopes)
		return;
	r = scope_revoke(s->scopes, id);
	if (r > 0)
		log_notice("Invalidated the kernel key of %s: Barbican %s.", id,
			   e->cls == BARBICAN_DENIED ? "no longer delegates it to this node"
						     : "no longer has it");
	else if (r == 0)
		log_notice("Key %s is withdrawn in Barbican; its kernel key goes with the last "
			   "mapping that uses it.", id);
}

/* ---- fetched entries ------------------------------------------------------------------------ */

static struct fetched *fetched_find(struct source *s, const char *id)
{
	void *node = tfind(id, &s->fetched, id_cmp);

	return node ? *(struct fetched **) node : NULL;
}

static void fetched_free(struct fetched *f)
{
	struct source *s = f->src;

	if (f->op)
		barbican_op_cancel(f->op);
	for (size_t i = 0; i < s->n_after_list; i++)
		if (s->after_list[i] == f)
			s->after_list[i] = NULL;
	tdelete(f->id, &s->fetched, id_cmp);
	secret_buf_done(&f->key);
	free(f->waiters);
	free(f);
}

static int fetched_get(struct source *s, const char *id, struct fetched **ret)
{
	struct fetched *f = fetched_find(s, id);

	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f)
			return -ENOMEM;
		snprintf(f->id, sizeof(f->id), "%s", id);
		f->src = s;
		if (!tsearch(f, &s->fetched, id_cmp)) {
			free(f);
			return -ENOMEM;
		}
	}
	*ret = f;
	return 0;
}

static void wait_fire(struct source_wait *w)
{
	(void) sd_event_source_set_enabled(w->defer, SD_EVENT_ONESHOT);
}

/* f has its result: tell the waits (from the loop, never from here). */
static void fetched_finish(struct fetched *f)
{
	f->done = true;
	f->op = NULL;
	for (size_t i = 0; i < f->n_waiters; i++) {
		struct source_wait *w = f->waiters[i];
		if (w->pending > 0 && --w->pending == 0)
			wait_fire(w);
	}
	f->n_waiters = 0;
	if (f->refs == 0)
		fetched_free(f);
}

static void fetched_fail(struct fetched *f, const struct barbican_error *e)
{
	f->error = e->error < 0 ? e->error : -EIO;
	f->error_name = error_name_of(e);
	snprintf(f->message, sizeof(f->message), "%s", e->message);
}

/* Barbican did not give the key: the cache may, or the error stands. */
static void fetched_error(struct source *s, struct fetched *f, const struct barbican_error *e)
{
	char type[32];
	uint64_t age;
	int r;

	if (withdrawn(e))
		key_withdrawn(s, f->id, e);
	if (cache_may_serve(e)) {
		r = cache_get(s, f->id, &f->key, &age, type, sizeof(type));
		if (r >= 0) {
			f->from_cache = true;
			snprintf(f->meta.secret_type, sizeof(f->meta.secret_type), "%s", type);
			s->cache_hits++;
			log_warning("%s; using the sealed cached copy of key %s (fetched %llus ago, "
				    "barbican-cache-ttl %us).", e->message, f->id,
				    (unsigned long long) age, s->cfg->barbican_cache_ttl_sec);
			schedule_revalidation(s, revalidation_sec(s, true));
			return;
		}
	}
	s->fetch_failures++;
	log_warning("%s", e->message);
	fetched_fail(f, e);
}

static void on_fetched(void *userdata, const struct barbican_error *e,
		       const struct barbican_meta *meta, struct secret_buf *key)
{
	struct fetched *f = userdata;
	struct source *s = f->src;

	f->op = NULL;
	if (e->error == 0) {
		f->key = *key;
		*key = (struct secret_buf) {};	/* transferred */
		f->meta = *meta;
		f->have_meta = true;
		s->fetched_ok++;
		log_debug("Fetched key %s from Barbican (%u bits, %s).", f->id, meta->bit_length,
			  meta->secret_type);
		cache_put(s, f->id, &f->key, meta->secret_type);
	} else
		fetched_error(s, f, e);
	fetched_finish(f);
}

static const struct hint *hint_fresh(struct source *s, const char *id)
{
	void *node = tfind(id, &s->hints, id_cmp);
	const struct hint *h = node ? *(const struct hint **) node : NULL;
	uint64_t now;

	if (!h)
		return NULL;
	(void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	return now - h->at < HINT_TTL_USEC ? h : NULL;
}

static void hints_add(struct source *s, const struct barbican_meta *items, size_t n)
{
	uint64_t now;

	(void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < n; i++) {
		void *node = tfind(items[i].id, &s->hints, id_cmp);
		struct hint *h = node ? *(struct hint **) node : calloc(1, sizeof(*h));

		if (!h)
			return;
		snprintf(h->id, sizeof(h->id), "%s", items[i].id);
		h->meta = items[i];
		h->at = now;
		if (!node && !tsearch(h, &s->hints, id_cmp)) {
			free(h);
			return;
		}
	}
}

static void fetched_start(struct source *s, struct fetched *f)
{
	const struct hint *h = hint_fresh(s, f->id);
	struct barbican_error e = {};
	char err[384];
	int r;

	f->started = true;
	if (h && barbican_check_meta(&h->meta, f->id, 0, (int64_t) time(NULL), err,
				     sizeof(err)) < 0) {
		/* The list says it cannot be a key: no need to fetch the payload. */
		e = (struct barbican_error) { .error = -EMEDIUMTYPE, .cls = BARBICAN_REFUSED };
		barbican_error_set(&e, "%s", err);
		fetched_error(s, f, &e);
		fetched_finish(f);
		return;
	}
	r = barbican_fetch(s->bb, f->id, h ? &h->meta : NULL, on_fetched, f, &f->op);
	if (r < 0) {
		e = (struct barbican_error) { .error = r, .cls = BARBICAN_REFUSED };
		barbican_error_set(&e, "fetching secret %s: %s", f->id,
			 strerror(-r));
		fetched_error(s, f, &e);
		fetched_finish(f);
	}
}

/* The delegation list came back (or failed): start the fetches that waited for it. */
static void on_listed_for_fetch(void *userdata, const struct barbican_error *e,
				const struct barbican_meta *items, size_t n)
{
	struct source *s = userdata;
	_cleanup_free_ struct fetched **todo = s->after_list;
	size_t m = s->n_after_list;

	s->listing = NULL;
	s->after_list = NULL;
	s->n_after_list = s->alloc_after_list = 0;
	if (e->error == 0)
		hints_add(s, items, n);
	else
		log_debug("Listing the delegations failed (%s); fetching one by one.", e->message);
	for (size_t i = 0; i < m; i++) {
		struct fetched *f = todo[i];
		if (!f)
			continue;
		/* Down is down: do not spend a second deadline on each key. */
		if (e->error < 0 && (cache_may_serve(e) || e->cls == BARBICAN_AUTH)) {
			struct barbican_error g = *e;
			barbican_error_set(&g, "fetching secret %s: %s", f->id,
				 e->message);
			fetched_error(s, f, &g);
			fetched_finish(f);
		} else
			fetched_start(s, f);
	}
}

static int after_list_add(struct source *s, struct fetched *f)
{
	if (s->n_after_list == s->alloc_after_list) {
		size_t a = s->alloc_after_list ? s->alloc_after_list * 2 : 64;
		struct fetched **p = realloc(s->after_list, a * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->after_list = p;
		s->alloc_after_list = a;
	}
	s->after_list[s->n_after_list++] = f;
	f->started = true;
	return 0;
}

/* ---- collections and waits ----------------------------------------------------------------- */

void source_collect_begin(struct source *s)
{
	s->collecting = true;
	s->n_collected = 0;
}

static int collect_add(struct source *s, const char *id)
{
	for (size_t i = 0; i < s->n_collected; i++)
		if (streq(s->collected[i], id))
			return 0;
	if (s->n_collected == s->alloc_collected) {
		size_t a = s->alloc_collected ? s->alloc_collected * 2 : 16;
		char (*p)[KEYID_MAX + 1] = realloc(s->collected, a * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->collected = p;
		s->alloc_collected = a;
	}
	snprintf(s->collected[s->n_collected++], KEYID_MAX + 1, "%s", id);
	return 0;
}

int source_fetch(void *userdata, const char *id, struct secret_buf *ret)
{
	struct source *s = userdata;
	struct fetched *f;
	int r;

	r = supplied_fetch(id, ret);	/* the running call's own key (supplied.h) */
	if (r != -ENOENT)
		return r;
	r = store_get(s->store, id, ret);
	if (r != -ENOENT || !s->bb)
		return r;
	f = fetched_find(s, id);
	if (f && f->done) {
		if (f->error < 0)
			return f->error;
		r = secret_buf_new(f->key.len, ret);
		if (r < 0)
			return r;
		memcpy(ret->data, f->key.data, f->key.len);
		return 0;
	}
	if (s->collecting) {
		r = collect_add(s, id);
		if (r < 0)
			return r;
	}
	return -EINPROGRESS;
}

int source_want(struct source *s, const char *id)
{
	struct fetched *f;
	int r;

	if (!s->bb || store_has(s->store, id) || supplied_has(id))
		return 0;
	f = fetched_find(s, id);
	if (f && f->done)
		return 0;
	if (s->collecting && (r = collect_add(s, id)) < 0)
		return r;
	return -EINPROGRESS;
}

bool source_error(struct source *s, const char *id, const char **ret_name,
		  const char **ret_message)
{
	struct fetched *f = s->bb ? fetched_find(s, id) : NULL;

	if (!f || !f->done || f->error >= 0 || !f->error_name)
		return false;
	*ret_name = f->error_name;
	*ret_message = f->message;
	return true;
}

static int on_wait_defer(sd_event_source *es, void *userdata)
{
	struct source_wait *w = userdata;

	(void) sd_event_source_set_enabled(w->defer, SD_EVENT_OFF);
	w->cb(w->userdata, 0);
	return 0;
}

static void wait_unlink(struct source_wait *w)
{
	struct source *s = w->src;

	if (!w->linked)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		s->waits = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->linked = false;
}

struct source_wait *source_wait_free(struct source_wait *w)
{
	if (!w)
		return NULL;
	wait_unlink(w);
	sd_event_source_disable_unref(w->defer);
	for (size_t i = 0; i < w->n; i++) {
		struct fetched *f = w->items[i];
		if (!f)
			continue;
		for (size_t j = 0; j < f->n_waiters; j++)
			if (f->waiters[j] == w)
				f->waiters[j] = f->waiters[--f->n_waiters];
		if (--f->refs == 0)
			fetched_free(f);
	}
	free(w->items);
	free(w);
	return NULL;
}

static int waiter_add(struct fetched *f, struct source_wait *w)
{
	if (f->n_waiters == f->alloc_waiters) {
		size_t a = f->alloc_waiters ? f->alloc_waiters * 2 : 2;
		struct source_wait **p = realloc(f->waiters, a * sizeof(*p));
		if (!p)
			return -ENOMEM;
		f->waiters = p;
		f->alloc_waiters = a;
	}
	f->waiters[f->n_waiters++] = w;
	return 0;
}

int source_collect_end(struct source *s, void (*cb)(void *userdata, int error), void *userdata,
		       struct source_wait **ret)
{
	struct source_wait *w;
	size_t unhinted = 0;
	int r;

	s->collecting = false;
	if (s->n_collected == 0)
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->src = s;
	w->cb = cb;
	w->userdata = userdata;
	w->items = calloc(s->n_collected, sizeof(*w->items));
	r = w->items ? sd_event_add_defer(s->event, &w->defer, on_wait_defer, w) : -ENOMEM;
	if (r >= 0)
		r = sd_event_source_set_enabled(w->defer, SD_EVENT_OFF);
	for (size_t i = 0; r >= 0 && i < s->n_collected; i++) {
		struct fetched *f;
		r = fetched_get(s, s->collected[i], &f);
		if (r < 0)
			break;
		f->refs++;
		w->items[w->n++] = f;
		if (!f->done) {
			r = waiter_add(f, w);
			w->pending += r >= 0;
		}
		if (!f->started && !hint_fresh(s, f->id))
			unhinted++;
	}
	w->next = s->waits;
	if (w->next)
		w->next->prev = w;
	s->waits = w;
	w->linked = true;
	if (r < 0) {
		source_wait_free(w);
		return r;
	}
	/* Many keys at once (a boot): one list of the delegations gives their metadata in a few
	 * requests, so each key then costs one request instead of two. */
	if (unhinted >= LIST_THRESHOLD && !s->listing &&
	    barbican_list_delegated(s->bb, on_listed_for_fetch, s, &s->listing) < 0)
		s->listing = NULL;
	for (size_t i = 0; i < w->n; i++) {
		struct fetched *f = w->items[i];
		if (f->started)
			continue;
		if (!s->listing || after_list_add(s, f) < 0)
			fetched_start(s, f);
	}
	if (w->pending == 0)
		wait_fire(w);
	*ret = w;
	return 1;
}

/* ---- jobs: list, clone, consumers, prefetch, revalidation ----------------------------------- */

static struct job *job_new(struct source *s, enum job_kind kind, const char *id)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->src = s;
	j->kind = kind;
	if (id)
		snprintf(j->id, sizeof(j->id), "%s", id);
	j->next = s->jobs;
	if (j->next)
		j->next->prev = j;
	s->jobs = j;
	return j;
}

static void job_free(struct job *j)
{
	struct source *s = j->src;

	if (j->op)
		barbican_op_cancel(j->op);
	sd_event_source_disable_unref(j->retry);
	if (j->prev)
		j->prev->next = j->next;
	else
		s->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	free(j);
}

static json_object *meta_to_json(const struct barbican_meta *m)
{
	json_object *o = json_object_new_object();
	char err[384];
	bool usable = barbican_check_meta(m, m->id, 0, (int64_t) time(NULL), err, sizeof(err)) >= 0;

	json_object_object_add(o, "key-id", json_object_new_string(m->id));
	json_object_object_add(o, "name", json_object_new_string(m->name));
	json_object_object_add(o, "bits", json_object_new_int((int) m->bit_length));
	json_object_object_add(o, "created", json_object_new_int64(m->created));
	json_object_object_add(o, "source", json_object_new_string("barbican"));
	json_object_object_add(o, "secret-type", json_object_new_string(m->secret_type));
	json_object_object_add(o, "usable", json_object_new_boolean(usable));
	if (!usable)
		json_object_object_add(o, "problem", json_object_new_string(err));
	return o;
}

static void on_listed(void *userdata, const struct barbican_error *e,
		      const struct barbican_meta *items, size_t n)
{
	struct job *j = userdata;
	json_object *a;

	j->op = NULL;
	if (e->error < 0) {
		log_warning("%s", e->message);
		j->list_cb(j->userdata, e->error, error_name_of(e), e->message, NULL);
		job_free(j);
		return;
	}
	hints_add(j->src, items, n);
	a = json_object_new_array_ext((int) n);
	for (size_t i = 0; a && i < n; i++)
		json_object_array_add(a, meta_to_json(&items[i]));
	j->list_cb(j->userdata, a ? 0 : -ENOMEM, "keyscope.InternalError", "out of memory", a);
	job_free(j);
}

int source_list(struct source *s, source_list_cb cb, void *userdata)
{
	struct job *j;
	int r;

	if (!s->bb)
		return -EOPNOTSUPP;
	j = job_new(s, JOB_LIST, NULL);
	if (!j)
		return -ENOMEM;
	j->list_cb = cb;
	j->userdata = userdata;
	r = barbican_list_delegated(s->bb, on_listed, j, &j->op);
	if (r < 0) {
		j->op = NULL;
		job_free(j);
	}
	return r;
}

static void on_stored(void *userdata, const struct barbican_error *e, const char *new_id)
{
	struct job *j = userdata;

	j->op = NULL;
	if (e->error < 0) {
		log_warning("Clone of key %s: %s", j->id, e->message);
		j->clone_cb(j->userdata, e->error, error_name_of(e), e->message, NULL);
	} else
		j->clone_cb(j->userdata, 0, NULL, NULL, new_id);
	job_free(j);
}

int source_clone(struct source *s, const char *id, const char *name, source_clone_cb cb,
		 void *userdata)
{
	struct barbican_meta like = {};
	struct fetched *f;
	struct job *j;
	int r;

	if (!s->bb)
		return -ENOENT;
	f = fetched_find(s, id);
	if (!f || !f->done) {
		if (s->collecting && (r = collect_add(s, id)) < 0)
			return r;
		return -EINPROGRESS;
	}
	if (f->error < 0)
		return f->error;
	if (f->have_meta)
		like = f->meta;
	else {
		/* From the cache: Barbican is down and the store below fails; say so there. */
		snprintf(like.secret_type, sizeof(like.secret_type), "%s",
			 f->meta.secret_type[0] ? f->meta.secret_type : "symmetric");
		snprintf(like.algorithm, sizeof(like.algorithm), "aes");
	}
	j = job_new(s, JOB_CLONE, id);
	if (!j)
		return -ENOMEM;
	j->clone_cb = cb;
	j->userdata = userdata;
	r = barbican_store(s->bb, &like, &f->key, name, on_stored, j, &j->op);
	if (r < 0) {
		j->op = NULL;
		job_free(j);
	}
	return r;
}

/*
 * Consumers. One job per (key-id, resource) while Barbican has not yet been told what keyscoped
 * wants: `want` is the newest wish (registered or not), `add` what the request in flight or
 * the next one asks. A wish that flips a job which never sent anything drops the job: Barbican
 * still holds what the new wish wants (a job carried over from an earlier run counts as sent:
 * that run may have asked). The jobs are kept in consumers.json so that a restart
 * carries them on; a request is always started from a timer, never inside a method call.
 */
static void consumer_start(struct job *j);

static void consumers_write(struct source *s)
{
	_cleanup_json_ json_object *root = NULL;
	json_object *arr;
	const char *text;
	int r;

	if (!s->consumers_path)
		return;
	root = json_object_new_object();
	arr = json_object_new_array();
	if (!root || !arr) {
		json_object_put(arr);
		log_oom();
		return;
	}
	json_object_object_add(root, "version", json_object_new_int(1));
	json_object_object_add(root, "consumers", arr);
	for (struct job *j = s->jobs; j; j = j->next) {
		json_object *o;

		if (j->kind != JOB_CONSUMER)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "key-id", json_object_new_string(j->id));
		json_object_object_add(o, "resource", json_object_new_string(j->resource));
		json_object_object_add(o, "add", json_object_new_boolean(j->want));
		json_object_object_add(o, "not-before", json_object_new_int64((int64_t) j->not_before));
		json_object_array_add(arr, o);
	}
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	/* Replaced atomically, not fsynced (a boot attaching hundreds of volumes would wait for
	 * as many syncs): what a power cut can lose is a consumer change of the last seconds. */
	s->consumers_dirty = false;
	r = write_file_atomic_flags(s->consumers_path, text, strlen(text), 0600, 0);
	if (r < 0)
		log_warning_errno(r, "Failed to write %s (pending Barbican consumer changes are "
				  "lost at the next restart): %m", s->consumers_path);
}

static int on_consumers_save(sd_event_source *es, void *userdata)
{
	struct source *s = userdata;

	s->consumers_saver = sd_event_source_disable_unref(s->consumers_saver);
	if (s->consumers_dirty)
		consumers_write(s);
	return 0;
}

/* Writes consumers.json once this turn of the loop is over: the changes of one turn (a batch
 * of answers, a status call that found several vanished mappings) make one write. */
static void consumers_save(struct source *s)
{
	if (!s->consumers_path)
		return;
	s->consumers_dirty = true;
	if (!s->consumers_saver &&
	    sd_event_add_defer(s->event, &s->consumers_saver, on_consumers_save, s) < 0)
		consumers_write(s);
}

static int on_consumer_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct job *j = userdata;

	j->retry = sd_event_source_disable_unref(j->retry);
	consumer_start(j);
	return 0;
}

/* Starts j's request after delay_usec (0: at the next turn of the loop). */
static int consumer_schedule(struct job *j, uint64_t delay_usec)
{
	j->retry = sd_event_source_disable_unref(j->retry);
	return sd_event_add_time_relative(j->src->event, &j->retry, CLOCK_MONOTONIC, delay_usec,
					  delay_usec ? 1000000 : 0, on_consumer_timer, j);
}

static struct job *consumer_find(struct source *s, const char *id, const char *resource_id)
{
	for (struct job *j = s->jobs; j; j = j->next)
		if (j->kind == JOB_CONSUMER && streq(j->id, id) && streq(j->resource, resource_id))
			return j;
	return NULL;
}

static uint64_t realtime_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void on_consumer_done(void *userdata, const struct barbican_error *e)
{
	struct job *j = userdata;
	struct source *s = j->src;
	uint64_t delay = CONSUMER_RETRY_MIN_SEC;
	bool ok = e->error == 0 || (e->cls == BARBICAN_NOT_FOUND && !j->add);

	j->op = NULL;
	if (ok)
		log_info("%s volume %s as a consumer of secret %s in Barbican.",
			 j->add ? "Registered" : "Removed", j->resource, j->id);
	else if (e->cls == BARBICAN_NOT_FOUND || e->cls == BARBICAN_DENIED)
		log_warning("%s; not retrying.", e->message);
	if (j->want != j->add) {
		/* The wish flipped while the request was out: ask for the newest one now. */
		j->add = j->want;
		j->attempts = 0;
		consumer_start(j);
		return;
	}
	if (ok || e->cls == BARBICAN_NOT_FOUND || e->cls == BARBICAN_DENIED) {
		job_free(j);
		consumers_save(s);
		return;
	}
	for (unsigned i = 0; i < j->attempts && delay < CONSUMER_RETRY_MAX_SEC; i++)
		delay *= 2;
	if (delay > CONSUMER_RETRY_MAX_SEC)
		delay = CONSUMER_RETRY_MAX_SEC;
	j->attempts++;
	log_warning("%s; retrying in %llus.", e->message, (unsigned long long) delay);
	if (consumer_schedule(j, delay * 1000000) < 0) {
		log_oom();
		job_free(j);
		consumers_save(s);
	}
}

static void consumer_start(struct job *j)
{
	struct source *s = j->src;
	int r;

	j->sent = true;
	r = barbican_consumer(s->bb, j->id, j->add, s->cfg->barbican_consumer_service,
			      j->resource, on_consumer_done, j, &j->op);
	if (r < 0) {
		j->op = NULL;
		log_warning_errno(r, "Cannot %s consumer %s of secret %s, ignoring: %m",
				  j->add ? "register" : "remove", j->resource, j->id);
		job_free(j);
		consumers_save(s);
	}
}

/* sent: whether an earlier run may have asked already (Barbican's state is unknown then). */
static int consumer_job(struct source *s, const char *id, const char *resource_id, bool add,
			uint64_t not_before, bool sent)
{
	struct job *j = job_new(s, JOB_CONSUMER, id);
	uint64_t now = realtime_usec();

	if (!j)
		return -ENOMEM;
	snprintf(j->resource, sizeof(j->resource), "%s", resource_id);
	j->add = j->want = add;
	j->not_before = not_before;
	j->sent = sent;
	if (consumer_schedule(j, not_before > now ? not_before - now : 0) < 0) {
		job_free(j);
		return -ENOMEM;
	}
	return 0;
}

void source_consumer(struct source *s, const char *id, const char *resource_id, bool add,
		     bool grace)
{
	unsigned delay_sec = grace ? s->cfg->barbican_consumer_grace_sec : 0;
	uint64_t not_before = delay_sec ? realtime_usec() + (uint64_t) delay_sec * 1000000 : 0;
	struct job *j;

	if (!s->bb || isempty(resource_id) || strlen(resource_id) >= sizeof(j->resource) ||
	    !keyid_is_valid(id) || store_has(s->store, id))
		return;
	j = consumer_find(s, id, resource_id);
	if (!j) {
		if (consumer_job(s, id, resource_id, add, not_before, false) < 0)
			log_oom();
	} else if (j->want == add) {
		return;		/* already on its way */
	} else if (!j->sent) {
		/* Nothing was asked yet: Barbican already holds what the new wish wants. */
		log_debug("Consumer %s of secret %s: %s cancels the pending %s.", resource_id, id,
			  add ? "registration" : "removal", add ? "removal" : "registration");
		job_free(j);
	} else {
		j->want = add;
		j->not_before = not_before;
		if (!j->op) {
			/* Waiting for a retry: go on with the newest wish. */
			j->add = add;
			j->attempts = 0;
			(void) consumer_schedule(j, (uint64_t) delay_sec * 1000000);
		}
		/* In flight: on_consumer_done() asks for the newest wish once the answer is in. */
	}
	consumers_save(s);
}

/* The consumer changes a previous run had not made yet (consumers.json). */
static void consumers_load(struct source *s)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_object *root = NULL;
	json_object *arr;
	size_t n = 0;
	int r;

	r = read_full_file(s->consumers_path, CONSUMERS_MAX_FILE, &text, NULL);
	if (r == -ENOENT)
		return;
	if (r < 0) {
		log_warning_errno(r, "Failed to read %s, ignoring (pending Barbican consumer changes "
				  "are lost): %m", s->consumers_path);
		return;
	}
	root = json_tokener_parse(text);
	if (!root || !json_object_object_get_ex(root, "consumers", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		log_warning("%s is not a keyscope consumer file, ignoring (pending Barbican consumer "
			    "changes are lost).", s->consumers_path);
		return;
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i), *id, *res, *add, *nb;

		if (!json_object_object_get_ex(o, "key-id", &id) ||
		    !json_object_object_get_ex(o, "resource", &res) ||
		    !json_object_object_get_ex(o, "add", &add) ||
		    !json_object_is_type(id, json_type_string) ||
		    !json_object_is_type(res, json_type_string) ||
		    !json_object_is_type(add, json_type_boolean) ||
		    !keyid_is_valid(json_object_get_string(id)) ||
		    json_object_get_string_len(res) == 0 ||
		    json_object_get_string_len(res) >= (int) sizeof(((struct job *) 0)->resource) ||
		    consumer_find(s, json_object_get_string(id), json_object_get_string(res))) {
			log_warning("%s: entry %zu is malformed, ignoring.", s->consumers_path, i);
			continue;
		}
		nb = json_object_object_get(o, "not-before");
		if (consumer_job(s, json_object_get_string(id), json_object_get_string(res),
				 json_object_get_boolean(add),
				 nb ? (uint64_t) json_object_get_int64(nb) : 0, true) < 0) {
			log_oom();
			return;
		}
		n++;
	}
	if (n)
		log_info("Carrying on %zu Barbican consumer changes from the previous run.", n);
}

/* Prefetch and revalidation rounds share the accounting. */
static void pass_end(struct source *s, struct pass *p)
{
	const char *what = p->kind == JOB_PREFETCH ? "Prefetch into the sealed cache"
						   : "Revalidation of the sealed cache";

	log_info("%s: %u keys refreshed, %u withdrawn and dropped, %u unreachable, %u refused.",
		 what, p->ok, p->withdrawn, p->unreachable, p->failed);
	s->pass_running = false;
	schedule_revalidation(s, revalidation_sec(s, p->unreachable > 0));
	free(p);
}

static void on_pass_fetched(void *userdata, const struct barbican_error *e,
			    const struct barbican_meta *meta, struct secret_buf *key)
{
	struct job *j = userdata;
	struct source *s = j->src;
	struct pass *p = j->pass;

	j->op = NULL;
	if (e->error == 0) {
		cache_put(s, j->id, key, meta->secret_type);
		p->ok++;
	} else if (withdrawn(e)) {
		key_withdrawn(s, j->id, e);
		p->withdrawn++;
	} else if (cache_may_serve(e) || e->cls == BARBICAN_AUTH)
		p->unreachable++;
	else {
		log_warning("%s", e->message);
		p->failed++;
	}
	job_free(j);
	if (--p->pending == 0)
		pass_end(s, p);
}

static void pass_fetch(struct source *s, struct pass *p, const char *id,
		       const struct barbican_meta *hint)
{
	struct job *j = job_new(s, p->kind, id);

	if (!j)
		return;
	j->pass = p;
	p->pending++;
	if (barbican_fetch(s->bb, id, hint, on_pass_fetched, j, &j->op) < 0) {
		j->op = NULL;
		p->pending--;
		p->failed++;
		job_free(j);
	}
}

static void on_prefetch_listed(void *userdata, const struct barbican_error *e,
			       const struct barbican_meta *items, size_t n)
{
	struct job *j = userdata;
	struct source *s = j->src;
	struct pass *p = j->pass;
	char err[384];

	j->op = NULL;
	j->pass = NULL;
	job_free(j);
	if (e->error < 0) {
		log_warning("Prefetch: %s", e->message);
		p->unreachable++;
		if (--p->pending == 0)
			pass_end(s, p);
		return;
	}
	hints_add(s, items, n);
	for (size_t i = 0; i < n; i++) {
		if (barbican_check_meta(&items[i], items[i].id, 0, (int64_t) time(NULL), err,
					sizeof(err)) < 0) {
			log_info("Prefetch: skipping %s", err);
			continue;
		}
		pass_fetch(s, p, items[i].id, &items[i]);
	}
	if (--p->pending == 0)
		pass_end(s, p);
}

static void prefetch(struct source *s)
{
	struct pass *p = calloc(1, sizeof(*p));
	struct job *j = p ? job_new(s, JOB_PASS_LIST, NULL) : NULL;

	if (!j) {
		free(p);
		log_oom();
		return;
	}
	p->kind = JOB_PREFETCH;
	p->pending = 1;	/* the list job holds the round */
	j->pass = p;
	s->pass_running = true;
	if (barbican_list_delegated(s->bb, on_prefetch_listed, j, &j->op) < 0) {
		j->op = NULL;
		j->pass = NULL;
		job_free(j);
		free(p);
		s->pass_running = false;
	}
}

static void revalidate(struct source *s)
{
	_cleanup_(closedirp) DIR *d = opendir(s->cache_dir);
	struct pass *p;
	struct dirent *de;

	if (!d)
		return;
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->kind = JOB_REVALIDATE;
	p->pending++;	/* held while starting */
	s->pass_running = true;
	while ((de = readdir(d))) {
		char id[KEYID_MAX + 1], type[32];
		_cleanup_secret_buf_ struct secret_buf key = {};
		size_t n = strlen(de->d_name);
		uint64_t age;

		if (n <= 4 || n - 4 > KEYID_MAX || !streq(de->d_name + n - 4, ".key"))
			continue;
		memcpy(id, de->d_name, n - 4);
		id[n - 4] = 0;
		/* Unreadable or expired copies go; the rest are asked for again. */
		if (cache_get(s, id, &key, &age, type, sizeof(type)) < 0) {
			if (keyid_is_valid(id))
				cache_drop(s, id, "it is expired or cannot be unsealed");
			continue;
		}
		pass_fetch(s, p, id, NULL);
	}
	if (--p->pending == 0)
		pass_end(s, p);
}

static int on_revalidate(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct source *s = userdata;

	if (!s->pass_running)
		revalidate(s);
	return 0;
}

static void schedule_revalidation(struct source *s, uint64_t sec)
{
	uint64_t now, when;

	if (!cache_on(s) || !s->revalidate)
		return;
	(void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	when = now + (sec ? sec : 1) * 1000000;
	/* An earlier round wins over a later one. */
	if (sd_event_source_get_enabled(s->revalidate, NULL) > 0) {
		uint64_t cur;
		if (sd_event_source_get_time(s->revalidate, &cur) >= 0 && cur <= when)
			return;
	}
	(void) sd_event_source_set_time(s->revalidate, when);
	(void) sd_event_source_set_enabled(s->revalidate, SD_EVENT_ONESHOT);
}

/* ---- set-up ------------------------------------------------------------------------------- */

void source_set_scopes(struct source *s, struct scopes *scopes)
{
	s->scopes = scopes;
}

int source_start(struct source *s)
{
	int r;

	if (!s->bb)
		return 0;
	if (cache_on(s)) {
		r = sd_event_add_time(s->event, &s->revalidate, CLOCK_MONOTONIC, UINT64_MAX,
				      1000000, on_revalidate, s);
		if (r < 0)
			return log_error_errno(r, "Failed to set up cache revalidation: %m");
		(void) sd_event_source_set_enabled(s->revalidate, SD_EVENT_OFF);
	}
	if (s->cfg->barbican_prefetch) {
		if (!cache_on(s))
			log_notice("barbican-prefetch = yes needs barbican-cache = yes (it warms the "
				   "sealed cache), ignoring.");
		else
			prefetch(s);
	}
	if (cache_on(s) && !s->pass_running)
		schedule_revalidation(s, revalidation_sec(s, true));
	return 0;
}

static void log_barbican(const struct config *cfg)
{
	if (cfg->barbican_auth == BARBICAN_AUTH_NONE)
		log_warning("Barbican at %s WITHOUT AUTHENTICATION (barbican-auth = none: "
			    "Barbican's development mode): acting as user %s in project %s with "
			    "roles %s. Never use this outside a test.", cfg->barbican_url,
			    cfg->barbican_user_id ?: "?", cfg->barbican_project_id ?: "?",
			    cfg->barbican_roles ?: "");
	else
		log_info("Barbican at %s, authenticated by Keystone at %s with the application "
			 "credential in %s.", cfg->barbican_url, cfg->keystone_url ?: "?",
			 cfg->app_credential_file ?: "?");
	if (strneq(cfg->barbican_url, "http://", 7))
		log_warning("barbican-url %s is plain HTTP: keys would cross the network in clear. "
			    "Use https:// outside a test.", cfg->barbican_url);
	if (cfg->barbican_cache)
		log_info("Sealed offline cache of Barbican keys on (barbican-cache-ttl %us).",
			 cfg->barbican_cache_ttl_sec);
}

int source_new(sd_event *event, const struct config *cfg, struct store *store,
	       struct source **ret)
{
	struct source *s = calloc(1, sizeof(*s));
	struct barbican_options o;
	int r;

	if (!s)
		return log_oom();
	s->event = sd_event_ref(event);
	s->cfg = cfg;
	s->store = store;
	if (isempty(cfg->barbican_url)) {
		*ret = s;
		return 0;
	}
	o = (struct barbican_options) {
		.url = cfg->barbican_url,
		.ca_file = cfg->barbican_ca_file,
		.ca_dir = cfg->barbican_ca_dir,
		.client_cert = cfg->barbican_client_cert,
		.client_key = cfg->barbican_client_key,
		.auth = (enum barbican_auth) cfg->barbican_auth,
		.project_id = cfg->barbican_project_id,
		.user_id = cfg->barbican_user_id,
		.roles = cfg->barbican_roles,
		.keystone_url = cfg->keystone_url,
		.app_credential_file = cfg->app_credential_file,
		.connect_timeout_sec = cfg->barbican_connect_timeout_sec,
		.timeout_sec = cfg->barbican_timeout_sec,
		.deadline_sec = cfg->barbican_deadline_sec,
		.retries = cfg->barbican_retries,
		.concurrency = cfg->barbican_concurrency,
	};
	r = barbican_new(event, &o, &s->bb);
	if (r < 0) {
		source_free(s);
		return r;
	}
	if (cfg->barbican_cache) {
		s->cache_dir = path_join(cfg->state_dir, CACHE_DIR);
		if (!s->cache_dir) {
			source_free(s);
			return log_oom();
		}
		r = mkdir_p(s->cache_dir, 0700);
		if (r < 0) {
			log_error_errno(r, "Failed to create %s: %m", s->cache_dir);
			source_free(s);
			return r;
		}
	}
	log_barbican(cfg);
	s->consumers_path = path_join(cfg->state_dir, CONSUMERS_FILE);
	if (!s->consumers_path) {
		source_free(s);
		return log_oom();
	}
	consumers_load(s);
	*ret = s;
	return 0;
}

static void fetched_destroy(void *p)
{
	struct fetched *f = p;

	if (f->op)
		barbican_op_cancel(f->op);
	secret_buf_done(&f->key);
	free(f->waiters);
	free(f);
}

static void free_hint(void *p)
{
	free(p);
}

struct source *source_free(struct source *s)
{
	if (!s)
		return NULL;
	/* The consumer changes not yet written, while their jobs still exist. */
	if (s->consumers_dirty)
		consumers_write(s);
	s->consumers_saver = sd_event_source_disable_unref(s->consumers_saver);
	/* Waiting calls learn that the daemon stops; they free their waits. */
	while (s->waits) {
		struct source_wait *w = s->waits;
		wait_unlink(w);
		w->cb(w->userdata, -ECANCELED);
	}
	while (s->jobs) {
		struct job *j = s->jobs;
		if (j->kind == JOB_LIST && j->op)
			j->list_cb(j->userdata, -ECANCELED, "keyscope.Cancelled",
				   "keyscoped is stopping", NULL);
		else if (j->kind == JOB_CLONE && j->op)
			j->clone_cb(j->userdata, -ECANCELED, "keyscope.Cancelled",
				    "keyscoped is stopping", NULL);
		if (j->pass && --j->pass->pending == 0)
			free(j->pass);
		job_free(j);
	}
	if (s->listing)
		barbican_op_cancel(s->listing);
	s->listing = NULL;
	tdestroy(s->fetched, fetched_destroy);
	s->fetched = NULL;
	tdestroy(s->hints, free_hint);
	free(s->after_list);
	free(s->collected);
	sd_event_source_disable_unref(s->revalidate);
	s->bb = barbican_free(s->bb);
	free(s->cache_dir);
	free(s->consumers_path);
	sd_event_unref(s->event);
	free(s);
	return NULL;
}

/* ---- status -------------------------------------------------------------------------------- */

void source_status(struct source *s, json_object *reply)
{
	json_object *ks = json_object_new_object(), *b;
	struct barbican_stats st;
	unsigned consumers = 0;

	json_object_object_add(ks, "local", json_object_new_boolean(true));
	if (!s->bb) {
		json_object_object_add(reply, "key-sources", ks);
		return;
	}
	barbican_get_stats(s->bb, &st);
	for (struct job *j = s->jobs; j; j = j->next)
		consumers += j->kind == JOB_CONSUMER;
	b = json_object_new_object();
	json_object_object_add(b, "url", json_object_new_string(barbican_url(s->bb)));
	json_object_object_add(b, "user", json_object_new_string(barbican_user(s->bb)));
	json_object_object_add(b, "auth", json_object_new_string(
		s->cfg->barbican_auth == BARBICAN_AUTH_NONE ? "none" : "app-credential"));
	json_object_object_add(b, "requests", json_object_new_int64((int64_t) st.requests));
	json_object_object_add(b, "retries", json_object_new_int64((int64_t) st.retries));
	json_object_object_add(b, "failures", json_object_new_int64((int64_t) st.failures));
	json_object_object_add(b, "authentications", json_object_new_int64((int64_t) st.auths));
	json_object_object_add(b, "in-flight", json_object_new_int((int) st.active));
	json_object_object_add(b, "queued", json_object_new_int((int) st.queued));
	json_object_object_add(b, "fetched", json_object_new_int64((int64_t) s->fetched_ok));
	json_object_object_add(b, "fetch-failures",
			       json_object_new_int64((int64_t) s->fetch_failures));
	json_object_object_add(b, "withdrawn", json_object_new_int64((int64_t) s->withdrawn));
	json_object_object_add(b, "cache", json_object_new_boolean(cache_on(s)));
	json_object_object_add(b, "cache-hits", json_object_new_int64((int64_t) s->cache_hits));
	json_object_object_add(b, "cache-writes",
			       json_object_new_int64((int64_t) s->cache_writes));
	json_object_object_add(b, "consumers-pending", json_object_new_int((int) consumers));
	json_object_object_add(ks, "barbican", b);
	json_object_object_add(reply, "key-sources", ks);
}
