/* testutil_db.c - see testutil_db.h. */
#include "testutil_db.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "testutil.h"
#include "testutil_pg.h"

#define PG_DATABASES_MAX 16

static int
backend_read(void)
{
	const char *b = getenv("AFFILIATE_TEST_BACKEND");

	if (b == NULL || *b == '\0' || strcmp(b, "sqlite") == 0)
		return (0);
	if (strcmp(b, "postgresql") == 0)
		return (1);
	return (-1);
}

/*
 * Before main(), in every test executable: a PostgreSQL variant of a test
 * in a build without the PostgreSQL store says so and counts as skipped
 * (ctest's SKIP_RETURN_CODE 77), rather than failing or passing on SQLite.
 * A backend name this harness does not know is a mistake in the caller's
 * environment: it fails.
 */
__attribute__((constructor)) static void
backend_check_at_start(void)
{
	const char *have = getenv("AFFILIATE_TEST_PG_STORE");

	switch (backend_read()) {
	case 0:
		return;
	case 1:
		if (have != NULL && strcmp(have, "1") == 0)
			return;
		printf("1..0 # SKIP the build has no PostgreSQL store "
		       "(services/store/postgres/): the server takes no "
		       "postgresql:// --db, nothing to run on PostgreSQL\n");
		fflush(stdout);
		_exit(77);
	default:
		fprintf(stderr, "AFFILIATE_TEST_BACKEND=%s: not a backend "
		    "(sqlite, postgresql)\n", getenv("AFFILIATE_TEST_BACKEND"));
		_exit(1);
	}
}

int
tu_backend_pg(void)
{
	return (backend_read() == 1);
}

const char *
tu_backend_name(void)
{
	return (tu_backend_pg() ? "postgresql" : "sqlite");
}

/* Whether db names a PostgreSQL database (a URI or a key=value
 * conninfo), not a SQLite file: the helpers follow the locator, so a test
 * may hold one of each. */
static int
db_is_pg(const char *db)
{
	return (strncmp(db, "postgresql://", 13) == 0 ||
	    strncmp(db, "postgres://", 11) == 0 || strchr(db, '=') != NULL);
}

/* ---- PostgreSQL: the test's server and its databases ---- */

/*
 * The server (static: its exit path keeps the address), the databases
 * handed out, and one connection of the test's own for tu_sql_*, kept
 * open between queries: a scram-sha-256 login per poll of tu_sql_wait()
 * would cost more than the query. The lock: tests call tu_sql_* from
 * several threads.
 */
static struct tu_pg pg;
static int pg_up;
static struct {
	char uri[300];
	int in_use;
} dbs[PG_DATABASES_MAX];
static int n_dbs;
static pthread_mutex_t conn_mtx = PTHREAD_MUTEX_INITIALIZER;
static PGconn *conn;
static char conn_uri[300];

/* The connection to uri, opened (or opened again) when needed; called
 * with conn_mtx held. NULL when it cannot connect (why on stderr). */
static PGconn *
conn_get(const char *uri)
{
	if (conn != NULL &&
	    (strcmp(conn_uri, uri) != 0 || PQstatus(conn) != CONNECTION_OK)) {
		PQfinish(conn);
		conn = NULL;
	}
	if (conn == NULL) {
		conn = PQconnectdb(uri);
		if (PQstatus(conn) != CONNECTION_OK) {
			fprintf(stderr, "# pg: connect: %s", PQerrorMessage(conn));
			PQfinish(conn);
			conn = NULL;
			return (NULL);
		}
		snprintf(conn_uri, sizeof(conn_uri), "%s", uri);
		/* Quiet: DROP ... CASCADE and friends speak at NOTICE. */
		PQclear(PQexec(conn, "SET client_min_messages = warning"));
	}
	return (conn);
}

/* Runs sql on uri; the result (caller PQclear()s it), NULL on failure
 * (printed). A connection the server dropped (a restart, a database
 * emptied under it) is opened again once. Called with conn_mtx held. */
static PGresult *
pg_run(const char *uri, const char *sql)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		PGconn *c = conn_get(uri);
		PGresult *r;
		ExecStatusType st;

		if (c == NULL)
			return (NULL);
		r = PQexec(c, sql);
		st = PQresultStatus(r);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			return (r);
		if (PQstatus(c) != CONNECTION_OK && attempt == 0) {
			PQclear(r);
			continue;
		}
		fprintf(stderr, "# pg: %s: %s", sql, PQerrorMessage(c));
		PQclear(r);
		return (NULL);
	}
	return (NULL);
}

/* Ends every other session on uri's database and drops every schema but
 * the system ones, then makes public again: what a new database holds. */
static int
pg_db_empty(const char *uri)
{
	PGresult *r;

	pthread_mutex_lock(&conn_mtx);
	r = pg_run(uri,
	    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	    " WHERE datname = current_database() AND pid <> pg_backend_pid();"
	    "DO $$DECLARE s name; BEGIN"
	    " FOR s IN SELECT nspname FROM pg_namespace"
	    "  WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
	    " LOOP EXECUTE format('DROP SCHEMA %I CASCADE', s); END LOOP;"
	    " END$$;"
	    "CREATE SCHEMA public;");
	PQclear(r);
	pthread_mutex_unlock(&conn_mtx);
	return (r != NULL ? 0 : -1);
}

static int
pg_db_create(char *uri, size_t cap)
{
	char sql[128], base[300], *slash;
	PGresult *r;
	int n = n_dbs;

	snprintf(base, sizeof(base), "%s", pg.admin);
	if ((slash = strrchr(base, '/')) == NULL)
		return (-1);
	*slash = '\0';
	snprintf(sql, sizeof(sql), "CREATE DATABASE affiliate_test_%d", n);
	pthread_mutex_lock(&conn_mtx);
	r = pg_run(pg.admin, sql);
	PQclear(r);
	pthread_mutex_unlock(&conn_mtx);
	if (r == NULL)
		return (-1);
	return ((size_t)snprintf(uri, cap, "%s/affiliate_test_%d", base, n) < cap
	        ? 0
	        : -1);
}

static int
pg_db_new(char *buf, size_t cap)
{
	if (!pg_up) {
		if (tu_pg_start(&pg) != 0) {
			fprintf(stderr, "# pg: the test's PostgreSQL did not "
			    "start\n");
			return (-1);
		}
		pg_up = 1;
		/* tu_pg_start made affiliate_test: the first one, empty. */
		snprintf(dbs[0].uri, sizeof(dbs[0].uri), "%s", pg.uri);
		n_dbs = 1;
		fprintf(stderr, "# pg: PostgreSQL for this test on port %d "
		    "(start %.0f ms)\n", pg.port,
		    pg.initdb_ms + pg.ready_ms + pg.createdb_ms);
	} else {
		int i;

		for (i = 0; i < n_dbs && dbs[i].in_use; i++)
			;
		if (i == n_dbs) {
			if (n_dbs == PG_DATABASES_MAX ||
			    pg_db_create(dbs[i].uri, sizeof(dbs[i].uri)) != 0)
				return (-1);
			n_dbs++;
		} else if (pg_db_empty(dbs[i].uri) != 0)
			return (-1);
	}
	for (int i = 0; i < n_dbs; i++)
		if (!dbs[i].in_use) {
			dbs[i].in_use = 1;
			if ((size_t)snprintf(buf, cap, "%s", dbs[i].uri) >= cap)
				return (-1);
			return (0);
		}
	return (-1);
}

int
tu_db_new(const char *dir, char *buf, size_t cap)
{
	if (tu_backend_pg())
		return (pg_db_new(buf, cap));
	return ((size_t)snprintf(buf, cap, "%s/affiliate.db", dir) < cap ? 0 : -1);
}

void
tu_db_free(const char *db)
{
	if (db == NULL || !db_is_pg(db))
		return;
	for (int i = 0; i < n_dbs; i++)
		if (strcmp(dbs[i].uri, db) == 0)
			dbs[i].in_use = 0;
}

/* The value as tu_sql_int reads it: booleans as 0/1, NULL as 0. */
static long long
pg_value_int(PGresult *r)
{
	const char *v;

	if (PQntuples(r) < 1 || PQnfields(r) < 1)
		return (-1);
	if (PQgetisnull(r, 0, 0))
		return (0);
	v = PQgetvalue(r, 0, 0);
	if (strcmp(v, "t") == 0)
		return (1);
	if (strcmp(v, "f") == 0)
		return (0);
	return (strtoll(v, NULL, 10));
}

/* ---- the queries, on either backend ---- */

long long
tu_sql_int(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	long long v = -1;

	if (db_is_pg(db)) {
		PGresult *r;

		pthread_mutex_lock(&conn_mtx);
		if ((r = pg_run(db, sql)) != NULL)
			v = pg_value_int(r);
		PQclear(r);
		pthread_mutex_unlock(&conn_mtx);
		return (v);
	}
	if (sqlite3_open(db, &h) != SQLITE_OK) {
		sqlite3_close(h);
		return (-1);
	}
	sqlite3_busy_timeout(h, 5000);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return (v);
}

int
tu_sql_exec(const char *db, const char *sql)
{
	sqlite3 *h;
	int rc;

	if (db_is_pg(db)) {
		PGresult *r;

		pthread_mutex_lock(&conn_mtx);
		r = pg_run(db, sql);
		PQclear(r);
		pthread_mutex_unlock(&conn_mtx);
		return (r != NULL ? 0 : -1);
	}
	if (sqlite3_open(db, &h) != SQLITE_OK) {
		sqlite3_close(h);
		return (-1);
	}
	sqlite3_busy_timeout(h, 5000);
	rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
	sqlite3_close(h);
	return (rc == SQLITE_OK ? 0 : -1);
}

long long
tu_sql_wait(const char *db, const char *sql, long long want, int timeout_ms)
{
	long long v = -1;

	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if ((v = tu_sql_int(db, sql)) == want)
			break;
		tu_sleep_ms(20);
	}
	return (v);
}

long
tu_sql_each(const char *db, const char *sql,
    void (*fn)(void *arg, const char *value), void *arg)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	long n = 0;

	if (db_is_pg(db)) {
		PGresult *r;

		pthread_mutex_lock(&conn_mtx);
		if ((r = pg_run(db, sql)) == NULL)
			n = -1;
		else
			for (n = 0; n < PQntuples(r); n++)
				fn(arg, PQgetisnull(r, (int)n, 0)
				        ? NULL
				        : PQgetvalue(r, (int)n, 0));
		PQclear(r);
		pthread_mutex_unlock(&conn_mtx);
		return (n);
	}
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return (-1);
	}
	sqlite3_busy_timeout(h, 5000);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return (-1);
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		fn(arg, (const char *)sqlite3_column_text(st, 0));
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	return (n);
}

/* ---- backup and restore ---- */

/* The database name at the end of a URI (what follows the last '/', up
 * to a '?'), into buf; -1 when it is not a plain name. */
static int
pg_db_name(const char *uri, char *buf, size_t cap)
{
	const char *slash = strrchr(uri, '/');
	size_t n;

	if (slash == NULL)
		return (-1);
	n = strcspn(slash + 1, "?");
	if (n == 0 || n >= cap)
		return (-1);
	memcpy(buf, slash + 1, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!(buf[i] == '_' || (buf[i] >= 'a' && buf[i] <= 'z') ||
		        (buf[i] >= '0' && buf[i] <= '9')))
			return (-1);
	return (0);
}

/* Runs the two statements (each alone: CREATE and DROP DATABASE refuse
 * a multi-statement string) on the admin database after closing the kept
 * connection (CREATE DATABASE ... TEMPLATE and DROP DATABASE want no
 * session on theirs) and ending every other session on name. */
static int
pg_admin_on(const char *name, const char *sql, const char *sql2)
{
	char end[256];
	PGresult *r;

	snprintf(end, sizeof(end),
	    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	    " WHERE datname = '%s' AND pid <> pg_backend_pid()", name);
	pthread_mutex_lock(&conn_mtx);
	if (conn != NULL) {
		PQfinish(conn);
		conn = NULL;
	}
	r = pg_run(pg.admin, end);
	if (r != NULL) {
		PQclear(r);
		r = pg_run(pg.admin, sql);
	}
	if (r != NULL) {
		PQclear(r);
		r = pg_run(pg.admin, sql2);
	}
	PQclear(r);
	pthread_mutex_unlock(&conn_mtx);
	return (r != NULL ? 0 : -1);
}

/* SQLite: from copied over to; 0 or -1. */
static int
file_copy(const char *from, const char *to)
{
	char buf[65536];
	size_t n;
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	int rv = in != NULL && out != NULL ? 0 : -1;

	while (rv == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rv = -1;
	if (in != NULL)
		fclose(in);
	if (out != NULL && fclose(out) != 0)
		rv = -1;
	return (rv);
}

int
tu_db_backup(const char *db, char *bak, size_t cap)
{
	char name[128], sql[200], sql2[300], *slash;

	if (!db_is_pg(db)) {
		if ((size_t)snprintf(bak, cap, "%s.backup", db) >= cap)
			return (-1);
		return (file_copy(db, bak));
	}
	if (pg_db_name(db, name, sizeof(name)) != 0 ||
	    (size_t)snprintf(bak, cap, "%s", db) >= cap ||
	    (slash = strrchr(bak, '/')) == NULL ||
	    (size_t)snprintf(slash + 1, cap - (size_t)(slash + 1 - bak),
	        "%s_backup", name) >= cap - (size_t)(slash + 1 - bak))
		return (-1);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s_backup WITH (FORCE)",
	    name);
	snprintf(sql2, sizeof(sql2), "CREATE DATABASE %s_backup TEMPLATE %s",
	    name, name);
	return (pg_admin_on(name, sql, sql2));
}

int
tu_db_restore(const char *db, const char *bak)
{
	char name[128], bname[128], sql[200], sql2[300], wal[600];

	if (!db_is_pg(db)) {
		snprintf(wal, sizeof(wal), "%s-wal", db);
		if (file_copy(bak, db) != 0)
			return (-1);
		unlink(wal);
		return (0);
	}
	if (pg_db_name(db, name, sizeof(name)) != 0 ||
	    pg_db_name(bak, bname, sizeof(bname)) != 0)
		return (-1);
	snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", name);
	snprintf(sql2, sizeof(sql2), "CREATE DATABASE %s TEMPLATE %s", name,
	    bname);
	return (pg_admin_on(name, sql, sql2));
}

/* ---- the write lock ---- */

struct tu_db_lock {
	sqlite3 *lite;
	PGconn *pg;
};

/* Every table of the database locked IN EXCLUSIVE MODE on c, in an
 * open transaction; 0 or -1, 1 when PostgreSQL chose this transaction as
 * a deadlock's victim (its tables are taken one by one, while a server's
 * transaction may hold one and wait for another): then it is rolled back,
 * to be tried again. */
static int
pg_lock_all(PGconn *c)
{
	PGresult *r = PQexec(c, "BEGIN");
	char *sql = NULL;
	const char *state;
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	PQclear(r);
	if (!ok)
		return (-1);
	r = PQexec(c, "SELECT string_agg(format('%I.%I', schemaname, tablename),"
	              " ', ') FROM pg_tables WHERE schemaname NOT IN"
	              " ('pg_catalog', 'information_schema')");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    !PQgetisnull(r, 0, 0) &&
	    asprintf(&sql, "LOCK TABLE %s IN EXCLUSIVE MODE",
	        PQgetvalue(r, 0, 0)) < 0)
		sql = NULL;
	PQclear(r);
	if (sql == NULL) {
		fprintf(stderr, "# pg: no table to lock: %s", PQerrorMessage(c));
		return (-1);
	}
	r = PQexec(c, sql);
	free(sql);
	if ((ok = PQresultStatus(r) == PGRES_COMMAND_OK)) {
		PQclear(r);
		return (0);
	}
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	ok = state != NULL && strcmp(state, "40P01") == 0; /* deadlock */
	if (!ok)
		fprintf(stderr, "# pg: LOCK TABLE: %s", PQerrorMessage(c));
	PQclear(r);
	PQclear(PQexec(c, "ROLLBACK"));
	return (ok ? 1 : -1);
}

struct tu_db_lock *
tu_db_lock(const char *db)
{
	struct tu_db_lock *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return (NULL);
	if (db_is_pg(db)) {
		int rv = -1;

		l->pg = PQconnectdb(db);
		for (int i = 0; i < 50 && PQstatus(l->pg) == CONNECTION_OK &&
		     (rv = pg_lock_all(l->pg)) == 1; i++)
			tu_sleep_ms(10);
		if (rv == 0)
			return (l);
		fprintf(stderr, "# pg: lock: %s", PQerrorMessage(l->pg));
		PQfinish(l->pg);
		free(l);
		return (NULL);
	}
	if (sqlite3_open(db, &l->lite) == SQLITE_OK) {
		sqlite3_busy_timeout(l->lite, 5000);
		if (sqlite3_exec(l->lite, "BEGIN IMMEDIATE", 0, 0, 0) == SQLITE_OK)
			return (l);
	}
	sqlite3_close(l->lite);
	free(l);
	return (NULL);
}

int
tu_db_unlock(struct tu_db_lock *l)
{
	int ok;

	if (l == NULL)
		return (-1);
	if (l->pg != NULL) {
		PGresult *r = PQexec(l->pg, "COMMIT");

		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		PQfinish(l->pg);
	} else {
		ok = sqlite3_exec(l->lite, "COMMIT", 0, 0, 0) == SQLITE_OK;
		sqlite3_close(l->lite);
	}
	free(l);
	return (ok ? 0 : -1);
}
