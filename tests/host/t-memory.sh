#!/bin/bash
# keyscoped's anonymous memory (issue 13) as an operator reads it in /proc/PID/status: what a
# held scope costs, and no growth that stays after a scope list, a status or a restart. The
# figures themselves are bench/scale.sh's (docs/benchmarks.md); these are coarse bounds that
# hold at any load: memory, not time.
. "$(dirname "$0")/lib.sh"
ldd "$KEYSCOPED" | grep -q libasan &&
	skip "keyscoped is built with AddressSanitizer, whose allocator and shadow memory say nothing about glibc's heap"
n=5000
RAW=$KEYSCOPE_BUILDDIR/tools/ks-raw
anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
LOG_LEVEL=warning start_daemon
for _ in $(seq $n); do printf '{"method":"keyscope.KeyCreate","parameters":{}}\0'; done |
	"$RAW" --count $n "$KEYSCOPE_SOCKET" 30000 | sed 's/.*"key-id":"\([^"]*\)".*/\1/' >"$T/ids"
expect_eq "$(grep -c . "$T/ids")" $n "keys created"
LOG_LEVEL=warning start_daemon	# a fresh daemon: the creates' work is not counted
a0=$(anon)
hold() { # install|release: every key, 1000 a request
	# shellcheck disable=SC2046
	for i in $(seq 0 1000 $((n - 1))); do
		ctl key "$1" $(sed -n "$((i + 1)),$((i + 1000))p" "$T/ids") >/dev/null
	done
}
hold install
a1=$(anon)
hold release
hold install	# the journal the restart replays: install, release, install
ctl scope list >/dev/null
ctl status >/dev/null
a2=$(anon)
echo "RssAnon KiB: empty $a0, $n held $a1, after list+status $a2"
# A held scope is its record (96 B), its sealed file in the store's cache (96 B, compact; kept
# so that a re-install after a release reads no file), their two table slots and the install's
# own pages: ~310 B. Main kept the whole file and a 128-byte record: 408 B.
per=$(( (a1 - a0) * 1024 / n ))
[ "$per" -le 352 ] || fail "$per bytes of RssAnon per held scope ($a0 -> $a1 KiB for $n)"
[ "$a2" -le $((a1 + 128)) ] || fail "RssAnon grew from $a1 to $a2 KiB after a list and a status"

stop_daemon
LOG_LEVEL=warning start_daemon
a3=$(anon)	# start_daemon asked for a status: a reply of 5000 scopes was sent
ctl scope list >/dev/null
ctl status >/dev/null
a4=$(anon)
echo "RssAnon KiB: restarted $a3, after list+status $a4"
expect_eq "$(ctl --json scope list | grep -o '"holders":1' | wc -l)" $n "held scopes after the restart"
# The start-up's parse of scopes.json and the large replies are freed among the scopes made
# since: their pages go back, so a restarted daemon holds no more than the one that installed
# the keys (2.7 MiB more at 10,000 before), and a list after it does not grow it either.
[ "$a3" -le $((a1 + 128)) ] || fail "RssAnon $a3 KiB after the restart, $a1 before it"
# Restarted, nothing is cached yet: a scope is its record and slot (~115 B; ~390 with the
# start-up's freed pages kept).
per=$(( (a3 - a0) * 1024 / n ))
[ "$per" -le 160 ] || fail "$per bytes of RssAnon per scope restarted ($a0 -> $a3 KiB for $n)"
[ "$a4" -le $((a3 + 128)) ] || fail "RssAnon grew from $a3 to $a4 KiB after a list and a status"
hold release
expect_eq "$(count_keyscope_keys)" 0 "kernel keys after the release"
echo ok
