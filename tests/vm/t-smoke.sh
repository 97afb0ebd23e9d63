#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm:
# Quick mode: the guest runs the Debian kernel with dm-crypt loaded and a device-mapper
# control node that answers.
set -eu
. "${KEYSCOPE_TOP:?runs in the test guest: tests/vm/run $0}/tests/vm/lib.sh"

[ "$KEYSCOPE_VM" = quick ] || vm_die "KEYSCOPE_VM is $KEYSCOPE_VM, want quick"
kernel=$(uname -r)
echo "kernel: $kernel"
case $kernel in
*-amd64) ;;
*) vm_die "kernel $kernel is not the Debian guest kernel (the script ran on the host?)" ;;
esac
[ -d /sys/module/dm_crypt ] || vm_die "dm_crypt is not loaded (/sys/module/dm_crypt)"
echo "dm_crypt: loaded"
[ -c /dev/mapper/control ] || vm_die "/dev/mapper/control is missing"
v=$(dmsetup version) || vm_die "dmsetup version failed"
echo "$v"
echo "$v" | grep -q '^Driver version: *4\.' || vm_die "the device-mapper driver did not answer"
[ "$(id -u)" = 0 ] || vm_die "not root"
[ "${DM_DISABLE_UDEV-}" = 1 ] || vm_die "DM_DISABLE_UDEV is not 1 in quick mode"
# The host's root is read-only underneath; the guest writes into its own overlay.
touch /etc/keyscope-vm-smoke && rm /etc/keyscope-vm-smoke || vm_die "the guest root is not writable"
