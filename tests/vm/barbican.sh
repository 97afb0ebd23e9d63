# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest-side helpers for tests against the host's Barbican (tests/vm/check starts it for a test
# marked "# vm-needs: barbican"; source after keyscope.sh). The owner of the keys is user-a in
# project-a (Barbican's development mode: callers name themselves); the node is NODE_USER.
# shellcheck shell=sh

[ -n "${KEYSCOPE_BARBICAN_URL:-}" ] || vm_skip "no Barbican given (run through tests/vm/check)"
URL=$KEYSCOPE_BARBICAN_URL
CA=$KEYSCOPE_BARBICAN_CA
OWNER_PROJECT=project-a OWNER_USER=user-a
NODE_PROJECT=project-node NODE_USER=node-vm-$$

# bb METHOD PATH [CURL ARGS]: a request to Barbican as the key owner (development mode).
bb() {
	_m=$1 _p=$2
	shift 2
	curl -sS --fail-with-body --max-time 30 --cacert "$CA" -X "$_m" \
		-H "X-Project-Id: $OWNER_PROJECT" -H "X-User-Id: $OWNER_USER" -H "X-Roles: creator" \
		-H "OpenStack-API-Version: key-manager 1.1" "$@" "$URL$_p"
}

# consumers ID: "service resource_type resource_id" a line, as the owner sees them.
consumers() {
	bb GET "/v1/secrets/$1/consumers" | /usr/bin/python3 -c 'import json, sys
for c in json.load(sys.stdin).get("consumers", []):
    print(c["service"], c["resource_type"], c["resource_id"])'
}

# wait_consumers ID EXPECTED: the consumers of ID become EXPECTED within 30 s.
wait_consumers() {
	_n=0
	while [ "$(consumers "$1")" != "$2" ]; do
		_n=$((_n + 1))
		[ $_n -le 60 ] || vm_die "consumers of $1 are '$(consumers "$1")', want '$2'"
		sleep 0.5
	done
}

# Barbican out of reach (connect fails at once) and back; only the route changes.
BB_HOST=$(echo "$URL" | sed 's|^https://||; s|:.*||')
outage() { ip route add prohibit "$BB_HOST/32"; }
restore() { ip route del prohibit "$BB_HOST/32"; }

pending() { ks_field "$(ks --json status)" consumers-pending | tr -d " "; }

# node [KEY=VALUE...]: keyscoped as the node (sealed cache on, consumer grace 60 s); each
# argument is one more config line ("barbican-cache = no").
node() {
	cat >"$KS_DIR/conf" <<EOF
[keyscoped]
barbican-url = $URL
barbican-ca-file = $CA
barbican-auth = none
barbican-project-id = $NODE_PROJECT
barbican-user-id = $NODE_USER
barbican-roles = creator
barbican-connect-timeout = 2
barbican-timeout = 5
barbican-deadline = 8
barbican-retries = 1
barbican-cache = yes
barbican-cache-ttl = 600
barbican-consumer-grace = 60
EOF
	for _l in "$@"; do echo "$_l" >>"$KS_DIR/conf"; done
	ks_start --config "$KS_DIR/conf"
}

# new_secret: the owner's new key (64 random bytes for aes-xts-plain64; the payload only
# travels in a pipe), delegated to the node by the read ACL; prints its id.
new_secret() {
	_id=$({
		printf '{"name": "vm-volume", "secret_type": "symmetric", "algorithm": "aes", '
		printf '"bit_length": 512, "mode": "xts", '
		printf '"payload_content_type": "application/octet-stream", '
		printf '"payload_content_encoding": "base64", "payload": "'
		head -c 64 /dev/urandom | base64 -w0
		printf '"}'
	} | bb POST /v1/secrets -H 'Content-Type: application/json' -d @- |
		/usr/bin/python3 -c 'import json, sys
print(json.load(sys.stdin)["secret_ref"].rsplit("/", 1)[1])')
	[ -n "$_id" ] || vm_die "no secret created"
	printf '{"read": {"users": ["%s"], "project-access": false}}' "$NODE_USER" |
		bb PUT "/v1/secrets/$_id/acl" -H 'Content-Type: application/json' -d @- >/dev/null
	echo "$_id"
}
