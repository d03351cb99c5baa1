#!/usr/bin/env bash
# metrics_test.sh - the bridge's GET /metrics (issue 16): after traffic
# through the whole stack (scripts/run.sh: server, bridge, worker, Redis on
# free ports), a live scrape passes `promtool check metrics`, counts exactly
# the requests made by route template and status (raw paths and unknown
# routes never become labels).
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
SRC=${AFFILIATE_SOURCE_DIR:?}
work=$(mktemp -d /tmp/affiliate-metrics-XXXXXX)
run_pid=
. "$(dirname "$0")/tap.sh"

cleanup() {
	[ -n "$run_pid" ] && kill -9 -- "-$run_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if ! command -v promtool >/dev/null; then
	echo "1..0 # SKIP promtool missing (scripts/deps.sh installs prometheus)"
	exit 0
fi

rpc_port=$(free_port)
http_port=$(free_port)
redis_port=$(free_port)
set -m
AFFILIATE_LISTEN="tcp://127.0.0.1:$rpc_port" \
	AFFILIATE_BRIDGE_LISTEN="127.0.0.1:$http_port" \
	AFFILIATE_REDIS_PORT="$redis_port" \
	AFFILIATE_DATA_DIR="$work/data" \
	AFFILIATE_WORKERS=1 \
	AFFILIATE_BRIDGE_HEADER_TIMEOUT_MS=300 \
	AFFILIATE_JOBS_URL="ipc://$work/jobs.sock" \
	AFFILIATE_RESULTS_URL="ipc://$work/results.sock" \
	bash "$SRC/scripts/run.sh" "$BIN" >"$work/run.log" 2>&1 &
run_pid=$!
set +m
# run.sh says "started" once the bridge's /readyz answers 200, so the
# first request below meets a serving server (it once met one still
# opening its database and counted a 503 among the 200s).
wait_for_seconds=30
check "the stack starts and is ready" wait_for "$work/run.log" "run: started"

base="http://127.0.0.1:$http_port"
for id in 2 2 2; do
	curl -s -o /dev/null "$base/advertisers/$id?editor_id=1"
done
curl -s -o /dev/null "$base/advertisers/999"
curl -s -o /dev/null "$base/no/such/route/$RANDOM"
curl -s -o /dev/null "$base/no/such/route/$RANDOM"
curl -s -o /dev/null -X DELETE "$base/orders"
# A client that sends half a request head and stops: the edge cuts it
# at the header deadline (300 ms here), and /metrics counts the cut.
exec 3<>"/dev/tcp/127.0.0.1/$http_port"
printf 'GET /advertisers HTTP/1.1\r\nHost: x\r\n' >&3
sleep 1
cat <&3 >"$work/cut" 2>/dev/null
exec 3<&-
# Two connections held open across the scrape (opened just before it:
# silent for 300 ms, they would be cut too). The listener accepts in
# order, so both are counted before the scrape's own.
exec 4<>"/dev/tcp/127.0.0.1/$http_port"
exec 5<>"/dev/tcp/127.0.0.1/$http_port"

code=$(curl -s -o "$work/m" -D "$work/h" -w '%{http_code}' "$base/metrics")
check "GET /metrics is 200" [ "$code" = 200 ]
check "in the text exposition format" grep -qi '^content-type: text/plain; version=0.0.4' "$work/h"
check "promtool check metrics passes on the live scrape" \
	bash -c "promtool check metrics <'$work/m' >'$work/promtool.out' 2>&1"
sed 's/^/# promtool: /' "$work/promtool.out"
grep "^affiliate_bridge" "$work/m" | grep -v _bucket | sed "s/^/# /"
check "exactly 3 GET /advertisers/{id} 200s" grep -qxF \
	'affiliate_bridge_http_requests_total{method="GET",route="/advertisers/{id}",code="200"} 3' "$work/m"
check "exactly 1 GET /advertisers/{id} 404" grep -qxF \
	'affiliate_bridge_http_requests_total{method="GET",route="/advertisers/{id}",code="404"} 1' "$work/m"
check "unknown paths share one series (2 404s)" grep -qxF \
	'affiliate_bridge_http_requests_total{method="",route="other",code="404"} 2' "$work/m"
check "a wrong method counts under the path's row, not a new label" grep -qxF \
	'affiliate_bridge_http_requests_total{method="",route="other",code="405"} 1' "$work/m"
check "no raw path became a label" bash -c "! grep -q 'no/such' '$work/m'"
check "the latency histogram counts the same 4 requests" grep -qxF \
	'affiliate_bridge_http_request_duration_seconds_count{method="GET",route="/advertisers/{id}"} 4' "$work/m"
check "its +Inf bucket too" grep -qxF \
	'affiliate_bridge_http_request_duration_seconds_bucket{method="GET",route="/advertisers/{id}",le="+Inf"} 4' "$work/m"
check "the slow header was answered 408" grep -q '^HTTP/1.1 408' "$work/cut"
check "the cut is counted by its reason" grep -qxF \
	'affiliate_bridge_slow_clients_cut_total{reason="header_deadline"} 1' "$work/m"
check "no other cut" grep -qxF \
	'affiliate_bridge_slow_clients_cut_total{reason="address_cap"} 0' "$work/m"
# The two held connections and the scrape's own.
check "open connections: the 2 held and the scrape's" grep -qxF \
	'affiliate_bridge_open_connections 3' "$work/m"
exec 4<&- 5<&-

# The second scrape sees the first one.
curl -s -o "$work/m2" "$base/metrics"
check "the scrape itself is counted" grep -qxF \
	'affiliate_bridge_http_requests_total{method="",route="/metrics",code="200"} 1' "$work/m2"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/metrics")
check "POST /metrics is 405" [ "$code" = 405 ]
tap_done
