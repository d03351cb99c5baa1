#!/usr/bin/env bash
# bench.sh - `make bench`: throughput and latency of the real binaries next
# to their limits and to the seed's stack, in one run: the bridge over HTTP
# next to a bare civetweb with the same options and to the seed's Flask
# stack (../shared/peer), affiliate-server over NNG next to a bare NNG echo
# server, the bridge's memory at 256 idle connections, then the list at
# 1,000,000 orders (bench_orders_scale.sh, when it is in the tree).
#
# Usage: tests/bench/bench.sh BIN_DIR
#   BIN_DIR holds affiliate-server, bench-bare-civetweb, bench-bare-nng-echo,
#   bench-rpc-load, bench-sign-orders and affiliate-bridge (its rows are
#   skipped without it). BENCH_SECONDS (default 5) is the length of each
#   measurement; each target is warmed up for 1 s first. BENCH_RATE
#   (default 20000) is the new orders per second signed for the bridge's
#   webhook row (a faster run wraps to duplicates, counted by webhook.lua).
#   BENCH_RATE_LIMIT (unset: none, the loopback default) is the server's
#   per-address limit (AFFILIATE_RATE_LIMIT_ANON), e.g. 1000000 to measure
#   what counting every call costs (in Redis, which the bench always runs).
#   BENCH_LOG_LEVEL (default info, what `make run` gives) is the server's
#   and the bridge's --log-level; at any other level than warn, the cached
#   reads are measured again with both restarted at --log-level warn, in
#   extra rows, to show what the log costs; two more rows measure the
#   cached reads with the bridge's --read-cache off. BENCH_PEER_DIR (default
#   ../shared/peer beside the checkout) holds the seed's app.py.
#   BENCH_KEEP=1 keeps the logs and wrk outputs.
#
# It starts, on free loopback ports, redis-server (no persistence),
# affiliate-server on a fresh data dir, the bridge, the two bare servers
# and the seed's stack (its own Redis, gunicorn -w 4 as its run.sh, an RQ
# worker, its SQLite file in the temporary folder); runs wrk (-t2 -c32
# --latency) against the HTTP targets and bench-rpc-load (32 threads)
# against the RPC ones; prints one table; and stops everything it started
# on exit, Ctrl-C included. The load generator runs on the same cores as
# the servers, so compare rows of one run, not figures across machines.
#
# The bare civetweb answers with one write. Run it by hand with a second
# argument "api" to see what civetweb's mg_send_http_ok() + mg_write() cost
# with these options (one send per header line, then Nagle + delayed ACK):
#   BIN_DIR/bench-bare-civetweb 127.0.0.1:18080 api & wrk -d5s http://127.0.0.1:18080/
set -u
. "$(dirname "$0")/../clean_env.sh"

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BIN_DIR (the build's bin folder)" >&2
	exit 2
fi
BIN=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${BENCH_SECONDS:-5}
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
case $LOG_LEVEL in
debug | info | warn | error) ;;
*) echo "bench: BENCH_LOG_LEVEL must be debug, info, warn or error" >&2; exit 2 ;;
esac
case $SECS in
'' | *[!0-9]*) echo "bench: BENCH_SECONDS must be a whole number of seconds" >&2; exit 2 ;;
esac
if [ "$SECS" -lt 1 ] || [ "$SECS" -gt 600 ]; then
	echo "bench: BENCH_SECONDS must be 1..600" >&2
	exit 2
fi

for b in affiliate-server bench-bare-civetweb bench-bare-nng-echo bench-rpc-load bench-sign-orders; do
	if [ ! -x "$BIN/$b" ]; then
		echo "bench: $BIN/$b is missing; build first (cmake --build BUILD_DIR)" >&2
		exit 2
	fi
done
for t in wrk redis-server protoc ss curl; do
	if ! command -v "$t" >/dev/null; then
		echo "bench: $t not found (apt-get install -y wrk redis-server protobuf-compiler iproute2)" >&2
		exit 2
	fi
done

work=$(mktemp -d /tmp/affiliate-bench-XXXXXX)
. "$(dirname "$0")/common.sh"

# Results, one row each: name, requests/s, p50 us, p99 us, errors, kind.
rows=()

wrk_runs=0

# wrk_row NAME WRK_ARGS...: measures with wrk -t2 -c32 for BENCH_SECONDS
# (the caller has warmed up) and records a row.
wrk_row() {
	local name=$1 out rps p50 p99 non2xx sock
	shift
	out=$(wrk -t2 -c32 -d"${SECS}s" --latency "$@" 2>&1)
	wrk_runs=$((wrk_runs + 1))
	echo "$out" >"$work/wrk-$wrk_runs.txt"
	rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
	p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
	p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
	non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ { print $NF }')
	sock=$(echo "$out" | awk '/Socket errors:/ {
		gsub(",", ""); print $4 + $6 + $8 + $10 }')
	if [ -z "$rps" ] || [ -z "$p50" ] || [ -z "$p99" ]; then
		echo "$out" >&2
		die "wrk gave no figures for $name"
	fi
	rows+=("$name|$rps|$(to_us "$p50")|$(to_us "$p99")|$((${non2xx:-0} + ${sock:-0}))|http")
}

# http_row NAME URL: warms up, measures with wrk, records a row.
http_row() {
	echo "bench: $1 ..." >&2
	wrk -t2 -c32 -d1s "$2" >/dev/null 2>&1
	wrk_row "$1" "$2"
}

# webhook_row NAME URL SECRET RATE: signed new orders (bench-sign-orders,
# tests/bench/webhook.lua as bench_webhooks.sh runs them), RATE per second
# of the run: one file for the warm-up, another for the run, so every
# measured request is a new order, committed before it is answered.
webhook_row() {
	local name=$1 url=$2 secret=$3 rate=$4 tag=${#rows[@]}
	echo "bench: $name (signing orders) ..." >&2
	"$BIN/bench-sign-orders" "$rate" "$secret" "$work/warm-$tag.txt" &&
		"$BIN/bench-sign-orders" $((rate * SECS)) "$secret" "$work/run-$tag.txt" ||
		die "bench-sign-orders could not write the orders"
	wrk -t2 -c32 -d1s -s "$SRC/tests/bench/webhook.lua" "$url" -- \
		"$work/warm-$tag.txt" 2 >/dev/null 2>&1
	wrk_row "$name" -s "$SRC/tests/bench/webhook.lua" "$url" -- "$work/run-$tag.txt" 2
	rm -f "$work/warm-$tag.txt" "$work/run-$tag.txt"
}

# rpc_row NAME URL: warms up, measures with bench-rpc-load, records a row.
rpc_row() {
	local name=$1 url=$2 out rps p50 p99 errs
	echo "bench: $name ..." >&2
	"$BIN/bench-rpc-load" "$url" "$work/request.bin" 32 1 >/dev/null 2>&1
	out=$("$BIN/bench-rpc-load" "$url" "$work/request.bin" 32 "$SECS" 2>&1)
	rps=$(echo "$out" | awk '$1 == "calls_per_s" { print $2 }')
	p50=$(echo "$out" | awk '$1 == "p50_us" { print $2 }')
	p99=$(echo "$out" | awk '$1 == "p99_us" { print $2 }')
	errs=$(echo "$out" | awk '$1 == "errors" { print $2 }')
	if [ -z "$rps" ] || [ -z "$p50" ] || [ -z "$p99" ]; then
		echo "$out" >&2
		die "bench-rpc-load gave no figures for $url"
	fi
	rows+=("$name|$rps|$p50|$p99|${errs:-0}|rpc")
}

# The request: AdvertiserService/GetAdvertiser for advertiser 2 as editor 1
# (an editor it may join), as a serialized RequestEnvelope.
cd "$SRC/proto" || die "no proto folder in $SRC"
payload=$(printf 'id: 2 editor_id: 1' |
	protoc --encode=affiliate.v1.GetAdvertiserRequest affiliate/v1/affiliate.proto |
	od -An -tx1 -v | tr -d ' \n' | sed 's/../\\x&/g')
[ -n "$payload" ] || die "protoc could not encode the request"
printf 'service: "affiliate.v1.AdvertiserService" method: "GetAdvertiser" request_id: "bench" payload: "%s"' "$payload" |
	protoc --encode=affiliate.v1.RequestEnvelope affiliate/v1/rpc.proto >"$work/request.bin" ||
	die "protoc could not encode the envelope"

redis_port=$(free_port) || die "no free port"
rpc_port=$(free_port) || die "no free port"
echo_port=$(free_port) || die "no free port"
bare_port=$(free_port) || die "no free port"
bridge_port=$(free_port) || die "no free port"

start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
	--appendonly no --dir "$work"
wait_port redis "$last_pid" "$redis_port"

# start_stack LEVEL: the server and (when built) the bridge at --log-level
# LEVEL, on the same data, Redis and ports each time.
start_stack() {
	start "server-$1" env AFFILIATE_WEBHOOK_SECRET=bench-secret \
		${BENCH_RATE_LIMIT:+AFFILIATE_RATE_LIMIT_ANON=$BENCH_RATE_LIMIT} \
		"$BIN/affiliate-server" --listen "tcp://127.0.0.1:$rpc_port" \
		--data-dir "$work/data" --redis "127.0.0.1:$redis_port" \
		--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
		--log-level "$1"
	server_pid=$last_pid
	wait_port server "$last_pid" "$rpc_port"
	if [ "$have_bridge" = 1 ]; then
		start "bridge-$1" "$BIN/affiliate-bridge" --listen "127.0.0.1:$bridge_port" \
			--server "tcp://127.0.0.1:$rpc_port" --log-level "$1"
		bridge_pid=$last_pid
		wait_port bridge "$last_pid" "$bridge_port"
	fi
}

# stop_stack: SIGTERM to the server and the bridge, and waits for them.
stop_stack() {
	local pid
	for pid in $server_pid ${bridge_pid:-}; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
}

notes=()
have_bridge=0
[ -x "$BIN/affiliate-bridge" ] && have_bridge=1
start_stack "$LOG_LEVEL"

start bare-civetweb "$BIN/bench-bare-civetweb" "127.0.0.1:$bare_port"
wait_port bare-civetweb "$last_pid" "$bare_port"
start bare-nng-echo "$BIN/bench-bare-nng-echo" "tcp://127.0.0.1:$echo_port"
wait_port bare-nng-echo "$last_pid" "$echo_port"

# The seed's stack (tests/bench: BENCH_PEER_DIR, default ../shared/peer
# beside the checkout; its README says how run.sh starts it): the same
# app.py, on this run's own free ports and database, never run.sh's fixed
# ports and /tmp pid files. Without its packages (scripts/deps.sh bench) the
# "vs seed" column is "-".
peer_dir=${BENCH_PEER_DIR:-$SRC/../shared/peer}
peer_url=
if [ -f "$peer_dir/app.py" ] &&
	/usr/bin/python3 -c 'import flask, sqlalchemy, redis, rq, gunicorn' 2>/dev/null; then
	peer_redis_port=$(free_port) || die "no free port"
	peer_port=$(free_port) || die "no free port"
	start peer-redis redis-server --port "$peer_redis_port" --bind 127.0.0.1 \
		--save "" --appendonly no --dir "$work"
	wait_port peer-redis "$last_pid" "$peer_redis_port"
	export PEER_DB=$work/peer.db PEER_REDIS_PORT=$peer_redis_port
	if (cd "$peer_dir" && /usr/bin/python3 app.py) >"$work/peer-seed.log" 2>&1; then
		start peer-gunicorn /usr/bin/python3 -m gunicorn --chdir "$peer_dir" \
			-w 4 -b "127.0.0.1:$peer_port" app:app
		wait_port peer-gunicorn "$last_pid" "$peer_port"
		start peer-rq sh -c "cd '$peer_dir' && exec /usr/bin/python3 -m rq.cli worker --url redis://127.0.0.1:$peer_redis_port"
		# gunicorn listens before its workers have booted.
		for _ in $(seq 1 50); do
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$peer_port/")
			[ "$code" = 200 ] && break
			sleep 0.2
		done
		if [ "$code" = 200 ]; then
			peer_url="http://127.0.0.1:$peer_port"
		else
			notes+=("the seed's stack answers GET / with $code: its column is -")
		fi
	else
		notes+=("the seed's stack could not seed its database ($work/peer-seed.log): its column is -")
	fi
else
	notes+=("the seed's stack ($peer_dir) or its packages (scripts/deps.sh bench) are missing: its column is -")
fi
declare -A seed_rps=()

# seed_row NAME ROW_FUNCTION ARGS...: measures, with ROW_FUNCTION
# (http_row, webhook_row), the seed's stack as the bridge row NAME's peer;
# its figures go to the "vs seed" column, not a row of their own.
seed_row() {
	[ -n "$peer_url" ] || return 0
	local name=$1 n=${#rows[@]} last rps errs
	shift
	"$@"
	last=${rows[$n]}
	unset "rows[$n]"
	rows=("${rows[@]}")
	IFS='|' read -r _ rps _ _ errs _ <<<"$last"
	[ "$errs" = 0 ] || notes+=("the seed's stack for $name: $errs errors")
	seed_rps[$name]=$rps
}

# Figures for error answers would mean nothing: check, once, that every
# target answers the benchmarked request with success.
if command -v nngcat >/dev/null; then
	if ! nngcat --req --connect "tcp://127.0.0.1:$rpc_port" --recv-timeout 5 \
		--file "$work/request.bin" --raw >"$work/reply.bin" 2>"$work/nngcat.err" ||
		! protoc --decode=affiliate.v1.ReplyEnvelope affiliate/v1/rpc.proto \
			<"$work/reply.bin" >"$work/reply.txt" 2>&1; then
		cat "$work/nngcat.err" "$work/reply.txt" >&2 2>/dev/null
		die "affiliate-server did not answer the benchmark request"
	fi
	if grep -q '^code:' "$work/reply.txt"; then
		cat "$work/reply.txt" >&2
		die "affiliate-server answers the benchmark request with an error"
	fi
else
	notes+=("nngcat not found (nng-utils): the server's reply was not checked")
fi
if [ "$have_bridge" = 1 ]; then
	for path in / "/advertisers/2?editor_id=1" "/advertisers?editor_id=1" \
		"/orders?editor_id=1&limit=10"; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
			"http://127.0.0.1:$bridge_port$path")
		[ "$code" = 200 ] || notes+=("bridge answers GET $path with $code, not 200")
	done
fi

# The bridge's memory: idle, then with 256 idle keep-alive connections
# held (each made one request), measured before any load so the figure is
# what connections cost, not what wrk's bursts left in malloc's arenas.
# They are measured within civetweb's keep_alive_timeout_ms (5 s).
rss_line=
if [ "$have_bridge" = 1 ]; then
	wait_threads "$bridge_pid" 512
	rss_idle=$(rss_kib "$bridge_pid" Rss)
	pss_idle=$(rss_kib "$bridge_pid" Pss)
	if hold_conns "$bridge_port" 256 /; then
		rss_256=$(rss_kib "$bridge_pid" Rss)
		pss_256=$(rss_kib "$bridge_pid" Pss)
		rss_line=$(awk -v a="$rss_idle" -v b="$pss_idle" -v c="$rss_256" -v d="$pss_256" 'BEGIN {
			printf "bridge memory (512 threads): idle RSS %.1f MiB (PSS %.1f); with 256 idle keep-alive connections RSS %.1f MiB (PSS %.1f); bound 32 MiB", a / 1024, b / 1024, c / 1024, d / 1024 }')
	else
		notes+=("the bridge did not hold 256 keep-alive connections: no RSS figure")
	fi
	release_conns
fi

bare_url="http://127.0.0.1:$bare_port"
bridge_url="http://127.0.0.1:$bridge_port"
http_row "http bare civetweb /" "$bare_url/"
if [ "$have_bridge" = 1 ]; then
	rate=${BENCH_RATE:-20000}
	n="http bridge /"
	http_row "$n" "$bridge_url/"
	seed_row "$n" http_row "seed /" "$peer_url/"
	n="http bridge /advertisers/2?editor_id=1"
	http_row "$n" "$bridge_url/advertisers/2?editor_id=1"
	# The seed's data makes editor 1 eligible for advertisers 1, 4, 7...
	seed_row "$n" http_row "seed /advertisers/1" "$peer_url/advertisers/1?editor_id=1"
	n="http bridge /advertisers?editor_id=1"
	http_row "$n" "$bridge_url/advertisers?editor_id=1"
	seed_row "$n" http_row "seed /advertisers" "$peer_url/advertisers?editor_id=1"
	n="http bridge POST /webhook/orders (new)"
	webhook_row "$n" "$bridge_url/webhook/orders" bench-secret "$rate"
	# The seed stores an order in SQLite and a Redis hash, one per request.
	seed_row "$n" webhook_row "seed webhook" "$peer_url/webhook/orders" secret 2000
	# After the webhooks: the list has orders to page through. The seed's
	# GET /orders has no filter nor page: it answers every order it holds.
	n="http bridge /orders?editor_id=1&limit=10"
	http_row "$n" "$bridge_url/orders?editor_id=1&limit=10"
	seed_row "$n" http_row "seed /orders" "$peer_url/orders?editor_id=1&limit=10"
else
	notes+=("$BIN/affiliate-bridge not found: the bridge rows are skipped")
fi
rpc_row "rpc bare nng echo" "tcp://127.0.0.1:$echo_port"
rpc_row "rpc server GetAdvertiser(2, editor 1)" "tcp://127.0.0.1:$rpc_port"
# The cached reads again with the bridge's read cache off (every read a
# round trip to the server, as before it existed): what it saves.
if [ "$have_bridge" = 1 ]; then
	kill -TERM "$bridge_pid" 2>/dev/null
	wait "$bridge_pid" 2>/dev/null
	start "bridge-nocache" "$BIN/affiliate-bridge" --listen "127.0.0.1:$bridge_port" \
		--server "tcp://127.0.0.1:$rpc_port" --log-level "$LOG_LEVEL" --read-cache off
	bridge_pid=$last_pid
	wait_port bridge "$last_pid" "$bridge_port"
	http_row "http bridge /advertisers/2 (cache off)" "$bridge_url/advertisers/2?editor_id=1"
	http_row "http bridge /advertisers (cache off)" "$bridge_url/advertisers?editor_id=1"
fi
if [ "$LOG_LEVEL" != warn ]; then
	stop_stack
	start_stack warn
	[ "$have_bridge" = 0 ] ||
		http_row "http bridge /advertisers/2 (log warn)" "$bridge_url/advertisers/2?editor_id=1"
	rpc_row "rpc server GetAdvertiser (log warn)" "tcp://127.0.0.1:$rpc_port"
fi

# The table. The limit of a row is the first row of its kind (the bare one).
echo
printf 'BENCH_SECONDS=%s, %s cores, --log-level %s; HTTP: wrk -t2 -c32; RPC: bench-rpc-load, 32 threads\n' \
	"$SECS" "$(nproc)" "$LOG_LEVEL"
printf '%-40s %12s %9s %9s %9s %9s %7s\n' "target" "requests/s" "p50 us" "p99 us" "vs limit" "vs seed" "errors"
http_limit=
rpc_limit=
for row in "${rows[@]}"; do
	IFS='|' read -r name rps p50 p99 errs kind <<<"$row"
	if [ "$kind" = http ]; then
		: "${http_limit:=$rps}"
		limit=$http_limit
	else
		: "${rpc_limit:=$rps}"
		limit=$rpc_limit
	fi
	ratio=$(awk -v a="$rps" -v b="$limit" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
	vs_seed=$(awk -v a="$rps" -v b="${seed_rps[$name]:-}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	printf '%-40s %12.0f %9d %9d %9s %9s %7d\n' "$name" "$rps" "$p50" "$p99" "$ratio" "$vs_seed" "$errs"
done
[ -z "$rss_line" ] || echo "$rss_line"
for n in "${notes[@]}"; do
	echo "note: $n"
done

# The list at scale (issue 15): its own script, its own stack.
if [ -x "$SRC/tests/bench/bench_orders_scale.sh" ] || [ -f "$SRC/tests/bench/bench_orders_scale.sh" ]; then
	echo
	stop_all
	bash "$SRC/tests/bench/bench_orders_scale.sh" "$BIN" || exit 1
else
	echo "note: tests/bench/bench_orders_scale.sh is not in this tree: no list-scale benchmark"
fi
exit 0
