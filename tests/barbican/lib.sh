# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for the Barbican integration tests (tests/barbican/t-*.sh), on top of tests/host/lib.sh:
# each test has its own keyscoped, socket, state folder and session keyring, and talks to the
# Barbican that tests/barbican/run started (BARBICAN_URL, BARBICAN_CA, BARBICAN_DIR). A test run
# on its own starts a server of its own in its temporary folder.
#
# Identities in Barbican's development mode are whatever the caller says in X-Project-Id,
# X-User-Id and X-Roles. The owner of the keys is OWNER (user-a in project-a); the node is
# NODE_USER in NODE_PROJECT, one node user per test so that tests never see each other's
# delegations. Key material is made from /dev/urandom and only ever travels through pipes.
. "$(dirname "${BASH_SOURCE[0]}")/../host/lib.sh"
BC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

OWNER=project-a:user-a:creator
NODE_PROJECT=project-node
NODE_USER=node-${T##*.}
NODE=$NODE_PROJECT:$NODE_USER:creator
if [ -n "${KEYSTONE_URL:-}" ]; then
	# The Keystone stage (tests/barbican/keystone): real users with tokens. WHO is a user
	# name; NODE_USER is the node's Keystone user id (what an ACL names).
	. "$KS_DIR/ids.env"
	OWNER=user-a:project-a
	NODE=node:project-node
	NODE_USER=$NODE_ID
	NODE_PROJECT=$PROJECT_NODE_ID
fi
BC_OWN_SERVER=
BC_ATEXIT=: # more clean-up for a test to run at exit

bc_cleanup() {
	local rc=$?
	set +e # a failing test must still stop its daemon and servers
	eval "$BC_ATEXIT"
	[ -z "$BC_OWN_SERVER" ] || "$BC_DIR/server" stop "$BC_OWN_SERVER"
	(exit $rc) # cleanup takes the test's status from $?
	cleanup
}
trap bc_cleanup EXIT

# use_private_server: a Barbican of this test's own (in $T/barbican), for tests that stop it.
use_private_server() {
	local env
	[ -z "$BC_OWN_SERVER" ] || return 0
	BC_OWN_SERVER=$T/barbican
	env=$("$BC_DIR/server" start "$BC_OWN_SERVER") || fail "could not start a Barbican server"
	eval "$env"
	BARBICAN_DIR=$BC_OWN_SERVER
}

# private_server_stop / private_server_start: stop it and start it again on the same port.
private_server_stop() {
	"$BC_DIR/server" stop "$BC_OWN_SERVER"
}
private_server_start() {
	"$BC_DIR/server" start "$BC_OWN_SERVER" "${BARBICAN_URL##*:}" >/dev/null ||
		fail "could not restart the Barbican server"
}

[ -n "${BARBICAN_URL:-}" ] || use_private_server
: "${BARBICAN_DIR:=$(dirname "$BARBICAN_CA")}"

# need_barbican_source: skip unless this keyscoped knows the Barbican key source.
need_barbican_source() {
	printf 'barbican-url = %s\n' "$BARBICAN_URL" >"$T/probe.conf"
	"$KEYSCOPED" --config "$T/probe.conf" --socket "$T/probe.sock" --state-dir "$T/probe" \
		--keyring @s >"$T/probe.err" 2>&1 &
	local pid=$!
	for _ in $(seq 1 40); do
		kill -0 $pid 2>/dev/null || break
		[ -S "$T/probe.sock" ] && break
		sleep 0.05
	done
	kill $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	rm -rf "$T/probe" "$T/probe.sock"
	if grep -q "unknown option 'barbican-url'" "$T/probe.err"; then
		skip "keyscoped has no Barbican key source yet (config key barbican-url is unknown)"
	fi
}

# bc_curl WHO METHOD PATH [CURL ARGS...]: a request to Barbican as WHO (PROJECT:USER:ROLES);
# prints the body, fails on an HTTP error unless BC_ALLOW_ERROR=1.
bc_curl() {
	local who=$1 method=$2 path=$3 project user roles fail=(--fail-with-body) id=()
	shift 3
	[ "${BC_ALLOW_ERROR:-0}" = 1 ] && fail=()
	if [ -n "${KEYSTONE_URL:-}" ]; then
		id=(-H "@$(ks_token_header "$who")")
	else
		IFS=: read -r project user roles <<<"$who"
		id=(-H "X-Project-Id: $project" -H "X-User-Id: $user" -H "X-Roles: $roles")
	fi
	curl -sS "${fail[@]}" --max-time 30 --cacert "$BARBICAN_CA" -X "$method" "${id[@]}" \
		-H "OpenStack-API-Version: key-manager 1.1" "$@" "$BARBICAN_URL$path"
}

# ks_token_header USER:PROJECT: a file holding "X-Auth-Token: ..." for a project-scoped token of
# USER (password auth; the password and the token stay in files of this test, mode 0600).
ks_token_header() {
	local user=${1%%:*} project=${1#*:} f
	f=$T/token-$user-$project
	if [ ! -s "$f" ]; then
		(umask 077 && /usr/bin/python3 - "$KEYSTONE_URL" "$BARBICAN_CA" "$user" "$project" \
			"$KS_DIR/$user.password" >"$f" <<'EOF'
import json, ssl, sys, urllib.request
url, ca, user, project, pwfile = sys.argv[1:6]
body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": user, "domain": {"id": "default"}, "password": open(pwfile).read().strip()}}},
    "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
req = urllib.request.Request(url + "/v3/auth/tokens?nocatalog", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca)) as r:
    print("X-Auth-Token: " + r.headers["X-Subject-Token"])
EOF
		) || fail "no Keystone token for $user in $project"
	fi
	echo "$f"
}

# app_credential FILE [NAME]: a new application credential of the node user, written as keyscoped
# reads it ("id = ...", "secret = ...", mode 0600): the secret goes from Keystone's answer to
# the file only.
app_credential() {
	local hdr
	hdr=$(ks_token_header "$NODE")
	(umask 077 && /usr/bin/python3 - "$KEYSTONE_URL" "$BARBICAN_CA" "$NODE_ID" "$hdr" \
		"${2:-keyscope-${T##*.}}" >"$1" <<'EOF'
import json, ssl, sys, urllib.request
url, ca, uid, hdr, name = sys.argv[1:6]
token = open(hdr).read().split(":", 1)[1].strip()
req = urllib.request.Request(url + "/v3/users/%s/application_credentials" % uid, method="POST",
                             data=json.dumps({"application_credential": {"name": name}}).encode(),
                             headers={"Content-Type": "application/json", "X-Auth-Token": token})
with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca)) as r:
    c = json.load(r)["application_credential"]
print("# application credential %s of the node user" % name)
print("id = %s" % c["id"])
print("secret = %s" % c["secret"])
EOF
	) || fail "could not create an application credential"
}

# json_get KEY: one top-level value of the JSON document on stdin ("" when absent).
json_get() {
	/usr/bin/python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1], "")
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1"
}

# secret_create WHO [--bytes N] [--bits N] [--type T] [--mode M] [--name NAME] [--expire ISO]:
# stores N random bytes (default 32) labelled with bit_length N (default 8 * bytes) and prints
# the new secret's id. The payload goes /dev/urandom | base64 | curl -d @-: never in argv.
secret_create() {
	local who=$1 bytes=32 bits="" type=symmetric mode=xts name=keyscope-test expire="" ref
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--bytes) bytes=$2 ;;
		--bits) bits=$2 ;;
		--type) type=$2 ;;
		--mode) mode=$2 ;;
		--name) name=$2 ;;
		--expire) expire=$2 ;;
		*) fail "secret_create: unknown option $1" ;;
		esac
		shift 2
	done
	[ -n "$bits" ] || bits=$((bytes * 8))
	ref=$({
		printf '{"name": "%s", "secret_type": "%s", "algorithm": "aes", "bit_length": %d, ' \
			"$name" "$type" "$bits"
		printf '"mode": "%s", ' "$mode"
		[ -z "$expire" ] || printf '"expiration": "%s", ' "$expire"
		printf '"payload_content_type": "application/octet-stream", '
		printf '"payload_content_encoding": "base64", "payload": "'
		head -c "$bytes" /dev/urandom | base64 -w0
		printf '"}'
	} | bc_curl "$who" POST /v1/secrets -H 'Content-Type: application/json' -d @- |
		json_get secret_ref) || fail "secret_create as $who failed"
	[ -n "$ref" ] || fail "secret_create as $who: no secret_ref in the answer"
	echo "${ref##*/}"
}

# acl_set WHO ID USER...: the secret's read ACL is exactly USER... with project-access false.
acl_set() {
	local who=$1 id=$2 users="" u
	shift 2
	for u in "$@"; do users="$users${users:+, }\"$u\""; done
	printf '{"read": {"users": [%s], "project-access": false}}' "$users" |
		bc_curl "$who" PUT "/v1/secrets/$id/acl" -H 'Content-Type: application/json' -d @- \
			>/dev/null || fail "acl_set $id as $who failed"
}

# acl_delete WHO ID: withdraws every ACL of the secret (back to project access).
acl_delete() {
	bc_curl "$1" DELETE "/v1/secrets/$2/acl" >/dev/null || fail "acl_delete $2 as $1 failed"
}

# delegate ID: the owner delegates the secret to this test's node user.
delegate() {
	acl_set "$OWNER" "$1" "$NODE_USER"
}

# secret_meta WHO ID: the secret's metadata (JSON).
secret_meta() {
	bc_curl "$1" GET "/v1/secrets/$2" -H 'Accept: application/json'
}

# payload_sha256 WHO ID: sha256 of the secret's payload, read as WHO (the material stays in
# the pipe).
payload_sha256() {
	local out
	out=$(set -o pipefail; bc_curl "$1" GET "/v1/secrets/$2/payload" \
		-H 'Accept: application/octet-stream' | sha256sum) || fail "payload of $2 as $1 failed"
	echo "${out%% *}"
}

# consumers WHO ID: the secret's consumers as "service resource_type resource_id" lines.
consumers() {
	bc_curl "$1" GET "/v1/secrets/$2/consumers" | /usr/bin/python3 -c 'import json, sys
for c in json.load(sys.stdin).get("consumers", []):
    print(c["service"], c["resource_type"], c["resource_id"])'
}

# http_code WHO METHOD PATH [CURL ARGS...]: only the HTTP status of the request.
http_code() {
	local who=$1 method=$2 path=$3
	shift 3
	BC_ALLOW_ERROR=1 bc_curl "$who" "$method" "$path" -o /dev/null -w '%{http_code}' "$@" || true
}

# material_in FILES... : whether the raw payload on stdin occurs in any of FILES (or the files
# under a folder), in raw, hex or base64 form.
material_in() {
	/usr/bin/python3 -c 'import base64, os, sys
p = sys.stdin.buffer.read()
forms = [p, p.hex().encode(), p.hex().upper().encode(), base64.b64encode(p)]
paths = []
for a in sys.argv[1:]:
    if os.path.isdir(a):
        paths += [os.path.join(d, f) for d, _, fs in os.walk(a) for f in fs]
    else:
        paths.append(a)
for path in paths:
    try:
        data = open(path, "rb").read()
    except OSError:
        continue
    if len(p) and any(f in data for f in forms):
        print(path)
        sys.exit(0)
sys.exit(1)' "$@"
}

# payload WHO ID: the payload on stdout, for a pipe.
payload() {
	bc_curl "$1" GET "/v1/secrets/$2/payload" -H 'Accept: application/octet-stream'
}

# node_conf [LINES...]: writes $T/conf for a keyscoped that is this test's node against
# BARBICAN_URL: in development mode, or in the Keystone stage with the application credential
# in $T/appcred (made by app_credential); extra "key = value" lines follow (and win).
node_conf() {
	{
		echo "[keyscoped]"
		echo "barbican-url = $BARBICAN_URL"
		echo "barbican-ca-file = $BARBICAN_CA"
		if [ -n "${KEYSTONE_URL:-}" ]; then
			echo "barbican-auth = app-credential"
			echo "keystone-url = $KEYSTONE_URL"
			echo "app-credential-file = $T/appcred"
		else
			echo "barbican-auth = none"
			echo "barbican-project-id = $NODE_PROJECT"
			echo "barbican-user-id = $NODE_USER"
			echo "barbican-roles = creator"
		fi
		echo "barbican-connect-timeout = 2"
		echo "barbican-timeout = 5"
		echo "barbican-deadline = 10"
		echo "barbican-retries = 2"
		local l
		for l in "$@"; do echo "$l"; done
	} >"$T/conf"
}

# start_node [LINES...]: node_conf LINES, then keyscoped with it.
start_node() {
	node_conf "$@"
	start_daemon --config "$T/conf"
}

# elapsed_ms START: milliseconds since START (an $EPOCHREALTIME value).
elapsed_ms() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'
}
