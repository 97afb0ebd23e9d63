#!/bin/bash
# key clone on a Barbican key stores the same material as a new secret that the node can read,
# and prints its id: the owner's payload and the clone's hash the same (compared through pipes),
# the algorithm, bit length and mode are kept, and the clone installs as a key of its own.
. "$(dirname "$0")/lib.sh"
need_barbican_source
start_node

for bytes in 32 64; do
	id=$(secret_create "$OWNER" --bytes $bytes --mode xts)
	delegate "$id"
	new=$(ctl key clone "$id") || fail "key clone $id failed"
	new=$(tail -n1 <<<"$new")
	[[ $new =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] ||
		fail "key clone printed '$new', not a Barbican secret id"
	[ "$new" != "$id" ] || fail "key clone printed the original id"

	# The clone lives in the node's project; the node reads it, the owner reads the original.
	a=$(payload_sha256 "$OWNER" "$id")
	b=$(payload_sha256 "$NODE" "$new")
	expect_eq "$b" "$a" "sha256 of the clone's payload ($bytes bytes)"
	secret_meta "$NODE" "$new" >"$T/meta"
	expect_eq "$(json_get bit_length <"$T/meta")" $((bytes * 8)) "clone's bit_length"
	expect_eq "$(json_get algorithm <"$T/meta")" aes "clone's algorithm"
	expect_eq "$(json_get mode <"$T/meta")" xts "clone's mode"
	expect_eq "$(json_get secret_type <"$T/meta")" symmetric "clone's secret_type"
	expect_eq "$(json_get status <"$T/meta")" ACTIVE "clone's status"

	# The node's user is on the clone's read ACL (so a later owner change keeps it delegated).
	bc_curl "$NODE" GET "/v1/secrets/$new/acl" | grep -q -- "\"$NODE_USER\"" ||
		fail "the clone's read ACL does not list the node's user: $(bc_curl "$NODE" GET "/v1/secrets/$new/acl")"

	# Both install, as two scopes with two kernel keys.
	ctl key install "$id" >/dev/null || fail "install of the original"
	ctl key install "$new" >/dev/null || fail "install of the clone"
	[ -n "$(key_serial "$new")" ] || fail "no logon key for the clone"
	[ "$(key_serial "$new")" != "$(key_serial "$id")" ] || fail "clone shares the original's kernel key"
	ctl key release "$id" >/dev/null
	ctl key release "$new" >/dev/null
done

# A clone of a key that is not delegated is refused with the 403 message, and stores nothing.
before=$(bc_curl "$NODE" GET "/v1/secrets?limit=100" | json_get total)
private=$(secret_create "$OWNER")
expect_fail_msg "not delegated to this node" ctl key clone "$private"
after=$(bc_curl "$NODE" GET "/v1/secrets?limit=100" | json_get total)
expect_eq "$after" "$before" "secrets in the node's project after a refused clone"
# The material never shows in the daemon's log, neither in base64 nor in hex (the patterns
# come to grep through a pipe).
for enc in "base64 -w0" "od -An -tx1 -v"; do
	if bc_curl "$OWNER" GET "/v1/secrets/$id/payload" -H 'Accept: application/octet-stream' |
		$enc | tr -d ' \n' | grep -qF -f - "$DAEMON_LOG"; then
		fail "key material ($enc) in the daemon log"
	fi
done
echo ok
