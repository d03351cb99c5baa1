# common.sh - what the benchmark scripts share; sourced after they set
# $work (their temporary folder). Processes started with start() (and any
# pid a script adds to extra_pids) are stopped on exit, Ctrl-C included.

pids=()
extra_pids=()

# stop_all: SIGTERM to what this script started, up to 3 s to exit, then
# SIGKILL.
stop_all() {
	local pid i alive
	for pid in "${extra_pids[@]}" "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for i in $(seq 1 60); do
		alive=0
		for pid in "${extra_pids[@]}" "${pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.05
	done
	for pid in "${extra_pids[@]}" "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	pids=()
	extra_pids=()
}

cleanup() {
	trap - EXIT INT TERM
	stop_all
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: logs kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

die() {
	echo "bench: $*" >&2
	exit 1
}

# free_port: prints a loopback TCP port that no socket uses, in any state,
# and that this script has not handed out yet. It is drawn below the
# kernel's ephemeral range: there, wrk's and the bridge's own outgoing
# connections (and their TIME-WAIT leftovers) take ports at random, and a
# listener's bind() to one of them fails.
used_ports=" "
eph_lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
case $eph_lo in '' | *[!0-9]*) eph_lo=32768 ;; esac
[ "$eph_lo" -gt 11024 ] || eph_lo=32768
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (eph_lo - 10000)))
		case $used_ports in *" $p "*) continue ;; esac
		if [ -z "$(ss -Htan "sport = :$p")" ]; then
			used_ports="$used_ports$p "
			echo "$p"
			return 0
		fi
	done
	return 1
}

# start NAME COMMAND...: runs COMMAND in the background, output in
# $work/NAME.log; its pid is remembered for cleanup.
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	last_pid=$!
}

# wait_port NAME PID PORT: waits up to 10 s for PORT to accept connections,
# and fails at once if PID exits first.
wait_port() {
	local name=$1 pid=$2 port=$3 i
	for i in $(seq 1 200); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$work/$name.log" >&2
			die "$name exited before listening on port $port"
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	tail -n 20 "$work/$name.log" >&2
	die "$name is not listening on port $port after 10 s"
}

# to_us VALUE: wrk's "812.00us", "1.23ms" or "1.50s" in whole microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000;
		else if (v ~ /m$/) m = 60000000; else if (v ~ /s$/) m = 1000000; else m = 1
		printf "%d", n * m + 0.5
	}'
}

# rss_kib PID FIELD: FIELD (Rss or Pss) of PID from /proc/PID/smaps_rollup,
# in KiB (Pss counts a shared page by its share: the honest figure when
# several processes map the same libraries).
rss_kib() {
	awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/smaps_rollup" 2>/dev/null
}

# hold_conns PORT N PATH: opens N keep-alive connections to 127.0.0.1:PORT
# from this shell, each making one GET PATH and reading its answer's head,
# and leaves them open (idle, as a browser's or a partner's pool leaves
# them) in the array held_fds. Returns 1 when a connection fails or does
# not answer 200 within 5 s. release_conns closes them.
held_fds=()
hold_conns() {
	local port=$1 n=$2 path=$3 i fd line status
	# All are opened and asked first, then read: the first must still be
	# within civetweb's keep-alive timeout when the last is measured.
	for ((i = 0; i < n; i++)); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$port" || return 1
		held_fds+=("$fd")
		printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&"$fd" || return 1
	done
	for fd in "${held_fds[@]}"; do
		IFS= read -r -t 5 -u "$fd" status || return 1
		case $status in "HTTP/1.1 200"*) ;; *) return 1 ;; esac
		while IFS= read -r -t 5 -u "$fd" line; do
			[ "${line%$'\r'}" = "" ] && break
		done
	done
	return 0
}
release_conns() {
	local fd
	for fd in "${held_fds[@]}"; do exec {fd}>&-; done
	held_fds=()
}

# wait_threads PID N: waits up to 5 s for PID to run N threads or more
# (civetweb may still be starting its workers when its port answers).
wait_threads() {
	local i
	for i in $(seq 1 100); do
		[ "$(ls "/proc/$1/task" 2>/dev/null | wc -l)" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
