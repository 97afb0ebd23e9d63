/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The holder counts on disk (scopes.json + scopes.journal) and the start-up reconciliation
 * with the kernel. Both files carry each key's serial too, so that a restart trusts the keys
 * it recorded without asking the kernel to describe each one: a recorded serial that is still
 * in the keyscope keyring is adopted as it is, and checked (KEYCTL_DESCRIBE) when the scope is
 * next acquired, as any installed key is. Only the keyring's other keys are described.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "keyring.h"
#include "log.h"
#include "proto.h"
#include "scope-internal.h"
#include "util.h"

#define JOURNAL_MIN_LINES 4096u
#define SCOPES_MAX_FILE (64u * 1024 * 1024)
#define STATE_RETRY_USEC (5 * 1000000ull)	/* retry a state write that failed */
#define LINE_MAX_LEN (SCOPE_ID_MAX + 2 * 21 + 4)	/* "<count> <id> <serial>\n" */

/* Writes v in decimal at p; returns the number of bytes. No snprintf on the hot path. */
static size_t put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do
		tmp[n++] = (char) ('0' + v % 10);
	while ((v /= 10) > 0);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

static size_t put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return n;
}

/* A scope's record line: manual holders, id, serial (0: none to trust). */
static size_t record_line(char *p, const struct scope *s)
{
	size_t k = put_u64(p, s->manual);

	p[k++] = ' ';
	k += put_str(p + k, s->id);
	p[k++] = ' ';
	k += put_u64(p + k, s->serial > 0 ? (uint64_t) s->serial : 0);
	p[k++] = '\n';
	return k;
}

void scope_note(struct scopes *t, const struct scope *s)
{
	if (t->pending_alloc - t->pending_len < LINE_MAX_LEN) {
		size_t a = t->pending_alloc ? t->pending_alloc * 2 : 4096;
		char *p = realloc(t->pending, a);
		if (!p) {
			t->snapshot_needed = true;	/* the snapshot will carry it */
			return;
		}
		t->pending = p;
		t->pending_alloc = a;
	}
	t->pending_len += record_line(t->pending + t->pending_len, s);
	t->pending_lines++;
}

void scopes_state_done(struct scopes *t)
{
	sd_event_source_disable_unref(t->state_retry);
	safe_close(t->journal_fd);
	free(t->pending);
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

/* One snapshot entry; ids are [A-Za-z0-9._:-] (scope_id_is_valid), nothing to escape. */
static size_t snapshot_entry(char *p, const struct scope *s, bool first)
{
	size_t k = put_str(p, first ? "{\"key-id\":\"" : ",{\"key-id\":\"");

	k += put_str(p + k, s->id);
	k += put_str(p + k, "\",\"manual\":");
	k += put_u64(p + k, s->manual);
	k += put_str(p + k, ",\"serial\":");
	k += put_u64(p + k, s->serial > 0 ? (uint64_t) s->serial : 0);
	p[k++] = '}';
	return k;
}

/* The snapshot's JSON text, written straight into one buffer (10,000 scopes: ~1 MB). */
static int snapshot_text(struct scopes *t, char **ret, size_t *ret_len)
{
	size_t alloc = 128 + t->map.n * (SCOPE_ID_MAX + 64), k;
	char *p = malloc(alloc);
	bool first = true;

	if (!p)
		return -ENOMEM;
	k = (size_t) snprintf(p, alloc, "{\"version\":1,\"generation\":%llu,\"scopes\":[",
			      (unsigned long long) t->generation + 1);
	for (size_t i = 0; i < t->map.cap; i++) {
		const struct scope *s = t->map.slots[i];
		if (!s || s->manual == 0)
			continue;
		k += snapshot_entry(p + k, s, first);
		first = false;
	}
	k += put_str(p + k, "]}");
	*ret = p;
	*ret_len = k;
	return 0;
}

static int snapshot_write(struct scopes *t)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	r = snapshot_text(t, &text, &len);
	if (r < 0)
		return r;
	/* Kernel keys do not outlive a reboot, so the counts only have to survive a restart of
	 * the daemon: an atomic rename is enough, no fsync on every change. A crash between the
	 * two writes leaves a journal of the old generation, which the next start ignores. */
	r = write_file_atomic_flags(t->state_path, text, len, 0600, 0);
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
	    t->journal_lines + t->pending_lines > JOURNAL_MIN_LINES + 4 * t->map.n) {
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

/* Sets id's recorded holder count and serial while loading (count 0 removes it). */
static int record_set(struct scopes *t, const char *id, uint64_t manual, uint64_t serial)
{
	uint64_t h = idmap_hash(&t->map, id);
	struct scope *s = idmap_get_hashed(&t->map, id, h);
	int r;

	if (manual == 0) {
		if (s)
			scope_remove(t, s);
		return 0;
	}
	if (!s) {
		r = scope_add_hashed(t, id, h, &s);
		if (r < 0)
			return r;
	}
	s->manual = (unsigned) manual;
	/* Checked against the keyring by adopt_recorded(), before anything trusts it. */
	s->serial = (key_serial_t) serial;
	s->recorded = serial > 0;
	return 0;
}

/* A decimal of 1..10 digits, nothing else, at most max. Returns 0 or -EBADMSG. */
static int parse_count(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 10; i++)
		v = v * 10 + (uint64_t) (s[i] - '0');
	if (i == 0 || s[i] != 0 || v > max)
		return -EBADMSG;
	*ret = v;
	return 0;
}

/* "<count> <id>" or "<count> <id> <serial>" (older journals have no serial). */
static int journal_line(struct scopes *t, char *line)
{
	char *id = strchr(line, ' '), *sp;
	uint64_t count, serial = 0;

	if (!id)
		return -EBADMSG;
	*id++ = 0;
	sp = strchr(id, ' ');
	if (sp) {
		*sp++ = 0;
		if (parse_count(sp, INT32_MAX, &serial) < 0)
			return -EBADMSG;
	}
	if (parse_count(line, UINT32_MAX, &count) < 0 || !scope_id_is_valid(id))
		return -EBADMSG;
	return record_set(t, id, count, serial) < 0 ? -ENOMEM : 0;
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
		n++;
		r = journal_line(t, line);
		if (r == -ENOMEM)
			return log_oom();
		if (r < 0)
			log_warning("%s:%u: malformed line, ignoring.", t->journal_path, n + 1);
	}
	return 0;
}

/* One entry of the snapshot's "scopes" array. Returns 0, -EBADMSG (skip it) or -ENOMEM. */
static int snapshot_entry_load(struct scopes *t, json_object *o)
{
	json_object *id, *m, *k;
	int64_t manual, serial = 0;

	if (!json_object_object_get_ex(o, "key-id", &id) ||
	    !json_object_object_get_ex(o, "manual", &m) ||
	    !scope_id_is_valid(json_object_get_string(id)))
		return -EBADMSG;
	if (json_object_object_get_ex(o, "serial", &k))
		serial = json_object_get_int64(k);
	manual = json_object_get_int64(m);
	if (manual <= 0 || manual > UINT32_MAX)
		return 0;
	if (serial < 0 || serial > INT32_MAX)
		serial = 0;
	return record_set(t, json_object_get_string(id), (uint64_t) manual, (uint64_t) serial);
}

int scopes_load_records(struct scopes *t)
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

	if (idmap_reserve(&t->map, json_object_array_length(a)) < 0)
		return log_oom();
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		r = snapshot_entry_load(t, json_object_array_get_idx(a, i));
		if (r == -ENOMEM)
			return log_oom();
		if (r < 0)
			log_warning("%s: entry %zu is malformed, ignoring.", t->state_path, i);
	}
	if (json_object_object_get_ex(root, "generation", &g))
		t->generation = (uint64_t) json_object_get_int64(g);
	return journal_replay(t);
}

/* ---- start-up reconciliation ------------------------------------------------------------- */

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

static void reinstall_one(struct scopes *t, struct scope *s)
{
	int r;

	if (s->serial > 0 || scope_holders(s) == 0)
		return;
	r = scope_install(t, s, NULL);
	if (r == -EINPROGRESS)
		log_info("Key of scope %s (%u holders) is being fetched from its key source.",
			 s->id, scope_holders(s));
	else if (r < 0)
		log_error_errno(r, "Failed to reinstall key of scope %s (%u holders): %m", s->id,
				scope_holders(s));
	else
		log_info("Reinstalled key of scope %s (serial %d).", s->id, (int) s->serial);
}

static int serial_cmp(const void *a, const void *b)
{
	key_serial_t x = *(const key_serial_t *) a, y = *(const key_serial_t *) b;

	return (x > y) - (x < y);
}

/*
 * Adopts the recorded serials that are in the keyring (ids, sorted) without describing them;
 * marks them in taken. Returns how many were adopted.
 */
static size_t adopt_recorded(struct scopes *t, const key_serial_t *ids, size_t n, bool *taken)
{
	size_t adopted = 0;

	for (size_t i = 0; i < t->map.cap; i++) {
		struct scope *s = t->map.slots[i];
		const key_serial_t *k;

		if (!s || !s->recorded)
			continue;
		k = bsearch(&s->serial, ids, n, sizeof(*ids), serial_cmp);
		s->recorded = false;
		if (!k || taken[k - ids]) {
			s->serial = 0;	/* gone from the keyring: reinstalled below */
			continue;
		}
		taken[k - ids] = true;
		adopted++;
		log_debug("Kept key %s (serial %d, %u holders), as recorded.", s->desc, (int) *k,
			  scope_holders(s));
	}
	return adopted;
}

/* A scope whose holders all went while we were away has no business keeping a key. */
static int drop_unheld(struct scopes *t)
{
	_cleanup_free_ struct scope **unheld = calloc(t->map.n + 1, sizeof(*unheld));
	size_t k = 0;

	if (!unheld)
		return -ENOMEM;
	for (size_t i = 0; i < t->map.cap; i++)
		if (t->map.slots[i] && scope_holders(t->map.slots[i]) == 0)
			unheld[k++] = t->map.slots[i];
	for (size_t i = 0; i < k; i++)
		scope_remove(t, unheld[i]);
	return 0;
}

int scopes_reconcile(struct scopes *t)
{
	_cleanup_free_ key_serial_t *ids = NULL;
	_cleanup_free_ bool *taken = NULL;
	struct scope **v;
	size_t adopted;
	int n;

	if (drop_unheld(t) < 0)
		return log_oom();
	n = keyring_list(t->keyring, &ids);
	if (n < 0)
		return log_error_errno(n, "Failed to list the keyscope keyring: %m");
	taken = calloc((size_t) n + 1, sizeof(*taken));
	if (!taken)
		return log_oom();
	qsort(ids, (size_t) n, sizeof(*ids), serial_cmp);
	adopted = adopt_recorded(t, ids, (size_t) n, taken);
	if (adopted > 0)
		log_info("Kept %zu keys as recorded in %s.", adopted, t->state_path);
	for (int i = 0; i < n; i++)
		if (!taken[i])
			adopt_kernel_key(t, ids[i]);
	/* Installing changes no scope's place in the table: walk the slots directly. */
	v = (struct scope **) t->map.slots;
	for (size_t i = 0; i < t->map.cap; i++)
		if (v[i])
			reinstall_one(t, v[i]);
	t->snapshot_needed = true;
	return scopes_save(t);
}
