/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "curl-dl.h"
#include "macro.h"

typeof(curl_global_init) *sym_curl_global_init;
typeof(curl_easy_init) *sym_curl_easy_init;
typeof(curl_easy_cleanup) *sym_curl_easy_cleanup;
typeof(curl_easy_setopt) *sym_curl_easy_setopt;
typeof(curl_easy_getinfo) *sym_curl_easy_getinfo;
typeof(curl_easy_header) *sym_curl_easy_header;
typeof(curl_easy_strerror) *sym_curl_easy_strerror;
typeof(curl_slist_append) *sym_curl_slist_append;
typeof(curl_slist_free_all) *sym_curl_slist_free_all;
typeof(curl_multi_init) *sym_curl_multi_init;
typeof(curl_multi_cleanup) *sym_curl_multi_cleanup;
typeof(curl_multi_setopt) *sym_curl_multi_setopt;
typeof(curl_multi_add_handle) *sym_curl_multi_add_handle;
typeof(curl_multi_remove_handle) *sym_curl_multi_remove_handle;
typeof(curl_multi_assign) *sym_curl_multi_assign;
typeof(curl_multi_socket_action) *sym_curl_multi_socket_action;
typeof(curl_multi_info_read) *sym_curl_multi_info_read;
typeof(curl_share_init) *sym_curl_share_init;
typeof(curl_share_setopt) *sym_curl_share_setopt;
typeof(curl_share_cleanup) *sym_curl_share_cleanup;
typeof(curl_getdate) *sym_curl_getdate;

static const struct {
	const char *name;
	void *ptr;		/* where the address goes: one of the sym_ pointers above */
} syms[] = {
	{ "curl_global_init", &sym_curl_global_init },
	{ "curl_easy_init", &sym_curl_easy_init },
	{ "curl_easy_cleanup", &sym_curl_easy_cleanup },
	{ "curl_easy_setopt", &sym_curl_easy_setopt },
	{ "curl_easy_getinfo", &sym_curl_easy_getinfo },
	{ "curl_easy_header", &sym_curl_easy_header },
	{ "curl_easy_strerror", &sym_curl_easy_strerror },
	{ "curl_slist_append", &sym_curl_slist_append },
	{ "curl_slist_free_all", &sym_curl_slist_free_all },
	{ "curl_multi_init", &sym_curl_multi_init },
	{ "curl_multi_cleanup", &sym_curl_multi_cleanup },
	{ "curl_multi_setopt", &sym_curl_multi_setopt },
	{ "curl_multi_add_handle", &sym_curl_multi_add_handle },
	{ "curl_multi_remove_handle", &sym_curl_multi_remove_handle },
	{ "curl_multi_assign", &sym_curl_multi_assign },
	{ "curl_multi_socket_action", &sym_curl_multi_socket_action },
	{ "curl_multi_info_read", &sym_curl_multi_info_read },
	{ "curl_share_init", &sym_curl_share_init },
	{ "curl_share_setopt", &sym_curl_share_setopt },
	{ "curl_share_cleanup", &sym_curl_share_cleanup },
	{ "curl_getdate", &sym_curl_getdate },
};

static struct {
	bool tried;
	int r;
	char why[256];
} dl;

const char *curl_dl_error(void)
{
	return dl.why;
}

int curl_dl_open(void)
{
	void *h;

	if (dl.tried)
		return dl.r;
	dl.tried = true;
	dl.r = -ENOPKG;
	h = dlopen(CURL_DL_LIBCURL, RTLD_NOW | RTLD_NODELETE);
	if (!h) {
		(void) snprintf(dl.why, sizeof(dl.why), "%s cannot be opened (install libcurl4): %s",
				CURL_DL_LIBCURL, dlerror());
		return dl.r;
	}
	for (size_t i = 0; i < ELEMENTSOF(syms); i++) {
		void *p = dlsym(h, syms[i].name);
		if (!p) {
			(void) snprintf(dl.why, sizeof(dl.why), "%s has no %s (libcurl 7.84 or "
					"later is needed)", CURL_DL_LIBCURL, syms[i].name);
			(void) dlclose(h);
			return dl.r;
		}
		memcpy(syms[i].ptr, &p, sizeof(p));
	}
	/* RTLD_NODELETE: the handle is dropped, the library stays for the pointers above. */
	(void) dlclose(h);
	dl.r = 0;
	return 0;
}
