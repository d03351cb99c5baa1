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

const struct sqlite_statements sqlite_core_statements = { stmt_sql, ST_COUNT };

/* Every domain's table, in enum sqlite_domain order. */
static const struct sqlite_statements *const domains[SQ_DOMAINS] = {
	[SQ_CORE] = &sqlite_core_statements,
	[SQ_CATALOG] = &sqlite_catalog_statements,
	[SQ_APPLICATIONS] = &sqlite_applications_statements,
	[SQ_JOBS] = &sqlite_jobs_statements,
	[SQ_ORDERS] = &sqlite_orders_statements,
	[SQ_KEYS] = &sqlite_keys_statements,
};

#define STMT(s, i) ((s)->st[SQ_CORE][i])

/* Schema migrations, applied in order; migrations[i] takes user_version
 * from i to i + 1. Never edit a shipped step: append a new one. */
static const char *const migrations[] = {
	/* 0 -> 1: the catalog. */
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE catalog_version ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  version INTEGER NOT NULL"
	");"
	"INSERT INTO catalog_version (id, version) VALUES (1, 1);"
	"CREATE TABLE editors ("
	"  id INTEGER PRIMARY KEY CHECK (id > 0),"
	"  name TEXT NOT NULL,"
	"  website TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE TABLE advertisers ("
	"  id INTEGER PRIMARY KEY CHECK (id > 0),"
	"  name TEXT NOT NULL CHECK (length(name) > 0),"
	"  category TEXT NOT NULL,"
	"  currency TEXT NOT NULL DEFAULT 'EUR' CHECK (length(currency) = 3),"
	"  commission_rate_bps INTEGER NOT NULL"
	"    CHECK (commission_rate_bps BETWEEN 0 AND 10000),"
	"  status TEXT NOT NULL DEFAULT 'active'"
	"    CHECK (status IN ('active', 'paused')),"
	"  website TEXT NOT NULL DEFAULT '',"
	"  cookie_days INTEGER NOT NULL DEFAULT 30 CHECK (cookie_days >= 0),"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL"
	");"
	"CREATE TABLE eligibility ("
	"  editor_id INTEGER NOT NULL REFERENCES editors (id) ON DELETE CASCADE,"
	"  advertiser_id INTEGER NOT NULL"
	"    REFERENCES advertisers (id) ON DELETE CASCADE,"
	"  PRIMARY KEY (editor_id, advertiser_id)"
	") WITHOUT ROWID;"
	"CREATE INDEX eligibility_by_advertiser"
	"  ON eligibility (advertiser_id, editor_id);"
	/* Any write to the catalog, by this server or by hand with the sqlite3
	 * shell, moves the version on, and so retires every cached read. */
	"CREATE TRIGGER editors_ins AFTER INSERT ON editors BEGIN"
	"  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;"
	"CREATE TRIGGER editors_upd AFTER UPDATE ON editors BEGIN"
	"  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;"
	"CREATE TRIGGER editors_del AFTER DELETE ON editors BEGIN"
	"  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;"
	"CREATE TRIGGER advertisers_ins AFTER INSERT ON advertisers BEGIN"
	"  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;"
	"CREATE TRIGGER advertisers_upd AFTER UPDATE ON advertisers BEGIN"
	"  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;"
	"CREATE TRIGGER advertisers_del AFTER DELETE ON advertisers BEGIN"
	"  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;"
	"CREATE TRIGGER eligibility_ins AFTER INSERT ON eligibility BEGIN"
	"  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;"
	"CREATE TRIGGER eligibility_upd AFTER UPDATE ON eligibility BEGIN"
	"  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;"
	"CREATE TRIGGER eligibility_del AFTER DELETE ON eligibility BEGIN"
	"  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;",

	/* 1 -> 2: applications, their history, and the job outbox. */
	"CREATE TABLE applications ("
	"  id INTEGER PRIMARY KEY,"
	"  editor_id INTEGER NOT NULL REFERENCES editors (id),"
	"  advertiser_id INTEGER NOT NULL REFERENCES advertisers (id),"
	"  status TEXT NOT NULL"
	"    CHECK (status IN ('pending', 'approved', 'rejected')),"
	"  reason TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	/* The request that made it: the same request again (NNG resends a
	 * request whose connection dropped) gets it back, not a conflict. */
	"  request_id TEXT NOT NULL DEFAULT ''"
	");"
	/* At most one open (pending or approved) application per pair: the
	 * database, not only the code, says so. */
	"CREATE UNIQUE INDEX applications_one_open"
	"  ON applications (editor_id, advertiser_id)"
	"  WHERE status IN ('pending', 'approved');"
	"CREATE INDEX applications_by_editor ON applications (editor_id, id);"
	"CREATE TABLE application_events ("
	"  id INTEGER PRIMARY KEY,"
	"  application_id INTEGER NOT NULL REFERENCES applications (id),"
	"  status TEXT NOT NULL,"
	"  reason TEXT NOT NULL DEFAULT '',"
	"  at INTEGER NOT NULL"
	");"
	"CREATE INDEX application_events_by_application"
	"  ON application_events (application_id);"
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL,"
	"  ref_id INTEGER NOT NULL,"
	"  payload BLOB NOT NULL,"
	"  state TEXT NOT NULL"
	"    CHECK (state IN ('queued', 'inflight', 'done', 'dead')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  max_attempts INTEGER NOT NULL,"
	"  due_at INTEGER NOT NULL," /* ms; in flight: the visibility deadline */
	"  last_error TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL"
	");"
	"CREATE INDEX jobs_due ON jobs (due_at)"
	"  WHERE state IN ('queued', 'inflight');",

	/* 2 -> 3: orders reported by partners, and their history. */
	"CREATE TABLE orders ("
	"  seq INTEGER PRIMARY KEY," /* arrival order: the list cursor */
	"  order_id TEXT NOT NULL UNIQUE,"
	"  advertiser_id INTEGER NOT NULL REFERENCES advertisers (id),"
	"  editor_id INTEGER NOT NULL REFERENCES editors (id),"
	"  amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),"
	"  commission_cents INTEGER NOT NULL"
	"    CHECK (commission_cents BETWEEN 0 AND amount_cents),"
	"  currency TEXT NOT NULL CHECK (length(currency) = 3),"
	"  status TEXT NOT NULL"
	"    CHECK (status IN ('pending', 'approved', 'declined')),"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	/* Every change counts up rev; the Redis copy is current when
	 * cached_rev has caught up with it. */
	"  rev INTEGER NOT NULL DEFAULT 1,"
	"  cached_rev INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX orders_uncached ON orders (seq) WHERE cached_rev < rev;"
	"CREATE INDEX orders_by_editor ON orders (editor_id, seq);"
	"CREATE INDEX orders_by_advertiser ON orders (advertiser_id, seq);"
	"CREATE TABLE order_events ("
	"  id INTEGER PRIMARY KEY,"
	"  order_id TEXT NOT NULL,"
	"  status TEXT NOT NULL,"
	"  at INTEGER NOT NULL"
	");"
	"CREATE INDEX order_events_by_order ON order_events (order_id);",

	/* 3 -> 4: API keys (only the SHA-256 of each secret is kept) and the
	 * advertisers' own webhook signing secrets (kept as they are: an
	 * HMAC needs the secret itself). */
	"CREATE TABLE api_keys ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  role TEXT NOT NULL CHECK (role IN ('editor', 'admin')),"
	"  editor_id INTEGER REFERENCES editors (id),"
	"  secret_sha256 BLOB NOT NULL CHECK (length(secret_sha256) = 32),"
	"  created_at INTEGER NOT NULL,"
	"  revoked_at INTEGER,"
	"  CHECK ((role = 'admin') = (editor_id IS NULL))"
	");"
	"CREATE TABLE webhook_secrets ("
	"  id INTEGER PRIMARY KEY,"
	"  advertiser_id INTEGER NOT NULL REFERENCES advertisers (id),"
	"  secret TEXT NOT NULL CHECK (length(secret) >= 32),"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER" /* NULL: the current one */
	");"
	"CREATE INDEX webhook_secrets_by_advertiser"
	"  ON webhook_secrets (advertiser_id, id);",

	/* 4 -> 5: per advertiser, whether its webhooks must carry the
	 * timestamped signature (t=<unix>,v1=<hex>): the plain hex form has
	 * no time in it, so a captured request can be replayed for ever. No
	 * row: the server's --webhook-require-timestamp decides alone. */
	"CREATE TABLE webhook_policies ("
	"  advertiser_id INTEGER PRIMARY KEY REFERENCES advertisers (id),"
	"  require_timestamp INTEGER NOT NULL CHECK (require_timestamp IN (0, 1)),"
	"  updated_at INTEGER NOT NULL"
	");",

	/* 5 -> 6: what must hold across restores and resends.
	 * orders_copy names the Redis copy of the orders (cache.h): random,
	 * and replaced whenever that copy cannot be trusted, so a database
	 * restored from an older file never reads the copy of the history it
	 * lost. request_keys holds each mutating call's request key (the
	 * envelope's request_id, scoped by the caller) with the answer it got,
	 * written in the transaction of the call's change: the same call sent
	 * again gets that answer and changes nothing. Rows older than the
	 * retention (24 h) are pruned as new ones come. */
	"CREATE TABLE request_keys ("
	"  scope TEXT NOT NULL,"
	"  request_id TEXT NOT NULL,"
	"  method TEXT NOT NULL,"
	"  digest BLOB NOT NULL," /* SHA-256 of the method and the request */
	"  reply BLOB NOT NULL,"  /* the packed answer */
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (scope, request_id, digest)"
	") WITHOUT ROWID;"
	"CREATE INDEX request_keys_by_age ON request_keys (created_at);"
	"INSERT INTO meta (key, value)"
	"  VALUES ('orders_copy', lower(hex(randomblob(8))))"
	"  ON CONFLICT (key) DO NOTHING;",

	/* 6 -> 7: job deliveries bound to leases. Each delivery gets a
	 * random token that its result must echo (a result for a delivery
	 * the server never made is ignored); the token of the delivery
	 * before is kept, so that its late result still counts. due_at is
	 * from now on the server's monotonic clock, rebased at every start
	 * (jobs_resume). */
	"ALTER TABLE jobs ADD COLUMN lease_token TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE jobs ADD COLUMN prev_token TEXT NOT NULL DEFAULT '';",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

int
sqlite_err(sqlite3 *db, int rc, const char *what)
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
sqlite_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

	if (rc != SQLITE_OK) {
		aff_error("store: %s", err != NULL ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
	}
	return (sqlite_err(db, rc, "exec"));
}

static int
user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return (sqlite_err(db, rc, "user_version"));
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return (rc == SQLITE_ROW ? AFF_OK : sqlite_err(db, rc, "user_version"));
}

/* Brings the schema to SCHEMA_VERSION in one write transaction, so that
 * connections opened at once migrate it once. */
static int
store_migrate(sqlite3 *db)
{
	char sql[64];
	int v, rv, seeded;

	if ((rv = user_version(db, &v)) != AFF_OK)
		return (rv);
	if (v == SCHEMA_VERSION)
		return (AFF_OK);
	if ((rv = sqlite_exec(db, "BEGIN IMMEDIATE")) != AFF_OK)
		return (rv);
	if ((rv = user_version(db, &v)) != AFF_OK)
		goto failed;
	if (v > SCHEMA_VERSION) {
		aff_error("store: database schema %d is newer than this "
		          "server's %d",
		    v, SCHEMA_VERSION);
		rv = AFF_FAILED_PRECONDITION;
		goto failed;
	}
	/* The seed belongs to the catalog (step 1); later steps only add. */
	seeded = v > 0;
	for (; v < SCHEMA_VERSION; v++) {
		aff_info("store: migrating schema %d -> %d", v, v + 1);
		if ((rv = sqlite_exec(db, migrations[v])) != AFF_OK)
			goto failed;
	}
	if (!seeded && (rv = sqlite_catalog_seed(db)) != AFF_OK)
		goto failed;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if ((rv = sqlite_exec(db, sql)) != AFF_OK)
		goto failed;
	if ((rv = sqlite_exec(db, "COMMIT")) != AFF_OK)
		goto failed;
	if (!seeded)
		aff_info("store: new database seeded with %zu editors and %zu "
		         "advertisers",
		    sqlite_catalog_seed_editors(),
		    sqlite_catalog_seed_advertisers());
	return (AFF_OK);
failed:
	sqlite_exec(db, "ROLLBACK");
	return (rv);
}

static void sqlite_close(store *base);

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
	return (sqlite_exec(db, sql));
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
sqlite_open(const char *path, store **sp)
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
	    NULL);
	if (rc != SQLITE_OK) {
		aff_error("store: cannot open %s: %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rv = AFF_UNAVAILABLE;
		goto failed;
	}
	sqlite3_busy_handler(s->db, busy_nap, &s->busy_started);
	sqlite3_extended_result_codes(s->db, 1);
	/* WAL lets readers run beside the writer; FULL makes a commit
	 * survive a power cut, not only a crash. */
	if ((rv = sqlite_exec(s->db, "PRAGMA journal_mode = WAL;"
	                             "PRAGMA synchronous = FULL;"
	                             "PRAGMA foreign_keys = ON;")) != AFF_OK ||
	    (rv = apply_max_pages(s->db)) != AFF_OK)
		goto failed;
	if ((rv = store_migrate(s->db)) != AFF_OK)
		goto failed;
	for (int d = 0; d < SQ_DOMAINS; d++) {
		const struct sqlite_statements *t = domains[d];

		if ((s->st[d] = calloc((size_t)t->n, sizeof(*s->st[d]))) ==
		    NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			goto failed;
		}
		for (int i = 0; i < t->n; i++) {
			rc = sqlite3_prepare_v3(s->db, t->sql[i], -1,
			    SQLITE_PREPARE_PERSISTENT, &s->st[d][i], NULL);
			if (rc != SQLITE_OK) {
				rv = sqlite_err(s->db, rc, t->sql[i]);
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
	sqlite_close(&s->base);
	return (rv);
}

static void
sqlite_close(store *base)
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
sqlite_stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int
sqlite_step_write(sqlite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int rv = rc == SQLITE_DONE ? AFF_OK : sqlite_err(s->db, rc, what);

	sqlite_stmt_done(st);
	return (rv);
}

int
sqlite_exists(sqlite_store *s, sqlite3_stmt *st, int64_t a, int64_t b,
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
		rv = sqlite_err(s->db, rc, "lookup");
	sqlite_stmt_done(st);
	return (rv);
}

char *
sqlite_col_text(sqlite3_stmt *st, int i, aff_arena *a)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return (aff_arena_strndup(a, t != NULL ? (const char *)t : "",
	    (size_t)sqlite3_column_bytes(st, i)));
}

char *
sqlite_col_time(sqlite3_stmt *st, int i, aff_arena *a)
{
	char buf[32];

	aff_time_rfc3339(sqlite3_column_int64(st, i), buf);
	return (aff_arena_strdup(a, buf));
}

int
sqlite_one_row(sqlite_store *s, sqlite3_stmt *st, sqlite_row_fn *row,
    aff_arena *a, void *out, const char *what)
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
		rv = sqlite_err(s->db, rc, what);
	sqlite_stmt_done(st);
	return (rv);
}

int
sqlite_list_page(sqlite_store *s, sqlite3_stmt *st, int limit,
    sqlite_row_fn *row, aff_arena *a, void *out, size_t *n, int *more,
    int64_t *last, const char *what)
{
	void **v;
	int rc, rv = AFF_OK;
	size_t k = 0;

	*more = 0;
	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)limit)) == NULL) {
		sqlite_stmt_done(st);
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
		rv = sqlite_err(s->db, rc, what);
	sqlite_stmt_done(st);
	/* The one place the array of objects becomes the caller's array of
	 * its type (T ***, see the header). */
	*(void ***)out = v;
	*n = k;
	return (rv);
}

/* ---- transactions ---- */

int
sqlite_tx_run(sqlite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? AFF_OK : sqlite_err(s->db, rc, what));
}

int
sqlite_tx_begin(sqlite_store *s)
{
	int rv;

	if (s->depth > 0 && !sqlite3_get_autocommit(s->db)) {
		if ((rv = sqlite_tx_run(s, STMT(s, ST_NEST_BEGIN),
		         "savepoint")) == AFF_OK)
			s->depth++;
		return (rv);
	}
	if ((rv = sqlite_tx_run(s, STMT(s, ST_BEGIN), "begin")) == AFF_OK)
		s->depth = 1;
	return (rv);
}

int
sqlite_tx_end(sqlite_store *s, int rv)
{
	if (s->depth > 1) {
		s->depth--;
		if (sqlite3_get_autocommit(s->db)) {
			/* SQLite ended the outer transaction itself. */
			s->depth = 0;
			return (rv != AFF_OK ? rv : AFF_ABORTED);
		}
		if (rv != AFF_OK)
			(void)sqlite_tx_run(s, STMT(s, ST_NEST_UNDO),
			    "savepoint undo");
		(void)sqlite_tx_run(s, STMT(s, ST_NEST_RELEASE),
		    "savepoint release");
		return (rv);
	}
	s->depth = 0;
	if (rv == AFF_OK &&
	    (rv = sqlite_tx_run(s, STMT(s, ST_COMMIT), "commit")) == AFF_OK)
		return (AFF_OK);
	sqlite_tx_rollback(s);
	return (rv);
}

void
sqlite_tx_rollback(sqlite_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)sqlite_tx_run(s, STMT(s, ST_ROLLBACK), "rollback");
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.catalog_version = sqlite_catalog_version,
	.editor_exists = sqlite_editor_exists,
	.advertiser_get = sqlite_advertiser_get,
	.advertiser_list = sqlite_advertiser_list,
	.eligible = sqlite_eligible,
	.advertiser_put = sqlite_advertiser_put,
	.eligibility_set = sqlite_eligibility_set,
	.application_create = sqlite_application_create,
	.application_get = sqlite_application_get,
	.application_list = sqlite_application_list,
	.jobs_claim = sqlite_jobs_claim,
	.jobs_unclaim = sqlite_jobs_unclaim,
	.job_finish = sqlite_job_finish,
	.job_extend = sqlite_job_extend,
	.jobs_resume = sqlite_jobs_resume,
	.order_put = sqlite_order_put,
	.order_list = sqlite_order_list,
	.orders_uncached = sqlite_orders_uncached,
	.orders_mark_cached = sqlite_orders_mark_cached,
	.orders_all_cached = sqlite_orders_all_cached,
	.orders_cache_reset = sqlite_orders_cache_reset,
	.key_create = sqlite_key_create,
	.key_get = sqlite_key_get,
	.key_list = sqlite_key_list,
	.key_revoke = sqlite_key_revoke,
	.webhook_secret_rotate = sqlite_webhook_secret_rotate,
	.webhook_secrets_get = sqlite_webhook_secrets_get,
	.webhook_policy_get = sqlite_webhook_policy_get,
	.webhook_policy_set = sqlite_webhook_policy_set,
	.call_begin = sqlite_call_begin,
	.call_end = sqlite_call_end,
	.batch_begin = sqlite_batch_begin,
	.batch_end = sqlite_batch_end,
};

int
store_open(const char *path, store **sp)
{
	return (store_sqlite_ops.open(path, sp));
}
