#!/usr/bin/env bash
# bench_earnings.sh - GET /reports/earnings at 1,000,000 orders (issue 18:
# a report must not read every order of its range): an editor's year by
# day, by advertiser and by status, the same at +02:00 (hourly buckets),
# and an admin's year over every editor; for each, its latency next to
# the aggregate rows it read (buckets_read) and the orders they count
# (orders_counted). Then the same sums the slow way, a GROUP BY over the
# orders in sqlite3, for scale.
#
# Usage: tests/bench/bench_earnings.sh BIN_DIR (`make bench-earnings`).
# EARNINGS_ROWS (default 1000000) orders, EARNINGS_SECONDS (default 2)
# how long each report is asked for, one request at a time (wrk -t1 -c1).
#
# The orders are loaded as bench_orders_scale.sh loads its own: the
# server makes the schema (its migrations, step 14's triggers with them)
# on an empty data folder and stops, then one INSERT ... SELECT in
# sqlite3 writes them, which fires the triggers for every row, so the
# aggregates are built as orders arriving one by one would build them.
# The orders arrive at random seconds of 2025; editor 1 holds about a
# tenth of them, spread over the 24 seeded advertisers in their own
# currencies; a fifth approved, a twentieth declined; one in a hundred
# with a commission a cent off the expected one.
set -u
. "$(dirname "$0")/../clean_env.sh"

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BIN_DIR (the build's bin folder)" >&2
	exit 2
fi
BIN=$(cd "$1" && pwd)
ROWS=${EARNINGS_ROWS:-1000000}
SECS=${EARNINGS_SECONDS:-2}
case $ROWS in '' | *[!0-9]*) echo "bench: EARNINGS_ROWS must be a whole number" >&2; exit 2 ;; esac
case $SECS in '' | *[!0-9]*) echo "bench: EARNINGS_SECONDS must be a whole number" >&2; exit 2 ;; esac
for t in wrk sqlite3 curl ss; do
	command -v "$t" >/dev/null || { echo "bench: $t not found" >&2; exit 2; }
done
for b in affiliate-server affiliate-bridge; do
	[ -x "$BIN/$b" ] || { echo "bench: $BIN/$b is missing; build first" >&2; exit 2; }
done

work=$(mktemp -d /tmp/affiliate-earnings-XXXXXX)
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

start_server
kill -TERM "$server_pid"
wait "$server_pid" 2>/dev/null
db=$(ls "$work"/data/*.db 2>/dev/null | head -n 1)
[ -n "$db" ] || die "the server made no database in $work/data"

echo "bench: loading $ROWS orders (the triggers building the aggregates) ..." >&2
t0=$(date +%s)
sqlite3 "$db" >/dev/null <<EOF || die "the bulk insert failed"
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $ROWS),
r(x, e, s, a, t) AS (SELECT x, abs(random()) % 100, abs(random()) % 100,
  abs(random()) % 24, abs(random()) % 31536000 FROM n)
INSERT INTO orders (seq, order_id, advertiser_id, editor_id, amount_cents,
  commission_cents, currency, status, created_at, updated_at, rev, cached_rev,
  expected_commission_cents)
SELECT x, 'earn-' || x, 1 + a, CASE WHEN e < 10 THEN 1 ELSE 2 + e % 5 END,
  1000 + x % 90000, ((1000 + x % 90000) * 500 + 5000) / 10000 + (x % 100 = 7),
  (SELECT currency FROM advertisers WHERE id = 1 + a),
  CASE WHEN s < 20 THEN 'approved' WHEN s < 25 THEN 'declined' ELSE 'pending' END,
  1735689600 + t, 1735689600 + t, 1, 1,
  ((1000 + x % 90000) * 500 + 5000) / 10000 FROM r;
COMMIT;
ANALYZE;
EOF
load_s=$(($(date +%s) - t0))
count=$(sqlite3 "$db" 'SELECT count(*) FROM orders') || die "cannot count the orders"
[ "$count" = "$ROWS" ] || die "the database holds $count orders, not $ROWS"
daily=$(sqlite3 "$db" 'SELECT count(*) FROM earnings_daily')
hourly=$(sqlite3 "$db" 'SELECT count(*) FROM earnings_hourly')

start_server
start bridge "$BIN/affiliate-bridge" --listen "127.0.0.1:$bridge_port" \
	--server "tcp://127.0.0.1:$rpc_port" --log-level info
wait_port bridge "$last_pid" "$bridge_port"

base="http://127.0.0.1:$bridge_port/reports/earnings?from=2025-01-01&to=2025-12-31"
targets=(
	"editor 1, by day|&editor_id=1&group_by=day"
	"editor 1, by advertiser|&editor_id=1&group_by=advertiser"
	"editor 1, by status|&editor_id=1&group_by=status"
	"editor 1, by day, +02:00|&editor_id=1&group_by=day&tz=%2B02:00"
	"editor 1 + advertiser 3, by day|&editor_id=1&advertiser_id=3&group_by=day"
	"all editors, by advertiser|&group_by=advertiser"
	"all editors, by day|&group_by=day"
)

rows=()
for t in "${targets[@]}"; do
	IFS='|' read -r name query <<<"$t"
	url="$base$query"
	body=$(curl -s --max-time 60 -w '\n%{http_code}' "$url")
	code=${body##*$'\n'}
	[ "$code" = 200 ] || die "GET $url answered $code: ${body%$'\n'*}"
	buckets=$(printf '%s' "$body" | grep -o '"buckets_read":[0-9]*' | cut -d: -f2)
	counted=$(printf '%s' "$body" | grep -o '"orders_counted":[0-9]*' | cut -d: -f2)
	groups=$(printf '%s' "$body" | grep -o '"currency"' | wc -l)
	echo "bench: $name ..." >&2
	out=$(wrk -t1 -c1 -d"${SECS}s" --latency "$url" 2>&1)
	rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
	p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
	p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
	[ -n "$p50" ] && [ -n "$p99" ] || { echo "$out" >&2; die "wrk gave no figures for $url"; }
	rows+=("$name|$rps|$(to_us "$p50")|$(to_us "$p99")|$groups|$buckets|$counted")
done
stop_all

# The slow way, for scale: the sums of editor 1's year by advertiser
# straight from the orders (its index on (editor_id, seq) finds them;
# each is read).
slow_ms=$(printf '%s\n' '.timer on' \
	"SELECT count(*) FROM (SELECT advertiser_id, currency, status, count(*),
	  sum(amount_cents), sum(commission_cents) FROM orders WHERE editor_id = 1
	  AND created_at >= 1735689600 AND created_at < 1767225600
	  GROUP BY 1, 2, 3);" | sqlite3 "$db" |
	awk '/^Run Time/ { printf "%d", $4 * 1000 + 0.5 }')

echo
printf 'GET /reports/earnings, 2025 (365 days), at %s orders (loaded with their triggers in %s s; %s daily and %s hourly buckets), SQLite, one request at a time, %s s each\n' \
	"$ROWS" "$load_s" "$daily" "$hourly" "$SECS"
printf '%-34s %9s %9s %9s %7s %13s %15s\n' "report" "reports/s" "p50 us" "p99 us" "groups" "buckets read" "orders counted"
for row in "${rows[@]}"; do
	IFS='|' read -r name rps p50 p99 groups buckets counted <<<"$row"
	printf '%-34s %9.0f %9d %9d %7d %13d %15d\n' "$name" "$rps" "$p50" "$p99" "$groups" "$buckets" "$counted"
done
printf 'the same sums of editor 1 by advertiser from the orders (sqlite3, GROUP BY): %s ms\n' "${slow_ms:-?}"
exit 0
