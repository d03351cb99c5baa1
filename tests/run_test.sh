#!/usr/bin/env bash
# run_test.sh - `make run` as an operator on a shared host runs it:
# scripts/run.sh with the server, the bridge and Redis moved to free ports
# (AFFILIATE_LISTEN, AFFILIATE_BRIDGE_LISTEN, AFFILIATE_REDIS_PORT) and a
# fresh data folder. The bridge must reach the moved server (not whatever
# answers on :5555), the hint must name the real addresses, the folder must
# be 0700, and Ctrl-C (SIGINT to the process group) must stop everything.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
SRC=${AFFILIATE_SOURCE_DIR:?}
work=$(mktemp -d /tmp/affiliate-run-XXXXXX)
run_pid=
. "$(dirname "$0")/tap.sh"

cleanup() {
	[ -n "$run_pid" ] && kill -9 -- "-$run_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

rpc_port=$(free_port)
http_port=$(free_port)
redis_port=$(free_port)

# Job control: run.sh gets a process group of its own (as in a terminal),
# and SIGINT reaches it (a background job of a script would ignore it).
set -m
AFFILIATE_LISTEN="tcp://127.0.0.1:$rpc_port" \
	AFFILIATE_BRIDGE_LISTEN="127.0.0.1:$http_port" \
	AFFILIATE_REDIS_PORT="$redis_port" \
	AFFILIATE_DATA_DIR="$work/data" \
	AFFILIATE_WORKERS=1 \
	AFFILIATE_JOBS_URL="ipc://$work/jobs.sock" \
	AFFILIATE_RESULTS_URL="ipc://$work/results.sock" \
	bash "$SRC/scripts/run.sh" "$BIN" >"$work/run.log" 2>&1 &
run_pid=$!
set +m
wait_for_seconds=30 wait_for "$work/run.log" "run: started"
check "run.sh starts the server and the bridge" \
	bash -c "grep -q 'server: ready' '$work/run.log' && grep -q 'bridge: listening' '$work/run.log'"

check "the hint names the moved server for the CLI" \
	grep -qxF "  AFFILIATE_URL=tcp://127.0.0.1:$rpc_port $BIN/affiliate advertisers list --editor 1" "$work/run.log"
check "and the bridge's real address" \
	grep -qxF "  curl 'http://127.0.0.1:$http_port/advertisers?editor_id=1'" "$work/run.log"
check "not the default one" bash -c "! grep -q 'localhost:8080' '$work/run.log'"
check "the data folder is 0700" [ "$(stat -c %a "$work/data" 2>/dev/null)" = 700 ]

code=$(curl -s -o "$work/body" -w '%{http_code}' "http://127.0.0.1:$http_port/advertisers/2?editor_id=1")
check "the bridge answers through the moved server (200)" [ "$code" = 200 ]
check "with the seed's advertiser" grep -q '"name":"Alpine Gear Co"' "$work/body"
# The request id shows that this stack's server answered, not another
# one on the default address.
code=$(curl -s -o "$work/body" -w '%{http_code}' -H 'X-Request-Id: run-test-moved' \
	"http://127.0.0.1:$http_port/advertisers/999")
check "an unknown advertiser through the bridge is 404" [ "$code" = 404 ]
for _ in $(seq 1 40); do grep -q "req=run-test-moved" "$work/run.log" && break; sleep 0.05; done
check "and this stack's server logged its request id" grep -q "req=run-test-moved rpc affiliate.v1.AdvertiserService/GetAdvertiser NOT_FOUND" "$work/run.log"
AFFILIATE_URL="tcp://127.0.0.1:$rpc_port" "$BIN/affiliate" health >"$work/out" 2>&1
check "the CLI line of the hint works" [ $? = 0 ]

# The processes of the stack (run.sh's group), before the stop.
procs=$(pgrep -g "$run_pid" | wc -l)
check "run.sh, redis, the server, a worker and the bridge run ($procs)" [ "$procs" = 5 ]

kill -INT -- "-$run_pid" # Ctrl-C
rc=
for _ in $(seq 1 200); do # 10 s
	kill -0 "$run_pid" 2>/dev/null || break
	sleep 0.05
done
if kill -0 "$run_pid" 2>/dev/null; then
	not_ok "run.sh stops within 10 s of SIGINT"
else
	wait "$run_pid"
	rc=$?
	ok "run.sh stops within 10 s of SIGINT"
fi
check "and exits 0 ($rc)" [ "$rc" = 0 ]
check "it said so" grep -q "run: stopping" "$work/run.log"
left=$(pgrep -g "$run_pid" | tr '\n' ' ')
check "no process of the stack is left ($left)" [ -z "$left" ]
run_pid=
check "the server stopped cleanly" grep -q "server: stopped" "$work/run.log"
check "nothing answers on the bridge's port any more" \
	bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$http_port) 2>/dev/null"
check "nor on Redis's" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$redis_port) 2>/dev/null"

tap_done
