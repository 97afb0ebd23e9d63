#!/bin/bash
# The key-source metrics against a real Barbican, parsed with python3-prometheus-client's
# OpenMetrics parser: a fetch counts as barbican/ok with its latency; a key not delegated as
# barbican/refused, with a delegation-withdrawn entry; with Barbican stopped, the retries count,
# the fetch is barbican/error and the sealed cache serves it (cache/ok, a cache hit, a
# cache-used-offline entry, the cache's age). sd_notify's STATUS= (NOTIFY_SOCKET on a listener
# of the test's own) says whether Barbican answers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../host/metrics-lib.sh"
need_barbican_source
use_private_server
/usr/bin/python3 "$(dirname "$0")/../host/fake-journald.py" "$T/notify.sock" "$T/notify.json" &
NOTIFYD=$!
BC_ATEXIT='kill $NOTIFYD 2>/dev/null || true'
for _ in $(seq 1 100); do [ -S "$T/notify.sock" ] && break; sleep 0.05; done
[ -S "$T/notify.sock" ] || fail "the notify listener did not start"
export NOTIFY_SOCKET=$T/notify.sock
# status WANT: the daemon's last STATUS= becomes WANT within 5 s.
status() {
	local s=
	for _ in $(seq 1 50); do
		s=$(jq -s -r '[.[] | select(.STATUS) | .STATUS] | last // ""' "$T/notify.json")
		[ "$s" = "$1" ] && { echo "STATUS=$s"; return 0; }
		sleep 0.1
	done
	fail "STATUS is '$s', want '$1'"
}

cache=("barbican-cache = yes" "barbican-cache-ttl = 300" "barbican-deadline = 3"
	"barbican-timeout = 2" "barbican-connect-timeout = 1" "barbican-retries = 3")
k1=$(secret_create "$OWNER")
k2=$(secret_create "$OWNER")
delegate "$k1"

start_node "${cache[@]}"
status "Serving 0 scopes, 0 volumes; barbican not asked yet"
ctl key install "$k1" >/dev/null || fail "online install of $k1"
status "Serving 1 scope, 0 volumes; barbican reachable"
ctl key release "$k1" >/dev/null
expect_fail_msg "not delegated to this node" ctl key install "$k2"
snap online
expect_eq "$(value "$T/online" keyscope_fetches_total 'result="ok",source="barbican"')" 1 \
	"Barbican fetches ok"
expect_eq "$(value "$T/online" keyscope_fetches_total 'result="refused",source="barbican"')" 1 \
	"Barbican fetches refused"
expect_eq "$(value "$T/online" keyscope_fetch_duration_seconds_count 'source="barbican"')" 2 \
	"Barbican fetch latency observations"
expect_eq "$(value "$T/online" keyscope_cache_hits_total)" 0 "cache hits online"
[ "$(value "$T/online" keyscope_cache_oldest_age_seconds)" -ge 0 ] || fail "no cache age"
grep -q "Barbican withdrew key $k2" "$DAEMON_LOG" || fail "no delegation-withdrawn entry"
stop_daemon

# Offline: Barbican stopped, daemon restarted; the key comes from the sealed cache.
private_server_stop
start_node "${cache[@]}"
ctl key install "$k1" >/dev/null || fail "offline install of a cached key"
status "Serving 1 scope, 0 volumes; barbican unreachable, sealed cache used"
snap offline
expect_eq "$(value "$T/offline" keyscope_fetches_total 'result="error",source="barbican"')" 1 \
	"Barbican fetches failed offline"
expect_eq "$(value "$T/offline" keyscope_fetches_total 'result="ok",source="cache"')" 1 \
	"fetches served by the cache"
expect_eq "$(value "$T/offline" keyscope_cache_hits_total)" 1 "cache hits offline"
[ "$(value "$T/offline" keyscope_source_retries_total)" -ge 1 ] ||
	fail "no retry counted against a stopped Barbican"
grep -q "using the sealed cached copy of key $k1" "$DAEMON_LOG" || fail "no cache-used-offline entry"
ctl key release "$k1" >/dev/null
echo "ok: retries $(value "$T/offline" keyscope_source_retries_total)"
