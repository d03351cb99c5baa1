# pg.sh - sourced by shell tests: a real PostgreSQL server in a temporary
# folder on a free loopback port, as tests/testutil_pg.h does it for C
# tests (same settings: fsync and synchronous_commit on, password on
# loopback TCP, initdb --no-sync, an unprivileged user when run as root).
#   pg_start   sets PG_URI (postgresql://affiliate:PW@127.0.0.1:PORT/affiliate_test),
#              PG_DIR, PG_PORT, PG_PID, PG_START_MS; returns 1 (log on stderr) on failure
#   pg_stop    fast shutdown, then the folder removed; call it from the
#              script's EXIT trap, in the shell that called pg_start
# The postmaster is the script's child with SIGQUIT as its parent-death
# signal (setpriv --pdeathsig), so a script killed outright takes it along.
PG_BIN=${AFFILIATE_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_URI= PG_DIR= PG_PORT= PG_PID= PG_START_MS=

# free_port comes from tests/tap.sh: a shell test has sourced it already;
# sourced on its own (test_pg_harness.c does), this takes it from there.
declare -F free_port >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

pg_start() {
	local t0 pw u= as=(setpriv) i
	t0=$(date +%s%N)
	PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/affiliate-pg-XXXXXX") || return 1
	if [ "$(id -u)" = 0 ]; then # PostgreSQL refuses root
		u=postgres
		getent passwd postgres >/dev/null || u=nobody
		as+=(--reuid="$u" --regid="$(id -g "$u")" --clear-groups)
		chown "$u:$(id -g "$u")" "$PG_DIR"
	fi
	PG_PORT=$(free_port) || { pg_stop; return 1; }
	pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	(umask 077 && printf '%s\n' "$pw" >"$PG_DIR/pwfile")
	[ -z "$u" ] || chown "$u" "$PG_DIR/pwfile"
	if ! "${as[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U affiliate \
		--auth-local=trust --auth-host=scram-sha-256 --pwfile="$PG_DIR/pwfile" \
		-E UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1; then
		echo "pg: initdb failed:" >&2
		cat "$PG_DIR/initdb.log" >&2
		pg_stop
		return 1
	fi
	rm -f "$PG_DIR/pwfile"
	"${as[@]}" --pdeathsig QUIT "$PG_BIN/postgres" -D "$PG_DIR/data" \
		-c port="$PG_PORT" -c unix_socket_directories="$PG_DIR" \
		-c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on \
		-c full_page_writes=on -c shared_buffers=16MB -c logging_collector=off \
		>"$PG_DIR/postgres.log" 2>&1 &
	PG_PID=$!
	PG_URI="postgresql://affiliate:$pw@127.0.0.1:$PG_PORT/affiliate_test"
	for i in $(seq 1 600); do
		"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
		kill -0 "$PG_PID" 2>/dev/null || i=600
		[ "$i" = 600 ] && {
			echo "pg: the server did not come up on port $PG_PORT:" >&2
			cat "$PG_DIR/postgres.log" >&2
			pg_stop
			return 1
		}
		sleep 0.05
	done
	if ! "$PG_BIN/psql" -qAt "${PG_URI%/*}/postgres" -c "CREATE DATABASE affiliate_test" >&2; then
		pg_stop
		return 1
	fi
	PG_START_MS=$((($(date +%s%N) - t0) / 1000000))
}

pg_stop() {
	if [ -n "$PG_PID" ]; then
		kill -INT "$PG_PID" 2>/dev/null # fast shutdown, as pg_ctl stop -m fast
		wait "$PG_PID" 2>/dev/null
		PG_PID=
	fi
	[ -z "$PG_DIR" ] || rm -rf "$PG_DIR"
	PG_DIR=
}
