/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "event.h"
#include "log.h"

/* MESSAGE_IDs are fixed for ever: docs/keyscope.catalog explains each, t-docs checks both. */
static const struct {
	const char *name;
	const char *id;
} events[_EVENT_MAX] = {
	[EVENT_KEY_INSTALLED] = { "key-installed", "1cd9f7de6d344c608bf78b93b307f99c" },
	[EVENT_KEY_INVALIDATED] = { "key-invalidated", "d9549808b08e46b7bc4a951346b55488" },
	[EVENT_KEY_HANDED_OUT] = { "key-handed-out", "18dd0db7c94541a9ae17c8cb1fc60b88" },
	[EVENT_KEY_REQUEST_REFUSED] = { "key-request-refused", "6f4cc0042f1e4dfb918662880d52730c" },
	[EVENT_VOLUME_ATTACHED] = { "volume-attached", "5286561ca8e34885acefa4ba67775847" },
	[EVENT_VOLUME_DETACHED] = { "volume-detached", "2364128bc0144ba6887aed41097b3d18" },
	[EVENT_VOLUME_RESIZED] = { "volume-resized", "9b138e0cf2564c14ab4357ff095d78d9" },
	[EVENT_VOLUME_REBOUND] = { "volume-rebound", "8ea18051159e4e31ae196896cb97ab67" },
	[EVENT_VOLUME_FORMATTED] = { "volume-formatted", "ece444c8a13f43e5aa93189e6a5b8467" },
	[EVENT_ATTACH_FAILED] = { "attach-failed", "156a33d5d0c04e07b4822e8bf71841b6" },
	[EVENT_REQUEST_REFUSED] = { "request-refused", "2914b1f33a474042a14680716a33933f" },
	[EVENT_DELEGATION_WITHDRAWN] = { "delegation-withdrawn", "8a31f1eb77db4ec8ae709de6b3c21e72" },
	[EVENT_CACHE_USED_OFFLINE] = { "cache-used-offline", "2bde9e9097e54cda85440e8614c83e86" },
	[EVENT_VOLUME_PENDING] = { "volume-pending", "c5c747072cdf4691aeae6dd24399f905" },
	[EVENT_KEY_RELEASED] = { "key-released", "9818a51594ea4d0aa1b57fd4f19d83fe" },
};

const char *event_name(enum event_kind kind)
{
	return (unsigned) kind < _EVENT_MAX ? events[kind].name : NULL;
}

const char *event_message_id(enum event_kind kind)
{
	return (unsigned) kind < _EVENT_MAX ? events[kind].id : NULL;
}

bool log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

/* Appends "NAME=value" to the vector when value is set; returns the new count. */
static size_t field(struct iovec *iov, size_t n, char *buf, size_t size, const char *name,
		    const char *value)
{
	int r;

	if (!value || !*value)
		return n;
	r = snprintf(buf, size, "%s=%s", name, value);
	if (r < 0 || (size_t) r >= size)
		return n;	/* a field longer than its bound is left out, never cut */
	iov[n].iov_base = buf;
	iov[n].iov_len = (size_t) r;
	return n + 1;
}

static void send_journal(enum event_kind kind, int level, const struct event_fields *f,
			 const char *file, int line, const char *message)
{
	char b[10][640], uid[24], pid[24], prio[4];
	struct iovec iov[10];
	size_t n = 0;

	(void) snprintf(prio, sizeof(prio), "%d", level);
	n = field(iov, n, b[n], sizeof(b[n]), "MESSAGE", message);
	n = field(iov, n, b[n], sizeof(b[n]), "MESSAGE_ID", events[kind].id);
	n = field(iov, n, b[n], sizeof(b[n]), "PRIORITY", prio);
	n = field(iov, n, b[n], sizeof(b[n]), "KEYSCOPE_EVENT", events[kind].name);
	if (f) {
		n = field(iov, n, b[n], sizeof(b[n]), "KEYSCOPE_KEY_ID", f->key_id);
		n = field(iov, n, b[n], sizeof(b[n]), "KEYSCOPE_VOLUME", f->volume);
		n = field(iov, n, b[n], sizeof(b[n]), "KEYSCOPE_DEVICE", f->device);
		n = field(iov, n, b[n], sizeof(b[n]), "KEYSCOPE_ERROR", f->error);
		if (f->has_peer) {
			(void) snprintf(uid, sizeof(uid), "%" PRIu32, (uint32_t) f->peer_uid);
			(void) snprintf(pid, sizeof(pid), "%" PRId32, (int32_t) f->peer_pid);
			n = field(iov, n, b[n], sizeof(b[n]), "KEYSCOPE_PEER_UID", uid);
			n = field(iov, n, b[n], sizeof(b[n]), "KEYSCOPE_PEER_PID", pid);
		}
	}
	if (sd_journal_sendv(iov, (int) n) < 0)
		/* journald gone (shutdown): the text line still reaches the stream or console. */
		log_internal(level, 0, file, line, "%s", message);
}

void log_event_internal(enum event_kind kind, int level, const struct event_fields *f,
			const char *file, int line, const char *fmt, ...)
{
	char message[512];
	va_list ap;
	int r;

	if ((unsigned) kind >= _EVENT_MAX || level > log_get_max_level())
		return;
	va_start(ap, fmt);
	r = vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	if (log_stderr_is_journal())
		send_journal(kind, level, f, file, line, message);
	else
		log_internal(level, 0, file, line, "%s", message);
}
