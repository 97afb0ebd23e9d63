/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libcurl, opened with dlopen() when a Barbican source is set up (issue 13): a node that uses
 * only the local store maps neither libcurl nor the 26 libraries only it needs (TLS, Kerberos,
 * LDAP, SSH...), 0.5 MiB of relocated data and a quarter of the dynamic loader's start-up work.
 * The code calls sym_curl_*() where it would call curl_*().
 */
#pragma once

#include <stddef.h>
#include <curl/curl.h>

#define CURL_DL_LIBCURL "libcurl.so.4"

/* Opens libcurl once and resolves every function below. Returns 0, or -ENOPKG with the reason
 * (the library's name, dlerror(), the package to install) in curl_dl_error(). */
int curl_dl_open(void);
const char *curl_dl_error(void);

extern typeof(curl_global_init) *sym_curl_global_init;
extern typeof(curl_easy_init) *sym_curl_easy_init;
extern typeof(curl_easy_cleanup) *sym_curl_easy_cleanup;
extern typeof(curl_easy_setopt) *sym_curl_easy_setopt;
extern typeof(curl_easy_getinfo) *sym_curl_easy_getinfo;
extern typeof(curl_easy_header) *sym_curl_easy_header;
extern typeof(curl_easy_strerror) *sym_curl_easy_strerror;
extern typeof(curl_slist_append) *sym_curl_slist_append;
extern typeof(curl_slist_free_all) *sym_curl_slist_free_all;
extern typeof(curl_multi_init) *sym_curl_multi_init;
extern typeof(curl_multi_cleanup) *sym_curl_multi_cleanup;
extern typeof(curl_multi_setopt) *sym_curl_multi_setopt;
extern typeof(curl_multi_add_handle) *sym_curl_multi_add_handle;
extern typeof(curl_multi_remove_handle) *sym_curl_multi_remove_handle;
extern typeof(curl_multi_assign) *sym_curl_multi_assign;
extern typeof(curl_multi_socket_action) *sym_curl_multi_socket_action;
extern typeof(curl_multi_info_read) *sym_curl_multi_info_read;
extern typeof(curl_share_init) *sym_curl_share_init;
extern typeof(curl_share_setopt) *sym_curl_share_setopt;
extern typeof(curl_share_cleanup) *sym_curl_share_cleanup;
extern typeof(curl_getdate) *sym_curl_getdate;
