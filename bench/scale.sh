#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/scale.sh: keyscoped at BENCH_SCALE_KEYS (default 10,000) scopes, each figure beside its
# anchor measured in the same run (issue 13): batched install (256 key-ids a request, 32 in
# flight), cold and warm, against raw add_key(2) and add_key(2)+KEYCTL_SETPERM loops (short descriptions, and
# keyscope's 45-byte ones); RssAnon
# and VmRSS held at 10,000 scopes, after ScopeList/Status, and after a restart (RssAnon also by
# mapping: heap, the libraries' relocated data, other anonymous mappings, stack); the start-up
# time to the first answer with 10,000 scopes against an empty state; ScopeList/Status round
# trips; `keyscopectl scope list` and `status` (the whole command, wall, BENCH_LIST_RUNS runs,
# default 21) against keyscoped's CPU for the same calls; `keyscopectl key install` against
# `keyctl padd`. Medians of BENCH_REPS (default 3); each repetition restarts keyscoped.
# Run by bench/run; alone as root: bench/scale.sh.
set -eu
if [ -z "${KEYSCOPE_BENCH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "bench/scale.sh runs keyscoped: run it as root" >&2; exit 1; }
	KEYSCOPE_BENCH_INNER=1 exec keyctl session keyscope-bench bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
B=${KEYSCOPE_BUILDDIR:-$PWD/build/out}
BI=${BENCH_INSTALL:-$B/bench/bench-install}
[ -x "$BI" ] && [ -x "$B/keyscoped" ] ||
	{ echo "bench/scale.sh: $BI or $B/keyscoped is missing: run make bench (or make all $BI)" >&2; exit 1; }
n=${BENCH_SCALE_KEYS:-10000}
reps=${BENCH_REPS:-3}
window=32 batch=256
ctl_runs=${BENCH_CTL_RUNS:-200}
ctl_list_runs=${BENCH_LIST_RUNS:-21}
D=$(mktemp -d /tmp/keyscope-scale.XXXXXX)
pid=
trap '[ -z "$pid" ] || kill $pid 2>/dev/null || true; rm -rf "$D"' EXIT

start() { # sets pid and ms (to the first answer)
	local out
	settle
	"$BI" first-answer "$D/sock" "$B/keyscoped" --socket "$D/sock" --state-dir "$D/state" \
		--keyring @s --log-level "${BENCH_LOG_LEVEL:-warning}" >"$D/start" 2>>"$D/log"
	read -r _ ms _ _ cpu _ _ pid <"$D/start"
}
stop() { [ -z "$pid" ] || { kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done; }; pid=; rm -f "$D/sock"; }
mem() { # -> "RssAnon VmRSS" in KiB
	awk '/^RssAnon:/ { a = $2 } /^VmRSS:/ { r = $2 } END { print a, r }' "/proc/$pid/status"
}
parts() { # -> "heap libraries other stack": Anonymous KiB of /proc/PID/smaps by mapping
	awk '/^[0-9a-f]+-[0-9a-f]+ / { k = $6 == "[heap]" ? "heap" : $6 == "[stack]" ? "stack" : \
		substr($6, 1, 1) == "/" ? "lib" : "other" }
	     /^Anonymous:/ { a[k] += $2 }
	     END { print a["heap"] + 0, a["lib"] + 0, a["other"] + 0, a["stack"] + 0 }' "/proc/$pid/smaps"
}
rate() { settle; "$BI" "$1" "$D/sock" "$window" "$batch" <"$D/ids" | awk '{ print $6 }'; }
call() { # METHOD -> "wall-ms daemon-cpu-ms"
	"$BI" call "$D/sock" "$1" 5 "$pid" | awk '{ print $5, $8 }'
}
ctl_call() { # COMMAND... -> "wall-ms daemon-cpu-ms": medians of ctl_list_runs runs of keyscopectl
	local i c0 c1 t0 t1
	for i in $(seq "$ctl_list_runs"); do
		read -r c0 _ <"/proc/$pid/schedstat"
		t0=$EPOCHREALTIME
		"$B/keyscopectl" --socket "$D/sock" "$@" >/dev/null
		t1=$EPOCHREALTIME
		read -r c1 _ <"/proc/$pid/schedstat"
		awk -v a="$t0" -v b="$t1" -v c="$c0" -v d="$c1" 'BEGIN { printf "%.3f %.3f\n", (b - a) * 1000, (d - c) / 1e6 }'
	done >"$D/ctl-call"
	echo "$(cut -d' ' -f1 "$D/ctl-call" | median) $(cut -d' ' -f2 "$D/ctl-call" | median)"
}
# Waits for the kernel's key garbage collector: invalidated keys (a loop's, a release's) are
# freed by a kworker after the call that invalidated them returns, 30-60 ms of CPU for 10,000
# keys here. A timed run that starts while it works shares the 2 cores with it, so each timed
# run starts once this user's key count (/proc/key-users) held still for 3 looks 20 ms apart
# (at most 5 s).
settle() {
	local last= same=0 i n
	for i in $(seq 250); do
		n=$(awk -v u="$(id -u):" '$1 == u { print $2 }' /proc/key-users)
		if [ "$n" = "$last" ]; then same=$((same + 1)); [ $same -lt 3 ] || return 0; else same=0; fi
		last=$n
		sleep 0.02
	done
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

start
"$BI" create "$D/sock" "$n" >"$D/ids"
declare -A v
add() { v[$1]="${v[$1]:-} $2"; }
for _ in $(seq "$reps"); do
	settle; add raw "$("$BI" raw "$n" | awk '{ print $6 }')"
	settle; add rawperm "$("$BI" raw-perm "$n" | awk '{ print $6 }')"
	settle; add rawlong "$("$BI" raw-perm-long "$n" | awk '{ print $6 }')"
	stop
	start; add start0 "$ms"; add cpu0 "$cpu"
	read -r a r < <(mem); add anon0 "$a"; add rss0 "$r"
	read -r h l o k < <(parts); add heap0 "$h"; add lib0 "$l"; add other0 "$o"; add stack0 "$k"
	add cold "$(rate install)"
	read -r a r < <(mem); add anon1 "$a"; add rss1 "$r"
	read -r h l o k < <(parts); add heap1 "$h"; add lib1 "$l"; add other1 "$o"; add stack1 "$k"
	read -r w c < <(call keyscope.ScopeList); add list "$w"; add listcpu "$c"
	read -r w c < <(call keyscope.Status); add status "$w"; add statuscpu "$c"
	read -r a r < <(mem); add anon2 "$a"; add rss2 "$r"
	read -r w c < <(ctl_call scope list); add ctllist "$w"; add ctllistcpu "$c"
	read -r w c < <(ctl_call status); add ctlstatus "$w"; add ctlstatuscpu "$c"
	rate release >/dev/null
	add warm "$(rate install)"
	stop
	start; add start1 "$ms"; add cpu1 "$cpu"
	read -r a r < <(mem); add anon3 "$a"; add rss3 "$r"
	read -r w c < <(call keyscope.ScopeList); add list1 "$w"; add list1cpu "$c"
	read -r a r < <(mem); add anon4 "$a"; add rss4 "$r"
	rate release >/dev/null
done
med() { printf '%s\n' ${v[$1]} | median; }

echo "keyscoped at $n scopes: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1 /proc/loadavg), median of $reps"
echo
printf '| figure | keyscoped | anchor (same run) | ratio | goal |\n|---|---:|---:|---:|---|\n'
raw=$(med raw) rp=$(med rawperm) rl=$(med rawlong)
printf '| raw add_key(2) loop, keys/s | | %s | | |\n' "$raw"
printf '| raw add_key(2)+KEYCTL_SETPERM loop, keys/s | | %s | | |\n' "$rp"
printf '| the same with 45-byte descriptions (keyscope:<UUID>), keys/s | | %s | | |\n' "$rl"
for k in cold warm; do
	x=$(med $k)
	printf '| batched install, %s, keys/s | %s | %s (add_key+setperm) | %s (%s to add_key alone, %s to 45-byte descriptions) | >= 0.7 |\n' \
		"$k" "$x" "$rp" "$(ratio "$x" "$rp")" "$(ratio "$x" "$raw")" "$(ratio "$x" "$rl")"
done
s0=$(med start0) s1=$(med start1)
printf '| start-up to first answer, ms | %s (%s scopes) | %s (none) | %s | <= 1.3 |\n' "$s1" "$n" "$s0" "$(ratio "$s1" "$s0")"
c0=$(med cpu0) c1=$(med cpu1)
printf '| start-up CPU of keyscoped to first answer, ms | %s | %s | %s | |\n' "$c1" "$c0" "$(ratio "$c1" "$c0")"
printf '| ScopeList at %s: round trip (bench client, json-c parse included) / keyscoped CPU, ms | %s / %s | | | |\n' "$n" "$(med list)" "$(med listcpu)"
printf '| ScopeList after a restart, same, ms | %s / %s | | | |\n' "$(med list1)" "$(med list1cpu)"
printf '| Status at %s, same, ms | %s / %s | | | |\n' "$n" "$(med status)" "$(med statuscpu)"
printf '| keyscopectl scope list >/dev/null at %s, wall ms (median of %s) | %s | %s (keyscoped CPU, same calls) | %s | <= 50 ms |\n' \
	"$n" "$ctl_list_runs" "$(med ctllist)" "$(med ctllistcpu)" "$(ratio "$(med ctllist)" "$(med ctllistcpu)")"
printf '| keyscopectl status >/dev/null at %s, same | %s | %s | %s | |\n' \
	"$n" "$(med ctlstatus)" "$(med ctlstatuscpu)" "$(ratio "$(med ctlstatus)" "$(med ctlstatuscpu)")"
printf '| RssAnon, MiB: empty / %s installed / after list+status / restarted / restarted+list | %s / %s / %s / %s / %s | | | <= 4 MiB |\n' \
	"$n" "$(mib "$(med anon0)")" "$(mib "$(med anon1)")" "$(mib "$(med anon2)")" "$(mib "$(med anon3)")" "$(mib "$(med anon4)")"
printf '| VmRSS, MiB: same points | %s / %s / %s / %s / %s | | | |\n' \
	"$(mib "$(med rss0)")" "$(mib "$(med rss1)")" "$(mib "$(med rss2)")" "$(mib "$(med rss3)")" "$(mib "$(med rss4)")"
printf '| RssAnon by mapping, KiB: heap / libraries'"'"' data / other anonymous / stack | %s / %s / %s / %s (%s held) | %s / %s / %s / %s (empty) | | |\n' \
	"$(med heap1)" "$(med lib1)" "$(med other1)" "$(med stack1)" "$n" "$(med heap0)" "$(med lib0)" "$(med other0)" "$(med stack0)"

# keyscopectl key install (process start, connect, one KeyInstall) against keyctl padd (process
# start, one add_key(2)) of a 64-character random payload on a here-string (a pipe: bash >= 5.1
# writes no file for it). Alternating rounds, so that both see the same load.
stop
start
head -n "$ctl_runs" "$D/ids" >"$D/ctl-ids"
ring=$(keyctl newring bench-ctl @s)
hex=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
ks=0 kc=0
for round in 1 2; do
	t=$EPOCHREALTIME
	while read -r id; do "$B/keyscopectl" --socket "$D/sock" key install "$id" >/dev/null; done <"$D/ctl-ids"
	t2=$EPOCHREALTIME
	i=0
	while [ $i -lt "$ctl_runs" ]; do keyctl padd logon "bench:$round:$i" "$ring" <<<"$hex" >/dev/null; i=$((i + 1)); done
	t3=$EPOCHREALTIME
	"$BI" release "$D/sock" "$window" "$batch" <"$D/ctl-ids" >/dev/null
	keyctl clear "$ring"
	ks=$(awk -v a="$t" -v b="$t2" -v n="$ctl_runs" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }')
	kc=$(awk -v a="$t2" -v b="$t3" -v n="$ctl_runs" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }')
done
unset hex
keyctl unlink "$ring" @s >/dev/null
printf '| keyscopectl key install, ms per run (%s runs, second round) | %s | %s (keyctl padd) | %s | <= 1.5 |\n' \
	"$ctl_runs" "$ks" "$kc" "$(ratio "$ks" "$kc")"
printf '| shared objects loaded (ldd) | %s | %s (keyctl) | | |\n' "$(ldd "$B/keyscopectl" | wc -l)" "$(ldd "$(command -v keyctl)" | wc -l)"
stop
