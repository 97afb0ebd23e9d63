#!/bin/bash
# Withdrawn while installed: with the cache on, keyscoped revalidates its cached keys on its own
# (the first round 30 s after start, then every barbican-cache-ttl / 4; a TTL shorter than that
# first round would let the copies expire instead); a key whose delegation
# was withdrawn is dropped from the cache, and its kernel key is invalidated at once or, if the
# log says so, with its last holder; a key still delegated stays.
. "$(dirname "$0")/lib.sh"
need_barbican_source

kept=$(secret_create "$OWNER")
gone=$(secret_create "$OWNER")
delegate "$kept"
delegate "$gone"
start_node "barbican-cache = yes" "barbican-cache-ttl = 200"
ctl key install "$kept" >/dev/null || fail "install of $kept"
ctl key install "$gone" >/dev/null || fail "install of $gone"
acl_delete "$OWNER" "$gone"
t0=$EPOCHREALTIME
for _ in $(seq 1 450); do
	grep -q "Dropped the cached copy of key $gone" "$DAEMON_LOG" && break
	sleep 0.1
done
grep -q "Dropped the cached copy of key $gone" "$DAEMON_LOG" ||
	fail "no revalidation dropped the withdrawn key within 45 s"
echo "withdrawal noticed by revalidation after $(elapsed_ms "$t0") ms"
if grep -q "Dropped the cached copy of key $kept" "$DAEMON_LOG"; then
	fail "revalidation dropped a key that is still delegated"
fi
[ -n "$(key_serial "$kept")" ] || fail "the still delegated key left the kernel"
if [ -n "$(key_serial "$gone")" ]; then
	grep -q "Key $gone is withdrawn in Barbican; its kernel key goes with the last" \
		"$DAEMON_LOG" || fail "a withdrawn key stays in the kernel and the log does not say why"
	echo "withdrawn while held: kernel key kept until its last holder goes (logged)"
else
	echo "withdrawn while held: kernel key invalidated at once"
fi
ctl key release "$gone" >/dev/null 2>&1 || true
[ -z "$(key_serial "$gone")" ] || fail "the withdrawn key outlived its last holder"
# Installing it again is refused (a fresh fetch; no cached copy to fall back on).
expect_fail_msg "not delegated to this node" ctl key install "$gone"
ctl key release "$kept" >/dev/null
echo ok
