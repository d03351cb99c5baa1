#!/usr/bin/env bash
# bench_orders_scale.sh - a page of GET /orders with each filter
# combination against an unfiltered page, at 1,000,000 orders (issue 15:
# a filter's page must cost O(page), within 3x of an unfiltered one).
#
# Usage: tests/bench/bench_orders_scale.sh BIN_DIR (`make bench-orders`;
# `make bench` runs it last). ORDERS_SCALE_ROWS (default 1000000) is the
# number of orders; ORDERS_SCALE_SECONDS (default 2) how long each page is
# asked for, one request at a time (wrk -t1 -c1), so its latencies are the
# page's own and not a queue's.
#
# The orders are written straight into the database with one INSERT ...
# SELECT in sqlite3, after the server has made the schema (its own
# migrations) on an empty data folder and stopped: tens of seconds, where
# a million signed webhooks would take many minutes. Editor 1 holds about
# a tenth of them, 'approved' about a fifth, 'declined' a twentieth; each
# editor and status drawn with random(), so the filters do not correlate.
# Each order's commission is what a 5 % rate gives (its
# expected_commission, as loaded), but for one order in a hundred, a
# cent more:
# the ?commission_mismatch=true pages (issue 18) read those through their
# partial indexes.
# created_at is in seconds, as the store writes it (one order a second
# from 2025-12-01: the earnings triggers of schema step 14 sum it by its
# UTC day, hour and month). The rows are marked as already copied, and the server runs with
# --redis off: every list page here is answered by the database, which is
# what answers every combination of two or three filters (Redis serves a
# page only when one sorted set seeks it). The log level is info, the
# make run default.
set -u
. "$(dirname "$0")/../clean_env.sh"

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BIN_DIR (the build's bin folder)" >&2
	exit 2
fi
BIN=$(cd "$1" && pwd)
ROWS=${ORDERS_SCALE_ROWS:-1000000}
SECS=${ORDERS_SCALE_SECONDS:-2}
case $ROWS in '' | *[!0-9]*) echo "bench: ORDERS_SCALE_ROWS must be a whole number" >&2; exit 2 ;; esac
case $SECS in '' | *[!0-9]*) echo "bench: ORDERS_SCALE_SECONDS must be a whole number" >&2; exit 2 ;; esac
for t in wrk sqlite3 curl ss; do
	command -v "$t" >/dev/null || { echo "bench: $t not found" >&2; exit 2; }
done
for b in affiliate-server affiliate-bridge; do
	[ -x "$BIN/$b" ] || { echo "bench: $BIN/$b is missing; build first" >&2; exit 2; }
done

work=$(mktemp -d /tmp/affiliate-orders-scale-XXXXXX)
. "$(dirname "$0")/common.sh"

rpc_port=$(free_port) || die "no free port"
bridge_port=$(free_port) || die "no free port"

start_server() {
	start server "$BIN/affiliate-server" --listen "tcp://127.0.0.1:$rpc_port" \
		--data-dir "$work/data" --redis off \
		--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
		--log-level info
	server_pid=$last_pid
	wait_port server "$server_pid" "$rpc_port"
}

# The schema, by the server's own migrations.
start_server
kill -TERM "$server_pid"
wait "$server_pid" 2>/dev/null
db=$(ls "$work"/data/*.db 2>/dev/null | head -n 1)
[ -n "$db" ] || die "the server made no database in $work/data"

echo "bench: loading $ROWS orders ..." >&2
t0=$(date +%s)
sqlite3 "$db" >/dev/null <<EOF || die "the bulk insert failed"
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $ROWS),
r(x, e, s, a) AS (SELECT x, abs(random()) % 100, abs(random()) % 100,
  abs(random()) % 50 FROM n)
INSERT INTO orders (seq, order_id, advertiser_id, editor_id, amount_cents,
  commission_cents, currency, status, created_at, updated_at, rev, cached_rev,
  expected_commission_cents)
SELECT x, 'scale-' || x, 1 + a, CASE WHEN e < 10 THEN 1 ELSE 2 + e % 9 END,
  1000 + x % 90000, ((1000 + x % 90000) * 500 + 5000) / 10000 + (x % 100 = 7),
  'EUR',
  CASE WHEN s < 20 THEN 'approved' WHEN s < 25 THEN 'declined' ELSE 'pending' END,
  1764547200 + x, 1764547200 + x, 1, 1,
  ((1000 + x % 90000) * 500 + 5000) / 10000 FROM r;
COMMIT;
ANALYZE;
EOF
load_s=$(($(date +%s) - t0))
count=$(sqlite3 "$db" 'SELECT count(*) FROM orders') || die "cannot count the orders"
[ "$count" = "$ROWS" ] || die "the database holds $count orders, not $ROWS"

start_server
start bridge "$BIN/affiliate-bridge" --listen "127.0.0.1:$bridge_port" \
	--server "tcp://127.0.0.1:$rpc_port" --log-level info
wait_port bridge "$last_pid" "$bridge_port"

# A cursor half-way down, to show a deep page costs what the first does.
mid=$((ROWS / 2))
base="http://127.0.0.1:$bridge_port/orders?limit=10"
targets=(
	"none||"
	"editor|&editor_id=1|"
	"advertiser|&advertiser_id=7|"
	"status (declined)|&status=declined|"
	"editor+status|&editor_id=1&status=declined|"
	"advertiser+status|&advertiser_id=7&status=approved|"
	"editor+advertiser|&editor_id=1&advertiser_id=7|"
	"editor+advertiser+status|&editor_id=1&advertiser_id=7&status=declined|"
	"editor+status, deep cursor|&editor_id=1&status=declined&after=$mid|"
	"none, deep cursor|&after=$mid|"
	"mismatch|&commission_mismatch=true|"
	"editor+mismatch|&editor_id=1&commission_mismatch=true|"
	"editor+status+mismatch|&editor_id=1&status=declined&commission_mismatch=true|"
)

rows=()
for t in "${targets[@]}"; do
	IFS='|' read -r name query _ <<<"$t"
	url="$base$query"
	body=$(curl -s --max-time 30 -w '\n%{http_code}' "$url")
	code=${body##*$'\n'}
	items=$(printf '%s' "${body%$'\n'*}" | grep -o '"order_id"' | wc -l)
	[ "$code" = 200 ] || die "GET $url answered $code"
	[ "$items" = 10 ] || die "GET $url gave $items orders, not a full page of 10"
	echo "bench: $name ..." >&2
	out=$(wrk -t1 -c1 -d"${SECS}s" --latency "$url" 2>&1)
	rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
	p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
	p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
	[ -n "$p50" ] && [ -n "$p99" ] || { echo "$out" >&2; die "wrk gave no figures for $url"; }
	rows+=("$name|$rps|$(to_us "$p50")|$(to_us "$p99")")
done

echo
printf 'GET /orders?limit=10 at %s orders (loaded in %s s), SQLite, --redis off, one request at a time, %s s each\n' \
	"$ROWS" "$load_s" "$SECS"
printf '%-32s %10s %9s %9s %10s\n' "filter" "pages/s" "p50 us" "p99 us" "p50 vs none"
first_p50=
for row in "${rows[@]}"; do
	IFS='|' read -r name rps p50 p99 <<<"$row"
	: "${first_p50:=$p50}"
	ratio=$(awk -v a="$p50" -v b="$first_p50" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	printf '%-32s %10.0f %9d %9d %10s\n' "$name" "$rps" "$p50" "$p99" "$ratio"
done
exit 0
