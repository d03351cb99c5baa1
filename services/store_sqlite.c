/*
 * store_sqlite.c - the SQLite store: WAL, foreign keys, synchronous=FULL,
 * prepared statements per connection, schema migrations by user_version,
 * and a deterministic seed on first start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"

enum {
	ST_CATALOG_VERSION,
	ST_EDITOR_EXISTS,
	ST_ADV_GET,
	ST_ADV_LIST,
	ST_ADV_LIST_EDITOR,
	ST_ELIGIBLE,
	ST_ADV_PUT,
	ST_ELIG_ADD,
	ST_ELIG_DEL,
	ST_COUNT,
};

#define ADV_COLUMNS                                                            \
	"a.id, a.name, a.category, a.currency, a.commission_rate_bps, "        \
	"a.status, a.website, a.cookie_days, a.created_at, a.updated_at"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_CATALOG_VERSION] = "SELECT version FROM catalog_version WHERE id = 1",
	[ST_EDITOR_EXISTS] = "SELECT 1 FROM editors WHERE id = ?1",
	[ST_ADV_GET] = "SELECT " ADV_COLUMNS " FROM advertisers a WHERE a.id = ?1",
	[ST_ADV_LIST] = "SELECT " ADV_COLUMNS " FROM advertisers a"
	                " WHERE a.id > ?1 ORDER BY a.id LIMIT ?2",
	[ST_ADV_LIST_EDITOR] = "SELECT " ADV_COLUMNS " FROM advertisers a"
	                       " JOIN eligibility e ON e.advertiser_id = a.id"
	                       " AND e.editor_id = ?3"
	                       " WHERE a.id > ?1 ORDER BY a.id LIMIT ?2",
	[ST_ELIGIBLE] = "SELECT 1 FROM eligibility"
	                " WHERE editor_id = ?1 AND advertiser_id = ?2",
	[ST_ADV_PUT] =
	    "INSERT INTO advertisers (id, name, category, currency,"
	    " commission_rate_bps, status, website, cookie_days, created_at,"
	    " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)"
	    " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
	    " category = excluded.category, currency = excluded.currency,"
	    " commission_rate_bps = excluded.commission_rate_bps,"
	    " status = excluded.status, website = excluded.website,"
	    " cookie_days = excluded.cookie_days, updated_at = excluded.updated_at",
	[ST_ELIG_ADD] = "INSERT OR IGNORE INTO eligibility (editor_id,"
	                " advertiser_id) VALUES (?1, ?2)",
	[ST_ELIG_DEL] = "DELETE FROM eligibility"
	                " WHERE editor_id = ?1 AND advertiser_id = ?2",
};

typedef struct sqlite_store {
	store base;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	char db_id[33];
} sqlite_store;

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
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The seed: the same rows on every first start. */
#define SEED_TIME 1767225600 /* 2026-01-01T00:00:00Z */

static const struct {
	const char *name, *website;
} seed_editors[] = {
	{ "Trail & Summit Blog", "https://trailandsummit.example" },
	{ "Budget Kitchen", "https://budgetkitchen.example" },
	{ "Pixel Reviews", "https://pixelreviews.example" },
	{ "The Family Travel Guide", "https://familytravel.example" },
	{ "Style Notes", "https://stylenotes.example" },
	{ "Green Home Weekly", "https://greenhome.example" },
};

static const struct {
	const char *name, *category, *currency, *status;
	int rate_bps, cookie_days;
} seed_advertisers[] = {
	{ "Nordic Outdoor", "outdoor", "EUR", "active", 800, 30 },
	{ "Alpine Gear Co", "outdoor", "CHF", "active", 650, 30 },
	{ "CampFire Supplies", "outdoor", "EUR", "active", 1000, 14 },
	{ "FreshBox Meals", "food", "EUR", "active", 1200, 7 },
	{ "Olive & Vine", "food", "EUR", "active", 900, 30 },
	{ "Bean Roasters", "food", "GBP", "active", 750, 30 },
	{ "VoltTech Electronics", "electronics", "EUR", "active", 300, 30 },
	{ "Gadget Hub", "electronics", "USD", "active", 400, 14 },
	{ "SoundWave Audio", "electronics", "EUR", "active", 500, 30 },
	{ "SkyHop Flights", "travel", "EUR", "active", 200, 30 },
	{ "CityStay Hotels", "travel", "EUR", "active", 600, 60 },
	{ "RailPass Europe", "travel", "EUR", "paused", 350, 30 },
	{ "Urban Threads", "fashion", "EUR", "active", 1100, 30 },
	{ "Sneaker Vault", "fashion", "USD", "active", 850, 14 },
	{ "Linen & Co", "fashion", "EUR", "active", 1000, 30 },
	{ "GreenLeaf Garden", "home", "EUR", "active", 900, 30 },
	{ "SolarSpark", "home", "EUR", "active", 450, 90 },
	{ "CozyNest Furniture", "home", "GBP", "active", 700, 30 },
	{ "PageTurner Books", "books", "EUR", "active", 500, 30 },
	{ "Kids Corner Toys", "toys", "EUR", "active", 800, 30 },
	{ "FitLife Nutrition", "health", "EUR", "active", 1500, 30 },
	{ "Zen Yoga Studio", "health", "EUR", "active", 2000, 30 },
	{ "PetPal Supplies", "pets", "EUR", "active", 900, 30 },
	{ "CodeCraft Courses", "education", "USD", "active", 3000, 60 },
};

/* The seed's eligibility rule: editor E may join advertiser A unless
 * (A + 2E) is a multiple of 3, so every editor may join two thirds of the
 * advertisers and not the rest. */
int
store_seed_eligible(int64_t editor_id, int64_t advertiser_id)
{
	return ((advertiser_id + 2 * editor_id) % 3 != 0);
}

static int
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

static int
exec_sql(sqlite3 *db, const char *sql)
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
store_seed(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	char dbid[33];
	int rc;
	size_t ne = sizeof(seed_editors) / sizeof(seed_editors[0]);
	size_t na = sizeof(seed_advertisers) / sizeof(seed_advertisers[0]);

	aff_request_id_new(dbid);
	rc = sqlite3_prepare_v2(db,
	    "INSERT INTO meta (key, value) VALUES ('db_id', ?1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto failed;
	sqlite3_bind_text(st, 1, dbid, -1, SQLITE_TRANSIENT);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		goto failed;
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(db,
	    "INSERT INTO editors (id, name, website, created_at)"
	    " VALUES (?1, ?2, ?3, ?4)",
	    -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto failed;
	for (size_t i = 0; i < ne; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (int64_t)i + 1);
		sqlite3_bind_text(st, 2, seed_editors[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, seed_editors[i].website, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, SEED_TIME);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE)
			goto failed;
	}
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(db,
	    "INSERT INTO advertisers (id, name, category, currency,"
	    " commission_rate_bps, status, website, cookie_days, created_at,"
	    " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	    " 'https://' || lower(replace(replace(?2, ' ', ''), '&', 'and'))"
	    " || '.example', ?7, ?8, ?8)",
	    -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto failed;
	for (size_t i = 0; i < na; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (int64_t)i + 1);
		sqlite3_bind_text(st, 2, seed_advertisers[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    st, 3, seed_advertisers[i].category, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    st, 4, seed_advertisers[i].currency, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, seed_advertisers[i].rate_bps);
		sqlite3_bind_text(st, 6, seed_advertisers[i].status, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 7, seed_advertisers[i].cookie_days);
		sqlite3_bind_int64(st, 8, SEED_TIME);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE)
			goto failed;
	}
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(db,
	    "INSERT INTO eligibility (editor_id, advertiser_id) VALUES (?1, ?2)",
	    -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto failed;
	for (size_t e = 1; e <= ne; e++)
		for (size_t a = 1; a <= na; a++) {
			if (!store_seed_eligible((int64_t)e, (int64_t)a))
				continue;
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, (int64_t)e);
			sqlite3_bind_int64(st, 2, (int64_t)a);
			if ((rc = sqlite3_step(st)) != SQLITE_DONE)
				goto failed;
		}
	sqlite3_finalize(st);
	return (AFF_OK);

failed:
	sqlite3_finalize(st);
	return (sqlite_err(db, rc, "seed"));
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
	if ((rv = exec_sql(db, "BEGIN IMMEDIATE")) != AFF_OK)
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
	seeded = v > 0;
	for (; v < SCHEMA_VERSION; v++) {
		aff_info("store: migrating schema %d -> %d", v, v + 1);
		if ((rv = exec_sql(db, migrations[v])) != AFF_OK)
			goto failed;
	}
	if (!seeded && (rv = store_seed(db)) != AFF_OK)
		goto failed;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if ((rv = exec_sql(db, sql)) != AFF_OK)
		goto failed;
	if ((rv = exec_sql(db, "COMMIT")) != AFF_OK)
		goto failed;
	if (!seeded)
		aff_info("store: new database seeded with %zu editors and %zu "
		         "advertisers",
		    sizeof(seed_editors) / sizeof(seed_editors[0]),
		    sizeof(seed_advertisers) / sizeof(seed_advertisers[0]));
	return (AFF_OK);
failed:
	exec_sql(db, "ROLLBACK");
	return (rv);
}

static void sqlite_close(store *base);

static int
sqlite_open(const char *path, store **sp)
{
	sqlite_store *s;
	sqlite3_stmt *st;
	int rc, rv;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	s->base.ops = &store_sqlite_ops;
	rc = sqlite3_open_v2(path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK) {
		aff_error("store: cannot open %s: %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rv = AFF_UNAVAILABLE;
		goto failed;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_extended_result_codes(s->db, 1);
	/* WAL lets readers run beside the writer; FULL makes a commit
	 * survive a power cut, not only a crash. */
	if ((rv = exec_sql(s->db, "PRAGMA journal_mode = WAL;"
	                          "PRAGMA synchronous = FULL;"
	                          "PRAGMA foreign_keys = ON;")) != AFF_OK)
		goto failed;
	if ((rv = store_migrate(s->db)) != AFF_OK)
		goto failed;
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
		if (rc != SQLITE_OK) {
			rv = sqlite_err(s->db, rc, stmt_sql[i]);
			goto failed;
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
	sqlite_store *s = (sqlite_store *)base;

	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

/* Resets a prepared statement for its next use. */
static void
stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int
sqlite_catalog_version(store *base, const char **db_id, int64_t *version)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_CATALOG_VERSION];
	int rc, rv = AFF_INTERNAL;

	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*version = sqlite3_column_int64(st, 0);
		*db_id = s->db_id;
		rv = AFF_OK;
	} else
		rv = sqlite_err(s->db, rc, "catalog version");
	stmt_done(st);
	return (rv);
}

/* Runs a "SELECT 1 ... " existence check with two int64 parameters. */
static int
exists2(sqlite_store *s, int which, int64_t a, int64_t b, int absent)
{
	sqlite3_stmt *st = s->st[which];
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
	stmt_done(st);
	return (rv);
}

static int
sqlite_editor_exists(store *base, int64_t id)
{
	return (exists2((sqlite_store *)base, ST_EDITOR_EXISTS, id, 0,
	    AFF_NOT_FOUND));
}

static int
sqlite_eligible(store *base, int64_t editor_id, int64_t advertiser_id)
{
	return (exists2((sqlite_store *)base, ST_ELIGIBLE, editor_id,
	    advertiser_id, AFF_PERMISSION_DENIED));
}

static char *
col_text(sqlite3_stmt *st, int i, aff_arena *a)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return (aff_arena_strndup(a, t != NULL ? (const char *)t : "",
	    (size_t)sqlite3_column_bytes(st, i)));
}

static char *
col_time(sqlite3_stmt *st, int i, aff_arena *a)
{
	char buf[32];

	aff_time_rfc3339(sqlite3_column_int64(st, i), buf);
	return (aff_arena_strdup(a, buf));
}

/* Reads an advertiser from the current row (ADV_COLUMNS order). */
static Affiliate__V1__Advertiser *
row_advertiser(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__Advertiser *adv;

	if ((adv = aff_arena_alloc(a, sizeof(*adv))) == NULL)
		return (NULL);
	affiliate__v1__advertiser__init(adv);
	adv->id = sqlite3_column_int64(st, 0);
	adv->name = col_text(st, 1, a);
	adv->category = col_text(st, 2, a);
	adv->currency = col_text(st, 3, a);
	adv->commission_rate_bps = sqlite3_column_int(st, 4);
	adv->status = col_text(st, 5, a);
	adv->website = col_text(st, 6, a);
	adv->cookie_days = sqlite3_column_int(st, 7);
	adv->created_at = col_time(st, 8, a);
	adv->updated_at = col_time(st, 9, a);
	if (adv->name == NULL || adv->category == NULL ||
	    adv->currency == NULL || adv->status == NULL ||
	    adv->website == NULL || adv->created_at == NULL ||
	    adv->updated_at == NULL)
		return (NULL);
	return (adv);
}

static int
sqlite_advertiser_get(
    store *base, int64_t id, aff_arena *a, Affiliate__V1__Advertiser **out)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_ADV_GET];
	int rc, rv;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rv = (*out = row_advertiser(st, a)) != NULL
		    ? AFF_OK
		    : AFF_RESOURCE_EXHAUSTED;
	else if (rc == SQLITE_DONE)
		rv = AFF_NOT_FOUND;
	else
		rv = sqlite_err(s->db, rc, "advertiser get");
	stmt_done(st);
	return (rv);
}

static int
sqlite_advertiser_list(store *base, const struct store_advertiser_query *q,
    aff_arena *a, Affiliate__V1__Advertiser ***out, size_t *n, int *more)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st;
	Affiliate__V1__Advertiser **v;
	int rc, rv = AFF_OK;
	size_t k = 0;

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)q->limit)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	st = s->st[q->editor_id > 0 ? ST_ADV_LIST_EDITOR : ST_ADV_LIST];
	sqlite3_bind_int64(st, 1, q->after);
	/* One row more than the page tells whether another page follows. */
	sqlite3_bind_int64(st, 2, (int64_t)q->limit + 1);
	if (q->editor_id > 0)
		sqlite3_bind_int64(st, 3, q->editor_id);
	*more = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == (size_t)q->limit) {
			*more = 1;
			break;
		}
		if ((v[k++] = row_advertiser(st, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		rv = sqlite_err(s->db, rc, "advertiser list");
	stmt_done(st);
	*out = v;
	*n = k;
	return (rv);
}

/* Runs a write statement to completion; its bindings are set. */
static int
step_write(sqlite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int rv = rc == SQLITE_DONE ? AFF_OK : sqlite_err(s->db, rc, what);

	stmt_done(st);
	return (rv);
}

static int
sqlite_advertiser_put(store *base, const Affiliate__V1__Advertiser *adv)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_ADV_PUT];

	if (adv->id <= 0)
		return (AFF_INVALID_ARGUMENT);
	sqlite3_bind_int64(st, 1, adv->id);
	sqlite3_bind_text(st, 2, adv->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, adv->category, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, adv->currency, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, adv->commission_rate_bps);
	sqlite3_bind_text(st, 6, adv->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, adv->website, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, adv->cookie_days);
	sqlite3_bind_int64(st, 9, aff_now_ms() / 1000);
	return (step_write(s, st, "advertiser put"));
}

static int
sqlite_eligibility_set(
    store *base, int64_t editor_id, int64_t advertiser_id, int eligible)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[eligible ? ST_ELIG_ADD : ST_ELIG_DEL];

	sqlite3_bind_int64(st, 1, editor_id);
	sqlite3_bind_int64(st, 2, advertiser_id);
	return (step_write(s, st, "eligibility set"));
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
};

int
store_open(const char *path, store **sp)
{
	return (store_sqlite_ops.open(path, sp));
}
