/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Consumers. One job per (key-id, resource) while Barbican has not yet been told what keyscoped
 * wants: `want` is the newest wish (registered or not), `add` what the request in flight or
 * the next one asks. A wish that flips a job which never sent anything drops the job: Barbican
 * still holds what the new wish wants (a job carried over from an earlier run counts as sent:
 * that run may have asked). The jobs are kept in consumers.json so that a restart
 * carries them on; a request is always started from a timer, never inside a method call.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "proto.h"
#include "source-internal.h"
#include "util.h"

static void consumer_start(struct job *j);

void consumers_write(struct source *s)
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
		source_job_free(j);
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
		source_job_free(j);
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
		source_job_free(j);
		consumers_save(s);
	}
}

/* sent: whether an earlier run may have asked already (Barbican's state is unknown then). */
static int consumer_job(struct source *s, const char *id, const char *resource_id, bool add,
			uint64_t not_before, bool sent)
{
	struct job *j = source_job_new(s, JOB_CONSUMER, id);
	uint64_t now = realtime_usec();

	if (!j)
		return -ENOMEM;
	snprintf(j->resource, sizeof(j->resource), "%s", resource_id);
	j->add = j->want = add;
	j->not_before = not_before;
	j->sent = sent;
	if (consumer_schedule(j, not_before > now ? not_before - now : 0) < 0) {
		source_job_free(j);
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
		source_job_free(j);
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
void consumers_load(struct source *s)
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
