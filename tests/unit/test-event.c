/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Audit events (lib/event.c): every kind has a name and a MESSAGE_ID of 32 lower-case hex
 * digits, none shared; each MESSAGE_ID has an entry in docs/keyscope.catalog (journalctl -x);
 * off the journal an event is a text line on stderr, filtered by the log level.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "macro.h"

static void test_ids(void **state)
{
	for (int i = 0; i < _EVENT_MAX; i++) {
		const char *id = event_message_id(i), *name = event_name(i);

		assert_non_null(id);
		assert_non_null(name);
		assert_int_equal(strlen(id), 32);
		for (const char *p = id; *p; p++)
			if (!isxdigit((unsigned char) *p) || isupper((unsigned char) *p))
				fail_msg("MESSAGE_ID of %s is not lower-case hex: %s", name, id);
		for (int j = 0; j < i; j++) {
			if (streq(id, event_message_id(j)))
				fail_msg("%s and %s share a MESSAGE_ID", name, event_name(j));
			if (streq(name, event_name(j)))
				fail_msg("two events are named %s", name);
		}
	}
	assert_null(event_name(_EVENT_MAX));
	assert_null(event_message_id(-1));
}

static void test_catalog(void **state)
{
	const char *top = getenv("KEYSCOPE_TOP");
	char path[4096], line[512], *catalog = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/docs/keyscope.catalog", top ? top : ".");
	f = fopen(path, "re");
	if (!f)
		fail_msg("cannot open %s (run from the top of the checkout or set KEYSCOPE_TOP)", path);
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		catalog = realloc(catalog, len + n + 1);
		assert_non_null(catalog);
		memcpy(catalog + len, line, n + 1);
		len += n;
	}
	fclose(f);
	for (int i = 0; i < _EVENT_MAX; i++) {
		char header[64];

		snprintf(header, sizeof(header), "\n-- %s\nSubject: ", event_message_id(i));
		if (!strstr(catalog, header))
			fail_msg("%s (%s) has no entry in docs/keyscope.catalog", event_name(i),
				 event_message_id(i));
	}
	free(catalog);
}

/* Runs log_event() with stderr on a pipe and JOURNAL_STREAM unset; returns what it wrote. */
static char *capture(enum event_kind kind, int level, const char *msg)
{
	static char buf[1024];
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	unsetenv("JOURNAL_STREAM");
	log_event(kind, level, (&(struct event_fields) { .key_id = "k1", .volume = "data" }), "%s",
		  msg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static void test_text_fallback(void **state)
{
	log_set_program("test-event");
	log_set_max_level(LOG_INFO);
	assert_false(log_stderr_is_journal());
	assert_string_equal(capture(EVENT_VOLUME_ATTACHED, LOG_INFO, "Attached data."),
			    "test-event: Attached data.\n");
	/* Below the log level: nothing. */
	assert_string_equal(capture(EVENT_VOLUME_ATTACHED, LOG_DEBUG, "quiet"), "");
	/* A JOURNAL_STREAM naming another file is not the journal. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	assert_false(log_stderr_is_journal());
	unsetenv("JOURNAL_STREAM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_catalog),
		cmocka_unit_test(test_text_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
