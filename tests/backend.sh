# backend.sh - sourced by the shell tests that start affiliate-server,
# after tap.sh: the store backend their servers use, picked as the C tests
# pick it (tests/testutil_db.h): AFFILIATE_TEST_BACKEND=sqlite (the
# default) or postgresql.
#   backend_check  exits 77 (skipped) on postgresql in a build without the
#                  PostgreSQL store, 1 on a backend name it does not know.
#   backend_start  backend_check, then: sqlite: nothing (each server's
#                  --data-dir holds its file). postgresql: starts the test's own PostgreSQL
#                  (tests/pg.sh) and exports AFFILIATE_DB with its
#                  database's URI, so every server the script starts (and
#                  `affiliate-server --create-admin-key`) uses that one
#                  fresh database, as they would share the fresh SQLite
#                  file of their --data-dir. Returns 1 when it did not
#                  start. Call it after clean_env.sh, which unsets
#                  AFFILIATE_DB.
#   backend_stop   stops that PostgreSQL; call it from the EXIT trap.
#   backend_db_new NAME  for a test whose servers are separate systems:
#                  prints the --db of another fresh database (sqlite:
#                  nothing, each --data-dir has its file; postgresql: a
#                  new database affiliate_NAME on the test's server).
#   backend_sql SQL  runs SQL on the servers' database from outside, as an
#                  operator's shell would (sqlite3 on
#                  $BACKEND_DATA_DIR/affiliate.db with a 5 s busy
#                  timeout, or psql), and prints the rows, columns
#                  separated by |; fails when the SQL does.
. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"

backend_pg() { [ "${AFFILIATE_TEST_BACKEND:-sqlite}" = postgresql ]; }

backend_check() {
	case ${AFFILIATE_TEST_BACKEND:-sqlite} in
	sqlite) return 0 ;;
	postgresql) ;;
	*)
		echo "AFFILIATE_TEST_BACKEND=$AFFILIATE_TEST_BACKEND: not a backend (sqlite, postgresql)" >&2
		exit 1
		;;
	esac
	if [ "${AFFILIATE_TEST_PG_STORE:-0}" != 1 ]; then
		echo "1..0 # SKIP the build has no PostgreSQL store (services/store/postgres/):" \
			"the server takes no postgresql:// --db, nothing to run on PostgreSQL"
		exit 77
	fi
}

backend_start() {
	backend_check
	backend_pg || return 0
	pg_start || return 1
	echo "# pg: PostgreSQL for this test on port $PG_PORT (start $PG_START_MS ms)"
	export AFFILIATE_DB=$PG_URI
}

backend_stop() {
	backend_pg && pg_stop
	return 0
}

backend_sql() {
	if backend_pg; then
		"$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "$PG_URI" -c "$1"
	else
		sqlite3 -bail -cmd ".timeout 5000" "${BACKEND_DATA_DIR:?}/affiliate.db" "$1"
	fi
}

backend_db_new() {
	backend_pg || return 0
	"$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "${PG_URI%/*}/postgres" \
		-c "CREATE DATABASE affiliate_$1" >&2 || return 1
	echo "${PG_URI%/*}/affiliate_$1"
}
