#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk other:64M --disk empty:16M
# Each failure gives its message and leaves device-mapper, the kernel's keyscope keys and the
# state directory exactly as they were: wrong key, a volume claiming another's key-id, wrong
# key size, busy device, name clash, missing device, no LUKS header without --plain.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

vol=$(vm_disk vol)
other=$(vm_disk other)
empty=$(vm_disk empty)
ks_start
a=$(ks key create)
b=$(ks key create)
b256=$(ks key create --bits 256)
ks format "$vol" --key "$a" >/dev/null
ks format "$other" --key "$b" >/dev/null

# A different volume claiming key-id a in its token (as a crafted or mixed-up header would).
cryptsetup token export --token-id 0 "$other" | sed "s/$b/$a/" >"$KS_DIR/tok"
cryptsetup token import --token-id 0 --json-file "$KS_DIR/tok" --token-replace "$other"
ks_expect_fail "key $a does not open the LUKS header of $other" ks attach "$other" --name x
# ... also while key a is installed and verified for the right volume.
ks attach "$vol" --name data >/dev/null
ks_expect_fail "does not open the LUKS header" ks attach "$other" --name x
ks_expect_fail "names key $a, not $b" ks attach "$vol" --name y --key "$b"
ks_expect_fail "does not open the LUKS header" ks rebind "$vol" --key "$b"

# name clash (ours, and a foreign dm device), missing device, not a block device
ks_expect_fail "named data exists already" ks attach "$other" --name data
dmsetup create foreign --table "0 8 linear $empty 0"
ks_expect_fail "named foreign exists already" ks attach "$vol" --name foreign
ks_expect_fail "No such file or directory" ks attach /dev/nonexistent --name z
ks_expect_fail "is not a block device" ks attach /etc/hostname --name z
ks_expect_fail "must be an absolute path" ks attach vda --name z
ks_expect_fail "not a valid volume name" ks attach "$vol" --name "bad name"

# no LUKS header and no --plain; wrong key size for a plain table
ks_expect_fail "has no LUKS header" ks attach "$empty" --name z
ks_expect_fail "is 64 bytes but the table for z needs 32" ks attach "$empty" --name z --plain --key "$a" --key-size 256
ks_expect_fail "is 32 bytes but the table for z needs 64" ks attach "$empty" --name z --plain --key "$b256" --key-size 512
ks_expect_fail "no key nope in the key store" ks attach "$empty" --name z --plain --key nope

# busy: a mounted or open mapping cannot be detached, and a busy device cannot be formatted
sleep 60 </dev/mapper/data &
holder=$!
sleep 0.2
ks_expect_fail "/dev/mapper/data is in use" ks detach data
kill $holder
wait $holder 2>/dev/null || true
ks_expect_fail "is in use" ks format "$vol" --key "$a" --force
ks_expect_fail "no volume named 'nothing'" ks detach nothing

# plain attach works and names the right DM UUID
ks attach "$empty" --name plain --plain --key "$b256" --key-size 256 >/dev/null
dmsetup info -c --noheadings -o uuid plain | grep -qx CRYPT-PLAIN-plain || vm_die "plain DM UUID"
cryptsetup status plain | grep -q 'type: *PLAIN' || vm_die "cryptsetup status plain"
ks detach plain
ks detach data
dmsetup remove foreign
! grep -q 'logon .* keyscope:' /proc/keys || vm_die "keys left: $(grep 'logon .* keyscope:' /proc/keys)"
echo ok
