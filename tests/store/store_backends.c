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

#include "aff_err.h"
#include "store.h"
#include "store_backends.h"
#include "testutil.h"

struct tu_pg *sb_pg;
int sb_cur_pg;
char *sb_tmp;

int
sb_setup(void **state)
{
	struct sb_fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	sb_fresh(sb_cur_pg, sb_tmp, f->db, sizeof(f->db));
	assert_int_equal(store_open(f->db, &f->s), AFF_OK);
	assert_string_equal(
	    f->s->ops->name, sb_cur_pg ? "postgresql" : "sqlite");
	aff_arena_init(&f->a);
	*state = f;
	return (0);
}

int
sb_teardown(void **state)
{
	struct sb_fixture *f = *state;

	aff_arena_fini(&f->a);
	store_close(f->s);
	free(f);
	return (0);
}

static int
group_sqlite(void **state)
{
	(void)state;
	sb_cur_pg = 0;
	return (0);
}

static int
group_pg(void **state)
{
	(void)state;
	sb_cur_pg = 1;
	return (sb_pg != NULL ? 0 : -1);
}

int
sb_run(const char *what, const struct CMUnitTest *tests, size_t n)
{
	static struct tu_pg pg;
	char name[64];
	int rv;

	assert_non_null(sb_tmp = tu_tmpdir());
	if (tu_pg_start(&pg) == 0)
		sb_pg = &pg;
	else
		fprintf(stderr, "# PostgreSQL did not start: the PostgreSQL "
		                "group fails\n");
	snprintf(name, sizeof(name), "%s on sqlite", what);
	rv = _cmocka_run_group_tests(name, tests, n, group_sqlite, NULL);
	snprintf(name, sizeof(name), "%s on postgresql", what);
	rv += _cmocka_run_group_tests(name, tests, n, group_pg, NULL);
	tu_pg_stop(&pg);
	sb_pg = NULL;
	tu_rmtree(sb_tmp);
	free(sb_tmp);
	sb_tmp = NULL;
	return (rv);
}

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

const struct store_job_policy sb_job_policy = {
	.visibility_ms = 60000,
	.max_attempts = 3,
	.backoff_ms = 60000,
	.backoff_max_ms = 600000,
};

Affiliate__V1__Application *
sb_app_new(
    struct sb_fixture *f, int64_t e, int64_t ad, const char *rid, int want)
{
	Affiliate__V1__Application *app = NULL;

	assert_int_equal(f->s->ops->application_create(
	                     f->s, e, ad, rid, &sb_job_policy, &f->a, &app),
	    want);
	assert_non_null(app);
	return (app);
}
