#!/usr/bin/env bash
# run.sh - `make run`: Redis, affiliate-server and, when they are built,
# the workers and the bridge, all in the foreground. Ctrl-C stops them all.
#
# Settings come from the AFFILIATE_* environment variables (see README);
# data lives in ./data unless AFFILIATE_DATA_DIR says otherwise. The
# processes must find each other wherever the settings move them: the
# bridge dials AFFILIATE_URL, so when only AFFILIATE_LISTEN is set it is
# derived from it (otherwise the bridge would dial the default :5555 and,
# on a shared host, silently talk to another stack).
set -u
bin=${1:-build/bin}
data=${AFFILIATE_DATA_DIR:-data}
redis_port=${AFFILIATE_REDIS_PORT:-6379}
workers=${AFFILIATE_WORKERS:-2}
listen=${AFFILIATE_LISTEN:-tcp://127.0.0.1:5555}
bridge_listen=${AFFILIATE_BRIDGE_LISTEN:-127.0.0.1:8080}
pids=()

# The data folder holds the database and the webhook secret: this user's
# only (0700), as the server makes it; one left readable by an older
# run.sh is made private too.
if [ ! -d "$data" ]; then
	(umask 077 && mkdir -p "$data") || exit 1
elif [ -n "$(find "$data" -maxdepth 0 -perm /077)" ]; then
	chmod go-rwx "$data" || exit 1
	echo "run: $data was readable by others; now 0700"
fi

stop() {
	trap - INT TERM EXIT
	echo "run: stopping"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait
	exit "${1:-0}"
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
export AFFILIATE_URL=${AFFILIATE_URL:-$listen}

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

# What to type in another terminal, with the addresses really in use.
cli="$bin/affiliate"
[ "$AFFILIATE_URL" = tcp://127.0.0.1:5555 ] || cli="AFFILIATE_URL=$AFFILIATE_URL $cli"
case $bridge_listen in
*[!0-9]*) http=$bridge_listen ;;   # ADDR:PORT
*) http=127.0.0.1:$bridge_listen ;; # a port alone: every address
esac
case $http in 0.0.0.0:* | \[::\]:*) http=127.0.0.1:${http##*:} ;; esac
# "started" means serving: wait (bounded) until the bridge's /readyz says
# the server, its store and Redis answer, so the first request typed (or
# sent by a test) does not meet a server still opening its database.
if [ -x "$bin/affiliate-bridge" ] && command -v curl >/dev/null; then
	ready=
	for _ in $(seq 1 300); do # 30 s
		for p in "${pids[@]}"; do
			kill -0 "$p" 2>/dev/null || { echo "run: a process exited while starting"; stop 1; }
		done
		if curl -fs -o /dev/null --max-time 1 "http://$http/readyz"; then
			ready=1
			break
		fi
		sleep 0.1
	done
	[ -n "$ready" ] || echo "run: not ready after 30 s: $(curl -s --max-time 1 "http://$http/readyz")"
fi
echo "run: started (${#pids[@]} processes); try:"
echo "  $cli advertisers list --editor 1"
[ -x "$bin/affiliate-bridge" ] && echo "  curl 'http://$http/advertisers?editor_id=1'"
# Any process dying takes the others down: a half-running stack misleads.
wait -n
echo "run: a process exited"
stop
