#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# keyscopectl's start-up cost: BENCH_CTL_RUNS (default 200) runs of `keyscopectl --version`
# (exec, dynamic loading, exit) and of `keyscopectl scope list` (the same plus a round trip to
# keyscoped), with the number of shared objects ldd lists. KEYSCOPECTL_BASELINE=PATH adds the
# same rows for another keyscopectl (say one built from an older commit), measured in the same
# run, alternating with this one so that both see the same load. Then the `key install` round
# trip (process start, connect, one KeyInstall of a stored key) of each against `keyctl padd`
# (process start, one add_key(2) of a 64-character payload on a here-string), BENCH_CTL_KEYS
# (default 200) keys, rounds alternating. Prints markdown tables.
# Run by bench/run; alone as root: bench/ctl-start.sh (needs a build, runs keyscoped on a private
# socket, in a session keyring of its own).
set -eu
if [ -z "${KEYSCOPE_BENCH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "bench/ctl-start.sh runs keyscoped: run it as root" >&2; exit 1; }
	KEYSCOPE_BENCH_INNER=1 exec keyctl session keyscope-bench bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
B=${KEYSCOPE_BUILDDIR:-$PWD/build/out}
runs=${BENCH_CTL_RUNS:-200}
D=$(mktemp -d /tmp/keyscope-ctlbench.XXXXXX)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$D"' EXIT

"$B/keyscoped" --socket "$D/sock" --state-dir "$D/state" --keyring @s --log-level warning \
	2>>"$D/log" &
pid=$!
for _ in $(seq 100); do [ -S "$D/sock" ] && break; sleep 0.05; done
[ -S "$D/sock" ] || { echo "keyscoped did not start: $(cat "$D/log")" >&2; exit 1; }

# ms_per_run BINARY ARGS...: "WALL / CPU" of $runs runs in ms per run. CPU (user + system of
# the runs) is the figure to compare on a loaded machine: wall time there is mostly waiting.
ms_per_run() {
	local start=$EPOCHREALTIME cpu TIMEFORMAT='%3U %3S'
	cpu=$( { time for _ in $(seq "$runs"); do "$@" >/dev/null; done; } 2>&1)
	awk -v a="$start" -v b="$EPOCHREALTIME" -v n="$runs" -v c="$cpu" \
		'BEGIN { split(c, t, " "); printf "%.2f / %.2f", (b - a) * 1000 / n, (t[1] + t[2]) * 1000 / n }'
}

# loader BINARY: "RELOCATIONS CYCLES": the dynamic loader's symbol relocations (exact) and the
# median of 21 runs of its start-up time in cycles (LD_DEBUG=statistics, glibc).
loader() {
	local rel cyc
	rel=$(LD_DEBUG=statistics "$1" --version 2>&1 >/dev/null |
		sed -nE 's/.*final number of relocations: ([0-9]+).*/\1/p' | head -n 1)
	cyc=$(for _ in $(seq 21); do
		LD_DEBUG=statistics "$1" --version 2>&1 >/dev/null |
			sed -nE 's/.*total startup time in dynamic loader: ([0-9]+) cycles.*/\1/p'
	done | sort -n | sed -n 11p)
	echo "${rel:-?} ${cyc:-?}"
}

bins=("$B/keyscopectl")
names=("this build")
if [ -n "${KEYSCOPECTL_BASELINE:-}" ]; then
	bins+=("$KEYSCOPECTL_BASELINE")
	names+=("baseline ($KEYSCOPECTL_BASELINE)")
fi
# Warm the page cache for every binary and library first.
for b in "${bins[@]}"; do "$b" --version >/dev/null; done

declare -a ver list
for _ in 1 2; do	# two alternating rounds; the second is reported
	for i in "${!bins[@]}"; do
		ver[i]=$(ms_per_run "${bins[i]}" --version)
		list[i]=$(ms_per_run "${bins[i]}" --socket "$D/sock" scope list)
	done
done
echo "keyscopectl start: $runs runs each, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo
printf '| keyscopectl | shared objects (ldd) | libkmod loaded | relocations | loader cycles |'
printf ' --version (ms wall / CPU) | scope list (ms wall / CPU) |\n'
printf '|---|---:|---|---:|---:|---:|---:|\n'
for i in "${!bins[@]}"; do
	read -r rel cyc < <(loader "${bins[i]}")
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${names[i]}" "$(ldd "${bins[i]}" | wc -l)" \
		"$(ldd "${bins[i]}" | grep -q libkmod && echo yes || echo no)" "$rel" "$cyc" \
		"${ver[i]}" "${list[i]}"
done

# key install BINARY IDS: ms per `key install` (fresh process each), the keys released after.
keys=${BENCH_CTL_KEYS:-200}
"$B/bench/bench-install" create "$D/sock" "$keys" >"$D/ids"
install_ms() {
	local t=$EPOCHREALTIME
	while read -r id; do "$1" --socket "$D/sock" key install "$id" >/dev/null; done <"$D/ids"
	awk -v a="$t" -v b="$EPOCHREALTIME" -v n="$keys" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }'
	"$B/bench/bench-install" release "$D/sock" 32 64 <"$D/ids" >/dev/null
}
padd_ms() {
	local t=$EPOCHREALTIME i=0 ring hex
	ring=$(keyctl newring bench-ctl @s)
	hex=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	while [ $i -lt "$keys" ]; do keyctl padd logon "bench:$i" "$ring" <<<"$hex" >/dev/null; i=$((i + 1)); done
	awk -v a="$t" -v b="$EPOCHREALTIME" -v n="$keys" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }'
	keyctl unlink "$ring" @s >/dev/null
}
declare -a inst
for _ in 1 2 3; do	# three alternating rounds; the medians are reported
	for i in "${!bins[@]}"; do inst[i]="${inst[i]:-} $(install_ms "${bins[i]}")"; done
	padd="${padd:-} $(padd_ms)"
done
# shellcheck disable=SC2086 # $1 is a list of numbers, split on purpose
med() { printf '%s\n' $1 | sort -n | sed -n 2p; }
pm=$(med "$padd")
echo
echo "key install round trip: $keys keys, 3 alternating rounds (median), load $(cut -d' ' -f1 /proc/loadavg)"
echo
printf '| client | ms per key | anchor: keyctl padd, ms | ratio | goal |\n|---|---:|---:|---:|---|\n'
for i in "${!bins[@]}"; do
	m=$(med "${inst[i]}")
	printf '| keyscopectl key install, %s | %s | %s | %s | <= 1.5 |\n' "${names[i]}" "$m" "$pm" \
		"$(awk -v a="$m" -v b="$pm" 'BEGIN { printf "%.2f", a / b }')"
done
