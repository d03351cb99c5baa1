/* store_backends.c - see store_backends.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "store_backends.h"

struct tu_pg *sb_pg;

void
sb_fresh(int pg, const char *dir, char *db, size_t cap)
{
	static int n;

	if (!pg) {
		snprintf(db, cap, "%s/test%d.db", dir, n++);
		return;
	}
	assert_non_null(sb_pg);
	snprintf(db, cap, "%s", sb_pg->uri);
	sb_sql(db, "SET client_min_messages = warning;"
	              " DROP SCHEMA public CASCADE; CREATE SCHEMA public");
}

int
sb_sql_rc(const char *db, const char *sql)
{
	if (store_is_postgres(db)) {
		PGconn *c = PQconnectdb(db);
		PGresult *r;
		int rc = -1;

		assert_int_equal(PQstatus(c), CONNECTION_OK);
		r = PQexec(c, sql);
		if (PQresultStatus(r) == PGRES_COMMAND_OK ||
		    PQresultStatus(r) == PGRES_TUPLES_OK)
			rc = 0;
		PQclear(r);
		PQfinish(c);
		return (rc);
	} else {
		sqlite3 *s;
		int rc;

		assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
		sqlite3_busy_timeout(s, 5000);
		assert_int_equal(sqlite3_exec(s, "PRAGMA foreign_keys = ON", NULL,
		                     NULL, NULL),
		    SQLITE_OK);
		rc = sqlite3_exec(s, sql, NULL, NULL, NULL);
		sqlite3_close(s);
		return (rc == SQLITE_OK ? 0 : -1);
	}
}

void
sb_sql(const char *db, const char *sql)
{
	if (sb_sql_rc(db, sql) != 0)
		fail_msg("SQL refused: %s", sql);
}

long long
sb_sql_int(const char *db, const char *sql)
{
	long long v = -1;

	if (store_is_postgres(db)) {
		PGconn *c = PQconnectdb(db);
		PGresult *r;

		assert_int_equal(PQstatus(c), CONNECTION_OK);
		r = PQexec(c, sql);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		else if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
	} else {
		sqlite3 *s;
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
		sqlite3_busy_timeout(s, 5000);
		assert_int_equal(
		    sqlite3_prepare_v2(s, sql, -1, &st, NULL), SQLITE_OK);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		sqlite3_close(s);
	}
	return (v);
}
