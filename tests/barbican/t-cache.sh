#!/bin/bash
# The sealed offline cache (barbican-cache = yes): keys fetched once, or prefetched at start
# (barbican-prefetch), install again from the cache after a daemon restart while Barbican is
# stopped, within the TTL and not after it; a key
# whose delegation was withdrawn is refused at the next fetch and dropped from the cache, so it
# does not come back offline; the cache holds no plaintext material.
. "$(dirname "$0")/lib.sh"
need_barbican_source
use_private_server

cache=("barbican-cache = yes" "barbican-cache-ttl = 300" "barbican-deadline = 3"
	"barbican-timeout = 2" "barbican-connect-timeout = 1")
k1=$(secret_create "$OWNER")
k2=$(secret_create "$OWNER")
k3=$(secret_create "$OWNER")
k5=$(secret_create "$OWNER")
for k in "$k1" "$k2" "$k5"; do delegate "$k"; done

start_node "${cache[@]}"
for k in "$k1" "$k2"; do
	ctl key install "$k" >/dev/null || fail "online install of $k"
	ctl key release "$k" >/dev/null
done
for k in "$k1" "$k2"; do
	if f=$(payload "$OWNER" "$k" | material_in "$STATE" "$DAEMON_LOG"); then
		fail "key material of $k in plaintext in $f"
	fi
done

# Withdrawn while Barbican is up: the next fetch is refused, and the cached copy goes.
acl_delete "$OWNER" "$k2"
expect_fail_msg "not delegated to this node" ctl key install "$k2"
grep -q "Dropped the cached copy of key $k2" "$DAEMON_LOG" ||
	fail "no log line about dropping the cached copy of the withdrawn key"
stop_daemon

# barbican-prefetch = yes: at start the daemon lists its delegations and caches them all, so k5,
# never installed, is there for the offline restart below.
start_node "${cache[@]}" "barbican-prefetch = yes"
for _ in $(seq 1 100); do
	grep -q "Prefetch into the sealed cache" "$DAEMON_LOG" && break
	sleep 0.1
done
grep "Prefetch into the sealed cache" "$DAEMON_LOG" || fail "no prefetch within 10 s of start"
stop_daemon
delegate "$k3" # after the prefetch: never fetched when Barbican goes away

# Offline: Barbican stopped, daemon restarted.
private_server_stop
start_node "${cache[@]}"
t0=$EPOCHREALTIME
ctl key install "$k1" >/dev/null || fail "offline install of a cached key within its TTL failed"
ms=$(elapsed_ms "$t0")
[ -n "$(key_serial "$k1")" ] || fail "no kernel key for the cached key"
[ "$ms" -le 4500 ] || fail "offline install from the cache took $ms ms (deadline 3 s)"
echo "offline install from the cache: $ms ms"
ctl key release "$k1" >/dev/null
ctl key install "$k5" >/dev/null || fail "offline install of a prefetched key failed"
ctl key release "$k5" >/dev/null
out=$(ctl key install "$k2" 2>&1) && fail "a withdrawn key came back from the cache offline"
echo "withdrawn key offline: $out"
out=$(ctl key install "$k3" 2>&1) && fail "a key never fetched installed offline"
echo "$out" | grep -q -- "$k3" || fail "offline failure does not name the key-id: $out"
stop_daemon

# TTL: a key cached with a 2 s TTL does not install offline 3 s later.
private_server_start
start_node "${cache[@]}" "barbican-cache-ttl = 2"
ctl key install "$k3" >/dev/null || fail "online install of $k3"
ctl key release "$k3" >/dev/null
stop_daemon
private_server_stop
sleep 3
start_node "${cache[@]}" "barbican-cache-ttl = 2"
out=$(ctl key install "$k3" 2>&1) && fail "a key installed from the cache after its TTL"
echo "after the TTL: $out"
echo ok
