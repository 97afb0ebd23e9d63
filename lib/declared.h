/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Is this device a volume /etc/keyscope/volumes declares, and what may udev open? The answer
 * `keyscopectl probe` gives udev (helpers/keyscope-probe.c for the properties), from the
 * volumes files and keyscoped.conf's auto-attach, needing no libcryptsetup: under udev
 * keyscopectl answers it for a declared volume without reading the header (cli/probe.c).
 */
#pragma once

#include <stdbool.h>

#include "dmcrypt.h"

struct declared {
	char name[DMCRYPT_NAME_MAX + 1];	/* "" when the volumes file does not list it */
	char unit[4 * DMCRYPT_NAME_MAX + 32];	/* "" for a noauto volume: udev starts nothing */
	bool noauto;
	const char *auto_attach;		/* "declared", "all" or "none" */
};

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower- or upper-case hex. */
bool declared_uuid_is_valid(const char *s);

/*
 * Fills ret for device (a block device; luks_uuid its LUKS UUID, or NULL) from the files
 * KEYSCOPE_VOLUMES_FILE, KEYSCOPE_VOLUMES_DIR and KEYSCOPE_CONFIG name, or the defaults. Bad
 * lines of the files are the generator's to report (at boot); here they only do not match.
 */
void declared_find(const char *device, const char *luks_uuid, struct declared *ret);

/* The KEYSCOPE_VOLUME_* lines of a declared volume (none for another) and KEYSCOPE_AUTO_ATTACH. */
void declared_print(const struct declared *d);
