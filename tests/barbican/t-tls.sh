#!/bin/bash
# TLS: with the server's CA the key is fetched; a CA that did not sign the server's certificate
# and a URL whose host name is not in the certificate are refused quickly, with an error that
# says it is the certificate, and nothing is installed. barbican-ca-dir (a rehashed folder)
# works the same both ways. A pinned CA replaces the system's store: with barbican-ca-file set,
# the daemon never looks into /etc/ssl/certs (seen with strace, where it is installed).
. "$(dirname "$0")/lib.sh"
need_barbican_source

id=$(secret_create "$OWNER")
delegate "$id"

# Another CA, with a certificate for 127.0.0.1 of its own (so only the issuer differs).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj "/CN=some other CA" -keyout "$T/other.key" -out "$T/other.pem" 2>/dev/null ||
	fail "openssl could not make a CA"

refused() { # WHAT: install must fail within 5 s naming the certificate, and leave no key
	local t0 out rc=0 ms
	t0=$EPOCHREALTIME
	out=$(ctl key install "$id" 2>&1) || rc=$?
	ms=$(elapsed_ms "$t0")
	[ $rc -ne 0 ] || fail "$1: install succeeded"
	echo "$out" | grep -qiE "certificate|TLS|SSL|verif" || fail "$1: error does not name TLS: $out"
	[ "$ms" -lt 5000 ] || fail "$1: refusal took $ms ms (a verification failure is not retried)"
	[ -z "$(key_serial "$id")" ] || fail "$1: key installed"
	echo "$1: refused in $ms ms: $out"
}

start_node "barbican-ca-file = $T/other.pem"
refused "server certificate from another CA"
grep -qiE "certificate|verif" "$DAEMON_LOG" || fail "the log does not name the certificate failure"
stop_daemon

port=${BARBICAN_URL##*:}
start_node "barbican-url = https://localhost:$port"
refused "host name not in the certificate"
stop_daemon

# The right CA and host: fetched.
start_node
ctl key install "$id" >/dev/null || fail "install with the server's CA failed"
[ -n "$(key_serial "$id")" ] || fail "no key with the server's CA"
ctl key release "$id" >/dev/null
stop_daemon

# barbican-ca-dir: a rehashed folder with the other CA only is refused, with the server's CA
# it is fetched (barbican-ca-file left empty).
mkdir "$T/cadir"
cp "$T/other.pem" "$T/cadir/other.pem"
openssl rehash "$T/cadir" || fail "openssl rehash failed"
node_conf
sed -i '/^barbican-ca-file/d' "$T/conf"
echo "barbican-ca-dir = $T/cadir" >>"$T/conf"
start_daemon --config "$T/conf"
refused "ca-dir without the server's CA"
stop_daemon
cp "$BARBICAN_CA" "$T/cadir/server-ca.pem"
openssl rehash "$T/cadir" || fail "openssl rehash failed"
start_daemon --config "$T/conf"
ctl key install "$id" >/dev/null || fail "install with the server's CA in barbican-ca-dir failed"
ctl key release "$id" >/dev/null
echo "barbican-ca-dir: refused without the server's CA, fetched with it"
stop_daemon

# Pinned: with barbican-ca-file, a failed verification must not fall back to the system's CAs.
if ! command -v strace >/dev/null; then
	echo "not checked (strace is not installed): the system store is not consulted when pinned"
	echo ok
	exit 0
fi
start_node "barbican-ca-file = $T/other.pem"
strace -qq -f -e trace=%file -o "$T/strace.log" -p "$DAEMON_PID" &
sp=$!
for _ in $(seq 1 50); do
	grep -q '^TracerPid:[[:space:]]*[1-9]' "/proc/$DAEMON_PID/status" && break
	sleep 0.1
done
refused "pinned CA, traced"
kill "$sp"
wait "$sp" 2>/dev/null || true
[ -s "$T/strace.log" ] || fail "strace saw nothing"
if grep -q '/etc/ssl/certs' "$T/strace.log"; then
	fail "with barbican-ca-file set, the system's CAs were consulted: $(grep -m1 /etc/ssl/certs "$T/strace.log")"
fi
echo "pinned: a failed verification did not look into /etc/ssl/certs"
echo ok
