#!/bin/bash
# Local users cannot lock root out by holding connections, and a client that never completes
# a request is dropped after client-timeout even while other clients keep the daemon busy.
. "$(dirname "$0")/lib.sh"
RAW=$KEYSCOPE_BUILDDIR/tools/ks-raw
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
printf 'max-clients = 8\nclient-timeout = 2\n' >"$T/conf"
start_daemon --config "$T/conf"

# nobody opens 6 idle connections: only 4 are kept, and root still gets in.
pids=()
for _ in 1 2 3 4 5 6; do
	: | setpriv --reuid=65534 --regid=65534 --clear-groups "$RAW" --hold 10 "$KEYSCOPE_SOCKET" >>"$T/held" &
	pids+=($!)
done
sleep 0.5
ctl status >/dev/null || fail "root locked out by idle connections of nobody"
grep -q "Too many clients .* for uid 65534" "$DAEMON_LOG" || fail "refusal of nobody's 5th connection not logged"
wait "${pids[@]}" || true
# the four kept were dropped by the deadline, the other two at once
expect_eq "$(grep -c '^closed after' "$T/held")" 6 "connections closed by the daemon"
grep -q "no complete request for 2s" "$DAEMON_LOG" || fail "idle drop not logged"

# A half-sent request is dropped after ~2 s although another client keeps pinging.
printf '{"method":"keyscope.Pi' | "$RAW" --hold 10 "$KEYSCOPE_SOCKET" >"$T/half" &
half=$!
for _ in $(seq 1 40); do ctl status >/dev/null; sleep 0.1; done
wait $half || fail "half-sent request still connected after 10 s: $(cat "$T/half")"
ms=$(sed -n 's/closed after \([0-9]*\) ms/\1/p' "$T/half")
[ -n "$ms" ] && [ "$ms" -ge 1500 ] && [ "$ms" -le 6000 ] || fail "half-sent request closed after '$ms' ms, expected about 2000"
echo "half-sent request dropped after $ms ms"
