#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk aj:32M
# A key held with 'key install' that vanished behind keyscoped's back (keyctl invalidate) is
# made again by the next attach; the holder record (scopes.journal) then names the new
# serial, so that a start after a crash (SIGKILL: no snapshot at stop) keeps the key as
# recorded, without describing the keyring's unclaimed keys, and the volume and the holder
# are as they were.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"
trap ks_cleanup EXIT

dev=$(vm_disk aj)
ks_start
k=$(ks key create)
ks format "$dev" --key "$k" >/dev/null
ks key install "$k" >/dev/null
serial() { awk -v d="keyscope:$k" '$8 == "logon" && $9 == d":" { print $1 }' /proc/keys; }
s1=$(serial)
[ -n "$s1" ] || vm_die "no key keyscope:$k in /proc/keys: $(grep keyscope /proc/keys)"
keyctl invalidate $((0x$s1))
i=0
while [ -n "$(serial)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -z "$(serial)" ] || vm_die "the invalidated key is still in /proc/keys"
ks attach "$dev" --name ajvol >/dev/null
s2=$(serial)
[ -n "$s2" ] && [ "$s2" != "$s1" ] || vm_die "attach did not make the key again ($s1 -> ${s2:-none})"
echo "held key made again by attach: $s1 -> $s2"
grep -q "^1 $k $((0x$s2))\$" "$KS_DIR/state/scopes.journal" ||
	vm_die "the journal does not name serial $((0x$s2)): $(cat "$KS_DIR/state/scopes.journal")"

kill -9 "$KS_PID"
wait "$KS_PID" 2>/dev/null || true
KS_PID=
: >"$KS_LOG"
ks_start
grep -q "Kept 1 keys as recorded" "$KS_LOG" || vm_die "not kept as recorded: $(grep -i kept "$KS_LOG")"
# adopt_kernel_key()'s line ends "holders).", the recorded one's "holders), as recorded."
grep -qE "Kept key keyscope:$k \(serial [0-9]+, [0-9]+ holders\)\.( |$)" "$KS_LOG" &&
	vm_die "the key was found by describing it"
[ "$(serial)" = "$s2" ] || vm_die "serial after the restart: $(serial), expected $s2"
ks --json scope list | tr -d ' \n' | grep -q "\"key-id\":\"$k\",[^}]*\"serial\":$((0x$s2)),\"holders\":2" ||
	vm_die "holders after the restart: $(ks --json scope list)"
ks detach ajvol >/dev/null
ks key release "$k" >/dev/null
echo ok
