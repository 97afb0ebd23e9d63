#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk cow:32M
# A dm-snapshot of an attached volume joins the volume's scope: the same kernel key (same
# serial), two holders, the same data, and no fetch from the key source and no key check
# (the header was verified once). Writes to the snapshot leave the origin unchanged.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

vol=$(vm_disk vol)
cow=$(vm_disk cow)
ks_start
id=$(ks key create)
ks format "$vol" --key "$id" >/dev/null
ks attach "$vol" --name origin >/dev/null
yes keyscope-origin-data | head -c 1048576 >"$KS_DIR/plain"
dd if="$KS_DIR/plain" of=/dev/mapper/origin bs=64k oflag=direct status=none
sync
serial=$(keyctl search @u logon "keyscope:$id")

# A read-only point-in-time view of the raw (encrypted) disk, as a storage back end makes one.
dmsetup create snapraw --table "0 $(blockdev --getsz "$vol") snapshot $vol $cow N 8"
out=$(ks --json attach /dev/mapper/snapraw --name snap)
echo "$out"
[ "$(ks_field "$out" serial)" = "$serial" ] || vm_die "snapshot got another kernel key"
[ "$(ks_field "$out" holders)" = 2 ] || vm_die "snapshot did not add a holder"
[ "$(ks_field "$out" fetches)" = 1 ] || vm_die "snapshot attach fetched the key again"
grep -c "Installed keyscope:$id" "$KS_LOG" | grep -qx 1 || vm_die "key installed twice"
dd if=/dev/mapper/snap bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "snapshot does not read the origin's data"
echo "snapshot: same key serial $serial, 2 holders, 1 fetch in all, same data"

# Writes to the snapshot stay in the snapshot.
yes snapshot-only-write | head -c 65536 | dd of=/dev/mapper/snap bs=64k oflag=direct status=none
dd if=/dev/mapper/origin bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "a write to the snapshot changed the origin"
dd if=/dev/mapper/snap bs=64k count=1 iflag=direct status=none | grep -q snapshot-only-write ||
	vm_die "the snapshot did not keep its write"

ks detach snap | grep -q "1 holders left" || vm_die "detach of the snapshot"
[ "$(keyctl search @u logon "keyscope:$id")" = "$serial" ] || vm_die "key gone with a holder left"
ks detach origin
keyctl search @u logon "keyscope:$id" >/dev/null 2>&1 && vm_die "key left after the last detach"
dmsetup remove snapraw
echo ok
