/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: scopes.json, the snapshot of the holder counts, as keyscoped reads it at
 * start (daemon/keys/scope-snapshot.c). The line reader takes only the layout the writer writes
 * and leaves every other file to the json-c reader, so for any input:
 *
 *   - the line reader either declines and leaves the table empty and the generation alone, or
 *     takes the file, and then the json-c reader takes it too and gives the same scopes (id,
 *     holders, serial) and the same generation;
 *   - the text the writer makes of what was read is taken by the line reader again, with the
 *     same scopes and the generation it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyring.h"
#include "log.h"
#include "scope-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static key_serial_t parent;	/* a keyring of this process, for the "keyscope" keyring */

static struct scopes *fresh(void)
{
	struct scopes *t = NULL;

	if (scopes_new(NULL, parent, "/nonexistent", 0, NULL, NULL, &t) < 0)
		abort();
	return t;
}

static char *copy(const void *data, size_t size)
{
	char *p = malloc(size + 1);

	if (!p)
		abort();
	memcpy(p, data, size);
	p[size] = '\0';
	return p;
}

/* Every scope of a is in b with the same counts, and both have as many. */
static void same(struct scopes *a, struct scopes *b)
{
	if (a->map.n != b->map.n || a->generation != b->generation)
		abort();
	for (size_t i = 0; i < a->map.cap; i++) {
		const struct scope *s = a->map.slots[i], *o;
		if (!s)
			continue;
		o = scope_find(b, s->id);
		if (!o || o->manual != s->manual || o->recorded != s->recorded || o->attached)
			abort();
	}
}

static void roundtrip(struct scopes *a)
{
	struct scopes *c = fresh();
	char *text;
	size_t len;

	/* The writer writes the serial of the kernel key; a load leaves it in recorded. */
	for (size_t i = 0; i < a->map.cap; i++)
		if (a->map.slots[i])
			((struct scope *) a->map.slots[i])->serial =
				((struct scope *) a->map.slots[i])->recorded;
	if (scope_snapshot_text(a, a->generation, &text, &len) < 0)
		abort();
	if (scope_snapshot_read_lines(c, text, len) != 1)
		abort();	/* the reader declined what the writer wrote */
	for (size_t i = 0; i < a->map.cap; i++)
		if (a->map.slots[i])
			((struct scope *) a->map.slots[i])->serial = 0;
	same(a, c);
	free(text);
	scopes_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scopes *a, *b;
	char *text;
	int r;

	if (size > 65536)
		return 0;
	if (parent == 0) {
		log_set_max_level(LOG_CRIT);	/* a warning per malformed entry otherwise */
		parent = add_key("keyring", "keyscope-fuzz", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
		if (parent < 0)
			abort();
	}
	a = fresh();
	a->generation = 77;
	text = copy(data, size);
	r = scope_snapshot_read_lines(a, text, size);
	if (memcmp(text, data, size) != 0)
		abort();	/* json-c reads the same text after a decline */
	free(text);
	if (r < 0)
		abort();	/* only an allocation failure may fail it */
	if (r == 0) {
		if (a->map.n != 0 || a->generation != 77)
			abort();	/* a decline leaves nothing behind */
		scopes_free(a);
		return 0;
	}
	b = fresh();
	b->generation = 77;
	text = copy(data, size);
	if (scope_snapshot_read_json(b, text, "fuzz") != 0)
		abort();	/* json-c refuses a file the line reader took */
	free(text);
	same(a, b);
	roundtrip(a);
	scopes_free(a);
	scopes_free(b);
	return 0;
}
