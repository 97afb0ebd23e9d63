#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --net --disk vol:64M
# vm-needs: barbican
# A volume whose Barbican cannot be reached when it is asked for (the network not up at boot,
# the key manager down), as the units keyscope-generator writes ask for it (attach --pending):
# the attach returns at once as pending instead of failing at barbican-deadline, status lists
# it with the reason, nothing is attached meanwhile; once Barbican is reachable again keyscoped
# attaches it by itself, and it reads back. The unit's attach again then succeeds (nothing
# changed); a pending volume that is detached is no longer tried.
# A pending volume outlives keyscoped: restarted (SIGTERM) and killed (SIGKILL, with a record
# write of the killed run left half-done), keyscoped still lists it pending and attaches it
# once Barbican is back; a record left for a volume that is attached by then (killed between
# the attach and the record's removal), one of an earlier boot and a damaged one are dropped
# at start, the damaged one named with its line.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"
. "$KEYSCOPE_TOP/tests/vm/barbican.sh"

vol=$(vm_disk vol)
pattern=keyscope-boot-pending-5e01c3
id=$(new_secret)
nocache="barbican-cache = no"
pend() { ks --json status | tr -d '\n ' | sed -n 's/.*"pending":\[\([^]]*\)\].*/\1/p'; }

node "$nocache" "barbican-deadline = 4"
ks format "$vol" --key "$id"
ks attach "$vol" --name data >/dev/null
yes "$pattern" | head -c 1048576 >"$KS_DIR/plain"
dd if="$KS_DIR/plain" of=/dev/mapper/data bs=64k oflag=direct status=none
ks detach data	# the last holder: the kernel key goes, the next attach must fetch
keyctl search @u logon "keyscope:$id" >/dev/null 2>&1 && vm_die "key left after the last detach"

# --- unreachable: pending, not failed ---------------------------------------------------------
outage
t0=$(date +%s)
out=$(ks attach "$vol" --name data --pending) || vm_die "attach --pending failed: $out"
echo "$out"
case $out in *pending*) ;; *) vm_die "attach --pending did not say pending: $out" ;; esac
[ $(($(date +%s) - t0)) -le 15 ] || vm_die "attach --pending outlived its 4 s deadline"
[ -e /dev/mapper/data ] && vm_die "/dev/mapper/data exists while its key source is down"
p=$(pend)
case $p in *'"name":"data"'*'"reason":'*) ;; *) vm_die "status lists no pending data: $p" ;; esac
ks status | grep -E '^data +' || vm_die "keyscopectl status shows no pending row: $(ks status)"
ks metrics | grep -qx 'keyscope_volumes_pending 1' ||
	vm_die "metrics count no pending volume: $(ks metrics | grep volumes_pending)"
sleep 8	# a few tries while it is still down: still pending, nothing half-done
[ -e /dev/mapper/data ] && vm_die "attached while Barbican is unreachable?"
tries=$(ks_field "$(pend)" tries)
[ "${tries:-0}" -ge 1 ] || vm_die "no retry while pending: $(pend)"
echo "pending after $tries tries: $(ks_field "$(pend)" reason)"

# --- keyscoped restarted and killed while it is pending: it is still pending -----------------
still_pending() { # WHAT
	case $(pend) in *'"name":"data"'*) ;; *) vm_die "$1 forgot the pending volume: $(ks status)" ;; esac
	[ -e /dev/mapper/data ] && vm_die "attached after $1 while Barbican is unreachable?"
	echo "$1: still pending: $(pend)"
}
ks_stop
ks_start --config "$KS_DIR/conf"
still_pending "a restart of keyscoped"
rec=$KS_DIR/state/pending/data
[ -f "$rec" ] || vm_die "no record of the pending volume in $KS_DIR/state/pending"
[ "$(stat -c %a "$rec")" = 600 ] || vm_die "record mode $(stat -c %a "$rec")"
grep -qx "device = $vol" "$rec" && grep -qx 'name = data' "$rec" ||
	vm_die "the record does not hold the request: $(cat "$rec")"
cp "$rec" "$KS_DIR/rec.saved"
dead=$(sh -c 'echo $$')
echo half >"$KS_DIR/state/pending/data.tmp.$dead"	# a record write killed half-way
kill -KILL "$KS_PID"
wait "$KS_PID" 2>/dev/null || true
KS_PID=
ks_start --config "$KS_DIR/conf"
still_pending "SIGKILL and a start"
[ ! -e "$KS_DIR/state/pending/data.tmp.$dead" ] || vm_die "the half-written record is left"
sleep 4
[ "$(ks_field "$(pend)" tries)" -ge 1 ] || vm_die "not tried after the restart: $(pend)"

# --- reachable again: attached by keyscoped, no one asks -------------------------------------
restore
t0=$(date +%s)
n=0
until [ -e /dev/mapper/data ]; do
	n=$((n + 1))
	[ $n -le 120 ] || vm_die "not attached 120 s after Barbican came back: $(pend)"
	sleep 1
done
echo "attached $(($(date +%s) - t0)) s after Barbican came back"
dd if=/dev/mapper/data bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "the pending volume does not read back"
[ -z "$(pend)" ] || vm_die "still pending once attached: $(pend)"
[ ! -e "$rec" ] || vm_die "the record is left once attached: $(cat "$rec")"

# --- records a killed run may leave, found at start: dropped, the attached volume untouched ---
cp "$KS_DIR/rec.saved" "$rec"	# killed between the attach and the record's removal
sed -e 's/^boot-id = .*/boot-id = 00000000-0000-4000-8000-000000000000/' -e 's/^name = .*/name = old/' \
	"$KS_DIR/rec.saved" >"$KS_DIR/state/pending/old"
printf 'version = 1\nname = bad\ndevice = /dev/vdz\nbogus = 1\n' >"$KS_DIR/state/pending/bad"
kill -KILL "$KS_PID"
wait "$KS_PID" 2>/dev/null || true
KS_PID=
ks_start --config "$KS_DIR/conf"
[ -z "$(pend)" ] || vm_die "a stale record was taken up: $(pend)"
ls "$KS_DIR/state/pending" | grep . && vm_die "stale records left: $(ls "$KS_DIR/state/pending")"
grep -q "pending/data is dropped: the volume is attached already" "$KS_LOG" ||
	vm_die "no word on the record of the attached volume"
grep -q "pending/old is dropped: it is from an earlier boot" "$KS_LOG" ||
	vm_die "no word on the record of an earlier boot"
grep -q "pending/bad:4: unknown key 'bogus'; dropped" "$KS_LOG" ||
	vm_die "the damaged record is not named with its line: $(grep pending/bad "$KS_LOG")"
dd if=/dev/mapper/data bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "the attached volume does not read back after the restart"
ks metrics | grep -qx 'keyscope_volumes_pending 0' ||
	vm_die "metrics still count a pending volume: $(ks metrics | grep volumes_pending)"
out=$(ks --json attach "$vol" --name data --pending) || vm_die "the unit's attach again failed: $out"
[ "$(ks_field "$out" already)" = true ] || vm_die "attach again did not say already: $out"
ks attach "$vol" --name data >/dev/null 2>&1 && vm_die "a plain attach of a taken name succeeded"
ks detach data

# --- pending, then detached: no longer tried --------------------------------------------------
outage
ks attach "$vol" --name data --pending | grep -q pending || vm_die "second pending attach"
out=$(ks detach data) || vm_die "detach of a pending volume failed: $out"
case $out in *"was pending"*) ;; *) vm_die "detach of a pending volume said: $out" ;; esac
[ -z "$(pend)" ] || vm_die "still pending after its detach: $(pend)"
[ ! -e "$rec" ] || vm_die "the record is left after the detach"
ks_stop
ks_start --config "$KS_DIR/conf"	# and a restart does not bring it back
[ -z "$(pend)" ] || vm_die "a detached pending volume is pending again after a restart"
restore
sleep 10
[ -e /dev/mapper/data ] && vm_die "a detached pending volume was attached"
echo ok
