#!/bin/bash
# Barbican restarted in the middle of a batch install of 60 keys: the install completes (every
# key in the kernel) or fails cleanly (no key of the batch in the kernel, a message), within
# its deadline; the daemon answers meanwhile; afterwards the same batch installs.
. "$(dirname "$0")/lib.sh"
need_barbican_source
use_private_server

ids=()
for _ in $(seq 1 60); do
	k=$(secret_create "$OWNER")
	delegate "$k"
	ids+=("$k")
done
start_node "barbican-deadline = 20" "barbican-timeout = 5" "barbican-connect-timeout = 1" \
	"barbican-retries = 5" "barbican-concurrency = 1"

t0=$EPOCHREALTIME
(
	rc=0
	ctl key install "${ids[@]}" >"$T/out" 2>&1 || rc=$?
	echo "$rc $(elapsed_ms "$t0")" >"$T/rc"
) &
bg=$!
# Let a few keys through, then restart the server under the batch.
for _ in $(seq 1 100); do
	[ "$(grep -c "GET /v1/secrets/.*/payload" "$BARBICAN_DIR/access.log")" -ge 3 ] && break
	sleep 0.05
done
private_server_stop
kill -0 $bg 2>/dev/null || fail "the batch ended before Barbican stopped: nothing was tested"
before=$(grep -c "GET /v1/secrets/.*/payload" "$BARBICAN_DIR/access.log")
ctl status >/dev/null || fail "status failed while Barbican was down"
private_server_start
wait $bg
read -r rc ms <"$T/rc"
n=0
for k in "${ids[@]}"; do [ -n "$(key_serial "$k")" ] && n=$((n + 1)); done
if [ "$rc" = 0 ]; then
	expect_eq "$n" 60 "keys in the kernel after a batch install that succeeded"
	echo "restart mid-batch: completed in $ms ms ($before payloads before the stop)"
	ctl key release "${ids[@]}" >/dev/null || fail "release of the batch"
else
	expect_eq "$n" 0 "keys in the kernel after a batch install that failed"
	[ -s "$T/out" ] || fail "a failed batch install said nothing"
	echo "restart mid-batch: failed cleanly in $ms ms ($before payloads before the stop): $(head -c 300 "$T/out")"
fi
[ "$ms" -le 22000 ] || fail "the batch took $ms ms, deadline 20 s"
# Barbican is back: the batch installs.
ctl key install "${ids[@]}" >/dev/null || fail "the batch does not install after the restart"
n=0
for k in "${ids[@]}"; do [ -n "$(key_serial "$k")" ] && n=$((n + 1)); done
expect_eq "$n" 60 "keys after the batch install with Barbican back"
ctl key release "${ids[@]}" >/dev/null
echo ok
