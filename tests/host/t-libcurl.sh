#!/bin/bash
# libcurl is loaded only where a Barbican source is configured (issue 13: a store-only node
# maps neither it nor the 26 libraries only it needs), and a node without libcurl still serves
# its local store; with barbican-url set there it refuses to start, naming the library and
# the package.
. "$(dirname "$0")/lib.sh"
conf=$T/keyscoped.conf
printf '[keyscoped]\nbarbican-url = https://127.0.0.1:9\nbarbican-auth = none\nbarbican-project-id = p1\nbarbican-user-id = u1\n' >"$conf"
maps_curl() { grep -c 'libcurl\.so' "/proc/$DAEMON_PID/maps" || true; }

start_daemon
expect_eq "$(maps_curl)" 0 "libcurl mappings of a store-only keyscoped"
id=$(ctl key create)
ctl key install "$id" >/dev/null
ctl key release "$id" >/dev/null
start_daemon --config "$conf"
[ "$(maps_curl)" -gt 0 ] || fail "keyscoped with barbican-url set has no libcurl mapped"
ctl status >/dev/null
stop_daemon

# The same machine without libcurl: the library's file hidden in a mount namespace.
lib=$(readlink -f "$(ldconfig -p | awk '$1 == "libcurl.so.4" { print $NF; exit }')")
[ -f "$lib" ] || fail "no libcurl.so.4 in ldconfig's cache to hide"
cat >"$T/no-curl" <<WRAP
#!/bin/sh
exec unshare -m sh -c 'mount --bind /dev/null "\$0" && exec "\$@"' '$lib' '$KEYSCOPED' "\$@"
WRAP
chmod +x "$T/no-curl"
real=$KEYSCOPED
KEYSCOPED=$T/no-curl
start_daemon
ctl key install "$id" | grep -q "keyscope:$id serial" || fail "install without libcurl"
ctl key release "$id" >/dev/null
stop_daemon
if "$KEYSCOPED" --config "$conf" --socket "$KEYSCOPE_SOCKET" --state-dir "$STATE" --keyring @s \
	2>"$T/err"; then
	fail "started with barbican-url set and no libcurl"
fi
grep -q "A Barbican source is configured, but libcurl.so.4 cannot be opened (install libcurl4)" \
	"$T/err" || fail "no libcurl: $(cat "$T/err")"
KEYSCOPED=$real
echo ok
