#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --systemd --disk jr:32M
# keyscoped runs as keyscoped.service (as make install writes it, pointing at the build) with
# its catalog installed: a format, an attach, a refused request, a failed attach, a detach and
# a rebind are structured journal entries with their MESSAGE_IDs and KEYSCOPE_* fields
# (journalctl -o json), journalctl -x explains them from the catalog, and no entry carries the
# key. STATUS= says what is served; the metrics-file is written under the unit's sandbox and
# parses.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"

B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
unset KEYSCOPE_SOCKET	# keyscoped.service's socket, /run/keyscope/keyscoped.sock
U=/run/systemd/system
state=$(mktemp -d /run/keyscope-journal.XXXXXX)
ks() { "$B/keyscopectl" "$@"; }

[ "$(systemctl show -P ActiveState systemd-journald.service)" = active ] ||
	vm_skip "systemd-journald is not running in this guest"

cleanup() {
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "--- keyscoped's journal"
		journalctl --no-pager -q -u keyscoped.service | tail -n 25 || true
	fi
	ks detach jrvol >/dev/null 2>&1 || true
	systemctl stop keyscoped.service 2>/dev/null || true
	exit $rc
}
trap cleanup EXIT

# --- install: the unit as make install writes it, the catalog where make install puts it ----
mkdir -p "$U/keyscoped.service.d"
printf 'metrics-file = %s/keyscope.prom\nmetrics-interval = 1\n' "$state" >"$state/keyscoped.conf"
args="--config $state/keyscoped.conf --state-dir $state/state --log-level info"
sed -e "s|^ExecStart=/usr/sbin/keyscoped \(.*\)|ExecStart=$B/keyscoped \1 $args|" \
	"$KEYSCOPE_TOP/systemd/keyscoped.service" >"$U/keyscoped.service"
grep -q "^ExecStart=$B/keyscoped " "$U/keyscoped.service" || vm_die "ExecStart not rewritten"
printf '[Service]\nReadWritePaths=%s\nPrivateTmp=no\nProtectHome=no\n' "$state" \
	>"$U/keyscoped.service.d/test.conf"
install -D -m 0644 "$KEYSCOPE_TOP/docs/keyscope.catalog" \
	/usr/lib/systemd/catalog/keyscope.catalog
journalctl --update-catalog || vm_die "journalctl --update-catalog failed"
systemctl daemon-reload
since=$(date '+%Y-%m-%d %H:%M:%S')
systemctl start keyscoped.service
[ "$(systemctl show -P ActiveState keyscoped.service)" = active ] || vm_die "keyscoped is not active"
status=$(systemctl show -P StatusText keyscoped.service)
echo "STATUS=$status"
[ "$status" = "Serving 0 scopes, 0 volumes; local keys only" ] ||
	vm_die "STATUS at start is '$status'"

# --- the events: a known key (written by printf, a builtin: never in an argv), an attach, a
# refusal, a failed attach and a detach ------------------------------------------------------
hex=$(head -c 64 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
id=$(printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | ks key import --name journal)
dev=$(vm_disk jr)
ks format "$dev" --key "$id" >/dev/null
ks attach "$dev" --name jrvol >/dev/null
status=$(systemctl show -P StatusText keyscoped.service)
echo "STATUS=$status"
[ "$status" = "Serving 1 scope, 1 volume; local keys only" ] ||
	vm_die "STATUS with one volume is '$status'"
if setpriv --reuid=65534 --regid=65534 --clear-groups "$B/keyscopectl" detach jrvol \
	>/dev/null 2>&1; then
	vm_die "detach as uid 65534 succeeded"
fi
ks attach /dev/nonexistent --name nothing >/dev/null 2>&1 && vm_die "attach of a missing device"
ks detach jrvol >/dev/null
id2=$(ks key clone "$id")
ks rebind "$dev" --key "$id2" >/dev/null
journalctl --sync
journalctl --no-pager -o json --since "$since" -u keyscoped.service >"$state/journal.json"
echo "journal: $(wc -l <"$state/journal.json") entries of keyscoped.service"

# entry EVENT JQ-CONDITION: the event's entry with its ID, from keyscoped.service, matching.
entry() {
	jq -s -e --arg ev "$1" "any(.[]; .KEYSCOPE_EVENT == \$ev and $2 and
		._SYSTEMD_UNIT == \"keyscoped.service\")" "$state/journal.json" >/dev/null ||
		vm_die "no $1 entry with $2 in keyscoped.service's journal"
	echo "journal: $1 entry with its fields"
}
entry volume-attached ".MESSAGE_ID == \"5286561ca8e34885acefa4ba67775847\" and
	.KEYSCOPE_VOLUME == \"jrvol\" and .KEYSCOPE_DEVICE == \"$dev\" and
	.KEYSCOPE_KEY_ID == \"$id\" and .KEYSCOPE_PEER_UID == \"0\" and
	(.KEYSCOPE_PEER_PID | test(\"^[0-9]+\$\"))"
entry request-refused ".MESSAGE_ID == \"2914b1f33a474042a14680716a33933f\" and
	.KEYSCOPE_PEER_UID == \"65534\" and .KEYSCOPE_ERROR == \"keyscope.PermissionDenied\""
entry attach-failed ".MESSAGE_ID == \"156a33d5d0c04e07b4822e8bf71841b6\" and
	.KEYSCOPE_DEVICE == \"/dev/nonexistent\" and .KEYSCOPE_ERROR == \"keyscope.NoSuchDevice\""
entry volume-detached ".MESSAGE_ID == \"2364128bc0144ba6887aed41097b3d18\" and
	.KEYSCOPE_VOLUME == \"jrvol\" and .KEYSCOPE_KEY_ID == \"$id\""
entry volume-formatted ".MESSAGE_ID == \"ece444c8a13f43e5aa93189e6a5b8467\" and
	.KEYSCOPE_DEVICE == \"$dev\" and .KEYSCOPE_KEY_ID == \"$id\""
entry volume-rebound ".MESSAGE_ID == \"8ea18051159e4e31ae196896cb97ab67\" and
	.KEYSCOPE_DEVICE == \"$dev\" and .KEYSCOPE_KEY_ID == \"$id2\""
entry key-installed ".MESSAGE_ID == \"1cd9f7de6d344c608bf78b93b307f99c\" and
	.KEYSCOPE_KEY_ID == \"$id\""
entry key-invalidated ".MESSAGE_ID == \"d9549808b08e46b7bc4a951346b55488\" and
	.KEYSCOPE_KEY_ID == \"$id\""
n=$(journalctl --no-pager -q MESSAGE_ID=5286561ca8e34885acefa4ba67775847 --since "$since" |
	wc -l)
[ "$n" = 1 ] || vm_die "journalctl MESSAGE_ID=<volume-attached> shows $n entries, want 1"

# --- journalctl -x: the catalog's text, with the entry's fields filled in -------------------
journalctl --no-pager -x -q -u keyscoped.service --since "$since" >"$state/x.txt"
grep -q "Subject: Volume jrvol attached" "$state/x.txt" ||
	vm_die "journalctl -x shows no catalog subject for the attach: $(tail -n 5 "$state/x.txt")"
grep -q "keyscoped opened $dev as /dev/mapper/jrvol by keyring reference" "$state/x.txt" ||
	vm_die "journalctl -x shows no catalog text for the attach"
grep -q "Subject: Control request refused (keyscope.PermissionDenied)" "$state/x.txt" ||
	vm_die "journalctl -x shows no catalog subject for the refusal"
echo "journalctl -x: catalog text with the fields filled in"

# --- no key material in any field of any entry ---------------------------------------------
b64=$(printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | base64 -w0)
up=$(printf '%s' "$hex" | tr a-f A-F)
journalctl --no-pager -o export --since "$since" >"$state/export"
for f in "$state/journal.json" "$state/x.txt" "$state/export"; do
	if printf '%s\n%s\n%s\n' "$hex" "$up" "$b64" | grep -a -F -q -f - "$f"; then
		vm_die "key material (hex or base64) in $f"
	fi
	if od -An -v -tx1 "$f" | tr -d ' \n' | grep -F -q "$hex"; then
		vm_die "raw key bytes in $f"
	fi
done
printf '%s' "$hex" | grep -F -q "$(printf '%s' "$hex" | cut -c 9-40)" || vm_die "search broken"
echo "journal: no key material in $(wc -l <"$state/export") export lines"

# --- the metrics-file, written from inside the unit's sandbox --------------------------------
sleep 1.5
[ -f "$state/keyscope.prom" ] || vm_die "no metrics-file $state/keyscope.prom"
/usr/bin/python3 - "$state/keyscope.prom" <<'EOF' || vm_die "the metrics-file does not parse"
import sys
from prometheus_client.parser import text_string_to_metric_families
s = {x.name + repr(sorted(x.labels.items())): x.value
     for f in text_string_to_metric_families(open(sys.argv[1]).read()) for x in f.samples}
assert s["keyscope_attaches_total[('result', 'ok')]"] == 1, s
assert s["keyscope_attaches_total[('result', 'error')]"] == 1, s
assert s["keyscope_requests_refused_total[('reason', 'permission')]"] == 1, s
assert s["keyscope_attachments[]"] == 0, s
EOF
echo "metrics-file: parses, 1 attach ok, 1 failed, 1 refusal"
