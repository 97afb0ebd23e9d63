/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <blkid/blkid.h>
#include <errno.h>
#include <json-c/json.h>
#include <libcryptsetup.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "dmcrypt.h"
#include "luks.h"
#include "macro.h"
#include "token.h"

#define LUKS1_HDR 592

DEFINE_TRIVIAL_CLEANUP_FUNC(struct crypt_device *, crypt_free);
#define _cleanup_crypt_ _cleanup_(crypt_freep)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(blkid_probe, blkid_free_probe);

static void crypt_log_quiet(int level, const char *msg, void *usrptr)
{
}

static int luks_open(const char *device, struct crypt_device **ret)
{
	struct crypt_device *cd;
	int r;

	r = crypt_init(&cd, device);
	if (r < 0)
		return r;
	if (!getenv("KEYSCOPE_CRYPT_DEBUG"))
		crypt_set_log_callback(cd, crypt_log_quiet, NULL);
	r = crypt_load(cd, CRYPT_LUKS, NULL);
	if (r < 0) {
		crypt_free(cd);
		/* crypt_load says EINVAL for "no LUKS header here" */
		return r == -EINVAL ? -ENOMEDIUM : r;
	}
	*ret = cd;
	return 0;
}

/*
 * Finds the keyscope token (token.h parses it); fills key_id/source/key_size/token. Returns 1,
 * 0 when there is none, -EBADMSG for a malformed one, two of them, or a key-size the header
 * contradicts, with the reason in *reason.
 */
static int token_read(struct crypt_device *cd, struct luks_info *info, const char **reason)
{
	struct token found = {}, t;
	int at = -1;

	for (int i = 0; i < 32; i++) {
		const char *json;
		int r;

		if (crypt_token_json_get(cd, i, &json) < 0)
			continue;
		r = token_parse(json, strlen(json), &t, reason);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		if (at >= 0) {
			*reason = "the header has two keyscope tokens";
			return -EBADMSG;
		}
		found = t;
		at = i;
	}
	if (at < 0)
		return 0;
	/* A LUKS2 header without keyslots records no volume key size; ours says it. */
	if (info->key_size != 0 && info->key_size != found.key_size) {
		*reason = "the token's \"key-size\" is not the header's volume key size";
		return -EBADMSG;
	}
	info->key_size = found.key_size;
	memcpy(info->key_id, found.key_id, sizeof(info->key_id));
	memcpy(info->source, found.source, sizeof(info->source));
	info->token = at;
	return 1;
}

int luks_fingerprint_bind(const uint8_t fp[static 32], const char *key_id, uint8_t out[static 32])
{
	unsigned len = 32;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, fp, 32) &&
	     EVP_DigestUpdate(ctx, key_id, strlen(key_id)) && EVP_DigestFinal_ex(ctx, out, &len);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

/* SHA-256 over the UUID and the JSON of the header's digests: equal for a volume and its
 * snapshots, different for another volume even if it claims the same key-id. */
static int fingerprint(struct crypt_device *cd, const char *uuid, uint8_t out[static 32])
{
	_cleanup_(json_object_putp) json_object *o = NULL;
	json_object *digests;
	const char *json = NULL, *d;
	unsigned len = 32;

	if (streq(crypt_get_type(cd), CRYPT_LUKS2)) {
		if (crypt_dump_json(cd, &json, 0) < 0 || !(o = json_tokener_parse(json)) ||
		    !json_object_object_get_ex(o, "digests", &digests))
			return -EBADMSG;
		d = json_object_to_json_string_ext(digests, JSON_C_TO_STRING_PLAIN);
	} else {
		/* LUKS1 exports no digest: take the binary header itself (magic, cipher, key
		 * size, master key digest, its salt and iterations: the first 592 bytes). */
		const char *dev = crypt_get_device_name(cd);
		static char hex[2 * LUKS1_HDR + 1];
		uint8_t raw[LUKS1_HDR];
		int fd = dev ? open(dev, O_RDONLY | O_CLOEXEC) : -1;
		ssize_t k = fd >= 0 ? pread(fd, raw, sizeof(raw), 0) : -1;

		if (fd >= 0)
			close(fd);
		if (k != (ssize_t) sizeof(raw))
			return -EIO;
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(hex + 2 * i, 3, "%02x", raw[i]);
		d = hex;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(ctx, uuid, strlen(uuid) + 1) &&
		 EVP_DigestUpdate(ctx, d, strlen(d)) && EVP_DigestFinal_ex(ctx, out, &len);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

/*
 * The activation flags `cryptsetup refresh --persistent` or `open --persistent` stored in a
 * LUKS2 header; cryptsetup honours them on every open, and so do we.
 */
static unsigned persistent_dm_flags(struct crypt_device *cd)
{
	static const struct {
		uint32_t crypt;
		unsigned dm;
	} map[] = {
		{ CRYPT_ACTIVATE_ALLOW_DISCARDS, DMCRYPT_ALLOW_DISCARDS },
		{ CRYPT_ACTIVATE_SAME_CPU_CRYPT, DMCRYPT_SAME_CPU_CRYPT },
		{ CRYPT_ACTIVATE_SUBMIT_FROM_CRYPT_CPUS, DMCRYPT_SUBMIT_FROM_CRYPT_CPUS },
		{ CRYPT_ACTIVATE_NO_READ_WORKQUEUE, DMCRYPT_NO_READ_WORKQUEUE },
		{ CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE, DMCRYPT_NO_WRITE_WORKQUEUE },
	};
	uint32_t f = 0;
	unsigned dm = 0;

	if (crypt_persistent_flags_get(cd, CRYPT_FLAGS_ACTIVATION, &f) < 0)
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (f & map[i].crypt)
			dm |= map[i].dm;
	return dm;
}

int luks_read(const char *device, struct luks_info *ret)
{
	return luks_read_reason(device, ret, NULL);
}

int luks_read_reason(const char *device, struct luks_info *ret, const char **ret_reason)
{
	const char *reason = "the LUKS header is malformed";
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct luks_info info = { .token = -1 };
	const char *c, *m, *u;
	int r;

	r = luks_open(device, &cd);
	if (r < 0)
		return r;
	c = crypt_get_cipher(cd);
	m = crypt_get_cipher_mode(cd);
	u = crypt_get_uuid(cd);
	if (!c || !m || !u)
		return -EBADMSG;
	snprintf(info.type, sizeof(info.type), "%s", crypt_get_type(cd));
	snprintf(info.uuid, sizeof(info.uuid), "%s", u);
	r = snprintf(info.cipher, sizeof(info.cipher), "%s-%s", c, m);
	if (r < 0 || (size_t) r >= sizeof(info.cipher))
		return -EBADMSG;
	info.key_size = (size_t) crypt_get_volume_key_size(cd);
	info.data_offset = crypt_get_data_offset(cd);
	info.iv_offset = crypt_get_iv_offset(cd);
	info.sector_size = (unsigned) crypt_get_sector_size(cd);
	if (info.sector_size == 0)
		info.sector_size = 512;
	for (int k = 0; k < crypt_keyslot_max(crypt_get_type(cd)); k++) {
		crypt_keyslot_info ki = crypt_keyslot_status(cd, k);
		if (ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST)
			info.keyslots++;
	}
	if (streq(info.type, "LUKS2")) {
		info.dm_flags = persistent_dm_flags(cd);
		r = token_read(cd, &info, &reason);
		if (r < 0) {
			if (ret_reason)
				*ret_reason = reason;
			return r;
		}
	}
	r = fingerprint(cd, info.uuid, info.fingerprint);
	if (r < 0)
		return r;
	*ret = info;
	return 0;
}

int luks_verify_key(const char *device, const void *key, size_t len)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	int r;

	r = luks_open(device, &cd);
	if (r < 0)
		return r;
	r = crypt_volume_key_verify(cd, key, len);
	return r < 0 ? -EPERM : 0;
}

static int token_json(const char *key_id, const char *source, size_t key_size, char *buf,
		      size_t size)
{
	struct token t = { .key_size = key_size };

	if (!keyid_is_valid(key_id) || strlen(source) >= sizeof(t.source))
		return -EINVAL;
	memcpy(t.key_id, key_id, strlen(key_id) + 1);
	memcpy(t.source, source, strlen(source) + 1);
	return token_format(&t, buf, size);
}

int luks_format(const char *device, const void *key, size_t len, const char *key_id,
		const char *source)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct crypt_params_luks2 params = { .label = "keyscope" };
	char token[512];
	uint64_t sectors;
	unsigned lbs;
	int r;

	if (len != 32 && len != 64)
		return -EINVAL;
	r = token_json(key_id, source, len, token, sizeof(token));
	if (r < 0)
		return r;
	r = blockdev_size(device, &sectors, &lbs);
	if (r < 0)
		return r;
	/* libcryptsetup only warns when no data would follow the header; attach refuses it. */
	if (sectors < LUKS_FORMAT_MIN_SECTORS)
		return -ENOSPC;
	/* 4096-byte sectors where the device allows: fewer IVs, aligned I/O. */
	params.sector_size = (lbs <= 4096 && sectors % 8 == 0) ? 4096 : 512;
	r = crypt_init(&cd, device);
	if (r < 0)
		return r;
	if (!getenv("KEYSCOPE_CRYPT_DEBUG"))
		crypt_set_log_callback(cd, crypt_log_quiet, NULL);
	/* The volume key is a random 256- or 512-bit key, not a password: its digest needs no
	 * calibrated PBKDF2 (125 ms of it at every first attach), the minimum will do. */
	struct crypt_pbkdf_type pbkdf = {
		.type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = 1000,
		.flags = CRYPT_PBKDF_NO_BENCHMARK,
	};
	r = crypt_set_pbkdf_type(cd, &pbkdf);
	if (r < 0)
		return r;
	r = crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, key, len, &params);
	if (r < 0)
		return r;
	r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, token);
	return r < 0 ? r : 0;
}

int luks_set_token(const char *device, const char *key_id, const char *source, size_t key_size)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct luks_info info = { .token = -1 };
	char token[512];
	int r;

	r = luks_open(device, &cd);
	if (r < 0)
		return r;
	if (!streq(crypt_get_type(cd), CRYPT_LUKS2))
		return -EMEDIUMTYPE;
	info.key_size = (size_t) crypt_get_volume_key_size(cd);
	r = token_read(cd, &info, &(const char *) { NULL });
	if (r < 0)
		return r;
	/* A header without keyslot and token (a format killed before its token) records no
	 * size: the caller's, whose key the digest has accepted, is the one. */
	if (info.key_size != 0 && info.key_size != key_size)
		return -EINVAL;
	r = token_json(key_id, source, key_size, token, sizeof(token));
	if (r < 0)
		return r;
	r = crypt_token_json_set(cd, info.token >= 0 ? info.token : CRYPT_ANY_TOKEN, token);
	return r < 0 ? r : 0;
}

int luks_volume_key_from_passphrase(const char *device, const void *pass, size_t len,
				    struct secret_buf *ret)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	_cleanup_secret_buf_ struct secret_buf vk = {};
	size_t vk_size;
	int r;

	r = luks_open(device, &cd);
	if (r < 0)
		return r;
	vk_size = (size_t) crypt_get_volume_key_size(cd);
	r = secret_buf_new(vk_size, &vk);
	if (r < 0)
		return r;
	r = crypt_volume_key_get(cd, CRYPT_ANY_SLOT, (char *) vk.data, &vk_size, pass, len);
	if (r < 0)
		return r == -EPERM || r == -ENOENT ? -EPERM : r;
	vk.len = vk_size;
	*ret = vk;
	vk = (struct secret_buf) {}; /* transferred */
	return 0;
}

int luks_keyslot_add(const char *device, const void *vk, size_t vk_len, const void *pass,
		     size_t len)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	int r;

	r = luks_open(device, &cd);
	if (r < 0)
		return r;
	if (!streq(crypt_get_type(cd) ?: "", CRYPT_LUKS2))
		return -EMEDIUMTYPE;
	r = crypt_volume_key_verify(cd, vk, vk_len);
	if (r < 0)
		return r == -EPERM || r == -EINVAL ? -EPERM : r;
	/* No crypt_set_pbkdf_type(): the defaults are cryptsetup's own (luksAddKey's). */
	return crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, vk, vk_len, pass, len);
}

int luks_keyslots_destroy(const char *device)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	int r, n = 0, max;

	r = luks_open(device, &cd);
	if (r < 0)
		return r;
	max = crypt_keyslot_max(crypt_get_type(cd));
	for (int i = 0; i < max; i++) {
		crypt_keyslot_info ki = crypt_keyslot_status(cd, i);

		if (ki != CRYPT_SLOT_ACTIVE && ki != CRYPT_SLOT_ACTIVE_LAST &&
		    ki != CRYPT_SLOT_UNBOUND)
			continue;
		r = crypt_keyslot_destroy(cd, i);
		if (r < 0)
			return r;
		n++;
	}
	return n;
}

int device_probe_content(const char *device, char *what, size_t size)
{
	_cleanup_(blkid_free_probep) blkid_probe pr = blkid_new_probe_from_filename(device);
	const char *type = NULL, *usage = NULL;
	int r;

	if (!pr)
		return -errno ?: -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	r = blkid_do_safeprobe(pr);
	if (r == 1)
		return 0;
	if (r < 0) {
		snprintf(what, size, "more than one signature (ambiguous)");
		return 1;
	}
	if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0) {
		(void) blkid_probe_lookup_value(pr, "USAGE", &usage, NULL);
		if (streq(type, "crypto_LUKS"))
			snprintf(what, size, "a LUKS header");
		else
			snprintf(what, size, "%s %s", type,
				 usage && streq(usage, "filesystem") ? "file system" : usage ?: "data");
		return 1;
	}
	if (blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL) == 0) {
		snprintf(what, size, "a %s partition table", type);
		return 1;
	}
	snprintf(what, size, "an unknown signature");
	return 1;
}
