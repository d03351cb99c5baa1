#!/usr/bin/env bash
# openapi_test.sh - the bridge's /openapi.json against its live answers:
# affiliate-server (an editor key, a low per-key rate limit, a known
# webhook secret) and affiliate-bridge on free loopback ports, then
# tests/openapi_check.py drives every route to its successes and errors
# and checks each answer (status declared, body matching the schema,
# headers declared) with python3-jsonschema.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-openapi-XXXXXX)
pids=()
. "$(dirname "$0")/tap.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

py=python3
$py -c 'import jsonschema' 2>/dev/null || py=/usr/bin/python3
if ! $py -c 'import jsonschema' 2>/dev/null; then
	not_ok "python3-jsonschema is installed (make deps-dev)"
	tap_done
	exit
fi

http_port=$(free_port)
rpc_url="ipc://$work/rpc.sock"
secret=openapi-test-secret
max_body=4096

"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key \
	>"$work/admin" 2>"$work/create.log" || { not_ok "admin key"; tap_done; exit; }
AFFILIATE_WEBHOOK_SECRET=$secret "$BIN/affiliate-server" --listen "$rpc_url" \
	--data-dir "$work/data" --redis off --rate-limit 0.1/4 \
	--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
	>"$work/server.log" 2>&1 &
server_pid=$!
pids+=($server_pid)
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" --server "$rpc_url" \
	--max-body "$max_body" >"$work/bridge.log" 2>&1 &
pids+=($!)
wait_for "$work/server.log" "server: ready" || exit 1
wait_for "$work/bridge.log" "bridge: listening" || exit 1

AFFILIATE_KEY=$(cat "$work/admin") "$BIN/affiliate" --url "$rpc_url" \
	keys create --editor 1 >"$work/key.json" 2>"$work/key.err"
editor_key=$(sed -n 's/^  "token": "\(aff_[^"]*\)",\{0,1\}$/\1/p' "$work/key.json")
if [ -z "$editor_key" ]; then
	not_ok "an editor key: $(cat "$work/key.json" "$work/key.err")"
	tap_done
	exit
fi

out=$($py "$(dirname "$0")/openapi_check.py" "http://127.0.0.1:$http_port" \
	"$editor_key" "$secret" "$server_pid" "$max_body" 2>&1)
rc=$?
echo "$out"
pass=$(grep -c '^ok - ' <<<"$out")
fail=$(grep -c '^not ok - ' <<<"$out")
[ "$rc" = 0 ] || [ "$fail" -gt 0 ] || not_ok "openapi_check.py exited $rc"
tap_done
