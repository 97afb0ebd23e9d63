/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "attachments.h"
#include "event.h"
#include "log.h"
#include "memory.h"
#include "metrics.h"
#include "observe.h"
#include "pending.h"
#include "scope.h"
#include "source.h"
#include "unlock.h"
#include "util.h"

#define STATUS_REFRESH_SEC 30	/* without metrics-file: STATUS= is refreshed this often */

static struct {
	struct daemon *daemon;
	sd_event_source *timer;
	char status[512];
	int file_error;		/* the last write of metrics-file failed with this */
} o;

/* -1 when error is no refusal; a refusal is answered before anything is tried. */
static int refusal_of(const char *error)
{
	static const char *const bad[] = { "keyscope.InvalidRequest", "keyscope.MethodNotFound",
					   "keyscope.InvalidParameter", "keyscope.InvalidKeyId",
					   "keyscope.InvalidName", "keyscope.InvalidKeyLength",
					   "keyscope.IncompleteRequest" };

	if (!error)
		return -1;
	if (streq(error, "keyscope.PermissionDenied"))
		return METRIC_REFUSED_PERMISSION;
	if (streq(error, "keyscope.MessageTooLarge"))
		return METRIC_REFUSED_LIMIT;
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		if (streq(error, bad[i]))
			return METRIC_REFUSED_BAD_REQUEST;
	return -1;
}

static const char *param(const struct call *c, const char *name)
{
	json_object *v;

	if (!c->params || !json_object_object_get_ex(c->params, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* An attach's end: its latency and result, and an entry when it failed. */
static void attach_done(const struct call *c, int refusal)
{
	uint64_t usec = now_usec() - c->started;
	const char *dev = param(c, "device"), *vol = param(c, "name"), *id = param(c, "key-id");
	struct event_fields f = { .key_id = id, .volume = vol, .device = dev, .error = c->error,
				  .has_peer = true, .peer_uid = c->uid, .peer_pid = c->pid };

	if (!c->error) {
		metrics_count_attach(METRIC_OK, usec);
		return;
	}
	metrics_count_attach(refusal >= 0 ? METRIC_REFUSED : METRIC_ERROR, usec);
	if (refusal == METRIC_REFUSED_PERMISSION)
		return;	/* the refusal has its own entry */
	log_event(EVENT_ATTACH_FAILED, LOG_WARNING, &f, "Attach of %s for uid %u pid %d failed: %s "
		  "(%s).", dev ?: "(no device)", (unsigned) c->uid, (int) c->pid, c->message,
		  c->error);
}

void observe_call_done(const struct call *c)
{
	int refusal = refusal_of(c->error);

	if (refusal >= 0)
		metrics_count_refusal((enum metric_refusal) refusal);
	if (!c->daemon || !c->method)
		return;
	memory_call_done(c->daemon->event, c);
	if (streq(c->method, "keyscope.VolumeAttach"))
		attach_done(c, refusal);
	else if (streq(c->method, "keyscope.KeyRequest"))
		metrics_count(c->error ? METRIC_REQUEST_KEY_REFUSED : METRIC_REQUEST_KEY_GRANTED);
	if (c->m && c->m->writes)
		observe_status(c->daemon);
}

static void add_holders(struct scope *s, void *userdata)
{
	*(uint64_t *) userdata += scope_holders(s);
}

static void gauges(struct daemon *d, struct metric_gauges *g)
{
	*g = (struct metric_gauges) { .scopes = scopes_count(d->scopes) };
	scopes_foreach(d->scopes, add_holders, &g->holders);
	g->attachments = attachments_count(d->attachments);
	g->volumes_pending = pending_count(d);
	source_gauges(d->source, g);
	g->unlocks_running = d->unlocks ? unlocks_running(d->unlocks) : 0;
	g->unlocks_queued = d->unlocks ? unlocks_queued(d->unlocks) : 0;
	g->state_writable = !scopes_state_problem(d->scopes);
	metrics_read_quota((uint32_t) getuid(), g);
}

int observe_render(struct daemon *d, bool openmetrics, char **ret)
{
	struct metric_gauges g;
	char *text = NULL;
	size_t size = 0;
	FILE *f;
	int r;

	gauges(d, &g);
	f = open_memstream(&text, &size);
	if (!f)
		return -ENOMEM;
	r = metrics_render(f, &g, openmetrics);
	if (fclose(f) != 0 && r >= 0)
		r = -ENOMEM;
	if (r < 0) {
		free(text);
		return r;
	}
	*ret = text;
	return 0;
}

/* What the key manager last said, for STATUS=: it answered, it did not, or nobody asked. */
static const char *barbican_state(struct daemon *d)
{
	if (!d->source || !source_has_barbican(d->source))
		return "local keys only";
	switch (metrics_last_fetch(METRIC_SOURCE_BARBICAN)) {
	case METRIC_OK:
	case METRIC_REFUSED:
		return "barbican reachable";
	case METRIC_ERROR:
		return metrics_last_fetch(METRIC_SOURCE_CACHE) >= 0
			? "barbican unreachable, sealed cache used" : "barbican unreachable";
	default:
		return "barbican not asked yet";
	}
}

static void status_text(struct daemon *d, char *buf, size_t size)
{
	size_t scopes = scopes_count(d->scopes), volumes = attachments_count(d->attachments);
	unsigned unlocks = d->unlocks ? unlocks_running(d->unlocks) : 0;
	const char *problem = scopes_state_problem(d->scopes);
	unsigned pending = pending_count(d);
	char more[128] = "";
	size_t n = 0;

	/* STATUS= is what systemctl status shows: the pending volumes (boot) say why they wait. */
	if (pending > 0)
		n = (size_t) snprintf(more, sizeof(more), "; %u volume%s pending (key source "
				      "unreachable)", pending, pending == 1 ? "" : "s");
	if (unlocks > 0 && n < sizeof(more))
		(void) snprintf(more + n, sizeof(more) - n, "; %u keyslot unlock%s running", unlocks,
				unlocks == 1 ? "" : "s");
	(void) snprintf(buf, size, "Serving %zu scope%s, %zu volume%s; %s%s%s%s", scopes,
			scopes == 1 ? "" : "s", volumes, volumes == 1 ? "" : "s", barbican_state(d),
			more, problem ? "; state not written: " : "", problem ?: "");
}

void observe_status(struct daemon *d)
{
	char s[sizeof(o.status)];

	status_text(d, s, sizeof(s));
	if (streq(s, o.status))
		return;
	memcpy(o.status, s, sizeof(s));
	(void) sd_notifyf(0, "STATUS=%s", s);
}

/* node_exporter's textfile collector reads *.prom files in Prometheus' text format. */
static void write_metrics_file(struct daemon *d)
{
	const char *path = d->config->metrics_file;
	_cleanup_free_ char *text = NULL;
	int r;

	r = observe_render(d, false, &text);
	if (r >= 0)
		r = write_file_atomic_flags(path, text, strlen(text), 0644, 0);
	if (r < 0 && o.file_error != r)
		log_warning_errno(r, "Failed to write the metrics file %s, retrying every %us: %m",
				  path, d->config->metrics_interval_sec);
	else if (r >= 0 && o.file_error < 0)
		log_info("Wrote the metrics file %s again.", path);
	o.file_error = r < 0 ? r : 0;
}

static uint64_t interval_usec(const struct daemon *d)
{
	unsigned sec = d->config->metrics_file ? d->config->metrics_interval_sec
					       : STATUS_REFRESH_SEC;

	return (uint64_t) sec * 1000000u;
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;

	observe_status(d);
	if (d->config->metrics_file)
		write_metrics_file(d);
	(void) sd_event_source_set_time(es, usec + interval_usec(d));
	return 0;
}

int observe_start(struct daemon *d)
{
	uint64_t now;
	int r;

	o.daemon = d;
	status_text(d, o.status, sizeof(o.status));
	(void) sd_notifyf(0, "READY=1\nSTATUS=%s", o.status);
	if (d->config->metrics_file)
		write_metrics_file(d);
	(void) sd_event_now(d->event, CLOCK_MONOTONIC, &now);
	r = sd_event_add_time(d->event, &o.timer, CLOCK_MONOTONIC, now + interval_usec(d),
			      1000000u, on_timer, d);
	if (r < 0)
		return log_error_errno(r, "Failed to arm the metrics and status timer: %m");
	(void) sd_event_source_set_enabled(o.timer, SD_EVENT_ON);
	return 0;
}

void observe_stop(void)
{
	o.timer = sd_event_source_disable_unref(o.timer);
	o.daemon = NULL;
}

int m_metrics(struct call *c)
{
	static const char *const allowed[] = { "format", NULL };
	_cleanup_free_ char *text = NULL;
	const char *format = "openmetrics";
	int r;

	if ((r = call_check_params(c, allowed)) < 0 ||
	    (r = call_get_string(c, "format", false, 32, &format)) < 0)
		return r;
	if (!streq(format, "openmetrics") && !streq(format, "prometheus"))
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "format must be \"openmetrics\" or \"prometheus\"");
	r = observe_render(c->daemon, streq(format, "openmetrics"), &text);
	if (r < 0)
		return call_error(c, r, "keyscope.InternalError", "rendering the metrics: %s",
				  strerror(-r));
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "format", json_object_new_string(format));
	json_object_object_add(c->reply, "text", json_object_new_string(text));
	return 0;
}
