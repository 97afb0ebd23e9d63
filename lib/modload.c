/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <libkmod.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "macro.h"
#include "modload.h"

/* The libkmod calls used, resolved once by name (systemd's dlopen-libkmod does the same). */
static struct {
	bool tried, ok;
	char why[160];
	typeof(kmod_new) *new;
	typeof(kmod_unref) *unref;
	typeof(kmod_module_new_from_lookup) *new_from_lookup;
	typeof(kmod_list_next) *list_next;
	typeof(kmod_module_get_module) *get_module;
	typeof(kmod_module_probe_insert_module) *probe_insert;
	typeof(kmod_module_get_name) *get_name;
	typeof(kmod_module_unref) *module_unref;
	typeof(kmod_module_unref_list) *unref_list;
} kmod;

static bool sym(void *dl, void *ret, const char *name)
{
	void *p = dlsym(dl, name);

	if (!p) {
		(void) snprintf(kmod.why, sizeof(kmod.why), "%s has no %s", MODLOAD_LIBKMOD, name);
		return false;
	}
	memcpy(ret, &p, sizeof(p));
	return true;
}

static int kmod_open(void)
{
	void *dl;

	if (kmod.tried)
		return kmod.ok ? 0 : -ENOPKG;
	kmod.tried = true;
	dl = dlopen(MODLOAD_LIBKMOD, RTLD_NOW | RTLD_NODELETE);
	if (!dl) {
		(void) snprintf(kmod.why, sizeof(kmod.why),
				"%s cannot be opened (install libkmod2, or load the module with "
				"modprobe): %s", MODLOAD_LIBKMOD, dlerror());
		return -ENOPKG;
	}
	kmod.ok = sym(dl, &kmod.new, "kmod_new") && sym(dl, &kmod.unref, "kmod_unref") &&
		  sym(dl, &kmod.new_from_lookup, "kmod_module_new_from_lookup") &&
		  sym(dl, &kmod.list_next, "kmod_list_next") &&
		  sym(dl, &kmod.get_module, "kmod_module_get_module") &&
		  sym(dl, &kmod.probe_insert, "kmod_module_probe_insert_module") &&
		  sym(dl, &kmod.get_name, "kmod_module_get_name") &&
		  sym(dl, &kmod.module_unref, "kmod_module_unref") &&
		  sym(dl, &kmod.unref_list, "kmod_module_unref_list");
	/* RTLD_NODELETE: the handle is dropped, the library stays for the pointers above. */
	(void) dlclose(dl);
	return kmod.ok ? 0 : -ENOPKG;
}

/* Inserts each module of list, as modprobe; the first failure's reason in err. */
static int insert_all(struct kmod_list *list, char *err, size_t errlen)
{
	int r = 0;

	for (struct kmod_list *l = list; l; l = kmod.list_next(list, l)) {
		struct kmod_module *m = kmod.get_module(l);
		int k = kmod.probe_insert(m, KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY, NULL, NULL, NULL,
					  NULL);

		if (k == KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY)
			k = -EPERM;	/* blacklisted; libkmod returns the flag */
		if (k < 0 && k != -EEXIST && r == 0) {
			(void) snprintf(err, errlen, "loading %s failed: %s%s", kmod.get_name(m),
					strerror(-k),
					k == -EPERM ? " (needs CAP_SYS_MODULE; ProtectKernelModules= "
						      "or a blacklist entry blocks it)" : "");
			r = k;
		}
		kmod.module_unref(m);
	}
	return r;
}

int modload_load(const char *name, char *err, size_t errlen)
{
	struct kmod_list *list = NULL;
	struct kmod_ctx *ctx;
	struct utsname u;
	int r;

	r = kmod_open();
	if (r < 0) {
		(void) snprintf(err, errlen, "%s", kmod.why);
		return r;
	}
	(void) uname(&u);
	ctx = kmod.new(NULL, NULL);
	if (!ctx) {
		(void) snprintf(err, errlen, "libkmod could not start");
		return -ENOMEM;
	}
	r = kmod.new_from_lookup(ctx, name, &list);
	if (r < 0 || !list) {
		(void) snprintf(err, errlen,
				"no module %s for kernel %s under /lib/modules/%s: install the "
				"kernel's modules (linux-image-%s) and run depmod", name, u.release,
				u.release, u.release);
		kmod.unref(ctx);
		return r < 0 ? r : -ENOENT;
	}
	r = insert_all(list, err, errlen);
	kmod.unref_list(list);
	kmod.unref(ctx);
	return r;
}
