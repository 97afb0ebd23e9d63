#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --systemd --disk vol1:64M --disk vol2:64M
# Keys on demand, with nothing pre-loaded and no keyscopectl attach: keyscope's request-key
# drop-in is installed, keyscoped runs with a key in its store, and the two commands
#	keyctl request2 logon keyscope:<id> "volume=vol1" @s
#	dmsetup create ... crypt aes-xts-plain64 :64:logon:keyscope:<id> 0 <disk> 0
# open a dm-crypt volume: a pattern written through the mapping reads back and is not on the
# raw disk; a second upcall after the key is gone hands out the same key (the data reads back
# through a new mapping). The same two commands open a volume keyscopectl format made (LUKS2,
# volume key = the delegated key): keyscopectl attach reads back what they wrote. A failed
# request is rejected at once and logged in the journal. keyscopectl check reports everything
# ok in this guest.
# systemd mode: the kernel runs /sbin/request-key in the root of PID 1, which in quick mode is
# the initramfs, not the chroot the script runs in.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
# A session keyring of our own: keyscoped's keyring and the requested keys live in it.
if [ -z "${KS_RK_SESSION-}" ]; then
	KS_RK_SESSION=1 exec keyctl session - sh "$0" "$@"
fi

B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
dev=$(vm_disk vol1)
sectors=$(blockdev --getsz "$dev")
name=keyscope-rk
pattern=keyscope-request-key-pattern-0123456789abcdef
work=$(mktemp -d /run/keyscope-rk.XXXXXX)
sock=$work/keyscoped.sock
conf=/etc/request-key.d/keyscope.conf
dpid=

cleanup() {
	dmsetup remove "$name" 2>/dev/null || true
	dmsetup remove ks-attach-check 2>/dev/null || true
	[ -z "$dpid" ] || { kill "$dpid"; wait "$dpid" || true; }
	rm -f "$conf"
	rm -rf "$work"
}
trap cleanup EXIT

# keyscope's drop-in, as make install writes it, with the build's handler and this socket.
mkdir -p /etc/request-key.d
sed -e "s|/usr/libexec/keyscope/keyscope-request-key|$B/keyscope-request-key --socket $sock --log-file $work/handler.log|" \
	"$KEYSCOPE_TOP/kmod-helpers/keyscope.conf" >"$conf"
grep '^create' "$conf"

"$B/keyscoped" --socket "$sock" --state-dir "$work/state" --keyring @s --log-level debug \
	>"$work/keyscoped.log" 2>&1 &
dpid=$!
n=0
until [ -S "$sock" ] && "$B/keyscopectl" --socket "$sock" status >/dev/null 2>&1; do
	n=$((n + 1))
	[ $n -le 100 ] || vm_die "keyscoped did not start: $(tail -n 5 "$work/keyscoped.log")"
	sleep 0.1
done
grep "Kernel check" "$work/keyscoped.log" | sed 's/ (daemon\/kernel.c:[0-9]*)$//'
id=$("$B/keyscopectl" --socket "$sock" key create --bits 512)
echo "key-id $id in keyscoped's store; nothing in the kernel yet"
keyctl search @s logon "keyscope:$id" >/dev/null 2>&1 && vm_die "the key is in the kernel already"

echo "--- keyscopectl check"
"$B/keyscopectl" check || vm_die "keyscopectl check failed in the guest"

echo "--- the two commands"
t0=$(date +%s%N)
key=$(keyctl request2 logon "keyscope:$id" "volume=vol1" @s)
t1=$(date +%s%N)
echo "keyctl request2 -> key $key in $(( (t1 - t0) / 1000000 )) ms: $(keyctl rdescribe "$key")"
[ "$(keyctl rdescribe "$key")" = "logon;0;0;19010000;keyscope:$id" ] ||
	vm_die "unexpected key: $(keyctl rdescribe "$key")"
keyctl pipe "$key" >/dev/null 2>&1 && vm_die "the key's payload can be read from user space"
dmsetup create "$name" --table "0 $sectors crypt aes-xts-plain64 :64:logon:keyscope:$id 0 $dev 0"
table=$(dmsetup table --showkeys "$name")
echo "table: $table"
case $table in
*" crypt aes-xts-plain64 :64:logon:keyscope:$id 0 "*) ;;
*) vm_die "the live table does not reference the key: $table" ;;
esac

yes "$pattern" | head -c 1048576 >"$work/plain"
dd if="$work/plain" of="/dev/mapper/$name" bs=64k oflag=direct status=none
dd if="/dev/mapper/$name" of="$work/back" bs=64k count=16 iflag=direct status=none
cmp -s "$work/plain" "$work/back" || vm_die "the mapping did not read back what was written"
dd if="$dev" of="$work/raw" bs=64k count=16 iflag=direct status=none
grep -q "$pattern" "$work/raw" && vm_die "the pattern is on the raw disk in plaintext"
head -c 1048576 /dev/zero | cmp -s - "$work/raw" && vm_die "nothing was written to the raw disk"
echo "1 MiB through /dev/mapper/$name reads back; the raw disk holds ciphertext"

# Close everything; a new upcall hands out the same delegated key: the data reads back.
dmsetup remove "$name"
keyctl invalidate "$key"
key2=$(keyctl request2 logon "keyscope:$id" "volume=vol1 again" @s)
[ "$key2" != "$key" ] || vm_die "the second request returned the old key"
dmsetup create "$name" --table "0 $sectors crypt aes-xts-plain64 :64:logon:keyscope:$id 0 $dev 0"
dd if="/dev/mapper/$name" of="$work/back2" bs=64k count=16 iflag=direct status=none
cmp -s "$work/plain" "$work/back2" || vm_die "a second upcall gave another key"
dmsetup remove "$name"
keyctl invalidate "$key2"
echo "second upcall (key $key2): same key material, the data reads back"

echo "--- a keyscope-formatted volume (LUKS2), opened with the two commands"
dev2=$(vm_disk vol2)
id2=$("$B/keyscopectl" --socket "$sock" key create --bits 512)
"$B/keyscopectl" --socket "$sock" format "$dev2" --key "$id2"
keyctl search @s logon "keyscope:$id2" >/dev/null 2>&1 &&
	vm_die "format left keyscope:$id2 in the kernel: the request would need no upcall"
cryptsetup luksDump "$dev2" >"$work/dump"
seg=$(sed -n '/^Data segments:/,/^Keyslots:/p' "$work/dump")
offset=$(echo "$seg" | sed -n 's/^[[:space:]]*offset: \([0-9]*\) \[bytes\]$/\1/p')
ssize=$(echo "$seg" | sed -n 's/^[[:space:]]*sector: \([0-9]*\) \[bytes\]$/\1/p')
cipher=$(echo "$seg" | sed -n 's/^[[:space:]]*cipher: \(.*\)$/\1/p')
[ -n "$offset" ] && [ -n "$ssize" ] && [ "$cipher" = aes-xts-plain64 ] ||
	vm_die "cannot read the data segment: $seg"
len=$(( $(blockdev --getsz "$dev2") - offset / 512 ))
key3=$(keyctl request2 logon "keyscope:$id2" "volume=vol2" @s)
dmsetup create "$name" --table \
	"0 $len crypt $cipher :64:logon:keyscope:$id2 0 $dev2 $((offset / 512)) 1 sector_size:$ssize"
echo "table: $(dmsetup table "$name")"
dd if="$work/plain" of="/dev/mapper/$name" bs=64k oflag=direct status=none
dmsetup remove "$name"
keyctl invalidate "$key3"
"$B/keyscopectl" --socket "$sock" attach "$dev2" --name ks-attach-check >/dev/null
dd if=/dev/mapper/ks-attach-check of="$work/back3" bs=64k count=16 iflag=direct status=none
"$B/keyscopectl" --socket "$sock" detach ks-attach-check
cmp -s "$work/plain" "$work/back3" ||
	vm_die "keyscopectl attach does not read what request2 + dmsetup wrote"
echo "keyscopectl attach reads back what request2 + dmsetup wrote (offset $offset, sector $ssize)"

echo "--- a failed request is rejected at once and logged in the journal"
t0=$(date +%s%N)
keyctl request2 logon keyscope:0000-nope "volume=vol9" @s 2>"$work/err" && vm_die "request of an unknown key succeeded"
t1=$(date +%s%N)
echo "unknown key-id: $(cat "$work/err") in $(( (t1 - t0) / 1000000 )) ms"
grep -q "Required key not available" "$work/err" || vm_die "unexpected error: $(cat "$work/err")"
n=0
until journalctl -b -t keyscope-request-key --no-pager 2>/dev/null | grep -q "keyscope:0000-nope.*ENOKEY"; do
	n=$((n + 1))
	[ $n -le 50 ] || vm_die "no rejection in the journal: $(journalctl -b -t keyscope-request-key --no-pager | tail -n 5)"
	sleep 0.1
done
journalctl -b -t keyscope-request-key --no-pager -o cat | grep "0000-nope"

n=$(grep -c "Audit: request-key of keyscope:$id for uid 0 granted" "$work/keyscoped.log") || true
[ "$n" = 2 ] || vm_die "$n audit lines for the grants, want 2"
grep "Audit: request-key" "$work/keyscoped.log" | sed 's/ (daemon\/request.c:[0-9]*)$//'
cat "$work/handler.log"
