/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the files of daemon/sources share (the public contracts are in source.h):
 *   source.c      dispatch (source_fetch/want/error), collections and waits, set-up, status
 *   fetch.c       one fetch per key-id however many calls wait for it, the delegation list
 *                 that stands in for metadata GETs, KeyList and clone-key jobs
 *   cache.c       the sealed offline cache (<state-dir>/cache) and withdrawn keys
 *   consumers.c   the Barbican consumer queue, consumers.json and its retry timers
 *   revalidate.c  prefetch into the cache and its periodic revalidation
 */
#pragma once

#include <search.h>
#include <string.h>

#include "barbican.h"
#include "source.h"

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
	uint64_t started_usec;		/* CLOCK_MONOTONIC, for the fetch latency metric */
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
	source_withdrawn_t on_withdrawn;	/* the keys above: drop the kernel key */
	void *withdrawn_userdata;
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

static inline int source_id_cmp(const void *a, const void *b)
{
	return strcmp((const char *) a, (const char *) b);	/* id is each struct's first field */
}

/* Whether the cache may stand in: Barbican (or the way to it) is down, not saying no. */
static inline bool cache_may_serve(const struct barbican_error *e)
{
	return e->cls == BARBICAN_UNREACHABLE || e->cls == BARBICAN_BAD_REPLY ||
	       e->cls == BARBICAN_TLS;
}

static inline bool is_withdrawn(const struct barbican_error *e)
{
	return e->cls == BARBICAN_DENIED || e->cls == BARBICAN_NOT_FOUND;
}

static inline bool cache_on(const struct source *s)
{
	return s->cache_dir != NULL;
}

/* source.c */
const char *source_error_name(const struct barbican_error *e);
int source_collect_add(struct source *s, const char *id);
static inline void source_wait_fire(struct source_wait *w)
{
	(void) sd_event_source_set_enabled(w->defer, SD_EVENT_ONESHOT);
}

/* fetch.c */
struct fetched *fetched_find(struct source *s, const char *id);
int fetched_get(struct source *s, const char *id, struct fetched **ret);
void fetched_free(struct fetched *f);
void fetched_start(struct source *s, struct fetched *f);
void fetched_start_all(struct source *s, struct fetched **items, size_t n, size_t unhinted);
/* f has its result: tell the waits (from the loop, never from here). */
void fetched_finish(struct fetched *f);
/* Barbican did not give the key: the cache may, or the error stands. */
void fetched_error(struct source *s, struct fetched *f, const struct barbican_error *e);
/* A fresh entry of the delegation list for id, or NULL. */
const struct hint *fetch_hint(struct source *s, const char *id);
void fetch_hints_add(struct source *s, const struct barbican_meta *items, size_t n);
struct job *source_job_new(struct source *s, enum job_kind kind, const char *id);
void source_job_free(struct job *j);

/* cache.c */
void cache_put(struct source *s, const char *id, const struct secret_buf *key, const char *type);
/* Returns 0 and the material and its age, -ENOENT, -ESTALE (expired: removed) or -errno. */
int cache_get(struct source *s, const char *id, struct secret_buf *ret, uint64_t *ret_age,
	      char *ret_type, size_t type_size);
void cache_drop(struct source *s, const char *id, const char *why);
/* A 403 or 404: the node must not keep the key. */
void source_key_withdrawn(struct source *s, const char *id, const struct barbican_error *e);

/* consumers.c */
void consumers_load(struct source *s);
void consumers_write(struct source *s);

/* revalidate.c */
uint64_t revalidate_sec(const struct source *s, bool retry);
void revalidate_schedule(struct source *s, uint64_t sec);
