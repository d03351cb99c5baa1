/*
 * testutil_db.h - the tests' database, on either store backend (issue 14).
 *
 * AFFILIATE_TEST_BACKEND picks the backend every server a test starts
 * uses: "sqlite" (the default, unset or empty) or "postgresql". A test
 * names its database by a locator, the string the server takes in --db /
 * AFFILIATE_DB: the path of a SQLite file, or the libpq URI of a
 * PostgreSQL database. Every helper here takes that locator, so a test
 * reads and writes the stored state the same way on both.
 *
 * On PostgreSQL one real server runs per test process (tests/testutil_pg.c:
 * initdb in a temporary folder, a free port, an unprivileged user when
 * root, fsync and synchronous_commit on), started by the first
 * tu_db_new() and stopped at exit. Each tu_db_new() hands out a database
 * no running server of the test uses and that holds nothing: one freed
 * before is emptied (its other sessions ended, every schema but the
 * system ones dropped, public made again: ~0.1 s), a new one is created
 * only when all are in use (CREATE DATABASE with fsync on takes 1-2 s
 * here), so tests stay as independent as with the fresh SQLite file each
 * gets.
 *
 * ctest registers the PostgreSQL variant of a test as <name>_pg with
 * AFFILIATE_TEST_BACKEND=postgresql and the label pg. When the build has
 * no PostgreSQL store (AFFILIATE_TEST_PG_STORE is not 1), such a process
 * prints why and exits 77 before main(), which ctest counts as skipped.
 */
#ifndef TESTUTIL_DB_H
#define TESTUTIL_DB_H

#include <stddef.h>

/* Nonzero when the servers of this test run on PostgreSQL. */
int tu_backend_pg(void);

/* "sqlite" or "postgresql", for messages. */
const char *tu_backend_name(void);

/*
 * A fresh, empty database for one server (or one stack that restarts its
 * server on the same data): its locator into buf. SQLite: dir/affiliate.db
 * (the file the server makes). PostgreSQL: a URI. Returns 0, or -1 (why on
 * stderr). Call it from the test's main thread (see testutil_pg.h).
 */
int tu_db_new(const char *dir, char *buf, size_t cap);

/* The test is done with db (its servers stopped): PostgreSQL may hand it
 * out again, emptied. Harmless for SQLite and for NULL or "". */
void tu_db_free(const char *db);

/* Runs one integer query on db (a connection of the test's own) and
 * returns the first row's first value: NULL and false read 0, true 1;
 * -1 when there is no row or the query failed. */
long long tu_sql_int(const char *db, const char *sql);

/* Runs statements on db; 0 or -1 (the error on stderr). */
int tu_sql_exec(const char *db, const char *sql);

/* Polls tu_sql_int(db, sql) until it equals want or timeout_ms passes;
 * returns the last value. */
long long tu_sql_wait(const char *db, const char *sql, long long want,
    int timeout_ms);

/* Calls fn(arg, value) with the first column of every row of sql, as
 * text (NULL for NULL); returns the number of rows, or -1. */
long tu_sql_each(const char *db, const char *sql,
    void (*fn)(void *arg, const char *value), void *arg);

/*
 * A backup of db while no server uses it (its servers stopped), restored
 * later over db with tu_db_restore(): what an operator's backup and
 * restore do. SQLite: a copy of the file, db.backup (the caller checks
 * that no WAL is left beside it). PostgreSQL: a database made from db as
 * its template (CREATE DATABASE ... TEMPLATE; sessions still on db are
 * ended first). The backup's locator into bak; 0 or -1.
 */
int tu_db_backup(const char *db, char *bak, size_t cap);

/* Puts the backup bak back as db (SQLite: the file copied over db and
 * db-wal removed; PostgreSQL: db dropped and made again from bak); no
 * server may use db. 0 or -1. */
int tu_db_restore(const char *db, const char *bak);

/*
 * Holds the database's write lock, as another writer would, until
 * tu_db_unlock(): readers go on, every writer waits. SQLite: BEGIN
 * IMMEDIATE on a connection of its own. PostgreSQL: every table of the
 * database locked IN EXCLUSIVE MODE in an open transaction (blocks
 * INSERT, UPDATE, DELETE and SELECT ... FOR UPDATE, not SELECT). NULL on
 * failure.
 */
struct tu_db_lock;
struct tu_db_lock *tu_db_lock(const char *db);
/* Commits and closes it; 0 or -1. */
int tu_db_unlock(struct tu_db_lock *l);

/*
 * In a cmocka test that is by nature SQLite's (the file's permissions,
 * its WAL, a copy of the .db file): on PostgreSQL, says why and skips it
 * (cmocka's skip(), reported as SKIPPED, not passed).
 */
#define TU_SQLITE_ONLY(why)                                               \
	do {                                                              \
		if (tu_backend_pg()) {                                    \
			print_message("# SKIP on PostgreSQL: %s\n", (why)); \
			skip();                                           \
		}                                                         \
	} while (0)

#endif /* TESTUTIL_DB_H */
