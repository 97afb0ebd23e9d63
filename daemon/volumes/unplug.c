/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Devices that go away under an attachment (a disk unplugged, a volume detached from the node
 * by its hypervisor or storage): the kernel keeps the dm-crypt mapping of a vanished device,
 * which then fails every I/O, and with it keyscoped's record, the scope's holder and the kernel
 * key. Nothing asks keyscoped about a volume attached by hand or by os-brick, so it listens to
 * the kernel's uevents itself and reconciles its records after a block device's "remove"
 * (attachments_reconcile: an unused mapping is removed, an open one at its last close). A
 * declared volume's unit is stopped by systemd at the same time (BindsTo= its device); its
 * detach then finds the name among the vanished and succeeds.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attachments-internal.h"
#include "log.h"
#include "uevent.h"

#define UEVENT_BUF 8192

static int on_soon(sd_event_source *es, void *userdata)
{
	attachments_reconcile(userdata);
	return 0;
}

static void reconcile_soon(struct attachments *a)
{
	(void) sd_event_source_set_enabled(a->soon, SD_EVENT_ONESHOT);
}

static int on_uevent(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct attachments *a = userdata;
	char buf[UEVENT_BUF];

	for (;;) {
		struct sockaddr_nl from = {};
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *) &from,
				     &flen);

		if (n < 0 && errno == ENOBUFS) {
			reconcile_soon(a);	/* events were lost: one of them may have been ours */
			continue;
		}
		if (n < 0)
			break;
		/* Only the kernel's own messages (port 0); a forged one would only reconcile. */
		if (from.nl_pid == 0 && uevent_is_block_remove(buf, (size_t) n))
			reconcile_soon(a);
	}
	if (errno != EAGAIN && errno != EINTR) {
		log_warning_errno(-errno, "Reading kernel uevents failed (%m); unplugged volumes are "
				  "now noticed at the next call only.");
		a->uevents = sd_event_source_disable_unref(a->uevents);
	}
	return 0;
}

static int uevent_socket(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 /* the kernel's */ };
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			NETLINK_KOBJECT_UEVENT);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int attachments_watch(struct attachments *a, sd_event *event)
{
	int r, fd;

	r = sd_event_add_defer(event, &a->soon, on_soon, a);
	if (r < 0)
		return log_error_errno(r, "Failed to add an event source: %m");
	/* The first turn: a device may have gone while keyscoped was not running. */
	reconcile_soon(a);
	fd = uevent_socket();
	if (fd < 0) {
		log_warning_errno(fd, "Cannot listen to kernel uevents (%m); unplugged volumes are "
				  "noticed at the next call only, ignoring.");
		return 0;
	}
	r = sd_event_add_io(event, &a->uevents, fd, EPOLLIN, on_uevent, a);
	if (r < 0) {
		close(fd);
		log_warning_errno(r, "Failed to watch kernel uevents (%m), ignoring.");
		return 0;
	}
	(void) sd_event_source_set_io_fd_own(a->uevents, true);
	return 0;
}
