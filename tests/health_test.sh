#!/usr/bin/env bash
# health_test.sh - the bridge's probes over the real processes (redis-server,
# affiliate-server, affiliate-bridge on free loopback ports): /livez is 200
# whatever the server does; /readyz is 200 while the server, its store and
# Redis serve, 503 {"status":"not ready","reason":…} naming Redis when Redis
# stops, the server when it stops, and 200 again when it returns (no bridge
# restart). 200 probes leave no info line in the bridge's log.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-health-XXXXXX)
pids=()
. "$(dirname "$0")/tap.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT


redis_port=$(free_port)
http_port=$(free_port)
rpc_url="ipc://$work/rpc.sock"
B="http://127.0.0.1:$http_port"

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
	--loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=($redis_pid)
start_server() {
	"$BIN/affiliate-server" --listen "$rpc_url" \
		--data-dir "$work/data" --redis "127.0.0.1:$redis_port" \
		--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
		>>"$work/server.log" 2>&1 &
	server_pid=$!
	pids+=($server_pid)
}
start_server
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" \
	--server "$rpc_url" >"$work/bridge.log" 2>&1 &
pids+=($!)
wait_for "$work/server.log" "server: ready" || exit 1
wait_for "$work/bridge.log" "bridge: listening" || exit 1

# expect NAME STATUS PATH BODY: the exact status and body.
expect() {
	local got body
	got=$(curl -s -o "$work/body" -w '%{http_code}' "$B$3")
	body=$(cat "$work/body")
	if [ "$got" = "$2" ] && [ "$body" = "$4" ]; then
		ok "$1"
	else
		not_ok "$1: GET $3 → $got $body, wanted $2 $4"
	fi
}
# until_status PATH STATUS: up to 5 s for PATH to answer STATUS.
until_status() {
	for _ in $(seq 1 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$B$1")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

expect "live" 200 /livez '{"status":"ok"}'
until_status /readyz 200
expect "ready: server, store and redis serve" 200 /readyz '{"status":"ok"}'
expect "GET / as the seed had it" 200 / '{"status":"ok"}'
grep -q 'GET /livez\|GET /readyz' "$work/bridge.log" &&
	not_ok "probes logged at info" || ok "probes not logged at info"
check "POST /readyz is 405" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$B/readyz")" = 405

kill -9 "$redis_pid"
wait "$redis_pid" 2>/dev/null
# No read meanwhile: Health.Check PINGs a connection silent for a second,
# so the probe alone sees the outage (before, only the next read did).
# Each handler thread has its own connection: after a second every one
# is silent, whichever answers the probe.
sleep 1.2
for _ in $(seq 1 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$B/readyz")" = 503 ] && break
	sleep 0.05
done
expect "redis down: not ready" 503 /readyz '{"status":"not ready","reason":"redis not serving"}'
expect "redis down: still live" 200 /livez '{"status":"ok"}'

kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null
expect "server down: not ready" 503 /readyz '{"status":"not ready","reason":"server unreachable"}'
check "server down: Retry-After" grep -qi '^Retry-After: 1' <(curl -s -D - -o /dev/null "$B/readyz")
expect "server down: still live" 200 /livez '{"status":"ok"}'
grep -q 'GET /readyz 503' "$work/bridge.log" &&
	ok "a failing probe is logged" || not_ok "a failing probe is logged"

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
	--loglevel warning >>"$work/redis.log" 2>&1 &
pids+=($!)
start_server
until_status /readyz 200
expect "server back: ready, no bridge restart" 200 /readyz '{"status":"ok"}'
tap_done
