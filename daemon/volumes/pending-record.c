/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pending volume records (pending-record.h). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmcrypt.h"
#include "keyid.h"
#include "kvfile.h"
#include "macro.h"
#include "pending-record.h"
#include "proto.h"
#include "util.h"

enum ptype { P_STR, P_BOOL, P_UINT };

/* The attach parameters a record holds, as keyscope.VolumeAttach takes them (attach-params.c). */
static const struct param {
	const char *key;
	enum ptype type;
	uint64_t max;		/* the longest string, the largest number */
} params[] = {
	{ "name", P_STR, DMCRYPT_NAME_MAX },
	{ "device", P_STR, PATH_MAX - 1 },
	{ "key-id", P_STR, KEYID_MAX },
	{ "cipher", P_STR, 63 },
	{ "passphrase", P_STR, 16 },
	{ "plain", P_BOOL, 0 },
	{ "read-only", P_BOOL, 0 },
	{ "discard", P_BOOL, 0 },
	{ "same-cpu-crypt", P_BOOL, 0 },
	{ "submit-from-crypt-cpus", P_BOOL, 0 },
	{ "no-read-workqueue", P_BOOL, 0 },
	{ "no-write-workqueue", P_BOOL, 0 },
	{ "key-size", P_UINT, 512 },
	{ "offset", P_UINT, UINT64_MAX / 2 },
	{ "sector-size", P_UINT, 4096 },
};

static const struct param *param_find(const char *key)
{
	for (size_t i = 0; i < ELEMENTSOF(params); i++)
		if (streq(params[i].key, key))
			return &params[i];
	return NULL;
}

/* Whether the format gives s back as it is: no control byte, no blank at either end. */
static bool str_storable(const char *s)
{
	size_t n = strlen(s);

	for (const char *p = s; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			return false;
	return n == 0 || (!strchr(" \t", s[0]) && !strchr(" \t", s[n - 1]));
}

static int put_param(FILE *f, const char *key, json_object *v)
{
	const struct param *p = param_find(key);
	const char *s;

	if (!p)
		return -EINVAL;
	switch (p->type) {
	case P_STR:
		if (!json_object_is_type(v, json_type_string))
			return -EINVAL;
		s = json_object_get_string(v);
		if (strlen(s) > p->max || !str_storable(s))
			return -EINVAL;
		fprintf(f, "%s = %s\n", key, s);
		return 0;
	case P_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return -EINVAL;
		fprintf(f, "%s = %s\n", key, json_object_get_boolean(v) ? "yes" : "no");
		return 0;
	default:
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    (uint64_t) json_object_get_int64(v) > p->max)
			return -EINVAL;
		fprintf(f, "%s = %" PRIu64 "\n", key, (uint64_t) json_object_get_int64(v));
		return 0;
	}
}

/* The reason as one storable line: control bytes become spaces, cut to its maximum. */
static void put_reason(FILE *f, const char *reason)
{
	char buf[PENDING_REASON_MAX + 1];
	char *s;

	snprintf(buf, sizeof(buf), "%s", reason);
	for (char *p = buf; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			*p = ' ';
	s = kvfile_strip(buf);
	if (*s)
		fprintf(f, "reason = %s\n", s);
}

int pending_record_format(const struct pending_record *rec, char **ret)
{
	_cleanup_free_ char *text = NULL;
	size_t size = 0;
	FILE *f;
	int r = 0;

	if (!rec->params || !json_object_is_type(rec->params, json_type_object) ||
	    !json_object_object_get_ex(rec->params, "name", NULL) ||
	    !json_object_object_get_ex(rec->params, "device", NULL) || !str_storable(rec->boot_id))
		return -EINVAL;
	f = open_memstream(&text, &size);
	if (!f)
		return -ENOMEM;
	fprintf(f, "# A volume keyscoped keeps pending (keyscoped writes it; keyscopectl detach "
		   "NAME drops it)\nversion = %d\n", PENDING_RECORD_VERSION);
	if (rec->boot_id[0])
		fprintf(f, "boot-id = %s\n", rec->boot_id);
	fprintf(f, "since = %" PRIu64 "\n", rec->since);
	put_reason(f, rec->reason);
	json_object_object_foreach(rec->params, key, v)
		if (r >= 0)
			r = put_param(f, key, v);
	if (fclose(f) != 0 && r >= 0)
		r = -ENOMEM;
	if (r < 0)
		return r;
	if (size > PENDING_RECORD_MAX)
		return -EINVAL;
	*ret = TAKE_PTR(text);
	return 0;
}

struct parse_state {
	struct pending_record rec;
	bool version, boot_id, since, reason;
	char *err;
	size_t errlen;
};

_printf_(3, 4)
static int fail(struct parse_state *st, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, st->errlen, fmt, ap);
	va_end(ap);
	return r;
}

static int parse_param(struct parse_state *st, const struct param *p, const char *key,
		       const char *value)
{
	json_object *o;
	uint64_t u;
	bool b;

	if (json_object_object_get_ex(st->rec.params, key, NULL))
		return fail(st, -EBADMSG, "'%s' is given twice", key);
	if (p->type == P_BOOL) {
		if (parse_bool(value, &b) < 0)
			return fail(st, -EBADMSG, "'%s' wants yes or no, not '%.32s'", key, value);
		o = json_object_new_boolean(b);
	} else if (p->type == P_UINT) {
		if (parse_uint64(value, 0, p->max, &u) < 0)
			return fail(st, -EBADMSG, "'%s' wants a number up to %" PRIu64 ", not "
				    "'%.32s'", key, p->max, value);
		o = json_object_new_int64((int64_t) u);
	} else {
		if (strlen(value) > p->max)
			return fail(st, -EBADMSG, "'%s' is longer than %" PRIu64 " bytes", key,
				    p->max);
		if ((streq(key, "name") && !dmcrypt_name_is_valid(value)) ||
		    (streq(key, "device") && value[0] != '/') ||
		    (streq(key, "key-id") && !keyid_is_valid(value)) ||
		    (streq(key, "passphrase") && !streq(value, "hex")))
			return fail(st, -EBADMSG, "'%s' is not a valid %s", value, key);
		o = json_object_new_string(value);
	}
	if (!o || json_object_object_add(st->rec.params, key, o) < 0) {
		json_object_put(o);
		return fail(st, -ENOMEM, "out of memory");
	}
	return 0;
}

static int parse_own(struct parse_state *st, const char *key, const char *value)
{
	uint64_t u;

	if (streq(key, "version")) {
		if (st->version || parse_uint64(value, PENDING_RECORD_VERSION,
						PENDING_RECORD_VERSION, &u) < 0)
			return fail(st, -EBADMSG, "version '%.32s' is not %d (given twice, or a "
				    "newer keyscoped wrote it)", value, PENDING_RECORD_VERSION);
		st->version = true;
	} else if (streq(key, "boot-id")) {
		if (st->boot_id || strlen(value) > PENDING_BOOT_ID_MAX ||
		    strspn(value, "0123456789abcdef-") != strlen(value))
			return fail(st, -EBADMSG, "boot-id '%.40s' is not a boot id", value);
		strcpy(st->rec.boot_id, value);
		st->boot_id = true;
	} else if (streq(key, "since")) {
		if (st->since || parse_uint64(value, 0, UINT64_MAX, &st->rec.since) < 0)
			return fail(st, -EBADMSG, "since '%.32s' is not a time", value);
		st->since = true;
	} else {
		if (st->reason || strlen(value) > PENDING_REASON_MAX)
			return fail(st, -EBADMSG, "reason is given twice or longer than %d bytes",
				    PENDING_REASON_MAX);
		strcpy(st->rec.reason, value);
		st->reason = true;
	}
	return 0;
}

static int on_pair(void *userdata, unsigned line, const char *key, char *value)
{
	struct parse_state *st = userdata;
	const struct param *p = param_find(key);

	if (p)
		return parse_param(st, p, key, value);
	if (streq(key, "version") || streq(key, "boot-id") || streq(key, "since") ||
	    streq(key, "reason"))
		return parse_own(st, key, value);
	return fail(st, -EBADMSG, "unknown key '%.64s'", key);
}

int pending_record_parse(char *text, size_t len, struct pending_record *ret, unsigned *ret_line,
			 char *err, size_t errlen)
{
	struct parse_state st = { .err = err, .errlen = errlen };
	unsigned line = 0;
	int r;

	st.rec.params = json_object_new_object();
	if (!st.rec.params)
		return fail(&st, -ENOMEM, "out of memory");
	if (errlen)
		err[0] = 0;
	r = kvfile_parse(text, len, PENDING_RECORD_MAX, 0, on_pair, &st, &line);
	if (r == -EFBIG)
		fail(&st, r, "larger than %u bytes", PENDING_RECORD_MAX);
	else if (r == -EBADMSG && errlen && !err[0])
		fail(&st, r, line ? "not 'key = value'" : "a NUL byte in the text");
	if (r >= 0 && !st.version) {
		r = fail(&st, -EBADMSG, "no version: not a keyscope pending volume record");
		line = 0;
	}
	if (r >= 0 && (!json_object_object_get_ex(st.rec.params, "name", NULL) ||
		       !json_object_object_get_ex(st.rec.params, "device", NULL))) {
		r = fail(&st, -EBADMSG, "no name or no device");
		line = 0;
	}
	if (ret_line)
		*ret_line = r < 0 ? line : 0;
	if (r < 0) {
		pending_record_done(&st.rec);
		return r;
	}
	*ret = st.rec;
	return 0;
}

static const char *param_string(const struct pending_record *rec, const char *key)
{
	json_object *v;

	return rec->params && json_object_object_get_ex(rec->params, key, &v) &&
	       json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

const char *pending_record_name(const struct pending_record *rec)
{
	return param_string(rec, "name");
}

const char *pending_record_device(const struct pending_record *rec)
{
	return param_string(rec, "device");
}

void pending_record_done(struct pending_record *rec)
{
	if (rec)
		rec->params = (json_object_put(rec->params), NULL);
}
