/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See settle.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-device.h>

#include "dmcrypt.h"
#include "log.h"
#include "macro.h"
#include "settle.h"
#include "util.h"

/* A lost udev event is noticed by this poll at the latest. */
#define SETTLE_POLL_USEC (50 * 1000)
/* udev's own limit for an event is 180 s; an attach's client waits 60 s by default. */
#define SETTLE_MAX_USEC (45 * 1000 * 1000)

struct settle {
	struct settle *next;
	uint32_t cookie;
	uint64_t since;
	char name[DMCRYPT_NAME_MAX + 1];
	settle_done_t done;
	void *userdata;
};

struct settles {
	sd_event *event;
	sd_device_monitor *monitor;	/* while anything waits, or is about to */
	sd_event_source *timer;
	struct settle *waits;
	unsigned n;
	bool monitor_failed;		/* said once; the timer alone polls then */
};

static void settle_end(struct settles *s, struct settle **pp, int error)
{
	struct settle *w = *pp;

	*pp = w->next;
	s->n--;
	if (error == -ETIMEDOUT)
		log_warning("udev has not processed /dev/mapper/%s after %llu s; answering its "
			    "attach anyway (the mapping is up, its node may come later).", w->name,
			    (unsigned long long) (SETTLE_MAX_USEC / 1000000));
	w->done(w->userdata, error);
	free(w);
}

/* The timer runs while the monitor does: its turn with nothing waiting ends both. */
static int settle_arm(struct settles *s)
{
	int enabled = SD_EVENT_OFF, r;

	(void) sd_event_source_get_enabled(s->timer, &enabled);
	if (enabled != SD_EVENT_OFF)
		return 0;
	r = sd_event_source_set_time_relative(s->timer, SETTLE_POLL_USEC);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

/* Answers every wait udev has completed; the others wait on, up to the bound. */
static void settle_poll(struct settles *s)
{
	uint64_t now = now_usec();

	for (struct settle **pp = &s->waits; *pp;) {
		struct settle *w = *pp;
		int r = dmcrypt_udev_poll(w->cookie);

		if (r != 0)	/* done, or a broken cookie: nothing more will come of it */
			settle_end(s, pp, 0);
		else if (now - w->since >= SETTLE_MAX_USEC) {
			dmcrypt_udev_abandon(w->cookie);
			settle_end(s, pp, -ETIMEDOUT);
		} else
			pp = &w->next;
	}
}

static int on_device(sd_device_monitor *m, sd_device *d, void *userdata)
{
	settle_poll(userdata);
	return 0;
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct settles *s = userdata;

	settle_poll(s);
	if (s->waits)
		(void) settle_arm(s);
	else	/* not from the monitor's own callback: here */
		s->monitor = sd_device_monitor_unref(s->monitor);
	return 0;
}

int settles_new(sd_event *event, struct settles **ret)
{
	struct settles *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->event = event;
	r = sd_event_add_time_relative(event, &s->timer, CLOCK_MONOTONIC, SETTLE_POLL_USEC, 0,
				       on_timer, s);
	if (r < 0) {
		free(s);
		return r;
	}
	(void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
	*ret = s;
	return 0;
}

struct settles *settles_free(struct settles *s)
{
	if (!s)
		return NULL;
	while (s->waits) {
		dmcrypt_udev_abandon(s->waits->cookie);
		settle_end(s, &s->waits, -ECANCELED);
	}
	s->monitor = sd_device_monitor_unref(s->monitor);
	s->timer = sd_event_source_disable_unref(s->timer);
	free(s);
	return NULL;
}

void settle_prepare(struct settles *s)
{
	_cleanup_(sd_device_monitor_unrefp) sd_device_monitor *m = NULL;
	int r;

	if (s->monitor || s->monitor_failed)
		return;
	r = sd_device_monitor_new(&m);
	if (r >= 0)
		r = sd_device_monitor_filter_add_match_subsystem_devtype(m, "block", NULL);
	if (r >= 0)
		r = sd_device_monitor_attach_event(m, s->event);
	if (r >= 0)
		r = sd_device_monitor_start(m, on_device, s);
	if (r < 0) {
		log_warning_errno(r, "Cannot listen to udev (%m); attaches wait for their device "
				  "nodes by polling every %u ms.", SETTLE_POLL_USEC / 1000);
		s->monitor_failed = true;
		return;
	}
	s->monitor = TAKE_PTR(m);
	(void) settle_arm(s);
}

int settle_wait(struct settles *s, uint32_t cookie, const char *name, settle_done_t done,
		void *userdata)
{
	struct settle *w;
	int r;

	if (!cookie)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct settle) { .next = s->waits, .cookie = cookie, .since = now_usec(),
			       .done = done, .userdata = userdata };
	snprintf(w->name, sizeof(w->name), "%s", name);
	r = settle_arm(s);
	if (r < 0) {
		free(w);
		return r;
	}
	s->waits = w;
	s->n++;
	return 0;
}

unsigned settles_waiting(const struct settles *s)
{
	return s ? s->n : 0;
}
