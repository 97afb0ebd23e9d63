/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Prefetch (barbican-prefetch: every delegated key into the sealed cache at start) and the
 * revalidation of the cache: every copy is asked for again at a quarter of its TTL, so that a
 * withdrawn key leaves the node and a kept one is fresh.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "source-internal.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* A quarter of the cache's TTL, at least 1 s and, for a retry, at most REVALIDATE_RETRY_SEC:
 * a cached copy is always looked at again before it expires. */
uint64_t revalidate_sec(const struct source *s, bool retry)
{
	uint64_t q = s->cfg->barbican_cache_ttl_sec / 4;

	if (q == 0)
		q = 1;
	return retry && q > REVALIDATE_RETRY_SEC ? REVALIDATE_RETRY_SEC : q;
}


/* Prefetch and revalidation rounds share the accounting. */
static void pass_end(struct source *s, struct pass *p)
{
	const char *what = p->kind == JOB_PREFETCH ? "Prefetch into the sealed cache"
						   : "Revalidation of the sealed cache";

	log_info("%s: %u keys refreshed, %u withdrawn and dropped, %u unreachable, %u refused.",
		 what, p->ok, p->withdrawn, p->unreachable, p->failed);
	s->pass_running = false;
	revalidate_schedule(s, revalidate_sec(s, p->unreachable > 0));
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
	} else if (is_withdrawn(e)) {
		source_key_withdrawn(s, j->id, e);
		p->withdrawn++;
	} else if (cache_may_serve(e) || e->cls == BARBICAN_AUTH)
		p->unreachable++;
	else {
		log_warning("%s", e->message);
		p->failed++;
	}
	source_job_free(j);
	if (--p->pending == 0)
		pass_end(s, p);
}

static void pass_fetch(struct source *s, struct pass *p, const char *id,
		       const struct barbican_meta *hint)
{
	struct job *j = source_job_new(s, p->kind, id);

	if (!j)
		return;
	j->pass = p;
	p->pending++;
	if (barbican_fetch(s->bb, id, hint, on_pass_fetched, j, &j->op) < 0) {
		j->op = NULL;
		p->pending--;
		p->failed++;
		source_job_free(j);
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
	source_job_free(j);
	if (e->error < 0) {
		log_warning("Prefetch: %s", e->message);
		p->unreachable++;
		if (--p->pending == 0)
			pass_end(s, p);
		return;
	}
	fetch_hints_add(s, items, n);
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
	struct job *j = p ? source_job_new(s, JOB_PASS_LIST, NULL) : NULL;

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
		source_job_free(j);
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

void revalidate_schedule(struct source *s, uint64_t sec)
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
		revalidate_schedule(s, revalidate_sec(s, true));
	return 0;
}
