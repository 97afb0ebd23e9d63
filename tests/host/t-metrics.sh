#!/bin/bash
# keyscopectl metrics and the metrics-file parse with a real parser (python3-prometheus-client:
# the OpenMetrics parser for keyscopectl metrics, the Prometheus text parser for --prometheus
# and for the file node_exporter's textfile collector reads), and the counters move as this
# test acts: a key installed and released, a fetch, a refused and a malformed request, an
# attach that fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/metrics-lib.sh"

mkdir -m 0755 "$T/textfile"
PROM=$T/textfile/keyscope.prom
printf 'metrics-file = %s\nmetrics-interval = 1\n' "$PROM" >"$T/keyscoped.conf"
start_daemon --config "$T/keyscoped.conf"

snap before
for m in keyscope_key_installs_total keyscope_key_releases_total \
	keyscope_key_invalidations_total; do
	expect_eq "$(value "$T/before" $m)" 0 "$m at start"
done
expect_eq "$(value "$T/before" keyscope_scopes)" 0 "scopes at start"
expect_eq "$(value "$T/before" keyscope_state_writable)" 1 "state writable"
value "$T/before" keyscope_kernel_key_quota_keys_max >/dev/null
[ "$(value "$T/before" keyscope_kernel_key_quota_keys_max)" -gt 0 ] || fail "quota max is 0"
# Every family keyscoped.8 promises is there.
for m in keyscope_fetches_total keyscope_attaches_total keyscope_requests_refused_total; do
	grep -q "^$m{" "$T/before" || fail "$m missing"
done
for m in keyscope_fetch_duration_seconds_count keyscope_attach_duration_seconds_count \
	keyscope_holders keyscope_attachments keyscope_volumes_pending \
	keyscope_consumer_changes_pending keyscope_unlocks_running keyscope_unlocks_queued \
	keyscope_source_retries_total keyscope_cache_hits_total; do
	grep -q "^$m{" "$T/before" || fail "$m missing"
done

# A key installed and released: one kernel key added, one holder dropped, one invalidation.
id=$(ctl key create --name metrics)
ctl key install "$id" >/dev/null
snap held
expect_eq "$(value "$T/held" keyscope_key_installs_total)" 1 "installs after key install"
expect_eq "$(value "$T/held" keyscope_scopes)" 1 "scopes while held"
expect_eq "$(value "$T/held" keyscope_holders)" 1 "holders while held"
expect_eq "$(value "$T/held" keyscope_fetches_total 'result="ok",source="local"')" 1 \
	"local fetches"
expect_eq "$(value "$T/held" keyscope_fetch_duration_seconds_count 'source="local"')" 1 \
	"local fetch latency observations"
ctl key release "$id" >/dev/null
snap released
expect_eq "$(value "$T/released" keyscope_key_releases_total)" 1 "releases"
expect_eq "$(value "$T/released" keyscope_key_invalidations_total)" 1 "invalidations"
expect_eq "$(value "$T/released" keyscope_scopes)" 0 "scopes after release"

# Refusals by reason: a caller that is not root, a malformed key-id.
setpriv --reuid=65534 --regid=65534 --clear-groups "$KEYSCOPECTL" status >/dev/null 2>&1 &&
	fail "status as nobody succeeded"
printf '{"method":"keyscope.KeyInstall","parameters":{"key-id":"not a key-id!"}}\0' |
	"$KEYSCOPE_BUILDDIR/tools/ks-raw" "$KEYSCOPE_SOCKET" | grep -q keyscope.InvalidKeyId ||
	fail "a malformed key-id was not refused"
# An attach that fails (no such device): counted with its latency.
ctl attach /nonexistent/vdz --key "$id" >/dev/null 2>&1 && fail "attach of a missing device"
snap refused
expect_eq "$(value "$T/refused" keyscope_requests_refused_total 'reason="permission"')" 1 \
	"permission refusals"
expect_eq "$(value "$T/refused" keyscope_requests_refused_total 'reason="bad-request"')" 1 \
	"bad-request refusals"
expect_eq "$(value "$T/refused" keyscope_attaches_total 'result="error"')" 1 "failed attaches"
expect_eq "$(value "$T/refused" keyscope_attach_duration_seconds_count)" 1 \
	"attach latency observations"
grep -q 'Attach of /nonexistent/vdz .* failed' "$DAEMON_LOG" || fail "no attach-failed entry"
grep -q 'Refused keyscope.Status from uid 65534' "$DAEMON_LOG" || fail "no refusal entry"

# The Prometheus text of the same, and the file, parse with the Prometheus parser.
ctl metrics --prometheus | parse prometheus >"$T/prom" || fail "--prometheus text rejected"
expect_eq "$(value "$T/prom" keyscope_key_installs_total)" 1 "installs (--prometheus)"
# The file is rewritten every second: wait for one written after the refusals above.
for _ in $(seq 1 50); do
	[ -f "$PROM" ] && parse prometheus <"$PROM" >"$T/file" 2>/dev/null &&
		[ "$(value "$T/file" keyscope_attaches_total 'result="error"')" = 1 ] && break
	sleep 0.1
done
[ -f "$PROM" ] || fail "metrics-file $PROM was never written"
parse prometheus <"$PROM" >"$T/file" || fail "the metrics file does not parse"
expect_eq "$(value "$T/file" keyscope_attaches_total 'result="error"')" 1 "failed attaches (file)"
expect_eq "$(value "$T/file" keyscope_key_releases_total)" 1 "releases (file)"
expect_eq "$(stat -c %a "$PROM")" 644 "metrics-file mode (node_exporter reads it)"
grep -q '^# EOF' "$PROM" && fail "the file is in OpenMetrics form, not Prometheus text"
# Written by rename: no temporary file left beside it for the collector to trip on.
expect_eq "$(ls "$T/textfile")" keyscope.prom "files in the textfile folder"

# A metrics-file that cannot be written is logged, and the daemon goes on serving.
stop_daemon
printf 'metrics-file = %s\nmetrics-interval = 1\n' "$T/missing-dir/keyscope.prom" \
	>"$T/keyscoped.conf"
start_daemon --config "$T/keyscoped.conf"
grep -q "Failed to write the metrics file $T/missing-dir/keyscope.prom" "$DAEMON_LOG" ||
	fail "an unwritable metrics-file was not logged"
ctl metrics | grep -q '^keyscope_scopes 0$' || fail "metrics not served after a file error"
echo "metrics parsed: $(wc -l <"$T/refused") samples"
