#!/bin/bash
# SIGHUP (systemctl reload keyscoped) re-reads keyscoped.conf and its drop-ins: under load (four
# clients connected and calling, a fifth calling keyscopectl in a loop) a changed client-timeout
# is applied without dropping a client, and the new timeout is the one a half-sent request then
# meets; a key that needs a restart is named; drop-ins apply in file-name order; a bad drop-in
# is refused with its file and line, the running configuration kept.
. "$(dirname "$0")/lib.sh"
conf=$T/keyscoped.conf
dropins=$conf.d
mkdir -p "$dropins"
printf '# the test daemon\nclient-timeout = 30\n' >"$conf"
start_daemon --config "$conf"

# wait_log PATTERN WHAT: the daemon's log shows PATTERN (fixed string) within 10 s.
wait_log() {
	for _ in $(seq 1 200); do
		grep -qF -- "$1" "$DAEMON_LOG" && return 0
		sleep 0.05
	done
	fail "$2: no '$1' in the log: $(tail -n 5 "$DAEMON_LOG")"
}
reload() { # the number of "Reloaded"/"Reload refused" lines before, so we wait for a new one
	local n
	n=$(grep -cE 'Reloaded the configuration|Reload refused' "$DAEMON_LOG" || true)
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 1 200); do
		[ "$(grep -cE 'Reloaded the configuration|Reload refused' "$DAEMON_LOG")" -gt "$n" ] &&
			return 0
		sleep 0.05
	done
	fail "no reload in the log after SIGHUP"
}

# A client that stays connected: one Ping at a time on one connection, until $T/stop exists.
# It prints "connected" after its first reply and "after" after its first reply once
# $T/reloaded exists, then how many replies it had before and after, or "dropped" if the daemon
# closed its connection.
cat >"$T/client.py" <<'EOF'
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["KEYSCOPE_SOCKET"])
before = after = 0
buf = b""
while not os.path.exists(sys.argv[1] + "/stop"):
    s.sendall(b'{"method":"keyscope.Ping"}\0')
    while b"\0" not in buf:
        k = s.recv(65536)
        if not k:
            print("dropped", before, after)
            sys.exit(1)
        buf += k
    reply, buf = buf.split(b"\0", 1)
    if b'"error"' in reply:
        print("error", reply.decode())
        sys.exit(1)
    if os.path.exists(sys.argv[1] + "/reloaded"):
        after += 1
        if after == 1:
            print("after", flush=True)
    else:
        before += 1
        if before == 1:
            print("connected", flush=True)
    time.sleep(0.02)
print("ok", before, after)
EOF
pids= loop=
trap 'rc=$?; set +e; touch "$T/stop"; kill $loop $pids 2>/dev/null; wait $loop $pids; (exit $rc); cleanup' EXIT
# wait_clients WORD: every client printed WORD within 10 s.
wait_clients() {
	for _ in $(seq 1 200); do
		[ "$(cat "$T"/client*.out | grep -cx "$1")" -eq 4 ] && return 0
		sleep 0.05
	done
	fail "not every client printed '$1': $(cat "$T"/client*.out | tr '\n' ' ')"
}
for i in 1 2 3 4; do
	/usr/bin/python3 "$T/client.py" "$T" >"$T/client$i.out" 2>&1 &
	pids="$pids $!"
done
( while [ ! -e "$T/stop" ]; do
	ctl status >/dev/null 2>&1 || echo "status failed" >>"$T/loop.err"
	echo >>"$T/loop.count"
done ) &
loop=$!
wait_clients connected

# A drop-in lowers the timeout (live); another, later by name, wins over it; a third changes a
# key that needs a restart.
printf 'client-timeout = 9\n' >"$dropins/10-first.conf"
printf '[keyscoped]\nclient-timeout = 3\n' >"$dropins/20-second.conf"
printf 'linger = 5\n' >"$dropins/30-restart.conf"
printf 'client-timeout = 1\n' >"$dropins/40-ignored.txt"	# not *.conf
reload
touch "$T/reloaded"
grep -qF "Reload: client-timeout = 3 (was 30), applied." "$DAEMON_LOG" ||
	fail "client-timeout not applied: $(grep Reload "$DAEMON_LOG")"
grep -qF "Reload: linger = 5 (running with 0) takes effect when keyscoped is restarted" \
	"$DAEMON_LOG" || fail "the restart-only key is not named: $(grep Reload "$DAEMON_LOG")"
grep -qF "1 key(s) applied, 1 need a restart" "$DAEMON_LOG" ||
	fail "reload summary: $(grep Reloaded "$DAEMON_LOG")"

# The clients go on calling on their connections after the reload.
wait_clients after

# The new timeout is the one a half-sent request meets now (the old one was 30 s).
half_sent() { # prints how the daemon ended a connection holding half a request
	/usr/bin/python3 - <<'EOF'
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(25)
s.connect(os.environ["KEYSCOPE_SOCKET"])
s.sendall(b'{"method":"keyscope.Pi')
try:
    print("closed" if s.recv(100) == b"" else "answered")
except socket.timeout:
    print("still open")
EOF
}
expect_eq "$(half_sent)" closed "a half-sent request after the reload"
grep -qF "no complete request for 3s" "$DAEMON_LOG" ||
	fail "the half-sent request was not dropped at the reloaded timeout"

# A bad drop-in: refused with its file and line, nothing of it applied, not even its good line.
printf 'client-timeout = 7\nclient-timeout = never\n' >"$dropins/50-bad.conf"
reload
grep -qF "$dropins/50-bad.conf:2: invalid value for 'client-timeout'" "$DAEMON_LOG" ||
	fail "bad drop-in not named with its line: $(tail -n 3 "$DAEMON_LOG")"
grep -qF "Reload refused" "$DAEMON_LOG" || fail "no 'Reload refused' line"
grep -qF "client-timeout = 7" "$DAEMON_LOG" && fail "a line of the refused drop-in was applied"
daemon_alive || fail "keyscoped exited on a bad drop-in"
expect_eq "$(half_sent)" closed "a half-sent request after the refused reload"
expect_eq "$(grep -c "no complete request for 3s" "$DAEMON_LOG")" 2 \
	"half-sent requests dropped at the kept timeout (3 s)"

# A same-named file masks nothing across folders given by --config (one folder), but an empty
# drop-in is fine: removing the bad one and reloading again applies the remaining files.
rm "$dropins/50-bad.conf"
reload
daemon_alive || fail "keyscoped exited on reload"

touch "$T/stop"
wait $loop
for p in $pids; do wait "$p" || true; done
pids= loop=
for i in 1 2 3 4; do
	read -r verdict before after < <(tail -n 1 "$T/client$i.out") || fail "client $i: nothing"
	expect_eq "$verdict" ok "client $i ($(cat "$T/client$i.out"))"
	[ "$before" -gt 0 ] && [ "$after" -gt 0 ] ||
		fail "client $i: $before calls before the reload, $after after"
done
[ ! -s "$T/loop.err" ] || fail "keyscopectl status failed during the reloads: $(sort -u "$T/loop.err")"
echo "4 clients kept their connections through 3 reloads ($(tail -qn 1 "$T"/client*.out |
	tr '\n' ' ')); keyscopectl status ran $(wc -l <"$T/loop.count") times meanwhile"

# At start, a bad drop-in stops the daemon with its file and line.
stop_daemon
printf 'no-such-key = 1\n' >"$dropins/60-start.conf"
if "$KEYSCOPED" --config "$conf" --socket "$KEYSCOPE_SOCKET" --state-dir "$STATE" \
	--keyring @s 2>"$T/err"; then fail "started with a bad drop-in"; fi
grep -qF "$dropins/60-start.conf:1: unknown option 'no-such-key'" "$T/err" ||
	fail "bad drop-in at start: $(cat "$T/err")"
echo ok
