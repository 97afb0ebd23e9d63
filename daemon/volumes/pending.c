/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pending volumes (pending.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dmcrypt.h"
#include "log.h"
#include "macro.h"
#include "pending.h"
#include "server.h"
#include "util.h"

#define USEC_PER_SEC 1000000ull
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define PENDING_FIRST_USEC (2 * USEC_PER_SEC)
#define PENDING_MAX_USEC (60 * USEC_PER_SEC)

struct pending_volume {
	struct pending_volume *next;
	struct pending *owner;
	char name[DMCRYPT_NAME_MAX + 1];
	char device[PATH_MAX];
	char reason[512];
	json_object *params;		/* the attach request, without "pending" */
	sd_event_source *timer;
	unsigned tries;
	uint64_t delay_usec;		/* the back-off's current step */
	uint64_t next_wall;		/* seconds since the epoch, for Status */
	bool running;			/* a try is in flight */
};

struct pending {
	sd_event *event;
	struct server *rpc;
	struct pending_volume *list;
	unsigned n;
};

static void volume_free(struct pending_volume *v)
{
	if (!v)
		return;
	sd_event_source_disable_unref(v->timer);
	json_object_put(v->params);
	free(v);
}

static struct pending_volume *find(const struct pending *p, const char *name)
{
	for (struct pending_volume *v = p ? p->list : NULL; v; v = v->next)
		if (streq(v->name, name))
			return v;
	return NULL;
}

static void unlink_volume(struct pending *p, struct pending_volume *v)
{
	for (struct pending_volume **i = &p->list; *i; i = &(*i)->next)
		if (*i == v) {
			*i = v->next;
			p->n--;
			break;
		}
	/* a try in flight finds it gone by its owner (done_try) */
	if (v->running) {
		v->owner = NULL;
		v->timer = sd_event_source_disable_unref(v->timer);
	} else
		volume_free(v);
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata);

/* Jitter from the kernel, so that the nodes of a fleet do not retry in step. */
static uint64_t jitter(uint64_t max)
{
	uint32_t x = 0;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t) sizeof(x))
		x = (uint32_t) getpid() ^ (uint32_t) time(NULL);
	return (uint64_t) x % (max + 1);
}

/* The next try after the back-off's step, with up to a quarter of it as jitter. */
static int schedule(struct pending_volume *v)
{
	uint64_t d = v->delay_usec + jitter(v->delay_usec / 4);
	int r;

	v->next_wall = (uint64_t) time(NULL) + (d + USEC_PER_SEC - 1) / USEC_PER_SEC;
	if (!v->timer) {
		r = sd_event_add_time_relative(v->owner->event, &v->timer, CLOCK_MONOTONIC, d,
					       USEC_PER_SEC / 10, on_timer, v);
		if (r < 0)
			return r;
		return 0;
	}
	r = sd_event_source_set_time_relative(v->timer, d);
	return r < 0 ? r : sd_event_source_set_enabled(v->timer, SD_EVENT_ONESHOT);
}

static void done_try(void *userdata, const struct call *c)
{
	struct pending_volume *v = userdata;

	v->running = false;
	if (!v->owner) {	/* cancelled while the try ran */
		volume_free(v);
		return;
	}
	if (!c->error) {
		log_notice("Pending volume %s attached from %s after %u tries.", v->name,
			   v->device, v->tries);
		unlink_volume(v->owner, v);
		return;
	}
	if (streq(c->error, "keyscope.Cancelled")) {	/* keyscoped is stopping */
		unlink_volume(v->owner, v);
		return;
	}
	if (!streq(c->error, "keyscope.KeySourceUnavailable")) {
		log_error("Pending volume %s (%s) is given up: %s (%s).", v->name, v->device,
			  c->message, c->error);
		unlink_volume(v->owner, v);
		return;
	}
	snprintf(v->reason, sizeof(v->reason), "%s", c->message);
	v->delay_usec = MIN(v->delay_usec * 2, PENDING_MAX_USEC);
	if (schedule(v) < 0) {
		log_error("Pending volume %s: cannot arm its retry timer; given up.", v->name);
		unlink_volume(v->owner, v);
	}
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct pending_volume *v = userdata;
	int r;

	v->tries++;
	v->running = true;
	log_debug("Pending volume %s: try %u.", v->name, v->tries);
	r = server_call_internal(v->owner->rpc, "keyscope.VolumeAttach", v->params, done_try, v);
	if (r < 0) {
		v->running = false;
		log_warning_errno(r, "Pending volume %s: cannot start a try, trying later: %m",
				  v->name);
		(void) schedule(v);
	}
	return 0;
}

static struct pending *pending_of(struct call *c)
{
	struct pending *p = c->daemon->pending;

	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	*p = (struct pending) { .event = c->daemon->event, .rpc = c->rpc };
	c->daemon->pending = p;
	return p;
}

/* The retry's request: the client's parameters without "pending", so a try is an attach. */
static json_object *retry_params(json_object *params)
{
	json_object *o = NULL;

	if (json_object_deep_copy(params, &o, NULL) < 0)
		return NULL;
	json_object_object_del(o, "pending");
	return o;
}

static void pending_reply(struct call *c, const struct pending_volume *v)
{
	json_object_put(c->reply);
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "name", json_object_new_string(v->name));
	json_object_object_add(c->reply, "device", json_object_new_string(v->device));
	json_object_object_add(c->reply, "pending", json_object_new_boolean(1));
	json_object_object_add(c->reply, "reason", json_object_new_string(v->reason));
	json_object_object_add(c->reply, "next-try",
			       json_object_new_int64((int64_t) v->next_wall));
}

int pending_add(struct call *c, const char *name, const char *device)
{
	struct pending *p = pending_of(c);
	struct pending_volume *v = find(p, name);
	json_object *params;

	if (!p || !(params = retry_params(c->params)))
		return -ENOMEM;
	if (!v) {
		v = calloc(1, sizeof(*v));
		if (!v) {
			json_object_put(params);
			return -ENOMEM;
		}
		*v = (struct pending_volume) { .owner = p, .delay_usec = PENDING_FIRST_USEC,
					       .next = p->list };
		snprintf(v->name, sizeof(v->name), "%s", name);
		p->list = v;
		p->n++;
	}
	json_object_put(v->params);
	v->params = params;
	snprintf(v->device, sizeof(v->device), "%s", device);
	snprintf(v->reason, sizeof(v->reason), "%s", c->message);
	if (!v->running && schedule(v) < 0) {
		unlink_volume(p, v);
		return -ENOMEM;
	}
	log_warning("Volume %s (%s) is pending: %s; trying again in the background.", name,
		    device, v->reason);
	c->error = NULL;
	c->message[0] = 0;
	pending_reply(c, v);
	return 0;
}

bool pending_cancel(struct daemon *d, const char *name)
{
	struct pending_volume *v = find(d->pending, name);

	if (!v)
		return false;
	log_info("Pending volume %s (%s) is no longer wanted.", v->name, v->device);
	unlink_volume(d->pending, v);
	return true;
}

void pending_to_json(const struct daemon *d, json_object *reply)
{
	json_object *a = json_object_new_array();

	for (struct pending_volume *v = d->pending ? d->pending->list : NULL; v; v = v->next) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(v->name));
		json_object_object_add(o, "device", json_object_new_string(v->device));
		json_object_object_add(o, "reason", json_object_new_string(v->reason));
		json_object_object_add(o, "tries", json_object_new_int((int) v->tries));
		json_object_object_add(o, "next-try",
				       json_object_new_int64((int64_t) v->next_wall));
		json_object_object_add(o, "trying", json_object_new_boolean(v->running));
		json_object_array_add(a, o);
	}
	json_object_object_add(reply, "pending", a);
}

unsigned pending_count(const struct daemon *d)
{
	return d->pending ? d->pending->n : 0;
}

struct pending *pending_free(struct pending *p)
{
	struct pending_volume *v, *next;

	if (!p)
		return NULL;
	for (v = p->list; v; v = next) {
		next = v->next;
		if (v->running) {
			v->owner = NULL;	/* done_try frees it when the cancelled try ends */
			v->timer = sd_event_source_disable_unref(v->timer);
		} else
			volume_free(v);
	}
	free(p);
	return NULL;
}
