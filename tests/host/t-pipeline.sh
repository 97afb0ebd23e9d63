#!/bin/bash
# Requests sent in one write are all answered, in order, even when their replies together pass
# the daemon's output high-water mark (4 MiB); with the sending side shut, the buffered
# complete requests are answered first and only an unfinished tail is called incomplete.
. "$(dirname "$0")/lib.sh"
RAW=$KEYSCOPE_BUILDDIR/tools/ks-raw
N=1500		# scopes: a ScopeList reply of ~250 KB, so 40 of them make ~10 MB
start_daemon

# 1500 keys, created and installed over the socket in a few round trips.
for _ in $(seq $N); do printf '{"method":"keyscope.KeyCreate"}\0'; done |
	"$RAW" "$KEYSCOPE_SOCKET" 60000 >"$T/created" || fail "creating $N keys"
sed -n 's/.*"key-id": *"\([^"]*\)".*/\1/p' "$T/created" >"$T/ids"
expect_eq "$(wc -l <"$T/ids")" $N "keys created"
batch() { # FIRST LAST: a KeyInstall of the ids on those lines
	printf '{"method":"keyscope.KeyInstall","parameters":{"key-ids":[%s]}}\0' \
		"$(sed -n "$1,$2p" "$T/ids" | sed 's/.*/"&"/' | paste -sd,)"
}
{ batch 1 750; batch 751 $N; } | "$RAW" "$KEYSCOPE_SOCKET" 60000 >"$T/installed" ||
	fail "installing $N keys"
expect_eq "$(grep -c '"scopes"' "$T/installed")" 2 "batch installs answered"
# (one keyctl for all: count_keyscope_keys describes each key, 1500 processes)
ring=$(keyctl search @s keyring keyscope) || fail "no keyscope keyring"
expect_eq "$(keyctl rlist "$ring" | wc -w)" $N "keys in the keyscope keyring"

list40() { for _ in $(seq 40); do printf '{"method":"keyscope.ScopeList"}\0'; done; }
holders() { grep -o '"holders": *1' "$1" | wc -l; }

# 40 ScopeLists in one write, the connection kept open: 40 whole replies.
list40 | "$RAW" --count 40 "$KEYSCOPE_SOCKET" 20000 >"$T/open" 2>"$T/open.err" ||
	fail "pipelined ScopeLists: $(cat "$T/open.err") ($(wc -c <"$T/open") bytes)"
expect_eq "$(grep -c '"scopes"' "$T/open")" 40 "replies to 40 pipelined ScopeLists"
expect_eq "$(holders "$T/open")" $((40 * N)) "scopes listed in 40 replies"
ls -l "$T/open" | awk '{ print "40 replies, " $5 " bytes" }'

# The same with the sending side shut: 40 replies, no false IncompleteRequest.
list40 | "$RAW" "$KEYSCOPE_SOCKET" 20000 >"$T/shut" 2>"$T/shut.err" ||
	fail "half-closed pipeline: $(cat "$T/shut.err")"
grep -q IncompleteRequest "$T/shut" && fail "complete requests called incomplete: $(grep -o '"message":[^}]*' "$T/shut")"
expect_eq "$(grep -c '"scopes"' "$T/shut")" 40 "replies to 40 ScopeLists, sending side shut"

# A truly unfinished request after them: 40 replies, then one IncompleteRequest for its bytes.
{ list40; printf '{"method":"keyscope.Pi'; } | "$RAW" "$KEYSCOPE_SOCKET" 20000 >"$T/tail" ||
	fail "pipeline with an unfinished tail"
expect_eq "$(grep -c '"scopes"' "$T/tail")" 40 "replies before the unfinished request"
expect_eq "$(grep -c IncompleteRequest "$T/tail")" 1 "IncompleteRequest replies"
tail -n 1 "$T/tail" | grep -q "closed after 22 bytes of an unfinished request" ||
	fail "last reply: $(tail -n 1 "$T/tail")"

ctl status >/dev/null || fail "daemon not serving after the pipelines"
echo ok
