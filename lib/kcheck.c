/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <linux/dm-ioctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "kcheck.h"
#include "keyid.h"
#include "macro.h"
#include "modload.h"
#include "util.h"

#define PROC_FILE_MAX (1024 * 1024)
#define CONF_FILE_MAX (64 * 1024)
#define DM_CONTROL "/dev/mapper/control"
#define DM_LIST_MAX (1024 * 1024)
/* Quota a scope's key costs: the payload (64 bytes at most) and the description with its NUL. */
#define SCOPE_KEY_BYTES (64 + KEY_DESC_MAX + 1)

const char *kcheck_status_to_string(enum kcheck_status s)
{
	switch (s) {
	case KCHECK_OK: return "ok";
	case KCHECK_WARNING: return "warning";
	case KCHECK_MISSING: return "missing";
	case KCHECK_SKIPPED: return "skipped";
	}
	return "unknown";
}

/* ---- pure parsers ------------------------------------------------------------------------ */

int kcheck_version_cmp(const unsigned a[3], const unsigned b[3])
{
	for (int i = 0; i < 3; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

int kcheck_parse_target_versions(const void *buf, size_t len, const char *name,
				 unsigned ret_version[3])
{
	const size_t hdr = sizeof(struct dm_target_versions);
	const uint8_t *p = buf;
	size_t off = 0;

	if (len == 0)
		return 0;
	for (;;) {
		struct dm_target_versions t;
		size_t end, nlen;

		if (len - off < hdr)
			return -EBADMSG;
		memcpy(&t, p + off, hdr);
		if (t.next && (t.next < hdr + 1 || t.next > len - off))
			return -EBADMSG;
		/* The name runs to the next record or to the end of the data. */
		end = t.next ? off + t.next : len;
		nlen = strnlen((const char *) p + off + hdr, end - off - hdr);
		if (nlen == end - off - hdr)
			return -EBADMSG;	/* no NUL inside the record */
		if (nlen == strlen(name) && memcmp(p + off + hdr, name, nlen) == 0) {
			memcpy(ret_version, t.version, sizeof(t.version));
			return 1;
		}
		if (!t.next)
			return 0;
		off += t.next;
	}
}

int kcheck_parse_misc(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t) (e - l) : strlen(l);
		char line[128], *p, *end;
		unsigned long minor;

		if (len >= sizeof(line))
			continue;
		memcpy(line, l, len);
		line[len] = 0;
		p = line + strspn(line, " ");
		errno = 0;
		minor = strtoul(p, &end, 10);
		if (errno || end == p || *end != ' ' || minor > 255)
			continue;
		end += strspn(end, " ");
		if (strlen(end) == n && memcmp(end, name, n) == 0)
			return (int) minor;
	}
	return -ENOENT;
}

int kcheck_parse_key_users(const char *text, unsigned uid, uint64_t *ret_keys,
			   uint64_t *ret_bytes)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		unsigned long long u, usage, nkeys, nikeys, qnkeys, maxkeys, qnbytes, maxbytes;
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t) (e - l) : strlen(l);
		char line[256], tail;
		int k;

		if (len >= sizeof(line))
			continue;
		memcpy(line, l, len);
		line[len] = 0;
		/* "%5u: %5d %d/%d %d/%d %d/%d" in security/keys/proc.c */
		k = sscanf(line, " %llu: %llu %llu/%llu %llu/%llu %llu/%llu %c", &u, &usage, &nkeys,
			   &nikeys, &qnkeys, &maxkeys, &qnbytes, &maxbytes, &tail);
		if (k < 1 || u != uid)
			continue;
		if (k != 8)
			return -EBADMSG;
		*ret_keys = qnkeys;
		*ret_bytes = qnbytes;
		return 0;
	}
	return -ENOENT;
}

bool kcheck_rk_match(const char *pattern, size_t plen, const char *datum)
{
	const char *star = memchr(pattern, '*', plen);
	size_t dlen = strlen(datum), head, tail;

	if (!star)
		return plen == dlen && memcmp(pattern, datum, dlen) == 0;
	head = (size_t) (star - pattern);
	tail = plen - head - 1;
	if (dlen < head + tail)
		return false;
	return memcmp(pattern, datum, head) == 0 &&
	       memcmp(star + 1, datum + dlen - tail, tail) == 0;
}

/* Splits the next white-space separated word off *p. Returns its length, 0 at the end. */
static size_t next_word(const char **p, const char **ret)
{
	const char *s = *p + strspn(*p, " \t");
	size_t n = strcspn(s, " \t");

	*ret = s;
	*p = s + n;
	return n;
}

int kcheck_parse_request_key_line(const char *line, char *prog, size_t progsize)
{
	const char *p = line, *w[5];
	size_t n[5];

	if (line[0] == '#' || isspace((unsigned char) line[0]) || !line[0])
		return 0;	/* request-key skips lines that start with white space, too */
	for (int i = 0; i < 5; i++) {
		n[i] = next_word(&p, &w[i]);
		if (n[i] == 0)
			return -EBADMSG;
	}
	/* op, type, a sample description and "any callout info": the line must take them all. */
	if (!kcheck_rk_match(w[0], n[0], "create") || !kcheck_rk_match(w[1], n[1], "logon") ||
	    !kcheck_rk_match(w[2], n[2], KEY_DESC_PREFIX "0") || n[3] != 1 || w[3][0] != '*')
		return 0;
	if (w[4][0] == '|') {
		w[4]++;
		n[4]--;
	}
	if (n[4] == 0 || w[4][0] != '/' || n[4] >= progsize)
		return -EBADMSG;
	memcpy(prog, w[4], n[4]);
	prog[n[4]] = 0;
	return 1;
}

/* ---- the checks -------------------------------------------------------------------------- */

static struct kcheck_item *item_add(struct kcheck_result *r, const char *name, bool needed)
{
	struct kcheck_item *it;

	if (r->n >= KCHECK_MAX_ITEMS)
		abort();	/* a programming error: the table is fixed */
	it = &r->items[r->n++];
	*it = (struct kcheck_item) { .name = name, .needed = needed, .status = KCHECK_OK };
	return it;
}

/* Diagnostic text is bounded; a message cut at KCHECK_TEXT_MAX is still a message. */
static void item_set(struct kcheck_item *it, enum kcheck_status s, const char *fix,
		     const char *fmt, ...) _printf_(4, 5);
static void item_set(struct kcheck_item *it, enum kcheck_status s, const char *fix,
		     const char *fmt, ...)
{
	va_list ap;

	it->status = s;
	va_start(ap, fmt);
	(void) vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
	va_end(ap);
	(void) snprintf(it->fix, sizeof(it->fix), "%s", fix ?: "");
}

static int read_proc(const char *path, char **ret)
{
	return read_full_file(path, PROC_FILE_MAX, ret, NULL);
}

static int read_proc_u64(const char *path, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	int r = read_proc(path, &s);

	if (r < 0)
		return r;
	s[strcspn(s, "\n")] = 0;
	return parse_uint64(s, 0, UINT64_MAX, ret);
}

static bool check_keyring(struct kcheck_result *res, key_serial_t *ret_ring)
{
	struct kcheck_item *it = item_add(res, "keyring", true);
	key_serial_t ring;

	if (keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) < 0 && errno != ENOKEY) {
		int e = errno;
		item_set(it, KCHECK_MISSING,
			 e == ENOSYS ? "use a kernel built with CONFIG_KEYS=y"
				     : "allow keyctl(2) and add_key(2): under systemd keep "
				       "SystemCallFilter=@keyring in the unit",
			 "keyctl(2) fails: %s", strerror(e));
		return false;
	}
	ring = add_key("keyring", "keyscope-check", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
	if (ring < 0) {
		item_set(it, KCHECK_MISSING,
			 errno == EDQUOT ? "raise /proc/sys/kernel/keys/root_maxkeys and "
					   "root_maxbytes"
					 : "allow add_key(2) (SystemCallFilter=@keyring)",
			 "add_key(2) of a keyring fails: %s", strerror(errno));
		return false;
	}
	item_set(it, KCHECK_OK, NULL, "keyctl(2) and add_key(2) work");
	*ret_ring = ring;
	return true;
}

static void check_logon(struct kcheck_result *res, bool have_keyring, key_serial_t ring)
{
	struct kcheck_item *it = item_add(res, "logon", true);
	static const uint8_t probe[32];	/* not a key: a payload to see the type work */
	uint8_t back[sizeof(probe)];
	key_serial_t k;
	long n;

	if (!have_keyring) {
		item_set(it, KCHECK_SKIPPED, "see 'keyring'", "needs the keyring system calls");
		return;
	}
	k = add_key("logon", "keyscope-check:probe", probe, sizeof(probe), ring);
	if (k < 0) {
		item_set(it, KCHECK_MISSING,
			 errno == ENODEV ? "use a kernel with the logon key type (Linux 3.3 or later)"
					 : "see the error; the daemon cannot install keys without it",
			 "adding a logon key fails: %s", strerror(errno));
	} else {
		n = keyctl(KEYCTL_READ, k, back, sizeof(back));
		if (n >= 0)
			item_set(it, KCHECK_MISSING, "use a kernel whose logon keys cannot be read back",
				 "a logon key's payload can be read from user space");
		else
			item_set(it, KCHECK_OK, NULL,
				 "logon keys can be added and their payload cannot be read back (%s)",
				 strerror(errno));
	}
	/*
	 * The probe (32 zero bytes, no key) and its keyring stay in this process's keyring, and go
	 * with the process. Destroying a key makes the kernel's key garbage collector walk every
	 * key on the node: with 10,000 held, ~2.5 ms of a kworker that keyscoped's start shared
	 * the CPUs with. A second run replaces the keyring (one of the same name is not kept).
	 */
}

/*
 * The kernel runs /sbin/request-key in the root of PID 1, not ours: from a chroot or a
 * container our own /sbin/request-key proves nothing. Returns "/proc/1/root" when that root
 * differs from ours and we may look into it, "" otherwise.
 */
static const char *init_root(void)
{
	struct stat a, b;

	if (stat("/", &a) < 0 || stat("/proc/1/root/", &b) < 0)
		return "";
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? "" : "/proc/1/root";
}

static const char *where(const char *root)
{
	return root[0] ? " in PID 1's root (/proc/1/root), which is where the kernel runs "
			 "request-key" : "";
}

static void check_request_key_bin(struct kcheck_result *res, const struct kcheck_options *o,
				  const char *root)
{
	struct kcheck_item *it = item_add(res, "request-key", o->need_request_key);
	const char *path = o->request_key_path ?: "/sbin/request-key";
	char full[4096];
	struct stat st;
	int k;

	k = snprintf(full, sizeof(full), "%s%s", o->request_key_path ? "" : root, path);
	if (k < 0 || (size_t) k >= sizeof(full) || stat(full, &st) < 0 || !S_ISREG(st.st_mode) ||
	    access(full, X_OK) < 0)
		item_set(it, KCHECK_MISSING, "install keyutils (apt-get install keyutils)",
			 "%s is not an executable file%s", path, where(root));
	else
		item_set(it, KCHECK_OK, NULL, "%s is installed%s", path, where(root));
}

/* Scans one request-key config file. Returns 1 when a line sends our requests to prog. */
static int scan_rk_file(const char *path, char *prog, size_t progsize, unsigned *ret_line)
{
	_cleanup_free_ char *text = NULL;
	char *line, *p;
	unsigned n = 0;

	if (read_full_file(path, CONF_FILE_MAX, &text, NULL) < 0)
		return 0;
	p = text;
	while ((line = strsep(&p, "\n"))) {
		n++;
		if (kcheck_parse_request_key_line(line, prog, progsize) == 1) {
			*ret_line = n;
			return 1;
		}
	}
	return 0;
}

static int conf_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && streq(d->d_name + n - 5, ".conf");
}

static void check_request_key_conf(struct kcheck_result *res, const struct kcheck_options *o,
				   const char *root)
{
	struct kcheck_item *it = item_add(res, "request-key-handler", o->need_request_key);
	const char *dir = o->request_key_dir ?: "/etc/request-key.d";
	struct dirent **ents = NULL;
	char rdir[4096], path[8192], prog[1024] = "", found[4096] = "", full[8192];
	unsigned line = 0;
	int n, k;

	if (o->request_key_dir)
		root = "";
	/* /sbin/request-key reads every drop-in and then /etc/request-key.conf. */
	k = snprintf(rdir, sizeof(rdir), "%s%s", root, dir);
	n = k < 0 || (size_t) k >= sizeof(rdir) ? -1 : scandir(rdir, &ents, conf_filter, alphasort);
	for (int i = 0; i < n; i++) {
		k = snprintf(path, sizeof(path), "%s/%s", rdir, ents[i]->d_name);
		if (!found[0] && k > 0 && (size_t) k < sizeof(path) &&
		    scan_rk_file(path, prog, sizeof(prog), &line) == 1)
			(void) snprintf(found, sizeof(found), "%s/%s", dir, ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	(void) snprintf(path, sizeof(path), "%s/etc/request-key.conf", root);
	if (!found[0] && !o->request_key_dir &&
	    scan_rk_file(path, prog, sizeof(prog), &line) == 1)
		strcpy(found, "/etc/request-key.conf");

	k = snprintf(full, sizeof(full), "%s%s", root, prog);
	if (!found[0])
		item_set(it, KCHECK_MISSING,
			 "install keyscope's drop-in /etc/request-key.d/keyscope.conf (make install)",
			 "no 'create logon keyscope:* *' line in %s/*.conf or /etc/request-key.conf%s: "
			 "keyctl request2 logon keyscope:<key-id> cannot reach keyscoped", dir,
			 where(root));
	else if (k < 0 || (size_t) k >= sizeof(full) || access(full, X_OK) < 0)
		item_set(it, KCHECK_MISSING, "reinstall keyscope (make install) or fix the line",
			 "%s:%u runs %s, which is not an executable file%s", found, line, prog,
			 where(root));
	else
		item_set(it, KCHECK_OK, NULL, "%s:%u sends logon keyscope:* requests to %s%s",
			 found, line, prog, where(root));
}

/* ---- device-mapper ---------------------------------------------------------------------- */

static void dm_ioctl_init(struct dm_ioctl *io, size_t size)
{
	memset(io, 0, size);
	io->version[0] = DM_VERSION_MAJOR;
	io->data_size = (uint32_t) size;
	io->data_start = sizeof(*io);
}

static int dm_driver_version(int fd, unsigned ret[3])
{
	struct dm_ioctl io;

	dm_ioctl_init(&io, sizeof(io));
	if (ioctl(fd, DM_VERSION, &io) < 0)
		return -errno;
	for (int i = 0; i < 3; i++)
		ret[i] = io.version[i];
	return 0;
}

/* Returns 1 and the version of target name, 0 when the kernel has no such target, -errno. */
static int dm_target_version(int fd, const char *name, unsigned ret[3])
{
	for (size_t size = 16 * 1024; size <= DM_LIST_MAX; size *= 4) {
		_cleanup_free_ struct dm_ioctl *io = malloc(size);

		if (!io)
			return -ENOMEM;
		dm_ioctl_init(io, size);
		if (ioctl(fd, DM_LIST_VERSIONS, io) < 0)
			return -errno;
		if (io->flags & DM_BUFFER_FULL_FLAG)
			continue;
		if (io->data_size > size || io->data_start > io->data_size)
			return -EBADMSG;
		return kcheck_parse_target_versions((uint8_t *) io + io->data_start,
						    io->data_size - io->data_start, name, ret);
	}
	return -E2BIG;
}

/*
 * Why modules cannot be loaded here, or NULL when they can. Loading is still up to libkmod
 * (the module may be missing or blacklisted).
 */
static const char *modules_blocked(void)
{
	uint64_t v = 0;

	if (access("/proc/modules", F_OK) < 0)
		return "this kernel cannot load modules (no /proc/modules: built without "
		       "CONFIG_MODULES)";
	if (read_proc_u64("/proc/sys/kernel/modules_disabled", &v) >= 0 && v != 0)
		return "module loading is disabled (kernel.modules_disabled = 1)";
	return NULL;
}

struct dm_state {
	bool have_control, have_crypt;
	int control_error;
	unsigned version[3], crypt[3];
};

static void dm_probe(struct dm_state *s)
{
	_cleanup_close_ int fd = -EBADF;

	*s = (struct dm_state) {};
	fd = open(DM_CONTROL, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		s->control_error = -errno;
		return;
	}
	s->control_error = dm_driver_version(fd, s->version);
	if (s->control_error < 0)
		return;
	s->have_control = true;
	s->have_crypt = dm_target_version(fd, "crypt", s->crypt) == 1;
}

/* Why device-mapper is not usable, for the "device-mapper" item. */
static void dm_explain(struct kcheck_item *it, const struct dm_state *s, const char *load_err)
{
	_cleanup_free_ char *misc = NULL;
	const char *blocked = modules_blocked();
	int minor = -ENOENT;

	if (read_proc("/proc/misc", &misc) >= 0)
		minor = kcheck_parse_misc(misc, "device-mapper");
	if (minor >= 0 && s->control_error == -ENOENT)
		item_set(it, KCHECK_MISSING, "create the node: dmsetup mknodes",
			 "device-mapper is in the kernel (misc minor %d) but %s is missing", minor,
			 DM_CONTROL);
	else if (minor >= 0)
		item_set(it, KCHECK_MISSING, "run as root with access to " DM_CONTROL,
			 "%s: %s", DM_CONTROL, strerror(-s->control_error));
	else if (load_err)
		item_set(it, KCHECK_MISSING, "load dm_mod (modprobe dm_mod) or fix the module",
			 "no device-mapper in this kernel (no 'device-mapper' in /proc/misc), and %s",
			 load_err);
	else if (blocked)
		item_set(it, KCHECK_MISSING,
			 "use a kernel with CONFIG_BLK_DEV_DM, or one that can load dm_mod",
			 "no device-mapper in this kernel (no 'device-mapper' in /proc/misc, no %s), "
			 "and %s", DM_CONTROL, blocked);
	else
		item_set(it, KCHECK_MISSING, "load it: modprobe dm_mod (or keyscopectl check)",
			 "no device-mapper in this kernel (no 'device-mapper' in /proc/misc): the "
			 "dm_mod module is not loaded");
}

static void check_dm(struct kcheck_result *res, const struct kcheck_options *o)
{
	struct kcheck_item *dm = item_add(res, "device-mapper", o->need_dm);
	struct kcheck_item *cr = item_add(res, "dm-crypt", o->need_dm);
	static const unsigned min[3] = { KCHECK_CRYPT_MIN_MAJOR, KCHECK_CRYPT_MIN_MINOR,
					 KCHECK_CRYPT_MIN_PATCH };
	char load_err[KCHECK_TEXT_MAX] = "";
	struct dm_state s;
	bool tried = false;

	dm_probe(&s);
	if ((!s.have_control || !s.have_crypt) && o->load_modules && !modules_blocked()) {
		/* dm_crypt depends on dm_mod: one load brings both, as "modprobe dm_crypt". */
		tried = true;
		if (modload_load("dm_crypt", load_err, sizeof(load_err)) >= 0) {
			res->module_loaded = true;
			load_err[0] = 0;
			dm_probe(&s);
		}
	}

	if (!s.have_control) {
		dm_explain(dm, &s, load_err[0] ? load_err : NULL);
		item_set(cr, KCHECK_SKIPPED, "see 'device-mapper'", "needs device-mapper");
	} else {
		item_set(dm, KCHECK_OK, NULL, "%s answers, driver version %u.%u.%u", DM_CONTROL,
			 s.version[0], s.version[1], s.version[2]);
		memcpy(res->dm_version, s.version, sizeof(s.version));
		if (!s.have_crypt) {
			const char *blocked = modules_blocked();
			item_set(cr, KCHECK_MISSING,
				 blocked ? "use a kernel with CONFIG_DM_CRYPT"
					 : "load it: modprobe dm_crypt",
				 "device-mapper has no crypt target%s%s", tried || blocked ? ", and " : "",
				 load_err[0] ? load_err : blocked ? blocked : "");
		} else if (kcheck_version_cmp(s.crypt, min) < 0) {
			item_set(cr, KCHECK_MISSING, "use a newer kernel (Linux 4.17 or later)",
				 "crypt target %u.%u.%u is older than %u.%u.%u, the first that takes "
				 "keyring keys safely", s.crypt[0], s.crypt[1], s.crypt[2], min[0],
				 min[1], min[2]);
		} else {
			item_set(cr, KCHECK_OK, NULL, "crypt target %u.%u.%u takes keyring keys%s",
				 s.crypt[0], s.crypt[1], s.crypt[2],
				 res->module_loaded ? " (dm_crypt loaded now)" : "");
		}
		memcpy(res->crypt_version, s.crypt, sizeof(s.crypt));
	}
	res->dm_ok = dm->status == KCHECK_OK && cr->status == KCHECK_OK;
	if (!res->dm_ok) {
		const struct kcheck_item *bad = dm->status != KCHECK_OK ? dm : cr;
		(void) snprintf(res->dm_problem, sizeof(res->dm_problem), "%s (%s)", bad->detail,
				bad->fix);
	}
}

/* ---- quotas ------------------------------------------------------------------------------ */

static void check_quota(struct kcheck_result *res, const char *name, const char *file,
			uint64_t needed, uint64_t used, const char *what, unsigned scopes)
{
	struct kcheck_item *it = item_add(res, name, true);
	char fix[KCHECK_TEXT_MAX];
	uint64_t max;
	int r;

	r = read_proc_u64(file, &max);
	(void) snprintf(fix, sizeof(fix), "sysctl kernel.keys.%s=%llu (or lower expected-scopes)",
			name, (unsigned long long) (needed + used));
	if (r < 0)
		item_set(it, KCHECK_MISSING, "use a kernel with CONFIG_KEYS=y", "cannot read %s: %s",
			 file, strerror(-r));
	else if (max < needed)
		item_set(it, KCHECK_MISSING, fix,
			 "%llu %s is less than the %llu that %u scopes need", (unsigned long long) max,
			 what, (unsigned long long) needed, scopes);
	else if (max - needed < used)
		item_set(it, KCHECK_WARNING, fix,
			 "%llu %s: enough for %u scopes (%llu), but root already uses %llu",
			 (unsigned long long) max, what, scopes, (unsigned long long) needed,
			 (unsigned long long) used);
	else
		item_set(it, KCHECK_OK, NULL, "%llu %s >= %llu for %u scopes (root uses %llu)",
			 (unsigned long long) max, what, (unsigned long long) needed, scopes,
			 (unsigned long long) used);
}

static void check_quotas(struct kcheck_result *res, const struct kcheck_options *o)
{
	_cleanup_free_ char *users = NULL;
	uint64_t keys = 0, bytes = 0;
	uint64_t scopes = o->expected_scopes;

	if (read_proc("/proc/key-users", &users) >= 0)
		(void) kcheck_parse_key_users(users, 0, &keys, &bytes);
	/* One key per scope plus the keyscope keyring. */
	check_quota(res, "root_maxkeys", "/proc/sys/kernel/keys/root_maxkeys", scopes + 1, keys,
		    "keys", o->expected_scopes);
	check_quota(res, "root_maxbytes", "/proc/sys/kernel/keys/root_maxbytes",
		    scopes * SCOPE_KEY_BYTES + 1024, bytes, "bytes", o->expected_scopes);
}

void kcheck_options_from_config(const struct config *cfg, bool load_modules,
				struct kcheck_options *ret)
{
	*ret = (struct kcheck_options) {
		.need_request_key = cfg->n_request_key_uids > 0,
		.need_dm = cfg->volumes,
		.load_modules = load_modules && cfg->volumes,
		.expected_scopes = cfg->expected_scopes,
	};
}

int kcheck_run(const struct kcheck_options *o, struct kcheck_result *ret)
{
	key_serial_t ring = 0;
	bool have_keyring;

	*ret = (struct kcheck_result) {};
	have_keyring = check_keyring(ret, &ring);
	check_logon(ret, have_keyring, ring);
	check_request_key_bin(ret, o, init_root());
	check_request_key_conf(ret, o, init_root());
	check_dm(ret, o);
	check_quotas(ret, o);

	ret->ok = true;
	for (size_t i = 0; i < ret->n; i++)
		if (ret->items[i].needed && ret->items[i].status != KCHECK_OK &&
		    ret->items[i].status != KCHECK_WARNING)
			ret->ok = false;
	return ret->ok ? 0 : -ENODEV;
}
