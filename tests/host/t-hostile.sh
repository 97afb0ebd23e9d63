#!/bin/bash
# 100+ malformed or hostile requests each get an error reply naming the problem; the daemon
# stays up and answers a valid request afterwards.
. "$(dirname "$0")/lib.sh"
RAW=$KEYSCOPE_BUILDDIR/tools/ks-raw
[ -x "$RAW" ] || fail "$RAW missing (make check builds it)"
start_daemon
good=$(ctl key create)

long=$(printf 'a%.0s' $(seq 1 5000))
bad_ids=("a/b" ".." "../etc" "../../x" "a b" "a\\nb" "a\\tb" "" " " "$long" "keyscope:x"
	"-x" ".hidden" "x/" "/x" "a..b" "a\\u0000b" "\\u00e9t\\u00e9" "a;b" "a*" "a\\\\b")
reqs=()
for id in "${bad_ids[@]}"; do
	for m in KeyInstall KeyRelease KeyDelete KeyClone; do
		reqs+=("{\"method\":\"keyscope.$m\",\"parameters\":{\"key-id\":\"$id\"}}")
	done
done
reqs+=(
	'not json' '{' '}' '[]' '"string"' '123' 'null' 'true' '{}' '{"method":null}'
	'{"method":1}' '{"method":["keyscope.Ping"]}' '{"method":"keyscope.Nope"}'
	'{"method":"Nope"}' '{"method":""}' '{"method":"keyscope Ping"}' '{"method":".x"}'
	"{\"method\":\"keyscope.$long\"}" '{"method":"keyscope.Ping","extra":1}'
	'{"method":"keyscope.Ping","parameters":[]}' '{"method":"keyscope.Ping","parameters":1}'
	'{"method":"keyscope.Ping"} trailing' '{"method":"keyscope.Ping"}{"x":1}'
	'{"method":"keyscope.Ping",}' "{'method':'keyscope.Ping'}" '{"method":"keyscope.Ping"'
	'{"method":"keyscope.Ping","payload-size":0}' '{"method":"keyscope.Ping","payload-size":65}'
	'{"method":"keyscope.Ping","payload-size":"1"}' '{"method":"keyscope.Ping","payload-size":-1}'
	'{"method":"keyscope.KeyInstall"}' '{"method":"keyscope.KeyInstall","parameters":{}}'
	'{"method":"keyscope.KeyInstall","parameters":{"key-id":5}}'
	'{"method":"keyscope.KeyInstall","parameters":{"key-id":null}}'
	'{"method":"keyscope.KeyInstall","parameters":{"key-id":{"a":1}}}'
	"{\"method\":\"keyscope.KeyInstall\",\"parameters\":{\"key-id\":\"$good\",\"x\":1}}"
	'{"method":"keyscope.KeyInstall","parameters":{"key-id":"no-such-key"}}'
	'{"method":"keyscope.KeyRelease","parameters":{"key-id":"no-such-key"}}'
	'{"method":"keyscope.KeyDelete","parameters":{"key-id":"no-such-key"}}'
	'{"method":"keyscope.KeyClone","parameters":{"key-id":"no-such-key"}}'
	'{"method":"keyscope.KeyCreate","parameters":{"bits":"512"}}'
	'{"method":"keyscope.KeyCreate","parameters":{"bits":1024}}'
	'{"method":"keyscope.KeyCreate","parameters":{"bits":-1}}'
	'{"method":"keyscope.KeyCreate","parameters":{"bits":1e99}}'
	'{"method":"keyscope.KeyCreate","parameters":{"bits":99999999999999999999999}}'
	'{"method":"keyscope.KeyCreate","parameters":{"bits":256.5}}'
	"{\"method\":\"keyscope.KeyCreate\",\"parameters\":{\"name\":\"$long\"}}"
	'{"method":"keyscope.KeyCreate","parameters":{"name":"a\u0001b"}}'
	'{"method":"keyscope.KeyCreate","parameters":{"name":7}}'
	'{"method":"keyscope.KeyImport"}' '{"method":"keyscope.KeyImport","parameters":{"name":"x"}}'
	'{"method":"keyscope.KeyList","parameters":{"all":true}}'
	"$(printf '%.0s[' $(seq 1 100))$(printf '%.0s]' $(seq 1 100))"
	"{\"method\":\"keyscope.Ping\",\"parameters\":$(printf '%.0s{"a":' $(seq 1 20))1$(printf '%.0s}' $(seq 1 20))}"
	$'{"method":"keyscope.Ping\xff\xfe"}' $'{"method":"keyscope.Ping","parameters":{"\xc0\x80":1}}'
	# Strings on their full length: no NUL inside, no lone surrogate (issue 10 item 6).
	'{"method":"keyscope.Ping\u0000x"}' '{"method\u0000x":"keyscope.Ping"}'
	'{"method":"keyscope.KeyCreate","parameters":{"name":"\ud800"}}'
	'{"method":"keyscope.KeyCreate","parameters":{"name":"a\udc00b"}}'
	'{"method":"keyscope.KeyCreate","parameters":{"name\u0000":"x"}}'
)
n=0
for r in "${reqs[@]}"; do
	reply=$(printf '%s\0' "$r" | "$RAW" "$KEYSCOPE_SOCKET") || fail "no reply to: ${r:0:80}"
	case $reply in
	'{"error":"keyscope.'*'"parameters":{"message":"'?*) ;;
	*) fail "request ${r:0:80} got '${reply:0:200}', expected an error with a message" ;;
	esac
	n=$((n + 1))
done

# All of them on one connection: one error each, in order, connection kept throughout.
replies=$(for r in "${reqs[@]}"; do printf '%s\0' "$r"; done | "$RAW" "$KEYSCOPE_SOCKET" | grep -c '^{"error":')
expect_eq "$replies" "${#reqs[@]}" "error replies on one connection"

# A message larger than the limit: an error, then the daemon closes that connection.
reply=$(head -c 200000 /dev/zero | tr '\0' 'x' | "$RAW" "$KEYSCOPE_SOCKET")
echo "$reply" | grep -q 'keyscope.MessageTooLarge' || fail "oversized request: '${reply:0:200}'"
n=$((n + 1))
# 10 MB of garbage and a payload that never arrives.
head -c 10000000 /dev/urandom | "$RAW" "$KEYSCOPE_SOCKET" 10000 | grep -q '"error"' ||
	fail "10 MB of random bytes got no error"
reply=$(printf '{"method":"keyscope.KeyImport","payload-size":64}\0short' | "$RAW" "$KEYSCOPE_SOCKET")
echo "$reply" | grep -q 'keyscope.IncompleteRequest' || fail "cut payload: '$reply'"
n=$((n + 2))

daemon_alive || fail "keyscoped died"
ctl status >/dev/null || fail "keyscoped does not answer after hostile input"
ctl key install "$good" | grep -q "holders 1" || fail "valid install after hostile input"
expect_eq "$(count_keyscope_keys)" 1 "kernel keys after hostile input"
[ "$(ls "$STATE/keys" | wc -l)" = 1 ] || fail "hostile input created key files: $(ls "$STATE/keys")"
echo "$n hostile requests refused"
[ $n -ge 100 ] || fail "only $n hostile requests"
