#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm:
# A batch install that the kernel refuses part-way is all or nothing. With root's key quota
# (/proc/sys/kernel/keys/root_maxkeys, this guest's alone) room for 100 more keys, a batch of
# 300 fresh key-ids fails with the quota message naming the key-id the kernel refused; the
# keys made for the batch before it (docs/keyring.md, "Batches") are gone from /proc/keys, no
# holder or scope of the batch is left, and the key held before keeps its serial and holder. With the quota back, the same batch succeeds.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

q=/proc/sys/kernel/keys/root_maxkeys
[ -w $q ] || vm_skip "$q is not writable in this guest"
old=$(cat $q)
cleanup() {
	_rc0=$?
	echo "$old" >$q
	# ks_cleanup takes the test's status from $?
	if [ $_rc0 -ne 0 ]; then (exit $_rc0) || ks_cleanup; fi
	ks_cleanup
}
trap cleanup EXIT

ks_start
n=300
: >"$KS_DIR/ids"
i=0
while [ $i -lt $n ]; do ks key create >>"$KS_DIR/ids"; i=$((i + 1)); done
held=$(ks key create)
ks key install "$held" >/dev/null
serial=$(ks --json scope list | tr -d ' \n' | sed -n "s/.*\"key-id\":\"$held\",[^}]*\"serial\":\([0-9]*\).*/\1/p")
[ -n "$serial" ] || vm_die "no serial for the held key"
keyscope_keys() { grep -c ' logon .* keyscope:' /proc/keys || true; }
# Invalidated keys stay in /proc/keys until the kernel's garbage collector unlinks them.
settle_keys() { # COUNT
	_i=0
	while [ "$(keyscope_keys)" -ne "$1" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	[ "$(keyscope_keys)" -eq "$1" ] || vm_die "$(keyscope_keys) keyscope keys in /proc/keys, expected $1"
}
settle_keys 1

used=$(awk '$1 == "0:" { split($4, a, "/"); print a[1] }' /proc/key-users)
echo $((used + 100)) >$q
# shellcheck disable=SC2046
if ks key install $(cat "$KS_DIR/ids") >"$KS_DIR/out" 2>&1; then
	vm_die "a batch over the key quota succeeded"
fi
grep -q "the kernel's key quota for root is full" "$KS_DIR/out" || vm_die "not the quota message: $(cat "$KS_DIR/out")"
bad=$(sed -n 's/.*installing key \([0-9a-f-]*\):.*/\1/p' "$KS_DIR/out")
line=$(grep -n "^$bad\$" "$KS_DIR/ids" | cut -d: -f1)
[ -n "$line" ] && [ "$line" -gt 90 ] && [ "$line" -le 101 ] ||
	vm_die "refused at key ${line:-?} of $n, expected about the 101st: $(cat "$KS_DIR/out")"
echo "refused as expected at key $line of $n: $(cat "$KS_DIR/out")"
settle_keys 1
[ "$(ks scope list | tail -n +2 | wc -l)" -eq 1 ] || vm_die "scopes left by the refused batch: $(ks scope list)"
ks --json scope list | tr -d ' \n' | grep -q "\"key-id\":\"$held\",[^}]*\"serial\":$serial,\"holders\":1" ||
	vm_die "the held key changed: $(ks --json scope list)"

echo "$old" >$q
# shellcheck disable=SC2046
ks key install $(cat "$KS_DIR/ids") >/dev/null
settle_keys $((n + 1))
# shellcheck disable=SC2046
ks key release $(cat "$KS_DIR/ids") "$held" >/dev/null
settle_keys 0
echo ok
