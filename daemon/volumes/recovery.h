/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Recovery keyslots (keyscopectl recovery add|remove, format --recovery-passphrase). A volume
 * keyscope formats has no keyslot: its volume key is the delegated key, opened by keyring
 * reference. A recovery keyslot holds that same volume key under a passphrase (Argon2id at
 * cryptsetup's defaults, derived in the keyscope-unlock helper, never on the event loop), so
 * that cryptsetup open and systemd-cryptsetup can open the volume without keyscope when the
 * key manager has lost the key. keyscope's own attaches never read or need the keyslot.
 */
#pragma once

#include "call.h"

/* keyscope.VolumeRecoveryAdd: device, payload = the passphrase. */
int m_volume_recovery_add(struct call *c);
/* keyscope.VolumeRecoveryRemove: device. */
int m_volume_recovery_remove(struct call *c);
