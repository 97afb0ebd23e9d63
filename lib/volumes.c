/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The volumes file, crypttab(5) syntax: fields separated by blanks, '#' starts a comment line,
 * "-" or "none" for an empty KEY or OPTIONS, OPTIONS separated by commas. Every check of a
 * line happens before anything of it is kept: a line is taken whole or refused whole.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "macro.h"
#include "text.h"
#include "util.h"
#include "volumes.h"

#define FIELDS_MAX 4

struct field {
	const char *p;
	size_t len;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

_printf_(3, 4) static int line_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		(void) vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* The word quoted in a message: bounded, printable. */
static const char *quote(const char *p, size_t len, char *buf, size_t size)
{
	return text_escape(p, len, VOLUMES_WORD_MAX, buf, size);
}

static bool field_is(const struct field *f, const char *s)
{
	return f->len == strlen(s) && memcmp(f->p, s, f->len) == 0;
}

static bool field_is_empty(const struct field *f)
{
	return field_is(f, "-") || field_is(f, "none");
}

/* Copies a field into buf as a string; false when it does not fit. */
static bool field_copy(const struct field *f, char *buf, size_t size)
{
	if (f->len >= size)
		return false;
	memcpy(buf, f->p, f->len);
	buf[f->len] = '\0';
	return true;
}

/* [0-9A-Za-z-], what blkid prints for file system, LUKS and partition UUIDs. */
static bool uuid_chars_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || *s == '-'))
			return false;
	return true;
}

/* udev's /dev/disk/by-label names: bytes outside [0-9A-Za-z#+-.:=@_] become "\xHH". */
static int label_to_path(const char *label, char *buf, size_t size)
{
	size_t o = (size_t) snprintf(buf, size, "/dev/disk/by-label/");

	if (!*label || streq(label, ".") || streq(label, ".."))
		return -EINVAL;	/* no such link: it would be the folder or its parent */
	for (const unsigned char *p = (const unsigned char *) label; *p; p++) {
		bool keep = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') || strchr("#+-.:=@_", *p);

		if (*p < 0x21 || *p > 0x7e)
			return -EINVAL;
		if (o + (keep ? 1 : 4) >= size)
			return -ENAMETOOLONG;
		if (keep)
			buf[o++] = (char) *p;
		else
			o += (size_t) snprintf(buf + o, size - o, "\\x%02x", *p);
	}
	buf[o] = '\0';
	return 0;
}

/* An absolute path of printable characters with no "." or ".." component. */
static bool path_ok(const char *s)
{
	if (s[0] != '/')
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e)
			return false;
	for (const char *c = s; c; c = strchr(c + 1, '/')) {
		size_t n = strcspn(c + 1, "/");

		if ((n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
			return false;
	}
	return true;
}

static int parse_device(const struct field *f, struct volume *v, char *err, size_t errlen)
{
	static const struct {
		const char *prefix, *dir;
		enum volume_device_kind kind;
	} tags[] = {
		{ "UUID=", "/dev/disk/by-uuid/", VOLUME_DEVICE_UUID },
		{ "PARTUUID=", "/dev/disk/by-partuuid/", VOLUME_DEVICE_PARTUUID },
		{ "LABEL=", NULL, VOLUME_DEVICE_LABEL },
	};
	char w[VOLUMES_WORD_MAX * 4 + 4], s[VOLUMES_DEVICE_MAX];
	int n;

	if (!field_copy(f, s, sizeof(s)))
		return line_error(err, errlen, "device '%s' is too long (at most %d bytes)",
				  quote(f->p, f->len, w, sizeof(w)), VOLUMES_DEVICE_MAX - 1);
	for (size_t i = 0; i < ELEMENTSOF(tags); i++) {
		size_t pl = strlen(tags[i].prefix);

		if (strncmp(s, tags[i].prefix, pl) != 0)
			continue;
		snprintf(v->tag, sizeof(v->tag), "%s", s + pl);
		v->kind = tags[i].kind;
		if (v->kind == VOLUME_DEVICE_LABEL)
			n = label_to_path(v->tag, v->device, sizeof(v->device));
		else if (!uuid_chars_ok(v->tag))
			n = -EINVAL;
		else
			n = snprintf(v->device, sizeof(v->device), "%s%s", tags[i].dir, v->tag) <
				    (int) sizeof(v->device) ? 0 : -ENAMETOOLONG;
		if (n < 0)
			return line_error(err, errlen, "device '%s': %s", quote(f->p, f->len, w,
					  sizeof(w)), n == -ENAMETOOLONG ? "too long" :
					  "the value after '=' is empty or holds invalid characters");
		return 0;
	}
	if (!path_ok(s))
		return line_error(err, errlen, "device '%s' is not an absolute path, UUID=, "
				  "PARTUUID= or LABEL= (e.g. UUID=<the LUKS UUID blkid shows>)",
				  quote(f->p, f->len, w, sizeof(w)));
	v->kind = VOLUME_DEVICE_PATH;
	snprintf(v->device, sizeof(v->device), "%s", s);
	return 0;
}

static int parse_key(const struct field *f, struct volume *v, char *err, size_t errlen)
{
	char w[VOLUMES_WORD_MAX * 4 + 4];

	if (field_is_empty(f))
		return 0;
	if (f->len > KEYID_MAX || !field_copy(f, v->key_id, sizeof(v->key_id)) ||
	    !keyid_is_valid(v->key_id)) {
		v->key_id[0] = '\0';
		return line_error(err, errlen, "key '%s' is not a key-id ([A-Za-z0-9._-], at most "
				  "%d characters); write '-' to take the key-id from the volume's "
				  "keyscope token%s", quote(f->p, f->len, w, sizeof(w)), KEYID_MAX,
				  f->p[0] == '/' ? " (a key file is not a key-id)" : "");
	}
	return 0;
}

static const struct {
	const char *word;
	unsigned flag;
} flag_options[] = {
	{ "nofail", VOLUME_NOFAIL },
	{ "noauto", VOLUME_NOAUTO },
	{ "_netdev", VOLUME_NETDEV },
	{ "readonly", VOLUME_READONLY },
	{ "read-only", VOLUME_READONLY },
	{ "discard", VOLUME_DISCARD },
	{ "no-read-workqueue", VOLUME_NO_READ_WORKQUEUE },
	{ "no-write-workqueue", VOLUME_NO_WRITE_WORKQUEUE },
	{ "same-cpu-crypt", VOLUME_SAME_CPU_CRYPT },
	{ "submit-from-crypt-cpus", VOLUME_SUBMIT_FROM_CRYPT_CPUS },
	{ "plain", VOLUME_PLAIN },
	{ "luks", 0 },	/* crypttab's default type; keyscope finds LUKS2 from the header */
};

static const char *const value_options[] = {
	"x-systemd.device-timeout=", "cipher=", "size=", "offset=", "sector-size=", "passphrase=",
};

bool volumes_option_is_known(const char *word)
{
	for (size_t i = 0; i < ELEMENTSOF(flag_options); i++)
		if (streq(word, flag_options[i].word))
			return true;
	for (size_t i = 0; i < ELEMENTSOF(value_options); i++)
		if (strneq(word, value_options[i], strlen(value_options[i])))
			return true;
	return false;
}

/* A time span as systemd writes it: "90", "90s", "500ms", "2min", "1h"; at most a day. */
static int parse_timespan(const char *s, uint64_t *ret_usec)
{
	static const struct {
		const char *suffix;
		uint64_t usec;
	} units[] = {
		{ "", 1000000 }, { "s", 1000000 }, { "sec", 1000000 }, { "ms", 1000 },
		{ "us", 1 }, { "m", 60000000 }, { "min", 60000000 }, { "h", 3600000000ull },
	};
	size_t digits = strspn(s, "0123456789");
	char num[24];
	uint64_t n;

	if (digits == 0 || digits >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, digits);
	num[digits] = '\0';
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		if (!streq(s + digits, units[i].suffix))
			continue;
		if (parse_uint64(num, 0, 86400000000ull / units[i].usec, &n) < 0)
			return -ERANGE;
		*ret_usec = n * units[i].usec;
		return 0;
	}
	return -EINVAL;
}

static int parse_value_option(const char *o, struct volume *v, char *err, size_t errlen)
{
	const char *val = strchr(o, '=') + 1;
	uint64_t n;
	int r = 0;

	if (strneq(o, "x-systemd.device-timeout=", 25)) {
		r = parse_timespan(val, &v->device_timeout_usec);
		v->flags |= VOLUME_DEVICE_TIMEOUT;
	} else if (strneq(o, "cipher=", 7)) {
		/* dm-crypt's cipher spec: "aes-xts-plain64", "capi:xts(aes)-plain64" */
		r = *val && strlen(val) < sizeof(v->cipher) &&
		    strspn(val, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-:()_")
				== strlen(val) ? 0 : -EINVAL;
		if (r == 0)
			snprintf(v->cipher, sizeof(v->cipher), "%s", val);
	} else if (strneq(o, "size=", 5)) {
		r = parse_uint64(val, 0, 512, &n);
		if (r == 0 && n != 256 && n != 512)
			r = -EINVAL;
		v->key_bits = (unsigned) n;
	} else if (strneq(o, "offset=", 7)) {
		r = parse_uint64(val, 0, UINT64_MAX / 512, &v->offset);
	} else if (strneq(o, "sector-size=", 12)) {
		r = parse_uint64(val, 0, 4096, &n);
		if (r == 0 && n != 512 && n != 4096)
			r = -EINVAL;
		v->sector_size = (unsigned) n;
	} else if (strneq(o, "passphrase=", 11)) {
		r = streq(val, "hex") ? 0 : -EINVAL;
		v->flags |= VOLUME_PASSPHRASE_HEX;
	}
	if (r < 0)
		return line_error(err, errlen, "invalid value in option '%s'%s", o,
				  strneq(o, "size=", 5) ? " (the key size in bits: 256 or 512)" :
				  strneq(o, "sector-size=", 12) ? " (512 or 4096)" :
				  strneq(o, "passphrase=", 11) ? " (only passphrase=hex: the key's hex "
								 "is the LUKS passphrase)" :
				  strneq(o, "x-systemd", 9) ? " (a time span such as 90s or 2min, at "
							      "most a day)" : "");
	return 0;
}

static int parse_option(const char *o, struct volume *v, char *err, size_t errlen)
{
	char w[VOLUMES_WORD_MAX * 4 + 4];

	for (size_t i = 0; i < ELEMENTSOF(flag_options); i++)
		if (streq(o, flag_options[i].word)) {
			v->flags |= flag_options[i].flag;
			return 0;
		}
	for (size_t i = 0; i < ELEMENTSOF(value_options); i++)
		if (strneq(o, value_options[i], strlen(value_options[i])))
			return parse_value_option(o, v, err, errlen);
	return line_error(err, errlen, "unknown option '%s' (see keyscope-volumes(5) for the "
			  "options keyscope knows)", quote(o, strlen(o), w, sizeof(w)));
}

/* The combinations that make no sense, refused rather than half honoured. */
static int check_options(struct volume *v, char *err, size_t errlen)
{
	bool plain = v->flags & VOLUME_PLAIN;

	if (plain && !v->key_id[0])
		return line_error(err, errlen, "option 'plain' needs a key-id in the KEY field: a "
				  "plain volume has no token to name one");
	if ((v->flags & VOLUME_PASSPHRASE_HEX) && !v->key_id[0])
		return line_error(err, errlen, "option 'passphrase=hex' needs a key-id in the KEY "
				  "field: such a volume has no keyscope token");
	if (plain && (v->flags & VOLUME_PASSPHRASE_HEX))
		return line_error(err, errlen, "options 'plain' and 'passphrase=hex' exclude each "
				  "other: a plain volume has no keyslot");
	if (!plain && (v->cipher[0] || v->key_bits || v->offset || v->sector_size))
		return line_error(err, errlen, "options cipher=, size=, offset= and sector-size= "
				  "apply to plain volumes only (add 'plain'); a LUKS2 header "
				  "names its own");
	return 0;
}

static int parse_options(const struct field *f, struct volume *v, char *err, size_t errlen)
{
	char buf[VOLUMES_LINE_MAX + 1], *save = NULL;

	if (field_is_empty(f))
		return 0;
	if (!field_copy(f, buf, sizeof(buf)))
		return -EINVAL;
	for (char *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		int r = parse_option(o, v, err, errlen);

		if (r < 0)
			return r;
	}
	return check_options(v, err, errlen);
}

static size_t split_fields(const char *line, size_t len, struct field *f, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len) {
		size_t start;

		while (i < len && is_blank(line[i]))
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && !is_blank(line[i]))
			i++;
		if (n < max)
			f[n] = (struct field) { line + start, i - start };
		n++;
	}
	return n;
}

int volumes_parse_line(const char *line, size_t len, struct volume *ret, char *err,
		       size_t errlen)
{
	char w[VOLUMES_WORD_MAX * 4 + 4];
	struct field f[FIELDS_MAX];
	struct volume v = {};
	size_t n;
	int r;

	if (len > VOLUMES_LINE_MAX)
		return line_error(err, errlen, "line too long (at most %d bytes)",
				  VOLUMES_LINE_MAX);
	if (memchr(line, '\0', len))
		return line_error(err, errlen, "the line holds a NUL byte");
	n = split_fields(line, len, f, FIELDS_MAX);
	if (n == 0 || f[0].p[0] == '#')
		return 0;
	if (n < 2)
		return line_error(err, errlen, "'%s': expected NAME DEVICE [KEY [OPTIONS]]",
				  quote(f[0].p, f[0].len, w, sizeof(w)));
	if (n > FIELDS_MAX)
		return line_error(err, errlen, "more than 4 fields (NAME DEVICE KEY OPTIONS; "
				  "options are separated by commas, not blanks)");
	if (f[0].len > DMCRYPT_NAME_MAX || !field_copy(&f[0], v.name, sizeof(v.name)) ||
	    !dmcrypt_name_is_valid(v.name))
		return line_error(err, errlen, "name '%s' is not a valid mapping name "
				  "([A-Za-z0-9._-], at most %d, not starting with '.' or '-', not "
				  "'control')", quote(f[0].p, f[0].len, w, sizeof(w)),
				  DMCRYPT_NAME_MAX);
	r = parse_device(&f[1], &v, err, errlen);
	if (r >= 0 && n > 2)
		r = parse_key(&f[2], &v, err, errlen);
	if (r >= 0 && n > 3)
		r = parse_options(&f[3], &v, err, errlen);
	else if (r >= 0)
		r = check_options(&v, err, errlen);
	if (r < 0)
		return r;
	*ret = v;
	return 1;
}

static int add_error(struct volumes *vs, const char *file, unsigned line, const char *msg)
{
	struct volume_error *e;

	vs->n_bad++;
	if (vs->n_errors >= VOLUMES_ERRORS_MAX)
		return 0;
	e = reallocarray(vs->errors, vs->n_errors + 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	vs->errors = e;
	e = &vs->errors[vs->n_errors++];
	e->file = file;
	e->line = line;
	snprintf(e->message, sizeof(e->message), "%s", msg);
	return 0;
}

const struct volume *volumes_find(const struct volumes *vs, const char *name)
{
	for (size_t i = 0; i < vs->n; i++)
		if (streq(vs->v[i].name, name))
			return &vs->v[i];
	return NULL;
}

/* Keeps a copy of the file name that volumes and errors point to. */
static const char *intern_file(struct volumes *vs, const char *file)
{
	char **f, *copy;

	if (vs->n_files && streq(vs->files[vs->n_files - 1], file))
		return vs->files[vs->n_files - 1];
	copy = strdup(file);
	if (!copy)
		return NULL;
	f = reallocarray(vs->files, vs->n_files + 1, sizeof(*f));
	if (!f) {
		free(copy);
		return NULL;
	}
	vs->files = f;
	vs->files[vs->n_files++] = copy;
	return copy;
}

static int add_line(struct volumes *vs, const char *file, unsigned lineno, const char *line,
		    size_t len)
{
	char err[sizeof(((struct volume_error *) 0)->message)];
	const struct volume *dup;
	struct volume v, *a;
	int r;

	r = volumes_parse_line(line, len, &v, err, sizeof(err));
	if (r == 0)
		return 0;
	if (r > 0 && (dup = volumes_find(vs, v.name))) {
		snprintf(err, sizeof(err), "name '%s' is already declared at %s:%u", v.name,
			 dup->file, dup->line);
		r = -EEXIST;
	} else if (r > 0 && vs->n >= VOLUMES_MAX) {
		snprintf(err, sizeof(err), "more than %d volumes declared", VOLUMES_MAX);
		r = -E2BIG;
	}
	if (r < 0)
		return add_error(vs, file, lineno, err);
	a = reallocarray(vs->v, vs->n + 1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	vs->v = a;
	v.file = file;
	v.line = lineno;
	vs->v[vs->n++] = v;
	return 0;
}

int volumes_parse_buffer(struct volumes *vs, const char *file, const char *buf, size_t len)
{
	const char *f = intern_file(vs, file);
	unsigned lineno = 0;
	size_t i = 0;

	if (!f)
		return -ENOMEM;
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t n = nl ? (size_t) (nl - (buf + i)) : len - i;
		int r;

		r = add_line(vs, f, ++lineno, buf + i, n);
		if (r < 0)
			return r;
		i += n + 1;
	}
	return 0;
}

int volumes_load_file(struct volumes *vs, const char *path)
{
	_cleanup_free_ char *buf = NULL;
	char msg[PATH_MAX + 64];
	const char *f;
	size_t len;
	int r;

	r = read_config_file(path, VOLUMES_FILE_MAX, &buf, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		f = intern_file(vs, path);
		if (!f)
			return -ENOMEM;
		snprintf(msg, sizeof(msg), "cannot read the file: %s",
			 r == -EFBIG ? "larger than 1 MiB" :
			 r == -EBADFD ? "not a regular file (a link to /dev/null masks it)" :
			 strerror(-r));
		return add_error(vs, f, 0, msg);
	}
	return volumes_parse_buffer(vs, path, buf, len);
}

static int conf_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && streq(d->d_name + n - 5, ".conf");
}

static int byte_order(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int volumes_load(struct volumes *vs, const char *file, const char *dir)
{
	struct dirent **names = NULL;
	int n, r = 0;

	if (file) {
		r = volumes_load_file(vs, file);
		if (r < 0)
			return r;
	}
	if (!dir)
		return 0;
	n = scandir(dir, &names, conf_filter, byte_order);
	if (n < 0)
		return 0;	/* no drop-in folder */
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *p = path_join(dir, names[i]->d_name);

		if (r >= 0)
			r = p ? volumes_load_file(vs, p) : -ENOMEM;
		free(names[i]);
	}
	free(names);
	return r;
}

void volumes_done(struct volumes *vs)
{
	free(vs->v);
	free(vs->errors);
	for (size_t i = 0; i < vs->n_files; i++)
		free(vs->files[i]);
	free(vs->files);
	*vs = (struct volumes) {};
}

int volumes_stable_name(const char *device, const char *luks_uuid, char *buf, size_t size)
{
	_cleanup_free_ char *dm = NULL;
	char path[64];
	struct stat st;
	size_t len = 0;
	int n;

	if (stat(device, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	(void) snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/dm/name", major(st.st_rdev),
			minor(st.st_rdev));
	if (read_sysfs(path, &dm, &len) >= 0) {
		while (len > 0 && (dm[len - 1] == '\n' || dm[len - 1] == ' '))
			dm[--len] = '\0';
		n = snprintf(buf, size, "keyscope-%s", dm);
	} else
		n = snprintf(buf, size, "keyscope-%s", luks_uuid ? luks_uuid : "");
	if (n < 0 || (size_t) n >= size || (!dm && isempty(luks_uuid)) ||
	    !dmcrypt_name_is_valid(buf))
		return -EINVAL;
	return 0;
}

static bool same_device(const char *path, dev_t rdev)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == rdev;
}

static bool env_is(const char *name, const char *value, bool nocase)
{
	const char *e = getenv(name);

	return e && (nocase ? strcasecmp(e, value) : strcmp(e, value)) == 0;
}

/* udev's DEVLINKS: the links the device gets, before they exist at the first coldplug. */
static bool in_devlinks(const char *path)
{
	const char *e = getenv("DEVLINKS");
	size_t n = strlen(path);

	for (; e && *e; e += strcspn(e, " "), e += strspn(e, " "))
		if (strncmp(e, path, n) == 0 && (e[n] == ' ' || e[n] == '\0'))
			return true;
	return false;
}

const struct volume *volumes_find_device(const struct volumes *vs, const char *device,
					 const char *luks_uuid)
{
	struct stat st;

	if (stat(device, &st) < 0 || !S_ISBLK(st.st_mode))
		return NULL;
	for (size_t i = 0; i < vs->n; i++) {
		const struct volume *v = &vs->v[i];
		bool match;

		switch (v->kind) {
		case VOLUME_DEVICE_UUID:
			match = !isempty(luks_uuid) && strcasecmp(v->tag, luks_uuid) == 0;
			break;
		case VOLUME_DEVICE_PARTUUID:
			match = env_is("ID_PART_ENTRY_UUID", v->tag, true) ||
				same_device(v->device, st.st_rdev);
			break;
		case VOLUME_DEVICE_LABEL:
			match = env_is("ID_FS_LABEL", v->tag, false) ||
				same_device(v->device, st.st_rdev);
			break;
		default:
			match = same_device(v->device, st.st_rdev) || in_devlinks(v->device);
		}
		if (match)
			return v;
	}
	return NULL;
}
