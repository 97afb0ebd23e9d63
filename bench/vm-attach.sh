#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk cow:32M --disk obvol:64M --disk obcow:32M --disk pool:1G --timeout 900
# The volume-open benchmark of issue 5, inside the test guest (bench/run calls it through
# tests/vm/run with the options above; so does `make bench-vm`). One run, one guest, medians:
#   keyscopectl attach (first of a scope; a dm-snapshot joining it), cryptsetup open the os-brick
#   way (Argon2id at cryptsetup's default cost, hex passphrase on a pipe), a raw dmsetup create
#   with a keyring reference, and keyscopectl attach --passphrase hex of an os-brick volume (first,
#   then its snapshot); then 20 opens at once, keyscope against os-brick.
# Every figure includes the process start of the tool that opens. Peak memory comes from a
# cgroup v2 memory.peak around the opening processes, keyscoped's from its VmHWM (reset before
# each measurement through /proc/PID/clear_refs), and a single process's from /usr/bin/time
# (ru_maxrss) where the time package is installed.
# Key bytes live only in this shell's variables and in pipes: never in argv, env or a file.
# env: KEYSCOPE_BENCH_REPS (11): repetitions of each single open, KEYSCOPE_BENCH_SLOW_REPS (3) of
#      those with an Argon2id derivation (seconds each under TCG); KEYSCOPE_BENCH_PAR (20):
#      volumes opened at once; KEYSCOPE_BENCH_PAR_REPS (3) and KEYSCOPE_BENCH_OB_PAR_REPS (1):
#      repetitions of keyscope's and of os-brick's runs at once; KEYSCOPE_BENCH_PAR_DEADLINE
#      (180 s).
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

reps=${KEYSCOPE_BENCH_REPS:-11}
sreps=${KEYSCOPE_BENCH_SLOW_REPS:-3}
preps=${KEYSCOPE_BENCH_PAR_REPS:-3}
opreps=${KEYSCOPE_BENCH_OB_PAR_REPS:-1}
par=${KEYSCOPE_BENCH_PAR:-20}
deadline=${KEYSCOPE_BENCH_PAR_DEADLINE:-180}
reserve=$((64 << 20))
W=$KS_DIR/bench
mkdir -p "$W"
CG=/sys/fs/cgroup
TIME=
[ -x /usr/bin/time ] && TIME=/usr/bin/time

# Progress goes to the console too: tests/vm/run shows its end when a run times out.
say() { printf 'vm-attach: %s\n' "$*" | tee -a /dev/console >&2 2>/dev/null || true; }
now() { printf '%s\n' "$EPOCHREALTIME"; }
# since T0 [FILE]: seconds from T0 to now, appended to FILE when given.
since() {
	local t
	t=$(awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }')
	if [ $# -ge 2 ]; then echo "$t" >>"$2"; else echo "$t"; fi
}
median() {
	sort -n "$1" |
		awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'
}
ratio() {
	awk -v a="$1" -v b="$2" \
		'BEGIN { if (b > 0 && a != "-") printf "%.2f", a / b; else print "-" }'
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# ---- memory: a cgroup per measured group of processes ----------------------------------------
cg_init() {
	grep -q " $CG cgroup2 " /proc/mounts || mount -t cgroup2 none "$CG" ||
		vm_die "cannot mount cgroup2 at $CG"
	grep -qw memory "$CG/cgroup.controllers" || vm_die "no memory controller in cgroup2"
	echo +memory >"$CG/cgroup.subtree_control"
}
# cg_new NAME: a fresh cgroup (memory.peak cannot be reset on this kernel).
cg_new() {
	[ ! -d "$CG/$1" ] || rmdir "$CG/$1"
	mkdir "$CG/$1"
	[ -r "$CG/$1/memory.peak" ] || vm_die "no memory.peak in cgroup2 (kernel older than 5.19?)"
}
# cg_peak NAME: the peak memory of cgroup NAME in bytes, then remove it.
cg_peak() {
	cat "$CG/$1/memory.peak"
	rmdir "$CG/$1" 2>/dev/null || true
}
ks_hwm_reset() { echo 5 >"/proc/$KS_PID/clear_refs"; }
ks_hwm() { awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$KS_PID/status"; }

# ---- set-up ------------------------------------------------------------------------------
vol=$(vm_disk vol)
cow=$(vm_disk cow)
obvol=$(vm_disk obvol)
obcow=$(vm_disk obcow)
pool=$(vm_disk pool)
cg_init
# The OOM killer, if 20 Argon2 opens bring it, may take an opener, not the harness or keyscoped.
echo -1000 >/proc/self/oom_score_adj
keyctl link @u @s >/dev/null
ks_start --log-level info
[ "$(cat "/proc/$KS_PID/comm")" = keyscoped ] || vm_die "KS_PID $KS_PID is not keyscoped"
mem_total=$(awk '/^MemTotal:/ { print $2 * 1024 }' /proc/meminfo)
t_setup=$(now)

# A keyscope-formatted volume, and a dm-snapshot of its raw disk (as t-snapshot.sh).
id=$(ks key create)
ks format "$vol" --key "$id" >/dev/null
dmsetup create snapraw --table "0 $(blockdev --getsz "$vol") snapshot $vol $cow N 8"

# An os-brick volume: LUKS2, cryptsetup's default PBKDF (Argon2id, calibrated here), passphrase
# = lowercase hex of the delegated key on stdin; the key imported into keyscoped from a pipe.
hex=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
printf '%s' "$hex" | cryptsetup --batch-mode luksFormat --type luks2 --cipher aes-xts-plain64 \
	--key-size 256 --key-file=- "$obvol"
# shellcheck disable=SC2059 # the format is the key's \x escapes: a builtin's, in no argv
obid=$(printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | ks key import --name os-brick)
say "os-brick luksFormat + key import in $(since "$t_setup") s"
pbkdf=$(cryptsetup luksDump "$obvol" | awk '
	/^[[:space:]]*PBKDF:/ { p = $2 } /^[[:space:]]*Time cost:/ { t = $3 }
	/^[[:space:]]*Memory:/ { m = $2 } /^[[:space:]]*Threads:/ { th = $2 }
	END { printf "%s, time cost %s, memory %d KiB (%.0f MiB), %s threads",
		p, t, m, m / 1024, th }')
say "os-brick volume: $pbkdf"

# The raw dm-crypt reference: a logon key of the same size, added from a pipe.
head -c 64 /dev/urandom | keyctl padd logon bench:raw @u >/dev/null

# 2 x PAR + 1 slices of the pool disk: the first PAR keyscope volumes (below), the others copies
# of the os-brick volume (its first MiB holds both LUKS2 headers and the keyslot; the rest
# of the 16 MiB header area is zero on both), so each Argon2 open costs what a fresh one costs.
slice=$((24 * 2048))
[ $(((2 * par + 1) * slice)) -le "$(blockdev --getsz "$pool")" ] ||
	vm_die "pool disk too small for $par volumes"
spec=
for i in $(seq 1 $((2 * par + 1))); do
	spec="$spec${spec:+;}sl$i,,,,0 $slice linear $pool $(((i - 1) * slice))"
done
dmsetup create --concise "$spec"
# The first keyscope slice is formatted; the others get a copy of its header (the first MiB:
# both LUKS2 metadata copies, no keyslot) rebound to a key-id of their own (key clone: the same
# material under a fresh id). So each is its own scope with its own kernel key and its own header
# check at attach, the work of a volume formatted on its own, without 19 more formats (~3 s
# each here, a PBKDF2 benchmark for the header digest).
k=$(ks key create)
ks format /dev/mapper/sl1 --key "$k" >/dev/null
for i in $(seq 2 "$par"); do
	dd if=/dev/mapper/sl1 of="/dev/mapper/sl$i" bs=1M count=1 oflag=direct status=none
	ks rebind "/dev/mapper/sl$i" --key "$(ks key clone "$k")" >/dev/null
done
say "keyscope volumes in $(since "$t_setup") s"
for i in $(seq $((par + 1)) $((2 * par + 1))); do
	dd if="$obvol" of="/dev/mapper/sl$i" bs=1M count=1 oflag=direct status=none
done
say "set-up (formats, $((2 * par + 1)) slices) in $(since "$t_setup") s; $reps repetitions"

# ---- single opens ------------------------------------------------------------------------
t_single=$(now)
# One open's peak memory, in a cgroup of its own (and ru_maxrss where /usr/bin/time is).
# mem_one TAG CMD...: run CMD in cgroup TAG; $W/mem-TAG gets "cgroup-peak maxrss" in bytes.
mem_one() {
	local tag=$1 rss=0
	shift
	cg_new "b-$tag"
	(
		echo "$BASHPID" >"$CG/b-$tag/cgroup.procs"
		if [ -n "$TIME" ]; then
			exec "$TIME" -f %M -o "$W/rss-$tag" "$@"
		else
			exec "$@"
		fi
	)
	[ -z "$TIME" ] || rss=$(($(tail -n 1 "$W/rss-$tag") * 1024))
	echo "$(cg_peak "b-$tag") $rss" >"$W/mem-$tag"
}

# The dm-snapshot of the os-brick disk holds it, and cryptsetup opens its device exclusively:
# cryptsetup opens slice obc, a copy of the same header (as the PAR slices below).
dmsetup create obraw --table "0 $(blockdev --getsz "$obvol") snapshot $obvol $obcow N 8"
obc=/dev/mapper/sl$((2 * par + 1))

# The raw dmsetup create (c) loads the table keyscope loads, with the reference swapped for
# bench:raw and a DM UUID of the same form.
ks attach "$vol" --name v >/dev/null
table=$(dmsetup table --showkeys v)
uuid=$(dmsetup info -c --noheadings -o uuid v)
ks detach v >/dev/null
case $table in *":64:logon:keyscope:$id "*) ;; *) vm_die "unexpected table: $table" ;; esac
rawtable=${table/:64:logon:keyscope:$id /:64:logon:bench:raw }
rawuuid=${uuid%-v}-raw

# Every kind of open in each repetition, interleaved, so that a change in the host's load
# (TCG shares the host's cores) touches them alike; the slow ones (an Argon2id each) in SREPS of
# them, spread out:
#   floors: a process start; keyscopectl's own start (its shared libraries); keyscopectl with one
#     round trip to keyscoped and no device-mapper; dmsetup with one ioctl;
#   (a) a first attach of a scope (fetch, unseal, header check, key install, table) and the
#     dm-snapshot joining it (table only); the detach of the last holder removes the key, so
#     each first attach is a real first one;
#   (c) the raw dmsetup create;
#   (b) the os-brick way: cryptsetup open, the hex passphrase on a pipe, Argon2id;
#   (d) the os-brick volume through keyscope: its first open unlocks a keyslot in keyscoped (one
#     Argon2id) and installs the recovered volume key as scope vk:<UUID>; its dm-snapshot joins
#     that scope with no derivation.
unlocks0=$(grep -c 'Unlocked a keyslot' "$KS_LOG" || true)
step=$(((reps + sreps - 1) / sreps))
nslow=0
for i in $(seq "$reps"); do
	if [ $(((i - 1) % step)) = 0 ] && [ "$nslow" -lt "$sreps" ]; then
		nslow=$((nslow + 1))
		t=$(now)
		printf '%s' "$hex" | cryptsetup luksOpen --key-file=- "$obc" cso
		since "$t" "$W/cs-open"
		cryptsetup close cso
		[ "$i" = 1 ] || ks detach ob >/dev/null
		t=$(now); ks attach "$obvol" --key "$obid" --passphrase hex --name ob >/dev/null
		since "$t" "$W/ks-ob-first"
	fi
	t=$(now); /bin/true; since "$t" "$W/true"
	t=$(now); ks --help >/dev/null; since "$t" "$W/ks-help"
	t=$(now); ks status >/dev/null; since "$t" "$W/ks-status"
	t=$(now); dmsetup version >/dev/null; since "$t" "$W/dm-version"
	t=$(now); ks attach "$vol" --name v >/dev/null; since "$t" "$W/ks-first"
	t=$(now); ks attach /dev/mapper/snapraw --name vs >/dev/null; since "$t" "$W/ks-snap"
	ks detach vs >/dev/null
	ks detach v >/dev/null
	t=$(now); dmsetup create raw --uuid "$rawuuid" --table "$rawtable"; since "$t" "$W/dmsetup"
	dmsetup remove raw
	t=$(now); ks attach /dev/mapper/obraw --key "$obid" --passphrase hex --name obs >/dev/null
	since "$t" "$W/ks-ob-snap"
	ks detach obs >/dev/null
done
keyctl search @u logon "keyscope:$id" >/dev/null 2>&1 && vm_die "key left after the last detach"
unlocks=$(($(grep -c 'Unlocked a keyslot' "$KS_LOG" || true) - unlocks0))
[ "$unlocks" = "$nslow" ] ||
	vm_die "$unlocks keyslot unlocks for $nslow first opens: a snapshot open derived a key"
ks detach ob >/dev/null

# The peak memory of each kind of open, one more of each.
printf '%s' "$hex" | mem_one cs-open cryptsetup luksOpen --key-file=- "$obc" cso
cryptsetup close cso
ks_hwm_reset
ks attach "$obvol" --key "$obid" --passphrase hex --name ob >/dev/null
ks_hwm >"$W/hwm-ks-ob-first"
ks_hwm_reset
mem_one ks-ob-snap "$KEYSCOPE_BUILDDIR/keyscopectl" attach /dev/mapper/obraw --key "$obid" \
	--passphrase hex --name obs >/dev/null
ks_hwm >"$W/hwm-ks-ob-snap"
ks detach obs >/dev/null
ks detach ob >/dev/null
ks_hwm_reset
mem_one ks-first "$KEYSCOPE_BUILDDIR/keyscopectl" attach "$vol" --name v >/dev/null
ks_hwm >"$W/hwm-ks-first"
ks_hwm_reset
mem_one ks-snap "$KEYSCOPE_BUILDDIR/keyscopectl" attach /dev/mapper/snapraw --name vs >/dev/null
ks_hwm >"$W/hwm-ks-snap"
ks detach vs >/dev/null
ks detach v >/dev/null
mem_one dmsetup dmsetup create raw --uuid "$rawuuid" --table "$rawtable"
dmsetup remove raw
say "single opens in $(since "$t_single") s"

# ---- PAR opens at once -------------------------------------------------------------------
# The openers of each run share one cgroup whose memory.max is what the guest has available
# when the run starts (less a reserve): a run that needs more gets OOM kills in that cgroup at
# once, instead of the guest thrashing its 9p-backed page cache for minutes before the global
# OOM killer acts (seen here without the limit: 200 s before the first kill). A run still going
# after the deadline is killed through cgroup.kill, and its unfinished openers are counted.
# par_run TAG CMD-FUNCTION: PAR jobs (CMD-FUNCTION I) at once; appends to $W/TAG the wall
# seconds, to $W/TAG-mem the cgroup's peak, to $W/TAG-fail "failed oom-kills unfinished limit".
par_run() {
	local tag=$1 fn=$2 i t pids=() fail=0 cg=$CG/p-$1 limit wd
	limit=$(($(awk '/^MemAvailable:/ { print $2 * 1024 }' /proc/meminfo) - reserve))
	cg_new "p-$tag"
	echo "$limit" >"$cg/memory.max"
	rm -f "$W/late"
	t=$(now)
	for i in $(seq 1 "$par"); do
		(
			echo "$BASHPID" >"$cg/cgroup.procs"
			echo 0 >/proc/self/oom_score_adj
			"$fn" "$i"
		) >"$W/out-$tag-$i" 2>&1 &
		pids+=($!)
	done
	(sleep "$deadline" && echo 1 >"$cg/cgroup.kill" && : >"$W/late") &
	wd=$!
	# (bash reports a killed job on stderr: not here, the counts say it)
	for i in "${pids[@]}"; do wait "$i" 2>/dev/null || fail=$((fail + 1)); done
	since "$t" "$W/$tag"
	kill "$wd" 2>/dev/null || true
	wait "$wd" 2>/dev/null || true
	[ ! -e "$W/late" ] || say "$tag: the deadline of $deadline s killed what was left"
	echo "$fail $(awk '/^oom_kill / { print $2 }' "$cg/memory.events") $([ -e "$W/late" ] &&
		echo late || echo 0) $limit" >>"$W/$tag-fail"
	cg_peak "p-$tag" >>"$W/$tag-mem"
}
# detach_all: the PAR keyscope volumes, at once (not measured).
detach_all() {
	local i pids=()
	for i in $(seq 1 "$par"); do
		ks detach "kp$i" >/dev/null 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || true; done
}
ks_par() { exec "$KEYSCOPE_BUILDDIR/keyscopectl" attach "/dev/mapper/sl$1" --name "kp$1"; }
cs_par() {
	printf '%s' "$hex" |
		cryptsetup luksOpen --key-file=- "/dev/mapper/sl$((par + $1))" "cp$1"
}

t_par=$(now)
for _ in $(seq "$preps"); do
	ks_hwm_reset
	par_run ks ks_par
	ks_hwm >>"$W/ks-hwm"
	detach_all
done
for _ in $(seq "$opreps"); do
	par_run cs cs_par
	for i in $(seq 1 "$par"); do cryptsetup close "cp$i" 2>/dev/null || true; done
done
say "$par at once in $(since "$t_par") s"
# What cryptsetup itself said, without bash's notes on the jobs the OOM killer ended.
grep -hEv '^/.*line [0-9]+: |^ *[0-9]+ +(Killed|Done|Terminated) ' "$W"/out-cs-* 2>/dev/null |
	sort | uniq -c | sort -rn | head -n 5 |
	sed 's/^/vm-attach: cryptsetup said: /' >&2 || true

# ---- report ------------------------------------------------------------------------------
m() { median "$W/$1"; }
ms() { awk -v s="$1" 'BEGIN { if (s == "-") print "-"; else printf "%.0f", s * 1000 }'; }
memcol() { # memcol TAG [HWM-FILE]: "cgroup MiB / maxrss MiB (+ keyscoped HWM)"
	local cg rss out
	read -r cg rss <"$W/mem-$1"
	out="$(mib "$cg") MiB"
	[ "$rss" = 0 ] || out="$out (RSS $(mib "$rss"))"
	[ $# -lt 2 ] || out="$out + keyscoped HWM $(mib "$(cat "$2")") MiB"
	printf '%s' "$out"
}
raw=$(m dmsetup)
cs=$(m cs-open)
echo
echo "### Guest: $(nproc) vCPUs, $(mib "$mem_total") MiB, kernel $(uname -r)," \
	"$(cryptsetup --version | head -n 1)"
echo
echo "os-brick volume's keyslot: $pbkdf. Medians of $reps single opens ($sreps for those with a"
echo "derivation), of $preps runs at once for keyscope and $opreps for os-brick."
echo "Times in ms, process start included; \"x raw\" is the median over raw dmsetup create's."
echo
echo "| open | median ms | x raw dmsetup | os-brick open / this |" \
	"peak memory of the opening processes |"
echo "|---|---:|---:|---:|---|"
row() { # row LABEL TAG MEM
	local v
	v=$(m "$2")
	printf '| %s | %s | %s | %s | %s |\n' "$1" "$(ms "$v")" "$(ratio "$v" "$raw")" \
		"$(ratio "$cs" "$v")" "$3"
}
row "keyscopectl attach, first of its scope (a)" ks-first "$(memcol ks-first "$W/hwm-ks-first")"
row "keyscopectl attach, dm-snapshot of it (a)" ks-snap "$(memcol ks-snap "$W/hwm-ks-snap")"
row "cryptsetup open, os-brick way (b)" cs-open "$(memcol cs-open)"
row "dmsetup create, keyring reference (c)" dmsetup "$(memcol dmsetup)"
row "keyscopectl attach --passphrase hex, os-brick volume, first (d)" ks-ob-first \
	"keyscoped HWM $(mib "$(cat "$W/hwm-ks-ob-first")") MiB"
row "keyscopectl attach --passphrase hex, its dm-snapshot (d)" ks-ob-snap \
	"$(memcol ks-ob-snap "$W/hwm-ks-ob-snap")"
row "floor: keyscopectl status (start + one round trip)" ks-status ""
libs=$(ldd "$KEYSCOPE_BUILDDIR/keyscopectl" | grep -c '=>')
row "floor: keyscopectl --help (start, $libs shared libraries)" ks-help ""
row "floor: dmsetup version (start + one ioctl)" dm-version ""
row "floor: /bin/true (fork + exec)" true ""
echo
echo "| $par volumes at once | median wall s | opened, per run | OOM kills, per run |" \
	"peak memory of the openers (their cgroup's limit) | keyscoped VmHWM |"
echo "|---|---:|---|---|---|---|"
parrow() { # parrow LABEL TAG HWM
	local opened ooms mem lim
	opened=$(awk -v n="$par" '{ printf "%s%d%s", (NR > 1 ? ", " : ""), n - $1,
		($3 == "late" ? " (deadline)" : "") }' "$W/$2-fail")
	ooms=$(awk '{ printf "%s%d", (NR > 1 ? ", " : ""), $2 }' "$W/$2-fail")
	lim=$(awk '{ print $4 }' "$W/$2-fail" | sort -n | head -n 1)
	mem=$(sort -n "$W/$2-mem" | tail -n 1)
	printf '| %s | %.2f | %s of %d | %s | %s MiB (%s MiB) | %s |\n' "$1" "$(m "$2")" "$opened" \
		"$par" "$ooms" "$(mib "$mem")" "$(mib "$lim")" "$3"
}
parrow "keyscopectl attach x $par (keyscope-formatted, a key each)" ks \
	"$(mib "$(sort -n "$W/ks-hwm" | tail -n 1)") MiB"
parrow "cryptsetup open x $par (os-brick, Argon2id)" cs "-"
echo
first=$(m ks-first) snap=$(m ks-snap) obsnap=$(m ks-ob-snap)
echo "goal: keyscopectl attach <= 1.5x raw dmsetup create: first $(ratio "$first" "$raw")x," \
	"snapshot $(ratio "$snap" "$raw")x, os-brick snapshot $(ratio "$obsnap" "$raw")x"
echo "goal: >= 10x faster than the os-brick way: first $(ratio "$cs" "$first")x," \
	"snapshot $(ratio "$cs" "$snap")x, os-brick snapshot $(ratio "$cs" "$obsnap")x"
ksfail=$(awk '{ s += $1 } END { print s + 0 }' "$W/ks-fail")
csfail=$(awk '{ s += $1 } END { print s + 0 }' "$W/cs-fail")
if [ "$csfail" = 0 ] && [ "$ksfail" = 0 ]; then
	echo "$par at once: keyscope $(ratio "$(m cs)" "$(m ks)")x faster than os-brick"
else
	echo "$par at once: keyscope opened $((par * preps - ksfail)) of $((par * preps)) in" \
		"$(m ks) s (median); os-brick opened $((par * opreps - csfail))" \
		"of $((par * opreps))" \
		"in $(m cs) s: not a speed ratio, a failure for memory"
fi
echo "memory: cgroup v2 memory.peak of the opening processes$([ -z "$TIME" ] ||
	echo "; RSS = /usr/bin/time's maximum resident set size");" \
	"keyscoped's VmHWM reset by clear_refs before each"

# ---- clean-up ----------------------------------------------------------------------------
hex=
for i in $(seq 1 $((2 * par + 1))); do dmsetup remove "sl$i"; done
dmsetup remove snapraw
dmsetup remove obraw
keyctl invalidate "$(keyctl search @u logon bench:raw)"
