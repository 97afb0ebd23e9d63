#!/bin/bash
# keyscopectl scope list and status at 10,000 scopes: the table, read from the reply's text
# without a json-c tree, is the one the --json reply (json-c, as before) gives in the format
# keyscopectl(8) names; a malformed, cut or failed reply prints nothing on standard output.
. "$(dirname "$0")/lib.sh"
RAW=$KEYSCOPE_BUILDDIR/tools/ks-raw
n=10000
LOG_LEVEL=warning start_daemon

# 10,000 keys: KeyCreate requests pipelined on one connection, then installed 500 a call.
for _ in $(seq "$n"); do printf '{"method":"keyscope.KeyCreate"}\0'; done |
	"$RAW" --count "$n" "$KEYSCOPE_SOCKET" 60000 | sed -n 's/.*"key-id":"\([^"]*\)".*/\1/p' >"$T/ids"
expect_eq "$(sort -u "$T/ids" | wc -l)" "$n" "keys created"
xargs -n 500 "$KEYSCOPECTL" key install <"$T/ids" >/dev/null
# One scope with two holders and one released to 0 (lingering or gone), so the columns differ.
first=$(head -n 1 "$T/ids")
ctl key install "$first" >/dev/null

# The --json path is json-c's, unchanged: render it as keyscopectl(8)'s table.
table() { # FILE: --json output -> "%-40s %10s %7s" rows with the header
	/usr/bin/python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
print("%-40s %10s %7s" % ("KEY-ID", "SERIAL", "HOLDERS"))
for s in p["scopes"]:
	print("%-40s %10d %7d" % (s["key-id"], s["serial"], s["holders"]))' "$1"
}
ctl --json scope list >"$T/list.json"
ctl scope list >"$T/list" || fail "scope list failed"
table "$T/list.json" >"$T/want"
expect_eq "$(wc -l <"$T/list")" $((n + 1)) "lines of scope list"
cmp -s "$T/list" "$T/want" || fail "scope list differs from the --json reply: $(diff "$T/list" "$T/want" | head -n 5)"
grep -q "^$first  *[1-9][0-9]*       2\$" "$T/list" || fail "two holders not shown: $(grep "$first" "$T/list")"

# status: the same rows after "scopes: 10000", the other lines from the rest of the reply.
ctl --json status >"$T/status.json"
ctl status >"$T/status" || fail "status failed"
expect_eq "$(grep -c '^  scopes:    10000$' "$T/status")" 1 "status's scope count"
table "$T/status.json" >"$T/want-status"
sed -n '/^KEY-ID/,/^$/p' "$T/status" | sed '/^$/d' | cmp -s - "$T/want-status" ||
	fail "status's scopes differ from its --json reply"
/usr/bin/python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
print("keyscoped %s\n  socket:    %s\n  state dir: %s\n  keyring:   %d (keyscope, linked in %s)" %
      (p["version"], p["socket"], p["state-dir"], p["keyring"], p["keyring-spec"]))' \
	"$T/status.json" | cmp -s - <(head -n 4 "$T/status") || fail "status's head: $(head -n 4 "$T/status")"
stop_daemon

# A fake keyscoped answers each connection with the bytes of a file (then closes): the reader's
# refusals as a user meets them.
serve() { # FILE: answer the next connection with FILE
	rm -f "$T/fake.sock"
	/usr/bin/python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
open(sys.argv[1] + ".ready", "w").close()
c, _ = s.accept()
c.recv(65536)
c.sendall(open(sys.argv[2], "rb").read())
c.close()' "$T/fake.sock" "$1" &
	while [ ! -e "$T/fake.sock.ready" ]; do sleep 0.02; done
	rm -f "$T/fake.sock.ready"
}
fake_list() { # FILE [ARGS]: scope list against FILE; sets out, err, rc
	serve "$1"
	shift
	rc=0
	"$KEYSCOPECTL" --socket "$T/fake.sock" "$@" >"$T/out" 2>"$T/err" || rc=$?
	wait
	out=$(cat "$T/out") err=$(cat "$T/err")
}
reply() { printf '{"parameters":{"keyring":1,"scopes":[%s]}}' "$1"; }
json=$(tr -d '\n' <"$T/list.json")
scopes=${json#*\"scopes\":}

# The real 10,000-scope reply, replayed: the same table.
reply "" >/dev/null
printf '{"parameters":%s}\0' "$json" >"$T/r"
fake_list "$T/r" scope list
expect_eq "$rc" 0 "replayed reply"
cmp -s "$T/out" "$T/want" || fail "replayed reply gives another table"

# Cut in the middle of the 9,000th scope (its NUL sent): nothing printed, the reason said.
head -c "$(( $(wc -c <"$T/r") * 9 / 10 ))" "$T/r" >"$T/cut"
printf '\0' >>"$T/cut"
fake_list "$T/cut" scope list
expect_eq "$rc" 1 "exit status of a cut reply"
expect_eq "$out" "" "output of a cut reply"
grep -q "malformed reply from keyscoped, nothing printed: malformed JSON at byte" <<<"$err" ||
	fail "cut reply: $err"

# The connection closed before the reply ended: nothing printed.
head -c 1000000 "$T/r" >"$T/closed"
fake_list "$T/closed" scope list
expect_eq "$rc" 1 "exit status of a closed connection"
expect_eq "$out" "" "output of a closed connection"
grep -q "talking to keyscoped failed" <<<"$err" || fail "closed connection: $err"

# The last scope's serial not an integer: strict JSON of the wrong shape, nothing printed.
printf '{"parameters":{"scopes":%s,"x":0}}\0' "${scopes%]\}*}, {\"key-id\":\"z\",\"serial\":\"7\",\"holders\":1}]" >"$T/shape"
fake_list "$T/shape" status
expect_eq "$rc:$out" "1:" "status with a bad serial"
grep -q "malformed reply from keyscoped, nothing printed: a scope's serial or holders is not an integer" <<<"$err" ||
	fail "bad serial: $err"

# An error reply is the daemon's message, as for every command.
printf '{"error":"keyscope.PermissionDenied","parameters":{"message":"not for you"}}\0' >"$T/e"
fake_list "$T/e" scope list
expect_eq "$rc:$out" "1:" "error reply"
expect_eq "$err" "keyscopectl: not for you (keyscope.PermissionDenied)" "error reply's message"

# Unknown members are skipped, escapes decoded, the columns padded as printf pads them.
printf '{"new":{"a":[1,2]},"parameters":{"scopes":[{"v":2,"key-id":"\\u0061b\\/c","serial":-5,"holders":12345678,"more":[{}]}],"later":"x"}}\0' >"$T/u"
fake_list "$T/u" scope list
expect_eq "$rc" 0 "reply with unknown members"
expect_eq "$out" "$(printf '%-40s %10s %7s\n%-40s %10d %7d' KEY-ID SERIAL HOLDERS ab/c -5 12345678)" "table of an unusual reply"
echo ok
