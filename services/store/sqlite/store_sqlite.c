/*
 * store_sqlite.c - the SQLite store's connection: opening it (WAL,
 * foreign keys, synchronous=FULL, the busy handler, the size cap, the
 * file's privacy), the schema migrations by user_version with the seed
 * on first start, preparing every domain file's statements, and the
 * transactions and step/read helpers those files share
 * (store_sqlite_private.h). The domains themselves live in
 * store_sqlite_{catalog,applications,jobs,orders,keys}.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_sqlite_private.h"

#define STATEMENTS(X)                                                          \
	X(ST_BEGIN, "BEGIN IMMEDIATE")                                         \
	X(ST_COMMIT, "COMMIT")                                                 \
	X(ST_ROLLBACK, "ROLLBACK")                                             \
	/* A store call inside a keyed call's transaction (call_begin). */     \
	X(ST_NEST_BEGIN, "SAVEPOINT aff_nest")                                 \
	X(ST_NEST_UNDO, "ROLLBACK TO aff_nest")                                \
	X(ST_NEST_RELEASE, "RELEASE aff_nest")

enum { STATEMENTS(SQLITE_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(SQLITE_STMT_SQL) };

const struct store_sqlite_statements store_sqlite_core_statements
    = { stmt_sql, ST_COUNT };

/* Every domain's table, in enum store_sqlite_domain order. */
static const struct store_sqlite_statements *const domains[SQ_DOMAINS] = {
	[SQ_CORE] = &store_sqlite_core_statements,
	[SQ_CATALOG] = &store_sqlite_catalog_statements,
	[SQ_APPLICATIONS] = &store_sqlite_applications_statements,
	[SQ_JOBS] = &store_sqlite_jobs_statements,
	[SQ_ORDERS] = &store_sqlite_orders_statements,
	[SQ_KEYS] = &store_sqlite_keys_statements,
	[SQ_POSTBACKS] = &store_sqlite_postbacks_statements,
	[SQ_REPORTS] = &store_sqlite_reports_statements,
};

#define STMT(s, i) ((s)->st[SQ_CORE][i])

int
store_sqlite_err(sqlite3 *db, int rc, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return (AFF_OK);
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		aff_warn("store: %s: %s", what, sqlite3_errmsg(db));
		return (AFF_UNAVAILABLE);
	case SQLITE_FULL:
	case SQLITE_NOMEM:
		aff_error("store: %s: %s", what, sqlite3_errmsg(db));
		return (AFF_RESOURCE_EXHAUSTED);
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_TOOBIG:
		return (AFF_INVALID_ARGUMENT);
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
		aff_error("store: %s: %s", what, sqlite3_errmsg(db));
		return (AFF_UNAVAILABLE);
	default:
		aff_error("store: %s: %s (%d)", what, sqlite3_errmsg(db), rc);
		return (AFF_INTERNAL);
	}
}

int
store_sqlite_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

	if (rc != SQLITE_OK) {
		aff_error("store: %s", err != NULL ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
	}
	return (store_sqlite_err(db, rc, "exec"));
}

static int
user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return (store_sqlite_err(db, rc, "user_version"));
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return (rc == SQLITE_ROW ? AFF_OK : store_sqlite_err(db, rc, "user_version"));
}

/* Brings the schema to store_sqlite_schema_version (the steps of
 * schema/NNNN_name.sql) in one write transaction, so that connections
 * opened at once migrate it once. */
static int
store_migrate(sqlite3 *db)
{
	char sql[64];
	int v, rv, seeded;

	if ((rv = user_version(db, &v)) != AFF_OK)
		return (rv);
	if (v == store_sqlite_schema_version)
		return (AFF_OK);
	if ((rv = store_sqlite_exec(db, "BEGIN IMMEDIATE")) != AFF_OK)
		return (rv);
	if ((rv = user_version(db, &v)) != AFF_OK)
		goto failed;
	if (v > store_sqlite_schema_version) {
		aff_error("store: database schema %d is newer than this "
		          "server's %d",
		    v, store_sqlite_schema_version);
		rv = AFF_FAILED_PRECONDITION;
		goto failed;
	}
	/* The seed belongs to the catalog (step 1); later steps only add. */
	seeded = v > 0;
	for (; v < store_sqlite_schema_version; v++) {
		aff_info("store: migrating schema %d -> %d", v, v + 1);
		if ((rv = store_sqlite_exec(db, store_sqlite_schema_steps[v])) != AFF_OK)
			goto failed;
	}
	if (!seeded && (rv = store_sqlite_catalog_seed(db)) != AFF_OK)
		goto failed;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    store_sqlite_schema_version);
	if ((rv = store_sqlite_exec(db, sql)) != AFF_OK)
		goto failed;
	if ((rv = store_sqlite_exec(db, "COMMIT")) != AFF_OK)
		goto failed;
	if (!seeded)
		aff_info("store: new database seeded with %zu editors and %zu "
		         "advertisers",
		    (size_t)STORE_SEED_EDITORS,
		    (size_t)STORE_SEED_ADVERTISERS);
	return (AFF_OK);
failed:
	store_sqlite_exec(db, "ROLLBACK");
	return (rv);
}

static void store_sqlite_close(store *base);

/*
 * Waits for another connection's write lock in short naps (50 us doubling
 * to 1 ms) for up to 5 s. SQLite's own busy handler sleeps 1, 2, 5, 10 ...
 * 100 ms, which measured as 1 ms+ stalls of the group-commit writer
 * whenever another thread held the lock for microseconds.
 */
static int
busy_nap(void *arg, int count)
{
	int64_t *started = arg;
	struct timespec ts = { 0, 0 };
	long us = count < 5 ? 50L << count : 1000L;

	(void)arg;
	if (count == 0)
		*started = aff_mono_ms();
	else if (aff_mono_ms() - *started > 5000)
		return (0);
	ts.tv_nsec = us * 1000L;
	nanosleep(&ts, NULL);
	return (1);
}

/*
 * The size cap from AFFILIATE_DB_MAX_PAGES, when set: SQLite's
 * max_page_count, which holds per connection, so every connection sets
 * it. It is an operator's quota, and how the fault tests make a full disk
 * (tests/faults): a write that needs a page past the cap fails as one on
 * a full disk does (AFF_RESOURCE_EXHAUSTED, nothing half-written), reads
 * go on, and writes succeed again once pages are freed.
 */
static int
apply_max_pages(sqlite3 *db)
{
	const char *v = aff_env("AFFILIATE_DB_MAX_PAGES", NULL);
	char sql[64];
	int64_t pages;

	if (v == NULL)
		return (AFF_OK);
	if (aff_parse_int64(v, 1, 4294967294LL, &pages) != AFF_OK) {
		aff_error("store: AFFILIATE_DB_MAX_PAGES must be a number of pages"
		          " from 1 to 4294967294, not '%s'",
		    v);
		return (AFF_INVALID_ARGUMENT);
	}
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
	    (long long)pages);
	return (store_sqlite_exec(db, sql));
}

/*
 * The database holds the advertisers' webhook secrets in clear and the
 * API keys' hashes, so it is private to its owner whatever the umask or
 * the folder's mode: made 0600 before SQLite creates it (SQLite gives
 * its -wal and -shm files the database's mode), and an existing one that
 * others can read is made private.
 *
 * Never open() and close() an existing database file here: closing any
 * descriptor of a file drops every POSIX lock this process holds on it,
 * so the locks of the server's other SQLite connections would vanish and
 * another process could write under them (acked applications were lost
 * that way: test_faults_disk). O_EXCL creates only a file that did not
 * exist, which no connection can have locked yet; chmod takes no lock.
 */
static void
db_file_private(const char *path)
{
	static const char *const ext[] = { "", "-wal", "-shm" };
	char p[4200];
	struct stat st;
	int fd;

	if (path[0] == '\0' || strcmp(path, ":memory:") == 0 ||
	    strncmp(path, "file:", 5) == 0)
		return;
	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0)
		close(fd);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, ext[i]);
		if (stat(p, &st) == 0 && (st.st_mode & 077) != 0 &&
		    chmod(p, st.st_mode & 0700) != 0)
			aff_warn("store: other users can read %s and it cannot be "
			         "made private: %s",
			    p, strerror(errno));
	}
}

static int
store_sqlite_open(const char *path, store **sp)
{
	sqlite_store *s;
	sqlite3_stmt *st;
	int rc, rv;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	s->base.ops = &store_sqlite_ops;
	db_file_private(path);
	rc = sqlite3_open_v2(path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	    store_sqlite_vfs());
	if (rc != SQLITE_OK) {
		aff_error("store: cannot open %s: %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rv = AFF_UNAVAILABLE;
		goto failed;
	}
	sqlite3_busy_handler(s->db, busy_nap, &s->busy_started);
	sqlite3_extended_result_codes(s->db, 1);
	/*
	 * WAL lets readers run beside the writer; FULL makes a commit
	 * survive a power cut, not only a crash.
	 *
	 * How long the write-ahead log grows between checkpoints, on every
	 * connection: 8,192 pages (32 MiB) where SQLite's default is 1,000.
	 *
	 * A checkpoint copies each page the log holds back into the
	 * database, once however many times the log rewrote it, and runs
	 * inside the commit that passed the bound: under webhook load that
	 * is the order writer's, with every webhook of the next batch
	 * waiting. New orders land on the last leaf of each list index for
	 * their (editor, advertiser, status) prefix, so the log rewrites the
	 * same few hundred pages over and over: a longer log copies each of
	 * them once for many more orders. Measured (bench-order-commit,
	 * 3,000 batches of 16 orders spread as the webhook benchmark's):
	 * 10,700 orders/s at 1,000 pages, 13,600 at 4,096, 14,400 at 16,384;
	 * the price is a longer pause every few seconds (one checkpoint of a
	 * few thousand pages) and a longer recovery after a crash (reading
	 * up to 32 MiB of log). After a checkpoint has emptied it, the log
	 * file is cut back to 64 MiB if it grew past that.
	 */
	if ((rv = store_sqlite_exec(s->db, "PRAGMA journal_mode = WAL;"
	                             "PRAGMA synchronous = FULL;"
	                             "PRAGMA foreign_keys = ON;"
	                             "PRAGMA wal_autocheckpoint = 8192;"
	                             "PRAGMA journal_size_limit = 67108864;")) !=
	        AFF_OK ||
	    (rv = apply_max_pages(s->db)) != AFF_OK)
		goto failed;
	if ((rv = store_migrate(s->db)) != AFF_OK)
		goto failed;
	for (int d = 0; d < SQ_DOMAINS; d++) {
		const struct store_sqlite_statements *t = domains[d];

		if ((s->st[d] = calloc((size_t)t->n, sizeof(*s->st[d]))) ==
		    NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			goto failed;
		}
		for (int i = 0; i < t->n; i++) {
			rc = sqlite3_prepare_v3(s->db, t->sql[i], -1,
			    SQLITE_PREPARE_PERSISTENT, &s->st[d][i], NULL);
			if (rc != SQLITE_OK) {
				rv = store_sqlite_err(s->db, rc, t->sql[i]);
				goto failed;
			}
		}
	}
	rc = sqlite3_prepare_v2(
	    s->db, "SELECT value FROM meta WHERE key = 'db_id'", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		snprintf(s->db_id, sizeof(s->db_id), "%s",
		    (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	*sp = &s->base;
	return (AFF_OK);
failed:
	store_sqlite_close(&s->base);
	return (rv);
}

static void
store_sqlite_close(store *base)
{
	sqlite_store *s = SQLITE_STORE(base);

	for (int d = 0; d < SQ_DOMAINS; d++) {
		if (s->st[d] == NULL)
			continue;
		for (int i = 0; i < domains[d]->n; i++)
			sqlite3_finalize(s->st[d][i]);
		free(s->st[d]);
	}
	sqlite3_close(s->db);
	free(s);
}

/* ---- statements ---- */

void
store_sqlite_stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int
store_sqlite_step_write(sqlite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int rv = rc == SQLITE_DONE ? AFF_OK : store_sqlite_err(s->db, rc, what);

	store_sqlite_stmt_done(st);
	return (rv);
}

int
store_sqlite_exists(sqlite_store *s, sqlite3_stmt *st, int64_t a, int64_t b,
    int absent)
{
	int rc, rv;

	sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) > 1)
		sqlite3_bind_int64(st, 2, b);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rv = AFF_OK;
	else if (rc == SQLITE_DONE)
		rv = absent;
	else
		rv = store_sqlite_err(s->db, rc, "lookup");
	store_sqlite_stmt_done(st);
	return (rv);
}

char *
store_sqlite_col_text(sqlite3_stmt *st, int i, aff_arena *a)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return (aff_arena_strndup(a, t != NULL ? (const char *)t : "",
	    (size_t)sqlite3_column_bytes(st, i)));
}

char *
store_sqlite_col_time(sqlite3_stmt *st, int i, aff_arena *a)
{
	char buf[32];

	aff_time_rfc3339(sqlite3_column_int64(st, i), buf);
	return (aff_arena_strdup(a, buf));
}

int
store_sqlite_one_row(sqlite_store *s, sqlite3_stmt *st,
    store_sqlite_row_fn *row, aff_arena *a, void *out, const char *what)
{
	int rc = sqlite3_step(st), rv;
	void *r;

	if (rc == SQLITE_ROW) {
		if ((r = row(st, a)) != NULL) {
			/* The one place the reader's object meets the
			 * caller's typed pointer (T **, see the header). */
			*(void **)out = r;
			rv = AFF_OK;
		} else
			rv = AFF_RESOURCE_EXHAUSTED;
	} else if (rc == SQLITE_DONE)
		rv = AFF_NOT_FOUND;
	else
		rv = store_sqlite_err(s->db, rc, what);
	store_sqlite_stmt_done(st);
	return (rv);
}

int
store_sqlite_list_page(sqlite_store *s, sqlite3_stmt *st, int limit,
    store_sqlite_row_fn *row, aff_arena *a, void *out, size_t *n, int *more,
    int64_t *last, const char *what)
{
	void **v;
	int rc, rv = AFF_OK;
	size_t k = 0;

	*more = 0;
	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)limit)) == NULL) {
		store_sqlite_stmt_done(st);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == (size_t)limit) {
			*more = 1;
			break;
		}
		if ((v[k++] = row(st, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		/* Column 0 is the key the next page starts after. */
		if (last != NULL)
			*last = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, what);
	store_sqlite_stmt_done(st);
	/* The one place the array of objects becomes the caller's array of
	 * its type (T ***, see the header). */
	*(void ***)out = v;
	*n = k;
	return (rv);
}

/* ---- transactions ---- */

int
store_sqlite_tx_run(sqlite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? AFF_OK : store_sqlite_err(s->db, rc, what));
}

int
store_sqlite_tx_begin(sqlite_store *s)
{
	int rv;

	if (s->depth > 0 && !sqlite3_get_autocommit(s->db)) {
		if ((rv = store_sqlite_tx_run(s, STMT(s, ST_NEST_BEGIN),
		         "savepoint")) == AFF_OK)
			s->depth++;
		return (rv);
	}
	if ((rv = store_sqlite_tx_run(s, STMT(s, ST_BEGIN), "begin")) == AFF_OK)
		s->depth = 1;
	return (rv);
}

int
store_sqlite_tx_end(sqlite_store *s, int rv)
{
	if (s->depth > 1) {
		s->depth--;
		if (sqlite3_get_autocommit(s->db)) {
			/* SQLite ended the outer transaction itself. */
			s->depth = 0;
			return (rv != AFF_OK ? rv : AFF_ABORTED);
		}
		if (rv != AFF_OK)
			(void)store_sqlite_tx_run(s, STMT(s, ST_NEST_UNDO),
			    "savepoint undo");
		(void)store_sqlite_tx_run(s, STMT(s, ST_NEST_RELEASE),
		    "savepoint release");
		return (rv);
	}
	s->depth = 0;
	if (rv == AFF_OK &&
	    (rv = store_sqlite_tx_run(s, STMT(s, ST_COMMIT), "commit")) == AFF_OK)
		return (AFF_OK);
	store_sqlite_tx_rollback(s);
	return (rv);
}

void
store_sqlite_tx_rollback(sqlite_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)store_sqlite_tx_run(s, STMT(s, ST_ROLLBACK), "rollback");
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = store_sqlite_open,
	.close = store_sqlite_close,
	.catalog_version = store_sqlite_catalog_version,
	.editor_exists = store_sqlite_editor_exists,
	.advertiser_get = store_sqlite_advertiser_get,
	.advertiser_list = store_sqlite_advertiser_list,
	.eligible = store_sqlite_eligible,
	.advertiser_create = store_sqlite_advertiser_create,
	.advertiser_update = store_sqlite_advertiser_update,
	.editor_create = store_sqlite_editor_create,
	.editor_update = store_sqlite_editor_update,
	.eligibility_set = store_sqlite_eligibility_set,
	.application_create = store_sqlite_application_create,
	.application_get = store_sqlite_application_get,
	.application_events = store_sqlite_application_events,
	.application_list = store_sqlite_application_list,
	.jobs_claim = store_sqlite_jobs_claim,
	.jobs_unclaim = store_sqlite_jobs_unclaim,
	.job_finish = store_sqlite_job_finish,
	.job_extend = store_sqlite_job_extend,
	.jobs_resume = store_sqlite_jobs_resume,
	.job_list = store_sqlite_job_list,
	.job_retry = store_sqlite_job_retry,
	.jobs_retry_dead = store_sqlite_jobs_retry_dead,
	.jobs_stats = store_sqlite_jobs_stats,
	.order_put = store_sqlite_order_put,
	.order_get = store_sqlite_order_get,
	.order_list = store_sqlite_order_list,
	.earnings = store_sqlite_earnings,
	.orders_uncached = store_sqlite_orders_uncached,
	.orders_mark_cached = store_sqlite_orders_mark_cached,
	.orders_all_cached = store_sqlite_orders_all_cached,
	.orders_cache_reset = store_sqlite_orders_cache_reset,
	.key_create = store_sqlite_key_create,
	.key_get = store_sqlite_key_get,
	.key_list = store_sqlite_key_list,
	.key_revoke = store_sqlite_key_revoke,
	.webhook_secret_rotate = store_sqlite_webhook_secret_rotate,
	.webhook_secrets_get = store_sqlite_webhook_secrets_get,
	.webhook_policy_get = store_sqlite_webhook_policy_get,
	.webhook_policy_set = store_sqlite_webhook_policy_set,
	.postback_endpoint_create = store_sqlite_postback_endpoint_create,
	.postback_endpoint_get = store_sqlite_postback_endpoint_get,
	.postback_endpoint_list = store_sqlite_postback_endpoint_list,
	.postback_endpoint_delete = store_sqlite_postback_endpoint_delete,
	.postback_endpoint_rotate = store_sqlite_postback_endpoint_rotate,
	.postback_endpoint_enable = store_sqlite_postback_endpoint_enable,
	.postback_attempt_list = store_sqlite_postback_attempt_list,
	.postback_delivery_get = store_sqlite_postback_delivery_get,
	.postback_redeliver = store_sqlite_postback_redeliver,
	.call_begin = store_sqlite_call_begin,
	.call_end = store_sqlite_call_end,
	.batch_begin = store_sqlite_batch_begin,
	.batch_end = store_sqlite_batch_end,
};
