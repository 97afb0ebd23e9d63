/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sealed offline cache: <state-dir>/cache/<key-id>.key, each sealed by the store under the
 * associated data "cache.<key-id>", served while Barbican cannot be reached, for at most
 * barbican-cache-ttl; and what a withdrawn key (403, 404) takes with it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "source-internal.h"
#include "util.h"

static int cache_names(struct source *s, const char *id, char *path, size_t psize, char *aad,
		       size_t asize)
{
	int k;

	if (!keyid_is_valid(id))
		return -EINVAL;
	k = snprintf(aad, asize, CACHE_AAD_PREFIX "%s", id);
	if (k < 0 || (size_t) k >= asize || !keyid_is_valid(aad))
		return -ENAMETOOLONG;
	k = snprintf(path, psize, "%s/%s.key", s->cache_dir, id);
	return k < 0 || (size_t) k >= psize ? -ENAMETOOLONG : 0;
}

void cache_put(struct source *s, const char *id, const struct secret_buf *key,
	       const char *type)
{
	_cleanup_free_ uint8_t *blob = NULL;
	char path[PATH_MAX], aad[KEYID_MAX + 1];
	size_t size;
	int r;

	if (!cache_on(s))
		return;
	r = cache_names(s, id, path, sizeof(path), aad, sizeof(aad));
	if (r >= 0)
		r = store_seal_other(s->store, aad, key->data, key->len,
				     streq(type, "passphrase") ? "passphrase" : "symmetric",
				     (uint64_t) time(NULL), &blob, &size);
	/* Durable: the cache is for the reboot that follows. */
	if (r >= 0)
		r = write_file_atomic(path, blob, size, 0600);
	if (r < 0)
		log_warning_errno(r, "Failed to keep a sealed copy of key %s in %s, ignoring: %m",
				  id, s->cache_dir);
	else
		s->cache_writes++;
}

int cache_get(struct source *s, const char *id, struct secret_buf *ret,
	      uint64_t *ret_age, char *ret_type, size_t type_size)
{
	_cleanup_free_ char *blob = NULL;
	char path[PATH_MAX], aad[KEYID_MAX + 1];
	struct store_entry e;
	int64_t now = (int64_t) time(NULL);
	size_t size;
	int r;

	if (!cache_on(s))
		return -ENOENT;
	r = cache_names(s, id, path, sizeof(path), aad, sizeof(aad));
	if (r < 0)
		return r;
	r = read_full_file(path, CACHE_FILE_MAX, &blob, &size);
	if (r < 0)
		return r == -EFBIG ? -EBADMSG : r;
	r = store_unseal_other(s->store, aad, (const uint8_t *) blob, size, ret, &e);
	if (r < 0)
		return r;
	if ((int64_t) e.created > now + 300 ||
	    now - (int64_t) e.created > (int64_t) s->cfg->barbican_cache_ttl_sec) {
		secret_buf_done(ret);
		(void) unlink(path);
		log_info("Cached copy of key %s expired (barbican-cache-ttl %us): removed.", id,
			 s->cfg->barbican_cache_ttl_sec);
		return -ESTALE;
	}
	*ret_age = (uint64_t) (now - (int64_t) e.created);
	snprintf(ret_type, type_size, "%.31s", e.name);
	return 0;
}

void cache_drop(struct source *s, const char *id, const char *why)
{
	char path[PATH_MAX], aad[KEYID_MAX + 1];

	if (!cache_on(s) || cache_names(s, id, path, sizeof(path), aad, sizeof(aad)) < 0)
		return;
	if (unlink(path) >= 0)
		log_notice("Dropped the cached copy of key %s: %s.", id, why);
}


void source_key_withdrawn(struct source *s, const char *id, const struct barbican_error *e)
{
	struct event_fields f = { .key_id = id, .error = source_error_name(e) };
	int r;

	s->withdrawn++;
	log_event(EVENT_DELEGATION_WITHDRAWN, LOG_NOTICE, &f, "Barbican withdrew key %s: %s", id,
		  e->message);
	cache_drop(s, id, e->cls == BARBICAN_DENIED ? "its delegation to this node was withdrawn"
						    : "it no longer exists in Barbican");
	if (!s->on_withdrawn)
		return;
	r = s->on_withdrawn(s->withdrawn_userdata, id);
	if (r > 0)
		log_notice("Invalidated the kernel key of %s: Barbican %s.", id,
			   e->cls == BARBICAN_DENIED ? "no longer delegates it to this node"
						     : "no longer has it");
	else if (r == 0)
		log_notice("Key %s is withdrawn in Barbican; its kernel key goes with the last "
			   "mapping that uses it.", id);
}
