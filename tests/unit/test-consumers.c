/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Barbican consumers as daemon/sources/consumers.c keeps them (source_consumer()): what is asked
 * of Barbican and when, on a real sd-event loop with Barbican's client replaced by a fake that
 * records each request and answers when the test says. Shown: a registration is asked once and
 * forgotten on success; a failure is retried later and kept in consumers.json; an opposite wish
 * while a retry waits is asked at once; one while a request is out is asked after it; one that
 * cancels a change never sent sends nothing; a vanished mapping's removal waits out the grace; a
 * restart carries pending changes on (and counts them as possibly sent).
 *
 * The fake defines the symbols of daemon/sources/barbican/ that daemon/sources/ uses, so the
 * linker takes them instead of the barbican objects from libkeyscoped.a.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barbican.h"
#include "config.h"
#include "source.h"
#include "store.h"
#include "util.h"

/* ---- the fake Barbican client ----------------------------------------------------------- */

struct barbican {
	int unused;
};

struct barbican_op {
	barbican_done_cb cb;
	void *userdata;
	bool open;
};

#define MAX_OPS 64

static struct barbican fake_bb;
static struct barbican_op ops[MAX_OPS];
static struct {
	char id[KEYID_MAX + 1];
	char resource[256];
	bool add;
} asked[MAX_OPS];
static size_t n_asked;

int barbican_new(sd_event *event, const struct barbican_options *o, struct barbican **ret)
{
	*ret = &fake_bb;
	return 0;
}

struct barbican *barbican_free(struct barbican *b)
{
	return NULL;
}

const char *barbican_user(const struct barbican *b)
{
	return "node";
}

const char *barbican_url(const struct barbican *b)
{
	return "https://barbican.invalid";
}

void barbican_get_stats(const struct barbican *b, struct barbican_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
}

void barbican_set_limits(struct barbican *b, const struct barbican_options *o)
{
}

void barbican_error_set(struct barbican_error *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

int barbican_fetch(struct barbican *b, const char *id, const struct barbican_meta *hint,
		   barbican_fetch_cb cb, void *userdata, struct barbican_op **ret)
{
	return -EOPNOTSUPP;
}

int barbican_list_delegated(struct barbican *b, barbican_list_cb cb, void *userdata,
			    struct barbican_op **ret)
{
	return -EOPNOTSUPP;
}

int barbican_store(struct barbican *b, const struct barbican_meta *like,
		   const struct secret_buf *key, const char *name, barbican_store_cb cb,
		   void *userdata, struct barbican_op **ret)
{
	return -EOPNOTSUPP;
}

int barbican_consumer(struct barbican *b, const char *id, bool add, const char *service,
		      const char *resource_id, barbican_done_cb cb, void *userdata,
		      struct barbican_op **ret)
{
	assert_true(n_asked < MAX_OPS);
	assert_string_equal(service, "keyscope");
	snprintf(asked[n_asked].id, sizeof(asked[n_asked].id), "%s", id);
	snprintf(asked[n_asked].resource, sizeof(asked[n_asked].resource), "%s", resource_id);
	asked[n_asked].add = add;
	ops[n_asked] = (struct barbican_op) { .cb = cb, .userdata = userdata, .open = true };
	*ret = &ops[n_asked];
	n_asked++;
	return 0;
}

void barbican_op_cancel(struct barbican_op *op)
{
	op->open = false;
}

/* answer I CLASS: Barbican's answer to request I (0: success). */
static void answer(size_t i, int error, enum barbican_class cls)
{
	struct barbican_error e = { .error = error, .cls = cls };

	assert_true(i < n_asked);
	assert_true(ops[i].open);
	ops[i].open = false;
	snprintf(e.message, sizeof(e.message), "fake answer %d", error);
	ops[i].cb(ops[i].userdata, &e);
}

/* ---- the daemon's side ------------------------------------------------------------------ */

static const char id_a[] = "7a7e1d0c-2f6b-4d6e-8f0a-3c5b9e2d1a01";
static const char res_a[] = "0b4e9d8c-1a2b-4c3d-8e5f-6a7b8c9d0e1f";

struct world {
	char dir[64];
	struct config cfg;
	sd_event *event;
	struct store *store;
	struct source *src;
};

static void start(struct world *w)
{
	assert_int_equal(store_open(w->dir, &w->store), 0);
	assert_int_equal(source_new(w->event, &w->cfg, w->store, &w->src), 0);
}

static void stop(struct world *w)
{
	w->src = source_free(w->src);
	w->store = store_free(w->store);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	strcpy(w->dir, "/tmp/keyscope-test-consumers.XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	config_init(&w->cfg);
	assert_int_equal(config_set(&w->cfg, "state-dir", w->dir), 0);
	assert_int_equal(config_set(&w->cfg, "barbican-url", "https://barbican.invalid"), 0);
	assert_int_equal(config_set(&w->cfg, "barbican-auth", "none"), 0);
	assert_int_equal(config_set(&w->cfg, "barbican-project-id", "p"), 0);
	assert_int_equal(config_set(&w->cfg, "barbican-user-id", "node"), 0);
	assert_int_equal(config_set(&w->cfg, "barbican-consumer-grace", "1"), 0);
	assert_int_equal(sd_event_new(&w->event), 0);
	n_asked = 0;
	memset(ops, 0, sizeof(ops));
	start(w);
	*state = w;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct world *w = *state;

	stop(w);
	sd_event_unref(w->event);
	config_done(&w->cfg);
	nftw(w->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(w);
	return 0;
}

/* Runs the loop for about ms milliseconds. */
/*
 * Runs the loop for ms, then dispatches whatever is due: a process descheduled for longer than
 * the window (a loaded machine) still sees each step the window should have let happen. A
 * step at a time, at most 1,000.
 */
static void run_for(struct world *w, unsigned ms)
{
	uint64_t end = now_usec() + (uint64_t) ms * 1000;
	int r;

	while (now_usec() < end)
		assert_true(sd_event_run(w->event, 10 * 1000) >= 0);
	for (unsigned i = 0; i < 1000 && (r = sd_event_run(w->event, 0)) != 0; i++)
		assert_true(r > 0);
}

/* Pending changes as consumers.json has them: "+id resource" or "-id resource" a line. */
static void saved(struct world *w, char *out, size_t size)
{
	_cleanup_free_ char *path = path_join(w->dir, "consumers.json"), *text = NULL;
	json_object *root, *arr;

	out[0] = 0;
	if (read_full_file(path, 1 << 20, &text, NULL) == -ENOENT)
		return;
	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "consumers", &arr));
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		size_t l = strlen(out);
		snprintf(out + l, size - l, "%c%s %s\n",
			 json_object_get_boolean(json_object_object_get(o, "add")) ? '+' : '-',
			 json_object_get_string(json_object_object_get(o, "key-id")),
			 json_object_get_string(json_object_object_get(o, "resource")));
	}
	json_object_put(root);
}

static void assert_asked(size_t i, bool add)
{
	assert_true(i < n_asked);
	assert_string_equal(asked[i].id, id_a);
	assert_string_equal(asked[i].resource, res_a);
	assert_int_equal(asked[i].add, add);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_register_once(void **state)
{
	struct world *w = *state;
	char s[512];

	source_consumer(w->src, id_a, res_a, true, false);
	assert_int_equal(n_asked, 0);	/* never from inside the caller: from the loop */
	run_for(w, 50);
	assert_int_equal(n_asked, 1);
	assert_asked(0, true);
	saved(w, s, sizeof(s));
	assert_string_equal(s, "+7a7e1d0c-2f6b-4d6e-8f0a-3c5b9e2d1a01 0b4e9d8c-1a2b-4c3d-8e5f-6a7b8c9d0e1f\n");
	source_consumer(w->src, id_a, res_a, true, false);	/* already on its way */
	answer(0, 0, BARBICAN_OK);
	run_for(w, 50);
	assert_int_equal(n_asked, 1);
	saved(w, s, sizeof(s));
	assert_string_equal(s, "");
}

static void test_retry_then_flip(void **state)
{
	struct world *w = *state;
	char s[512];

	source_consumer(w->src, id_a, res_a, true, false);
	run_for(w, 50);
	answer(0, -ECONNREFUSED, BARBICAN_UNREACHABLE);
	run_for(w, 200);
	assert_int_equal(n_asked, 1);	/* the retry waits (15 s at first) */
	saved(w, s, sizeof(s));
	assert_true(s[0] == '+');
	/* Detached meanwhile: the removal is asked at once, not after the back-off. */
	source_consumer(w->src, id_a, res_a, false, false);
	run_for(w, 50);
	assert_int_equal(n_asked, 2);
	assert_asked(1, false);
	answer(1, 0, BARBICAN_OK);
	run_for(w, 50);
	saved(w, s, sizeof(s));
	assert_string_equal(s, "");
}

static void test_flip_in_flight(void **state)
{
	struct world *w = *state;
	char s[512];

	source_consumer(w->src, id_a, res_a, true, false);
	run_for(w, 50);
	source_consumer(w->src, id_a, res_a, false, false);	/* while the POST is out */
	run_for(w, 50);
	assert_int_equal(n_asked, 1);
	saved(w, s, sizeof(s));
	assert_true(s[0] == '-');	/* what is kept is the newest wish */
	answer(0, 0, BARBICAN_OK);
	run_for(w, 50);
	assert_int_equal(n_asked, 2);
	assert_asked(1, false);
	answer(1, -ENOENT, BARBICAN_NOT_FOUND);	/* already gone counts as removed */
	run_for(w, 50);
	saved(w, s, sizeof(s));
	assert_string_equal(s, "");
	assert_int_equal(n_asked, 2);
}

static void test_cancel_unsent(void **state)
{
	struct world *w = *state;
	char s[512];

	/* A mapping vanished: its removal waits out the grace (1 s here)... */
	source_consumer(w->src, id_a, res_a, false, true);
	run_for(w, 300);
	assert_int_equal(n_asked, 0);
	saved(w, s, sizeof(s));
	assert_true(s[0] == '-');
	/* ...and the volume is attached again before it: nothing is ever asked. */
	source_consumer(w->src, id_a, res_a, true, false);
	run_for(w, 1500);
	assert_int_equal(n_asked, 0);
	saved(w, s, sizeof(s));
	assert_string_equal(s, "");
}

static void test_grace_expires(void **state)
{
	struct world *w = *state;

	source_consumer(w->src, id_a, res_a, false, true);
	run_for(w, 500);
	assert_int_equal(n_asked, 0);
	run_for(w, 1200);
	assert_int_equal(n_asked, 1);
	assert_asked(0, false);
	answer(0, 0, BARBICAN_OK);
}

static void test_denied_not_retried(void **state)
{
	struct world *w = *state;
	char s[512];

	source_consumer(w->src, id_a, res_a, true, false);
	run_for(w, 50);
	answer(0, -EACCES, BARBICAN_DENIED);
	run_for(w, 50);
	saved(w, s, sizeof(s));
	assert_string_equal(s, "");
}

static void test_restart_carries_on(void **state)
{
	struct world *w = *state;
	char s[512];

	source_consumer(w->src, id_a, res_a, false, false);
	run_for(w, 50);
	answer(0, -ETIMEDOUT, BARBICAN_UNREACHABLE);	/* maybe applied, maybe not */
	stop(w);
	saved(w, s, sizeof(s));
	assert_true(s[0] == '-');
	n_asked = 0;
	memset(ops, 0, sizeof(ops));
	start(w);
	/* Carried on: asked at start, not after the back-off. */
	run_for(w, 50);
	assert_int_equal(n_asked, 1);
	assert_asked(0, false);
	answer(0, -ECONNREFUSED, BARBICAN_UNREACHABLE);
	/* Restarted again; the volume is attached before the carried-over removal went out: the
	 * registration is asked (an earlier run may have removed it), not dropped. */
	stop(w);
	n_asked = 0;
	memset(ops, 0, sizeof(ops));
	start(w);
	source_consumer(w->src, id_a, res_a, true, false);
	run_for(w, 50);
	assert_int_equal(n_asked, 1);
	assert_asked(0, true);
	answer(0, 0, BARBICAN_OK);
	run_for(w, 50);
	saved(w, s, sizeof(s));
	assert_string_equal(s, "");
}

static void test_ignored(void **state)
{
	struct world *w = *state;
	char s[512], id[KEYID_MAX + 1];

	/* A key of the embedded store is not Barbican's: no consumer. */
	assert_int_equal(store_create(w->store, 256, "local", id), 0);
	source_consumer(w->src, id, res_a, true, false);
	source_consumer(w->src, "not a key-id", res_a, true, false);
	source_consumer(w->src, id_a, "", true, false);
	run_for(w, 50);
	assert_int_equal(n_asked, 0);
	saved(w, s, sizeof(s));
	assert_string_equal(s, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_then_flip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flip_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_unsent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grace_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_denied_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_carries_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ignored, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
