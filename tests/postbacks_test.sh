#!/usr/bin/env bash
# postbacks_test.sh - postbacks to editors (issue 17), through the real
# processes on free loopback ports: affiliate-server, affiliate-bridge,
# affiliate-worker, and receivers this script starts
# (tests/postback_receiver.py, Python's http.server: an implementation of
# the receiving side that is not ours, which checks every delivery's
# Standard Webhooks signature with Python's hmac and records it).
#   1. the registry over REST and the CLI: URL rules and the SSRF refusal
#      (without --postback-allow-private), the whsec_ secret shown once,
#      rotation, editor scoping with API keys, delete.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/affiliate-postbacks-XXXXXX)
pids=()
. "$HERE/tap.sh"
. "$HERE/backend.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	backend_stop
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }

http_port=$(free_port)
rpc_url="ipc://$work/rpc.sock"
jobs_url="ipc://$work/jobs.sock"
results_url="ipc://$work/results.sock"
B="http://127.0.0.1:$http_port"
export AFFILIATE_WORKER_SECRET=postbacks-test-worker-secret

# start_server [ARGS...]: the server with the test's settings and ARGS.
start_server() {
	"$BIN/affiliate-server" --listen "$rpc_url" --data-dir "$work/data" \
		--redis off --jobs "$jobs_url" --results "$results_url" \
		"$@" >>"$work/server.log" 2>&1 &
	server_pid=$!
	pids+=($server_pid)
	wait_for "$work/server.log" "server: ready" || exit 1
}
stop_server() {
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null
	: >"$work/server.log"
}

# req METHOD PATH [BODY] [KEY]: the status into $code, the body into
# $work/body.
req() {
	local args=(-s -o "$work/body" -w '%{http_code}' -X "$1")
	[ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	[ -n "${4:-}" ] && args+=(-H "Authorization: Bearer $4")
	code=$(curl "${args[@]}" "$B$2")
}
# expect NAME STATUS METHOD PATH [BODY] [KEY] -- PATTERN...
expect() {
	local name=$1 want=$2
	shift 2
	local m=$1 p=$2 b=${3:-} k=${4:-}
	shift 2
	[ $# -gt 0 ] && shift
	[ $# -gt 0 ] && shift
	[ $# -gt 0 ] && [ "$1" = -- ] && shift
	req "$m" "$p" "$b" "$k"
	if [ "$code" != "$want" ]; then
		not_ok "$name: $m $p → $code, wanted $want: $(cat "$work/body")"
		return 1
	fi
	for pat in "$@"; do
		if ! grep -q -- "$pat" "$work/body"; then
			not_ok "$name: '$pat' not in $(cat "$work/body")"
			return 1
		fi
	done
	ok "$name"
}
jfield() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); exec("print(" + sys.argv[2] + ")")' "$work/body" "$1"; }

start_server
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" --server "$rpc_url" \
	>"$work/bridge.log" 2>&1 &
pids+=($!)
wait_for "$work/bridge.log" "bridge: listening" || exit 1

# ---- 1. the registry ----
ev='["order.created"]'
expect "a URL that is not http(s) is refused" 400 POST /postback-endpoints \
	'{"editor_id":1,"url":"ftp://example.com/x","events":'"$ev"'}' "" -- "http:// or https://"
expect "user:password@ in the URL is refused" 400 POST /postback-endpoints \
	'{"editor_id":1,"url":"http://u:p@example.com/","events":'"$ev"'}' "" -- "user:password"
for target in "127.0.0.1:9" "10.1.2.3" "172.16.0.1" "192.168.1.1" \
	"169.254.169.254" "[::1]" "[fe80::1]" "[::ffff:127.0.0.1]" "localhost" \
	"0.0.0.0" "100.64.0.1"; do
	expect "SSRF: http://$target/ is refused without --postback-allow-private" 400 \
		POST /postback-endpoints \
		'{"editor_id":1,"url":"http://'"$target"'/hook","events":'"$ev"'}' "" -- \
		"loopback, private or link-local"
done
expect "an unknown event type is refused" 400 POST /postback-endpoints \
	'{"editor_id":1,"url":"http://192.0.2.1/","events":["order.deleted"]}' "" -- "unknown event type"
expect "no event at all is refused" 400 POST /postback-endpoints \
	'{"editor_id":1,"url":"http://192.0.2.1/","events":[]}' "" -- "at least one"
expect "an unknown editor is 404" 404 POST /postback-endpoints \
	'{"editor_id":999,"url":"http://192.0.2.1/","events":'"$ev"'}'
expect "a public address is taken (TEST-NET, never dialled here)" 201 \
	POST /postback-endpoints \
	'{"editor_id":3,"url":"http://192.0.2.1/hook","events":["order.created","application.decided"]}' "" -- \
	'"secret":"whsec_' '"enabled":true'
pub_id=$(jfield 'd["endpoint"]["id"]')
check "the secret is whsec_ and 32 bytes of base64" \
	python3 -c 'import json,sys,base64; s=json.load(open(sys.argv[1]))["secret"]; assert s.startswith("whsec_") and len(base64.b64decode(s[6:], validate=True)) == 32' "$work/body"
secret1=$(jfield 'd["secret"]')

stop_server
start_server --postback-allow-private on
check "the server says private targets are allowed" grep -q "postback endpoints may be on loopback" "$work/server.log"
expect "with --postback-allow-private, a loopback endpoint is taken" 201 \
	POST /postback-endpoints \
	'{"editor_id":1,"url":"http://127.0.0.1:9/hook","events":["order.created"]}' "" -- '"secret":"whsec_'
lo_id=$(jfield 'd["endpoint"]["id"]')
expect "the list shows the endpoints, never a secret" 200 GET /postback-endpoints "" "" -- \
	'"url":"http://192.0.2.1/hook"' '"events":\["order.created","application.decided"\]'
check "no secret in the list" bash -c "! grep -q whsec_ '$work/body'"
expect "the list of one editor" 200 GET "/postback-endpoints?editor_id=3" "" "" -- "\"id\":$pub_id"
check "... and only that editor's" bash -c "! grep -q '\"editor_id\":1' '$work/body'"
expect "rotate: a new secret, shown once" 200 POST "/postback-endpoints/$pub_id/rotate-secret" "" "" -- '"secret":"whsec_'
secret2=$(jfield 'd["secret"]')
check "the rotated secret differs" [ "$secret1" != "$secret2" ]
expect "rotate of an unknown endpoint is 404" 404 POST "/postback-endpoints/9999/rotate-secret"

# Editor keys: each editor acts on its own endpoints only.
"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key >"$work/admin" 2>>"$work/create.log"
admin=$(tail -n 1 "$work/admin")
AFFILIATE_KEY=$admin "$BIN/affiliate" --url "$rpc_url" keys create --editor 3 >"$work/body"
key3=$(jfield 'd["token"]')
AFFILIATE_KEY=$admin "$BIN/affiliate" --url "$rpc_url" keys create --editor 2 >"$work/body"
key2=$(jfield 'd["token"]')
expect "an editor key lists its own endpoints" 200 GET /postback-endpoints "" "$key3" -- "\"id\":$pub_id"
check "... and no other editor's" bash -c "! grep -q '\"id\":$lo_id,' '$work/body'"
expect "an editor key cannot register for another editor" 403 POST /postback-endpoints \
	'{"editor_id":3,"url":"http://127.0.0.1:9/","events":'"$ev"'}' "$key2"
expect "another editor's endpoint is not found for an editor key" 404 \
	DELETE "/postback-endpoints/$pub_id" "" "$key2"
expect "another editor's log is not found for an editor key" 404 \
	GET "/postback-endpoints/$pub_id/attempts" "" "$key2"
expect "the owner deletes its endpoint" 200 DELETE "/postback-endpoints/$pub_id" "" "$key3" -- "\"id\":$pub_id"
expect "deleted: gone from the list" 200 GET /postback-endpoints "" "$key3"
check "... the list is empty" [ "$(cat "$work/body")" = "[]" ]
expect "deleting it again is 404" 404 DELETE "/postback-endpoints/$pub_id" "" "$key3"
expect "a wrong method on the collection is 405" 405 PUT /postback-endpoints

# The CLI, over RPC.
"$BIN/affiliate" --url "$rpc_url" postbacks create http://127.0.0.1:9/cli \
	order.created,order.status_changed --editor 2 >"$work/body" 2>"$work/err"
check "affiliate postbacks create prints the endpoint and its secret" \
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["secret"].startswith("whsec_") and d["endpoint"]["events"] == ["order.created","order.status_changed"] and d["endpoint"]["editor_id"] == 2' "$work/body"
cli_id=$(jfield 'd["endpoint"]["id"]')
"$BIN/affiliate" --url "$rpc_url" postbacks list --editor 2 >"$work/body"
check "affiliate postbacks list shows it" \
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [e["id"] for e in d["endpoints"]] == [int(sys.argv[2])]' "$work/body" "$cli_id"
"$BIN/affiliate" --url "$rpc_url" postbacks delete "$cli_id" >"$work/body"
check "affiliate postbacks delete exits 0" [ $? = 0 ]
"$BIN/affiliate" --url "$rpc_url" postbacks bogus >/dev/null 2>&1
check "an unknown postbacks command is a usage error (2)" [ $? = 2 ]

tap_done
