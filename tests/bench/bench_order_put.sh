#!/usr/bin/env bash
# bench_order_put.sh - what schema step 14's earnings triggers cost an
# order on the durable webhook path (issue 18; webhook throughput is issue
# 15's): bench-order-put (order_put_cost.c) writes orders in group-commit
# batches, as the order writer does, then moves half of them to approved,
# on two copies of one fresh SQLite database, one with the triggers and
# one without, in alternating rounds (so the shared host's load weighs on
# both alike); then callgrind counts the instructions of one pass of each,
# which no neighbour's load moves. With ORDER_PUT_PG=1, the same rounds on
# a PostgreSQL server of its own (tests/pg.sh: fsync on), two databases.
#
# Usage: tests/bench/bench_order_put.sh BIN_DIR (`make bench-order-put`).
# ORDER_PUT_N (default 20000) orders a round, ORDER_PUT_BATCH (32) per
# transaction, ORDER_PUT_ROUNDS (3); ORDER_PUT_CALLGRIND_N (2000) orders
# counted by callgrind (0: skip it).
set -u
. "$(dirname "$0")/../clean_env.sh"

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BIN_DIR (the build's bin folder)" >&2
	exit 2
fi
BIN=$(cd "$1" && pwd)
N=${ORDER_PUT_N:-20000}
BATCH=${ORDER_PUT_BATCH:-32}
ROUNDS=${ORDER_PUT_ROUNDS:-3}
CG_N=${ORDER_PUT_CALLGRIND_N:-2000}
[ -x "$BIN/bench-order-put" ] || { echo "bench: $BIN/bench-order-put is missing; build first" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "bench: sqlite3 not found" >&2; exit 2; }

work=$(mktemp -d /tmp/affiliate-order-put-XXXXXX)
. "$(dirname "$0")/common.sh"

"$BIN/bench-order-put" "$work/with.db" 2 1 warm >/dev/null || die "the store did not open"
sqlite3 "$work/with.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
cp "$work/with.db" "$work/without.db"
sqlite3 "$work/without.db" 'DROP TRIGGER orders_earnings_insert;
	DROP TRIGGER orders_earnings_remove; DROP TRIGGER orders_earnings_move;' ||
	die "cannot drop the triggers"

declare -A sum
# rounds WITHOUT_DB WITH_DB TAG: the alternating rounds, sums in sum[TAG.*]
rounds() {
	local r v db line k val
	for r in $(seq 1 "$ROUNDS"); do
		for v in without with; do
			[ $v = without ] && db=$1 || db=$2
			echo "bench: $3 round $r, $v the triggers ..." >&2
			line=$("$BIN/bench-order-put" "$db" "$N" "$BATCH" "r$r") || die "$3 round $r ($v) failed"
			echo "bench:   $line" >&2
			for k in put_us put_cpu_us move_us move_cpu_us; do
				val=$(echo "$line" | tr ' ' '\n' | sed -n "s/^$k=//p")
				sum[$3.$v.$k]=$(awk -v a="${sum[$3.$v.$k]:-0}" -v b="$val" 'BEGIN { print a + b }')
			done
		done
	done
}
rounds "$work/without.db" "$work/with.db" sqlite
with_rows=$(sqlite3 "$work/with.db" 'SELECT count(*) FROM earnings_daily')

if [ "${ORDER_PUT_PG:-0}" = 1 ]; then
	. "$(dirname "$0")/../pg.sh"
	trap 'pg_stop; cleanup' EXIT
	pg_start || die "PostgreSQL did not start"
	for v in with without; do
		"$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "${PG_URI%/*}/postgres" \
			-c "CREATE DATABASE affiliate_$v" >/dev/null || die "CREATE DATABASE"
		"$BIN/bench-order-put" "${PG_URI%/*}/affiliate_$v" 2 1 warm >/dev/null ||
			die "the PostgreSQL store did not open"
	done
	"$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "${PG_URI%/*}/affiliate_without" \
		-c "DROP TRIGGER orders_earnings_insert ON orders;
		    DROP TRIGGER orders_earnings_move ON orders" || die "cannot drop the triggers"
	rounds "${PG_URI%/*}/affiliate_without" "${PG_URI%/*}/affiliate_with" postgresql
fi

cg() { # cg DB FUNCTION: instructions per order in FUNCTION's pass
	local out="$work/cg.$RANDOM"
	valgrind --tool=callgrind --callgrind-out-file="$out" \
		--toggle-collect="$2" "$BIN/bench-order-put" "$1" "$CG_N" "$BATCH" "cg$RANDOM" \
		>/dev/null 2>"$out.log" || return 1
	awk -v n="$3" '/^summary:/ { printf "%d", $2 / n }' "$out"
}
if [ "$CG_N" -gt 0 ] && command -v valgrind >/dev/null; then
	echo "bench: callgrind ..." >&2
	cg_put_without=$(cg "$work/without.db" put_loop "$CG_N")
	cg_put_with=$(cg "$work/with.db" put_loop "$CG_N")
	cg_move_without=$(cg "$work/without.db" move_loop $((CG_N / 2)))
	cg_move_with=$(cg "$work/with.db" move_loop $((CG_N / 2)))
fi

table() { # table TAG: the means of its rounds
	local k a b
	for k in put_us put_cpu_us move_us move_cpu_us; do
		a=$(awk -v s="${sum[$1.without.$k]}" -v r="$ROUNDS" 'BEGIN { printf "%.1f", s / r }')
		b=$(awk -v s="${sum[$1.with.$k]}" -v r="$ROUNDS" 'BEGIN { printf "%.1f", s / r }')
		printf '%-26s %12s %12s %8s\n' "$k (mean)" "$a" "$b" \
			"$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')"
	done
}
echo
printf 'order_put in batches of %s (%s rounds of %s orders, alternating; %s daily buckets at the end on SQLite); us per order\n' \
	"$BATCH" "$ROUNDS" "$N" "$with_rows"
printf '%-26s %12s %12s %8s\n' "SQLite" "without" "with" "ratio"
table sqlite
if [ -n "${cg_put_with:-}" ]; then
	printf '%-26s %12s %12s %8s\n' "new order, instructions" "$cg_put_without" "$cg_put_with" \
		"$(awk -v a="$cg_put_without" -v b="$cg_put_with" 'BEGIN { printf "%.2f", b / a }')"
	printf '%-26s %12s %12s %8s\n' "move, instructions" "$cg_move_without" "$cg_move_with" \
		"$(awk -v a="$cg_move_without" -v b="$cg_move_with" 'BEGIN { printf "%.2f", b / a }')"
fi
if [ "${ORDER_PUT_PG:-0}" = 1 ]; then
	printf '%-26s %12s %12s %8s\n' "PostgreSQL (client CPU)" "without" "with" "ratio"
	table postgresql
fi
exit 0
