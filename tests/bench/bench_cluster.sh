#!/usr/bin/env bash
# bench_cluster.sh - the store backends side by side, in one run: durable
# webhook orders/s and cached reads/s through the bridge with SQLite (one
# server), with PostgreSQL and one server, and with PostgreSQL and two
# servers (one bridge with both URLs, --shared-db, as `make run-cluster`),
# next to the bare civetweb handler (the HTTP limit) measured in the same
# run.
#
# Usage: tests/bench/bench_cluster.sh BIN_DIR   (make bench-cluster)
#   BIN_DIR holds affiliate-server, affiliate-bridge, bench-bare-civetweb
#   and bench-sign-orders. BENCH_SECONDS (default 10) is the length of each
#   measurement, each warmed up for 1 s first: 8 measurements, about
#   10 x BENCH_SECONDS + 30 s in all. BENCH_RATE (default 40000) is the
#   orders per second the signed lines are made for (see
#   bench_webhooks.sh). BENCH_KEEP=1 keeps the logs and wrk outputs.
#
# Every process takes its default settings, as `make run` and `make
# run-cluster` give them (--log-level info; BENCH_LOG_LEVEL picks another),
# but the addresses: redis-server (no persistence), a real PostgreSQL
# (tests/pg.sh: fsync and synchronous_commit on, a new database per
# configuration), the servers with AFFILIATE_WEBHOOK_SECRET=bench-secret on
# fresh data, the bridge. One configuration runs at a time (the previous
# one stopped), on the same cores as wrk. Per configuration: a signed
# order answers 201, the same again 200; wrk -t2 -c32 --latency posts one
# distinct pre-signed order per request (webhook.lua), then reads
# GET /advertisers/2?editor_id=1 (a cached read); the orders answered 201
# must then be in the database (plus at most one in flight per connection
# when wrk stopped). A 2xx is given only once the order's commit is on
# disk, on both backends (SQLite synchronous=FULL; PostgreSQL
# synchronous_commit=on), so the order rows compare durable with durable.
set -u
. "$(dirname "$0")/../clean_env.sh"

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BIN_DIR (the build's bin folder)" >&2
	exit 2
fi
BIN=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
SECS=${BENCH_SECONDS:-10}
# --log-level of every process: by default info, what `make run` gives.
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
case $LOG_LEVEL in
debug | info | warn | error) ;;
*) echo "bench: BENCH_LOG_LEVEL must be debug, info, warn or error" >&2; exit 2 ;;
esac
RATE=${BENCH_RATE:-40000}
THREADS=2
CONNS=32
SECRET=bench-secret
READ_PATH="/advertisers/2?editor_id=1"
for v in "BENCH_SECONDS=$SECS" "BENCH_RATE=$RATE"; do
	case ${v#*=} in
	'' | *[!0-9]*) echo "bench: ${v%%=*} must be a whole number" >&2; exit 2 ;;
	esac
done
if [ "$SECS" -lt 1 ] || [ "$SECS" -gt 600 ]; then
	echo "bench: BENCH_SECONDS must be 1..600" >&2
	exit 2
fi
if [ "$RATE" -lt 100 ] || [ "$RATE" -gt 200000 ]; then
	echo "bench: BENCH_RATE must be 100..200000" >&2
	exit 2
fi
for b in affiliate-server affiliate-bridge bench-bare-civetweb bench-sign-orders; do
	if [ ! -x "$BIN/$b" ]; then
		echo "bench: $BIN/$b is missing; build first (cmake --build BUILD_DIR)" >&2
		exit 2
	fi
done
for t in wrk redis-server ss curl sqlite3 psql; do
	if ! command -v "$t" >/dev/null; then
		echo "bench: $t not found (apt-get install -y wrk redis-server iproute2 curl sqlite3 postgresql-15)" >&2
		exit 2
	fi
done

work=$(mktemp -d /tmp/affiliate-clbench-XXXXXX)
. "$HERE/common.sh"
# A real PostgreSQL (pg_start, pg_stop); it takes common.sh's free_port.
. "$HERE/../pg.sh"
bench_exit() {
	stop_all
	pg_stop
	cleanup
}
trap bench_exit EXIT

# wrk_figure OUT KEY: requests/s, p50/p99 (us), socket errors + non-2xx,
# or one of webhook.lua's "key value" lines.
wrk_figure() {
	case $2 in
	rps) echo "$1" | awk '/^Requests\/sec:/ { print $2 }' ;;
	p50) to_us "$(echo "$1" | awk '$1 == "50%" { print $2 }')" ;;
	p99) to_us "$(echo "$1" | awk '$1 == "99%" { print $2 }')" ;;
	errors) echo "$1" | awk '/Socket errors:/ { gsub(",", ""); s += $4 + $6 + $8 + $10 }
		/Non-2xx or 3xx responses:/ { s += $NF } END { print s + 0 }' ;;
	*) echo "$1" | awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' ;;
	esac
}

# measure NAME URL [wrk args...]: a 1 s warm-up, then BENCH_SECONDS; the
# output in $work/wrk-NAME.txt and $out.
measure() {
	local name=$1 url=$2
	shift 2
	wrk -t$THREADS -c$CONNS -d1s "$@" "$url" >/dev/null 2>&1
	out=$(wrk -t$THREADS -c$CONNS -d"${SECS}s" --latency "$@" "$url" 2>&1)
	echo "$out" >"$work/wrk-$name.txt"
	[ -n "$(wrk_figure "$out" rps)" ] || { echo "$out" >&2; die "wrk gave no figures for $name"; }
}

post_status() { # post_status URL SIGNATURE BODY
	curl -s -o "$work/post.out" -w '%{http_code}' --max-time 10 \
		-H 'Content-Type: application/json' -H "X-Partner-Signature: $2" \
		--data-binary "$3" "$1"
}

notes=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

redis_port=$(free_port) || die "no free port"
bare_port=$(free_port) || die "no free port"
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
	--appendonly no --dir "$work"
wait_port redis "$last_pid" "$redis_port"
start bare-civetweb "$BIN/bench-bare-civetweb" "127.0.0.1:$bare_port"
wait_port bare-civetweb "$last_pid" "$bare_port"
echo "bench: starting PostgreSQL ..." >&2
pg_start || die "PostgreSQL did not start"

echo "bench: signing $((SECS * RATE)) + $RATE orders ..." >&2
"$BIN/bench-sign-orders" 1 "$SECRET" "$work/check.txt" || die "bench-sign-orders failed"
"$BIN/bench-sign-orders" "$RATE" "$SECRET" "$work/warm.txt" || die "bench-sign-orders failed"
"$BIN/bench-sign-orders" $((SECS * RATE)) "$SECRET" "$work/run.txt" || die "bench-sign-orders failed"
run_prefix=$(head -n 1 "$work/run.txt" | sed -n 's/.*"order_id":"\(B[0-9a-z]*-\).*/\1/p')
[ -n "$run_prefix" ] || die "cannot read the order ids of $work/run.txt"

# ---- The limit: the bare civetweb handler, a POST of a webhook's size
# and a GET, each answered 200 at once.
IFS=$'\t' read -r sig body <"$work/warm.txt"
lua_quote() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Partner-Signature"] = "$(lua_quote "$sig")"
wrk.body = "$(lua_quote "$body")"
EOF
rows=()
echo "bench: bare civetweb ..." >&2
measure bare-post "http://127.0.0.1:$bare_port/webhook/orders" -s "$work/post.lua"
bare_post=$(wrk_figure "$out" rps)
row="bare civetweb handler (limit)|$bare_post|$(wrk_figure "$out" p50)|$(wrk_figure "$out" p99)|$(wrk_figure "$out" errors)"
measure bare-get "http://127.0.0.1:$bare_port/"
bare_get=$(wrk_figure "$out" rps)
rows+=("$row|$bare_get|$(wrk_figure "$out" p50)|$(wrk_figure "$out" p99)|$(wrk_figure "$out" errors)")

# run_config NAME LABEL BACKEND SERVERS: starts the servers and the
# bridge, checks the contract, measures orders then reads, counts the
# stored orders, stops them all.
run_config() {
	local name=$1 label=$2 backend=$3 n=$4 i port db= urls= cfg=() st
	local bridge_port created stored wout rps_o row
	if [ "$backend" = pg ]; then
		psql -qAt "${PG_URI%/*}/postgres" -c "CREATE DATABASE $name" >/dev/null ||
			die "cannot create the database $name"
		db=${PG_URI%/*}/$name
	fi
	for i in $(seq 1 "$n"); do
		port=$(free_port) || die "no free port"
		# The first applies the schema and the seed; then the next.
		start "$name-server$i" env AFFILIATE_WEBHOOK_SECRET="$SECRET" \
			"$BIN/affiliate-server" --listen "tcp://127.0.0.1:$port" \
			--data-dir "$work/$name-data$i" ${db:+--db "$db"} \
			--redis "127.0.0.1:$redis_port" --jobs "ipc://$work/$name-jobs$i.sock" \
			--results "ipc://$work/$name-results$i.sock" --log-level "$LOG_LEVEL"
		cfg+=("$last_pid")
		wait_port "$name-server$i" "$last_pid" "$port"
		urls=${urls:+$urls,}tcp://127.0.0.1:$port
	done
	bridge_port=$(free_port) || die "no free port"
	start "$name-bridge" "$BIN/affiliate-bridge" --listen "127.0.0.1:$bridge_port" \
		--server "$urls" $([ "$n" -gt 1 ] && echo "--shared-db 1") --log-level "$LOG_LEVEL"
	cfg+=("$last_pid")
	wait_port "$name-bridge" "$last_pid" "$bridge_port"
	local url="http://127.0.0.1:$bridge_port"

	IFS=$'\t' read -r sig body <"$work/check.txt"
	st=$(post_status "$url/webhook/orders" "$sig" "$body")
	[ "$st" = 201 ] || { cat "$work/post.out" >&2; die "$label: a new signed order answers $st, not 201"; }
	st=$(post_status "$url/webhook/orders" "$sig" "$body")
	[ "$st" = 200 ] || notes+=("$label: the same order again answers $st, not 200")
	st=$(curl -s -o /dev/null -w '%{http_code}' "$url$READ_PATH")
	[ "$st" = 200 ] || die "$label: GET $READ_PATH answers $st"

	echo "bench: $label: orders ..." >&2
	wout=$(wrk -t$THREADS -c$CONNS -d1s -s "$HERE/webhook.lua" "$url/webhook/orders" -- \
		"$work/warm.txt" $THREADS 2>&1)
	[ "$(wrk_figure "$wout" webhook_other)" = 0 ] ||
		notes+=("$label: the warm-up had $(wrk_figure "$wout" webhook_other) answers other than 201/200")
	out=$(wrk -t$THREADS -c$CONNS -d"${SECS}s" --latency -s "$HERE/webhook.lua" \
		"$url/webhook/orders" -- "$work/run.txt" $THREADS 2>&1)
	echo "$out" >"$work/wrk-$name-orders.txt"
	rps_o=$(wrk_figure "$out" rps)
	[ -n "$rps_o" ] || { echo "$out" >&2; die "wrk gave no figures for $label"; }
	created=$(wrk_figure "$out" webhook_created)
	[ "$(wrk_figure "$out" webhook_wrapped)" = 0 ] ||
		notes+=("$label: the run outgrew its lines: $(wrk_figure "$out" webhook_wrapped) requests repeated orders (set BENCH_RATE higher)")
	[ "$(wrk_figure "$out" webhook_other)" = 0 ] ||
		notes+=("$label: $(wrk_figure "$out" webhook_other) order answers other than 201/200")
	row="$label|$(awk -v c="$created" -v s="$SECS" 'BEGIN { printf "%.0f", c / s }')|$(wrk_figure "$out" p50)|$(wrk_figure "$out" p99)|$(wrk_figure "$out" errors)"

	echo "bench: $label: cached reads ..." >&2
	measure "$name-reads" "$url$READ_PATH"
	rows+=("$row|$(wrk_figure "$out" rps)|$(wrk_figure "$out" p50)|$(wrk_figure "$out" p99)|$(wrk_figure "$out" errors)")

	# Every 201 stored (wrk stops with up to one request in flight per
	# connection: stored, its 201 never read).
	if [ "$backend" = pg ]; then
		stored=$(psql -qAt "$db" -c "SELECT count(*) FROM orders WHERE order_id LIKE '$run_prefix%'" 2>&1)
	else
		stored=$(sqlite3 "file:$work/$name-data1/affiliate.db?mode=ro" \
			"SELECT count(*) FROM orders WHERE order_id LIKE '$run_prefix%'" 2>&1)
	fi
	case $stored in
	'' | *[!0-9]*) notes+=("$label: cannot count the run's orders: $stored") ;;
	*)
		if [ "$stored" -ge "$created" ] && [ "$stored" -le $((created + CONNS)) ]; then
			notes+=("$label: $created orders answered 201, $stored stored ($((stored - created)) in flight when wrk stopped)")
		else
			notes+=("$label: MISMATCH: $created orders answered 201 but $stored stored")
		fi
		;;
	esac
	for p in "${cfg[@]}"; do
		kill -0 "$p" 2>/dev/null || notes+=("$label: a process exited during the run (logs: BENCH_KEEP=1)")
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${cfg[@]}"; do wait "$p" 2>/dev/null; done
}

run_config bench_sqlite "SQLite, 1 server" sqlite 1
run_config bench_pg1 "PostgreSQL, 1 server" pg 1
run_config bench_pg2 "PostgreSQL, 2 servers" pg 2

echo
printf 'BENCH_SECONDS=%s, %s cores, wrk -t%s -c%s; load average before %s, after %s\n' \
	"$SECS" "$(nproc)" "$THREADS" "$CONNS" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-30s %9s %8s %8s %7s %5s | %9s %8s %8s %7s %5s\n' "" "orders/s" "p50 us" \
	"p99 us" "vs bare" "err" "reads/s" "p50 us" "p99 us" "vs bare" "err"
for r in "${rows[@]}"; do
	IFS='|' read -r name o op50 op99 oerr g gp50 gp99 gerr <<<"$r"
	printf '%-30s %9.0f %8d %8d %7s %5s | %9.0f %8d %8d %7s %5s\n' "$name" "$o" "$op50" "$op99" \
		"$(awk -v a="$o" -v b="$bare_post" 'BEGIN { printf "%.3f", a / b }')" "$oerr" \
		"$g" "$gp50" "$gp99" \
		"$(awk -v a="$g" -v b="$bare_get" 'BEGIN { printf "%.3f", a / b }')" "$gerr"
done
echo "(orders/s: new orders answered 201, each committed to disk first; the bare row: any POST answered 200)"
for n in "${notes[@]}"; do
	echo "note: $n"
done
exit 0
