#!/bin/bash
# Only root may change anything; read-only calls are allowed to the configured read-group and
# refused to everybody else, with a message that says why.
. "$(dirname "$0")/lib.sh"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
cat >"$T/keyscoped.conf" <<CONF
# test config
read-group = 4242
log-level = debug
CONF
start_daemon --config "$T/keyscoped.conf"
id=$(ctl key create)
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$KEYSCOPECTL" "$@"; }
as_reader() { setpriv --reuid=65534 --regid=65534 --groups=4242 "$KEYSCOPECTL" "$@"; }

# "key install ID ID" is a batch: the daemon reads it without a tree (lib/proto-ids.c), and
# checks the peer all the same.
for cmd in "key create" "key install $id" "key install $id $id" "key release $id" \
	"key release $id $id" "key delete $id" "key clone $id"; do
	# shellcheck disable=SC2086
	expect_fail_msg "keyscope.PermissionDenied" as_nobody $cmd
	# shellcheck disable=SC2086
	expect_fail_msg "needs root" as_reader $cmd
done
import_as_nobody() { printf '%32s' "" | as_nobody key import; }
expect_fail_msg "keyscope.PermissionDenied" import_as_nobody
expect_fail_msg "needs root or the configured read-group" as_nobody status
expect_fail_msg "keyscope.PermissionDenied" as_nobody key list

as_reader status >/dev/null || fail "read-group member refused status"
as_reader key list | grep -q "$id" || fail "read-group member cannot list keys"
expect_eq "$(count_keyscope_keys)" 0 "kernel keys after refused calls"
expect_eq "$(ls "$STATE/keys" | wc -l)" 1 "key files after refused calls"
grep -q "Refused keyscope.KeyCreate from uid 65534" "$DAEMON_LOG" || fail "refusal not logged"

# State files are root's alone.
expect_eq "$(stat -c %a "$STATE")" 700 "state dir mode"
expect_eq "$(stat -c %a "$STATE/master.key")" 400 "master key mode"
expect_eq "$(stat -c %a "$STATE/keys/$id.key")" 600 "key file mode"
echo ok
