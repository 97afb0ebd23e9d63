#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol1:64M
# dm-crypt opened by keyring reference: a 64-byte logon key in @u, a crypt table that names it
# (:64:logon:test:vol1) instead of carrying it, a pattern written through the mapping that reads
# back from the mapping and is not on the raw disk. The key bytes never touch argv or a file.
set -eu
. "${KEYSCOPE_TOP:?runs in the test guest: tests/vm/run $0}/tests/vm/lib.sh"

dev=$(vm_disk vol1)
sectors=$(blockdev --getsz "$dev")
name=keyscope-vm-x
pattern=keyscope-vm-test-pattern-0123456789abcdef
work=$(mktemp -d)
key=

cleanup() {
	dmsetup remove "$name" 2>/dev/null || true
	dmsetup remove "$name-2" 2>/dev/null || true
	[ -z "$key" ] || keyctl invalidate "$key" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# dm-crypt looks the key up through the keyrings of the process that loads the table.
keyctl link @u @s
key=$(head -c 64 /dev/urandom | keyctl padd logon test:vol1 @u)
echo "logon key test:vol1 is $key"
desc=$(keyctl rdescribe "$key")
case $desc in
"logon;"*";test:vol1") ;;
*) vm_die "key $key is not a logon key named test:vol1: $desc" ;;
esac
# The point of logon keys: user space cannot read them back.
keyctl pipe "$key" >/dev/null 2>&1 && vm_die "the logon key's payload can be read from user space"

# The table must carry exactly the key's size: :32: for a 64-byte key is refused.
dmsetup create "$name-2" --table "0 $sectors crypt aes-xts-plain64 :32:logon:test:vol1 0 $dev 0" \
	2>/dev/null && vm_die "a :32: reference to a 64-byte key was accepted"

dmsetup create "$name" --table "0 $sectors crypt aes-xts-plain64 :64:logon:test:vol1 0 $dev 0"
table=$(dmsetup table --showkeys "$name")
echo "table: $table"
case $table in
*" crypt aes-xts-plain64 :64:logon:test:vol1 0 "*) ;;
*) vm_die "the live table does not reference the key: $table" ;;
esac

# 1 MiB of a known pattern through the mapping, around the page cache both ways.
yes "$pattern" | head -c 1048576 > "$work/plain"
dd if="$work/plain" of="/dev/mapper/$name" bs=64k oflag=direct status=none
dd if="/dev/mapper/$name" of="$work/back" bs=64k count=16 iflag=direct status=none
cmp -s "$work/plain" "$work/back" || vm_die "the mapping did not read back what was written"
echo "read back 1 MiB through /dev/mapper/$name"

dd if="$dev" of="$work/raw" bs=64k count=16 iflag=direct status=none
grep -q "$pattern" "$work/raw" && vm_die "the pattern is on the raw disk in plaintext"
cmp -s -n 1048576 /dev/zero "$work/raw" && vm_die "nothing was written to the raw disk"
echo "raw disk holds ciphertext, not the pattern"

# Without the key no new table loads (the live mapping keeps working on its copy).
dmsetup remove "$name"
keyctl invalidate "$key"
key=
dmsetup create "$name" --table "0 $sectors crypt aes-xts-plain64 :64:logon:test:vol1 0 $dev 0" \
	2>/dev/null && vm_die "a table loaded after its key was invalidated"
dmsetup info "$name" >/dev/null 2>&1 && vm_die "a mapping is left behind"
dmsetup info "$name-2" >/dev/null 2>&1 && vm_die "the refused :32: mapping is left behind"
keyctl search @u logon test:vol1 >/dev/null 2>&1 && vm_die "the key is still in @u"
echo "mapping and key removed"
