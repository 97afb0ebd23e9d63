/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: a pending volume record (daemon/volumes/pending-record.c), as keyscoped
 * reads <state-dir>/pending/<name> at start. Whatever the input, a record is refused with a
 * message or gives a request with a valid name and an absolute device; a record accepted
 * is written back, and what is written reads back as the same request.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmcrypt.h"
#include "pending-record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const struct pending_record *rec)
{
	struct pending_record again = {};
	char *text = NULL, err[256];
	unsigned line;

	if (pending_record_format(rec, &text) < 0)
		return;		/* e.g. a reason cut: not every readable record is writable */
	if (pending_record_parse(text, strlen(text), &again, &line, err, sizeof(err)) < 0 ||
	    !json_object_equal(rec->params, again.params) || again.since != rec->since ||
	    strcmp(again.boot_id, rec->boot_id))
		abort();
	pending_record_done(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pending_record rec = {};
	char *s, err[256];
	unsigned line;
	int r;

	if (size > 2 * PENDING_RECORD_MAX)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	r = pending_record_parse(s, size, &rec, &line, err, sizeof(err));
	if (r < 0 && (!err[0] || rec.params))
		abort();
	if (r >= 0) {
		if (!dmcrypt_name_is_valid(pending_record_name(&rec)) ||
		    pending_record_device(&rec)[0] != '/')
			abort();
		check_round_trip(&rec);
		pending_record_done(&rec);
	}
	free(s);
	return 0;
}
