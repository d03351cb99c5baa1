#!/usr/bin/env bash
# clock_skew_test.sh - hosts whose wall clocks disagree: the real
# affiliate-server, and the affiliate CLI and affiliate-bridge run under
# Debian's faketime (libfaketime) 6 s behind and 6 s ahead of it. A call's
# timeout travels relative (timeout_ms) and each process counts it on its
# own monotonic clock, so every call succeeds. (With the absolute deadline
# the envelope used to carry, every call from the process 6 s behind was
# DEADLINE_EXCEEDED: 504 through the bridge.)
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-skew-XXXXXX)
url="ipc://$work/rpc.sock"
pids=()
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	backend_stop # before wait: PostgreSQL is a child too
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
# The servers' store: AFFILIATE_TEST_BACKEND (tests/backend.sh).
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }

if ! command -v faketime >/dev/null; then
	not_ok "faketime is installed (scripts/deps.sh)"
	tap_done
	exit
fi
libfaketime=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
if [ -z "$libfaketime" ]; then
	not_ok "libfaketime.so.1 is installed (faketime)"
	tap_done
	exit
fi
# Under `make asan` the binaries need ASan's runtime first in the list.
preload=$libfaketime
asan=$(ldd "$BIN/affiliate-bridge" 2>/dev/null | awk '/libasan/ { print $3 }')
[ -n "$asan" ] && preload="$asan $libfaketime"

wait_for() { # wait_for FILE PATTERN: up to 5 s
	for _ in $(seq 1 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

"$BIN/affiliate-server" --listen "$url" --data-dir "$work/data" --redis off \
	--jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
	>"$work/server.log" 2>&1 &
pids+=($!)
wait_for "$work/server.log" "server: ready" || { not_ok "server starts"; tap_done; exit; }

for skew in -6 +6; do
	# libfaketime (preloaded) fakes one process's clocks only: its wall
	# clock is $skew s off the server's.
	drift=$(( $(faketime -f "${skew}s" date +%s) - $(date +%s) ))
	check "faketime ${skew}s moves the wall clock ($drift s)" \
		[ "${drift#-}" -ge 5 ] && [ "${drift#-}" -le 7 ]

	LD_PRELOAD=$preload FAKETIME="${skew}s" "$BIN/affiliate" --url "$url" \
		--timeout 2000 advertisers get 2 >"$work/out" 2>"$work/err"
	rc=$?
	check "the CLI ${skew}s off the server's clock gets advertiser 2 (exit $rc)" \
		grep -q '"name": "Alpine Gear Co"' "$work/out"

	port=$(free_port)
	# libfaketime preloaded straight into the bridge (the faketime command
	# forks it as a child of its own, which a kill would not reach).
	LD_PRELOAD=$preload FAKETIME="${skew}s" "$BIN/affiliate-bridge" \
		--listen "127.0.0.1:$port" --server "$url" --timeout 2000 \
		>"$work/bridge$skew.log" 2>&1 &
	bpid=$!
	pids+=($bpid)
	wait_for "$work/bridge$skew.log" "bridge: listening" ||
		not_ok "the bridge under faketime ${skew}s starts"
	codes=""
	for path in / /advertisers/2 "/advertisers?editor_id=1" /applications /orders; do
		codes+="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path") "
	done
	check "a bridge ${skew}s off the server's clock answers 200 everywhere ($codes)" \
		[ "$codes" = "200 200 200 200 200 " ]
	body=$(curl -s -X POST -H 'Content-Type: application/json' \
		-d '{"advertiser_id":3,"editor_id":1}' -w ' %{http_code}' \
		"http://127.0.0.1:$port/applications")
	if [ "$skew" = -6 ]; then want=202; else want=409; fi
	check "and a write through it is applied once (${body##* }, want $want)" \
		[ "${body##* }" = "$want" ]
	kill -9 "$bpid" 2>/dev/null
	wait "$bpid" 2>/dev/null
done
check "the server ran no call as timed out" \
	bash -c "! grep -q DEADLINE_EXCEEDED '$work/server.log'"
tap_done
