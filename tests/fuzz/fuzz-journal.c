/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: the holder-count journal (<state-dir>/scopes.journal) as keyscoped reads
 * it at start (daemon/keys/scope-state.c, scopes_load_records() without a scopes.json). The
 * input is the journal after its generation line, which the harness writes ("0", the
 * generation of a state folder without a snapshot). The scopes loaded must be exactly those a
 * reference reading of the same lines gives, written here from the format alone:
 *
 *   <count> SP <scope-id> [SP <serial>] LF
 *
 * count 1..10 decimal digits (0 drops the scope, at most UINT32_MAX), serial 1..10 digits (at
 * most INT32_MAX; none: 0), scope-id valid by scope_id_is_valid(); a later line for an id
 * replaces the earlier one; a malformed line is skipped; a last line without its LF (torn by a
 * power loss) is skipped; the file is text: a NUL byte ends it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyid.h"
#include "keyring.h"
#include "log.h"
#include "scope.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MODEL_MAX 4096

struct rec {
	char id[KEY_DESC_MAX + 1];
	uint64_t count, serial;
};

static struct rec model[MODEL_MAX];
static size_t n_model;
static char dir[] = "/tmp/keyscope-fuzz-journal.XXXXXX";
static char path[sizeof(dir) + 32];
static key_serial_t parent;	/* a keyring of this process, for the "keyscope" keyring */

/* 1..10 decimal digits of [s, end), at most max. */
static int digits(const char *s, const char *end, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (end == s || end - s > 10)
		return -1;
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t) (*p - '0');
	}
	if (v > max)
		return -1;
	*ret = v;
	return 0;
}

static void model_set(const char *id, uint64_t count, uint64_t serial)
{
	size_t i;

	for (i = 0; i < n_model && strcmp(model[i].id, id) != 0; i++)
		;
	if (count == 0) {
		if (i < n_model)
			model[i] = model[--n_model];
		return;
	}
	if (i == n_model) {
		if (n_model == MODEL_MAX)
			abort();	/* inputs are short enough that this cannot happen */
		snprintf(model[n_model++].id, sizeof(model[0].id), "%s", id);
	}
	model[i].count = count;
	model[i].serial = serial;
}

/* One line [s, end) without its LF. */
static void model_line(const char *s, const char *end)
{
	const char *sp1 = memchr(s, ' ', (size_t) (end - s)), *sp2, *id_end;
	uint64_t count, serial = 0;
	char id[KEY_DESC_MAX + 1];

	if (!sp1 || digits(s, sp1, UINT32_MAX, &count) < 0)
		return;
	sp2 = memchr(sp1 + 1, ' ', (size_t) (end - sp1 - 1));
	id_end = sp2 ? sp2 : end;
	if (sp2 && digits(sp2 + 1, end, INT32_MAX, &serial) < 0)
		return;
	if ((size_t) (id_end - sp1 - 1) >= sizeof(id))
		return;
	memcpy(id, sp1 + 1, (size_t) (id_end - sp1 - 1));
	id[id_end - sp1 - 1] = '\0';
	if (!scope_id_is_valid(id))
		return;
	model_set(id, count, serial);
}

static void model_read(const uint8_t *data, size_t size)
{
	const char *s = (const char *) data, *end = memchr(s, '\0', size), *nl;

	end = end ? end : s + size;
	n_model = 0;
	while ((nl = memchr(s, '\n', (size_t) (end - s)))) {
		model_line(s, nl);
		s = nl + 1;
	}
}

static size_t seen;

static void check_scope(struct scope *s, void *userdata)
{
	size_t i;

	seen++;
	for (i = 0; i < n_model && strcmp(model[i].id, s->id) != 0; i++)
		;
	/* Loaded: the recorded serial beside it, serial 0 until the reconcile checks it. */
	if (i == n_model || s->manual != model[i].count ||
	    (uint64_t) s->recorded != model[i].serial || s->attached || s->serial)
		abort();	/* a scope the lines do not give, or with other counts */
}

static int write_journal(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r;

	if (fd < 0)
		return -errno;
	r = loop_write(fd, "0\n", 2);
	if (r >= 0)
		r = loop_write(fd, data, size);
	close(fd);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scopes *t = NULL;

	if (size > 65536)
		return 0;
	if (!path[0]) {
		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof(path), "%s/scopes.journal", dir);
		log_set_max_level(LOG_CRIT);	/* a warning per malformed line otherwise */
		parent = add_key("keyring", "keyscope-fuzz", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
		if (parent < 0)
			abort();
	}
	if (write_journal(data, size) < 0)
		abort();
	if (scopes_new(NULL, parent, dir, 0, NULL, NULL, &t) < 0)
		abort();
	if (scopes_load_records(t) < 0)
		abort();	/* only an allocation failure may fail the load */
	model_read(data, size);
	seen = 0;
	scopes_foreach(t, check_scope, NULL);
	if (seen != n_model || scopes_count(t) != n_model)
		abort();
	scopes_free(t);
	return 0;
}
