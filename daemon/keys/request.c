/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "keyid.h"
#include "log.h"
#include "request.h"
#include "scope.h"
#include "store.h"
#include "text.h"

static bool uid_allowed(const struct config *cfg, uid_t uid)
{
	for (unsigned i = 0; i < cfg->n_request_key_uids; i++)
		if (cfg->request_key_uids[i] == uid)
			return true;
	return false;
}

/*
 * No scope holder is taken: the requester gets a kernel key of its own (its serial, its
 * keyring, its quota, a timeout), which the daemon can neither count nor invalidate. A holder
 * would never be released. The scope's key in the keyscope keyring is not touched.
 */
int m_key_request(struct call *c)
{
	static const char *const allowed[] = { "key-id", "requester-uid", "callout", "serial",
					       NULL };
	const struct config *cfg = c->daemon->config;
	char callout[4 * REQUEST_CALLOUT_LOG + 4];
	const char *id, *info = "";
	uint64_t uid, serial = 0;
	struct secret_buf key = {};
	struct event_fields f = { .has_peer = true, .peer_pid = c->pid };
	json_object *o;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = call_get_key_id(c, "key-id", &id)) < 0 ||
	    (r = call_get_uint(c, "requester-uid", true, UINT32_MAX - 1, &uid)) < 0 ||
	    (r = call_get_string(c, "callout", false, REQUEST_CALLOUT_MAX, &info)) < 0 ||
	    (r = call_get_uint(c, "serial", false, INT32_MAX, &serial)) < 0)
		return r;
	if (c->uid != 0)	/* the method table says so too; the handler runs as root */
		return call_error(c, -EPERM, "keyscope.PermissionDenied",
				  "KeyRequest is for the request-key handler, which runs as root");
	/* The handler sends the callout info escaped already; anything else is escaped here. */
	if (text_is_escaped(info))
		(void) snprintf(callout, sizeof(callout), "%.*s%s", REQUEST_CALLOUT_LOG, info,
				strlen(info) > REQUEST_CALLOUT_LOG ? "..." : "");
	else
		text_escape(info, strlen(info), REQUEST_CALLOUT_LOG, callout, sizeof(callout));

	f.key_id = id;
	f.peer_uid = (uid_t) uid;
	if (!uid_allowed(cfg, (uid_t) uid)) {
		f.error = "keyscope.PermissionDenied";
		log_event(EVENT_KEY_REQUEST_REFUSED, LOG_NOTICE, &f,
			  "Audit: request-key of keyscope:%s for uid %u refused: uid not in "
			  "request-key-uids (key %u, callout \"%s\", handler pid %d).", id,
			  (unsigned) uid, (unsigned) serial, callout, (int) c->pid);
		return call_error(c, -EACCES, "keyscope.PermissionDenied",
				  "uid %u may not cause key fetches: it is not in request-key-uids",
				  (unsigned) uid);
	}
	/* The embedded store, or Barbican (the call waits for it: -EINPROGRESS). */
	r = scope_fetch(c->daemon->scopes, id, &key);
	if (r == -EINPROGRESS)
		return r;
	if (r < 0) {
		int k = call_key_error(c, r, id, "fetching key");

		f.error = c->error;
		log_event(EVENT_KEY_REQUEST_REFUSED, LOG_NOTICE, &f,
			  "Audit: request-key of keyscope:%s for uid %u refused: %s (key %u, "
			  "callout \"%s\", handler pid %d).", id, (unsigned) uid,
			  r == -ENOENT ? "no such key" : strerror(-r), (unsigned) serial, callout,
			  (int) c->pid);
		return k;
	}

	o = json_object_new_object();
	if (!o) {
		secret_buf_done(&key);
		return -ENOMEM;
	}
	json_object_object_add(o, "key-id", json_object_new_string(id));
	json_object_object_add(o, "bits", json_object_new_int((int) (key.len * 8)));
	json_object_object_add(o, "timeout", json_object_new_int((int) cfg->request_key_timeout_sec));
	c->reply = o;
	c->reply_payload = key;
	key = (struct secret_buf) {};	/* transferred */
	log_event(EVENT_KEY_HANDED_OUT, LOG_NOTICE, &f,
		  "Audit: request-key of keyscope:%s for uid %u granted: %zu bits, timeout %us "
		  "(key %u, callout \"%s\", handler pid %d).", id, (unsigned) uid,
		  c->reply_payload.len * 8, cfg->request_key_timeout_sec, (unsigned) serial,
		  callout, (int) c->pid);
	return 0;
}
