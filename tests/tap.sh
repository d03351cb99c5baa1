# tap.sh - what the shell tests (cli_test.sh, keys_cli_test.sh, e2e.sh)
# share, sourced: "ok"/"not ok" lines, their counts, and the summary
# whose exit status is the test's.
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
