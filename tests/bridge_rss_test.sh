#!/usr/bin/env bash
# bridge_rss_test.sh - the bridge's memory per connection (issue 15): with
# its default 512 threads (the slow-client protection in README "The HTTP
# edge" counts on them) and 256 idle keep-alive connections held open, each
# having made one GET /, its resident set stays within 32 MiB. A real
# server, Redis and bridge on free ports; the connections are raw sockets
# from this shell (tests/bench/common.sh, which `make bench` uses too).
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-rss-XXXXXX)
. "$(dirname "$0")/bench/common.sh"
bound_kib=${BRIDGE_RSS_BOUND_KIB:-$((32 * 1024))}

redis_port=$(free_port) || die "no free port"
rpc_port=$(free_port) || die "no free port"
http_port=$(free_port) || die "no free port"
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
	--appendonly no --dir "$work"
wait_port redis "$last_pid" "$redis_port"
start server "$BIN/affiliate-server" --listen "tcp://127.0.0.1:$rpc_port" \
	--data-dir "$work/data" --redis "127.0.0.1:$redis_port" \
	--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock"
wait_port server "$last_pid" "$rpc_port"
start bridge "$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" \
	--server "tcp://127.0.0.1:$rpc_port"
bridge_pid=$last_pid
wait_port bridge "$bridge_pid" "$http_port"

wait_threads "$bridge_pid" 512
threads=$(ls "/proc/$bridge_pid/task" | wc -l)
[ "$threads" -ge 512 ] || die "the bridge runs $threads threads, not 512 or more"
hold_conns "$http_port" 256 / ||
	die "the bridge did not answer 256 keep-alive connections with 200 (${#held_fds[@]} opened)"
est=$(ss -Htn state established "( sport = :$http_port )" | wc -l)
rss=$(rss_kib "$bridge_pid" Rss)
pss=$(rss_kib "$bridge_pid" Pss)
release_conns
echo "bridge: $threads threads, $est connections established, RSS $rss KiB, PSS $pss KiB (bound $bound_kib KiB)"
[ "$est" -ge 256 ] || die "only $est of 256 connections were still open when measured"
[ -n "$rss" ] && [ "$rss" -le "$bound_kib" ] ||
	die "the bridge's RSS at 256 idle connections is ${rss:-?} KiB, over $bound_kib KiB"
echo "ok: bridge RSS at 256 idle keep-alive connections within 32 MiB"
