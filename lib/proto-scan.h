/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A tree-less reader of the replies about scopes (keyscope.ScopeList, keyscope.Status): one
 * strict pass over the JSON text that hands each scope of parameters.scopes to a callback as it
 * goes, without building a json-c tree of 10,000 objects that would be read once. The reply
 * stays the protocol's JSON (docs/protocol.md); this reads it.
 *
 * The syntax checks are proto_parse_full()'s with PROTO_MAX_REPLY and PROTO_MAX_DEPTH: strict
 * JSON, valid UTF-8, no NUL byte, no "\u0000" and no lone surrogate, at most PROTO_MAX_DEPTH
 * values on any path, one object and only white space after it. Numbers follow RFC 8259's
 * grammar, which is stricter than json-c's ("1." and "-01" are refused here).
 *
 * The shape: "parameters" an object; where "scopes" is there, an array of objects each with
 * "key-id" a string and "serial" and "holders" integers in int64's range. Members the reader
 * does not use are checked for syntax and skipped, as the protocol asks of clients. A member it
 * uses that appears twice (json-c would keep the last) is refused.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proto_scope_row {
	const char *key_id;	/* decoded, not NUL-terminated; valid during the callback only */
	size_t key_id_len;
	int64_t serial, holders;
};

/* What proto_scan_scopes() found besides the rows. */
struct proto_scan {
	bool error;		/* the reply has "error": read it with proto_parse_full() */
	bool has_scopes;	/* parameters.scopes is there */
	size_t scopes;		/* its elements */
	size_t scopes_start, scopes_end;	/* [start, end): the text of its value */
	unsigned payload_size;	/* the reply's "payload-size", 0 without one */
};

/* Called for each scope, in the reply's order. A negative return stops the scan with it. */
typedef int (*proto_scope_fn)(const struct proto_scope_row *row, void *userdata);

/*
 * Reads one reply's JSON text (len bytes). Calls row for each scope as it is read, so a caller
 * that must not act on half a reply keeps the rows until this returns 0. An error reply's
 * scopes, if it has any, are handed over too: check ret->error.
 * Returns 0 and fills *ret; -EBADMSG when the text is not strict JSON (the reason, with the
 * byte offset, in err); -EPROTO when it is, but not of the shape above (the reason in err);
 * -ENOMEM; or row's negative return.
 */
int proto_scan_scopes(const char *text, size_t len, proto_scope_fn row, void *userdata,
		      struct proto_scan *ret, char *err, size_t errlen);
