/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Key sources (contracts in source.h, the parts in source-internal.h): dispatch between the
 * embedded store and Barbican; collections and waits that let a method call wait for Barbican
 * without blocking the loop; set-up and status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "source-internal.h"
#include "supplied.h"
#include "util.h"

const char *source_error_name(const struct barbican_error *e)
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

/* ---- dispatch, collections and waits ------------------------------------------------------- */

void source_collect_begin(struct source *s)
{
	s->collecting = true;
	s->n_collected = 0;
}

int source_collect_add(struct source *s, const char *id)
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
	uint64_t t0;
	int r;

	r = supplied_fetch(id, ret);	/* the running call's own key (supplied.h) */
	if (r != -ENOENT) {
		metrics_count_fetch(METRIC_SOURCE_SUPPLIED, r < 0 ? METRIC_ERROR : METRIC_OK, 0);
		return r;
	}
	t0 = now_usec();
	r = store_get(s->store, id, ret);
	if (r != -ENOENT || !s->bb) {
		metrics_count_fetch(METRIC_SOURCE_LOCAL, r == -ENOENT ? METRIC_REFUSED : r < 0 ?
				    METRIC_ERROR : METRIC_OK, now_usec() - t0);
		return r;
	}
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
		r = source_collect_add(s, id);
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
	if (s->collecting && (r = source_collect_add(s, id)) < 0)
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
		if (!f->started && !fetch_hint(s, f->id))
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
	fetched_start_all(s, w->items, w->n, unhinted);
	if (w->pending == 0)
		source_wait_fire(w);
	*ret = w;
	return 1;
}

/* ---- set-up ------------------------------------------------------------------------------- */

void source_set_withdrawn(struct source *s, source_withdrawn_t cb, void *userdata)
{
	s->on_withdrawn = cb;
	s->withdrawn_userdata = userdata;
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
		(void) remove_stale_tmp_files(s->cache_dir);
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

void source_config_changed(struct source *s)
{
	if (s && s->bb)
		barbican_set_limits(s->bb, &(struct barbican_options) {
			.connect_timeout_sec = s->cfg->barbican_connect_timeout_sec,
			.timeout_sec = s->cfg->barbican_timeout_sec,
			.deadline_sec = s->cfg->barbican_deadline_sec,
			.retries = s->cfg->barbican_retries,
		});
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
		source_job_free(j);
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
