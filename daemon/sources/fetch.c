/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fetches from Barbican: one per key-id however many calls wait for it, started after one list
 * of the delegations when a batch is large (its entries stand in for metadata GETs); the
 * KeyList and clone-key jobs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "log.h"
#include "metrics.h"
#include "source-internal.h"
#include "util.h"

struct fetched *fetched_find(struct source *s, const char *id)
{
	void *node = tfind(id, &s->fetched, source_id_cmp);

	return node ? *(struct fetched **) node : NULL;
}

void fetched_free(struct fetched *f)
{
	struct source *s = f->src;

	if (f->op)
		barbican_op_cancel(f->op);
	for (size_t i = 0; i < s->n_after_list; i++)
		if (s->after_list[i] == f)
			s->after_list[i] = NULL;
	tdelete(f->id, &s->fetched, source_id_cmp);
	secret_buf_done(&f->key);
	free(f->waiters);
	free(f);
}

int fetched_get(struct source *s, const char *id, struct fetched **ret)
{
	struct fetched *f = fetched_find(s, id);

	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f)
			return -ENOMEM;
		snprintf(f->id, sizeof(f->id), "%s", id);
		f->src = s;
		if (!tsearch(f, &s->fetched, source_id_cmp)) {
			free(f);
			return -ENOMEM;
		}
	}
	*ret = f;
	return 0;
}

/* f has its result: tell the waits (from the loop, never from here). */
void fetched_finish(struct fetched *f)
{
	f->done = true;
	f->op = NULL;
	for (size_t i = 0; i < f->n_waiters; i++) {
		struct source_wait *w = f->waiters[i];
		if (w->pending > 0 && --w->pending == 0)
			source_wait_fire(w);
	}
	f->n_waiters = 0;
	if (f->refs == 0)
		fetched_free(f);
}

static void fetched_fail(struct fetched *f, const struct barbican_error *e)
{
	f->error = e->error < 0 ? e->error : -EIO;
	f->error_name = source_error_name(e);
	snprintf(f->message, sizeof(f->message), "%s", e->message);
}

/* Barbican did not give the key: the cache may, or the error stands. */
void fetched_error(struct source *s, struct fetched *f, const struct barbican_error *e)
{
	char type[32];
	uint64_t age;
	int r;

	if (is_withdrawn(e))
		source_key_withdrawn(s, f->id, e);
	if (cache_may_serve(e)) {
		r = cache_get(s, f->id, &f->key, &age, type, sizeof(type));
		if (r >= 0) {
			f->from_cache = true;
			snprintf(f->meta.secret_type, sizeof(f->meta.secret_type), "%s", type);
			s->cache_hits++;
			metrics_count(METRIC_CACHE_HITS);
			metrics_count_fetch(METRIC_SOURCE_CACHE, METRIC_OK,
					    now_usec() - f->started_usec);
			log_event(EVENT_CACHE_USED_OFFLINE, LOG_WARNING, EVENT_KEY(f->id),
				  "%s; using the sealed cached copy of key %s (fetched %llus ago, "
				  "barbican-cache-ttl %us).", e->message, f->id,
				  (unsigned long long) age, s->cfg->barbican_cache_ttl_sec);
			revalidate_schedule(s, revalidate_sec(s, true));
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
	metrics_count_fetch(METRIC_SOURCE_BARBICAN, e->error == 0 ? METRIC_OK : is_withdrawn(e) ?
			    METRIC_REFUSED : METRIC_ERROR, now_usec() - f->started_usec);
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

const struct hint *fetch_hint(struct source *s, const char *id)
{
	void *node = tfind(id, &s->hints, source_id_cmp);
	const struct hint *h = node ? *(const struct hint **) node : NULL;
	uint64_t now;

	if (!h)
		return NULL;
	(void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	return now - h->at < HINT_TTL_USEC ? h : NULL;
}

void fetch_hints_add(struct source *s, const struct barbican_meta *items, size_t n)
{
	uint64_t now;

	(void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < n; i++) {
		void *node = tfind(items[i].id, &s->hints, source_id_cmp);
		struct hint *h = node ? *(struct hint **) node : calloc(1, sizeof(*h));

		if (!h)
			return;
		snprintf(h->id, sizeof(h->id), "%s", items[i].id);
		h->meta = items[i];
		h->at = now;
		if (!node && !tsearch(h, &s->hints, source_id_cmp)) {
			free(h);
			return;
		}
	}
}

void fetched_start(struct source *s, struct fetched *f)
{
	const struct hint *h = fetch_hint(s, f->id);
	struct barbican_error e = {};
	char err[384];
	int r;

	f->started = true;
	f->started_usec = f->started_usec ?: now_usec();	/* from the list's start, if any */
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
		fetch_hints_add(s, items, n);
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
	f->started_usec = f->started_usec ?: now_usec();	/* from the list's start, if any */
	return 0;
}


/* Starts the fetches of items not started yet. Many keys at once (a boot): one list of the
 * delegations gives their metadata in a few requests, so each key then costs one request
 * instead of two. */
void fetched_start_all(struct source *s, struct fetched **items, size_t n, size_t unhinted)
{
	if (unhinted >= LIST_THRESHOLD && !s->listing &&
	    barbican_list_delegated(s->bb, on_listed_for_fetch, s, &s->listing) < 0)
		s->listing = NULL;
	for (size_t i = 0; i < n; i++) {
		struct fetched *f = items[i];
		if (f->started)
			continue;
		if (!s->listing || after_list_add(s, f) < 0)
			fetched_start(s, f);
	}
}

/* ---- jobs: KeyList and clone-key (consumers.c and revalidate.c have theirs) ---------------- */

struct job *source_job_new(struct source *s, enum job_kind kind, const char *id)
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

void source_job_free(struct job *j)
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
		j->list_cb(j->userdata, e->error, source_error_name(e), e->message, NULL);
		source_job_free(j);
		return;
	}
	fetch_hints_add(j->src, items, n);
	a = json_object_new_array_ext((int) n);
	for (size_t i = 0; a && i < n; i++)
		json_object_array_add(a, meta_to_json(&items[i]));
	j->list_cb(j->userdata, a ? 0 : -ENOMEM, "keyscope.InternalError", "out of memory", a);
	source_job_free(j);
}

int source_list(struct source *s, source_list_cb cb, void *userdata)
{
	struct job *j;
	int r;

	if (!s->bb)
		return -EOPNOTSUPP;
	j = source_job_new(s, JOB_LIST, NULL);
	if (!j)
		return -ENOMEM;
	j->list_cb = cb;
	j->userdata = userdata;
	r = barbican_list_delegated(s->bb, on_listed, j, &j->op);
	if (r < 0) {
		j->op = NULL;
		source_job_free(j);
	}
	return r;
}

static void on_stored(void *userdata, const struct barbican_error *e, const char *new_id)
{
	struct job *j = userdata;

	j->op = NULL;
	if (e->error < 0) {
		log_warning("Clone of key %s: %s", j->id, e->message);
		j->clone_cb(j->userdata, e->error, source_error_name(e), e->message, NULL);
	} else
		j->clone_cb(j->userdata, 0, NULL, NULL, new_id);
	source_job_free(j);
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
		if (s->collecting && (r = source_collect_add(s, id)) < 0)
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
	j = source_job_new(s, JOB_CLONE, id);
	if (!j)
		return -ENOMEM;
	j->clone_cb = cb;
	j->userdata = userdata;
	r = barbican_store(s->bb, &like, &f->key, name, on_stored, j, &j->op);
	if (r < 0) {
		j->op = NULL;
		source_job_free(j);
	}
	return r;
}
