#!/usr/bin/env bash
# metrics_test.sh - GET /metrics (issue 16): after traffic through the
# whole stack (scripts/run.sh: server, bridge, worker, Redis on free
# ports), including an application the worker approves and signed webhook
# orders, a live scrape passes `promtool check metrics` and counts exactly
# the bridge's requests by route template and status (raw paths and
# unknown routes never become labels), its open connections and slow
# clients cut, the server's RPCs, orders stored and group commits, and the
# pipeline's jobs; the worker's --metrics-listen passes promtool too. A
# bridge over two servers, one down, labels each server's samples and
# still answers; one whose only server is down answers
# affiliate_server_up 0.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
SRC=${AFFILIATE_SOURCE_DIR:?}
work=$(mktemp -d /tmp/affiliate-metrics-XXXXXX)
run_pid=
bridge_pids=
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

cleanup() {
	[ -n "$run_pid" ] && kill -9 -- "-$run_pid" 2>/dev/null
	for p in $bridge_pids; do kill -9 "$p" 2>/dev/null; done
	backend_stop
	rm -rf "$work"
}
trap cleanup EXIT

if ! command -v promtool >/dev/null; then
	echo "1..0 # SKIP promtool missing (scripts/deps.sh installs prometheus)"
	exit 0
fi

# The server's store: AFFILIATE_TEST_BACKEND (tests/backend.sh); on
# PostgreSQL the outbox counts come from store_pg_jobs.c's query.
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }

rpc_port=$(free_port)
http_port=$(free_port)
redis_port=$(free_port)
worker_port=$(free_port)
set -m
# The bridge's read cache off: the server counts every read below (with it
# on, repeated public reads never reach the server, and its poll adds
# ListAdvertisers calls).
AFFILIATE_LISTEN="tcp://127.0.0.1:$rpc_port" \
	AFFILIATE_BRIDGE_LISTEN="127.0.0.1:$http_port" \
	AFFILIATE_REDIS_PORT="$redis_port" \
	AFFILIATE_DATA_DIR="$work/data" \
	AFFILIATE_WORKERS=1 \
	AFFILIATE_READ_CACHE=off \
	AFFILIATE_BRIDGE_HEADER_TIMEOUT_MS=300 \
	AFFILIATE_WORKER_METRICS_LISTEN="127.0.0.1:$worker_port" \
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
# An application the worker decides, and two signed orders, one of them
# sent twice (stored once).
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
	-d '{"advertiser_id":2,"editor_id":1}' "$base/applications")
check "an application is accepted (202)" [ "$code" = 202 ]
for _ in $(seq 1 100); do
	curl -s "$base/applications/1" | grep -q '"status":"approved"' && break
	sleep 0.05
done
check "the worker approves it" bash -c \
	"curl -s '$base/applications/1' | grep -q '\"status\":\"approved\"'"
post_order() { # post_order ORDER_ID: prints the status
	printf '{"order_id":"%s","advertiser_id":2,"user_id":1,"amount":49.9,"commission":4.99}' \
		"$1" >"$work/order.json"
	sig=$(AFFILIATE_DATA_DIR="$work/data" "$BIN/affiliate" webhook sign --plain "$work/order.json")
	curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Partner-Signature: $sig" \
		--data-binary @"$work/order.json" "$base/webhook/orders"
}
check "order M-1 is stored (201)" [ "$(post_order M-1)" = 201 ]
check "order M-2 is stored (201)" [ "$(post_order M-2)" = 201 ]
check "order M-1 again is a duplicate (200)" [ "$(post_order M-1)" = 200 ]
# A client that sends half a request head and stops: the edge cuts it
# at the header deadline (300 ms here), and /metrics counts the cut.
exec 3<>"/dev/tcp/127.0.0.1/$http_port"
printf 'GET /advertisers HTTP/1.1\r\nHost: x\r\n' >&3
sleep 1
cat <&3 >"$work/cut" 2>/dev/null
exec 3<&-
# Two connections held open across the scrape: each has had a request
# answered and waits idle for its next (kept alive 5 s), where no header
# deadline runs, however slow this host is.
for fd in 4 5; do
	eval "exec $fd<>/dev/tcp/127.0.0.1/$http_port"
	printf 'GET /livez HTTP/1.1\r\nHost: x\r\n\r\n' >&"$fd"
	read -r -t 5 line <&"$fd"
	check "held connection $fd: its request answered 200" \
		[ "${line%$'\r'}" = "HTTP/1.1 200 OK" ]
done

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
grep '^affiliate_\(server\|jobs\)' "$work/m" | grep -v _bucket | sed 's/^/# /'
for want in \
	'affiliate_server_up 1' \
	'affiliate_server_orders_stored_total 2' \
	'affiliate_server_orders_duplicate_total 1' \
	'affiliate_server_order_batch_size_count 3' \
	'affiliate_server_order_commit_duration_seconds_count 3' \
	'affiliate_server_rpc_requests_total{service="affiliate.v1.OrderService",method="ReceiveWebhook",code="OK"} 3' \
	'affiliate_server_rpc_requests_total{service="affiliate.v1.ApplicationService",method="Apply",code="OK"} 1' \
	'affiliate_server_rpc_requests_total{service="affiliate.v1.AdvertiserService",method="GetAdvertiser",code="NOT_FOUND"} 1' \
	'affiliate_server_rpc_duration_seconds_count{service="affiliate.v1.OrderService",method="ReceiveWebhook"} 3' \
	'affiliate_server_redis_up 1' \
	'affiliate_server_rate_limit_refusals_total{limit="address"} 0' \
	'affiliate_jobs{state="queued"} 0' \
	'affiliate_jobs{state="inflight"} 0' \
	'affiliate_jobs{state="dead"} 0' \
	'affiliate_jobs_connected_workers 1' \
	'affiliate_jobs_deliveries_total 1' \
	'affiliate_jobs_retries_total 0' \
	'affiliate_jobs_results_total{outcome="done"} 1'; do
	check "exactly: $want" grep -qxF "$want" "$work/m"
done
check "each family once (one TYPE line per name)" bash -c \
	"[ -z \"\$(grep '^# TYPE' '$work/m' | awk '{print \$3}' | sort | uniq -d)\" ]"

check "the slow header was answered 408" grep -q '^HTTP/1.1 408' "$work/cut"
check "the cut is counted by its reason" grep -qxF \
	'affiliate_bridge_slow_clients_cut_total{reason="header_deadline"} 1' "$work/m"
check "no other cut" grep -qxF \
	'affiliate_bridge_slow_clients_cut_total{reason="address_cap"} 0' "$work/m"
# The two held connections and the scrape's own.
check "open connections: the 2 held and the scrape's" grep -qxF \
	'affiliate_bridge_open_connections 3' "$work/m"
exec 4<&- 5<&-

# An unknown advertiser twice: the second answer comes from the reply
# cache, and still counts as NOT_FOUND (its cached code), not OK.
curl -s -o /dev/null "$base/advertisers/998"
curl -s -o /dev/null "$base/advertisers/998"
# The second scrape sees the first one.
curl -s -o "$work/m2" "$base/metrics"
check "a cached NOT_FOUND counts as NOT_FOUND (1 + 2)" grep -qxF \
	'affiliate_server_rpc_requests_total{service="affiliate.v1.AdvertiserService",method="GetAdvertiser",code="NOT_FOUND"} 3' "$work/m2"
check "GetAdvertiser OK stays 3" grep -qxF \
	'affiliate_server_rpc_requests_total{service="affiliate.v1.AdvertiserService",method="GetAdvertiser",code="OK"} 3' "$work/m2"
check "the scrape itself is counted" grep -qxF \
	'affiliate_bridge_http_requests_total{method="",route="/metrics",code="200"} 1' "$work/m2"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/metrics")
check "POST /metrics is 405" [ "$code" = 405 ]

# The worker's own endpoint (--metrics-listen).
code=$(curl -s -o "$work/w" -D "$work/wh" -w '%{http_code}' "http://127.0.0.1:$worker_port/metrics")
check "the worker's GET /metrics is 200" [ "$code" = 200 ]
check "in the text exposition format" grep -qi '^content-type: text/plain; version=0.0.4' "$work/wh"
check "promtool check metrics passes on the worker's scrape" \
	bash -c "promtool check metrics <'$work/w' >'$work/promtool.w' 2>&1"
sed 's/^/# promtool: /' "$work/promtool.w"
grep '^affiliate_worker' "$work/w" | grep -v _bucket | sed 's/^/# /'
check "the worker handled exactly 1 review, ok" grep -qxF \
	'affiliate_worker_jobs_total{kind="review_application",outcome="ok"} 1' "$work/w"
check "and timed it" grep -qxF \
	'affiliate_worker_job_duration_seconds_count{kind="review_application"} 1' "$work/w"
check "nothing running now" grep -qxF 'affiliate_worker_jobs_in_progress 0' "$work/w"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$worker_port/other")
check "another path on the worker's port is 404" [ "$code" = 404 ]

# A bridge over two servers, the second down: each server's samples carry
# server="<URL>", the one down is affiliate_server_up 0, and the scrape
# is still whole and valid.
start_bridge() { # start_bridge PORT SERVERS LOG
	"$BIN/affiliate-bridge" --listen "127.0.0.1:$1" --server "$2" --threads 8 \
		>"$3" 2>&1 &
	bridge_pids="$bridge_pids $!"
	wait_for "$3" "bridge: listening"
}
live="tcp://127.0.0.1:$rpc_port"
dead="tcp://127.0.0.1:$(free_port)"
b2_port=$(free_port)
check "a bridge over a live and a dead server starts" \
	start_bridge "$b2_port" "$live,$dead" "$work/b2.log"
code=$(curl -s -o "$work/m3" -w '%{http_code}' "http://127.0.0.1:$b2_port/metrics")
check "its GET /metrics is 200" [ "$code" = 200 ]
check "promtool passes on the two servers' scrape" \
	bash -c "promtool check metrics <'$work/m3' >'$work/promtool.3' 2>&1"
sed 's/^/# promtool: /' "$work/promtool.3"
grep '^affiliate_server_\(up\|orders_stored\)' "$work/m3" | sed 's/^/# /'
check "the live server is up, by its URL" grep -qxF \
	"affiliate_server_up{server=\"$live\"} 1" "$work/m3"
check "the dead one is down, by its URL" grep -qxF \
	"affiliate_server_up{server=\"$dead\"} 0" "$work/m3"
check "the live server's samples carry its URL" grep -qxF \
	"affiliate_server_orders_stored_total{server=\"$live\"} 2" "$work/m3"
check "labels before the others'" grep -qF \
	"affiliate_jobs{server=\"$live\",state=\"queued\"} 0" "$work/m3"
check "the bridge's own families are there" grep -qxF \
	'affiliate_bridge_open_connections 1' "$work/m3"

b3_port=$(free_port)
check "a bridge whose only server is down starts" \
	start_bridge "$b3_port" "$dead" "$work/b3.log"
code=$(curl -s -o "$work/m4" -w '%{http_code}' "http://127.0.0.1:$b3_port/metrics")
check "its GET /metrics is still 200" [ "$code" = 200 ]
check "with affiliate_server_up 0" grep -qxF 'affiliate_server_up 0' "$work/m4"
check "and no server family" bash -c "! grep -q '^affiliate_server_rpc' '$work/m4'"
check "promtool passes on it" bash -c "promtool check metrics <'$work/m4' >/dev/null 2>&1"
tap_done
