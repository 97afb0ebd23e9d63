#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --systemd
# "Volume attach" fires real udev events: a virtio disk hot-plugged through the qemu monitor
# (vm_hotplug) and a loop device both reach udev as "add" events and get their symlinks.
set -eu
. "${KEYSCOPE_TOP:?runs in the test guest: tests/vm/run $0}/tests/vm/lib.sh"

work=$(mktemp -d)
loop=
mon=
cleanup() {
	[ -z "$mon" ] || kill "$mon" 2>/dev/null || true
	[ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

udevadm monitor --udev --subsystem-match=block > "$work/events" 2>&1 &
mon=$!
n=0
until grep -q '^UDEV - the event which udev sends' "$work/events"; do
	n=$((n + 1))
	[ $n -le 100 ] || vm_die "udevadm monitor did not start"
	sleep 0.1
done

dev=$(vm_hotplug hot1 32M)
echo "hot-plugged disk hot1 is $dev"
[ "$(readlink -f /dev/disk/by-id/virtio-hot1)" = "$dev" ] ||
	vm_die "udev made no /dev/disk/by-id/virtio-hot1 for $dev"

truncate -s 16M "$work/img"
loop=$(losetup --find --show "$work/img")
echo "loop device is $loop"
vm_settle
[ -e "/dev/disk/by-id/virtio-hot1" ] || vm_die "virtio-hot1 link went away"
sleep 0.5
kill "$mon"
mon=
sed 's/^/  /' "$work/events"
grep -q "^UDEV  *\[[0-9.]*\] add  *.*/block/${dev#/dev/} (block)$" "$work/events" ||
	vm_die "udev saw no add event for $dev"
grep -q "^UDEV  *\[[0-9.]*\] \(add\|change\)  *.*/block/${loop#/dev/} (block)$" "$work/events" ||
	vm_die "udev saw no event for $loop"
echo "udev saw both"
