/*
 * store_backends.h - what the store tests that run on both backends share
 * (tests/store/): a fresh database of either backend, and SQL run on it
 * from outside the store (an operator's sqlite3 or psql), so the same
 * test body proves the same answers on SQLite and on PostgreSQL.
 */
#ifndef STORE_BACKENDS_H
#define STORE_BACKENDS_H

#include "testutil_pg.h"

/* The PostgreSQL server of the test process (NULL: SQLite only). */
extern struct tu_pg *sb_pg;

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

#endif /* STORE_BACKENDS_H */
