#!/usr/bin/env bash
# bench_applications.sh - applications per second end to end, from
# POST /applications at the bridge to the application approved by a
# worker, with 1, 2 and 4 workers and no review delay.
#
# Usage: tests/bench/bench_applications.sh BIN_DIR
#   BIN_DIR holds affiliate-server, affiliate-bridge, affiliate-worker and
#   bench-app-load. BENCH_APPS (default 2000) is the number of applications
#   of each run.
#
# For each worker count it starts, on a fresh data dir and free loopback
# ports, affiliate-server (no Redis; jobs and results over ipc:// in the
# data dir), the bridge, and the workers (--review-delay 0); runs
# bench-app-load with 32 keep-alive connections, which seeds enough
# editors into the SQLite file, POSTs BENCH_APPS distinct applications,
# and waits (at most 120 s) until none is pending; stops them all; and
# finally prints one table. Everything it started is stopped on exit,
# Ctrl-C included. The load generator runs on the same cores as the
# servers, so compare rows of one run, not figures across machines.
# Each row's wait for the reviews is bounded (bench-app-load gives up
# after 120 s), and so is every other wait here.
set -u
. "$(dirname "$0")/../clean_env.sh"

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BIN_DIR (the build's bin folder)" >&2
	exit 2
fi
BIN=$(cd "$1" && pwd)
APPS=${BENCH_APPS:-2000}
# --log-level of every process: by default info, what `make run` gives.
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
case $LOG_LEVEL in
debug | info | warn | error) ;;
*) echo "bench: BENCH_LOG_LEVEL must be debug, info, warn or error" >&2; exit 2 ;;
esac
CONNS=32
case $APPS in
'' | *[!0-9]*) echo "bench: BENCH_APPS must be a whole number" >&2; exit 2 ;;
esac
if [ "$APPS" -lt 1 ] || [ "$APPS" -gt 100000 ]; then
	echo "bench: BENCH_APPS must be 1..100000" >&2
	exit 2
fi

for b in affiliate-server affiliate-bridge affiliate-worker bench-app-load; do
	if [ ! -x "$BIN/$b" ]; then
		echo "bench: $BIN/$b is missing; build first (cmake --build BUILD_DIR)" >&2
		exit 2
	fi
done
if ! command -v ss >/dev/null; then
	echo "bench: ss not found (apt-get install -y iproute2)" >&2
	exit 2
fi

work=$(mktemp -d /tmp/affiliate-appbench-XXXXXX)
. "$(dirname "$0")/common.sh"

# Results, one row each: workers, accepted/s, approved/s, accept s,
# approve s, p50 us, p99 us, errors.
rows=()
notes=()
status=0

# run WORKERS: one measurement on fresh processes and a fresh database.
run() {
	local w=$1 dir="$work/w$1" rpc_port bridge_port i out rc
	local acc acc_s app app_s p50 p99 errs approved
	mkdir -p "$dir"
	rpc_port=$(free_port) || die "no free port"
	bridge_port=$(free_port) || die "no free port"
	echo "bench: $w worker(s), $APPS applications ..." >&2

	start "${dir#"$work"/}/server" "$BIN/affiliate-server" \
		--listen "tcp://127.0.0.1:$rpc_port" --data-dir "$dir/data" \
		--redis off --jobs "ipc://$dir/jobs.sock" \
		--results "ipc://$dir/results.sock" --log-level "$LOG_LEVEL"
	wait_port "${dir#"$work"/}/server" "$last_pid" "$rpc_port"
	start "${dir#"$work"/}/bridge" "$BIN/affiliate-bridge" \
		--listen "127.0.0.1:$bridge_port" \
		--server "tcp://127.0.0.1:$rpc_port" --log-level "$LOG_LEVEL"
	wait_port "${dir#"$work"/}/bridge" "$last_pid" "$bridge_port"
	for i in $(seq 1 "$w"); do
		start "${dir#"$work"/}/worker-$i" "$BIN/affiliate-worker" \
			--jobs "ipc://$dir/jobs.sock" \
			--results "ipc://$dir/results.sock" \
			--data-dir "$dir/data" --review-delay 0 --log-level "$LOG_LEVEL"
	done
	# Workers dial in the background:
	# give them a moment, so the first jobs do not all go to one.
	sleep 0.3
	for i in $(seq 1 "$w"); do
		kill -0 "${pids[$((1 + i))]}" 2>/dev/null ||
			die "worker $i exited: $(tail -n 5 "$dir/worker-$i.log")"
	done

	# In the background, so that a signal to this script alone is handled
	# now (wait returns at once), not when the client is done.
	"$BIN/bench-app-load" "$dir/data/affiliate.db" "$bridge_port" \
		"$APPS" "$CONNS" >"$dir/load.out" 2>"$dir/load.err" &
	extra_pids=($!)
	wait "${extra_pids[0]}"
	rc=$?
	extra_pids=()
	out=$(cat "$dir/load.out")
	stop_all

	acc=$(echo "$out" | awk '$1 == "accepted_per_s" { print $2 }')
	acc_s=$(echo "$out" | awk '$1 == "accept_seconds" { print $2 }')
	app=$(echo "$out" | awk '$1 == "approved_per_s" { print $2 }')
	app_s=$(echo "$out" | awk '$1 == "approved_seconds" { print $2 }')
	p50=$(echo "$out" | awk '$1 == "p50_us" { print $2 }')
	p99=$(echo "$out" | awk '$1 == "p99_us" { print $2 }')
	errs=$(echo "$out" | awk '$1 == "errors" { print $2 }')
	approved=$(echo "$out" | awk '$1 == "approved" { print $2 }')
	if [ "$rc" -ne 0 ]; then
		status=1
		echo "$out" >&2
		cat "$dir/load.err" >&2
		for f in "$dir"/server.log "$dir"/bridge.log "$dir"/worker-*.log; do
			[ -s "$f" ] && { echo "--- $f" >&2; tail -n 10 "$f" >&2; }
		done
		notes+=("$w worker(s): bench-app-load failed (exit $rc; approved ${approved:-?} of $APPS)")
	fi
	if [ -z "$acc" ] || [ -z "$p50" ] || [ -z "$p99" ]; then
		die "bench-app-load gave no figures with $w worker(s)"
	fi
	rows+=("$w|$acc|${app:--}|$acc_s|${app_s:--}|$p50|$p99|${errs:-0}")
}

for w in 1 2 4; do
	run "$w"
done

echo
printf 'BENCH_APPS=%s, %s cores; bench-app-load, %s keep-alive connections; review delay 0; SQLite synchronous=FULL on %s\n' \
	"$APPS" "$(nproc)" "$CONNS" "$(df -T "$work" | awk 'NR == 2 { print $2 }')"
printf '%-8s %11s %11s %9s %10s %12s %12s %7s\n' "workers" "accepted/s" \
	"approved/s" "accept s" "approved s" "p50 POST us" "p99 POST us" "errors"
for row in "${rows[@]}"; do
	IFS='|' read -r w acc app acc_s app_s p50 p99 errs <<<"$row"
	printf '%-8s %11.0f %11s %9s %10s %12d %12d %7d\n' "$w" "$acc" \
		"$(awk -v v="$app" 'BEGIN { if (v == "-") print v; else printf "%.0f", v }')" \
		"$acc_s" "$app_s" "$p50" "$p99" "$errs"
done
echo "approved/s and approved s: from the first POST to none pending (polled every 10 ms)"
for n in "${notes[@]}"; do
	echo "note: $n"
done
exit "$status"
