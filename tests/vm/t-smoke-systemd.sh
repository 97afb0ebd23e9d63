#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --systemd --disk smoke:16M
# --systemd mode: the host's systemd is PID 1, systemd-udevd runs and has named the test disk,
# dm-crypt is loaded and device-mapper answers.
set -eu
. "${KEYSCOPE_TOP:?runs in the test guest: tests/vm/run $0}/tests/vm/lib.sh"

[ "$KEYSCOPE_VM" = systemd ] || vm_die "KEYSCOPE_VM is $KEYSCOPE_VM, want systemd"
kernel=$(uname -r)
echo "kernel: $kernel"
case $kernel in
*-amd64) ;;
*) vm_die "kernel $kernel is not the Debian guest kernel" ;;
esac
pid1=$(cat /proc/1/comm)
echo "PID 1: $pid1"
[ "$pid1" = systemd ] || vm_die "PID 1 is $pid1, want systemd"
state=$(systemctl is-active systemd-udevd.service) || true
[ "$state" = active ] || vm_die "systemd-udevd is '$state', want active"
echo "systemd-udevd: $state"
unit=$(sed -n 's|^0::/system.slice/||p' /proc/self/cgroup)
echo "running as: ${unit:-?}"
[ "$unit" = keyscope-vm-test.service ] || vm_die "the script does not run as keyscope-vm-test.service"
dev=$(vm_disk smoke)
link=$(readlink -f /dev/disk/by-id/virtio-smoke)
[ "$link" = "$dev" ] || vm_die "udev's /dev/disk/by-id/virtio-smoke is $link, want $dev"
echo "udev: /dev/disk/by-id/virtio-smoke -> $dev"
[ -d /sys/module/dm_crypt ] || vm_die "dm_crypt is not loaded (/sys/module/dm_crypt)"
echo "dm_crypt: loaded"
v=$(dmsetup version) || vm_die "dmsetup version failed"
echo "$v"
echo "$v" | grep -q '^Driver version: *4\.' || vm_die "the device-mapper driver did not answer"
