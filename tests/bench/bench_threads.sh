#!/usr/bin/env bash
# bench_threads.sh - where affiliate-server's CPU goes per RPC call, by
# thread name: NNG's own threads (nng:task, nng:poll:epoll: the REP
# socket's receive and send machinery) against ours (aff:handler: decode,
# dispatch, the store and cache, encode). Written to judge whether the
# server answering SP REQ/REP on its own sockets could pay (issue 15): what
# it can save is at most what NNG's threads spend, less the reads, writes
# and epoll calls it would do itself.
#
# Usage: tests/bench/bench_threads.sh BIN_DIR [SECS [CLIENTS]]
#   BIN_DIR holds affiliate-server, bench-bare-nng-echo and bench-rpc-load.
#   SECS (default 4) is the measurement, after a 1 s warm-up; CLIENTS
#   (default 32) the load's threads. With BENCH_ECHO=1 it measures the bare
#   NNG echo server instead: NNG's REP cost per call with no work at all.
#
# The load is a cached GetAdvertiser (id 2 for editor 1), as in cg.sh. CPU
# is utime+stime of each thread from /proc/PID/task/*/stat before and after
# the load, divided by the calls answered; context switches the same way.
# Redis and the server run on free loopback ports and are stopped on exit.
set -u
BIN=$(cd "$1" && pwd) SECS=${2:-4} NC=${3:-32}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/bench-threads-XXXXXX)
rpid='' spid=''
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cd "$here/proto" || exit 1
payload=$(printf 'id: 2 editor_id: 1' | protoc --encode=affiliate.v1.GetAdvertiserRequest affiliate/v1/affiliate.proto | od -An -tx1 -v | tr -d ' \n' | sed 's/../\\x&/g')
printf 'service: "affiliate.v1.AdvertiserService" method: "GetAdvertiser" request_id: "bench" payload: "%s"' "$payload" |
	protoc --encode=affiliate.v1.RequestEnvelope affiliate/v1/rpc.proto >"$work/request.bin"
rp=$(free_port) sp=$(free_port)
if [ "${BENCH_ECHO:-0}" = 1 ]; then
	"$BIN/bench-bare-nng-echo" "tcp://127.0.0.1:$sp" >"$work/server.log" 2>&1 & spid=$!
else
	redis-server --port "$rp" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 & rpid=$!
	sleep 0.3
	"$BIN/affiliate-server" --listen "tcp://127.0.0.1:$sp" --data-dir "$work/data" \
		--redis "127.0.0.1:$rp" --jobs "ipc://$work/j.sock" --results "ipc://$work/r.sock" \
		--log-level warn >"$work/server.log" 2>&1 & spid=$!
fi
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$sp") 2>/dev/null && break; sleep 0.2; done
"$BIN/bench-rpc-load" "tcp://127.0.0.1:$sp" "$work/request.bin" "$NC" 1 >/dev/null 2>&1

# One line per thread: tid comm cpu_ticks context_switches.
snap() {
	local t s
	for t in /proc/"$spid"/task/*; do
		s=$(cat "$t/stat") || continue
		s=${s##*) }
		set -- $s
		echo "$(basename "$t") $(cat "$t/comm") $((${12} + ${13})) $(awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v+n}' "$t/status")"
	done | sort
}
snap >"$work/a"
out=$("$BIN/bench-rpc-load" "tcp://127.0.0.1:$sp" "$work/request.bin" "$NC" "$SECS" 2>&1)
snap >"$work/b"
cps=$(echo "$out" | awk '$1=="calls_per_s"{print $2}')
[ -n "$cps" ] || { echo "bench_threads: no result from bench-rpc-load: $out" >&2; exit 1; }
join "$work/a" "$work/b" | awk -v c="$cps" -v s="$SECS" -v hz="$(getconf CLK_TCK)" '
	{ n = $2; cpu[n] += $6 - $3; cs[n] += $7 - $4; tot += $6 - $3; tcs += $7 - $4 }
	END {
		calls = c * s
		printf "calls/s %.0f\n", c
		for (n in cpu)
			if (cpu[n] > 0)
				printf "  %-16s cpu_us/call %6.1f  ctxsw/call %5.2f\n", n, cpu[n] * 1e6 / hz / calls, cs[n] / calls
		printf "  %-16s cpu_us/call %6.1f  ctxsw/call %5.2f\n", "TOTAL", tot * 1e6 / hz / calls, tcs / calls
	}'
