#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --net --disk vol:64M
# vm-needs: barbican
# Barbican stopped and started again on the host (vm_host) while an attach waits for its key
# (sealed cache off): the attach completes once Barbican is back within the deadline, and the
# daemon answers other clients meanwhile; Barbican still down at the deadline: the attach fails
# with the operator's message and leaves nothing behind (no mapping, kernel key or record),
# and the next attach works.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"
. "$KEYSCOPE_TOP/tests/vm/barbican.sh"

vol=$(vm_disk vol)
pattern=keyscope-barbican-restart-41c9e0
id=$(new_secret)
nocache="barbican-cache = no"

node "$nocache" "barbican-retries = 8" "barbican-deadline = 30"
ks format "$vol" --key "$id"
ks attach "$vol" --name data >/dev/null
yes "$pattern" | head -c 1048576 >"$KS_DIR/plain"
dd if="$KS_DIR/plain" of=/dev/mapper/data bs=64k oflag=direct status=none
ks detach data	# the last holder: the kernel key goes, the next attach fetches
keyctl search @u logon "keyscope:$id" >/dev/null 2>&1 && vm_die "key left after the last detach"

# --- stopped before the attach, started while it retries: the attach completes ----------------
vm_host barbican-stop
t0=$(date +%s)
ks attach "$vol" --name data >"$KS_DIR/attach.out" 2>&1 &
a=$!
n=0
until grep -q "v1/secrets/$id.*attempt 2" "$KS_LOG"; do
	n=$((n + 1))
	[ $n -le 100 ] || vm_die "the attach did not retry: $(tail -n 5 "$KS_LOG")"
	sleep 0.1
done
ks status >/dev/null || vm_die "status not answered while an attach waits for Barbican"
kill -0 "$a" 2>/dev/null || vm_die "the attach ended before Barbican came back: $(cat "$KS_DIR/attach.out")"
vm_host barbican-start
wait "$a" || vm_die "attach across the Barbican restart failed: $(cat "$KS_DIR/attach.out")"
echo "attach across a Barbican restart: $(($(date +%s) - t0)) s"
dd if=/dev/mapper/data bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "the volume does not read back"
wait_consumers "$id" "keyscope volume $(cryptsetup luksUUID "$vol")"
ks detach data

# --- still down at the deadline: the attach fails cleanly -------------------------------------
ks_stop
node "$nocache" "barbican-retries = 8" "barbican-deadline = 4"
vm_host barbican-stop
t0=$(date +%s)
ks_expect_fail "cannot reach" ks attach "$vol" --name data
[ $(($(date +%s) - t0)) -le 10 ] || vm_die "the failed attach outlived its 4 s deadline"
[ -z "$(ls "$KS_DIR/state/cache" 2>/dev/null)" ] || vm_die "a cache with barbican-cache = no"
vm_host barbican-start
ks attach "$vol" --name data >/dev/null || vm_die "attach after Barbican came back failed"
dd if=/dev/mapper/data bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "the volume does not read back after the failed attach"
ks detach data
echo ok
