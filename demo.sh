#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make demo: keyscope's main job on its embedded key store, in a throw-away state directory
# and a session keyring of its own, so it touches nothing of a real installation.
set -eu
if [ -z "${KEYSCOPE_DEMO_INNER:-}" ]; then
	command -v keyctl >/dev/null || { echo "make demo needs keyctl: make deps" >&2; exit 1; }
	[ "$(id -u)" = 0 ] || { echo "make demo runs keyscoped as root: sudo make demo" >&2; exit 1; }
	KEYSCOPE_DEMO_INNER=1 exec keyctl session keyscope-demo bash "$0" "$@"
fi
B=${KEYSCOPE_BUILDDIR:-$(cd "$(dirname "$0")" && pwd)/build/out}
D=$(mktemp -d /tmp/keyscope-demo.XXXXXX)
export KEYSCOPE_SOCKET=$D/keyscoped.sock
pid=
trap '[ -z "$pid" ] || kill $pid 2>/dev/null || true; rm -rf "$D"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "keyscopectl $*"; "$B/keyscopectl" "$@"; }

say "keyscoped --socket $D/keyscoped.sock --state-dir $D/state --keyring @s &"
"$B/keyscoped" --socket "$KEYSCOPE_SOCKET" --state-dir "$D/state" --keyring @s 2>"$D/log" &
pid=$!
for _ in $(seq 50); do [ -S "$KEYSCOPE_SOCKET" ] && break; sleep 0.1; done
ctl() { "$B/keyscopectl" "$@"; }

say "keyscopectl key create --name volume-1"
vol=$(ctl key create --name volume-1); echo "$vol"
say "keyscopectl key clone $vol      # clone-key: same material, new key-id"
clone=$(ctl key clone --name volume-1-clone "$vol"); echo "$clone"
run key list
run key install "$vol"
say "keyscopectl key install $vol   # a snapshot of the same volume: same key, one more holder"
ctl key install "$vol"
run key install "$clone"
say "keyctl show @s                  # logon keys in the keyscope keyring"
keyctl show @s
serial=$(keyctl search @s logon "keyscope:$vol")
say "keyctl read $serial             # the kernel never hands a logon key back"
if keyctl read "$serial"; then echo "UNEXPECTED: key payload was readable" >&2; exit 1; fi
run status
run key release "$vol"
run key release "$vol"
run key release "$clone"
say "keyctl show @s                  # last holder gone: keys invalidated"
keyctl show @s
say "kill keyscoped"
kill "$pid"; wait "$pid" || true; pid=
echo
echo "Daemon log:"; sed 's/^/  /' "$D/log"
echo
top=$(cd "$(dirname "$0")" && pwd)
if [ -e /dev/mapper/control ] && dmsetup version >/dev/null 2>&1; then
	echo "== Volumes: this kernel has device-mapper; running the volume demo here."
	KEYSCOPE_BUILDDIR=$B "$top/tools/demo-volume.sh"
else
	echo "== Volumes: this kernel has no device-mapper, so the volume demo runs inside the VM"
	echo "   guest (a Debian kernel under qemu, this machine's files shared read-only)."
	"$top/tests/vm/setup" >/dev/null
	KEYSCOPE_BUILDDIR=$B "$top/tests/vm/run" "$top/tools/demo-volume.sh"
fi
echo
echo "Demo done."
