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
