#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# keyscopectl's start-up cost: BENCH_CTL_RUNS (default 200) runs of `keyscopectl --version`
# (exec, dynamic loading, exit) and of `keyscopectl scope list` (the same plus a round trip to
# keyscoped), with the number of shared objects ldd lists. KEYSCOPECTL_BASELINE=PATH adds the
# same rows for another keyscopectl (say one built from an older commit), measured in the same
# run, alternating with this one so that both see the same load. Prints a markdown table.
# Run by bench/run; alone: bench/ctl-start.sh (needs a build, runs keyscoped on a private socket).
set -eu
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
for rep in 1 2; do	# two alternating rounds; the second is reported
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
