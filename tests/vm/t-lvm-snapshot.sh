#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --systemd --disk pv:160M
# An LVM snapshot (lvcreate -s, as block storage back ends snapshot volumes) of an attached
# volume attaches on the same kernel key with two holders and no fetch, reads the same data,
# and writes to it leave the origin unchanged. systemd is PID 1 and udev runs.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

pv=$(vm_disk pv)
keyctl link @u @s	# this unit's session keyring is private: reach @u as a root shell does
pvcreate -q "$pv"
vgcreate -q ksvg "$pv"
lvcreate -q -y -L 64M -n vol ksvg
vm_settle
ks_start
id=$(ks key create)
ks format /dev/ksvg/vol --key "$id" >/dev/null
ks attach /dev/ksvg/vol --name lvvol >/dev/null
yes keyscope-lvm | head -c 1048576 >"$KS_DIR/plain"
dd if="$KS_DIR/plain" of=/dev/mapper/lvvol bs=64k oflag=direct status=none
sync
serial=$(keyctl search @u logon "keyscope:$id")

lvcreate -q -y -s -L 32M -n snap ksvg/vol
vm_settle
out=$(ks --json attach /dev/ksvg/snap --name lvsnap)
echo "$out"
[ "$(ks_field "$out" serial)" = "$serial" ] || vm_die "snapshot got another key"
[ "$(ks_field "$out" holders)" = 2 ] || vm_die "snapshot holders: $out"
[ "$(ks_field "$out" fetches)" = 1 ] || vm_die "snapshot fetched the key"
dd if=/dev/mapper/lvsnap bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "snapshot data differs"
yes snap-only | head -c 65536 | dd of=/dev/mapper/lvsnap bs=64k oflag=direct status=none
dd if=/dev/mapper/lvvol bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "write to the snapshot changed the origin"
cryptsetup status lvsnap | grep -q 'key location: *keyring' || vm_die "cryptsetup status lvsnap"
ks detach lvsnap >/dev/null
ks detach lvvol >/dev/null
keyctl search @u logon "keyscope:$id" >/dev/null 2>&1 && vm_die "key left"
lvremove -q -y ksvg/snap ksvg/vol
echo "LVM snapshot: same serial $serial, 2 holders, 1 fetch"
