#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk rs:64M --disk fmt:24M --disk tiny:16M --timeout 2700
# SIGKILL at any point of attach, detach, resize, rebind or format leaves nothing orphaned
# after a restart on the same state folder (docs/volumes.md, "After a crash"). First a
# deterministic case for each state a killed attach or resize can leave in device-mapper, and
# a killed format on the device (the daemon is killed by strace at the ioctl, the rename or the
# header write that matters), then a kill loop: each
# round starts one of the five operations, SIGKILLs keyscoped after a random 0-300 ms,
# restarts it and checks that device-mapper, the attachment records, the scope holders and
# /proc/keys agree, and that the volume can be attached again.
# KEYSCOPE_CRASH_KILLS (default 25: 5 of each operation) sets the number of rounds;
# KEYSCOPE_CRASH_STRACE=0 skips the deterministic cases.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

command -v jq >/dev/null || vm_skip "jq is not installed"
# 25, not 30: the strace-placed format cases (8 restarts, 10 formats) cost about 5 rounds
# (here, at a load of 15 on 2 cores: all deterministic cases 534 s, a round 67 s), so CI's
# time stays about what it was.
kills=${KEYSCOPE_CRASH_KILLS:-25}
vol=$(vm_disk vol)
rsdisk=$(vm_disk rs)
fmt=$(vm_disk fmt)	# 24 MiB: the 16 MiB header and data after it
tiny=$(vm_disk tiny)	# 16 MiB: the header would fill it
state=$KS_DIR/state

# A device that can grow, for resize: a linear mapping over the first part of a disk.
grow_sectors=40960	# 20 MiB: a LUKS2 header takes the first 16 MiB
dmsetup create grow --table "0 $grow_sectors linear $rsdisk 0"

ks_start
a=$(ks key create)
b=$(ks --json key clone "$a" | jq -r '."key-id"')	# same material: rebind a <-> b works
f=$(ks key create)
ks format "$vol" --key "$a" >/dev/null
ks format /dev/mapper/grow --key "$a" >/dev/null
ks format "$fmt" --key "$f" >/dev/null
# A device the header fills is refused before anything is written (libcryptsetup formats it,
# and attach then refuses a volume without data: what t-crash once took for a crash defect).
ks format "$tiny" --key "$f" >"$KS_DIR/out" 2>&1 &&
	vm_die "a 16 MiB device was formatted: $(cat "$KS_DIR/out")"
grep -q 'too small to format' "$KS_DIR/out" || vm_die "tiny device: $(cat "$KS_DIR/out")"
! cryptsetup isLuks "$tiny" || vm_die "a refused format wrote a LUKS header on $tiny"

# crash_restart: SIGKILL keyscoped (if still there) and start it again on the same state.
crash_restart() {
	kill -KILL "$KS_PID" 2>/dev/null || true
	wait "$KS_PID" 2>/dev/null || true
	KS_PID=
	rm -f "$KEYSCOPE_SOCKET"
	ks_start
}

# keyscope_maps: names of dm devices that are keyscope's: DM UUID CRYPT-* and a table (live or
# inactive) that references a keyscope: logon key, or no table at all (a killed create).
keyscope_maps() {
	dmsetup info -c --noheadings --separator ' ' -o name,uuid 2>/dev/null |
	while read -r _n _u; do
		case $_u in CRYPT-*) ;; *) continue ;; esac
		if { dmsetup table "$_n"; dmsetup table --inactive "$_n"; } 2>/dev/null |
			grep -q ':logon:keyscope:' ||
			! dmsetup table "$_n" 2>/dev/null | grep -q .; then
			echo "$_n"
		fi
	done | sort
}

lines_diff() {
	diff "$1" "$2" | grep '^[<>]' | tr '\n' ' '
}

# agree WHAT: mappings, records, holders and /proc/keys tell the same story.
agree() {
	_what=$1
	ks --json status >"$KS_DIR/vl" || vm_die "$_what: status failed"
	ks --json scope list >"$KS_DIR/sl" || vm_die "$_what: scope list failed"
	jq -r '.attachments[].name' "$KS_DIR/vl" | sort >"$KS_DIR/recs"
	keyscope_maps >"$KS_DIR/maps"
	cmp -s "$KS_DIR/recs" "$KS_DIR/maps" ||
		vm_die "$_what: mappings and records differ (< mapping without record, > record" \
			"without mapping): $(lines_diff "$KS_DIR/maps" "$KS_DIR/recs")"
	for _n in $(cat "$KS_DIR/maps"); do
		_i=$(dmsetup info "$_n")
		echo "$_i" | grep -q 'State: *SUSPENDED' && vm_die "$_what: $_n left suspended"
		echo "$_i" | grep -q 'INACTIVE' && vm_die "$_what: $_n has an inactive table left"
		echo "$_i" | grep -q 'Tables present: *LIVE' || vm_die "$_what: $_n has no live table"
	done
	# Each scope's holders are its manual holders (none here) and its records.
	jq -r '.attachments[].scope' "$KS_DIR/vl" | sort | uniq -c | awk '{print $2, $1}' >"$KS_DIR/want"
	jq -r '.scopes[] | select(.holders > 0) | "\(."key-id") \(.holders - .manual)"' "$KS_DIR/sl" |
		sort >"$KS_DIR/have"
	sort -o "$KS_DIR/want" "$KS_DIR/want"
	cmp -s "$KS_DIR/want" "$KS_DIR/have" ||
		vm_die "$_what: holders do not match the records (< records, > holders):" \
			"$(lines_diff "$KS_DIR/want" "$KS_DIR/have")"
	# Every held scope has its kernel key; no keyscope: key without a holder (the kernel's
	# garbage collector removes invalidated keys soon after, hence the bounded wait).
	jq -r '.scopes[] | select(.holders > 0) | .description' "$KS_DIR/sl" | sort >"$KS_DIR/keys-want"
	_n=0
	while :; do
		sed -n 's/.* logon *\(keyscope:[^ ]*\): .*/\1/p' /proc/keys | sort -u >"$KS_DIR/keys-have"
		cmp -s "$KS_DIR/keys-want" "$KS_DIR/keys-have" && break
		_n=$((_n + 1))
		[ $_n -le 100 ] || vm_die "$_what: kernel keys differ from the held scopes (< held" \
			"without key, > key without holder):" \
			"$(lines_diff "$KS_DIR/keys-want" "$KS_DIR/keys-have")"
		sleep 0.1
	done
}

# A volume is attached, or can be attached again (a killed attach leaves no NameTaken).
attached() {
	jq -e --arg n "$1" '.attachments[] | select(.name == $n)' "$KS_DIR/vl" >/dev/null
}
ensure_attached() {	# NAME DEVICE
	agree "before attaching $1"
	attached "$1" || ks attach "$2" --name "$1" >/dev/null || vm_die "attaching $1 again failed"
}
ensure_detached() {
	agree "before detaching $1"
	! attached "$1" || ks detach "$1" >/dev/null || vm_die "detaching $1 failed"
}

# ---- deterministic: strace kills keyscoped at the N-th call of a syscall -------------------
t0=$(date +%s)
if [ "${KEYSCOPE_CRASH_STRACE:-1}" = 1 ] && command -v strace >/dev/null; then
	# strace_kill SYSCALL N CMD...: runs CMD with keyscoped killed on entering its N-th
	# SYSCALL (counted from CMD on), then restarts keyscoped.
	strace_kill() {
		_sc=$1 _at=$2
		shift 2
		strace -f -qq -p "$KS_PID" -o /dev/null -e trace="$_sc" \
			-e inject="$_sc:signal=KILL:when=$_at" 2>"$KS_DIR/strace.err" &
		_st=$!
		# Attached once the tracee shows a tracer.
		_n=0
		until grep -q "^TracerPid:[[:space:]]*[1-9]" "/proc/$KS_PID/status"; do
			_n=$((_n + 1))
			[ $_n -le 200 ] || vm_die "strace did not attach: $(cat "$KS_DIR/strace.err")"
			sleep 0.05
		done
		"$@" >"$KS_DIR/out" 2>&1 && vm_die "'$*' succeeded although keyscoped was killed"
		wait "$_st" 2>/dev/null || true
		${KS_RESTART:-crash_restart}
	}
	# strace_count OUT CMD...: CMD's ioctls and renames (or the calls in $KS_TRACE), as
	# keyscoped made them, in OUT.
	strace_count() {
		_o=$1
		shift
		strace -f -qq -p "$KS_PID" -e trace="${KS_TRACE:-ioctl,rename,renameat,renameat2}" \
			-o "$_o" 2>/dev/null &
		_st=$!
		until grep -q "^TracerPid:[[:space:]]*[1-9]" "/proc/$KS_PID/status"; do sleep 0.05; done
		"$@" >/dev/null
		kill "$_st"
		wait "$_st" 2>/dev/null || true
	}
	# nth FILE SYSCALL-RE PATTERN: the position of the first SYSCALL-RE call matching PATTERN
	# among FILE's SYSCALL-RE calls (what strace's when= counts).
	nth() {
		grep -E "^[0-9 ]*($2)\(" "$1" | grep -n -- "$3" | sed -n "${4:-1}p" | cut -d: -f1
	}
	# Positions from a second attach (the first of a process may initialise more).
	ks attach "$vol" --name data >/dev/null
	ks detach data >/dev/null
	strace_count "$KS_DIR/trace" ks attach "$vol" --name data
	ks detach data >/dev/null
	load=$(nth "$KS_DIR/trace" ioctl DM_TABLE_LOAD)
	resume=$(nth "$KS_DIR/trace" ioctl DM_DEV_SUSPEND)
	record=$(nth "$KS_DIR/trace" 'rename|renameat|renameat2' attachments.json)
	[ -n "$load" ] && [ -n "$resume" ] && [ -n "$record" ] ||
		vm_die "cannot find the table load, resume and record of an attach: $(cat "$KS_DIR/trace")"

	# After each restart: warm up as above, so the positions hold.
	strace_kill ioctl "$load" ks attach "$vol" --name data
	agree "after a kill at the table load"
	grep -q 'Crash recovery: removed mapping data' "$KS_LOG" ||
		vm_die "a device with no table was not removed"
	ks attach "$vol" --name data >/dev/null
	ks detach data >/dev/null
	strace_kill ioctl "$resume" ks attach "$vol" --name data
	agree "after a kill before the resume"
	[ "$(grep -c 'Crash recovery: removed mapping data' "$KS_LOG")" = 2 ] ||
		vm_die "a device with only an inactive table was not removed"
	ks attach "$vol" --name data >/dev/null
	ks detach data >/dev/null
	strace_kill rename,renameat,renameat2 "$record" ks attach "$vol" --name data
	agree "after a kill before the record"
	grep -q 'Crash recovery: adopted mapping data' "$KS_LOG" ||
		vm_die "a live mapping without a record was not adopted"
	attached data || vm_die "data was not adopted"
	ensure_detached data

	# resize: killed between the reload and the resume: finished at start.
	ks attach /dev/mapper/grow --name rsv >/dev/null
	grow_sectors=$((grow_sectors + 8192))
	dmsetup reload grow --table "0 $grow_sectors linear $rsdisk 0"
	dmsetup resume grow
	ks resize rsv >/dev/null
	strace_count "$KS_DIR/trace" ks resize rsv
	rresume=$(nth "$KS_DIR/trace" ioctl DM_DEV_SUSPEND)
	[ -n "$rresume" ] || vm_die "no resume in a resize: $(cat "$KS_DIR/trace")"
	before=$(blockdev --getsz /dev/mapper/rsv)
	grow_sectors=$((grow_sectors + 8192))
	dmsetup reload grow --table "0 $grow_sectors linear $rsdisk 0"
	dmsetup resume grow
	strace_kill ioctl "$rresume" ks resize rsv
	agree "after a kill before a resize's resume"
	grep -q 'Crash recovery: finished the interrupted resize of rsv' "$KS_LOG" ||
		vm_die "the interrupted resize was not finished"
	after=$(blockdev --getsz /dev/mapper/rsv)
	[ "$after" -eq $((before + 8192)) ] ||
		vm_die "resize finished at $after sectors, not $((before + 8192))"
	echo "deterministic: no table -> removed, inactive table -> removed, no record ->" \
		"adopted, resize before its resume -> finished ($before -> $after sectors)"

	# format: libcryptsetup wipes the header area, writes the header (primary copy "LUKS",
	# then secondary "SKUL", each its binary header, JSON area, binary header again), then
	# writes it again with the token. Positions from a second format, as above.
	ks format "$fmt" --key "$f" --force >/dev/null
	KS_TRACE=write strace_count "$KS_DIR/trace" ks format "$fmt" --key "$f" --force
	hdr=$(nth "$KS_DIR/trace" write '"LUKS' 1)	# the first header write
	tok=$(nth "$KS_DIR/trace" write '"LUKS' 3)	# the token's primary copy
	tok2=$(nth "$KS_DIR/trace" write '"SKUL' 3)	# the token's secondary copy
	[ -n "$hdr" ] && [ -n "$tok" ] && [ -n "$tok2" ] ||
		vm_die "cannot find the header writes of a format: $(cut -c1-100 "$KS_DIR/trace")"
	# Killed before the token: a header with neither keyslot nor token, which recovery
	# completes (the intent's key opens its digest), so the volume attaches by its token.
	strace_kill write "$tok" ks format "$fmt" --key "$f" --force
	agree "after a kill before a format's token"
	grep -q "Crash recovery: finished the interrupted format of $fmt" "$KS_LOG" ||
		vm_die "the format killed before its token was not finished:" \
			"$(grep 'Crash recovery' "$KS_LOG" | tail -n 3)"
	ks attach "$fmt" --name f >/dev/null || vm_die "the finished format does not attach"
	ks detach f >/dev/null
	# Killed while the token's secondary copy is written: the primary one has it.
	ks format "$fmt" --key "$f" --force >/dev/null
	strace_kill write "$tok2" ks format "$fmt" --key "$f" --force
	agree "after a kill before a format's last header copy"
	ks attach "$fmt" --name f >/dev/null || vm_die "a format killed at its last copy does not attach"
	ks detach f >/dev/null
	# Killed before the header: no LUKS header, said at start; format works without --force.
	ks format "$fmt" --key "$f" --force >/dev/null
	strace_kill write "$hdr" ks format "$fmt" --key "$f" --force
	agree "after a kill before a format's header"
	! cryptsetup isLuks "$fmt" || vm_die "a format killed before its header left a LUKS header"
	grep -q "Crash recovery: the interrupted format of $fmt stopped before its header" \
		"$KS_LOG" || vm_die "a format killed before its header was not reported"
	ks format "$fmt" --key "$f" >/dev/null ||
		vm_die "a device a killed format left without header cannot be formatted again"
	# The state folder lost with the intent: the tokenless header stays, and format says what
	# it is instead of only "holds a LUKS header"; --force formats it again.
	ks format "$fmt" --key "$f" --force >/dev/null
	drop_intents() {
		kill -KILL "$KS_PID" 2>/dev/null || true
		wait "$KS_PID" 2>/dev/null || true
		rm -rf "$state/intents"
		crash_restart
	}
	KS_RESTART=drop_intents strace_kill write "$tok" ks format "$fmt" --key "$f" --force
	ks format "$fmt" --key "$f" >"$KS_DIR/out" 2>&1 &&
		vm_die "a tokenless header was formatted over without --force"
	grep -q 'as a format interrupted before its token leaves it' "$KS_DIR/out" ||
		vm_die "format of a tokenless header: $(cat "$KS_DIR/out")"
	ks rebind "$fmt" --key "$f" >/dev/null || vm_die "rebind cannot write a tokenless header's token"
	ks attach "$fmt" --name f >/dev/null && ks detach f >/dev/null ||
		vm_die "a tokenless header rebound does not attach"
	ks format "$fmt" --key "$f" --force >/dev/null
	KS_RESTART=drop_intents strace_kill write "$tok" ks format "$fmt" --key "$f" --force
	ks format "$fmt" --key "$f" --force >/dev/null
	ks attach "$fmt" --name f >/dev/null && ks detach f >/dev/null ||
		vm_die "format --force over a tokenless header does not attach"
	echo "deterministic format: before its token -> finished, before its last copy ->" \
		"complete, before its header -> no header and formatted again, tokenless header" \
		"without its intent -> named by format, rebound, formatted again"
else
	echo "no deterministic cases (strace is not installed, or KEYSCOPE_CRASH_STRACE=0)"
fi

# ---- the kill loop ---------------------------------------------------------------------------
t1=$(date +%s)
mid=0 completed=0 round=0 fmt_none=0
key=$a
ops="attach detach resize rebind format"
nops=$(echo $ops | wc -w)
while [ $round -lt "$kills" ]; do
	op=$(echo $ops | cut -d' ' -f$((round % nops + 1)))
	case $op in
	attach) ensure_detached data; set -- ks attach "$vol" --name data ;;
	detach) ensure_attached data "$vol"; set -- ks detach data ;;
	resize)
		ensure_attached rsv /dev/mapper/grow
		grow_sectors=$((grow_sectors + 2048))
		dmsetup reload grow --table "0 $grow_sectors linear $rsdisk 0"
		dmsetup resume grow
		set -- ks resize rsv ;;
	rebind)
		ensure_detached data
		[ "$key" = "$a" ] && key=$b || key=$a
		set -- ks rebind "$vol" --key "$key" ;;
	format) set -- ks format "$fmt" --key "$f" --force ;;
	esac
	delay=$(( $(od -An -N2 -tu2 /dev/urandom) % 301 ))
	"$@" >"$KS_DIR/out" 2>&1 &
	client=$!
	sleep "$(printf '0.%03d' "$delay")"
	kill -KILL "$KS_PID"
	wait "$KS_PID" 2>/dev/null || true
	crc=0
	wait "$client" || crc=$?
	# An intent left behind: the kill landed inside the operation's critical section.
	if [ -n "$(ls -A "$state/intents" 2>/dev/null)" ]; then
		mid=$((mid + 1))
	elif [ $crc = 0 ]; then
		completed=$((completed + 1))
	fi
	crash_restart
	round=$((round + 1))
	agree "round $round ($op killed after $delay ms)"
	case $op in
	attach | detach) ensure_attached data "$vol"; ensure_detached data ;;
	rebind)
		# The token names one of the two keys, and that key opens the volume.
		ensure_attached data "$vol"
		ensure_detached data ;;
	format)
		# Either a header that attaches by its token (the old one, or the new one, finished
		# at start if need be) or no LUKS header, which formats again without --force.
		if cryptsetup isLuks "$fmt"; then
			ks attach "$fmt" --name f >/dev/null ||
				vm_die "round $round: $fmt has a LUKS header that keyscope" \
					"cannot attach: $(cryptsetup luksDump "$fmt" | grep -A3 Tokens)"
			ks detach f >/dev/null
		else
			fmt_none=$((fmt_none + 1))
			ks format "$fmt" --key "$f" >/dev/null ||
				vm_die "round $round: $fmt, left without header, cannot be formatted"
		fi ;;
	esac
done
agree "at the end"
ensure_detached rsv
dmsetup remove grow
adopted=$(grep -o 'Crash recovery: adopted mapping' "$KS_LOG" | wc -l)
removed=$(grep -o 'Crash recovery: removed mapping' "$KS_LOG" | wc -l)
finished=$(grep -o 'Crash recovery: finished' "$KS_LOG" | wc -l)
t2=$(date +%s)
# Figures for CI's time budget: a round costs about one restart, one check, one re-attach.
echo "time: deterministic cases $((t1 - t0)) s, kill loop $((t2 - t1)) s for $kills rounds"
echo "kills: $kills; landed mid-operation: $mid; operation completed first: $completed;" \
	"adopted $adopted, removed $removed, finished $finished (with the deterministic cases);" \
	"formats that left no header: $fmt_none"
echo ok
