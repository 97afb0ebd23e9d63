/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Keyslot unlocks off the event loop. Opening a volume formatted by os-brick means running
 * its keyslot's PBKDF (Argon2id: seconds of CPU and up to a GiB of memory, by design) once per
 * volume; done in keyscoped's single thread it would stall every other client (request-key
 * upcalls, snapshot attaches, status) for that long. So the unlock runs in a child process
 * (fork(2), no exec: the passphrase never leaves memory that the daemon already holds), which
 * writes the volume key back through a pipe and exits; the daemon goes on serving meanwhile.
 *
 * Unlocks are keyed by the key-bound header fingerprint (luks_fingerprint_bind()): attaches of
 * a volume's snapshots that arrive while its unlock runs join it instead of starting another.
 * A call that waits is suspended (call_suspend()) and run again when the unlock has ended; its
 * second run takes the result with unlock_take().
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "secret.h"
#include "call.h"

struct unlocks;

/* max: how many children may run at once (unlock-concurrency); more unlocks wait in a queue. */
int unlocks_new(sd_event *event, unsigned max, struct unlocks **ret);
/* Kills the children still running; their waiting calls end with -ECANCELED. NULL-safe. */
struct unlocks *unlocks_free(struct unlocks *u);

/*
 * The result of the unlock for fp: 0 and the volume key (a copy, in *ret), or the unlock's
 * error (-EPERM: the passphrase opens no keyslot; -ETIMEDOUT: killed at the time limit;
 * -ECHILD: the child died or answered garbage; else libcryptsetup's).
 * -EINPROGRESS: an unlock for fp is running; c waits for it (suspended). -ENOENT: none.
 */
int unlock_take(struct unlocks *u, const uint8_t fp[static 32], struct call *c,
		struct secret_buf *ret);

/*
 * Starts unlocking a keyslot of device with the passphrase pass (len bytes) in a child process,
 * or queues it (a copy of pass in secret memory) while unlock-concurrency children run, and
 * suspends c until it has ended. Returns -EINPROGRESS, or -errno when no child could be
 * started.
 */
int unlock_start(struct unlocks *u, const uint8_t fp[static 32], const char *device,
		 const void *pass, size_t len, struct call *c);

/* How many unlocks run now, and wait for a free slot (for Status). */
unsigned unlocks_running(const struct unlocks *u);
unsigned unlocks_queued(const struct unlocks *u);
