#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk cow:48M --disk nat:64M --disk old:32M --timeout 1200
# keyscope's os-brick encryptor (contrib/os-brick), loaded by Debian's python3-os-brick through
# get_volume_encryptor(provider=<class path>, control_location='front-end') and called as
# Nova's libvirt driver calls it, with a castellan-like key manager whose key comes down a
# pipe (tests/vm/fixtures/os-brick-nova.py):
#  - a volume formatted and written by os-brick's LuksEncryptor attaches through keyscope
#    (device_path -> /dev/mapper/crypt-<name>, table by keyring reference, the key supplied
#    over the control socket's payload), reads back, and opens with LuksEncryptor again;
#  - the volume and 5 snapshots: one keyslot unlock, one kernel key, 6 holders;
#  - live migration on one node: a second attachment of the scope survives the detach of the
#    first; extend after the device grew returns the new size; detach twice; nothing left;
#  - a blank volume formatted the keyscope way with a supplied key that keyscoped never
#    stores; a delegated key (the key manager is never asked); the pre-Newton mangled
#    passphrase (os-brick bug 1633518) is repaired and opens;
#  - no key in any argv or environment (strace of every execve), log, reply or file.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

py=/usr/bin/python3
"$py" -c 'import os_brick.encryptors' 2>/dev/null || vm_skip "python3-os-brick is not installed"
command -v strace >/dev/null || vm_skip "strace is not installed"
export PYTHONPATH=$KEYSCOPE_TOP/contrib/os-brick
export PATH=$KEYSCOPE_BUILDDIR:$PATH	# the encryptor runs keyscopectl
nova=$KEYSCOPE_TOP/tests/vm/fixtures/os-brick-nova.py
KS=keyscope_os_brick.encryptor
vol=$(vm_disk vol)
cow=$(vm_disk cow)
nat=$(vm_disk nat)
old=$(vm_disk old)
# Progress on the console too: tests/vm/run shows its end when a run times out.
say() { printf 't-osbrick-encryptor: %s\n' "$*" >/dev/console 2>/dev/null || true; }
say "starting keyscoped"
ks_start
mkdir "$KS_DIR/by-path"
bp=$KS_DIR/by-path

# The keys live in this shell's variables only; printf (a builtin) writes them into pipes.
newhex() { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
esc() { printf '%s' "$1" | sed 's/../\\x&/g'; }
hex=$(newhex)
hex2=$(newhex)
hex3=0$(newhex | cut -c2-)	# a first byte below 0x10: its mangled hex differs
id=$(cat /proc/sys/kernel/random/uuid)	# a Barbican secret keyscoped cannot read itself
id2=$(cat /proc/sys/kernel/random/uuid)
id3=$(cat /proc/sys/kernel/random/uuid)

# The Nova-like driver, one process for the whole test as nova-compute is; every execve of
# it and its children (argv and environment) recorded. nova REQUEST: its JSON answer.
printf '[encryptor]\nkeys = supplied\n' >"$KS_DIR/os-brick.conf"
export KEYSCOPE_OS_BRICK_CONF=$KS_DIR/os-brick.conf
: >"$KS_DIR/nova.err"
coproc NOVA { exec strace -f --seccomp-bpf -qq -v -s 4096 -e trace=execve \
	-o "$KS_DIR/execs" "$py" "$nova" 2>>"$KS_DIR/nova.err"; }
nova() {
	printf '%s\n' "$*" >&"${NOVA[1]}"
	read -r out <&"${NOVA[0]}" || vm_die "the Nova driver died: $(tail -n 20 "$KS_DIR/nova.err")"
	case $out in *'"error"'*) tail -n 20 "$KS_DIR/nova.err"; vm_die "os-brick ${*:1:3}: $out" ;; esac
}
# nova_key KEY_ID HEX: the key manager's secret (a builtin writes it into the pipe).
nova_key() { nova key "$1" "$2"; }
field() { printf '%s' "$1" | sed -n "s/.*\"$2\": \"\{0,1\}\([^\",}]*\).*/\1/p"; }
link_is() { [ "$(readlink "$1")" = "$2" ] || vm_die "$1 -> $(readlink "$1"), not $2"; }
unlocks() { grep -c 'Unlocking a keyslot of' "$KS_LOG" || true; }
sz() { blockdev --getsz "$1"; }

# The volume as the compute node sees it: a path (a dm-linear over the disk, so it can grow)
# and a by-path symlink to it, which the encryptor replaces.
dmsetup create obvol --table "0 $((48 * 2048)) linear $vol 0"
ln -sfn /dev/mapper/obvol "$bp/vol-a"
nova_key "$id" "$hex"
nova_key "$id2" "$hex2"
nova_key "$id3" "$hex3"

# 1. os-brick's own LuksEncryptor formats the blank volume (LUKS1, hex passphrase), writes.
say "step 1"
nova attach "$bp/vol-a" "$id" luks aes-xts-plain64 256
link_is "$bp/vol-a" /dev/mapper/crypt-vol-a
yes written-by-luksencryptor | head -c 1048576 >"$KS_DIR/plain1"
dd if="$KS_DIR/plain1" of=/dev/mapper/crypt-vol-a bs=64k oflag=direct status=none
nova detach "$bp/vol-a" "$id" luks
uuid=$(cryptsetup luksUUID /dev/mapper/obvol)
echo "LuksEncryptor formatted LUKS1 $uuid"

# 2. keyscope's encryptor attaches it: symlink, table by reference, data, key supplied once.
say "step 2"
ln -sfn /dev/mapper/obvol "$bp/vol-a"
u0=$(unlocks)
nova attach "$bp/vol-a" "$id" $KS.KeyscopeEncryptor aes-xts-plain64 256
echo "$out"
[ "$(field "$out" keymgr-calls)" = 1 ] || vm_die "key manager calls: $out"
link_is "$bp/vol-a" /dev/mapper/crypt-vol-a
dmsetup table --showkeys crypt-vol-a | grep -q " :32:logon:keyscope:vk:$uuid 0 " ||
	vm_die "table: $(dmsetup table --showkeys crypt-vol-a)"
dd if=/dev/mapper/crypt-vol-a bs=64k count=16 iflag=direct status=none |
	cmp -s - "$KS_DIR/plain1" || vm_die "keyscope reads other data than LuksEncryptor wrote"
yes written-by-keyscope | head -c 1048576 >"$KS_DIR/plain2"
dd if="$KS_DIR/plain2" of=/dev/mapper/crypt-vol-a bs=64k oflag=direct status=none
sync
ks --json key list | grep -q "$id" && vm_die "the supplied key was stored"
grep -q '"source":"supplied"' "$KS_DIR/state/attachments.json" ||
	vm_die "attachment not recorded as supplied: $(cat "$KS_DIR/state/attachments.json")"

# 3. Five snapshots through the encryptor: no further unlock, one kernel key, six holders.
say "step 3"
for n in 1 2 3 4 5; do
	dmsetup create "cow$n" --table "0 $((8 * 2048)) linear $cow $(((n - 1) * 8 * 2048))"
	dmsetup create "obsnap$n" \
		--table "0 $(sz /dev/mapper/obvol) snapshot /dev/mapper/obvol /dev/mapper/cow$n N 8"
	ln -sfn "/dev/mapper/obsnap$n" "$bp/snap-$n"
	nova attach "$bp/snap-$n" "$id" $KS.KeyscopeEncryptor
	link_is "$bp/snap-$n" "/dev/mapper/crypt-snap-$n"
done
[ $(($(unlocks) - u0)) = 1 ] ||
	vm_die "$(($(unlocks) - u0)) keyslot unlocks for a volume and 5 snapshots"
[ "$(grep -c " keyscope:vk:$uuid" /proc/keys)" = 1 ] || vm_die "not one kernel key"
sl=$(ks --json scope list | tr -d ' \n')
printf '%s' "$sl" | grep -q "\"key-id\":\"vk:$uuid\"[^}]*\"holders\":6" || vm_die "scopes: $sl"
dd if=/dev/mapper/crypt-snap-5 bs=64k count=16 iflag=direct status=none |
	cmp -s - "$KS_DIR/plain2" || vm_die "snapshot data differs"
echo "volume + 5 snapshots: 1 keyslot unlock, 1 kernel key, 6 holders"
for n in 1 2 3 4 5; do
	nova detach "$bp/snap-$n" "$id" $KS.KeyscopeEncryptor
	dmsetup remove "obsnap$n" "cow$n"
done

# 4. Live migration on one node: the destination's path to the same volume attaches while
# the source still has it; the source's detach leaves the destination working.
say "step 4"
dmsetup create obvol2 --table "0 $((48 * 2048)) linear $vol 0"
ln -sfn /dev/mapper/obvol2 "$bp/vol-b"
nova attach "$bp/vol-b" "$id" $KS.KeyscopeEncryptor
nova detach "$bp/vol-a" "$id" $KS.KeyscopeEncryptor
dmsetup info crypt-vol-a >/dev/null 2>&1 && vm_die "crypt-vol-a still there"
dd if=/dev/mapper/crypt-vol-b bs=64k count=16 iflag=direct status=none |
	cmp -s - "$KS_DIR/plain2" || vm_die "destination lost its data with the source's detach"
[ "$(grep -c " keyscope:vk:$uuid" /proc/keys)" = 1 ] || vm_die "the source's detach took the key"
dmsetup remove obvol

# 5. Extend: the device grows, extend_volume returns the mapping's new size in bytes.
say "step 5"
before=$(blockdev --getsize64 /dev/mapper/crypt-vol-b)
dmsetup suspend obvol2
dmsetup reload obvol2 --table "0 $((64 * 2048)) linear $vol 0"
dmsetup resume obvol2
nova extend "$bp/vol-b" "$id" $KS.KeyscopeEncryptor
after=$(blockdev --getsize64 /dev/mapper/crypt-vol-b)
[ "$(field "$out" result)" = "$after" ] && [ "$after" -gt "$before" ] ||
	vm_die "extend returned $(field "$out" result); mapping $before -> $after bytes"
[ "$after" = $(((64 * 2048 - $(dmsetup table crypt-vol-b | awk '{print $8}')) * 512)) ] ||
	vm_die "mapping of $after bytes does not reach the end of the grown device"
echo "extend: $before -> $after bytes"

# 6. Detach twice (the second is a no-op); nothing of the volume is left.
say "step 6"
nova detach "$bp/vol-b" "$id" $KS.KeyscopeEncryptor
nova detach "$bp/vol-b" "$id" $KS.KeyscopeEncryptor
dmsetup ls | grep -q crypt- && vm_die "mappings left: $(dmsetup ls)"
grep -q ' logon .* keyscope:' /proc/keys &&
	vm_die "kernel keys left: $(grep ' logon .* keyscope:' /proc/keys)"
grep -q '"name"' "$KS_DIR/state/attachments.json" && vm_die "records left"

# 7. And back: LuksEncryptor opens the volume keyscope wrote to, at its grown size.
say "step 7"
ln -sfn /dev/mapper/obvol2 "$bp/vol-b"
nova attach "$bp/vol-b" "$id" luks
dd if=/dev/mapper/crypt-vol-b bs=64k count=16 iflag=direct status=none |
	cmp -s - "$KS_DIR/plain2" || vm_die "LuksEncryptor reads other data than keyscope wrote"
nova detach "$bp/vol-b" "$id" luks
echo "interop: LuksEncryptor -> keyscope -> LuksEncryptor"

# 8. Delegated: keyscoped holds the key itself; the key manager is never asked.
say "step 8"
did=$(printf "$(esc "$hex")" | ks key import --name delegated)
printf '[encryptor]\nkeys = delegated\n' >"$KS_DIR/os-brick.conf"
nova_key "$did" "$hex"	# known to the key manager too: it must not be asked
ln -sfn /dev/mapper/obvol2 "$bp/vol-b"
nova attach "$bp/vol-b" "$did" $KS.KeyscopeEncryptor
[ "$(field "$out" keymgr-calls)" = 0 ] || vm_die "delegated mode asked the key manager: $out"
dmsetup table crypt-vol-b | grep -q ":32:logon:keyscope:vk:$uuid " || vm_die "delegated table"
nova detach "$bp/vol-b" "$did" $KS.KeyscopeEncryptor
dmsetup remove obvol2
printf '[encryptor]\nkeys = supplied\n' >"$KS_DIR/os-brick.conf"

# 9. A blank volume formatted the keyscope way, with a key keyscoped never had.
say "step 9"
ln -sfn "$nat" "$bp/vol-n"
nova attach "$bp/vol-n" "$id2" $KS.KeyscopeNativeEncryptor
cryptsetup token export --token-id 0 "$nat" | grep -q "\"key-id\":\"$id2\"" ||
	vm_die "no keyscope token for $id2"
dmsetup table crypt-vol-n | grep -q " :32:logon:keyscope:$id2 " || vm_die "native table"
ks --json key list | grep -q "$id2" && vm_die "the supplied key was stored"
nova detach "$bp/vol-n" "$id2" $KS.KeyscopeNativeEncryptor
grep -q " keyscope:$id2" /proc/keys && vm_die "the supplied key outlived its last holder"
ln -sfn "$nat" "$bp/vol-n"
nova attach "$bp/vol-n" "$id2" $KS.KeyscopeNativeEncryptor	# not blank now
nova detach "$bp/vol-n" "$id2" $KS.KeyscopeNativeEncryptor
echo "native format with a supplied key: token $id2, key never stored"

# 10. The pre-Newton passphrase: hex without leading zeros. Repaired, then it opens.
say "step 10"
mangled=$(printf '%s' "$hex3" | sed 's/../& /g' | awk '{ for (i = 1; i <= NF; i++) {
	b = $i; sub(/^0/, "", b); printf "%s", b } }')
printf '%s' "$mangled" | cryptsetup --batch-mode luksFormat --type luks1 --iter-time 100 \
	--key-file=- "$old"
mangled=
ln -sfn "$old" "$bp/vol-o"
nova attach "$bp/vol-o" "$id3" $KS.KeyscopeEncryptor
grep -q 'bug 1633518' "$KS_DIR/nova.err" || vm_die "no repair of the mangled passphrase"
nova detach "$bp/vol-o" "$id3" $KS.KeyscopeEncryptor
echo "mangled passphrase repaired"

# 11. No key in any execve's argv or environment, the logs, the replies or the state.
say "step 11"
patterns() {
	local h
	for h in "$hex" "$hex2" "$hex3"; do
		printf '%s\n' "$h" "${h^^}"
		printf "$(esc "$h")" | base64 -w0; echo
	done
}
exec {NOVA[1]}>&-
wait "$NOVA_PID" || vm_die "the Nova driver failed at its end"
n=$(grep -c 'execve("[^"]*keyscopectl"' "$KS_DIR/execs" || true)
[ "$n" -ge 20 ] || vm_die "the trace shows $n keyscopectl runs"
files=("$KS_LOG" "$KS_DIR/nova.err" "$KS_DIR/execs" $(find "$KS_DIR/state" -type f))
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd	# the quick guest has none: <(...) needs it
# found FILE: 0 when a key's hex or base64 is in FILE or its bytes; 1 not; the test dies on
# an error of the search itself (a search that cannot run must not pass).
found() {
	local r=0
	grep -a -F -q -f <(patterns) "$1" || r=$?
	[ $r -le 1 ] || vm_die "cannot search $1"
	[ $r = 0 ] && return 0
	r=0
	od -An -v -tx1 "$1" | tr -d ' \n' | grep -F -q -f <(printf '%s\n' "$hex" "$hex2" "$hex3") ||
		r=$?
	[ $r -le 1 ] || vm_die "cannot search the bytes of $1"
	return $r
}
# The search must find what it looks for (shown through pipes: no key in a file).
printf "$(esc "$hex2")" | od -An -v -tx1 | tr -d ' \n' |
	grep -F -q -f <(printf '%s\n' "$hex" "$hex2" "$hex3") || vm_die "the search misses raw bytes"
printf '%s' "${hex3^^}" | grep -a -F -q -f <(patterns) || vm_die "the search misses a key's hex"
for f in "${files[@]}"; do
	found "$f" && vm_die "key material in $f"
done
echo "no key in ${#files[@]} files, nor in the argv and environment of" \
	"$(grep -c 'execve(' "$KS_DIR/execs") execs ($n keyscopectl)"
echo ok
