#!/usr/bin/env bash
# valgrind.sh [BIN_DIR] - the e2e session (tests/e2e.sh) with
# affiliate-server, affiliate-bridge and affiliate-worker under valgrind
# memcheck, stopped at its end with SIGTERM. Fails on any memcheck error
# (invalid read or write, use of uninitialised memory, bad free, ...) or any
# "definitely lost" byte, in any of them; prints each one's leak summary.
#
# It puts a folder of wrappers first in AFFILIATE_BIN_DIR: each runs the
# real binary under valgrind with --error-exitcode, so e2e.sh's own check
# that a process exits 0 on SIGTERM also fails on a report; this script
# then reads every valgrind log too, because the server killed with -9 in
# the middle of the session never reaches an exit status.
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=$(cd "${1:-build/bin}" && pwd) || exit 2
SRC=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null || { echo "valgrind.sh: needs valgrind: apt-get install -y valgrind" >&2; exit 2; }
work=$(mktemp -d /tmp/affiliate-valgrind-XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
mkdir -p "$work/bin"

# Errors exit 99. Only definite leaks count as errors: "possibly lost" is
# what memcheck says of blocks reached through interior pointers (NNG's
# lists, civetweb's per-thread data) and "still reachable" of what a
# process holds at exit by design (OpenSSL's and SQLite's globals).
for prog in affiliate-server affiliate-bridge affiliate-worker; do
	cat >"$work/bin/$prog" <<-WRAP
	#!/bin/sh
	exec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \\
		--errors-for-leak-kinds=definite --error-exitcode=99 --track-origins=yes \\
		--num-callers=30 --suppressions=$SRC/tests/valgrind.supp \\
		--log-file=$work/$prog.%p.vg $BIN/$prog "\$@"
	WRAP
	chmod +x "$work/bin/$prog"
done
ln -s "$BIN/affiliate" "$work/bin/affiliate"

echo "valgrind: tests/e2e.sh with the server, bridge and worker under memcheck"
start=$(date +%s)
# The bridge's 512 civetweb threads take memcheck (which runs one thread
# at a time) longer to start than e2e waits; 32 exercise the same code.
AFFILIATE_BIN_DIR="$work/bin" E2E_TIMEOUT_SCALE=${E2E_TIMEOUT_SCALE:-12} \
	E2E_BRIDGE_THREADS=${E2E_BRIDGE_THREADS:-32} \
	bash "$SRC/tests/e2e.sh" >"$work/e2e.out" 2>&1
e2e_rc=$?
grep -E "^not ok|passed," "$work/e2e.out"

# Every log: its errors, its definite leaks, and whether it finished (the
# instance killed with -9 has no summary; its errors so far still count).
fail=0
[ "$e2e_rc" = 0 ] || { fail=1; echo "valgrind: the e2e session failed (exit $e2e_rc)"; }
printf '%-18s %-8s %-8s %-16s %s\n' process pid errors "definitely lost" "in use at exit"
for prog in affiliate-server affiliate-bridge affiliate-worker; do
	finished=0
	for log in "$work/$prog".*.vg; do
		[ -e "$log" ] || continue
		pid=${log%.vg}
		pid=${pid##*.}
		errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tr -d ,)
		lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d ,)
		inuse=$(sed -n 's/.*in use at exit: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d ,)
		if [ -z "$errors" ]; then
			# Killed before its summary: any error it printed still fails.
			n=$(grep -cE '^==[0-9]+== (Invalid |Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|Argument .* of function)' "$log")
			printf '%-18s %-8s %-8s %-16s %s\n' "$prog" "$pid" "$n" "(killed)" "-"
			[ "$n" = 0 ] || { fail=1; cat "$log"; }
			continue
		fi
		finished=1
		printf '%-18s %-8s %-8s %-16s %s\n' "$prog" "$pid" "$errors" "${lost:-0} bytes" "${inuse:-0} bytes"
		if [ "$errors" != 0 ] || [ "${lost:-0}" != 0 ]; then
			fail=1
			cat "$log"
		fi
	done
	[ "$finished" = 1 ] || { fail=1; echo "valgrind: no finished memcheck run of $prog"; }
done
echo "valgrind: $(($(date +%s) - start)) s"
if [ "$fail" = 0 ]; then
	echo "valgrind: no errors, no definitely lost bytes"
else
	echo "valgrind: FAILED"
	KEEP=1
fi
exit "$fail"
