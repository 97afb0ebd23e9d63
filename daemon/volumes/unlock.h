/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Keyslot unlocks off the event loop. Opening a volume formatted by os-brick means running
 * its keyslot's PBKDF (Argon2id: seconds of CPU and up to a GiB of memory, by design) once per
 * volume; done in keyscoped's single thread it would stall every other client (request-key
 * upcalls, snapshot attaches, status) for that long. So the unlock runs in a helper process
 * (keyscope-unlock, exec'd with only its two pipes: the passphrase in, the volume key out),
 * which writes the volume key back and exits; the daemon goes on serving meanwhile.
 *
 * Unlocks are keyed by the key-bound header fingerprint (luks_fingerprint_bind()): attaches of
 * a volume's snapshots that arrive while its unlock runs join it instead of starting another.
 * Whoever waits for an unlock registers a callback (unlock_done_t), called once when the unlock
 * has ended; then it takes the result with unlock_take(). This module knows nothing of the
 * callers (the volume methods suspend their call and resume it from the callback).
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "secret.h"

struct unlocks;

/*
 * Called once for each waiter: error 0 when the unlock it waits for has ended (its result is
 * then available to unlock_take() until the callback returns), -ECANCELED when keyscoped is
 * stopping (unlocks_free()). It may call unlock_take() and unlock_start().
 */
typedef void (*unlock_done_t)(void *userdata, int error);

/* max: how many helpers may run at once (unlock-concurrency); more unlocks wait in a queue. */
int unlocks_new(sd_event *event, unsigned max, struct unlocks **ret);
/* Kills the helpers still running; their waiters are called with -ECANCELED. NULL-safe. */
struct unlocks *unlocks_free(struct unlocks *u);

/*
 * The result of the unlock for fp: 0 and the volume key (a copy, in *ret), or the unlock's
 * error (-EPERM: the passphrase opens no keyslot; -ETIMEDOUT: killed at the time limit;
 * -ECHILD: the helper died or answered garbage; else libcryptsetup's).
 * -EINPROGRESS: an unlock for fp is running; done(userdata, ...) will be called when it has
 * ended. -ENOENT: none.
 */
int unlock_take(struct unlocks *u, const uint8_t fp[static 32], unlock_done_t done,
		void *userdata, struct secret_buf *ret);

/*
 * Starts unlocking a keyslot of device with the passphrase pass (len bytes) in a helper process,
 * or queues it (a copy of pass in secret memory) while unlock-concurrency helpers run; joins
 * the unlock already running for fp. done(userdata, ...) is called when it has ended. Returns
 * -EINPROGRESS, or -errno when no helper could be started (-ENOENT: keyscope-unlock is not
 * installed).
 */
int unlock_start(struct unlocks *u, const uint8_t fp[static 32], const char *device,
		 const void *pass, size_t len, unlock_done_t done, void *userdata);

/*
 * The same machinery the other way round (keyscopectl recovery add): adds a keyslot holding the
 * volume key vk under the passphrase pass (len bytes) to device's header, in the helper (the
 * key derivation is as slow as an unlock's). unlock_take() for fp then returns the new
 * keyslot's number (>= 0, *ret untouched) or the error (-EPERM: vk is not the volume key).
 */
int unlock_start_add(struct unlocks *u, const uint8_t fp[static 32], const char *device,
		     const struct secret_buf *vk, const void *pass, size_t len,
		     unlock_done_t done, void *userdata);

/* How many unlocks run now, and wait for a free slot (for Status). */
unsigned unlocks_running(const struct unlocks *u);
unsigned unlocks_queued(const struct unlocks *u);
