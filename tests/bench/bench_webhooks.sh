#!/usr/bin/env bash
# bench_webhooks.sh - durable order ingest through the bridge: signed
# POST /webhook/orders, each a new order committed to SQLite
# (synchronous=FULL, group commit) before it is answered, next to the bare
# civetweb handler (the HTTP limit: any request answered 200 at once).
#
# Usage: tests/bench/bench_webhooks.sh BIN_DIR
#   BIN_DIR holds affiliate-server, affiliate-bridge, bench-bare-civetweb
#   and bench-sign-orders. BENCH_SECONDS (default 10) is the length of each
#   measurement; each target is warmed up for 1 s first. BENCH_RATE
#   (default 40000) is the orders per second the signed lines are made
#   for: BENCH_SECONDS x BENCH_RATE for the run, BENCH_RATE more for the
#   warm-up (its own orders, never sent again). A run faster than that
#   wraps around to orders already sent (duplicates, answered 200); the
#   table's counts show it (BENCH_RATE=100 on purpose measures the path of
#   a duplicate, which writes nothing). BENCH_PERF=1 records the server and
#   the bridge with `perf record --call-graph dwarf` for the first half of
#   the bridge run and prints their top symbols (perf must be installed and
#   allowed).
#   BENCH_SERVER_ARGS (default none) adds flags to affiliate-server's
#   command line, split on spaces (e.g. "--threads 32"), to try settings.
#   BENCH_KEEP=1 keeps the logs and wrk outputs (the folder is printed).
#   BENCH_MISMATCH_EVERY (default 32): every Nth order reports another
#   commission than its programme's (the rest report the programme's, as
#   partners do); 1 makes every order a mismatch, each then also written
#   to the eight partial indexes ?commission_mismatch=true reads.
#
# It starts, on free loopback ports, redis-server (no persistence),
# affiliate-server on a fresh data dir with AFFILIATE_WEBHOOK_SECRET=
# bench-secret, the bridge and the bare civetweb; checks that a signed
# order answers 201, the same again 200, a bad signature 401; runs
# wrk -t2 -c32 --latency with webhook.lua (one distinct pre-signed order
# per request) against the bridge and a plain POST of the same size against
# the bare handler; prints one table and where the CPU went during the
# bridge run (server, bridge, wrk, redis, kernel, anything else: other
# jobs on the host make the figures low, and the script says so); checks
# that GET /orders?limit=1 still answers and that SQLite holds the orders
# answered 201 (plus at most one in flight per connection when wrk
# stopped); and stops everything it started on exit, Ctrl-C included. wrk
# runs on the same cores as the servers, so compare rows of one run, not
# figures across machines.
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
# Every Nth order reports a commission other than its programme's (see
# bench-sign-orders); 1 makes every order one.
MISMATCH_EVERY=${BENCH_MISMATCH_EVERY:-32}
THREADS=2
CONNS=32
SECRET=bench-secret
TARGET_RATE=10000 # orders/s the ingest is reported against
for v in "BENCH_SECONDS=$SECS" "BENCH_RATE=$RATE" "BENCH_MISMATCH_EVERY=$MISMATCH_EVERY"; do
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
for t in wrk redis-server ss curl; do
	if ! command -v "$t" >/dev/null; then
		echo "bench: $t not found (apt-get install -y wrk redis-server iproute2 curl)" >&2
		exit 2
	fi
done
if [ ! -r "$HERE/webhook.lua" ]; then
	echo "bench: $HERE/webhook.lua is missing" >&2
	exit 2
fi
PERF=${BENCH_PERF:-0}
if [ "$PERF" = 1 ] && ! command -v perf >/dev/null; then
	echo "bench: BENCH_PERF=1 needs perf (apt-get install -y linux-perf)" >&2
	exit 2
fi

work=$(mktemp -d /tmp/affiliate-whbench-XXXXXX)
. "$(dirname "$0")/common.sh"

# wrk_figure OUT KEY: one figure from wrk's output (requests/s, p50, p99,
# socket errors, non-2xx) or from webhook.lua's "key value" lines.
wrk_figure() {
	case $2 in
	rps) echo "$1" | awk '/^Requests\/sec:/ { print $2 }' ;;
	p50) to_us "$(echo "$1" | awk '$1 == "50%" { print $2 }')" ;;
	p99) to_us "$(echo "$1" | awk '$1 == "99%" { print $2 }')" ;;
	sock) echo "$1" | awk '/Socket errors:/ { gsub(",", ""); s = $4 + $6 + $8 + $10 }
		END { print s + 0 }' ;;
	non2xx) echo "$1" | awk '/Non-2xx or 3xx responses:/ { n = $NF } END { print n + 0 }' ;;
	answered) echo "$1" | awk '/ requests in / { n = $1 } END { print n + 0 }' ;;
	*) echo "$1" | awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' ;;
	esac
}

# cpu_ticks [PID|irq|kthreads|steal]: CPU time used so far, in clock
# ticks: by PID (user + system), by the host's tasks (user + nice +
# system), by interrupts (irq + softirq: loopback TCP is mostly there), by
# kernel threads, or taken by the hypervisor (steal).
cpu_ticks() {
	case ${1:-} in
	'') awk '$1 == "cpu" { print $2 + $3 + $4 }' /proc/stat ;;
	irq) awk '$1 == "cpu" { print $7 + $8 }' /proc/stat ;;
	# Kernel threads (children of kthreadd, pid 2): block I/O, writeback.
	kthreads) cat /proc/[0-9]*/stat 2>/dev/null |
		awk '{ sub(/^.*\) /, ""); if ($2 == 2) t += $12 + $13 } END { print t + 0 }' ;;
	steal) awk '$1 == "cpu" { print $9 }' /proc/stat ;;
	*) awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0 ;;
	esac
}

# host_busy SECONDS: the host's busy share, in percent, over SECONDS.
host_busy() {
	local a t0 b t1
	a=$(($(cpu_ticks) + $(cpu_ticks irq)))
	t0=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	sleep "$1"
	b=$(($(cpu_ticks) + $(cpu_ticks irq)))
	t1=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" \
		'BEGIN { if (t1 > t0) printf "%d", 100 * (b - a) / (t1 - t0); else print 0 }'
}

# sign NAME COUNT: writes COUNT signed orders to $work/NAME.txt.
sign() {
	"$BIN/bench-sign-orders" "$2" "$SECRET" "$work/$1.txt" "$MISMATCH_EVERY" ||
		die "bench-sign-orders could not write $2 orders"
}

# post_status URL SIGNATURE BODY: the HTTP status of one signed POST.
post_status() {
	curl -s -o "$work/post.out" -w '%{http_code}' --max-time 10 \
		-H 'Content-Type: application/json' -H "X-Partner-Signature: $2" \
		--data-binary "$3" "$1"
}

# Figures taken while something else loads the cores are low: say so.
notes=()
idle_busy=$(host_busy 1)
[ "$idle_busy" -le 10 ] ||
	notes+=("the host was ${idle_busy}% busy before this script started anything: other processes share the cores, figures are low")

redis_port=$(free_port) || die "no free port"
rpc_port=$(free_port) || die "no free port"
bare_port=$(free_port) || die "no free port"
bridge_port=$(free_port) || die "no free port"

start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
	--appendonly no --dir "$work"
redis_pid=$last_pid
wait_port redis "$redis_pid" "$redis_port"

start server env AFFILIATE_WEBHOOK_SECRET="$SECRET" "$BIN/affiliate-server" \
	--listen "tcp://127.0.0.1:$rpc_port" --data-dir "$work/data" \
	--redis "127.0.0.1:$redis_port" --jobs "ipc://$work/jobs.sock" \
	--results "ipc://$work/results.sock" --log-level "$LOG_LEVEL" ${BENCH_SERVER_ARGS:-}
server_pid=$last_pid
wait_port server "$server_pid" "$rpc_port"

start bridge "$BIN/affiliate-bridge" --listen "127.0.0.1:$bridge_port" \
	--server "tcp://127.0.0.1:$rpc_port" --log-level "$LOG_LEVEL"
bridge_pid=$last_pid
wait_port bridge "$bridge_pid" "$bridge_port"

start bare-civetweb "$BIN/bench-bare-civetweb" "127.0.0.1:$bare_port"
wait_port bare-civetweb "$last_pid" "$bare_port"

bare_url="http://127.0.0.1:$bare_port"
bridge_url="http://127.0.0.1:$bridge_port"
hook_url="$bridge_url/webhook/orders"

# Figures for error answers would mean nothing: check the contract once.
sign check 1
IFS=$'\t' read -r sig body <"$work/check.txt"
st=$(post_status "$hook_url" "$sig" "$body")
[ "$st" = 201 ] || { cat "$work/post.out" >&2; echo >&2; die "a new signed order answers $st, not 201"; }
st=$(post_status "$hook_url" "$sig" "$body")
[ "$st" = 200 ] || notes+=("the same order again answers $st, not 200")
st=$(post_status "$hook_url" "0000000000000000000000000000000000000000000000000000000000000000" "$body")
[ "$st" = 401 ] || notes+=("a bad signature answers $st, not 401")

orders=$((SECS * RATE))
echo "bench: signing $orders + $RATE orders ..." >&2
sign warm "$RATE"
sign run "$orders"
# The order ids of a file share "B<nonce>-"; it finds the run's rows in SQLite.
run_prefix=$(head -n 1 "$work/run.txt" | sed -n 's/.*"order_id":"\(B[0-9a-z]*-\).*/\1/p')

# The bare target: one plain POST of a webhook's size, the same every time.
IFS=$'\t' read -r sig body <"$work/warm.txt"
lua_quote() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Partner-Signature"] = "$(lua_quote "$sig")"
wrk.body = "$(lua_quote "$body")"
EOF

rows=()

echo "bench: bare civetweb POST ..." >&2
wrk -t$THREADS -c$CONNS -d1s -s "$work/post.lua" "$bare_url/webhook/orders" >/dev/null 2>&1
out=$(wrk -t$THREADS -c$CONNS -d"${SECS}s" --latency -s "$work/post.lua" \
	"$bare_url/webhook/orders" 2>&1)
echo "$out" >"$work/wrk-bare.txt"
bare_rps=$(wrk_figure "$out" rps)
[ -n "$bare_rps" ] || { echo "$out" >&2; die "wrk gave no figures for the bare handler"; }
rows+=("bare civetweb POST (any path)|$bare_rps|$(wrk_figure "$out" p50)|$(wrk_figure "$out" p99)|-|-|-|$(($(wrk_figure "$out" sock) + $(wrk_figure "$out" non2xx)))")

echo "bench: bridge POST /webhook/orders ..." >&2
wout=$(wrk -t$THREADS -c$CONNS -d1s -s "$HERE/webhook.lua" "$hook_url" -- \
	"$work/warm.txt" $THREADS 2>&1)
echo "$wout" >"$work/wrk-warm.txt"
if [ "$PERF" = 1 ]; then
	half=$(((SECS + 1) / 2))
	# DWARF call graphs: the distribution's libraries (SQLite, NNG, libc)
	# have no frame pointers. 499 Hz keeps the files small.
	for name in server bridge; do
		pid=$server_pid
		[ "$name" = bridge ] && pid=$bridge_pid
		perf record --call-graph dwarf,16384 -F 499 -o "$work/perf-$name.data" \
			-p "$pid" -- sleep "$half" >"$work/perf-$name.log" 2>&1 &
		extra_pids+=($!)
	done
	notes+=("perf recorded the server and the bridge for the first ${half} s of the bridge run: its figures are a little low")
fi
# The bridge's /metrics (its own and the server's families) before and
# after the run: the mean time a webhook spends in the bridge (head to
# answer) and in the server (dispatch to reply), which with the rate give
# how many of the CONNS requests were in each (Little's law).
scrape() { curl -s --max-time 5 "$bridge_url/metrics" >"$work/metrics-$1.txt"; }
# hist_sc NAME METRIC LABEL: "sum count" of METRIC's samples whose labels
# contain LABEL, from metrics-NAME.txt.
hist_sc() {
	awk -v m="$2" -v l="${3:-}" 'l != "" && index($0, l) == 0 { next }
		$1 == m "_sum" || index($1, m "_sum{") == 1 { s += $2 }
		$1 == m "_count" || index($1, m "_count{") == 1 { c += $2 }
		END { printf "%.6f %d\n", s, c }' "$work/metrics-$1.txt"
}
# wrk_runtime: the run's seconds by wrk's clock ("N requests in 5.01s,"
# or "1.00m,"): the measured requests' time. The wrk command lasts longer
# (each thread's init() runs before the clock starts).
wrk_runtime() {
	echo "$out" | awk '/ requests in / { v = $4; sub(/,$/, "", v)
		f = v ~ /ms$/ ? 0.001 : v ~ /m$/ ? 60 : v ~ /h$/ ? 3600 : 1
		sub(/[a-z]+$/, "", v); print v * f }'
}
# inflight: the line saying where the requests were during the run.
inflight() {
	local hs0 hc0 hs1 hc1 rs0 rc0 rs1 rc1
	read -r hs0 hc0 <<<"$(hist_sc before affiliate_bridge_http_request_duration_seconds 'route="/webhook/orders"')"
	read -r hs1 hc1 <<<"$(hist_sc after affiliate_bridge_http_request_duration_seconds 'route="/webhook/orders"')"
	read -r rs0 rc0 <<<"$(hist_sc before affiliate_server_rpc_duration_seconds 'method="ReceiveWebhook"')"
	read -r rs1 rc1 <<<"$(hist_sc after affiliate_server_rpc_duration_seconds 'method="ReceiveWebhook"')"
	awk -v hs="$hs0" -v hs1="$hs1" -v hc="$hc0" -v hc1="$hc1" -v rs="$rs0" -v rs1="$rs1" \
		-v rc="$rc0" -v rc1="$rc1" -v d="$(wrk_runtime)" -v n="$CONNS" 'BEGIN {
		if (hc1 <= hc || rc1 <= rc || d <= 0) exit
		x = (hc1 - hc) / d; hm = (hs1 - hs) / (hc1 - hc); rm = (rs1 - rs) / (rc1 - rc)
		printf "of the %d connections, on average (rate x mean time): %.1f in the bridge (%.0f us from head to answer), of which %.1f in the server (%.0f us from dispatch to reply); %.1f in wrk, the kernel and before the bridge has the head", n, x * hm, hm * 1e6, x * rm, rm * 1e6, n - x * hm }'
}
# writer_line: the group commit during the run alone (the stop line
# counts the warm-up too): batches, their mean size, a batch's time from
# BEGIN to the end of its fsync, and the share of the run the writer was
# in a batch (1.00: it never waited for work, the writer is the bound).
# The run's length is wrk's own (wrk_runtime).
writer_line() {
	local bs0 bc0 bs1 bc1 cs0 cc0 cs1 cc1
	read -r bs0 bc0 <<<"$(hist_sc before affiliate_server_order_batch_size)"
	read -r bs1 bc1 <<<"$(hist_sc after affiliate_server_order_batch_size)"
	read -r cs0 cc0 <<<"$(hist_sc before affiliate_server_order_commit_duration_seconds)"
	read -r cs1 cc1 <<<"$(hist_sc after affiliate_server_order_commit_duration_seconds)"
	awk -v bs="$bs0" -v bs1="$bs1" -v bc="$bc0" -v bc1="$bc1" -v cs="$cs0" -v cs1="$cs1" \
		-v d="$(wrk_runtime)" 'BEGIN {
		b = bc1 - bc; if (b <= 0 || d <= 0) exit
		printf "order writer during the run: %d batches (%.0f/s), mean %.1f orders; %.0f us from BEGIN to the end of the fsync a batch; in a batch %.2f of the time", b, b / d, (bs1 - bs) / b, (cs1 - cs) / b * 1e6, (cs1 - cs) / d }'
}
scrape before
tick_hz=$(getconf CLK_TCK)
# This shell's waited-for children (wrk, in the command substitution).
kids_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
h0=$(cpu_ticks) s0=$(cpu_ticks "$server_pid") b0=$(cpu_ticks "$bridge_pid")
r0=$(cpu_ticks "$redis_pid") i0=$(cpu_ticks irq) st0=$(cpu_ticks steal) kt0=$(cpu_ticks kthreads)
k0=$(kids_ticks) # last, so the probes above are not counted as wrk's
t_start=$(date +%s.%N)
out=$(wrk -t$THREADS -c$CONNS -d"${SECS}s" --latency -s "$HERE/webhook.lua" \
	"$hook_url" -- "$work/run.txt" $THREADS 2>&1)
k1=$(kids_ticks) # first, for the same reason
t_end=$(date +%s.%N)
h1=$(cpu_ticks) s1=$(cpu_ticks "$server_pid") b1=$(cpu_ticks "$bridge_pid")
r1=$(cpu_ticks "$redis_pid") i1=$(cpu_ticks irq) st1=$(cpu_ticks steal) kt1=$(cpu_ticks kthreads)
cpu_line=$(awk -v hz="$tick_hz" -v t0="$t_start" -v t1="$t_end" -v n="$(nproc)" \
	-v h="$((h1 - h0))" -v s="$((s1 - s0))" -v b="$((b1 - b0))" \
	-v r="$((r1 - r0))" -v k="$((k1 - k0))" -v i="$((i1 - i0))" -v st="$((st1 - st0))" \
	-v kt="$((kt1 - kt0))" 'BEGIN {
	w = (t1 - t0) * hz
	o = (h - s - b - r - k - kt) / w
	printf "CPU during the bridge run, in cores of %d: affiliate-server %.2f, affiliate-bridge %.2f, wrk %.2f, redis %.2f, kernel threads %.2f, softirq+irq %.2f, other processes %.2f, steal %.2f; idle %.2f", n, s / w, b / w, k / w, r / w, kt / w, i / w, o < 0 ? 0 : o, st / w, n - (h + i + st) / w }')
other_cpu=$(awk -v h="$((h1 - h0))" -v s="$((s1 - s0))" -v b="$((b1 - b0))" \
	-v r="$((r1 - r0))" -v k="$((k1 - k0))" -v kt="$((kt1 - kt0))" -v hz="$tick_hz" \
	-v t0="$t_start" -v t1="$t_end" \
	'BEGIN { printf "%d", 100 * (h - s - b - r - k - kt) / ((t1 - t0) * hz) }')
[ "$other_cpu" -le 5 ] ||
	notes+=("processes this script did not start used about 0.$(printf '%02d' "$((other_cpu > 99 ? 99 : other_cpu))") cores during the bridge run: the figures are low, run again on a quiet host")
scrape after
inflight_line=$(inflight)
writer_run_line=$(writer_line)
echo "$out" >"$work/wrk-bridge.txt"
rps=$(wrk_figure "$out" rps)
[ -n "$rps" ] || { echo "$out" >&2; die "wrk gave no figures for the bridge"; }
# webhook.lua reads no answers (its header says why): wrk counts those
# that are not 2xx, and a 2xx is a new order's 201 unless its line was
# sent before (wrapped: a duplicate's 200). SQLite's count below checks it.
other=$(wrk_figure "$out" non2xx)
wrapped=$(wrk_figure "$out" webhook_wrapped)
dup=$wrapped
created=$(($(wrk_figure "$out" answered) - other - wrapped))
sock=$(wrk_figure "$out" sock)
rows+=("bridge POST /webhook/orders|$rps|$(wrk_figure "$out" p50)|$(wrk_figure "$out" p99)|$created|$dup|$other|$sock")
[ "$wrapped" = 0 ] ||
	notes+=("the run outgrew its $orders lines: $wrapped requests repeated orders (set BENCH_RATE higher)")
[ "$(wrk_figure "$wout" non2xx)" = 0 ] ||
	notes+=("the warm-up had $(wrk_figure "$wout" non2xx) answers other than 2xx")

# Still answering after the load, and every 201 really stored.
st=$(curl -s -o "$work/orders.json" -w '%{http_code}' --max-time 10 "$bridge_url/orders?limit=1")
if [ "$st" = 200 ]; then
	notes+=("GET /orders?limit=1 after the run: 200 $(head -c 300 "$work/orders.json")")
else
	notes+=("GET /orders?limit=1 after the run answers $st: $(head -c 300 "$work/orders.json")")
fi
if command -v sqlite3 >/dev/null && [ -n "$run_prefix" ]; then
	stored=$(sqlite3 "file:$work/data/affiliate.db?mode=ro" \
		"SELECT count(*) FROM orders WHERE order_id LIKE '$run_prefix%'" 2>&1)
	# wrk stops with up to one request in flight per connection: those
	# orders are stored, but their 201 is never read.
	case $stored in
	'' | *[!0-9]*) notes+=("cannot count the run's orders in SQLite: $stored") ;;
	*)
		if [ "$stored" -ge "$created" ] && [ "$stored" -le $((created + CONNS)) ]; then
			notes+=("SQLite holds $stored orders of the run: the $created answered 201, plus $((stored - created)) in flight when wrk stopped (at most $CONNS)")
		else
			notes+=("SQLite holds $stored orders of the run, but $created were answered 201 (at most $CONNS more were in flight)")
		fi
		;;
	esac
fi
if ! kill -0 "$server_pid" 2>/dev/null || ! kill -0 "$bridge_pid" 2>/dev/null; then
	notes+=("the server or the bridge exited during the run (logs below)")
fi
# The order writer logs its batch sizes and a batch's statement and
# commit time when it stops: stop the server now to read them.
kill -TERM "$server_pid" 2>/dev/null
for i in $(seq 1 100); do
	kill -0 "$server_pid" 2>/dev/null || break
	sleep 0.05
done
batch_line=$(sed -n 's/.* orders: \([0-9]* in [0-9]* batches.*\)/\1/p' "$work/server.log" | tail -n 1)
for name in server bridge; do
	# The one bad signature sent by the check above is expected.
	# info and debug lines (one a request at info) are not news.
	n=$(grep -v 'UNAUTHENTICATED' "$work/$name.log" | grep -Evc '\] (info|debug) ')
	[ "$n" = 0 ] || notes+=("$name wrote $n warn or error lines; last: $(grep -v 'UNAUTHENTICATED' "$work/$name.log" | grep -Ev '\] (info|debug) ' | tail -n 1)")
done

echo
[ -z "${BENCH_SERVER_ARGS:-}" ] || echo "affiliate-server flags added: $BENCH_SERVER_ARGS"
printf 'BENCH_SECONDS=%s, %s cores; wrk -t%s -c%s; lines for %s orders/s; target >= %s orders/s\n' \
	"$SECS" "$(nproc)" "$THREADS" "$CONNS" "$RATE" "$TARGET_RATE"
printf '%-32s %11s %8s %8s %8s %9s %9s %6s %6s\n' "target" "requests/s" "p50 us" "p99 us" \
	"vs bare" "created" "duplicate" "other" "sockerr"
for row in "${rows[@]}"; do
	IFS='|' read -r name r p50 p99 c d o e <<<"$row"
	ratio=$(awk -v a="$r" -v b="$bare_rps" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
	printf '%-32s %11.0f %8d %8d %8s %9s %9s %6s %6s\n' "$name" "$r" "$p50" "$p99" \
		"$ratio" "$c" "$d" "$o" "$e"
done
ops=$(awk -v c="$created" -v s="$SECS" 'BEGIN { printf "%.0f", c / s }')
verdict=$(awk -v o="$ops" -v t="$TARGET_RATE" 'BEGIN { print (o >= t ? "meets" : "misses") }')
echo "new orders stored: $created in ${SECS} s = $ops orders/s ($verdict the target of $TARGET_RATE)"
[ -z "$batch_line" ] || echo "order writer (warm-up and run): $batch_line"
[ -z "$writer_run_line" ] || echo "$writer_run_line"
[ -z "$inflight_line" ] || echo "$inflight_line"
echo "$cpu_line"
for n in "${notes[@]}"; do
	echo "note: $n"
done

if [ "$PERF" = 1 ]; then
	for pid in "${extra_pids[@]}"; do
		wait "$pid" 2>/dev/null
	done
	extra_pids=()
	for name in server bridge; do
		echo
		echo "perf: affiliate-$name, samples by library (self %)"
		perf report -i "$work/perf-$name.data" --no-children --stdio \
			--sort dso --percent-limit 0.5 -g none 2>/dev/null |
			grep -v '^#' | grep -v '^$' | head -n 8
		echo "perf: affiliate-$name, top symbols (self %)"
		perf report -i "$work/perf-$name.data" --no-children --stdio \
			--sort dso,sym --percent-limit 1 -g none 2>/dev/null |
			grep -v '^#' | grep -v '^$' | head -n 15
		echo "perf: affiliate-$name, this project's functions and some system paths (children %, self %)"
		perf report -i "$work/perf-$name.data" --children --stdio \
			--sort dso,sym --percent-limit 2 -g none 2>/dev/null |
			grep -E "affiliate-$name +\[|\] (__GI_)?(fdatasync|__libc_pwrite|sqlite3WalFrames|__x64_sys_futex|schedule|tcp_sendmsg|tcp_recvmsg|nng_ctx_send|nng_ctx_recv|aff_client_invoke|mg_read|mg_write|sqlite3_step|sqlite3InvokeBusyHandler)( \(inlined\))?\$" |
			head -n 30
	done
fi
exit 0
