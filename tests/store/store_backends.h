/*
 * store_backends.h - what the store tests that run on both backends share
 * (tests/store/): a fresh database of either backend, and SQL run on it
 * from outside the store (an operator's sqlite3 or psql), so the same
 * test body proves the same answers on SQLite and on PostgreSQL.
 */
#ifndef STORE_BACKENDS_H
#define STORE_BACKENDS_H

#include <stddef.h>
#include <stdint.h>

#include "aff_arena.h"
#include "store.h"
#include "testutil_pg.h"

struct CMUnitTest;

/* The PostgreSQL server of the test process (NULL: SQLite only). */
extern struct tu_pg *sb_pg;

/* The group running (0 SQLite, 1 PostgreSQL) and the folder of its
 * SQLite files, while sb_run runs the tests. */
extern int sb_cur_pg;
extern char *sb_tmp;

/* A test's store: a fresh database of the group's backend, opened
 * (sb_setup, which also checks the backend is the group's), and an arena
 * for its answers; sb_teardown closes it. */
struct sb_fixture {
	char db[512];
	store *s;
	aff_arena a;
};
int sb_setup(void **state);
int sb_teardown(void **state);
#define SB_TEST(fn) cmocka_unit_test_setup_teardown(fn, sb_setup, sb_teardown)

/* Runs the n tests once on SQLite ("WHAT on sqlite") and once on a
 * PostgreSQL server it starts ("WHAT on postgresql", which fails when the
 * server does not start); the number of failures. */
int sb_run(const char *what, const struct CMUnitTest *tests, size_t n);

/* Makes db name a fresh, empty database: a new SQLite file in dir, or
 * the PostgreSQL test database emptied (every table dropped). */
void sb_fresh(int pg, const char *dir, char *db, size_t cap);

/* Runs SQL from outside the store: 0, or -1 when the database refused
 * it. */
int sb_sql_rc(const char *db, const char *sql);
/* The same, asserting success. */
void sb_sql(const char *db, const char *sql);
/* The first value of the first row as an integer (-1: no row). */
long long sb_sql_int(const char *db, const char *sql);

/* The job policy the tests' applications and jobs are made with: a
 * 60 s lease, 3 attempts, backoff from 60 s to 10 min. */
extern const struct store_job_policy sb_job_policy;

/* Makes the application of editor e to advertiser ad (request id rid,
 * NULL for none) with the answer want; the application, asserted made. */
Affiliate__V1__Application *sb_app_new(
    struct sb_fixture *f, int64_t e, int64_t ad, const char *rid, int want);

#endif /* STORE_BACKENDS_H */
