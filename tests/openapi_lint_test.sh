#!/usr/bin/env bash
# openapi_lint_test.sh - the bridge's /openapi.json passes `redocly lint`
# (Redocly CLI, its recommended rules) with no error and no warning. The
# CLI comes from the npm registry through npx, at a pinned version: 2.x
# where Node.js is new enough for it (>= 20.19), else the 1.34 line
# (Debian 12's Node.js 18). When Node.js or the package cannot be had
# (no npx, no network), the test is skipped (exit 77) and says why.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-oalint-XXXXXX)
pids=()
. "$(dirname "$0")/tap.sh"
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
skip() { echo "SKIP: $1"; exit 77; }

command -v npx >/dev/null && command -v node >/dev/null ||
	skip "no node/npx (make deps-dev installs them)"
node_v=$(node -p 'process.versions.node')
IFS=. read -r major minor _ <<<"$node_v"
if [ "$major" -ge 22 ] || { [ "$major" = 20 ] && [ "$minor" -ge 19 ]; }; then
	redocly=@redocly/cli@2.77.0
else
	redocly=@redocly/cli@1.34.21
fi
http_port=$(free_port)
# The bridge serves the document without a server behind it.
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" \
	--server "ipc://$work/none.sock" >"$work/bridge.log" 2>&1 &
pids+=($!)
wait_for "$work/bridge.log" "bridge: listening" || exit 1
curl -sf -o "$work/openapi.json" "http://127.0.0.1:$http_port/openapi.json"
check "GET /openapi.json" [ -s "$work/openapi.json" ]
# Fetched once into npm's cache; later runs take it from there. A run
# that never got to validate could not fetch or start the CLI: skipped.
(cd "$work" && timeout 240 npx -y "$redocly" lint openapi.json) >"$work/lint.log" 2>&1
rc=$?
grep -q 'validating openapi.json' "$work/lint.log" ||
	skip "npx cannot fetch or run $redocly (node $node_v): $(tail -3 "$work/lint.log" | tr '\n' ' ')"
grep -E 'validated|valid|error|warning' "$work/lint.log" | grep -v 'Deprecation warning' | sed 's/^/# /'
check "redocly lint ($redocly) exits 0" [ "$rc" = 0 ]
check "and reports no warning" bash -c "! grep -qE 'You have [0-9]+ warning' '$work/lint.log'"
[ "$fail" = 0 ] || cat "$work/lint.log"
tap_done
