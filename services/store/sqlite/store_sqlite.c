/*
 * store_sqlite.c - the SQLite store: WAL, foreign keys, synchronous=FULL,
 * prepared statements per connection, schema migrations by user_version,
 * and a deterministic seed on first start.
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
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_SAVEPOINT_UNDO,
	ST_SAVEPOINT_RELEASE,
	ST_NEST_BEGIN,
	ST_NEST_UNDO,
	ST_NEST_RELEASE,
	ST_RKEY_GET,
	ST_RKEY_PRUNE,
	ST_RKEY_PUT,
	ST_APP_INSERT,
	ST_APP_OPEN,
	ST_APP_GET,
	ST_APP_LIST,
	ST_APP_DECIDE,
	ST_EVENT_INSERT,
	ST_JOB_INSERT,
	ST_JOBS_EXPIRED,
	ST_JOBS_CLAIM,
	ST_JOB_UNCLAIM,
	ST_JOB_GET,
	ST_JOB_DONE,
	ST_JOB_DEAD,
	ST_JOB_RETRY,
	ST_JOBS_RESUME,
	ST_JOB_EXTEND,
	ST_ORDER_GET,
	ST_ORDER_INSERT,
	ST_ORDER_MOVE,
	ST_ORDER_EVENT,
	ST_ORDER_LIST,
	ST_ORDERS_UNCACHED,
	ST_ORDER_CACHED,
	ST_ORDERS_ALL_CACHED,
	ST_ORDERS_CACHE_RESET,
	ST_ORDERS_GEN_SET,
	ST_ORDERS_COPY_NEW,
	ST_KEY_INSERT,
	ST_KEY_GET,
	ST_KEY_LIST,
	ST_KEY_REVOKE,
	ST_WHSEC_EXPIRE,
	ST_WHSEC_INSERT,
	ST_WHSEC_GET,
	ST_WHPOL_GET,
	ST_WHPOL_SET,
	ST_COUNT,
};

#define ORDER_COLUMNS                                                          \
	"seq, order_id, advertiser_id, editor_id, amount_cents,"              \
	" commission_cents, currency, status, created_at, updated_at"

#define APP_COLUMNS                                                            \
	"id, editor_id, advertiser_id, status, reason, created_at, updated_at"

#define KEY_COLUMNS                                                            \
	"id, role, coalesce(editor_id, 0), created_at, revoked_at"

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
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	/* One order of a group-commit batch: its failure undoes it alone. */
	[ST_SAVEPOINT] = "SAVEPOINT aff_order",
	[ST_SAVEPOINT_UNDO] = "ROLLBACK TO aff_order",
	[ST_SAVEPOINT_RELEASE] = "RELEASE aff_order",
	/* A store call inside a keyed call's transaction (call_begin). */
	[ST_NEST_BEGIN] = "SAVEPOINT aff_nest",
	[ST_NEST_UNDO] = "ROLLBACK TO aff_nest",
	[ST_NEST_RELEASE] = "RELEASE aff_nest",
	[ST_RKEY_GET] = "SELECT reply FROM request_keys WHERE scope = ?1"
	                " AND request_id = ?2 AND digest = ?3 AND created_at > ?4",
	[ST_RKEY_PRUNE] = "DELETE FROM request_keys WHERE created_at <= ?1",
	[ST_RKEY_PUT] = "INSERT INTO request_keys (scope, request_id, method,"
	                " digest, reply, created_at)"
	                " VALUES (?1, ?2, ?4, ?3, ?5, ?6)",
	[ST_APP_INSERT] = "INSERT INTO applications (editor_id, advertiser_id,"
	                  " status, created_at, updated_at, request_id)"
	                  " VALUES (?1, ?2, 'pending', ?3, ?3, ?4)",
	[ST_APP_OPEN] = "SELECT " APP_COLUMNS ", request_id FROM applications"
	                " WHERE editor_id = ?1 AND advertiser_id = ?2"
	                " AND status IN ('pending', 'approved')",
	[ST_APP_GET] = "SELECT " APP_COLUMNS " FROM applications WHERE id = ?1",
	[ST_APP_LIST] = "SELECT " APP_COLUMNS " FROM applications"
	                " WHERE id > ?1 AND (?3 = 0 OR editor_id = ?3)"
	                " AND (?4 = '' OR status = ?4) ORDER BY id LIMIT ?2",
	[ST_APP_DECIDE] = "UPDATE applications SET status = ?2, reason = ?3,"
	                  " updated_at = ?4 WHERE id = ?1 AND status = 'pending'",
	[ST_EVENT_INSERT] = "INSERT INTO application_events (application_id,"
	                    " status, reason, at) VALUES (?1, ?2, ?3, ?4)",
	[ST_JOB_INSERT] = "INSERT INTO jobs (kind, ref_id, payload, state,"
	                  " max_attempts, due_at, created_at, updated_at)"
	                  " VALUES (?1, ?2, ?3, 'queued', ?4, ?6, ?5, ?5)",
	[ST_JOBS_EXPIRED] = "SELECT id, kind, ref_id, attempts FROM jobs"
	                    " WHERE state = 'inflight' AND due_at <= ?1"
	                    " AND attempts >= max_attempts",
	[ST_JOBS_CLAIM] =
	    "UPDATE jobs SET state = 'inflight', attempts = attempts + 1,"
	    " due_at = ?1 + ?2, updated_at = ?4, prev_token = lease_token,"
	    " lease_token = lower(hex(randomblob(16)))"
	    " WHERE id IN (SELECT id FROM jobs"
	    " WHERE state IN ('queued', 'inflight') AND due_at <= ?1"
	    " AND attempts < max_attempts ORDER BY due_at LIMIT ?3)"
	    " RETURNING id, kind, attempts, payload, lease_token",
	[ST_JOB_UNCLAIM] = "UPDATE jobs SET state = 'queued',"
	                   " attempts = attempts - 1, due_at = 0,"
	                   " lease_token = prev_token, prev_token = ''"
	                   " WHERE id = ?1 AND state = 'inflight'",
	[ST_JOB_GET] = "SELECT kind, ref_id, state, attempts, max_attempts,"
	               " lease_token, prev_token FROM jobs WHERE id = ?1",
	[ST_JOB_DONE] = "UPDATE jobs SET state = 'done', updated_at = ?2"
	                " WHERE id = ?1",
	[ST_JOB_DEAD] = "UPDATE jobs SET state = 'dead', last_error = ?2,"
	                " updated_at = ?3 WHERE id = ?1",
	[ST_JOB_RETRY] = "UPDATE jobs SET state = 'queued', last_error = ?2,"
	                 " due_at = ?3, updated_at = ?4 WHERE id = ?1",
	[ST_JOBS_RESUME] = "UPDATE jobs SET due_at = ?1"
	                   " WHERE state IN ('queued', 'inflight')"
	                   " AND (state = 'inflight' OR due_at > ?1)"
	                   " RETURNING state = 'inflight'",
	[ST_JOB_EXTEND] = "UPDATE jobs SET due_at = ?3 WHERE id = ?1"
	                  " AND state = 'inflight' AND lease_token = ?2",
	[ST_ORDER_GET] = "SELECT " ORDER_COLUMNS " FROM orders WHERE order_id = ?1",
	[ST_ORDER_INSERT] =
	    "INSERT INTO orders (order_id, advertiser_id, editor_id,"
	    " amount_cents, commission_cents, currency, status, created_at,"
	    " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
	    " ON CONFLICT (order_id) DO NOTHING RETURNING " ORDER_COLUMNS,
	[ST_ORDER_MOVE] = "UPDATE orders SET status = ?2, updated_at = ?3,"
	                  " rev = rev + 1 WHERE order_id = ?1"
	                  " RETURNING " ORDER_COLUMNS,
	[ST_ORDER_EVENT] = "INSERT INTO order_events (order_id, status, at)"
	                   " VALUES (?1, ?2, ?3)",
	[ST_ORDER_LIST] =
	    "SELECT " ORDER_COLUMNS " FROM orders WHERE seq > ?1"
	    " AND (?3 = 0 OR editor_id = ?3) AND (?4 = 0 OR advertiser_id = ?4)"
	    " AND (?5 = '' OR status = ?5) ORDER BY seq LIMIT ?2",
	[ST_ORDERS_UNCACHED] = "SELECT " ORDER_COLUMNS ", rev FROM orders"
	                       " WHERE cached_rev < rev ORDER BY seq LIMIT ?1",
	[ST_ORDER_CACHED] = "UPDATE orders SET cached_rev = ?2"
	                    " WHERE seq = ?1 AND rev = ?2",
	[ST_ORDERS_ALL_CACHED] =
	    "SELECT NOT EXISTS (SELECT 1 FROM orders WHERE cached_rev < rev),"
	    " coalesce((SELECT CAST(value AS INTEGER) FROM meta"
	    " WHERE key = 'orders_gen'), 0),"
	    " coalesce((SELECT value FROM meta WHERE key = 'orders_copy'), '')",
	[ST_ORDERS_GEN_SET] = "INSERT INTO meta (key, value)"
	                      " VALUES ('orders_gen', ?1) ON CONFLICT (key)"
	                      " DO UPDATE SET value = excluded.value",
	[ST_ORDERS_COPY_NEW] = "UPDATE meta SET value = lower(hex(randomblob(8)))"
	                       " WHERE key = 'orders_copy'",
	[ST_ORDERS_CACHE_RESET] = "UPDATE orders SET cached_rev = 0"
	                          " WHERE cached_rev > 0",
	[ST_KEY_INSERT] = "INSERT INTO api_keys (role, editor_id, secret_sha256,"
	                  " created_at) VALUES (?1, ?2, ?3, ?4)"
	                  " RETURNING " KEY_COLUMNS,
	[ST_KEY_GET] = "SELECT role, coalesce(editor_id, 0), secret_sha256,"
	               " revoked_at IS NOT NULL FROM api_keys WHERE id = ?1",
	[ST_KEY_LIST] = "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY id",
	[ST_KEY_REVOKE] = "UPDATE api_keys SET revoked_at ="
	                  " coalesce(revoked_at, ?2) WHERE id = ?1"
	                  " RETURNING " KEY_COLUMNS,
	/* The secret in use now stops at ?2 (the end of the grace period);
	 * one already ending keeps its earlier end. */
	[ST_WHSEC_EXPIRE] = "UPDATE webhook_secrets SET expires_at = ?2"
	                    " WHERE advertiser_id = ?1 AND (expires_at IS NULL"
	                    " OR expires_at > ?2)",
	[ST_WHSEC_INSERT] = "INSERT INTO webhook_secrets (advertiser_id, secret,"
	                    " created_at) VALUES (?1, ?2, ?3)",
	[ST_WHSEC_GET] = "SELECT secret FROM webhook_secrets"
	                 " WHERE advertiser_id = ?1 AND (expires_at IS NULL"
	                 " OR expires_at > ?2) ORDER BY id DESC LIMIT ?3",
	[ST_WHPOL_GET] = "SELECT require_timestamp FROM webhook_policies"
	                 " WHERE advertiser_id = ?1",
	[ST_WHPOL_SET] = "INSERT INTO webhook_policies (advertiser_id,"
	                 " require_timestamp, updated_at) VALUES (?1, ?2, ?3)"
	                 " ON CONFLICT (advertiser_id) DO UPDATE SET"
	                 " require_timestamp = excluded.require_timestamp,"
	                 " updated_at = excluded.updated_at",
};

typedef struct sqlite_store {
	store base;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	char db_id[33];
	int64_t busy_started; /* for busy_nap */
	char orders_copy[40]; /* what orders_all_cached returned last */
	int depth;            /* open transactions: 1, or 2 when nested */
	int in_batch;         /* between batch_begin and batch_end */
	int batch_err;        /* why SQLite ended the batch's transaction */
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
	/* The seed belongs to the catalog (step 1); later steps only add. */
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
	return (exec_sql(db, sql));
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
	if ((rv = exec_sql(s->db, "PRAGMA journal_mode = WAL;"
	                          "PRAGMA synchronous = FULL;"
	                          "PRAGMA foreign_keys = ON;")) != AFF_OK ||
	    (rv = apply_max_pages(s->db)) != AFF_OK)
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

static void *
row_advertiser_any(sqlite3_stmt *st, aff_arena *a)
{
	return (row_advertiser(st, a));
}

/*
 * Reads one page of rows with st (parameters bound, LIMIT = limit + 1: the
 * extra row only tells that another page follows) through row().
 */
static int
list_page(sqlite_store *s, sqlite3_stmt *st, int limit,
    void *(*row)(sqlite3_stmt *, aff_arena *), aff_arena *a, void ***out,
    size_t *n, int *more, int64_t *last, const char *what)
{
	void **v;
	int rc, rv = AFF_OK;
	size_t k = 0;

	*more = 0;
	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)limit)) == NULL) {
		stmt_done(st);
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
	stmt_done(st);
	*out = v;
	*n = k;
	return (rv);
}

static int
sqlite_advertiser_list(store *base, const struct store_advertiser_query *q,
    aff_arena *a, Affiliate__V1__Advertiser ***out, size_t *n, int *more)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st;

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	st = s->st[q->editor_id > 0 ? ST_ADV_LIST_EDITOR : ST_ADV_LIST];
	sqlite3_bind_int64(st, 1, q->after);
	sqlite3_bind_int64(st, 2, (int64_t)q->limit + 1);
	if (q->editor_id > 0)
		sqlite3_bind_int64(st, 3, q->editor_id);
	return (list_page(s, st, q->limit, row_advertiser_any, a, (void ***)out,
	    n, more, NULL, "advertiser list"));
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

/* ---- transactions ---- */

static int
tx_run(sqlite_store *s, int which, const char *what)
{
	sqlite3_stmt *st = s->st[which];
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? AFF_OK : sqlite_err(s->db, rc, what));
}

/*
 * A transaction, or inside one (a keyed call's, see call_begin) a
 * savepoint, so that a store function's own rollback undoes its part
 * only and the call's transaction decides the rest.
 */
static int
tx_begin(sqlite_store *s)
{
	int rv;

	if (s->depth > 0 && !sqlite3_get_autocommit(s->db)) {
		if ((rv = tx_run(s, ST_NEST_BEGIN, "savepoint")) == AFF_OK)
			s->depth++;
		return (rv);
	}
	if ((rv = tx_run(s, ST_BEGIN, "begin")) == AFF_OK)
		s->depth = 1;
	return (rv);
}

/* Commits, or rolls back when rv is an error; returns rv or the commit's
 * error. Nested: releases the savepoint, or undoes it. */
static int
tx_end(sqlite_store *s, int rv)
{
	if (s->depth > 1) {
		s->depth--;
		if (sqlite3_get_autocommit(s->db)) {
			/* SQLite ended the outer transaction itself. */
			s->depth = 0;
			return (rv != AFF_OK ? rv : AFF_ABORTED);
		}
		if (rv != AFF_OK)
			(void)tx_run(s, ST_NEST_UNDO, "savepoint undo");
		(void)tx_run(s, ST_NEST_RELEASE, "savepoint release");
		return (rv);
	}
	s->depth = 0;
	if (rv == AFF_OK && (rv = tx_run(s, ST_COMMIT, "commit")) == AFF_OK)
		return (AFF_OK);
	if (!sqlite3_get_autocommit(s->db))
		(void)tx_run(s, ST_ROLLBACK, "rollback");
	return (rv);
}

/* ---- request keys ---- */

/* How long a request key answers for its call (and then is pruned). */
#define REQUEST_KEY_RETENTION_S 86400

static void
bind_key(sqlite3_stmt *st, const struct store_request_key *k)
{
	sqlite3_bind_text(st, 1, k->scope, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, k->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, k->digest, sizeof(k->digest), SQLITE_STATIC);
}

static int
sqlite_call_begin(store *base, const struct store_request_key *k,
    aff_arena *a, uint8_t **reply, size_t *len)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_RKEY_GET];
	int rc, rv;

	/* BEGIN IMMEDIATE: the key is looked up under the write lock, so
	 * two copies of one call cannot both miss it and both run. */
	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	bind_key(st, k);
	sqlite3_bind_int64(st, 4, aff_now_ms() / 1000 - REQUEST_KEY_RETENTION_S);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*len = (size_t)sqlite3_column_bytes(st, 0);
		if ((*reply = aff_arena_alloc(a, *len > 0 ? *len : 1)) == NULL)
			rv = AFF_RESOURCE_EXHAUSTED;
		else {
			memcpy(*reply, sqlite3_column_blob(st, 0), *len);
			rv = AFF_ALREADY_EXISTS;
		}
	} else if (rc != SQLITE_DONE)
		rv = sqlite_err(s->db, rc, "request key");
	stmt_done(st);
	if (rv != AFF_OK)
		(void)tx_end(s, AFF_ABORTED);
	return (rv);
}

static int
sqlite_call_end(store *base, const struct store_request_key *k,
    const uint8_t *reply, size_t len)
{
	sqlite_store *s = (sqlite_store *)base;
	int64_t now = aff_now_ms() / 1000;
	sqlite3_stmt *st;
	int rv;

	if (reply == NULL) {
		(void)tx_end(s, AFF_ABORTED);
		return (AFF_OK);
	}
	st = s->st[ST_RKEY_PRUNE];
	sqlite3_bind_int64(st, 1, now - REQUEST_KEY_RETENTION_S);
	if ((rv = step_write(s, st, "request keys prune")) == AFF_OK) {
		st = s->st[ST_RKEY_PUT];
		bind_key(st, k);
		sqlite3_bind_text(st, 4, k->method, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, reply, (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, now);
		rv = step_write(s, st, "request key");
	}
	return (tx_end(s, rv));
}

/* ---- applications ---- */

static Affiliate__V1__Application *
row_application(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__Application *app;

	if ((app = aff_arena_alloc(a, sizeof(*app))) == NULL)
		return (NULL);
	affiliate__v1__application__init(app);
	app->id = sqlite3_column_int64(st, 0);
	app->editor_id = sqlite3_column_int64(st, 1);
	app->advertiser_id = sqlite3_column_int64(st, 2);
	app->status = col_text(st, 3, a);
	app->reason = col_text(st, 4, a);
	app->created_at = col_time(st, 5, a);
	app->updated_at = col_time(st, 6, a);
	if (app->status == NULL || app->reason == NULL ||
	    app->created_at == NULL || app->updated_at == NULL)
		return (NULL);
	return (app);
}

static void *
row_application_any(sqlite3_stmt *st, aff_arena *a)
{
	return (row_application(st, a));
}

/*
 * Steps a statement (parameters bound) that returns at most one row and
 * reads it with row: AFF_OK with *out set, AFF_NOT_FOUND when there is no
 * row (*out untouched), or the error; what names it in the log.
 */
static int
one_row(sqlite_store *s, sqlite3_stmt *st,
    void *(*row)(sqlite3_stmt *, aff_arena *), aff_arena *a, void **out,
    const char *what)
{
	int rc = sqlite3_step(st), rv;

	if (rc == SQLITE_ROW)
		rv = (*out = row(st, a)) != NULL ? AFF_OK : AFF_RESOURCE_EXHAUSTED;
	else if (rc == SQLITE_DONE)
		rv = AFF_NOT_FOUND;
	else
		rv = sqlite_err(s->db, rc, what);
	stmt_done(st);
	return (rv);
}

/* Reads one application with a statement whose parameters are bound. */
static int
one_application(sqlite_store *s, sqlite3_stmt *st, aff_arena *a,
    Affiliate__V1__Application **out)
{
	void *r = NULL;
	int rv = one_row(s, st, row_application_any, a, &r, "application read");

	if (rv == AFF_OK)
		*out = r;
	return (rv);
}

static int
event_insert(sqlite_store *s, int64_t app_id, const char *status,
    const char *reason, int64_t now_s)
{
	sqlite3_stmt *st = s->st[ST_EVENT_INSERT];

	sqlite3_bind_int64(st, 1, app_id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_s);
	return (step_write(s, st, "event insert"));
}

static int
sqlite_application_create(store *base, int64_t editor_id,
    int64_t advertiser_id, const char *request_id,
    const struct store_job_policy *p, aff_arena *a,
    Affiliate__V1__Application **out)
{
	sqlite_store *s = (sqlite_store *)base;
	Affiliate__V1__ReviewApplicationJob job =
	    AFFILIATE__V1__REVIEW_APPLICATION_JOB__INIT;
	uint8_t payload[64];
	size_t plen;
	int64_t now_ms = aff_now_ms(), id;
	sqlite3_stmt *st;
	int rv;

	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	st = s->st[ST_APP_OPEN];
	sqlite3_bind_int64(st, 1, editor_id);
	sqlite3_bind_int64(st, 2, advertiser_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *made_by = (const char *)sqlite3_column_text(st, 7);
		int same = request_id != NULL && request_id[0] != '\0' &&
		    made_by != NULL && strcmp(made_by, request_id) == 0;
		*out = row_application(st, a);
		stmt_done(st);
		if (*out == NULL)
			rv = AFF_RESOURCE_EXHAUSTED;
		else
			rv = same ? AFF_OK : AFF_ALREADY_EXISTS;
		(void)tx_end(s, AFF_ABORTED); /* nothing written: roll back */
		return (rv);
	}
	stmt_done(st);
	st = s->st[ST_APP_INSERT];
	sqlite3_bind_int64(st, 1, editor_id);
	sqlite3_bind_int64(st, 2, advertiser_id);
	sqlite3_bind_int64(st, 3, now_ms / 1000);
	sqlite3_bind_text(st, 4, request_id != NULL ? request_id : "", -1,
	    SQLITE_STATIC);
	if ((rv = step_write(s, st, "application insert")) != AFF_OK)
		goto done;
	id = sqlite3_last_insert_rowid(s->db);
	if ((rv = event_insert(s, id, "pending", "", now_ms / 1000)) != AFF_OK)
		goto done;
	job.application_id = id;
	job.editor_id = editor_id;
	job.advertiser_id = advertiser_id;
	plen = affiliate__v1__review_application_job__pack(&job, payload);
	st = s->st[ST_JOB_INSERT];
	sqlite3_bind_text(st, 1, "review_application", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	sqlite3_bind_blob(st, 3, payload, (int)plen, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, p->max_attempts);
	sqlite3_bind_int64(st, 5, now_ms);
	sqlite3_bind_int64(st, 6, aff_mono_ms()); /* due now (store.h) */
	if ((rv = step_write(s, st, "job insert")) != AFF_OK)
		goto done;
	st = s->st[ST_APP_GET];
	sqlite3_bind_int64(st, 1, id);
	rv = one_application(s, st, a, out);
done:
	return (tx_end(s, rv));
}

static int
sqlite_application_get(
    store *base, int64_t id, aff_arena *a, Affiliate__V1__Application **out)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_APP_GET];

	sqlite3_bind_int64(st, 1, id);
	return (one_application(s, st, a, out));
}

static int
sqlite_application_list(store *base, const struct store_application_query *q,
    aff_arena *a, Affiliate__V1__Application ***out, size_t *n, int *more)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_APP_LIST];

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	sqlite3_bind_int64(st, 1, q->after);
	sqlite3_bind_int64(st, 2, (int64_t)q->limit + 1);
	sqlite3_bind_int64(st, 3, q->editor_id);
	sqlite3_bind_text(
	    st, 4, q->status != NULL ? q->status : "", -1, SQLITE_STATIC);
	return (list_page(s, st, q->limit, row_application_any, a,
	    (void ***)out, n, more, NULL, "application list"));
}

/* ---- jobs ---- */

/* Decides a pending application (once: a decided one stays decided). */
static int
application_decide(sqlite_store *s, int64_t app_id, const char *status,
    const char *reason, int64_t now_s)
{
	sqlite3_stmt *st = s->st[ST_APP_DECIDE];
	int rv;

	sqlite3_bind_int64(st, 1, app_id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_s);
	if ((rv = step_write(s, st, "application decide")) != AFF_OK)
		return (rv);
	if (sqlite3_changes(s->db) == 0)
		return (AFF_OK);
	return (event_insert(s, app_id, status, reason, now_s));
}

/* A job out of attempts: dead, and what it was for rejected. */
static int
job_kill(sqlite_store *s, int64_t job_id, const char *kind, int64_t ref_id,
    const char *why)
{
	sqlite3_stmt *st = s->st[ST_JOB_DEAD];
	int rv;

	sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, aff_now_ms()); /* shown to people */
	if ((rv = step_write(s, st, "job dead")) != AFF_OK)
		return (rv);
	aff_warn("jobs: job %lld (%s %lld) is dead: %s", (long long)job_id, kind,
	    (long long)ref_id, why);
	if (strcmp(kind, "review_application") == 0)
		return (application_decide(
		    s, ref_id, "rejected", why, aff_now_ms() / 1000));
	return (AFF_OK);
}

static int
sqlite_jobs_claim(store *base, int64_t now_ms, const struct store_job_policy *p,
    int max, aff_arena *a, struct store_job **out, size_t *n)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st;
	struct store_job *v;
	struct {
		int64_t id, ref;
		char kind[64];
		int attempts;
	} dead[32];
	int rc, rv, nd = 0;
	size_t k = 0;

	*n = 0;
	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)max)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	/* In flight, no result, no attempts left: dead. */
	st = s->st[ST_JOBS_EXPIRED];
	sqlite3_bind_int64(st, 1, now_ms);
	while (nd < 32 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		dead[nd].id = sqlite3_column_int64(st, 0);
		snprintf(dead[nd].kind, sizeof(dead[nd].kind), "%s",
		    (const char *)sqlite3_column_text(st, 1));
		dead[nd].ref = sqlite3_column_int64(st, 2);
		dead[nd].attempts = sqlite3_column_int(st, 3);
		nd++;
	}
	stmt_done(st);
	for (int i = 0; i < nd && rv == AFF_OK; i++) {
		char why[96];
		snprintf(why, sizeof(why), "no result after %d attempts",
		    dead[i].attempts);
		rv = job_kill(s, dead[i].id, dead[i].kind, dead[i].ref, why);
	}
	if (rv != AFF_OK)
		return (tx_end(s, rv));
	st = s->st[ST_JOBS_CLAIM];
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, p->visibility_ms);
	sqlite3_bind_int(st, 3, max);
	sqlite3_bind_int64(st, 4, aff_now_ms());
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k < (size_t)max) {
		struct store_job *j = &v[k];
		const void *blob = sqlite3_column_blob(st, 3);
		j->payload_len = (size_t)sqlite3_column_bytes(st, 3);
		j->id = sqlite3_column_int64(st, 0);
		j->kind = col_text(st, 1, a);
		j->attempt = sqlite3_column_int(st, 2);
		j->payload = aff_arena_alloc(a, j->payload_len);
		j->token = col_text(st, 4, a);
		if (j->kind == NULL || j->payload == NULL || j->token == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		memcpy((void *)j->payload, blob, j->payload_len);
		k++;
	}
	if (rv == AFF_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		rv = sqlite_err(s->db, rc, "jobs claim");
	stmt_done(st);
	if ((rv = tx_end(s, rv)) != AFF_OK)
		return (rv);
	*out = v;
	*n = k;
	return (AFF_OK);
}

static int
sqlite_jobs_unclaim(store *base, const struct store_job *jobs, size_t n)
{
	sqlite_store *s = (sqlite_store *)base;
	int rv;

	if (n == 0)
		return (AFF_OK);
	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	for (size_t i = 0; i < n && rv == AFF_OK; i++) {
		sqlite3_stmt *st = s->st[ST_JOB_UNCLAIM];
		sqlite3_bind_int64(st, 1, jobs[i].id);
		rv = step_write(s, st, "job unclaim");
	}
	return (tx_end(s, rv));
}

/* Applies a successful result of kind review_application. */
static int
apply_review(sqlite_store *s, int64_t app_id, const Affiliate__V1__JobResult *r)
{
	Affiliate__V1__ReviewApplicationResult *rr;
	int rv;

	rr = affiliate__v1__review_application_result__unpack(
	    NULL, r->payload.len, r->payload.data);
	if (rr == NULL)
		return (AFF_INVALID_ARGUMENT);
	if (strcmp(rr->decision, "approved") != 0 &&
	    strcmp(rr->decision, "rejected") != 0)
		rv = AFF_INVALID_ARGUMENT;
	else
		rv = application_decide(
		    s, app_id, rr->decision, rr->reason, aff_now_ms() / 1000);
	affiliate__v1__review_application_result__free_unpacked(rr, NULL);
	return (rv);
}

static int
sqlite_job_finish(store *base, const Affiliate__V1__JobResult *r,
    int64_t now_ms, const struct store_job_policy *p)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st;
	char kind[64], state[16], why[512], lease[40], prev[40];
	const char *token = r->token != NULL ? r->token : "";
	int64_t ref;
	int attempts, max_attempts, rc, rv, current;

	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	st = s->st[ST_JOB_GET];
	sqlite3_bind_int64(st, 1, r->job_id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		rv = rc == SQLITE_DONE ? AFF_NOT_FOUND
		                       : sqlite_err(s->db, rc, "job get");
		stmt_done(st);
		return (tx_end(s, rv));
	}
	snprintf(kind, sizeof(kind), "%s", (const char *)sqlite3_column_text(st, 0));
	ref = sqlite3_column_int64(st, 1);
	snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(st, 2));
	attempts = sqlite3_column_int(st, 3);
	max_attempts = sqlite3_column_int(st, 4);
	snprintf(lease, sizeof(lease), "%s", (const char *)sqlite3_column_text(st, 5));
	snprintf(prev, sizeof(prev), "%s", (const char *)sqlite3_column_text(st, 6));
	stmt_done(st);

	/* Only a delivery the server made may answer: the current lease, or
	 * the one before it (a slow result that arrives after its job was
	 * delivered again still counts). */
	current = token[0] != '\0' && strcmp(token, lease) == 0;
	if (!current && (token[0] == '\0' || strcmp(token, prev) != 0)) {
		(void)tx_end(s, AFF_ABORTED);
		return (strcmp(state, "done") == 0 || strcmp(state, "dead") == 0
		        ? AFF_ALREADY_EXISTS
		        : AFF_PERMISSION_DENIED);
	}
	/* Finished already, or a failure from a delivery that is no longer
	 * the one running: a duplicate, nothing changes. */
	if (strcmp(state, "done") == 0 || strcmp(state, "dead") == 0 ||
	    (!r->ok && (!current || strcmp(state, "inflight") != 0))) {
		(void)tx_end(s, AFF_ABORTED);
		return (AFF_ALREADY_EXISTS);
	}
	if (r->ok) {
		if (strcmp(kind, "review_application") == 0)
			rv = apply_review(s, ref, r);
		if (rv == AFF_OK) {
			st = s->st[ST_JOB_DONE];
			sqlite3_bind_int64(st, 1, r->job_id);
			sqlite3_bind_int64(st, 2, aff_now_ms());
			rv = step_write(s, st, "job done");
		}
		return (tx_end(s, rv));
	}
	snprintf(why, sizeof(why), "review failed: %.400s",
	    r->error[0] != '\0' ? r->error : "no reason given");
	if (attempts >= max_attempts)
		return (tx_end(s, job_kill(s, r->job_id, kind, ref, why)));
	{
		int64_t backoff = p->backoff_ms;
		for (int i = 1; i < attempts && backoff < p->backoff_max_ms; i++)
			backoff *= 2;
		if (backoff > p->backoff_max_ms)
			backoff = p->backoff_max_ms;
		st = s->st[ST_JOB_RETRY];
		sqlite3_bind_int64(st, 1, r->job_id);
		sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, now_ms + backoff);
		sqlite3_bind_int64(st, 4, aff_now_ms());
		rv = step_write(s, st, "job retry");
	}
	return (tx_end(s, rv));
}

static int
sqlite_job_extend(store *base, int64_t job_id, const char *token,
    int64_t now_ms, const struct store_job_policy *p)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_JOB_EXTEND];
	int rv;

	if (token == NULL || token[0] == '\0')
		return (AFF_NOT_FOUND);
	sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_text(st, 2, token, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms + p->visibility_ms);
	if ((rv = step_write(s, st, "job extend")) != AFF_OK)
		return (rv);
	return (sqlite3_changes(s->db) == 1 ? AFF_OK : AFF_NOT_FOUND);
}

static int
sqlite_jobs_resume(store *base, int64_t now_ms, int *n)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_JOBS_RESUME];
	int rc, rv;

	*n = 0;
	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	sqlite3_bind_int64(st, 1, now_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*n += sqlite3_column_int(st, 0);
	if (rc != SQLITE_DONE)
		rv = sqlite_err(s->db, rc, "jobs resume");
	stmt_done(st);
	return (tx_end(s, rv));
}

/* ---- orders ---- */

static Affiliate__V1__Order *
row_order(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__Order *o;

	if ((o = aff_arena_alloc(a, sizeof(*o))) == NULL)
		return (NULL);
	affiliate__v1__order__init(o);
	o->order_id = col_text(st, 1, a);
	o->advertiser_id = sqlite3_column_int64(st, 2);
	o->editor_id = sqlite3_column_int64(st, 3);
	o->amount_cents = sqlite3_column_int64(st, 4);
	o->commission_cents = sqlite3_column_int64(st, 5);
	o->currency = col_text(st, 6, a);
	o->status = col_text(st, 7, a);
	o->created_at = col_time(st, 8, a);
	o->updated_at = col_time(st, 9, a);
	if (o->order_id == NULL || o->currency == NULL || o->status == NULL ||
	    o->created_at == NULL || o->updated_at == NULL)
		return (NULL);
	return (o);
}

static void *
row_order_any(sqlite3_stmt *st, aff_arena *a)
{
	return (row_order(st, a));
}

/* Runs a statement that returns one order row (parameters bound). */
static int
one_order(sqlite_store *s, sqlite3_stmt *st, aff_arena *a,
    Affiliate__V1__Order **out, const char *what)
{
	void *r = NULL;
	int rv = one_row(s, st, row_order_any, a, &r, what);

	if (rv == AFF_OK)
		*out = r;
	return (rv);
}

/* pending may move to approved or declined; nothing else moves. */
static int
order_may_move(const char *from, const char *to)
{
	return (strcmp(from, "pending") == 0 &&
	    (strcmp(to, "approved") == 0 || strcmp(to, "declined") == 0));
}

static int
order_event(sqlite_store *s, const char *order_id, const char *status,
    int64_t now_s)
{
	sqlite3_stmt *st = s->st[ST_ORDER_EVENT];

	sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_s);
	return (step_write(s, st, "order event"));
}

/* The work of order_put, inside a transaction or savepoint. */
static int
order_put_tx(sqlite_store *s, const struct store_order_in *in, aff_arena *a,
    Affiliate__V1__Order **out, enum store_order_outcome *outcome)
{
	const char *status = in->status != NULL && in->status[0] != '\0'
	    ? in->status
	    : NULL;
	int64_t now_s = aff_now_ms() / 1000;
	Affiliate__V1__Order *o;
	sqlite3_stmt *st;
	int rv;

	/* The common case, a new order, is one statement; a conflict (the
	 * same order_id again) inserts nothing and reads what is stored. */
	st = s->st[ST_ORDER_INSERT];
	sqlite3_bind_text(st, 1, in->order_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, in->advertiser_id);
	sqlite3_bind_int64(st, 3, in->editor_id);
	sqlite3_bind_int64(st, 4, in->amount_cents);
	sqlite3_bind_int64(st, 5, in->commission_cents);
	sqlite3_bind_text(st, 6, in->currency, -1, SQLITE_STATIC);
	sqlite3_bind_text(
	    st, 7, status != NULL ? status : "pending", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, now_s);
	rv = one_order(s, st, a, out, "order insert");
	if (rv == AFF_OK) {
		*outcome = STORE_ORDER_CREATED;
		return (order_event(s, in->order_id, (*out)->status, now_s));
	}
	/* The foreign keys check the ids (no read on the request path); the
	 * rare refusal says which. */
	if (rv == AFF_INVALID_ARGUMENT &&
	    sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY) {
		*outcome = exists2(s, ST_EDITOR_EXISTS, in->editor_id, 0,
		               AFF_NOT_FOUND) == AFF_NOT_FOUND
		    ? STORE_ORDER_NO_EDITOR
		    : STORE_ORDER_NO_ADVERTISER;
		return (AFF_NOT_FOUND);
	}
	if (rv != AFF_NOT_FOUND)
		return (rv);
	st = s->st[ST_ORDER_GET];
	sqlite3_bind_text(st, 1, in->order_id, -1, SQLITE_STATIC);
	rv = one_order(s, st, a, &o, "order get");
	if (rv != AFF_OK)
		return (rv);
	*out = o;
	if (o->advertiser_id != in->advertiser_id ||
	    o->editor_id != in->editor_id ||
	    o->amount_cents != in->amount_cents ||
	    o->commission_cents != in->commission_cents ||
	    strcmp(o->currency, in->currency) != 0)
		return (AFF_ALREADY_EXISTS);
	if (status == NULL || strcmp(status, o->status) == 0) {
		*outcome = STORE_ORDER_DUPLICATE;
		return (AFF_OK);
	}
	if (!order_may_move(o->status, status))
		return (AFF_FAILED_PRECONDITION);
	st = s->st[ST_ORDER_MOVE];
	sqlite3_bind_text(st, 1, in->order_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_s);
	if ((rv = one_order(s, st, a, out, "order move")) != AFF_OK)
		return (rv);
	*outcome = STORE_ORDER_MOVED;
	return (order_event(s, in->order_id, status, now_s));
}

/*
 * One order of a batch, in a savepoint of the batch's transaction: any
 * failure (a refusal, a constraint, a full disk that SQLite survived)
 * undoes this order alone, and the rest of the batch still commits. When
 * SQLite itself ended the transaction (it may after SQLITE_FULL, IOERR or
 * NOMEM), nothing of the batch holds any more: AFF_ABORTED, for this and
 * every later order, and batch_end reports the cause.
 */
static int
order_put_batched(sqlite_store *s, const struct store_order_in *in,
    aff_arena *a, Affiliate__V1__Order **out,
    enum store_order_outcome *outcome)
{
	int rv;

	if (s->batch_err != AFF_OK)
		return (AFF_ABORTED);
	if ((rv = tx_run(s, ST_SAVEPOINT, "savepoint")) != AFF_OK)
		goto gone;
	rv = order_put_tx(s, in, a, out, outcome);
	if (sqlite3_get_autocommit(s->db))
		goto gone;
	if (rv != AFF_OK && tx_run(s, ST_SAVEPOINT_UNDO, "savepoint undo") !=
	        AFF_OK)
		goto gone;
	if (tx_run(s, ST_SAVEPOINT_RELEASE, "savepoint release") != AFF_OK)
		goto gone;
	return (rv);
gone:
	if (!sqlite3_get_autocommit(s->db))
		(void)tx_run(s, ST_ROLLBACK, "rollback");
	s->batch_err = rv != AFF_OK ? rv : AFF_INTERNAL;
	return (AFF_ABORTED);
}

static int
sqlite_order_put(store *base, const struct store_order_in *in, aff_arena *a,
    Affiliate__V1__Order **out, enum store_order_outcome *outcome)
{
	sqlite_store *s = (sqlite_store *)base;
	int rv;

	if (s->in_batch)
		return (order_put_batched(s, in, a, out, outcome));
	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	rv = order_put_tx(s, in, a, out, outcome);
	if (rv != AFF_OK) {
		/* Refusals (duplicates with other content, moves back) wrote
		 * nothing: roll back, keep the refusal and the stored order. */
		(void)tx_end(s, AFF_ABORTED);
		return (rv);
	}
	return (tx_end(s, AFF_OK));
}

static int
sqlite_order_list(store *base, const struct store_order_query *q, aff_arena *a,
    Affiliate__V1__Order ***out, size_t *n, int64_t *next)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_ORDER_LIST];
	int64_t last = 0;
	int more, rv;

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	sqlite3_bind_int64(st, 1, q->after);
	sqlite3_bind_int64(st, 2, (int64_t)q->limit + 1);
	sqlite3_bind_int64(st, 3, q->editor_id);
	sqlite3_bind_int64(st, 4, q->advertiser_id);
	sqlite3_bind_text(
	    st, 5, q->status != NULL ? q->status : "", -1, SQLITE_STATIC);
	/* The cursor is the seq, which the Order message does not carry. */
	rv = list_page(s, st, q->limit, row_order_any, a, (void ***)out, n, &more,
	    &last, "order list");
	*next = rv == AFF_OK && more ? last : 0;
	return (rv);
}

static int
sqlite_orders_uncached(store *base, int max, aff_arena *a,
    struct store_order_row **out, size_t *n)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_ORDERS_UNCACHED];
	struct store_order_row *v;
	int rc, rv = AFF_OK;
	size_t k = 0;

	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)max)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	sqlite3_bind_int(st, 1, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k < (size_t)max) {
		v[k].seq = sqlite3_column_int64(st, 0);
		v[k].rev = sqlite3_column_int64(st, 10);
		if ((v[k].order = row_order(st, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		k++;
	}
	if (rv == AFF_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		rv = sqlite_err(s->db, rc, "orders uncached");
	stmt_done(st);
	*out = v;
	*n = k;
	return (rv);
}

static int
orders_gen_set(sqlite_store *s, int64_t gen)
{
	sqlite3_stmt *st = s->st[ST_ORDERS_GEN_SET];

	sqlite3_bind_int64(st, 1, gen);
	return (step_write(s, st, "orders gen"));
}

static int
sqlite_orders_mark_cached(store *base, const struct store_order_row *rows,
    size_t n, int64_t gen)
{
	sqlite_store *s = (sqlite_store *)base;
	int rv;

	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	for (size_t i = 0; i < n && rv == AFF_OK; i++) {
		sqlite3_stmt *st = s->st[ST_ORDER_CACHED];
		sqlite3_bind_int64(st, 1, rows[i].seq);
		sqlite3_bind_int64(st, 2, rows[i].rev);
		rv = step_write(s, st, "order cached");
	}
	if (rv == AFF_OK)
		rv = orders_gen_set(s, gen);
	return (tx_end(s, rv));
}

static int
sqlite_orders_all_cached(store *base, const char **copy, int64_t *gen)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_ORDERS_ALL_CACHED];
	int rc = sqlite3_step(st), rv;

	if (rc == SQLITE_ROW) {
		rv = sqlite3_column_int(st, 0) ? AFF_OK : AFF_NOT_FOUND;
		*gen = sqlite3_column_int64(st, 1);
		snprintf(s->orders_copy, sizeof(s->orders_copy), "%s",
		    (const char *)sqlite3_column_text(st, 2));
		*copy = s->orders_copy;
	} else
		rv = sqlite_err(s->db, rc, "orders all cached");
	stmt_done(st);
	return (rv);
}

static int
sqlite_orders_cache_reset(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	int rv;

	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	rv = step_write(s, s->st[ST_ORDERS_CACHE_RESET], "orders cache reset");
	if (rv == AFF_OK)
		rv = step_write(s, s->st[ST_ORDERS_COPY_NEW], "orders copy id");
	if (rv == AFF_OK)
		rv = orders_gen_set(s, 0);
	return (tx_end(s, rv));
}

/* ---- API keys and webhook secrets ---- */

static Affiliate__V1__ApiKey *
row_key(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__ApiKey *k;

	if ((k = aff_arena_alloc(a, sizeof(*k))) == NULL)
		return (NULL);
	affiliate__v1__api_key__init(k);
	k->id = sqlite3_column_int64(st, 0);
	k->role = col_text(st, 1, a);
	k->editor_id = sqlite3_column_int64(st, 2);
	k->created_at = col_time(st, 3, a);
	k->revoked_at = sqlite3_column_type(st, 4) == SQLITE_NULL
	    ? ""
	    : col_time(st, 4, a);
	if (k->role == NULL || k->created_at == NULL || k->revoked_at == NULL)
		return (NULL);
	return (k);
}

static void *
row_key_any(sqlite3_stmt *st, aff_arena *a)
{
	return (row_key(st, a));
}

/* Steps a statement RETURNING KEY_COLUMNS: one key or AFF_NOT_FOUND. */
static int
one_key(sqlite_store *s, sqlite3_stmt *st, aff_arena *a,
    Affiliate__V1__ApiKey **out, const char *what)
{
	void *r = NULL;
	int rv = one_row(s, st, row_key_any, a, &r, what);

	if (rv == AFF_OK)
		*out = r;
	return (rv);
}

static int
sqlite_key_create(store *base, int64_t editor_id,
    const unsigned char sha256[32], aff_arena *a, Affiliate__V1__ApiKey **out)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_KEY_INSERT];
	int rv;

	sqlite3_bind_text(st, 1, editor_id > 0 ? "editor" : "admin", -1,
	    SQLITE_STATIC);
	if (editor_id > 0)
		sqlite3_bind_int64(st, 2, editor_id);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_blob(st, 3, sha256, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, aff_now_ms() / 1000);
	rv = one_key(s, st, a, out, "key create");
	/* The only constraint a checked editor id can break is the editor's
	 * foreign key. */
	return (rv == AFF_INVALID_ARGUMENT ? AFF_NOT_FOUND : rv);
}

static int
sqlite_key_get(store *base, int64_t id, struct store_key *k)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_KEY_GET];
	int rc, rv;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 2) == 32) {
		const char *role = (const char *)sqlite3_column_text(st, 0);
		k->admin = role != NULL && strcmp(role, "admin") == 0;
		k->editor_id = sqlite3_column_int64(st, 1);
		memcpy(k->sha256, sqlite3_column_blob(st, 2), 32);
		k->revoked = sqlite3_column_int(st, 3);
		rv = AFF_OK;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		rv = AFF_NOT_FOUND;
	else
		rv = sqlite_err(s->db, rc, "key get");
	stmt_done(st);
	return (rv);
}

static int
sqlite_key_list(
    store *base, aff_arena *a, Affiliate__V1__ApiKey ***out, size_t *n)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_KEY_LIST];
	void **v = NULL, **nv;
	size_t k = 0, cap = 0;
	int rc, rv = AFF_OK;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			cap = cap > 0 ? cap * 2 : 16;
			if ((nv = aff_arena_alloc(a, cap * sizeof(*v))) == NULL) {
				rv = AFF_RESOURCE_EXHAUSTED;
				break;
			}
			if (k > 0)
				memcpy(nv, v, k * sizeof(*v));
			v = nv;
		}
		if ((v[k++] = row_key_any(st, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
	}
	if (rv == AFF_OK && rc != SQLITE_DONE)
		rv = sqlite_err(s->db, rc, "key list");
	stmt_done(st);
	*out = (Affiliate__V1__ApiKey **)v;
	*n = k;
	return (rv);
}

static int
sqlite_key_revoke(
    store *base, int64_t id, aff_arena *a, Affiliate__V1__ApiKey **out)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_KEY_REVOKE];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, aff_now_ms() / 1000);
	return (one_key(s, st, a, out, "key revoke"));
}

static int
sqlite_webhook_secret_rotate(store *base, int64_t advertiser_id,
    const char *secret, int64_t grace_until, int *replaced)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st;
	int rv;

	if ((rv = tx_begin(s)) != AFF_OK)
		return (rv);
	st = s->st[ST_WHSEC_EXPIRE];
	sqlite3_bind_int64(st, 1, advertiser_id);
	sqlite3_bind_int64(st, 2, grace_until);
	rv = step_write(s, st, "webhook secret expire");
	*replaced = sqlite3_changes(s->db) > 0;
	if (rv == AFF_OK) {
		st = s->st[ST_WHSEC_INSERT];
		sqlite3_bind_int64(st, 1, advertiser_id);
		sqlite3_bind_text(st, 2, secret, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, aff_now_ms() / 1000);
		rv = step_write(s, st, "webhook secret insert");
		if (rv == AFF_INVALID_ARGUMENT) /* the advertiser's foreign key */
			rv = AFF_NOT_FOUND;
	}
	return (tx_end(s, rv));
}

static int
sqlite_webhook_secrets_get(store *base, int64_t advertiser_id, int64_t now,
    aff_arena *a, char **out, size_t max, size_t *n)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_WHSEC_GET];
	int rc, rv = AFF_OK;

	*n = 0;
	sqlite3_bind_int64(st, 1, advertiser_id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((out[*n] = col_text(st, 0, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		(*n)++;
	}
	if (rv == AFF_OK && rc != SQLITE_DONE)
		rv = sqlite_err(s->db, rc, "webhook secrets");
	stmt_done(st);
	return (rv);
}

static int
sqlite_webhook_policy_get(store *base, int64_t advertiser_id,
    int *require_timestamp)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_WHPOL_GET];
	int rc, rv = AFF_OK;

	*require_timestamp = 0;
	sqlite3_bind_int64(st, 1, advertiser_id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*require_timestamp = sqlite3_column_int(st, 0) != 0;
	else if (rc != SQLITE_DONE)
		rv = sqlite_err(s->db, rc, "webhook policy");
	stmt_done(st);
	return (rv);
}

static int
sqlite_webhook_policy_set(store *base, int64_t advertiser_id,
    int require_timestamp)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = s->st[ST_WHPOL_SET];
	int rv;

	sqlite3_bind_int64(st, 1, advertiser_id);
	sqlite3_bind_int(st, 2, require_timestamp != 0);
	sqlite3_bind_int64(st, 3, aff_now_ms() / 1000);
	rv = step_write(s, st, "webhook policy set");
	if (rv == AFF_INVALID_ARGUMENT) /* the advertiser's foreign key */
		rv = AFF_NOT_FOUND;
	return (rv);
}

static int
sqlite_batch_begin(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	int rv;

	if ((rv = tx_begin(s)) == AFF_OK) {
		s->in_batch = 1;
		s->batch_err = AFF_OK;
	}
	return (rv);
}

static int
sqlite_batch_end(store *base, int rv)
{
	sqlite_store *s = (sqlite_store *)base;

	s->in_batch = 0;
	if (s->batch_err != AFF_OK) {
		rv = s->batch_err;
		s->batch_err = AFF_OK;
		return (rv);
	}
	return (tx_end(s, rv));
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
