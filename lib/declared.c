/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See declared.h. */
#include <stdio.h>
#include <stdlib.h>

#include "declared.h"
#include "nodeconf.h"
#include "unitname.h"
#include "volumes.h"

static const char *const auto_attach_words[] = {
	[AUTO_ATTACH_DECLARED] = "declared", [AUTO_ATTACH_ALL] = "all", [AUTO_ATTACH_NONE] = "none",
};

bool declared_uuid_is_valid(const char *s)
{
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char c = s[i];

		if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
					(c >= 'A' && c <= 'F')))
			return false;
	}
	return s[36] == '\0';
}

void declared_find(const char *dev, const char *luks_uuid, struct declared *ret)
{
	const char *vf = getenv("KEYSCOPE_VOLUMES_FILE"), *vd = getenv("KEYSCOPE_VOLUMES_DIR");
	const char *cf = getenv("KEYSCOPE_CONFIG");
	struct volumes vs = {};
	struct nodeconf conf;
	const struct volume *v;
	char esc[4 * DMCRYPT_NAME_MAX + 1];

	*ret = (struct declared) { .auto_attach = "declared" };
	if (nodeconf_read(cf && *cf ? cf : NODECONF_FILE, &conf) >= 0)
		ret->auto_attach = auto_attach_words[conf.auto_attach];
	if (volumes_load(&vs, vf && *vf ? vf : VOLUMES_FILE, vd && *vd ? vd : VOLUMES_DIR) >= 0 &&
	    (v = volumes_find_device(&vs, dev, luks_uuid)) &&
	    unitname_escape(v->name, esc, sizeof(esc)) >= 0) {
		snprintf(ret->name, sizeof(ret->name), "%s", v->name);
		ret->noauto = v->flags & VOLUME_NOAUTO;
		if (!ret->noauto)	/* crypttab's noauto: opened when asked for, not when seen */
			snprintf(ret->unit, sizeof(ret->unit), "keyscope-volume@%s.service", esc);
	}
	volumes_done(&vs);
}

void declared_print(const struct declared *d)
{
	if (d->name[0] && d->unit[0])
		printf("KEYSCOPE_VOLUME_NAME=%s\nKEYSCOPE_VOLUME_UNIT=%s\n", d->name, d->unit);
	else if (d->name[0])
		printf("KEYSCOPE_VOLUME_NAME=%s\nKEYSCOPE_VOLUME_NOAUTO=1\n", d->name);
	printf("KEYSCOPE_AUTO_ATTACH=%s\n", d->auto_attach);
}
