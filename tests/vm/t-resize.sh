#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M
# resize reloads the table at the device's new size with the same keyring reference: no
# fetch, data intact, the key never leaves the kernel.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

disk=$(vm_disk vol)
# A volume that can grow: a linear mapping over the first 32 MiB of the disk.
dmsetup create grow --table "0 65536 linear $disk 0"
ks_start
id=$(ks key create)
ks format /dev/mapper/grow --key "$id" >/dev/null
ks attach /dev/mapper/grow --name vol >/dev/null
yes keyscope-resize | head -c 1048576 >"$KS_DIR/plain"
dd if="$KS_DIR/plain" of=/dev/mapper/vol bs=64k oflag=direct status=none
before=$(blockdev --getsz /dev/mapper/vol)
fetches=$(ks --json scope list | tr -d ' \n' | sed -n 's/.*"fetches":\([0-9]*\).*/\1/p')

dmsetup reload grow --table "0 131072 linear $disk 0"
dmsetup resume grow
ks resize vol
after=$(blockdev --getsz /dev/mapper/vol)
echo "resized from $before to $after sectors"
[ "$after" -eq $((before + 65536)) ] || vm_die "expected $((before + 65536)) sectors, got $after"
dmsetup table --showkeys vol | grep -q ":64:logon:keyscope:$id " || vm_die "reference lost"
dd if=/dev/mapper/vol bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "data changed by resize"
now=$(ks --json scope list | tr -d ' \n' | sed -n 's/.*"fetches":\([0-9]*\).*/\1/p')
[ "$now" = "$fetches" ] || vm_die "resize fetched the key ($fetches -> $now)"
ks_expect_fail "no volume named 'nope'" ks resize nope

# A read-only attachment stays read-only across a resize.
ks attach /dev/mapper/grow --name ro --read-only >/dev/null
dmsetup reload grow --table "0 98304 linear $disk 0"
dmsetup resume grow
ks resize ro >/dev/null
dmsetup info ro | grep -q 'State: *ACTIVE (READ-ONLY)' || vm_die "resize made a read-only volume writable"
ks detach ro >/dev/null
ks detach vol >/dev/null
dmsetup remove grow
echo ok
