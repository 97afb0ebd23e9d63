#!/bin/bash
# The config file is read, flags override it, and every mistake names the file and line.
. "$(dirname "$0")/lib.sh"
conf=$T/keyscoped.conf
run_bad() { # CONTENT EXPECTED-MESSAGE
	printf '%s\n' "$1" >"$conf"
	if "$KEYSCOPED" --config "$conf" --socket "$KEYSCOPE_SOCKET" --state-dir "$STATE" 2>"$T/err"; then
		fail "started with config '$1'"
	fi
	grep -q -- "$2" "$T/err" || fail "config '$1': expected '$2', got: $(cat "$T/err")"
}
run_bad $'# ok\n\nlinger = soon' "$conf:3: invalid value for 'linger'"
run_bad 'no-such-option = 1' "$conf:1: unknown option 'no-such-option'"
run_bad 'just words' "$conf:1: expected 'key = value'"
run_bad 'keyring = @x' "invalid value for 'keyring'"
run_bad 'socket = relative/path' "invalid value for 'socket'"
run_bad 'log-level = loud' "invalid value for 'log-level'"
if "$KEYSCOPED" --config "$T/missing.conf" 2>"$T/err"; then fail "started with a missing --config"; fi
grep -q "Failed to read config file $T/missing.conf" "$T/err" || fail "missing config: $(cat "$T/err")"
if "$KEYSCOPED" --linger forever 2>"$T/err"; then fail "started with --linger forever"; fi
grep -q "Invalid value 'forever' for --linger" "$T/err" || fail "bad flag: $(cat "$T/err")"
"$KEYSCOPED" --help | grep -q -- "--state-dir" || fail "--help lacks --state-dir"

# The config file sets the socket; the flag wins over it.
printf '[keyscoped]\nsocket = %s\nstate-dir = %s\nkeyring = @s\nlinger = 1\n' \
	"$T/from-config.sock" "$STATE" >"$conf"
start_daemon --config "$conf"
[ ! -e "$T/from-config.sock" ] || fail "config socket used although --socket was given"
ctl status | grep -q "socket:    $KEYSCOPE_SOCKET" || fail "status does not show the flag's socket"

# linger = 1 from the config: the key stays a second after its last release, then goes.
id=$(ctl key create)
ctl key install "$id" >/dev/null
serial=$(key_serial "$id")
ctl key release "$id" >/dev/null
expect_eq "$(key_serial "$id")" "$serial" "key during linger"
ctl key install "$id" | grep -q "serial $serial holders 1" || fail "re-acquire during linger"
ctl key release "$id" >/dev/null
for _ in $(seq 1 40); do [ -z "$(key_serial "$id")" ] && break; sleep 0.1; done
[ -z "$(key_serial "$id")" ] || fail "key still there 4 s after a 1 s linger"
echo ok
