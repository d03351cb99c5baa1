/*
 * test_db_harness.c - the tests' database on either backend
 * (tests/testutil_db.c), checked on its own real PostgreSQL, no server
 * binary needed: each tu_db_new() hands out an empty database (what the
 * last user made is gone, its sessions too), a second one while the first
 * is in use, tu_sql_int reads values as SQLite would (booleans 0/1, NULL
 * 0, no row -1), tu_sql_each walks every row, a failed statement is -1,
 * tu_db_lock() stops writers, not readers, until tu_db_unlock(), and a
 * restored backup has lost what came after it. The SQLite side of the
 * same helpers is checked on a file.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "aff_util.h"
#include "testutil.h"

/* The rows the callback saw, joined by ",". */
static void
collect(void *arg, const char *value)
{
	char *buf = arg;

	if (buf[0] != '\0')
		strcat(buf, ",");
	strcat(buf, value != NULL ? value : "NULL");
}

/* A backup taken, a row added, the backup restored: the row is gone,
 * and the restore can be done again. No session may hold db. */
static void
check_backup(const char *db)
{
	char bak[600];

	assert_int_equal(tu_db_backup(db, bak, sizeof(bak)), 0);
	assert_string_not_equal(bak, db);
	assert_int_equal(tu_sql_exec(db, "INSERT INTO t (id, name) VALUES (20, 'b')"),
	    0);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM t"), 3);
	assert_int_equal(tu_db_restore(db, bak), 0);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM t"), 2);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM t WHERE id = 20"), 0);
	assert_int_equal(tu_db_restore(db, bak), 0);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM t"), 2);
}

/* What both backends must answer alike, on db. */
static void
check_sql(const char *db)
{
	char rows[64] = "";

	assert_int_equal(tu_sql_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY,"
	                                 " name TEXT, flag BOOLEAN)"),
	    0);
	assert_int_equal(tu_sql_exec(db,
	                     "INSERT INTO t (id, name, flag) VALUES (1, 'a', TRUE);"
	                     "INSERT INTO t (id, name, flag) VALUES (2, NULL, FALSE)"),
	    0);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM t"), 2);
	assert_int_equal(tu_sql_int(db, "SELECT flag FROM t WHERE id = 1"), 1);
	assert_int_equal(tu_sql_int(db, "SELECT flag FROM t WHERE id = 2"), 0);
	assert_int_equal(tu_sql_int(db, "SELECT name FROM t WHERE id = 2"), 0);
	assert_int_equal(tu_sql_int(db, "SELECT id FROM t WHERE id = 3"), -1);
	assert_int_equal(tu_sql_int(db, "SELECT nonsense FROM t"), -1);
	assert_int_equal(tu_sql_exec(db, "INSERT INTO t (id) VALUES (1)"), -1);
	assert_int_equal(tu_sql_each(db, "SELECT name FROM t ORDER BY id",
	                     collect, rows),
	    2);
	assert_string_equal(rows, "a,NULL");
	assert_int_equal(tu_sql_each(db, "SELECT nonsense FROM t", collect, rows),
	    -1);
	assert_int_equal(tu_sql_wait(db, "SELECT count(*) FROM t", 2, 100), 2);
}

struct writer {
	const char *db;
	int64_t done_ms;
	int rv;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;

	w->rv = tu_sql_exec(w->db, "INSERT INTO t (id, name) VALUES (10, 'w')");
	w->done_ms = aff_mono_ms();
	return (NULL);
}

/* A writer waits for the lock; a reader does not. The writer runs on a
 * connection of its own (tu_sql_* share one per process). */
static void
check_lock(const char *db)
{
	struct tu_db_lock *l;
	struct writer w = { 0 };
	pthread_t t;
	int64_t released;

	assert_non_null(l = tu_db_lock(db));
	w.db = db;
	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	tu_sleep_ms(300);
	assert_int_equal(w.done_ms, 0);
	released = aff_mono_ms();
	assert_int_equal(tu_db_unlock(l), 0);
	pthread_join(t, NULL);
	assert_int_equal(w.rv, 0);
	assert_true(w.done_ms >= released);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM t WHERE id = 10"),
	    1);
}

static void
test_sqlite_the_helpers_read_and_write_the_file(void **state)
{
	char *dir = tu_tmpdir(), db[600];

	(void)state;
	unsetenv("AFFILIATE_TEST_BACKEND");
	assert_int_equal(tu_db_new(dir, db, sizeof(db)), 0);
	assert_non_null(strstr(db, "/affiliate.db"));
	check_sql(db);
	check_backup(db);
	tu_db_free(db);
	tu_rmtree(dir);
	free(dir);
}

/*
 * The writer is another connection: on PostgreSQL tu_sql_* share one per
 * process, held while a statement runs, so the writer's wait would hold
 * the reader out too. The reader here goes through libpq directly.
 */
static void
test_postgresql_each_start_gets_an_empty_database(void **state)
{
	char a[600], b[600], a2[600];
	PGconn *c;
	PGresult *r;

	(void)state;
	setenv("AFFILIATE_TEST_BACKEND", "postgresql", 1);
	assert_int_equal(tu_db_new(NULL, a, sizeof(a)), 0);
	assert_non_null(strstr(a, "postgresql://"));
	check_sql(a);
	/* A second start while the first runs: another database. */
	assert_int_equal(tu_db_new(NULL, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(tu_sql_int(b, "SELECT count(*) FROM pg_tables WHERE"
	                               " schemaname = 'public'"),
	    0);
	check_sql(b);
	/* Freed, a is handed out again: empty, with what was made in it,
	 * in public or in a schema of its own, and its sessions gone. */
	assert_int_equal(tu_sql_exec(a, "CREATE SCHEMA other;"
	                                "CREATE TABLE other.x (i INTEGER)"),
	    0);
	c = PQconnectdb(a);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	tu_db_free(a);
	assert_int_equal(tu_db_new(NULL, a2, sizeof(a2)), 0);
	assert_string_equal(a2, a);
	assert_int_equal(tu_sql_int(a2, "SELECT count(*) FROM pg_tables WHERE"
	                                " schemaname NOT IN ('pg_catalog',"
	                                " 'information_schema')"),
	    0);
	assert_int_equal(tu_sql_int(a2, "SELECT count(*) FROM pg_namespace"
	                                " WHERE nspname = 'public'"),
	    1);
	r = PQexec(c, "SELECT 1");
	assert_int_not_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	PQfinish(c);
	check_sql(a2);
	/* Readers go on under the lock: asked on a connection of their own. */
	{
		struct tu_db_lock *l = tu_db_lock(a2);
		PGconn *rd = PQconnectdb(a2);

		assert_non_null(l);
		r = PQexec(rd, "SELECT count(*) FROM t");
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_string_equal(PQgetvalue(r, 0, 0), "2");
		PQclear(r);
		PQfinish(rd);
		assert_int_equal(tu_db_unlock(l), 0);
	}
	check_lock(a2);
	check_backup(b);
	tu_db_free(a2);
	tu_db_free(b);
	unsetenv("AFFILIATE_TEST_BACKEND");
}

static void
test_sqlite_the_lock_stops_writers(void **state)
{
	char *dir = tu_tmpdir(), db[600];

	(void)state;
	assert_int_equal(tu_db_new(dir, db, sizeof(db)), 0);
	assert_int_equal(tu_sql_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY,"
	                                 " name TEXT)"),
	    0);
	check_lock(db);
	tu_rmtree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlite_the_helpers_read_and_write_the_file),
		cmocka_unit_test(test_sqlite_the_lock_stops_writers),
		cmocka_unit_test(test_postgresql_each_start_gets_an_empty_database),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
