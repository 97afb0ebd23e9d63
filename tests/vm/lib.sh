# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for scripts that run inside the test guest (tests/vm/run). Source it:
#	. "$KEYSCOPE_TOP/tests/vm/lib.sh"
# POSIX sh. tests/vm/run exports KEYSCOPE_VM (quick or systemd), KEYSCOPE_VM_RESULTS (the share
# that carries results back) and KEYSCOPE_TOP (the checkout).
# shellcheck shell=sh

vm_die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# vm_skip REASON: end the test as skipped; tests/vm/check prints SKIP (REASON).
vm_skip() {
	echo "SKIP: $*"
	exit 77
}

[ -n "${KEYSCOPE_VM-}" ] && [ -d "${KEYSCOPE_VM_RESULTS-}" ] ||
	vm_die "this runs inside the test guest: tests/vm/run ${0##*/}"

# vm_settle: wait until udev has handled every event so far (no-op in quick mode: no udev).
vm_settle() {
	if [ "$KEYSCOPE_VM" = systemd ]; then
		udevadm settle --timeout=30 || vm_die "udevadm settle timed out"
	fi
}

# vm_disk_find SERIAL: print /dev/vdX of the virtio disk with SERIAL; 1 if there is none.
vm_disk_find() {
	for _f in /sys/block/*/serial; do
		[ -r "$_f" ] || continue
		if [ "$(cat "$_f" 2>/dev/null)" = "$1" ]; then
			_f=${_f%/serial}
			echo "/dev/${_f##*/}"
			return 0
		fi
	done
	return 1
}

# vm_disk SERIAL: print /dev/vdX of the disk given as `--disk SERIAL:SIZE`, once its node is
# there (and, in systemd mode, once udev has made /dev/disk/by-id/virtio-SERIAL).
vm_disk() {
	_d=$(vm_disk_find "$1") || vm_die "no virtio disk with serial $1 (did the test ask for --disk $1:SIZE?)"
	_n=0
	while [ ! -b "$_d" ] || { [ "$KEYSCOPE_VM" = systemd ] && [ ! -e "/dev/disk/by-id/virtio-$1" ]; }; do
		_n=$((_n + 1))
		[ $_n -le 300 ] || vm_die "disk $1 ($_d) has no device node after 30 s"
		sleep 0.1
	done
	echo "$_d"
}

# vm_hotplug SERIAL SIZE: plug a new sparse virtio disk into the running guest through the
# qemu monitor (a real PCI hot-plug: the kernel and udev see an "add" event) and print its
# /dev/vdX. SIZE as truncate(1): 16M, 1G. A SERIAL that was plugged and unplugged before
# comes back with its contents (the same image; SIZE is then ignored).
vm_hotplug() {
	_q=$KEYSCOPE_VM_RESULTS/hotplug
	vm_disk_find "$1" >/dev/null && vm_die "a disk with serial $1 is already there"
	echo "$1 $2" > "$_q/$1.tmp" && mv "$_q/$1.tmp" "$_q/$1.req" ||
		vm_die "cannot ask the host for disk $1"
	_n=0
	until _d=$(vm_disk_find "$1"); do
		[ -e "$_q/$1.err" ] && vm_die "the host refused disk $1: $(cat "$_q/$1.err")"
		_n=$((_n + 1))
		[ $_n -le 300 ] || vm_die "hot-plugged disk $1 did not show up in 30 s"
		sleep 0.1
	done
	vm_disk "$1"
}

# vm_unplug SERIAL: remove the virtio disk with SERIAL (given with --disk, --disk-image or
# vm_hotplug) from the running guest through the qemu monitor (device_del: an ACPI eject, as
# when a volume is detached from a node; the kernel and udev see "remove" events) and wait up
# to 30 s until it is gone: its /sys/block entry and, in systemd mode, its by-id link, which
# udev removes once it has handled the disk's "remove".
vm_unplug() {
	_q=$KEYSCOPE_VM_RESULTS/hotplug
	_r=unplug.$$.$(date +%s%N)
	vm_disk_find "$1" >/dev/null || vm_die "there is no disk with serial $1 to unplug"
	echo "$1" > "$_q/$_r.tmp" && mv "$_q/$_r.tmp" "$_q/$_r.del" ||
		vm_die "cannot ask the host to unplug disk $1"
	_n=0
	while vm_disk_find "$1" >/dev/null ||
		{ [ "$KEYSCOPE_VM" = systemd ] && [ -e "/dev/disk/by-id/virtio-$1" ]; }; do
		[ -e "$_q/$_r.err" ] && vm_die "the host refused to unplug disk $1: $(cat "$_q/$_r.err")"
		_n=$((_n + 1))
		[ $_n -le 300 ] || vm_die "disk $1 was still there 30 s after its unplug"
		sleep 0.1
	done
}

# vm_host ACTION: asks the host to do ACTION (tests/vm/run runs KEYSCOPE_VM_HOST_HOOK ACTION;
# tests/vm/check's hook is tests/vm/host-hook) and waits up to 60 s for it; dies when the host
# could not. The host's output goes to stdout.
vm_host() {
	_q=$KEYSCOPE_VM_RESULTS/host
	_r=$1.$$.$(date +%s%N)
	echo "$1" > "$_q/$_r.tmp" && mv "$_q/$_r.tmp" "$_q/$_r.req" || vm_die "cannot ask the host for $1"
	_n=0
	until [ -e "$_q/$_r.done" ]; do
		_n=$((_n + 1))
		[ $_n -le 600 ] || vm_die "the host did not do '$1' in 60 s"
		sleep 0.1
	done
	cat "$_q/$_r.out" 2>/dev/null || true
	[ "$(cat "$_q/$_r.done")" = 0 ] || vm_die "the host failed '$1': $(cat "$_q/$_r.out" 2>/dev/null)"
}
