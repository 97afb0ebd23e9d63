#!/bin/bash
# A key installed again after its release (the warm install, issue 13) is unsealed from the
# store's cache: keyscoped opens no key file for it, while the first install after a start
# reads each key's file once. A file changed behind the store's back (replaced by rename) is
# read again on its next install. System calls, seen with strace: no times.
. "$(dirname "$0")/lib.sh"
command -v strace >/dev/null || skip "strace is not installed (apt-get install strace)"
n=50
# opens of keys/*.key by keyscoped while "$@" runs
key_opens() {
	local out=$T/trace.$RANDOM
	strace -qq -f -e trace=openat,open -o "$out" -p "$DAEMON_PID" 2>"$out.err" &
	local sp=$!
	for _ in $(seq 200); do
		[ "$(awk '/^TracerPid:/ { print $2 }' "/proc/$DAEMON_PID/status")" != 0 ] && break
		kill -0 $sp 2>/dev/null || skip "strace cannot attach here: $(cat "$out.err")"
		sleep 0.05
	done
	"$@" >/dev/null
	kill -INT $sp
	wait $sp || true
	grep -c '\.key"' "$out" || true
}

start_daemon
for _ in $(seq $n); do ctl key create; done >"$T/ids"
start_daemon	# nothing cached: the creates wrote the files, they read none
# shellcheck disable=SC2046
cold=$(key_opens ctl key install $(cat "$T/ids"))
expect_eq "$(count_keyscope_keys)" $n "kernel keys after the first install"
[ "$cold" -ge $n ] || fail "the first install opened $cold key files for $n keys"
# shellcheck disable=SC2046
ctl key release $(cat "$T/ids") >/dev/null
expect_eq "$(count_keyscope_keys)" 0 "kernel keys after the release"
# shellcheck disable=SC2046
warm=$(key_opens ctl key install $(cat "$T/ids"))
expect_eq "$warm" 0 "key files opened by the install after the release"
expect_eq "$(count_keyscope_keys)" $n "kernel keys after the second install"
# shellcheck disable=SC2046
ctl key release $(cat "$T/ids") >/dev/null

# One file put back by rename (a restored backup): read again, the others still not.
a=$(head -n 1 "$T/ids")
cp "$STATE/keys/$a.key" "$STATE/keys/restore.tmp"
mv "$STATE/keys/restore.tmp" "$STATE/keys/$a.key"
# shellcheck disable=SC2046
again=$(key_opens ctl key install $(cat "$T/ids"))
expect_eq "$again" 1 "key files opened after one was replaced"
expect_eq "$(count_keyscope_keys)" $n "kernel keys after the third install"
echo ok
