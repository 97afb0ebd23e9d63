#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/barbican.sh: fetch + install N delegated keys (default 500) through keyscoped, against
# python3-barbicanclient fetching the same N payloads in a loop (secrets.get(ref).payload, as
# castellan and os-brick do) and a curl-per-key shell loop; same Barbican, same run. Then the
# same against the server with --workers W (default 4) processes.
#
# Every key is a 64-byte (512-bit) symmetric secret of user-a in project-a, delegated by read
# ACL to the node user (project-access false). The table gives keys/s, Barbican requests per key
# (from the server's access log), the client's CPU seconds and the server's CPU seconds, and keys
# per server CPU second: the rate this client would reach if the server had its CPUs to itself.
#
# Settings: BENCH_KEYS (500), BENCH_WORKERS (4), BENCH_CONCURRENCY (keyscoped's
# barbican-concurrency, 8), BENCH_WINDOW (install requests in flight, 32).
set -eu
if [ -z "${KEYSCOPE_BENCH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "bench/barbican.sh runs keyscoped: run it as root" >&2; exit 1; }
	KEYSCOPE_BENCH_INNER=1 exec keyctl session keyscope-bench-barbican bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
top=$PWD
B=${KEYSCOPE_BUILDDIR:-$top/build/out}
N=${BENCH_KEYS:-500}
WORKERS=${BENCH_WORKERS:-4}
CONC=${BENCH_CONCURRENCY:-8}
WINDOW=${BENCH_WINDOW:-32}
PY=/usr/bin/python3
NODE_USER=node-bench
NODE_PROJECT=project-node

[ -x "$B/bench/bench-install" ] || { echo "bench-install missing: run make bench (or make all $B/bench/bench-install)" >&2; exit 1; }
if ! $PY -c 'import barbicanclient' 2>/dev/null; then
	echo "installing python3-barbicanclient" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends python3-barbicanclient >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends python3-barbicanclient >/dev/null
	}
fi
D=$(mktemp -d /tmp/keyscope-bench-barbican.XXXXXX)
pid=
cleanup() {
	[ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
	tests/barbican/server stop "$D/srv" || true
	rm -rf "$D"
}
trap cleanup EXIT

printf 'barbican-url = https://127.0.0.1:1\n' >"$D/probe.conf"
timeout 1 "$B/keyscoped" --config "$D/probe.conf" --socket "$D/probe.sock" --state-dir "$D/probe" \
	--keyring @s >"$D/probe.err" 2>&1 || true
if grep -q "unknown option 'barbican-url'" "$D/probe.err"; then
	echo "keyscoped has no Barbican key source (barbican-url is unknown): nothing to measure" >&2
	exit 1
fi

eval "$(tests/barbican/server start "$D/srv")"
port=${BARBICAN_URL##*:}

# The N secrets, made in one keep-alive connection; the material comes from os.urandom inside
# the process and goes only to Barbican.
$PY - "$BARBICAN_URL" "$BARBICAN_CA" "$N" "$NODE_USER" >"$D/ids" <<'EOF'
import base64, http.client, json, os, ssl, sys
url, ca, n, node = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host, port = url.split("//")[1].split(":")
conn = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=ca))
def req(method, path, body):
    conn.request(method, path, body=json.dumps(body), headers={
        "X-Project-Id": "project-a", "X-User-Id": "user-a", "X-Roles": "creator",
        "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit("%s %s: HTTP %d %s" % (method, path, r.status, data[:200]))
    return data
for i in range(n):
    ref = json.loads(req("POST", "/v1/secrets", {
        "name": "bench-%d" % i, "secret_type": "symmetric", "algorithm": "aes",
        "bit_length": 512, "mode": "xts", "payload_content_type": "application/octet-stream",
        "payload_content_encoding": "base64",
        "payload": base64.b64encode(os.urandom(64)).decode()}))["secret_ref"]
    sid = ref.rsplit("/", 1)[1]
    req("PUT", "/v1/secrets/%s/acl" % sid, {"read": {"users": [node], "project-access": False}})
    print(sid)
EOF
[ "$(wc -l <"$D/ids")" = "$N" ] || { echo "could not create $N secrets" >&2; exit 1; }

# CPU seconds (user + system) of a process and its children (the server's workers).
cpu_of() {
	local p sum=0 t
	for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
		sum=$((sum + t))
	done
	awk -v t="$sum" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
requests() { wc -l <"$D/srv/access.log"; }

rows=()
row() { # SERVER HOW SECONDS REQUESTS CLIENT_CPU SERVER_CPU
	rows+=("$(printf '%s|%s|%s|%s|%s|%s' "$@")")
}

# barbicanclient: one client, keys in sequence, as a service using castellan would.
run_barbicanclient() { # SERVER-LABEL
	local r0 s0 out
	r0=$(requests) s0=$(cpu_of "$(cat "$D/srv/pid")")
	out=$($PY - "$BARBICAN_URL" "$BARBICAN_CA" "$NODE_PROJECT" "$NODE_USER" "$D/ids" <<'EOF'
import os, sys, time
from keystoneauth1 import session
from barbicanclient import client
url, ca, project, user, idfile = sys.argv[1:6]
ids = open(idfile).read().split()
s = session.Session(verify=ca, additional_headers={"X-User-Id": user, "X-Roles": "creator"})
c = client.Client(session=s, endpoint=url, project_id=project)
c0, t0 = os.times(), time.monotonic()
for sid in ids:
    if len(c.secrets.get("%s/v1/secrets/%s" % (url, sid)).payload) != 64:
        sys.exit("short payload")
t, c1 = time.monotonic() - t0, os.times()
if len(ids) == 0:
    sys.exit("no key-ids")
print("%.3f %.2f" % (t, (c1.user - c0.user) + (c1.system - c0.system)))
EOF
) || exit 1
	row "$1" "python3-barbicanclient loop" "${out% *}" $(($(requests) - r0)) "${out#* }" \
		"$(sub "$(cpu_of "$(cat "$D/srv/pid")")" "$s0")"
}

# curl: one process per key, payload to /dev/null.
run_curl() {
	local r0 s0 t0 t c0 c1
	r0=$(requests) s0=$(cpu_of "$(cat "$D/srv/pid")")
	c0=$(awk '{ print $16 + $17 }' /proc/$$/stat)
	t0=$EPOCHREALTIME
	while read -r sid; do
		curl -sS --fail --cacert "$BARBICAN_CA" -o /dev/null \
			-H "X-Project-Id: $NODE_PROJECT" -H "X-User-Id: $NODE_USER" -H "X-Roles: creator" \
			-H "Accept: application/octet-stream" "$BARBICAN_URL/v1/secrets/$sid/payload"
	done <"$D/ids"
	t=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
	c1=$(awk '{ print $16 + $17 }' /proc/$$/stat)
	row "$1" "curl per key (shell loop)" "$t" $(($(requests) - r0)) \
		"$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')" \
		"$(sub "$(cpu_of "$(cat "$D/srv/pid")")" "$s0")"
}

# keyscoped: a fresh daemon (cache off: every key comes from Barbican), install requests through
# bench-install: WINDOW in flight with one key-id each (each key: metadata + payload), or all N
# key-ids in one request (a boot: the daemon lists the delegations first, a few requests, and
# then fetches each payload alone); CONC requests to Barbican in flight inside the daemon.
run_keyscoped() { # SERVER-LABEL WINDOW BATCH
	local r0 s0 k0 out how
	rm -rf "$D/state" "$D/sock"
	cat >"$D/conf" <<EOF
barbican-url = $BARBICAN_URL
barbican-ca-file = $BARBICAN_CA
barbican-auth = none
barbican-project-id = $NODE_PROJECT
barbican-user-id = $NODE_USER
barbican-roles = creator
barbican-concurrency = $CONC
barbican-deadline = 300
barbican-timeout = 60
barbican-cache = no
EOF
	"$B/keyscoped" --config "$D/conf" --socket "$D/sock" --state-dir "$D/state" --keyring @s \
		--log-level warning 2>>"$D/keyscoped.log" &
	pid=$!
	for _ in $(seq 100); do [ -S "$D/sock" ] && break; sleep 0.05; done
	r0=$(requests) s0=$(cpu_of "$(cat "$D/srv/pid")") k0=$(cpu_of "$pid")
	out=$("$B/bench/bench-install" daemon "$D/sock" "$2" "$3" <"$D/ids") ||
		{ tail -n 5 "$D/keyscoped.log" >&2; exit 1; }
	if [ "$3" = 1 ]; then
		how="keyscoped, 1 key per install request, $2 in flight"
	else
		how="keyscoped, $3 keys per install request"
	fi
	row "$1" "$how (barbican-concurrency $CONC)" \
		"$(awk '{ print $4 }' <<<"$out")" $(($(requests) - r0)) \
		"$(sub "$(cpu_of "$pid")" "$k0")" "$(sub "$(cpu_of "$(cat "$D/srv/pid")")" "$s0")"
	kill "$pid"
	wait "$pid" || true
	pid=
}

measure() { # SERVER-LABEL
	run_barbicanclient "$1"
	run_curl "$1"
	run_keyscoped "$1" "$WINDOW" 1
	run_keyscoped "$1" 1 "$N"
}

measure "1 process"
tests/barbican/server stop "$D/srv"
tests/barbican/server start "$D/srv" "$port" --workers "$WORKERS" >/dev/null
measure "$WORKERS worker processes"

echo "keyscope Barbican bench: $N delegated 64-byte keys, $(nproc) cores, $(uname -r), $(date -u +%F)"
echo "server: Barbican $(dpkg-query -W -f '${Version}' python3-barbican) (sqlite, simple_crypto,"
echo "HTTPS on 127.0.0.1 with keep-alive), tests/barbican/serve.py; CPU in seconds (user + system)."
echo
echo "| server | client | keys/s | seconds | requests/key | client CPU s | server CPU s | keys per server CPU s | vs barbicanclient |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
base=
for r in "${rows[@]}"; do
	IFS='|' read -r srv how secs req ccpu scpu <<<"$r"
	case $how in python3-barbicanclient*) base=$secs ;; esac
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$srv" "$how" \
		"$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')" "$secs" \
		"$(awk -v r="$req" -v n="$N" 'BEGIN { printf "%.2f", r / n }')" "$ccpu" "$scpu" \
		"$(awk -v n="$N" -v c="$scpu" 'BEGIN { printf "%.0f", (c > 0 ? n / c : 0) }')" \
		"$(awk -v b="$base" -v s="$secs" 'BEGIN { printf "%.2f x", b / s }')"
done
