#!/bin/bash
# The shape of the tree and of the programs (issue 11): tools/check-tree passes (file and
# function sizes, no include circle) and catches a circle and an oversized file in a tree made
# for the purpose; keyscopectl and keyscope-request-key contain no daemon symbols (nm) and do
# not load libkmod (ldd); with libkmod unreadable keyscopectl still starts and runs "check".
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HELPER=$KEYSCOPE_BUILDDIR/keyscope-request-key
for b in "$KEYSCOPED" "$KEYSCOPECTL" "$HELPER" "$KEYSCOPE_BUILDDIR/libkeyscoped.a"; do
	[ -e "$b" ] || fail "$b is missing: run make"
done

# --- the source rules ----------------------------------------------------------------------
"$ROOT/tools/check-tree" "$ROOT" || fail "tools/check-tree found problems (above)"

# ... and the check sees what it is for: a circle a.h -> b.h -> a.c, a file of 701 lines and a
# function of 81.
mkdir -p "$T/tree/lib" "$T/tree/cli"
printf '#include "b.h"\n' >"$T/tree/lib/a.h"
printf '#include "a.h"\n' >"$T/tree/lib/b.c"
printf '#pragma once\n' >"$T/tree/lib/b.h"
seq 701 | sed 's|^|// |' >"$T/tree/lib/big.c"
{ echo "int f(void)"; echo "{"; seq 81 | sed 's/^/\t;/'; echo "}"; } >"$T/tree/cli/long.c"
out=$("$ROOT/tools/check-tree" "$T/tree") && fail "check-tree passed a tree with a circle: $out"
grep -q 'include circle: lib/a <-> lib/b\|include circle: lib/b <-> lib/a' <<<"$out" ||
	fail "check-tree did not report the circle lib/a <-> lib/b: $out"
grep -q 'lib/big.c has 701 lines' <<<"$out" || fail "check-tree missed the 701-line file: $out"
grep -q 'cli/long.c:f is 81 lines' <<<"$out" || fail "check-tree missed the 81-line function: $out"
echo "check-tree: reports a circle, a long file and a long function"

# --- no daemon code in the CLI and the handler ------------------------------------------------
daemon_syms=$(nm --defined-only -g "$KEYSCOPE_BUILDDIR/libkeyscoped.a" \
	"$KEYSCOPE_BUILDDIR/daemon/main.o" 2>/dev/null |
	awk 'NF == 3 && $2 ~ /[TDBR]/ && $3 != "main" { print $3 }' | sort -u)
[ "$(wc -l <<<"$daemon_syms")" -ge 100 ] ||
	fail "found only $(wc -l <<<"$daemon_syms") daemon symbols: is the build changed?"
for b in "$KEYSCOPECTL" "$HELPER"; do
	syms=$(nm --defined-only "$b" | awk 'NF == 3 { print $3 }' | sort -u)
	[ "$(wc -l <<<"$syms")" -ge 20 ] || fail "$b has no symbol table (stripped?)"
	both=$(comm -12 <(echo "$daemon_syms") <(echo "$syms"))
	[ -z "$both" ] || fail "$(basename "$b") contains daemon symbols: $(echo $both | head -c 300)"
	if ldd "$b" | grep -q libkmod; then
		fail "$(basename "$b") loads libkmod at start: $(ldd "$b" | grep libkmod)"
	fi
done
echo "nm: keyscopectl and keyscope-request-key hold none of the" \
	"$(wc -l <<<"$daemon_syms") daemon symbols"

# --- keyscopectl without libkmod: it opens the library only when a module must be loaded ------
kmod=$(ldconfig -p | awk '$1 == "libkmod.so.2" && /x86-64|64bit/ { print $NF; exit }')
[ -n "$kmod" ] || kmod=$(ldconfig -p | awk '$1 == "libkmod.so.2" { print $NF; exit }')
[ -n "$kmod" ] || skip "libkmod.so.2 is not installed; everything else checked"
unshare -m true 2>/dev/null || skip "unshare -m is not allowed here; everything else checked"
# In a mount namespace of its own, libkmod.so.2 reads as an empty file.
out=$(unshare -m bash -c 'mount --bind /dev/null "$1" && real=$(readlink -f "$1") &&
	{ [ "$real" = "$1" ] || mount --bind /dev/null "$real"; } &&
	"$2" --version && { "$2" check --no-load; echo "check exit $?"; }' \
	_ "$kmod" "$KEYSCOPECTL" 2>&1) ||
	fail "keyscopectl without a readable libkmod: $out"
grep -qx "keyscopectl .*" <<<"$out" || fail "keyscopectl --version without libkmod: $out"
grep -q "^check exit [01]$" <<<"$out" || fail "keyscopectl check without libkmod: $out"
grep -q "keyscope check:" <<<"$out" || fail "keyscopectl check printed no verdict: $out"
echo "keyscopectl starts and checks with libkmod unreadable"
echo "ok"
