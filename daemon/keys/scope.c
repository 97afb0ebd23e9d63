/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "event.h"
#include "keyring.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "scope.h"
#include "util.h"

#define SCOPES_FILE "scopes.json"
#define JOURNAL_FILE "scopes.journal"
#define JOURNAL_MIN_LINES 4096u
#define SCOPES_MAX_FILE (64u * 1024 * 1024)
#define KEYSCOPE_KEYRING_NAME "keyscope"
#define STATE_RETRY_USEC (5 * 1000000ull)	/* retry a state write that failed */

struct scopes {
	sd_event *event;
	void *root;	/* tsearch(3) tree of struct scope, by id */
	size_t n;
	key_serial_t keyring;
	char *state_path, *journal_path;
	unsigned linger_sec;
	scope_fetch_t fetch;
	void *userdata;

	/*
	 * Holder counts are saved as a snapshot (scopes.json, with a generation number) plus a
	 * journal of "<holders> <key-id>" lines (scopes.journal, first line the generation it
	 * continues). Each change appends a line; the snapshot is rewritten only when the journal
	 * outgrows the table, so saving costs O(changes), not O(scopes), per loop iteration.
	 */
	uint64_t generation;
	int journal_fd;
	size_t journal_lines;
	char *pending;
	size_t pending_len, pending_alloc, pending_lines;
	bool snapshot_needed;

	/*
	 * The state folder refuses writes (a full /var): keyscoped serves from memory and says so
	 * (log once, status, sd_notify STATUS) and retries on the next change and on a timer.
	 */
	int state_error;
	char state_problem[256];
	sd_event_source *state_retry;
	bool retry_due;
};

/* Records id's new holder count for the next scopes_save(). */
static void scope_note(struct scopes *t, const char *id, unsigned holders)
{
	size_t need = SCOPE_ID_MAX + 16;

	if (t->pending_alloc - t->pending_len < need) {
		size_t a = t->pending_alloc ? t->pending_alloc * 2 : 4096;
		char *p = realloc(t->pending, a);
		if (!p) {
			t->snapshot_needed = true;	/* the snapshot will carry it */
			return;
		}
		t->pending = p;
		t->pending_alloc = a;
	}
	t->pending_len += (size_t) snprintf(t->pending + t->pending_len,
					    t->pending_alloc - t->pending_len, "%u %s\n", holders, id);
	t->pending_lines++;
}

static int scope_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scope *) a)->id, ((const struct scope *) b)->id);
}

int scopes_new(sd_event *event, key_serial_t parent, const char *state_dir, unsigned linger_sec,
	       scope_fetch_t fetch, void *userdata, struct scopes **ret)
{
	_cleanup_free_ struct scopes *t = calloc(1, sizeof(*t));
	key_serial_t k;

	if (!t)
		return log_oom();
	t->journal_fd = -EBADF;
	t->state_path = path_join(state_dir, SCOPES_FILE);
	t->journal_path = path_join(state_dir, JOURNAL_FILE);
	if (!t->state_path || !t->journal_path) {
		free(t->state_path);
		free(t->journal_path);
		return log_oom();
	}
	k = keyring_find_or_create(parent, KEYSCOPE_KEYRING_NAME);
	if (k < 0) {
		free(t->state_path);
		free(t->journal_path);
		return log_error_errno(k, "Failed to find or create the keyring '%s': %m",
				       KEYSCOPE_KEYRING_NAME);
	}
	t->keyring = k;
	t->event = sd_event_ref(event);
	t->linger_sec = linger_sec;
	t->fetch = fetch;
	t->userdata = userdata;
	*ret = TAKE_PTR(t);
	return 0;
}

static void scope_free(void *p)
{
	struct scope *s = p;

	sd_event_source_disable_unref(s->linger);
	free(s->verified);
	free(s);
}

struct scopes *scopes_free(struct scopes *t)
{
	if (!t)
		return NULL;
	tdestroy(t->root, scope_free);
	sd_event_source_disable_unref(t->state_retry);
	sd_event_unref(t->event);
	safe_close(t->journal_fd);
	free(t->state_path);
	free(t->journal_path);
	free(t->pending);
	free(t);
	return NULL;
}

key_serial_t scopes_keyring(struct scopes *t)
{
	return t->keyring;
}

size_t scopes_count(struct scopes *t)
{
	return t->n;
}

unsigned scope_holders(const struct scope *s)
{
	return s->manual + s->attached;
}

bool scope_is_verified(const struct scope *s, const uint8_t fp[static 32])
{
	for (size_t i = 0; i < s->n_verified; i++)
		if (memcmp(s->verified[i], fp, 32) == 0)
			return true;
	return false;
}

int scope_add_verified(struct scope *s, const uint8_t fp[static 32])
{
	uint8_t (*v)[32];

	if (scope_is_verified(s, fp))
		return 0;
	v = realloc(s->verified, (s->n_verified + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v[s->n_verified], fp, 32);
	s->verified = v;
	s->n_verified++;
	return 0;
}

int scope_fetch(struct scopes *t, const char *id, struct secret_buf *ret)
{
	if (!keyid_is_valid(id))	/* a volume key scope has nothing to fetch */
		return -EINVAL;
	return t->fetch(t->userdata, id, ret);
}

struct scope *scope_find(struct scopes *t, const char *id)
{
	struct scope key;
	void *node;

	if (strlen(id) > SCOPE_ID_MAX)
		return NULL;
	strcpy(key.id, id);
	node = tfind(&key, &t->root, scope_cmp);
	return node ? *(struct scope **) node : NULL;
}

static int scope_add(struct scopes *t, const char *id, struct scope **ret)
{
	struct scope *s = calloc(1, sizeof(*s));
	void *node;

	if (!s)
		return -ENOMEM;
	strcpy(s->id, id);
	s->owner = t;
	node = tsearch(s, &t->root, scope_cmp);
	if (!node) {
		free(s);
		return -ENOMEM;
	}
	t->n++;
	*ret = s;
	return 0;
}

static void scope_remove(struct scopes *t, struct scope *s)
{
	tdelete(s, &t->root, scope_cmp);
	t->n--;
	scope_free(s);
}

static int scope_install(struct scopes *t, struct scope *s, const struct secret_buf *material)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	char desc[KEY_DESC_MAX + 1];
	key_serial_t k;
	int r;

	r = scope_id_to_description(s->id, desc, sizeof(desc));
	if (r < 0)
		return r;
	if (!material) {
		/* A volume key comes only from unlocking a keyslot (attach --passphrase). */
		if (!keyid_is_valid(s->id))
			return -ENOKEY;
		r = t->fetch(t->userdata, s->id, &key);
		if (r < 0)
			return r;
		material = &key;
	}
	s->fetches++;
	k = keyring_add_logon(t->keyring, desc, material->data, material->len, KEYSCOPE_KEY_PERM);
	if (k < 0)
		return k;
	s->serial = k;
	s->key_len = material->len;
	log_event(EVENT_KEY_INSTALLED, LOG_INFO, EVENT_KEY(s->id), "Installed %s as key %d.",
		  desc, (int) k);
	metrics_count(METRIC_KEY_INSTALLS);
	return 0;
}

/* A key can vanish behind our back (keyctl invalidate, unlink): check before trusting it. */
static bool scope_key_alive(const struct scope *s)
{
	struct key_info info;
	const char *id;

	if (s->serial <= 0 || keyring_describe(s->serial, &info) < 0)
		return false;
	id = scope_id_from_description(info.description);
	return streq(info.type, "logon") && id && streq(id, s->id);
}

static void scope_drop_key(struct scopes *t, struct scope *s)
{
	int r;

	if (s->serial <= 0)
		return;
	r = keyring_invalidate(s->serial);
	if (r < 0 && r != -ENOKEY && r != -EKEYREVOKED && r != -EKEYEXPIRED)
		log_warning_errno(r, "Failed to invalidate key %d of scope %s, ignoring: %m",
				  (int) s->serial, s->id);
	else
		log_event(EVENT_KEY_INVALIDATED, LOG_INFO, EVENT_KEY(s->id),
			  "Invalidated key %d of scope %s.", (int) s->serial, s->id);
	metrics_count(METRIC_KEY_INVALIDATIONS);
	s->serial = 0;
}

/* Finds id's scope or adds an empty one; *ret_created says which. */
static int scope_get(struct scopes *t, const char *id, struct scope **ret, bool *ret_created)
{
	struct scope *s;
	int r;

	if (!scope_id_is_valid(id))
		return -EINVAL;
	s = scope_find(t, id);
	*ret_created = !s;
	if (!s) {
		r = scope_add(t, id, &s);
		if (r < 0)
			return r;
	}
	*ret = s;
	return 0;
}

int scope_acquire(struct scopes *t, const char *id, enum scope_hold kind,
		  const struct secret_buf *material, struct scope **ret)
{
	struct scope *s;
	bool created;
	int r;

	r = scope_get(t, id, &s, &created);
	if (r < 0)
		return r;
	if (!scope_key_alive(s) || s->revoked) {
		/* A withdrawn key is fetched again: the key source says whether it still may. */
		if (!s->revoked)
			s->serial = 0;
		r = scope_install(t, s, material);
		if (r < 0) {
			if (created)
				scope_remove(t, s);
			return r;
		}
		s->revoked = false;
	} else if (material)
		s->fetches++;	/* the caller fetched to check a header */
	s->linger = sd_event_source_disable_unref(s->linger);
	if (kind == SCOPE_MANUAL) {
		s->manual++;
		scope_note(t, s->id, s->manual);
	} else
		s->attached++;
	*ret = s;
	return 0;
}

int scope_restore_attached(struct scopes *t, const char *id)
{
	struct scope *s;
	bool created;
	int r;

	r = scope_get(t, id, &s, &created);
	if (r < 0)
		return r;
	s->attached++;
	return 0;
}

static int on_linger(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct scope *s = userdata;
	struct scopes *t = s->owner;

	log_debug("Linger of scope %s ended.", s->id);
	scope_drop_key(t, s);
	scope_remove(t, s);
	return 0;
}

int scope_release(struct scopes *t, const char *id, enum scope_hold kind)
{
	struct scope *s = scope_find(t, id);
	int r;

	if (!s)
		return -ENOENT;
	if (kind == SCOPE_MANUAL) {
		if (s->manual == 0)
			return -ENOLCK;
		s->manual--;
		scope_note(t, s->id, s->manual);
	} else {
		if (s->attached == 0)
			return -ENOLCK;
		s->attached--;
	}
	metrics_count(METRIC_KEY_RELEASES);
	if (kind == SCOPE_ATTACH && s->attached == 0 && s->revoked && s->serial > 0) {
		log_info("Last mapping of withdrawn key %s released: invalidating its kernel key.",
			 s->id);
		scope_drop_key(t, s);
	}
	if (scope_holders(s) > 0)
		return (int) scope_holders(s);

	if (t->linger_sec > 0 && s->serial > 0 && !s->revoked) {
		r = sd_event_add_time_relative(t->event, &s->linger, CLOCK_MONOTONIC,
					       (uint64_t) t->linger_sec * 1000000u, 0,
					       on_linger, s);
		if (r >= 0)
			return 0;
		log_warning_errno(r, "Failed to arm linger timer of %s, dropping now: %m", s->id);
	}
	scope_drop_key(t, s);
	scope_remove(t, s);
	return 0;
}

int scope_revoke(struct scopes *t, const char *id)
{
	struct scope *s = scope_find(t, id);

	if (!s)
		return -ENOENT;
	s->revoked = true;
	s->linger = sd_event_source_disable_unref(s->linger);
	if (s->attached > 0 || s->serial <= 0)
		return 0;
	scope_drop_key(t, s);
	if (scope_holders(s) == 0)
		scope_remove(t, s);
	return 1;
}

struct walk_ctx {
	void (*f)(struct scope *s, void *userdata);
	void *userdata;
};

static void walk_one(const void *node, VISIT which, void *closure)
{
	struct walk_ctx *c = closure;

	if (which == postorder || which == leaf)
		c->f(*(struct scope **) node, c->userdata);
}

void scopes_foreach(struct scopes *t, void (*f)(struct scope *s, void *userdata),
		    void *userdata)
{
	struct walk_ctx c = { f, userdata };

	twalk_r(t->root, walk_one, &c);
}

/* ---- persistence ------------------------------------------------------------------------ */

static void save_one(struct scope *s, void *userdata)
{
	json_object *a = userdata, *o;

	if (s->manual == 0)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "key-id", json_object_new_string(s->id));
	json_object_object_add(o, "manual", json_object_new_int64(s->manual));
	json_object_array_add(a, o);
}

static int journal_reset(struct scopes *t)
{
	char head[32];
	int n, r;

	t->journal_fd = safe_close(t->journal_fd);
	n = snprintf(head, sizeof(head), "%llu\n", (unsigned long long) t->generation);
	r = write_file_atomic_flags(t->journal_path, head, (size_t) n, 0600, 0);
	if (r < 0)
		return r;
	t->journal_fd = open(t->journal_path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (t->journal_fd < 0)
		return -errno;
	t->journal_lines = 0;
	return 0;
}

static int snapshot_write(struct scopes *t)
{
	_cleanup_json_ json_object *root = json_object_new_object();
	json_object *a = json_object_new_array();
	const char *text;
	int r;

	if (!root || !a) {
		json_object_put(a);
		return -ENOMEM;
	}
	json_object_object_add(root, "version", json_object_new_int(1));
	json_object_object_add(root, "generation", json_object_new_int64((int64_t) t->generation + 1));
	json_object_object_add(root, "scopes", a);
	scopes_foreach(t, save_one, a);
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);

	/* Kernel keys do not outlive a reboot, so the counts only have to survive a restart of
	 * the daemon: an atomic rename is enough, no fsync on every change. A crash between the
	 * two writes leaves a journal of the old generation, which the next start ignores. */
	r = write_file_atomic_flags(t->state_path, text, strlen(text), 0600, 0);
	if (r < 0)
		return r;
	t->generation++;
	return journal_reset(t);
}

static int on_state_retry(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct scopes *t = userdata;

	t->state_retry = sd_event_source_disable_unref(t->state_retry);
	t->retry_due = true;
	(void) scopes_save(t);
	return 0;
}

/* A write of the state failed with r: say it loudly once, keep serving, retry later. */
static void state_failed(struct scopes *t, const char *path, int r)
{
	bool first = t->state_error == 0;

	t->state_error = r;
	(void) snprintf(t->state_problem, sizeof(t->state_problem), "%s: %s", path, strerror(-r));
	if (first) {
		log_full_errno(LOG_ERR, r, "Cannot write %s: %m. Serving keys from memory: holders "
			       "taken or dropped from now on are lost if keyscoped is killed before "
			       "the state is written again (retried on every change and every %llu "
			       "s); free space in the state folder.", path,
			       STATE_RETRY_USEC / 1000000);
		(void) sd_notifyf(0, "STATUS=Serving keys; state not written: %s",
				  t->state_problem);
	}
	if (!t->state_retry &&
	    sd_event_add_time_relative(t->event, &t->state_retry, CLOCK_MONOTONIC,
				       STATE_RETRY_USEC, 0, on_state_retry, t) < 0)
		log_warning("Cannot arm the state write retry timer, retrying on changes only.");
}

static void state_written(struct scopes *t)
{
	t->pending_len = t->pending_lines = 0;
	t->snapshot_needed = false;
	if (t->state_error == 0)
		return;
	t->state_error = 0;
	t->state_problem[0] = '\0';
	t->state_retry = sd_event_source_disable_unref(t->state_retry);
	log_notice("Wrote %s again: the holder counts are saved.", t->state_path);
	(void) sd_notify(0, "STATUS=Serving keys.");
}

const char *scopes_state_problem(const struct scopes *t)
{
	return t->state_error ? t->state_problem : NULL;
}

/* The snapshot cannot be written: the journal still may take the changes (it continues the
 * snapshot on disk, whose generation has not moved). Best effort. */
static void journal_fallback(struct scopes *t)
{
	if (t->journal_fd < 0 || t->pending_len == 0)
		return;
	if (loop_write(t->journal_fd, t->pending, t->pending_len) < 0)
		return;	/* a torn line is ignored at load */
	t->journal_lines += t->pending_lines;
	t->pending_len = t->pending_lines = 0;
}

int scopes_save(struct scopes *t)
{
	int r;

	if (!t->snapshot_needed && t->pending_len == 0)
		return 0;
	/* While the state folder refuses writes, try again on a change or when the timer says. */
	if (t->state_error && t->pending_len == 0 && !t->retry_due)
		return 0;
	t->retry_due = false;
	if (t->snapshot_needed || t->journal_fd < 0 ||
	    t->journal_lines + t->pending_lines > JOURNAL_MIN_LINES + 4 * t->n) {
		r = snapshot_write(t);
		if (r < 0) {
			t->snapshot_needed = true;
			journal_fallback(t);
			state_failed(t, t->state_path, r);
			return 0;
		}
	} else {
		r = loop_write(t->journal_fd, t->pending, t->pending_len);
		if (r < 0) {
			/* A torn line is ignored at load; the snapshot replaces it all. */
			t->snapshot_needed = true;
			state_failed(t, t->journal_path, r);
			return 0;
		}
		t->journal_lines += t->pending_lines;
	}
	state_written(t);
	return 0;
}

/* Sets id's recorded holder count while loading (0 removes it). */
static int record_set(struct scopes *t, const char *id, uint64_t manual)
{
	struct scope *s = scope_find(t, id);
	int r;

	if (manual == 0) {
		if (s)
			scope_remove(t, s);
		return 0;
	}
	if (!s) {
		r = scope_add(t, id, &s);
		if (r < 0)
			return r;
	}
	s->manual = (unsigned) manual;
	return 0;
}

static int journal_replay(struct scopes *t)
{
	_cleanup_free_ char *text = NULL;
	char *line, *p;
	uint64_t gen;
	unsigned n = 0;
	int r;

	r = read_full_file(t->journal_path, SCOPES_MAX_FILE, &text, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return log_error_errno(r, "Failed to read %s: %m", t->journal_path);
	p = text;
	line = strsep(&p, "\n");
	if (parse_uint64(line, 0, UINT64_MAX, &gen) < 0 || gen != t->generation) {
		log_info("Ignoring %s: it continues another snapshot.", t->journal_path);
		return 0;
	}
	/* The last line may be torn (power loss); a line without its newline is skipped. */
	while (p && (line = strsep(&p, "\n")) && p) {
		char *sp = strchr(line, ' ');
		uint64_t count;

		n++;
		if (!sp || (*sp = 0, parse_uint64(line, 0, UINT32_MAX, &count) < 0) ||
		    !scope_id_is_valid(sp + 1)) {
			log_warning("%s:%u: malformed line, ignoring.", t->journal_path, n + 1);
			continue;
		}
		r = record_set(t, sp + 1, count);
		if (r < 0)
			return log_oom();
	}
	return 0;
}

static int load_records(struct scopes *t)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_object *root = NULL;
	json_object *a, *g;
	size_t size;
	int r;

	r = read_full_file(t->state_path, SCOPES_MAX_FILE, &text, &size);
	if (r == -ENOENT)
		return journal_replay(t);
	if (r < 0)
		return log_error_errno(r, "Failed to read %s: %m", t->state_path);
	root = json_tokener_parse(text);
	if (!root || !json_object_object_get_ex(root, "scopes", &a) ||
	    !json_object_is_type(a, json_type_array))
		return log_error_errno(-EBADMSG,
				       "%s is not a keyscope state file; move it away to start "
				       "with no holders.", t->state_path);

	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *o = json_object_array_get_idx(a, i), *id, *m;
		int64_t manual;

		if (!json_object_object_get_ex(o, "key-id", &id) ||
		    !json_object_object_get_ex(o, "manual", &m) ||
		    !scope_id_is_valid(json_object_get_string(id))) {
			log_warning("%s: entry %zu is malformed, ignoring.", t->state_path, i);
			continue;
		}
		manual = json_object_get_int64(m);
		if (manual <= 0 || manual > UINT32_MAX)
			continue;
		if (record_set(t, json_object_get_string(id), (uint64_t) manual) < 0)
			return log_oom();
	}
	if (json_object_object_get_ex(root, "generation", &g))
		t->generation = (uint64_t) json_object_get_int64(g);
	return journal_replay(t);
}

static void adopt_kernel_key(struct scopes *t, key_serial_t k)
{
	struct key_info info;
	struct scope *s;
	const char *id;
	int r;

	r = keyring_describe(k, &info);
	if (r < 0)
		return;
	id = scope_id_from_description(info.description);
	if (!streq(info.type, "logon") || !id) {
		log_warning("Key %d (%s:%s) in the keyscope keyring is not ours, leaving it.",
			    (int) k, info.type, info.description);
		return;
	}
	s = scope_find(t, id);
	if (s && s->serial == 0) {
		s->serial = k;
		log_info("Kept key %s (serial %d, %u holders).", info.description, (int) k,
			 scope_holders(s));
		return;
	}
	log_info("Removing orphan key %s (serial %d): no holder is recorded.", info.description,
		 (int) k);
	r = keyring_invalidate(k);
	if (r < 0)
		log_warning_errno(r, "Failed to invalidate orphan key %d, ignoring: %m", (int) k);
}

static void reinstall_one(struct scope *s, void *userdata)
{
	int r;

	if (s->serial > 0)
		return;
	if (scope_holders(s) == 0)
		return;
	r = scope_install(s->owner, s, NULL);
	if (r == -EINPROGRESS)
		log_info("Key of scope %s (%u holders) is being fetched from its key source.",
			 s->id, scope_holders(s));
	else if (r < 0)
		log_error_errno(r, "Failed to reinstall key of scope %s (%u holders): %m", s->id,
				scope_holders(s));
	else
		log_info("Reinstalled key of scope %s (serial %d).", s->id, (int) s->serial);
}

int scopes_load_records(struct scopes *t)
{
	return load_records(t);
}

static void drop_unheld(struct scope *s, void *userdata)
{
	struct scope ***list = userdata;

	if (scope_holders(s) == 0)
		*(*list)++ = s;
}

int scopes_reconcile(struct scopes *t)
{
	_cleanup_free_ key_serial_t *ids = NULL;
	_cleanup_free_ struct scope **unheld = calloc(t->n + 1, sizeof(*unheld));
	struct scope **end = unheld;
	int n;

	if (!unheld)
		return log_oom();
	/* A scope whose holders all went while we were away has no business keeping a key. */
	scopes_foreach(t, drop_unheld, &end);
	for (struct scope **p = unheld; p < end; p++)
		scope_remove(t, *p);

	n = keyring_list(t->keyring, &ids);
	if (n < 0)
		return log_error_errno(n, "Failed to list the keyscope keyring: %m");
	for (int i = 0; i < n; i++)
		adopt_kernel_key(t, ids[i]);
	scopes_foreach(t, reinstall_one, NULL);
	t->snapshot_needed = true;
	return scopes_save(t);
}
