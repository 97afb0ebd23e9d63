/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control API's methods (docs/protocol.md). Each validates its parameters completely
 * before it changes anything, and logs what it changed with the caller's uid and pid.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "event.h"
#include "call.h"
#include "keyid.h"
#include "log.h"
#include "methods.h"
#include "observe.h"
#include "pending.h"
#include "proto.h"
#include "recovery.h"
#include "request.h"
#include "scope-reply.h"
#include "scope.h"
#include "source.h"
#include "unlock.h"
#include "store.h"
#include "supplied-methods.h"

#define VERSION KEYSCOPE_VERSION

static json_object *entry_to_json(const struct store_entry *e)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "key-id", json_object_new_string(e->id));
	json_object_object_add(o, "name", json_object_new_string(e->name));
	json_object_object_add(o, "bits", json_object_new_int((int) e->bits));
	json_object_object_add(o, "created", json_object_new_int64((int64_t) e->created));
	json_object_object_add(o, "source", json_object_new_string("local"));
	return o;
}

static int reply_key_id(struct call *c, const char *id)
{
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "key-id", json_object_new_string(id));
	return 0;
}

static int m_ping(struct call *c)
{
	static const char *const allowed[] = { NULL };
	int r;

	if ((r = call_check_params(c, allowed)) < 0)
		return r;
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "version", json_object_new_string(VERSION));
	return 0;
}

static int m_key_create(struct call *c)
{
	static const char *const allowed[] = { "bits", "name", NULL };
	char id[KEYID_MAX + 1], err[256];
	const char *name = NULL;
	uint64_t bits = 512;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = call_get_name(c, &name)) < 0)
		return r;
	r = proto_get_uint(c->params, "bits", false, 65536, &bits, err, sizeof(err));
	if (r < 0)
		return call_error(c, r, "keyscope.InvalidParameter", "%s", err);
	if (bits != 256 && bits != 512)
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "bits must be 256 or 512 (AES-128-XTS or AES-256-XTS)");
	r = store_create(c->daemon->store, (unsigned) bits, name, id);
	if (r == -EINVAL)
		return call_error(c, r, "keyscope.InvalidParameter",
				  "name must be printable text of at most %d bytes",
				  STORE_NAME_MAX);
	if (r < 0)
		return call_key_error(c, r, "(new)", "creating key");
	log_info("Created key %s (%u bits) for uid %u pid %d.", id, (unsigned) bits,
		 (unsigned) c->uid, (int) c->pid);
	return reply_key_id(c, id);
}

static int m_key_import(struct call *c)
{
	static const char *const allowed[] = { "name", NULL };
	char id[KEYID_MAX + 1];
	const char *name = NULL;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = call_get_name(c, &name)) < 0)
		return r;
	if (c->payload.len != 32 && c->payload.len != 64)
		return call_error(c, -EINVAL, "keyscope.InvalidKeyLength",
				  "a key must be exactly 32 or 64 bytes, got %zu",
				  c->payload.len);
	r = store_import(c->daemon->store, c->payload.data, c->payload.len, name, id);
	if (r == -EINVAL)
		return call_error(c, r, "keyscope.InvalidParameter",
				  "name must be printable text of at most %d bytes",
				  STORE_NAME_MAX);
	if (r < 0)
		return call_key_error(c, r, "(new)", "importing key");
	log_info("Imported key %s (%zu bits) for uid %u pid %d.", id, c->payload.len * 8,
		 (unsigned) c->uid, (int) c->pid);
	return reply_key_id(c, id);
}

static void list_bad(const char *path, int error, void *userdata)
{
	log_warning_errno(error, "Skipping unreadable key file %s: %m", path);
}

static void on_barbican_list(void *userdata, int error, const char *error_name,
			     const char *message, json_object *keys)
{
	struct call *c = userdata;

	if (error < 0)
		call_error(c, error, error_name, "%s", message);
	else {
		c->reply = json_object_new_object();
		json_object_object_add(c->reply, "keys", keys);
	}
	call_complete(c);
}

static int m_key_list(struct call *c)
{
	static const char *const allowed[] = { "source", NULL };
	_cleanup_free_ struct store_entry *e = NULL;
	const char *source = "local";
	json_object *a;
	size_t n;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 ||
	    (r = call_get_string(c, "source", false, 32, &source)) < 0)
		return r;
	if (streq(source, "barbican")) {
		if (!source_has_barbican(c->daemon->source))
			return call_error(c, -EOPNOTSUPP, "keyscope.NoKeySource",
					  "no Barbican is configured (barbican-url in "
					  "keyscoped.conf)");
		r = source_list(c->daemon->source, on_barbican_list, c);
		if (r < 0)
			return call_error(c, r, "keyscope.InternalError",
					  "listing Barbican's delegations: %s", strerror(-r));
		call_defer(c);
		return 0;
	}
	if (!streq(source, "local"))
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "source must be \"local\" or \"barbican\"");
	r = store_list(c->daemon->store, &e, &n, list_bad, NULL);
	if (r < 0)
		return call_error(c, r, "keyscope.StoreError", "listing the key store %s failed: %s",
				  c->daemon->config->state_dir, strerror(-r));
	a = json_object_new_array_ext((int) n);
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, entry_to_json(&e[i]));
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "keys", a);
	return 0;
}

static int m_key_delete(struct call *c)
{
	static const char *const allowed[] = { "key-id", NULL };
	struct scope *s;
	const char *id;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = call_get_key_id(c, "key-id", &id)) < 0)
		return r;
	s = scope_find(c->daemon->scopes, id);
	if (s && scope_holders(s) > 0)
		return call_error(c, -EBUSY, "keyscope.KeyInUse",
				  "key %s has %u holders; release them first", id,
				  scope_holders(s));
	r = store_delete(c->daemon->store, id);
	if (r < 0)
		return call_key_error(c, r, id, "deleting key");
	/* A scope without holders here is lingering: its kernel key must not outlive the key. */
	if (s && scope_revoke(c->daemon->scopes, id) > 0)
		log_info("Invalidated the lingering kernel key of deleted key %s.", id);
	log_info("Deleted key %s for uid %u pid %d.", id, (unsigned) c->uid, (int) c->pid);
	return reply_key_id(c, id);
}

static void on_barbican_clone(void *userdata, int error, const char *error_name,
			      const char *message, const char *new_id)
{
	struct call *c = userdata;
	const char *src = json_object_get_string(json_object_object_get(c->params, "key-id"));

	if (error < 0)
		call_error(c, error, error_name, "%s", message);
	else {
		log_info("Cloned Barbican key %s as %s (readable by this node) for uid %u pid %d.",
			 src, new_id, (unsigned) c->uid, (int) c->pid);
		c->reply = json_object_new_object();
		json_object_object_add(c->reply, "key-id", json_object_new_string(new_id));
		json_object_object_add(c->reply, "source-key-id", json_object_new_string(src));
		json_object_object_add(c->reply, "source", json_object_new_string("barbican"));
	}
	call_complete(c);
}

/* clone-key of a key the store does not hold: a new secret in Barbican. */
static int clone_barbican(struct call *c, const char *src, const char *name)
{
	int r = source_clone(c->daemon->source, src, name, on_barbican_clone, c);

	if (r < 0)
		return call_key_error(c, r, src, "cloning key");
	call_defer(c);
	return 0;
}

static int m_key_clone(struct call *c)
{
	static const char *const allowed[] = { "key-id", "name", NULL };
	char id[KEYID_MAX + 1];
	const char *src, *name = NULL;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = call_get_key_id(c, "key-id", &src)) < 0 ||
	    (r = call_get_name(c, &name)) < 0)
		return r;
	r = store_clone(c->daemon->store, src, name, id);
	if (r == -ENOENT && source_has_barbican(c->daemon->source))
		return clone_barbican(c, src, name);
	if (r == -EINVAL)
		return call_error(c, r, "keyscope.InvalidParameter",
				  "name must be printable text of at most %d bytes",
				  STORE_NAME_MAX);
	if (r < 0)
		return call_key_error(c, r, src, "cloning key");
	log_info("Cloned key %s as %s for uid %u pid %d.", src, id, (unsigned) c->uid,
		 (int) c->pid);
	c->reply = json_object_new_object();
	json_object_object_add(c->reply, "key-id", json_object_new_string(id));
	json_object_object_add(c->reply, "source-key-id", json_object_new_string(src));
	return 0;
}

#define KEY_BATCH_MAX PROTO_IDS_MAX

/*
 * "key-id": one key, or "key-ids": an array of 1..KEY_BATCH_MAX (the boot-time case: many
 * volumes at once, one round trip). Every id is checked before anything changes.
 */
static int get_key_ids(struct call *c, const char ***ret, size_t *ret_n, bool *ret_batch)
{
	json_object *a;
	const char **ids;
	size_t n;
	int r;

	if (c->key_ids.n > 0) {
		/* Read by proto_ids_read(), every id checked there. */
		ids = malloc(c->key_ids.n * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		memcpy(ids, c->key_ids.ids, c->key_ids.n * sizeof(*ids));
		*ret = ids;
		*ret_n = c->key_ids.n;
		*ret_batch = true;
		return 0;
	}
	if (!json_object_object_get_ex(c->params, "key-ids", &a)) {
		const char *id;
		r = call_get_key_id(c, "key-id", &id);
		if (r < 0)
			return r;
		ids = malloc(sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		ids[0] = id;
		*ret = ids;
		*ret_n = 1;
		*ret_batch = false;
		return 0;
	}
	if (json_object_object_get_ex(c->params, "key-id", NULL))
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "give 'key-id' or 'key-ids', not both");
	if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) == 0 ||
	    json_object_array_length(a) > KEY_BATCH_MAX)
		return call_error(c, -EINVAL, "keyscope.InvalidParameter",
				  "'key-ids' must be an array of 1..%d key-ids", KEY_BATCH_MAX);
	n = json_object_array_length(a);
	ids = calloc(n, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		const char *id = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) || !keyid_is_valid(id) ||
		    strlen(id) != (size_t) json_object_get_string_len(v)) {
			free(ids);
			return call_error(c, -EINVAL, "keyscope.InvalidKeyId",
					  "'key-ids'[%zu] is not a valid key-id", i);
		}
		ids[i] = id;
	}
	*ret = ids;
	*ret_n = n;
	*ret_batch = true;
	return 0;
}

/*
 * The reply: the one scope, or {"scopes": [...]} for a batch, in the order asked. got[i] is
 * ids[i]'s scope as the request left it, NULL when it has none (any more).
 */
static int reply_scopes(struct call *c, const char **ids, struct scope **got, size_t n,
			bool batch)
{
	struct textbuf b = {};

	if (batch)
		textbuf_str(&b, "{\"scopes\":[");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			textbuf_put(&b, ",", 1);
		if (got[i])
			scope_reply_put(&b, got[i], c->daemon->source);
		else
			scope_reply_put_gone(&b, ids[i]);
	}
	if (batch)
		textbuf_str(&b, "]}");
	c->reply_text = textbuf_take(&b);
	return c->reply_text ? 0 : -ENOMEM;
}

/*
 * Asks the key source for every key that is not installed yet before anything changes: a
 * batch of Barbican keys is fetched concurrently, in one wait, not one key per re-run.
 */
static int want_keys(struct call *c, const char **ids, size_t n)
{
	bool waiting = false;

	for (size_t i = 0; i < n; i++) {
		struct scope *s = scope_find(c->daemon->scopes, ids[i]);
		int r;

		if (s && s->serial > 0 && !s->revoked)
			continue;
		r = source_want(c->daemon->source, ids[i]);
		if (r == -EINPROGRESS)
			waiting = true;
		else if (r < 0)
			return r;
	}
	return waiting ? -EINPROGRESS : 0;
}

/*
 * A kernel key (lingering, or installed before its key file went away) is no proof that the
 * key still exists: with only the local store, its entry must be there. The check reads the
 * sealed file into the store's cache, where the install finds it.
 */
static int check_stored(struct call *c, const char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct scope *s;
		if (store_preload(c->daemon->store, ids[i]) != -ENOENT)
			continue;
		s = scope_find(c->daemon->scopes, ids[i]);
		if (s && scope_holders(s) == 0)
			(void) scope_revoke(c->daemon->scopes, ids[i]);
		return call_key_error(c, -ENOENT, ids[i], "installing key");
	}
	return 0;
}

/* One line per request at info level; the keys one by one at debug level. */
static void log_holds(struct call *c, const char *what, const char **ids, size_t n,
		      struct scope *s)
{
	if (n == 1 && s)
		log_info("Holder %s on keyscope:%s (serial %d, %u holders) by uid %u pid %d.",
			 what, ids[0], (int) s->serial, scope_holders(s), (unsigned) c->uid,
			 (int) c->pid);
	else if (n == 1)
		log_info("Holder %s on keyscope:%s (0 left, key invalidated) by uid %u pid %d.",
			 what, ids[0], (unsigned) c->uid, (int) c->pid);
	else
		log_info("Holders %s on %zu keys (keyscope:%s ... keyscope:%s) by uid %u pid %d.",
			 what, n, ids[0], ids[n - 1], (unsigned) c->uid, (int) c->pid);
}

static int m_key_install(struct call *c)
{
	static const char *const allowed[] = { "key-id", "key-ids", NULL };
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct scope **got = NULL;
	bool batch, barbican = c->daemon->source && source_has_barbican(c->daemon->source);
	size_t n;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = get_key_ids(c, &ids, &n, &batch)) < 0)
		return r;
	if (!barbican && (r = check_stored(c, ids, n)) < 0)
		return r;
	/* Without Barbican every key is in the store: there is nothing to wait for. */
	if (barbican && (r = want_keys(c, ids, n)) < 0)
		return r;
	got = calloc(n, sizeof(*got));
	if (!got)
		return -ENOMEM;
	scopes_set_batch(c->daemon->scopes, batch);
	for (size_t i = 0; i < n; i++) {
		r = scope_acquire(c->daemon->scopes, ids[i], SCOPE_MANUAL, NULL, &got[i]);
		if (r < 0) {
			/* All or nothing: drop the holders this request took so far. */
			for (size_t j = 0; j < i; j++)
				(void) scope_release(c->daemon->scopes, ids[j], SCOPE_MANUAL);
			scopes_set_batch(c->daemon->scopes, false);
			return call_key_error(c, r, ids[i], "installing key");
		}
		if (batch)
			log_debug("Holder taken on keyscope:%s (serial %d, %u holders).", ids[i],
				  (int) got[i]->serial, scope_holders(got[i]));
	}
	scopes_set_batch(c->daemon->scopes, false);
	log_holds(c, "taken", ids, n, got[0]);
	return reply_scopes(c, ids, got, n, batch);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Each key-id must have as many manual holders as the request drops, before any is dropped. */
static int check_held(struct call *c, const char **ids, size_t n)
{
	_cleanup_free_ const char **sorted = malloc(n * sizeof(*sorted));

	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, ids, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	for (size_t i = 0, run = 1; i < n; i++, run++) {
		struct scope *s;
		if (i + 1 < n && streq(sorted[i], sorted[i + 1]))
			continue;
		s = scope_find(c->daemon->scopes, sorted[i]);
		if (!s || s->manual < run)
			return call_error(c, -ENOLCK, "keyscope.NotHeld",
					  "key %s has %u holders taken with 'key install', fewer "
					  "than the %zu to release", sorted[i], s ? s->manual : 0, run);
		run = 0;
	}
	return 0;
}

static int m_key_release(struct call *c)
{
	static const char *const allowed[] = { "key-id", "key-ids", NULL };
	_cleanup_free_ const char **ids = NULL;
	_cleanup_free_ struct scope **got = NULL;
	bool batch;
	size_t n;
	int r;

	if ((r = call_check_params(c, allowed)) < 0 || (r = get_key_ids(c, &ids, &n, &batch)) < 0)
		return r;
	if (!batch && !(scope_find(c->daemon->scopes, ids[0]) &&
			scope_find(c->daemon->scopes, ids[0])->manual > 0))
		return call_error(c, -ENOLCK, "keyscope.NotHeld",
				  "key %s has no holder taken with 'key install'", ids[0]);
	if ((r = check_held(c, ids, n)) < 0)
		return r;
	scopes_set_batch(c->daemon->scopes, batch);
	for (size_t i = 0; i < n; i++) {
		r = scope_release(c->daemon->scopes, ids[i], SCOPE_MANUAL);
		if (r < 0) {
			scopes_set_batch(c->daemon->scopes, false);
			return call_key_error(c, r, ids[i], "releasing key");
		}
		if (batch)
			log_debug("Holder dropped on keyscope:%s (%d left).", ids[i], r);
	}
	scopes_set_batch(c->daemon->scopes, false);
	/* After all releases: a scope released twice in one batch is gone for both. */
	got = calloc(n, sizeof(*got));
	if (!got)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		got[i] = scope_find(c->daemon->scopes, ids[i]);
	if (!batch)
		log_event(EVENT_KEY_RELEASED, LOG_INFO, EVENT_PEER(c, NULL, NULL, ids[0]),
			  "Holder dropped on keyscope:%s (%u left%s) by uid %u pid %d.", ids[0],
			  got[0] ? scope_holders(got[0]) : 0, got[0] ? "" : ", key invalidated",
			  (unsigned) c->uid, (int) c->pid);
	else
		log_holds(c, "dropped", ids, n, NULL);
	return reply_scopes(c, ids, got, n, batch);
}

struct list_ctx {
	struct textbuf *b;
	struct source *source;
	bool first;
};

static void list_one(struct scope *s, void *userdata)
{
	struct list_ctx *x = userdata;

	if (!x->first)
		textbuf_put(x->b, ",", 1);
	x->first = false;
	scope_reply_put(x->b, s, x->source);
}

/* Appends "keyring": N, "scopes": [...] and the closing brace to b. */
static void scopes_put(struct call *c, struct textbuf *b)
{
	textbuf_str(b, "\"keyring\":");
	textbuf_i64(b, scopes_keyring(c->daemon->scopes));
	textbuf_str(b, ",\"scopes\":[");
	scopes_foreach(c->daemon->scopes, list_one,
		       &(struct list_ctx) { b, c->daemon->source, true });
	textbuf_str(b, "]}");
}

static int m_scope_list(struct call *c)
{
	static const char *const allowed[] = { NULL };
	struct textbuf b = {};
	int r;

	if ((r = call_check_params(c, allowed)) < 0)
		return r;
	textbuf_put(&b, "{", 1);
	scopes_put(c, &b);
	c->reply_text = textbuf_take(&b);
	return c->reply_text ? 0 : -ENOMEM;
}

/* Status: the daemon's fields as a tree (they are few), the scopes written as text after. */
static int m_status(struct call *c)
{
	static const char *const allowed[] = { NULL };
	const struct config *cfg = c->daemon->config;
	_cleanup_json_ json_object *o = NULL;
	struct textbuf b = {};
	const char *text;
	size_t len;
	int r;

	if ((r = call_check_params(c, allowed)) < 0)
		return r;
	/* Reconcile first: a mapping closed behind our back releases its holder, which the
	 * scope list below must already show. */
	attachments_reconcile(c->daemon->attachments);
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "version", json_object_new_string(VERSION));
	json_object_object_add(o, "keyring-spec", json_object_new_string(cfg->keyring));
	json_object_object_add(o, "state-dir", json_object_new_string(cfg->state_dir));
	if (scopes_state_problem(c->daemon->scopes))
		json_object_object_add(o, "state-error", json_object_new_string(
					       scopes_state_problem(c->daemon->scopes)));
	json_object_object_add(o, "socket", json_object_new_string(cfg->socket_path));
	json_object_object_add(o, "clients", json_object_new_int((int) call_n_clients(c)));
	json_object_object_add(o, "unlocks",
			       json_object_new_int((int) unlocks_running(c->daemon->unlocks)));
	json_object_object_add(o, "unlocks-queued",
			       json_object_new_int((int) unlocks_queued(c->daemon->unlocks)));
	attachments_to_json(c->daemon->attachments, o);
	pending_to_json(c->daemon, o);
	source_status(c->daemon->source, o);
	/* "{...}" less its closing brace, then the scopes. */
	text = proto_to_string(o);
	len = strlen(text);
	if (len < 2 || text[len - 1] != '}')
		return -EINVAL;
	textbuf_put(&b, text, len - 1);
	if (len > 2)
		textbuf_put(&b, ",", 1);
	scopes_put(c, &b);
	c->reply_text = textbuf_take(&b);
	return c->reply_text ? 0 : -ENOMEM;
}

const struct method method_table[] = {
	{ "keyscope.Ping", m_ping, false, false },
	{ "keyscope.Status", m_status, false, false },
	{ "keyscope.Metrics", m_metrics, false, false },
	{ "keyscope.KeyList", m_key_list, false, false },
	{ "keyscope.ScopeList", m_scope_list, false, false },
	{ "keyscope.KeyCreate", m_key_create, true, false },
	{ "keyscope.KeyImport", m_key_import, true, true },
	{ "keyscope.KeyDelete", m_key_delete, true, false },
	{ "keyscope.KeyClone", m_key_clone, true, false },
	{ "keyscope.KeyInstall", m_key_install, true, false },
	{ "keyscope.KeyRelease", m_key_release, true, false },
	{ "keyscope.KeyRequest", m_key_request, true, false },
	{ "keyscope.VolumeList", m_volume_list, false, false },
	{ "keyscope.VolumeFormat", supplied_volume_format, true, true },
	{ "keyscope.VolumeAttach", supplied_volume_attach, true, true },
	{ "keyscope.VolumeDetach", m_volume_detach, true, false },
	{ "keyscope.VolumeResize", m_volume_resize, true, false },
	{ "keyscope.VolumeRebind", m_volume_rebind, true, false },
	{ "keyscope.VolumeRecoveryAdd", m_volume_recovery_add, true, true },
	{ "keyscope.VolumeRecoveryRemove", m_volume_recovery_remove, true, false },
};

const size_t method_table_n = ELEMENTSOF(method_table);
