/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pending volumes (pending.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "attachments.h"
#include "dmcrypt.h"
#include "log.h"
#include "macro.h"
#include "pending-record.h"
#include "pending.h"
#include "server.h"
#include "util.h"

#define USEC_PER_SEC 1000000ull
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define PENDING_FIRST_USEC (2 * USEC_PER_SEC)
#define PENDING_MAX_USEC (60 * USEC_PER_SEC)

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

struct pending_volume {
	struct pending_volume *next;
	struct pending *owner;
	char name[DMCRYPT_NAME_MAX + 1];
	char device[PATH_MAX];
	char reason[PENDING_REASON_MAX + 1];
	uint64_t since;			/* when it became pending (its record's "since") */
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
	char dir[PATH_MAX];		/* <state-dir>/pending: one record a volume */
	char boot_id[PENDING_BOOT_ID_MAX + 1];
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

static int record_path(const struct pending *p, const char *name, char *buf, size_t size)
{
	int r = snprintf(buf, size, "%s/%s", p->dir, name);

	return r < 0 || (size_t) r >= size ? -ENAMETOOLONG : 0;
}

/*
 * Writes v's record before its pending answer goes out, so that a keyscoped killed at any
 * instant after the answer finds it at start. Atomic (a killed write leaves a *.tmp.<pid>,
 * removed at start), not fsynced: against a kill, not a power cut, which ends the boot that
 * the record belongs to anyway.
 */
static void record_write(struct pending *p, const struct pending_volume *v)
{
	struct pending_record rec = { .since = v->since, .params = v->params };
	_cleanup_free_ char *text = NULL;
	char path[PATH_MAX];
	int r;

	snprintf(rec.boot_id, sizeof(rec.boot_id), "%s", p->boot_id);
	snprintf(rec.reason, sizeof(rec.reason), "%s", v->reason);
	r = record_path(p, v->name, path, sizeof(path));
	if (r >= 0)
		r = pending_record_format(&rec, &text);
	if (r >= 0)
		r = mkdir_p(p->dir, 0700);
	if (r >= 0)
		r = write_file_atomic_flags(path, text, strlen(text), 0600, 0);
	if (r < 0)
		log_warning_errno(r, "Failed to record pending volume %s in %s (a restart of "
				  "keyscoped forgets it), ignoring: %m", v->name, p->dir);
}

/* Drops v's record: it is attached, given up, or no longer wanted. */
static void record_remove(struct pending *p, const char *name)
{
	char path[PATH_MAX];

	if (record_path(p, name, path, sizeof(path)) >= 0 && unlink(path) < 0 && errno != ENOENT)
		log_warning_errno(-errno, "Failed to remove %s (the next start drops it if the "
				  "volume is attached by then), ignoring: %m", path);
}

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
		record_remove(v->owner, v->name);	/* after attachments.json has it */
		unlink_volume(v->owner, v);
		return;
	}
	if (streq(c->error, "keyscope.Cancelled")) {
		/* keyscoped is stopping: the record stays, the next start goes on trying */
		unlink_volume(v->owner, v);
		return;
	}
	if (!streq(c->error, "keyscope.KeySourceUnavailable")) {
		log_error("Pending volume %s (%s) is given up: %s (%s).", v->name, v->device,
			  c->message, c->error);
		record_remove(v->owner, v->name);
		unlink_volume(v->owner, v);
		return;
	}
	snprintf(v->reason, sizeof(v->reason), "%s", c->message);
	v->delay_usec = MIN(v->delay_usec * 2, PENDING_MAX_USEC);
	if (schedule(v) < 0) {
		log_error("Pending volume %s: cannot arm its retry timer; given up.", v->name);
		record_remove(v->owner, v->name);
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

/* The kernel's id of this boot: a record of another boot is not this boot's business. */
static void read_boot_id(char *buf, size_t size)
{
	_cleanup_free_ char *text = NULL;

	buf[0] = 0;
	if (read_full_file("/proc/sys/kernel/random/boot_id", 64, &text, NULL) >= 0)
		snprintf(buf, size, "%.*s", (int) strcspn(text, "\n"), text);
}

static struct pending *pending_new(struct daemon *d, struct server *rpc)
{
	struct pending *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return NULL;
	*p = (struct pending) { .event = d->event, .rpc = rpc };
	r = snprintf(p->dir, sizeof(p->dir), "%s/pending", d->config->state_dir);
	if (r < 0 || (size_t) r >= sizeof(p->dir)) {
		free(p);
		return NULL;
	}
	read_boot_id(p->boot_id, sizeof(p->boot_id));
	d->pending = p;
	return p;
}

static struct pending *pending_of(struct call *c)
{
	return c->daemon->pending ?: pending_new(c->daemon, c->rpc);
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
					       .since = (uint64_t) time(NULL), .next = p->list };
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
	record_write(p, v);
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
	record_remove(d->pending, v->name);
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

/* Why a record read at start is not taken up, or NULL when it is. */
static const char *record_stale(struct pending *p, struct daemon *d, const char *file,
				const struct pending_record *rec)
{
	struct attachment *x = attachment_find(d->attachments, pending_record_name(rec));

	if (!streq(pending_record_name(rec), file))
		return "its name is not its file's";
	if (p->boot_id[0] && !streq(rec->boot_id, p->boot_id))
		return "it is from an earlier boot (the volume's unit asks again at this one)";
	if (x && streq(x->device, pending_record_device(rec)))
		return "the volume is attached already";
	if (x)
		return "a volume of that name is attached from another device";
	return NULL;
}

/* Takes up one record; returns 1 when it is pending again, 0 when dropped, -ENOMEM. */
static int record_load(struct pending *p, struct daemon *d, const char *file)
{
	_cleanup_free_ char *text = NULL;
	struct pending_record rec = {};
	struct pending_volume *v;
	char path[PATH_MAX], err[256] = "";
	const char *why;
	unsigned line = 0;
	size_t len = 0;
	int r;

	if (record_path(p, file, path, sizeof(path)) < 0)
		return 0;
	r = read_full_file(path, PENDING_RECORD_MAX, &text, &len);
	if (r >= 0)
		r = pending_record_parse(text, len, &rec, &line, err, sizeof(err));
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		log_error("%s:%u: %s; dropped (the volume's unit asks again: 'systemctl restart "
			  "keyscope-volume@%s').", path, line, err[0] ? err : strerror(-r), file);
		(void) unlink(path);
		return 0;
	}
	why = record_stale(p, d, file, &rec);
	if (why) {
		log_info("Pending volume record %s is dropped: %s.", path, why);
		pending_record_done(&rec);
		(void) unlink(path);
		return 0;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		pending_record_done(&rec);
		return -ENOMEM;
	}
	*v = (struct pending_volume) { .owner = p, .delay_usec = PENDING_FIRST_USEC,
				       .since = rec.since, .next = p->list };
	snprintf(v->name, sizeof(v->name), "%s", file);
	snprintf(v->device, sizeof(v->device), "%s", pending_record_device(&rec));
	v->params = TAKE_PTR(rec.params);
	snprintf(v->reason, sizeof(v->reason), "%s", rec.reason[0] ? rec.reason : "(carried over)");
	p->list = v;
	p->n++;
	if (schedule(v) < 0) {
		unlink_volume(p, v);
		return -ENOMEM;
	}
	return 1;
}

int pending_start(struct daemon *d, struct server *rpc)
{
	struct pending *p = d->pending ?: pending_new(d, rpc);
	_cleanup_(closedirp) DIR *dir = NULL;
	struct dirent *de;
	unsigned n = 0;
	int r;

	if (!p)
		return log_oom();
	p->rpc = rpc;
	(void) remove_stale_tmp_files(p->dir);	/* a write killed half-way */
	dir = opendir(p->dir);
	if (!dir)
		return errno == ENOENT ? 0 : log_warning_errno(-errno, "Failed to open %s, "
							       "ignoring: %m", p->dir);
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp."))
			continue;
		if (!dmcrypt_name_is_valid(de->d_name)) {
			log_warning("%s/%s is not a pending volume record, ignoring.", p->dir,
				    de->d_name);
			continue;
		}
		r = record_load(p, d, de->d_name);
		if (r < 0)
			return log_oom();
		n += (unsigned) r;
	}
	if (n)
		log_notice("Carrying on %u pending volumes from the previous run; first tries in "
			   "%llu s.", n, (unsigned long long) (PENDING_FIRST_USEC / USEC_PER_SEC));
	return 0;
}
