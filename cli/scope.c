/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <time.h>

#include "ctl.h"
#include "scope-reader.h"
#include "util.h"

static void print_attachments(json_object *rp)
{
	json_object *att, *van;

	if (json_object_object_get_ex(rp, "attachments", &att) &&
	    json_object_array_length(att) > 0) {
		printf("\n%-24s %-24s %-8s %-38s %7s\n", "VOLUME", "DEVICE", "KIND", "KEY-ID",
		       "HOLDERS");
		for (size_t i = 0; i < json_object_array_length(att); i++) {
			json_object *a = json_object_array_get_idx(att, i);
			printf("%-24s %-24s %-8s %-38s %7lld\n", json_str(a, "name"),
			       json_str(a, "device"), json_str(a, "kind"), json_str(a, "key-id"),
			       json_int(a, "holders"));
		}
	}
	if (json_object_object_get_ex(rp, "vanished", &van) && json_object_array_length(van) > 0) {
		printf("\nvanished (closed behind keyscoped's back or on a device that went away, "
		       "holders released):");
		for (size_t i = 0; i < json_object_array_length(van); i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(van, i)));
		printf("\n");
	}
}

/* Volumes keyscoped keeps trying while their key source is unreachable. */
static void print_pending(json_object *rp)
{
	json_object *pend;

	if (!json_object_object_get_ex(rp, "pending", &pend) || json_object_array_length(pend) == 0)
		return;
	printf("\n%-24s %-24s %5s %-19s %s\n", "PENDING", "DEVICE", "TRIES", "NEXT TRY",
	       "REASON");
	for (size_t i = 0; i < json_object_array_length(pend); i++) {
		json_object *o = json_object_array_get_idx(pend, i);
		time_t t = (time_t) json_int(o, "next-try");
		char when[32] = "now";
		struct tm tm;

		if (!json_object_get_boolean(json_object_object_get(o, "trying")) &&
		    localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%-24s %-24s %5lld %-19s %s\n", json_str(o, "name"), json_str(o, "device"),
		       json_int(o, "tries"), when, json_str(o, "reason"));
	}
}

/*
 * The table comes from a reader of the reply's text (cli/scope-reader.c), not a json-c tree:
 * at 10,000 scopes the tree was most of the command's time. --json prints json-c's rendering
 * of the whole reply, as before.
 */
int scope_list(int argc, char **argv)
{
	_cleanup_(scope_reply_done) struct scope_reply r = {};
	_cleanup_json_ json_object *reply = NULL;
	json_object *rp;

	if (argc != 1)
		return ctl_usage();
	if (ctl.json) {
		if (ctl_call("keyscope.ScopeList", NULL, NULL, 0, &reply, &rp) < 0)
			return 1;
		ctl_print_json(rp);
		return 0;
	}
	if (scope_reply_call("keyscope.ScopeList", &r, &rp) < 0)
		return 1;
	scope_reply_print(&r);
	return 0;
}

static void print_status(json_object *rp, const struct scope_reply *r)
{
	json_object *ks, *b;

	printf("keyscoped %s\n", json_str(rp, "version"));
	printf("  socket:    %s\n", json_str(rp, "socket"));
	printf("  state dir: %s\n", json_str(rp, "state-dir"));
	if (json_object_object_get_ex(rp, "state-error", &b))
		printf("  state not written: %s\n", json_object_get_string(b));
	printf("  keyring:   %lld (keyscope, linked in %s)\n", json_int(rp, "keyring"),
	       json_str(rp, "keyring-spec"));
	if (json_object_object_get_ex(rp, "key-sources", &ks) &&
	    json_object_object_get_ex(ks, "barbican", &b)) {
		printf("  barbican:  %s as %s (auth %s), sealed cache %s\n", json_str(b, "url"),
		       json_str(b, "user"), json_str(b, "auth"),
		       json_object_get_boolean(json_object_object_get(b, "cache")) ? "on" : "off");
		printf("             %lld fetched, %lld fetch failures, %lld requests in flight, "
		       "%lld consumer changes pending\n", json_int(b, "fetched"),
		       json_int(b, "fetch-failures"), json_int(b, "in-flight"),
		       json_int(b, "consumers-pending"));
	}
	if (json_int(rp, "unlocks") > 0 || json_int(rp, "unlocks-queued") > 0)
		printf("  unlocks:   %lld keyslot unlocks running, %lld queued\n",
		       json_int(rp, "unlocks"), json_int(rp, "unlocks-queued"));
	if (r->scan.has_scopes)
		printf("  scopes:    %zu\n\n", r->scan.scopes);
	scope_reply_print(r);
	print_attachments(rp);
	print_pending(rp);
}

/* The scopes as scope list reads them; the rest of the reply, with "scopes": [], with json-c. */
int status_main(int argc, char **argv)
{
	_cleanup_(scope_reply_done) struct scope_reply r = { .want_rest = true };
	_cleanup_json_ json_object *reply = NULL;
	json_object *rp;

	if (argc != 1)
		return ctl_usage();
	if (ctl.json) {
		if (ctl_call("keyscope.Status", NULL, NULL, 0, &reply, &rp) < 0)
			return 1;
		ctl_print_json(rp);
		return 0;
	}
	if (scope_reply_call("keyscope.Status", &r, &rp) < 0)
		return 1;
	print_status(rp, &r);
	return 0;
}
