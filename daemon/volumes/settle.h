/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Waiting for udev without stopping the daemon. A new mapping is live once its table is
 * loaded, but /dev/mapper/NAME exists only when udev has run its rules for it; the client of
 * an attach is answered then, as `cryptsetup open` returns then. libdevmapper's
 * dm_udev_wait() would block keyscoped's one thread for as long as udev takes, which at boot,
 * with udev busy with the coldplug of every disk, is a large part of each attach: attaches
 * would follow each other in lock step (docs/benchmarks.md, P6). So the attach answers from
 * here: a udev monitor (sd_device_monitor, started before the table is loaded so that no
 * event is missed) polls the waiting cookies whenever udev reports a block device event, and
 * a timer polls them anyway (a lost event), up to a bound after which the attach is answered
 * all the same with a warning (the mapping is up; only its node is late).
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

struct settles;

/* Called once: 0 when udev is done, -ETIMEDOUT at the bound, -ECANCELED when keyscoped stops. */
typedef void (*settle_done_t)(void *userdata, int error);

int settles_new(sd_event *event, struct settles **ret);
/* Ends every wait (their callbacks get -ECANCELED). NULL-safe. */
struct settles *settles_free(struct settles *s);

/* Before loading a table whose cookie settle_wait() will take: listens to udev already. */
void settle_prepare(struct settles *s);

/*
 * Calls done(userdata, ...) once udev has completed cookie (dmcrypt_create_nowait()) for
 * mapping name. Returns 0, or -errno (then done is never called and nothing waits: the
 * caller waits with dmcrypt_udev_poll() itself or abandons the cookie).
 */
int settle_wait(struct settles *s, uint32_t cookie, const char *name, settle_done_t done,
		void *userdata);

/* How many attaches wait for udev now (for Status). */
unsigned settles_waiting(const struct settles *s);
