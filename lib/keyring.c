/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyring.h"
#include "macro.h"
#include "util.h"

int keyring_parse_spec(const char *spec, key_serial_t *ret)
{
	static const struct {
		const char *name;
		key_serial_t id;
	} specs[] = {
		{ "@t", KEY_SPEC_THREAD_KEYRING },       { "@p", KEY_SPEC_PROCESS_KEYRING },
		{ "@s", KEY_SPEC_SESSION_KEYRING },      { "@u", KEY_SPEC_USER_KEYRING },
		{ "@us", KEY_SPEC_USER_SESSION_KEYRING },
	};
	uint64_t v;

	if (!spec)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(specs); i++)
		if (streq(spec, specs[i].name)) {
			*ret = specs[i].id;
			return 0;
		}
	if (parse_uint64(spec, 1, INT32_MAX, &v) < 0)
		return -EINVAL;
	*ret = (key_serial_t) v;
	return 0;
}

int keyring_describe(key_serial_t key, struct key_info *ret)
{
	char buf[sizeof(ret->description) + 128];
	long n;

	n = keyctl(KEYCTL_DESCRIBE, key, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	if ((size_t) n >= sizeof(buf))
		return -ENAMETOOLONG;
	buf[n] = 0;
	return keyring_describe_parse(buf, ret);
}

int keyring_describe_parse(char *buf, struct key_info *ret)
{
	char *fields[5], *p = buf;
	unsigned long v[3];

	/* "type;uid;gid;perm;description": the description may itself contain ';'. */
	for (int i = 0; i < 4; i++) {
		char *semi = strchr(p, ';');
		if (!semi)
			return -EBADMSG;
		*semi = 0;
		fields[i] = p;
		p = semi + 1;
	}
	fields[4] = p;
	for (int i = 0; i < 3; i++) {
		char *end;
		errno = 0;
		v[i] = strtoul(fields[i + 1], &end, i == 2 ? 16 : 10);
		if (errno || end == fields[i + 1] || *end)
			return -EBADMSG;
	}
	if (strlen(fields[0]) >= sizeof(ret->type) ||
	    strlen(fields[4]) >= sizeof(ret->description))
		return -EBADMSG;
	strcpy(ret->type, fields[0]);
	ret->uid = (uint32_t) v[0];
	ret->gid = (uint32_t) v[1];
	ret->perm = (uint32_t) v[2];
	strcpy(ret->description, fields[4]);
	return 0;
}

int keyring_list(key_serial_t keyring, key_serial_t **ret)
{
	_cleanup_free_ key_serial_t *ids = NULL;
	size_t alloc = 64 * sizeof(key_serial_t);

	for (;;) {
		long n;
		key_serial_t *p = realloc(ids, alloc);

		if (!p)
			return -ENOMEM;
		ids = p;
		n = keyctl(KEYCTL_READ, keyring, ids, alloc);
		if (n < 0)
			return -errno;
		if ((size_t) n <= alloc) {
			*ret = TAKE_PTR(ids);
			return (int) ((size_t) n / sizeof(key_serial_t));
		}
		/* The keyring grew between calls, or the first buffer was small. */
		alloc = (size_t) n + 64 * sizeof(key_serial_t);
	}
}

key_serial_t keyring_find_or_create(key_serial_t parent, const char *name)
{
	_cleanup_free_ key_serial_t *ids = NULL;
	key_serial_t k;
	int n;

	/* Search only the direct links: keyctl_search() would recurse and could find a keyring of
	 * the same name that somebody linked further down. Creating it blindly would replace a
	 * live one in parent and orphan every key in it. */
	n = keyring_list(parent, &ids);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct key_info info;
		if (keyring_describe(ids[i], &info) < 0)
			continue;
		if (streq(info.type, "keyring") && streq(info.description, name)) {
			/* Someone may have widened it while we were away. */
			if (info.perm != KEYSCOPE_KEYRING_PERM &&
			    keyctl_setperm(ids[i], KEYSCOPE_KEYRING_PERM) < 0)
				return -errno;
			return ids[i];
		}
	}

	k = add_key("keyring", name, NULL, 0, parent);
	if (k < 0)
		return -errno;
	if (keyctl_setperm(k, KEYSCOPE_KEYRING_PERM) < 0) {
		int r = -errno;
		(void) keyctl_unlink(k, parent);
		return r;
	}
	return k;
}

key_serial_t keyring_add_logon(key_serial_t keyring, const char *desc, const void *data,
			       size_t len, uint32_t perm)
{
	key_serial_t k;

	k = add_key("logon", desc, data, len, keyring);
	if (k < 0 && errno == EACCES) {
		/* A key of that description without write permission is in the way (one of ours
		 * left over, or planted): add_key() would update it in place. Replace it. */
		key_serial_t old = keyctl_search(keyring, "logon", desc, 0);
		if (old > 0 && keyctl_invalidate(old) >= 0)
			k = add_key("logon", desc, data, len, keyring);
	}
	if (k < 0)
		return -errno;
	if (keyctl_setperm(k, perm) < 0) {
		int r = -errno;
		(void) keyctl_invalidate(k);
		return r;
	}
	return k;
}

int keyring_invalidate(key_serial_t key)
{
	return keyctl_invalidate(key) < 0 ? -errno : 0;
}

int keyring_unlink(key_serial_t key, key_serial_t keyring)
{
	return keyctl_unlink(key, keyring) < 0 ? -errno : 0;
}

int keyring_set_timeout(key_serial_t key, unsigned seconds)
{
	return keyctl_set_timeout(key, seconds) < 0 ? -errno : 0;
}

key_serial_t keyring_request(const char *type, const char *desc, key_serial_t dest)
{
	key_serial_t k;

	do
		k = request_key(type, desc, NULL, dest);
	while (k < 0 && errno == EINTR);
	return k < 0 ? -errno : k;
}
