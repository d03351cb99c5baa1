#!/usr/bin/env bash
# pg_catalog_test.sh - a server on PostgreSQL keeps the catalog version
# in memory and follows changes by LISTEN/NOTIFY (store_pg_watch.c): the
# real affiliate-server with Redis (cached reads) and a bridge, a real
# PostgreSQL (tests/pg.sh), catalog changes made by psql behind its back.
# A cached read right after a change shows it; after the listener's
# session is ended by the database (pg_terminate_backend), a change made
# while nobody listens is shown at once and after the listener is back.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-pgcat-XXXXXX)
pids=()
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/pg.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	pg_stop
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

wait_count() { # wait_count FILE PATTERN N: up to 10 s for N matching lines
	for _ in $(seq 1 200); do
		[ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		sleep 0.05
	done
	echo "# timed out waiting for $3 x '$2' in $1" >&2
	cat "$1" >&2
	return 1
}

pg_start || { not_ok "PostgreSQL starts"; tap_done; exit 1; }
redis_port=$(free_port)
http=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
	--loglevel warning >"$work/redis.log" 2>&1 &
pids+=($!)
AFFILIATE_DB="$PG_URI" "$BIN/affiliate-server" --listen "ipc://$work/rpc.sock" \
	--data-dir "$work/data" --redis "127.0.0.1:$redis_port" --log-level debug \
	--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" >"$work/server.log" 2>&1 &
pids+=($!)
wait_count "$work/server.log" "server: ready" 1 || exit 1
# The bridge's own read cache off: this is the server's freshness, "at
# once"; the bridge's (within 0.5 s) is test_readcache's.
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http" --server "ipc://$work/rpc.sock" \
	--read-cache off >"$work/bridge.log" 2>&1 &
pids+=($!)
wait_count "$work/bridge.log" "bridge: listening" 1 || exit 1
wait_count "$work/server.log" "catalog listener: listening" 1 || exit 1
B="http://127.0.0.1:$http"

psql_do() { "$PG_BIN/psql" -qAt "$PG_URI" -c "$1"; }
name_is() { # name_is TEST NAME: a cached read (made twice) shows NAME
	local got
	got=$(curl -s "$B/advertisers/2?editor_id=1")
	case $got in
	*"\"name\":\"$2\""*) ok "$1" ;;
	*) not_ok "$1: $got" ;;
	esac
}

curl -s -o /dev/null "$B/advertisers/2?editor_id=1"
name_is "the seed's name, cached" "Alpine Gear Co"
n=$(redis-cli -p "$redis_port" --scan --pattern 'aff:rc:*' | wc -l)
[ "$n" -ge 1 ] && ok "the read is in the Redis cache ($n keys)" || not_ok "no cached read in Redis"

psql_do "UPDATE advertisers SET name = 'Renamed1' WHERE id = 2"
name_is "a change by psql is seen by the next cached read" Renamed1
name_is "and by the one after" Renamed1

# The listener's session ended by the database (as a failover or an
# idle-session killer would), waited for until it is gone, and in the
# same breath (one psql call, well before the listener can connect and
# LISTEN again) a change nobody is listening for.
listening=$(grep -c "catalog listener: listening" "$work/server.log")
t=$(psql_do "SELECT bool_and(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
	WHERE application_name = 'affiliate-server listener';
	UPDATE advertisers SET name = 'Renamed2' WHERE id = 2")
[ "$t" = t ] && ok "the listener's session ended" || not_ok "pg_terminate_backend: '$t'"
name_is "a change made while the listener is gone is seen at once" Renamed2
wait_count "$work/server.log" "catalog listener: listening" $((listening + 1)) ||
	not_ok "the listener is back"
name_is "and once the listener is back" Renamed2
psql_do "UPDATE advertisers SET name = 'Renamed3' WHERE id = 2"
name_is "a change after the listener came back is seen" Renamed3
psql_do "BEGIN; UPDATE advertisers SET name = 'Renamed4' WHERE id = 2;
	UPDATE advertisers SET category = 'Changed' WHERE id = 2; COMMIT"
name_is "a transaction of several changes is seen" Renamed4

tap_done
