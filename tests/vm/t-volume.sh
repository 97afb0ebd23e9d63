#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk copy:64M
# format -> attach by keyring reference -> a pattern written through the mapping is not on the
# raw disk; the table names the key instead of carrying it; cryptsetup agrees; detach of the
# last holder removes the key; restart keeps keys and records; cryptsetup close behind the
# daemon's back is reconciled; clone-key + rebind gives the copy its own scope.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

vol=$(vm_disk vol)
copy=$(vm_disk copy)
pattern=keyscope-volume-pattern-5f0c1e
ks_start
id=$(ks key create)
ks format "$vol" --key "$id"
cryptsetup luksDump "$vol" >"$KS_DIR/dump"
grep -Eq '^Version:[[:space:]]+2$' "$KS_DIR/dump" || vm_die "not LUKS2: $(head -5 "$KS_DIR/dump")"
sed -n '/^Tokens:/,/^Digests:/p' "$KS_DIR/dump" | grep -q 'keyscope' || vm_die "no keyscope token"
sed -n '/^Keyslots:/,/^Tokens:/p' "$KS_DIR/dump" | grep -Eq '^ +[0-9]+: luks2' &&
	vm_die "format added a keyslot"
ks_expect_fail "holds a LUKS header" ks format "$vol" --key "$id"

out=$(ks --json attach "$vol" --name data)
echo "$out"
serial=$(ks_field "$out" serial)
[ "$(ks_field "$out" holders)" = 1 ] || vm_die "holders after attach: $out"
[ "$(keyctl search @u logon "keyscope:$id")" = "$serial" ] || vm_die "no kernel key $serial"

table=$(dmsetup table --showkeys data)
echo "table: $table"
mm=$(printf '%d:%d' "0x$(stat -c %t "$vol")" "0x$(stat -c %T "$vol")")
case $table in
*" crypt aes-xts-plain64 :64:logon:keyscope:$id 0 $mm "*) ;;
*) vm_die "table does not reference keyscope:$id: $table" ;;
esac
echo "$table" | grep -Eq '[0-9a-f]{64}' && vm_die "table carries a hex key"
dmsetup info -c --noheadings -o uuid data | grep -q '^CRYPT-LUKS2-[0-9a-f]\{32\}-data$' ||
	vm_die "DM UUID: $(dmsetup info -c --noheadings -o uuid data)"
cryptsetup status data | tee "$KS_DIR/status"
grep -q 'type: *LUKS2' "$KS_DIR/status" || vm_die "cryptsetup status: not LUKS2"
grep -q 'key location: *keyring' "$KS_DIR/status" || vm_die "cryptsetup status: key not in keyring"
grep -q 'sector size: *4096' "$KS_DIR/status" || vm_die "cryptsetup status: sector size"

yes "$pattern" | head -c 1048576 >"$KS_DIR/plain"
dd if="$KS_DIR/plain" of=/dev/mapper/data bs=64k oflag=direct status=none
dd if=/dev/mapper/data bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "mapping did not read back"
grep -q "$pattern" "$vol" && vm_die "plaintext on the raw disk"
echo "pattern through the mapping, ciphertext on $vol"

# Restart with the volume attached: key and record kept.
ks_stop
ks_start
[ "$(keyctl search @u logon "keyscope:$id")" = "$serial" ] || vm_die "key changed across restart"
ks status | grep -q "^data .* $id *1$" || vm_die "attachment not kept: $(ks status)"

# Detach of the last holder removes the key.
ks detach data
keyctl search @u logon "keyscope:$id" >/dev/null 2>&1 && vm_die "key left after last detach"
dmsetup info data >/dev/null 2>&1 && vm_die "mapping left after detach"

# cryptsetup close behind the daemon's back: the holder is released at the next status.
ks attach "$vol" --name data >/dev/null
cryptsetup close data
ks status | grep -q "vanished.* data" || vm_die "closed mapping not reported: $(ks status)"
keyctl search @u logon "keyscope:$id" >/dev/null 2>&1 && vm_die "key kept for a closed mapping"
ks attach "$vol" --name data >/dev/null
ks status | grep -q "vanished" && vm_die "a re-attached name is still listed as vanished"

# Closed behind our back and the name taken by another tool: detach must not remove theirs.
cryptsetup close data
dmsetup create data --table "0 8 linear $copy 0"
out=$(ks detach data 2>&1) && vm_die "detach of a foreign mapping succeeded: $out"
echo "$out" | grep -q "is not keyscope's mapping any more" || vm_die "detach message: $out"
dmsetup info data >/dev/null 2>&1 || vm_die "detach removed another tool's mapping"
keyctl search @u logon "keyscope:$id" >/dev/null 2>&1 && vm_die "holder kept for a foreign mapping"
dmsetup remove data

# clone-key: a full copy moves to a fresh key-id with the same material, no re-encryption.
dd if="$vol" of="$copy" bs=1M status=none
clone=$(ks key clone "$id")
ks rebind "$copy" --key "$clone"
cryptsetup token export --token-id 0 "$copy" | grep -q "\"key-id\":\"$clone\"" ||
	vm_die "token of the copy not rebound: $(cryptsetup token export --token-id 0 "$copy")"
ks attach "$vol" --name orig >/dev/null
ks attach "$copy" --name clone >/dev/null
s1=$(keyctl search @u logon "keyscope:$id")
s2=$(keyctl search @u logon "keyscope:$clone")
[ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" != "$s2" ] || vm_die "clone is not its own scope"
dd if=/dev/mapper/clone bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "clone does not read the data"
ks detach orig
ks key delete "$id"
ks detach clone
ks attach "$copy" --name clone >/dev/null || vm_die "clone does not attach after the original key was deleted"
dd if=/dev/mapper/clone bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "clone does not read the data after the original key was deleted"
ks detach clone
echo "clone-key: own scope, survives deleting the original key"
