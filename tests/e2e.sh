#!/usr/bin/env bash
# e2e.sh - a user's curl session over every REST endpoint, against the real
# processes: redis-server, affiliate-server, affiliate-bridge and an
# affiliate-worker on free loopback ports. Then the server is killed (503) and restarted (200 again,
# with no bridge restart), and the bridge, worker and server are stopped with
# SIGTERM and must exit 0.
# E2E_TIMEOUT_SCALE (1) multiplies every wait: tests/valgrind.sh runs this
# session with the binaries under valgrind, many times slower, and with
# E2E_BRIDGE_THREADS (the bridge's default when unset) lower.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
scale=${E2E_TIMEOUT_SCALE:-1}
work=$(mktemp -d /tmp/affiliate-e2e-XXXXXX)
pids=()
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	backend_stop # before wait: PostgreSQL is a child too
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
# The servers' store: AFFILIATE_TEST_BACKEND (tests/backend.sh).
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }

wait_for_seconds=$((5 * scale)) # wait_for (tap.sh): 5 s times the scale

redis_port=$(free_port)
http_port=$(free_port)
rpc_url="ipc://$work/rpc.sock"
jobs_url="ipc://$work/jobs.sock"
results_url="ipc://$work/results.sock"
B="http://127.0.0.1:$http_port"

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
	--loglevel warning >"$work/redis.log" 2>&1 &
pids+=($!)
start_server() {
	"$BIN/affiliate-server" --listen "$rpc_url" \
		--data-dir "$work/data" --redis "127.0.0.1:$redis_port" \
		--jobs "$jobs_url" --results "$results_url" \
		>>"$work/server.log" 2>&1 &
	server_pid=$!
	pids+=($server_pid)
}
start_server
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" \
	${E2E_BRIDGE_THREADS:+--threads "$E2E_BRIDGE_THREADS"} \
	--server "$rpc_url" >"$work/bridge.log" 2>&1 &
bridge_pid=$!
pids+=($bridge_pid)
"$BIN/affiliate-worker" --jobs "$jobs_url" --results "$results_url" \
	--data-dir "$work/data" --review-delay 10 >"$work/worker.log" 2>&1 &
worker_pid=$!
pids+=($worker_pid)
wait_for "$work/server.log" "server: ready" || exit 1
wait_for "$work/bridge.log" "bridge: listening" || exit 1

# expect NAME STATUS METHOD PATH [BODY] [GREP...]: the status, then each
# pattern in the headers+body.
expect() {
	local name=$1 want=$2 method=$3 path=$4 body=${5-}
	shift 4
	[ $# -gt 0 ] && shift
	local args=(-s -o "$work/body" -D "$work/head" -w '%{http_code}' -X "$method")
	[ -n "$body" ] && args+=(--data-binary "$body")
	local got
	got=$(curl "${args[@]}" -H 'X-Request-Id: e2e-'"$pass" "$B$path")
	if [ "$got" != "$want" ]; then
		not_ok "$name: $method $path → $got, wanted $want: $(cat "$work/body")"
		return
	fi
	for pat in "$@"; do
		if ! grep -q -- "$pat" "$work/head" "$work/body"; then
			not_ok "$name: '$pat' not in: $(cat "$work/head" "$work/body")"
			return
		fi
	done
	ok "$name"
}

expect "health" 200 GET / "" '{"status":"ok"}'
expect "advertisers for editor 1" 200 GET "/advertisers?editor_id=1" "" \
	'^\[{"id":2,"name":"Alpine Gear Co"' 'Content-Type: application/json'
n=$(grep -o '"id":' "$work/body" | wc -l)
[ "$n" = 16 ] && ok "editor 1 may join 16 advertisers" || not_ok "editor 1 sees $n advertisers, not 16"
expect "all advertisers, first page of 10" 200 GET "/advertisers?limit=10" "" \
	'Link: </advertisers?limit=10&after=10>; rel="next"'
expect "one advertiser" 200 GET "/advertisers/2?editor_id=1" "" \
	'"commission_rate_bps":650' '"currency":"CHF"'
expect "not eligible" 403 GET "/advertisers/1?editor_id=1" "" '"code":"PERMISSION_DENIED"'
expect "unknown advertiser" 404 GET /advertisers/999 "" '"code":"NOT_FOUND"'
expect "unknown editor" 404 GET "/advertisers?editor_id=42" "" '"message":"no editor with id 42"'
expect "malformed id" 400 GET /advertisers/abc "" '"code":"INVALID_ARGUMENT"'
expect "negative editor" 400 GET "/advertisers?editor_id=-1" "" '"code":"INVALID_ARGUMENT"'
expect "malformed body" 400 POST /applications '{"advertiser_id":' '"code":"INVALID_ARGUMENT"'
expect "wrong type" 400 POST /applications '{"advertiser_id":"2","editor_id":1}' \
	'advertiser_id must be an integer'
expect "apply" 202 POST /applications '{"advertiser_id":2,"editor_id":1}' \
	'"status":"pending"' '"editor_id":1'
expect "apply again: conflict with the details" 409 POST /applications \
	'{"advertiser_id":2,"editor_id":1}' '"code":"ALREADY_EXISTS"' '"details":{"id":1'
expect "apply, not eligible" 403 POST /applications '{"advertiser_id":1,"editor_id":1}' \
	'"code":"PERMISSION_DENIED"'
# The worker reviews it in the background: approved within a second.
for _ in $(seq 1 $((40 * scale))); do
	curl -s "$B/applications/1" | grep -q '"status":"approved"' && break
	sleep 0.05
done
expect "the application is approved by a worker" 200 GET /applications/1 "" '"status":"approved"'
expect "applications list" 200 GET "/applications?editor_id=1&status=approved" "" '^\[{"id":1,'
# A partner's signed order: stored once, exact to the cent.
order='{"order_id":"A-1","advertiser_id":2,"user_id":1,"amount":49.9,"commission":4.99}'
printf '%s' "$order" >"$work/order.json"
sig=$(AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign --plain "$work/order.json")
expect_signed() { # expect_signed NAME STATUS SIGNATURE PATTERN...
	local name=$1 want=$2 s=$3
	shift 3
	local got
	got=$(curl -s -o "$work/body" -D "$work/head" -w '%{http_code}' -X POST \
		-H "X-Partner-Signature: $s" --data-binary @"$work/order.json" "$B/webhook/orders")
	if [ "$got" != "$want" ]; then
		not_ok "$name: $got, wanted $want: $(cat "$work/body")"
		return
	fi
	for pat in "$@"; do
		grep -q -- "$pat" "$work/body" || { not_ok "$name: '$pat' not in $(cat "$work/body")"; return; }
	done
	ok "$name"
}
expect_signed "webhook: a new order" 201 "$sig" '"amount":49.90' '"commission":4.99' '"status":"pending"'
expect_signed "webhook: the same order again" 200 "$sig" '"order_id":"A-1"'
tsig=$(AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign "$work/order.json")
expect_signed "webhook: the timestamped signature" 200 "$tsig" '"order_id":"A-1"'
expect_signed "webhook: a wrong signature" 401 "$(printf '%064d' 0)" '"code":"UNAUTHENTICATED"'
expect "webhook: no signature" 401 POST /webhook/orders "$order" '"code":"UNAUTHENTICATED"'
expect "orders" 200 GET /orders "" '^\[{"order_id":"A-1","advertiser_id":2,"editor_id":1,"amount":49.90'
expect "unknown route" 404 GET /nope "" '"code":"NOT_FOUND"'
expect "wrong method" 405 DELETE /advertisers "" 'Allow: GET' '"code":"UNIMPLEMENTED"'
head -c 2000000 /dev/zero | tr '\0' x >"$work/big"
expect "body over the cap" 413 POST /webhook/orders "@$work/big" '"code":"RESOURCE_EXHAUSTED"'
expect "OpenAPI description" 200 GET /openapi.json "" '"openapi": "3.0.3"' '"/advertisers/{id}"'

# The request id travels: response header, bridge log, server log.
curl -s -o /dev/null -D "$work/head" -H 'X-Request-Id: trace-me-123' "$B/advertisers/3"
grep -q "X-Request-Id: trace-me-123" "$work/head" && ok "request id echoed" || not_ok "request id echoed"
grep -q "req=trace-me-123 http GET /advertisers/3 200" "$work/bridge.log" &&
	ok "bridge access log line" || not_ok "bridge access log line"
grep -q "req=trace-me-123 rpc affiliate.v1.AdvertiserService/GetAdvertiser OK" "$work/server.log" &&
	ok "server log line with the same id" || not_ok "server log line with the same id"

# The server dies: 503 with Retry-After; it returns: 200, bridge untouched.
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null
expect "server down" 503 GET /advertisers/2 "" 'Retry-After: 1' '"code":"UNAVAILABLE"'
expect "health with the server down" 503 GET / "" '"code":"UNAVAILABLE"'
start_server
wait_for "$work/server.log" "ready (pid $server_pid)" || true
for _ in $(seq 1 $((100 * scale))); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$B/advertisers/2")" = 200 ] && break
	sleep 0.05
done
expect "server back, no bridge restart" 200 GET /advertisers/2 "" '"name":"Alpine Gear Co"'

# A clean stop: SIGTERM, and exit 0 within 10 s (times the scale; valgrind's
# leak check runs then, and its --error-exitcode turns a report into a
# failure here).
stop() { # stop NAME PID
	kill -TERM "$2"
	for _ in $(seq 1 $((200 * scale))); do
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$2" 2>/dev/null; then
		kill -9 "$2"
		wait "$2" 2>/dev/null
		not_ok "$1 stops on SIGTERM: still running after $((10 * scale)) s"
		return
	fi
	wait "$2"
	local rc=$?
	[ "$rc" = 0 ] && ok "$1 stops on SIGTERM with exit 0" ||
		not_ok "$1 stops on SIGTERM with exit $rc, wanted 0: $(tail -3 "$work/$1.log")"
}
stop bridge "$bridge_pid"
stop worker "$worker_pid"
stop server "$server_pid"

tap_done
