# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for tests that read keyscoped's metrics with a real parser (python3-prometheus-client):
# source after tests/host/lib.sh. Skips the test when the parser is not installed.
# shellcheck shell=bash
PY=/usr/bin/python3
$PY -c 'import prometheus_client' 2>/dev/null ||
	skip "python3-prometheus-client is not installed (tools/install-deps installs it)"

# parse openmetrics|prometheus < TEXT: one "name{label="v",...} value" line per sample,
# labels sorted; fails (exit 1, the parser's complaint) on text the parser rejects.
parse() {
	$PY -c '
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
from prometheus_client.parser import text_string_to_metric_families as prom
text = sys.stdin.read()
fams = list((om if sys.argv[1] == "openmetrics" else prom)(text))
if not fams:
    sys.exit("no metric families")
for f in fams:
    for s in f.samples:
        labels = ",".join("%s=\"%s\"" % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %s" % (s.name, labels, repr(float(s.value))))
' "$1"
}
# value FILE NAME [LABELS]: the sample's value as an integer; fails when it is absent.
value() {
	local v
	v=$(awk -v k="$2{${3:-}}" '$1 == k { print $2 }' "$1")
	[ -n "$v" ] || fail "$2{${3:-}} is not in the metrics ($(wc -l <"$1") samples)"
	printf '%.0f\n' "$v"
}
snap() { # NAME: parses keyscopectl metrics (OpenMetrics) into $T/NAME
	ctl metrics >"$T/$1.om" || fail "keyscopectl metrics failed"
	tail -n 1 "$T/$1.om" | grep -qx '# EOF' || fail "OpenMetrics text does not end in # EOF"
	parse openmetrics <"$T/$1.om" >"$T/$1" || fail "OpenMetrics parser rejected the text"
}

