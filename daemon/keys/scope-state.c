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

static size_t put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return n;
}

/* A scope's record line: manual holders, id, serial (0: none to trust). */
static size_t record_line(char *p, const struct scope *s)
{
	size_t k = format_u64(p, s->manual);

	p[k++] = ' ';
	k += put_str(p + k, s->id);
	p[k++] = ' ';
	k += format_u64(p + k, s->serial > 0 ? (uint64_t) s->serial : 0);
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

static int snapshot_write(struct scopes *t)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	r = scope_snapshot_text(t, t->generation + 1, &text, &len);
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
	/* A journal of the snapshot's generation is started without rewriting the snapshot. */
	if (!t->snapshot_needed && t->journal_fd < 0 && journal_reset(t) < 0)
		t->snapshot_needed = true;
	if (t->snapshot_needed ||
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

int scopes_compact(struct scopes *t)
{
	if (t->journal_lines + t->pending_lines > 0 || t->snapshot_relayout)
		t->snapshot_needed = true;
	t->retry_due = true;	/* a stop is the last chance to write */
	return scopes_save(t);
}

int scope_record_set(struct scopes *t, const char *id, uint64_t manual, uint64_t serial)
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
	s->recorded = (key_serial_t) serial;
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
	return scope_record_set(t, id, count, serial) < 0 ? -ENOMEM : 0;
}

/*
 * Replays the journal of the snapshot's generation and keeps it open to append to, so that a
 * start writes nothing when nothing changes. A journal that is torn or has malformed lines is
 * replaced by a snapshot at the next save; one of another generation by an empty journal.
 */
static int journal_replay(struct scopes *t)
{
	_cleanup_free_ char *text = NULL;
	char *line, *p;
	uint64_t gen;
	unsigned n = 0;
	size_t size;
	bool whole;
	int r;

	r = read_full_file(t->journal_path, SCOPES_MAX_FILE, &text, &size);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return log_error_errno(r, "Failed to read %s: %m", t->journal_path);
	/* Else an append would continue a torn last line, or a NUL would hide what follows it. */
	whole = size > 0 && text[size - 1] == '\n' && !memchr(text, '\0', size);
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
		if (r < 0) {
			log_warning("%s:%u: malformed line, ignoring.", t->journal_path, n + 1);
			t->snapshot_needed = true;
		}
	}
	if (!whole)
		t->snapshot_needed = true;
	if (t->snapshot_needed)
		return 0;
	t->journal_fd = open(t->journal_path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (t->journal_fd < 0)
		t->snapshot_needed = true;
	t->journal_lines = n;
	return 0;
}

int scopes_load_records(struct scopes *t)
{
	_cleanup_free_ char *text = NULL;
	size_t size;
	int r;

	r = read_full_file(t->state_path, SCOPES_MAX_FILE, &text, &size);
	if (r == -ENOENT)
		return journal_replay(t);
	if (r < 0)
		return log_error_errno(r, "Failed to read %s: %m", t->state_path);
	r = scope_snapshot_read_lines(t, text, size);
	if (r == 0) {
		/* Not the line layout: an older keyscoped's file, or one edited by hand. */
		r = scope_snapshot_read_json(t, text, t->state_path);
		if (r == -EBADMSG)
			return log_error_errno(r, "%s is not a keyscope state file; move it away to "
					       "start with no holders.", t->state_path);
		t->snapshot_relayout = true;
	}
	if (r < 0)
		return log_oom();
	log_debug("Read %s: %zu scopes%s.", t->state_path, t->map.n,
		  t->snapshot_relayout ? ", not in the line layout: rewritten at stop" : "");
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

/*
 * The keyring's serials, to match the scopes' against: open addressing on the serial (the
 * kernel's, not the state files'), 0 marks an empty slot, and taken the keys a scope claimed.
 */
struct serial_set {
	key_serial_t *slots;
	bool *taken;
	size_t mask;
};

static int serial_set_new(struct serial_set *set, const key_serial_t *ids, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap *= 2;
	set->slots = calloc(cap, sizeof(*set->slots));
	set->taken = calloc(cap, sizeof(*set->taken));
	if (!set->slots || !set->taken)
		return -ENOMEM;
	set->mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		size_t j = ((uint32_t) ids[i] * 0x9e3779b1u) & set->mask;
		while (set->slots[j] != 0 && set->slots[j] != ids[i])
			j = (j + 1) & set->mask;
		set->slots[j] = ids[i];
	}
	return 0;
}

static void serial_set_done(struct serial_set *set)
{
	free(set->slots);
	free(set->taken);
}

/* Claims serial k for a scope: true when it is in the keyring and no other scope claimed it. */
static bool serial_take(struct serial_set *set, key_serial_t k)
{
	size_t j = ((uint32_t) k * 0x9e3779b1u) & set->mask;

	if (k <= 0)
		return false;
	for (; set->slots[j] != 0; j = (j + 1) & set->mask)
		if (set->slots[j] == k) {
			if (set->taken[j])
				return false;
			set->taken[j] = true;
			return true;
		}
	return false;
}

/*
 * Claims the keys the scopes hold already (a second reconciliation, after the start-up fetches)
 * and adopts the serials the state files recorded that are in the keyring, without describing
 * them. Returns how many were adopted.
 */
static size_t adopt_recorded(struct scopes *t, struct serial_set *set)
{
	bool debug = log_get_max_level() >= LOG_DEBUG;
	size_t adopted = 0;

	for (size_t i = 0; i < t->map.cap; i++) {
		struct scope *s = t->map.slots[i];

		if (!s)
			continue;
		if (s->serial > 0) {
			(void) serial_take(set, s->serial);
			continue;
		}
		if (!serial_take(set, s->recorded))
			continue;
		s->serial = s->recorded;
		adopted++;
		if (debug)
			log_debug("Kept key %s (serial %d, %u holders), as recorded.", s->desc,
				  (int) s->serial, scope_holders(s));
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

/* The state files must name each held scope's serial as it is now: a line for each that moved
 * (adopted after a describe, reinstalled, vanished), none when nothing did. */
static void note_moved(struct scopes *t)
{
	for (size_t i = 0; i < t->map.cap; i++) {
		struct scope *s = t->map.slots[i];

		if (!s || s->recorded == s->serial)
			continue;
		s->recorded = s->serial;
		if (s->manual > 0)
			scope_note(t, s);
	}
}

int scopes_reconcile(struct scopes *t)
{
	_cleanup_free_ key_serial_t *ids = NULL;
	_cleanup_(serial_set_done) struct serial_set set = {};
	struct scope **v;
	size_t adopted;
	int n;

	if (drop_unheld(t) < 0)
		return log_oom();
	n = keyring_list(t->keyring, &ids);
	if (n < 0)
		return log_error_errno(n, "Failed to list the keyscope keyring: %m");
	if (serial_set_new(&set, ids, (size_t) n) < 0)
		return log_oom();
	adopted = adopt_recorded(t, &set);
	if (adopted > 0)
		log_info("Kept %zu keys as recorded in %s.", adopted, t->state_path);
	for (int i = 0; i < n; i++)
		if (serial_take(&set, ids[i]))	/* no scope holds it: describe it */
			adopt_kernel_key(t, ids[i]);
	/* Installing changes no scope's place in the table: walk the slots directly. */
	v = (struct scope **) t->map.slots;
	for (size_t i = 0; i < t->map.cap; i++)
		if (v[i])
			reinstall_one(t, v[i]);
	note_moved(t);
	return scopes_save(t);
}
