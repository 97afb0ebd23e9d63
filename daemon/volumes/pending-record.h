/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The record of one pending volume, <state-dir>/pending/<name>: what keyscoped needs to go on
 * trying its attach after a restart or a crash. A "key = value" file (lib/kvfile.h) of the
 * attach request's parameters (the same names as keyscope.VolumeAttach's: "name", "device",
 * "key-id", the options) and the record's own "version", "boot-id", "since" and "reason". No
 * key material: an attach request holds none ("passphrase" is only the word "hex").
 * Untrusted on reading (the state folder may be damaged): bounded, every line checked, all or
 * nothing, an error names the line.
 */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define PENDING_RECORD_VERSION 1
#define PENDING_RECORD_MAX (8u * 1024)
#define PENDING_BOOT_ID_MAX 36	/* the kernel's boot_id: a UUID with dashes */
#define PENDING_REASON_MAX 511

struct pending_record {
	char boot_id[PENDING_BOOT_ID_MAX + 1];	/* the boot it belongs to ("" if unknown) */
	uint64_t since;				/* seconds since the epoch */
	char reason[PENDING_REASON_MAX + 1];	/* why it is pending, for status */
	json_object *params;			/* the attach request without "pending" */
};

/*
 * The text of rec, in *ret (malloc'd). Returns 0; -EINVAL when params holds a parameter the
 * record cannot hold (unknown, of the wrong type, or a string with a control character or
 * surrounding blanks, which the format would not give back as they were), or lacks "name"
 * or "device"; -ENOMEM.
 */
int pending_record_format(const struct pending_record *rec, char **ret);

/*
 * Parses len bytes of text (text[len] == 0; cut in place) into *ret (its params a new
 * object, freed with pending_record_done()). Returns 0; -EFBIG, -EBADMSG or -ENOMEM with a
 * message in err (naming the line and the key at fault) and *ret_line the line (0: the file
 * as a whole); *ret is left untouched then.
 */
int pending_record_parse(char *text, size_t len, struct pending_record *ret, unsigned *ret_line,
			 char *err, size_t errlen);

/* The name and device of a parsed record's request. */
const char *pending_record_name(const struct pending_record *rec);
const char *pending_record_device(const struct pending_record *rec);

/* Frees rec's params. */
void pending_record_done(struct pending_record *rec);
