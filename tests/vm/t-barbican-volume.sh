#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --net --disk vol:64M --disk snap:64M --disk vol2:64M
# vm-needs: barbican
# A volume whose key is delegated by a real Barbican (on the host's loopback, reached over
# qemu's user network as a node reaches its key manager): format and attach by keyring
# reference; the volume is a Barbican consumer while any mapping of it is attached (checked by
# the owner with the REST API), and only then; consumer changes that Barbican could not take
# (route to it blocked) are carried over a daemon restart; a "reboot" while Barbican is
# unreachable brings the volume back from the sealed offline cache; a mapping closed behind
# the daemon's back stops being a consumer after barbican-consumer-grace; an attach whose
# delegation was withdrawn, or that Barbican cannot serve and the cache does not hold, fails
# with the operator's message and leaves nothing behind.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"
. "$KEYSCOPE_TOP/tests/vm/barbican.sh"

vol=$(vm_disk vol)
snap=$(vm_disk snap)
vol2=$(vm_disk vol2)
pattern=keyscope-barbican-volume-7d21aa
id=$(new_secret)

# --- attached: a consumer; a snapshot (same LUKS UUID) shares it -------------------------------
node
ks format "$vol" --key "$id"
cryptsetup token export --token-id 0 "$vol" | grep -q '"key-source":"barbican"' ||
	vm_die "token does not name Barbican: $(cryptsetup token export --token-id 0 "$vol")"
uuid=$(cryptsetup luksUUID "$vol")
[ -z "$(consumers "$id")" ] || vm_die "consumers before any attach: $(consumers "$id")"
ks attach "$vol" --name data >/dev/null
dmsetup table data | grep -q ":64:logon:keyscope:$id " ||
	vm_die "table does not reference keyscope:$id"
wait_consumers "$id" "keyscope volume $uuid"
echo "attach: consumer keyscope volume $uuid"
yes "$pattern" | head -c 1048576 >"$KS_DIR/plain"
dd if="$KS_DIR/plain" of=/dev/mapper/data bs=64k oflag=direct status=none

dd if="$vol" of="$snap" bs=1M status=none	# a copy keeps the LUKS UUID, as a snapshot does
out=$(ks --json attach "$snap" --name snap)
[ "$(ks_field "$out" holders)" = 2 ] || vm_die "snapshot does not share the scope: $out"
ks detach data
[ "$(pending)" = 0 ] || vm_die "a detach with a snapshot attached queued a consumer change"
[ "$(consumers "$id")" = "keyscope volume $uuid" ] ||
	vm_die "consumer gone while the snapshot is attached: '$(consumers "$id")'"
ks_stop
node
[ "$(pending)" = 0 ] || vm_die "a restart with the snapshot attached queued a consumer change"
[ "$(consumers "$id")" = "keyscope volume $uuid" ] || vm_die "consumer gone across a restart"
echo "snapshot attached: one consumer, kept across detach of the origin and a restart"

# --- the last detach while Barbican is unreachable: removed after the restart ---------------
outage
t0=$(date +%s)
ks detach snap
[ $(($(date +%s) - t0)) -le 3 ] || vm_die "detach waited for the unreachable Barbican"
keyctl search @u logon "keyscope:$id" >/dev/null 2>&1 && vm_die "key left after the last detach"
[ "$(pending)" = 1 ] || vm_die "no pending consumer removal: $(ks --json status)"
grep -q "\"resource\":\"$uuid\",\"add\":false" "$KS_DIR/state/consumers.json" ||
	vm_die "pending removal not in consumers.json: $(cat "$KS_DIR/state/consumers.json")"
ks_stop
restore
[ "$(consumers "$id")" = "keyscope volume $uuid" ] ||
	vm_die "consumer removed although Barbican was unreachable?"
node
wait_consumers "$id" ""
[ "$(pending)" = 0 ] || vm_die "removal done but still pending"
echo "detach during an outage: consumer removed after the restart"

# --- a reboot while Barbican is unreachable: the volume comes back from the sealed cache ---
ks attach "$vol" --name data >/dev/null
wait_consumers "$id" "keyscope volume $uuid"
ks_stop
cryptsetup close data	# what a reboot does to the mapping and the kernel key
keyctl invalidate "$(keyctl search @u logon "keyscope:$id")"
outage
node
t0=$(date +%s)
ks attach "$vol" --name data >/dev/null || vm_die "offline attach from the sealed cache failed"
echo "offline attach: $(($(date +%s) - t0)) s"
grep -q "using the sealed cached copy of key $id" "$KS_LOG" || vm_die "no log of the cached copy"
dd if=/dev/mapper/data bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "the volume attached offline does not read back"
[ "$(pending)" = 0 ] ||
	vm_die "re-attach within the grace did not cancel the vanished mapping's removal"
restore
[ "$(consumers "$id")" = "keyscope volume $uuid" ] || vm_die "consumer lost across the reboot"
echo "reboot offline: volume back from the sealed cache, consumer never removed"

# --- closed behind the daemon's back: removed after barbican-consumer-grace -------------------
ks_stop
node "barbican-consumer-grace = 8"
cryptsetup close data
ks status | grep -q "vanished.* data" || vm_die "closed mapping not reported: $(ks status)"
[ "$(pending)" = 1 ] || vm_die "no removal queued for the vanished mapping"
[ "$(consumers "$id")" = "keyscope volume $uuid" ] || vm_die "removed before the grace"
wait_consumers "$id" ""
echo "closed behind the daemon's back: consumer removed after the grace"

# --- an attach while Barbican is unreachable: registered after the restart -----------------
outage
ks attach "$vol" --name data >/dev/null || vm_die "attach from the cache failed"
[ "$(pending)" = 1 ] || vm_die "no pending registration"
ks_stop
restore
[ -z "$(consumers "$id")" ] || vm_die "registered although Barbican was unreachable?"
node "barbican-consumer-grace = 8"
wait_consumers "$id" "keyscope volume $uuid"
ks detach data
wait_consumers "$id" ""

# --- refusals: nothing left behind ------------------------------------------------------------
id2=$(new_secret)
ks format "$vol2" --key "$id2"	# fetched, so in the sealed cache too
bb DELETE "/v1/secrets/$id2/acl" >/dev/null
ks_expect_fail "read ACL" ks attach "$vol2" --name two
grep -q "Dropped the cached copy of key $id2" "$KS_LOG" || vm_die "withdrawn key kept in the cache"
outage
t0=$(date +%s)
ks_expect_fail "$id2" ks attach "$vol2" --name two
[ $(($(date +%s) - t0)) -le 14 ] || vm_die "the failed offline attach outlived its 8 s deadline"
restore
grep -q "$pattern" "$KS_LOG" && vm_die "volume data in the daemon's log"
echo ok
