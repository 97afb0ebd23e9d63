#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/start-profile.sh: keyscoped's start-up in user-space instructions (callgrind, so the
# load of the machine does not move it), from exec to the first answer (a Ping), in four
# states of one state folder, the ones bench/scale.sh starts in: empty (keys created, no
# holder: its first start-up), BENCH_SCALE_KEYS (default 10,000) scopes held after
# install/release/install and a clean stop (SIGTERM), all of them released again and a clean
# stop (the "none" start of its later repetitions), and held after install/release/install and
# a SIGKILL (a crash: the journal of that run replayed). Prints one line per state and leaves
# the callgrind files in BENCH_PROFILE_DIR (default build/profile) for callgrind_annotate.
# Run as root: bench/start-profile.sh.
set -eu
if [ -z "${KEYSCOPE_BENCH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "bench/start-profile.sh runs keyscoped: run it as root" >&2; exit 1; }
	KEYSCOPE_BENCH_INNER=1 exec keyctl session keyscope-profile bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
B=${KEYSCOPE_BUILDDIR:-$PWD/build/out}
BI=${BENCH_INSTALL:-$B/bench/bench-install}
n=${BENCH_SCALE_KEYS:-10000}
out=${BENCH_PROFILE_DIR:-$PWD/build/profile}
command -v valgrind >/dev/null || { echo "bench/start-profile.sh needs valgrind" >&2; exit 1; }
mkdir -p "$out"
D=$(mktemp -d /tmp/keyscope-profile.XXXXXX)
pid=
trap '[ -z "$pid" ] || kill -9 $pid 2>/dev/null || true; rm -rf "$D"' EXIT
args=(--socket "$D/sock" --state-dir "$D/state" --keyring @s --log-level warning)

start() { "$BI" first-answer "$D/sock" "$B/keyscoped" "${args[@]}" >"$D/start" 2>>"$D/log"; read -r _ _ _ _ _ _ _ pid <"$D/start"; }
stop() { # SIG
	kill "-$1" "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
	pid=
	rm -f "$D/sock"
}
# Instructions from exec to the first answer: callgrind dumps once the Ping is answered.
profile() { # NAME
	local f=$out/start-$1.callgrind
	rm -f "$f" "$f".*
	"$BI" first-answer "$D/sock" "$(command -v valgrind)" --tool=callgrind \
		--callgrind-out-file="$f" "$B/keyscoped" "${args[@]}" >"$D/start" 2>>"$D/log"
	read -r _ _ _ _ _ _ _ pid <"$D/start"
	callgrind_control -d "$pid" >/dev/null
	while [ ! -s "$f.1" ] && [ ! -s "$f" ]; do sleep 0.1; done
	stop TERM
	[ -s "$f.1" ] && mv -f "$f.1" "$f"
	printf '%-10s %12s instructions to the first answer\n' "$1" \
		"$(sed -n 's/^summary: //p' "$f")"
}

cycle() { # install, release and install them all
	"$BI" install "$D/sock" 32 256 <"$D/ids" >/dev/null
	"$BI" release "$D/sock" 32 256 <"$D/ids" >/dev/null
	"$BI" install "$D/sock" 32 256 <"$D/ids" >/dev/null
}

start
"$BI" create "$D/sock" "$n" >"$D/ids"
stop TERM
profile empty
start
cycle
stop TERM
profile "held-$n"
start
"$BI" release "$D/sock" 32 256 <"$D/ids" >/dev/null
stop TERM
profile "released-$n"
start
cycle
stop KILL
profile "killed-$n"
