#!/usr/bin/env bash
# run.sh - `make run`: Redis, affiliate-server and, when they are built,
# the workers and the bridge, all in the foreground. Ctrl-C stops them all.
#
# Settings come from the AFFILIATE_* environment variables (see README);
# data lives in ./data unless AFFILIATE_DATA_DIR says otherwise.
set -u
bin=${1:-build/bin}
data=${AFFILIATE_DATA_DIR:-data}
redis_port=${AFFILIATE_REDIS_PORT:-6379}
workers=${AFFILIATE_WORKERS:-2}
mkdir -p "$data"
pids=()

stop() {
	trap - INT TERM EXIT
	echo "run: stopping"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait
	exit 0
}
trap stop INT TERM EXIT

if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
	echo "run: using the Redis already on port $redis_port"
else
	redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
		--appendonly no --loglevel warning &
	pids+=($!)
fi
export AFFILIATE_REDIS=${AFFILIATE_REDIS:-127.0.0.1:$redis_port}
export AFFILIATE_DATA_DIR=$data

"$bin/affiliate-server" &
pids+=($!)

if [ -x "$bin/affiliate-worker" ]; then
	for _ in $(seq 1 "$workers"); do
		"$bin/affiliate-worker" &
		pids+=($!)
	done
fi
if [ -x "$bin/affiliate-bridge" ]; then
	"$bin/affiliate-bridge" &
	pids+=($!)
fi

echo "run: started (${#pids[@]} processes); try:"
echo "  $bin/affiliate advertisers list --editor 1"
[ -x "$bin/affiliate-bridge" ] && echo "  curl 'localhost:8080/advertisers?editor_id=1'"
# Any process dying takes the others down: a half-running stack misleads.
wait -n
echo "run: a process exited"
stop
