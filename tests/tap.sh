# tap.sh - what the shell tests (cli_test.sh, keys_cli_test.sh, e2e.sh,
# run_test.sh, and the other *_test.sh) share, sourced: "ok"/"not ok"
# lines, their counts, the summary whose exit status is the test's,
# free_port and wait_for.
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $1"; }
check() { # check NAME COMMAND...: passes when COMMAND succeeds
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
tap_done() { # the summary line; fails when anything did
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
}
free_port() { # a loopback port nothing answers on, below the ephemeral range
	local p
	for _ in $(seq 1 50); do
		p=$(shuf -i 10000-30000 -n 1)
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	return 1
}
# wait_for FILE PATTERN: waits until a line of FILE (a process's log)
# matches PATTERN, up to $wait_for_seconds (default 5 s); on a timeout
# says so and prints FILE.
wait_for() {
	for _ in $(seq 1 $((${wait_for_seconds:-5} * 20))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "# timed out waiting for '$2' in $1" >&2
	cat "$1" >&2
	return 1
}
