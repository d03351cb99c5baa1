/*
 * store_sqlite_private.h - private to the SQLite backend (services/store/
 * sqlite/): the connection struct, the statement tables of its domain
 * files, transactions, and the step/read helpers they share. Nothing
 * outside this folder includes it; the rest of the server sees store.h.
 *
 * Each domain file (catalog, applications, jobs, orders, keys) keeps its
 * SQL and the enum that names it in one X-macro list, so a statement and
 * its name cannot drift apart:
 *
 *   #define STATEMENTS(X) X(ST_APP_GET, "SELECT ...") ...
 *   enum { STATEMENTS(SQLITE_STMT_ENUM) ST_COUNT };
 *   static const char *const stmt_sql[] = { STATEMENTS(SQLITE_STMT_SQL) };
 *
 * and hands the table to the opening code (struct store_sqlite_statements),
 * which prepares every statement of every domain on each connection.
 */
#ifndef STORE_SQLITE_PRIVATE_H
#define STORE_SQLITE_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "aff_arena.h"
#include "store.h"

#define SQLITE_STMT_ENUM(id, sql) id,
#define SQLITE_STMT_SQL(id, sql) [id] = sql,

/* The statement tables, one per file; SQ_* indexes sqlite_store.st. */
enum store_sqlite_domain {
	SQ_CORE,         /* transactions (store_sqlite.c) */
	SQ_CATALOG,      /* store_sqlite_catalog.c */
	SQ_APPLICATIONS, /* store_sqlite_applications.c */
	SQ_JOBS,         /* store_sqlite_jobs.c */
	SQ_ORDERS,       /* store_sqlite_orders.c */
	SQ_KEYS,         /* store_sqlite_keys.c */
	SQ_POSTBACKS,    /* store_sqlite_postbacks.c */
	SQ_REPORTS,      /* store_sqlite_reports.c */
	SQ_DOMAINS,
};

struct store_sqlite_statements {
	const char *const *sql; /* indexed by the file's own enum */
	int n;
};

extern const struct store_sqlite_statements store_sqlite_core_statements;
extern const struct store_sqlite_statements store_sqlite_catalog_statements;
extern const struct store_sqlite_statements
    store_sqlite_applications_statements;
extern const struct store_sqlite_statements store_sqlite_jobs_statements;
extern const struct store_sqlite_statements store_sqlite_orders_statements;
extern const struct store_sqlite_statements store_sqlite_keys_statements;
extern const struct store_sqlite_statements store_sqlite_postbacks_statements;
extern const struct store_sqlite_statements store_sqlite_reports_statements;

typedef struct sqlite_store {
	store base;
	sqlite3 *db;
	sqlite3_stmt **st[SQ_DOMAINS]; /* each domain's prepared statements */
	char db_id[33];
	int64_t busy_started; /* for busy_nap */
	char orders_copy[40]; /* what orders_all_cached returned last */
	int depth;            /* open transactions: 1, or 2 when nested */
	int in_batch;         /* between batch_begin and batch_end */
	int batch_err;        /* why SQLite ended the batch's transaction */
	int batch_tuned;      /* the group-commit settings are applied */
} sqlite_store;

/* The store behind a handle of this backend. */
#define SQLITE_STORE(base) ((sqlite_store *)(base))

/*
 * The schema's migration steps, generated at build time from
 * schema/NNNN_*.sql (cmake/AffiliateEmbedSchema.cmake): store_sqlite_schema_steps[i] takes
 * PRAGMA user_version from i to i + 1; store_sqlite_schema_version is how many
 * there are. Never edit a shipped step: add a file.
 */
extern const char *const store_sqlite_schema_steps[];
extern const int store_sqlite_schema_version;

/* ---- the VFS (store_sqlite_vfs.c) ---- */

/* The name of the VFS store connections open their database with (the
 * unix VFS, with a commit's WAL writes gathered into one), registered on
 * the first call; NULL if it could not be, and SQLite's default serves. */
const char *store_sqlite_vfs(void);

/* ---- errors and statements (store_sqlite.c) ---- */

/* Translates an SQLite result code into an aff_err code, logging what
 * failed where it matters. */
int store_sqlite_err(sqlite3 *db, int rc, const char *what);

/* Runs SQL text (several statements allowed), outside the tables. */
int store_sqlite_exec(sqlite3 *db, const char *sql);

/* Resets a prepared statement for its next use. */
void store_sqlite_stmt_done(sqlite3_stmt *st);

/* Runs a write statement (bindings set) to completion, then resets it. */
int store_sqlite_step_write(
    sqlite_store *s, sqlite3_stmt *st, const char *what);

/* Runs a "SELECT 1 ..." existence check with one or two int64
 * parameters: AFF_OK on a row, absent on none. */
int store_sqlite_exists(sqlite_store *s, sqlite3_stmt *st, int64_t a, int64_t b,
    int absent);

/* Column i as a string (never NULL unless out of memory), and a Unix
 * time column as RFC 3339, both in the arena. */
char *store_sqlite_col_text(sqlite3_stmt *st, int i, aff_arena *a);
char *store_sqlite_col_time(sqlite3_stmt *st, int i, aff_arena *a);

/*
 * A row reader: makes one object (a protobuf message) in the arena from
 * the current row of st, NULL when out of memory. Every reader has this
 * one shape, returning its object as void *, so one_row and list_page
 * take any of them without a cast.
 */
typedef void *store_sqlite_row_fn(sqlite3_stmt *st, aff_arena *a);

/*
 * Steps st (parameters bound), which returns at most one row, and reads
 * it with row: AFF_OK with the object in *out, AFF_NOT_FOUND when there
 * is no row (*out untouched), or the error; what names it in the log.
 * out is the address of the caller's pointer of row's type (T **).
 */
int store_sqlite_one_row(sqlite_store *s, sqlite3_stmt *st,
    store_sqlite_row_fn *row, aff_arena *a, void *out, const char *what);

/*
 * Reads one page of rows with st (parameters bound, LIMIT = limit + 1:
 * the extra row only tells that another page follows) through row. out
 * is the address of the caller's array pointer (T ***): an arena array
 * of *n objects. *last (when not NULL) is column 0 of the last row read,
 * the key the next page starts after.
 */
int store_sqlite_list_page(sqlite_store *s, sqlite3_stmt *st, int limit,
    store_sqlite_row_fn *row, aff_arena *a, void *out, size_t *n, int *more,
    int64_t *last, const char *what);

/* ---- transactions (store_sqlite.c) ---- */

/*
 * A transaction (BEGIN IMMEDIATE), or inside one (a keyed call's, see
 * call_begin) a savepoint, so that a store function's own rollback
 * undoes its part only and the call's transaction decides the rest.
 */
int store_sqlite_tx_begin(sqlite_store *s);

/* Commits, or rolls back when rv is an error; returns rv or the commit's
 * error. Nested: releases the savepoint, or undoes it. */
int store_sqlite_tx_end(sqlite_store *s, int rv);

/* Runs a statement without result rows, once (BEGIN, SAVEPOINT, ...). */
int store_sqlite_tx_run(sqlite_store *s, sqlite3_stmt *st, const char *what);

/* Rolls the open transaction back, whatever its depth. */
void store_sqlite_tx_rollback(sqlite_store *s);

/* ---- what one domain file offers another ---- */

/* store_sqlite_catalog.c: the seed, written by the first migration. */
int store_sqlite_catalog_seed(sqlite3 *db);

/* store_sqlite_catalog.c: AFF_OK when the editor exists, else absent. */
int store_sqlite_catalog_editor_exists(sqlite_store *s, int64_t id);

/* store_sqlite_applications.c: decides a pending application (once: a
 * decided one stays decided) and records the event. */
int store_sqlite_application_decide(sqlite_store *s, int64_t app_id,
    const char *status, const char *reason, int64_t now_s);

/* store_sqlite_jobs.c: queues a job (the outbox row), due now. */
int store_sqlite_job_insert(sqlite_store *s, const char *kind, int64_t ref_id,
    const uint8_t *payload, size_t len, const struct store_job_policy *p,
    int64_t now_ms);

/* store_sqlite_postbacks.c: the events of an order (order.created,
 * order.status_changed) and of a decided application, for the editor's
 * endpoints that take them, in the caller's transaction (nothing written
 * when none does). */
int store_sqlite_postback_order(sqlite_store *s, const char *type,
    const Affiliate__V1__Order *o, aff_arena *a);
int store_sqlite_postback_application(
    sqlite_store *s, const Affiliate__V1__Application *app);

/* store_sqlite_postbacks.c, for the jobs: a claimed "postback" job's
 * payload made whole (the endpoint's URL and secret as they are now, the
 * event's id and body), in a; a delivery given up (its job dead); and an
 * attempt's result applied (logged; done, retried or dead; the endpoint's
 * streak), inside job_finish's transaction. */
int store_sqlite_postback_fill(sqlite_store *s, struct store_job *j,
    aff_arena *a);
int store_sqlite_postback_kill(sqlite_store *s, int64_t delivery_id);
int store_sqlite_postback_finish(sqlite_store *s, int64_t job_id,
    int64_t delivery_id, const Affiliate__V1__JobResult *r, int attempts,
    int max_attempts, int64_t now_ms);

/* The store_ops entries, one domain file each. */
int store_sqlite_catalog_version(
    store *s, const char **db_id, int64_t *version);
int store_sqlite_editor_exists(store *s, int64_t id);
int store_sqlite_advertiser_get(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__Advertiser **out);
int store_sqlite_advertiser_list(store *s,
    const struct store_advertiser_query *q, aff_arena *a,
    Affiliate__V1__Advertiser ***out, size_t *n, int *more);
int store_sqlite_eligible(store *s, int64_t editor_id, int64_t advertiser_id);
int store_sqlite_advertiser_create(store *s,
    const struct store_advertiser_in *in, aff_arena *a,
    Affiliate__V1__Advertiser **out);
int store_sqlite_advertiser_update(store *s, int64_t id,
    const struct store_advertiser_in *in, aff_arena *a,
    Affiliate__V1__Advertiser **out);
int store_sqlite_editor_create(store *s, const struct store_editor_in *in,
    aff_arena *a, Affiliate__V1__Editor **out);
int store_sqlite_editor_update(store *s, int64_t id,
    const struct store_editor_in *in, aff_arena *a,
    Affiliate__V1__Editor **out);
int store_sqlite_eligibility_set(store *s, int64_t editor_id,
    int64_t advertiser_id, int eligible);
int store_sqlite_application_events(store *s,
    Affiliate__V1__Application *app, aff_arena *a);
int store_sqlite_order_get(store *s, const char *order_id, aff_arena *a,
    Affiliate__V1__Order **out);

int store_sqlite_application_create(store *s, int64_t editor_id,
    int64_t advertiser_id, const char *request_id,
    const struct store_job_policy *p, aff_arena *a,
    Affiliate__V1__Application **out);
int store_sqlite_application_get(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__Application **out);
int store_sqlite_application_list(store *s,
    const struct store_application_query *q, aff_arena *a,
    Affiliate__V1__Application ***out, size_t *n, int *more);

int store_sqlite_jobs_claim(store *s, int64_t now_ms,
    const struct store_job_policy *p, int max, aff_arena *a,
    struct store_job **out, size_t *n);
int store_sqlite_jobs_unclaim(store *s, const struct store_job *jobs, size_t n);
int store_sqlite_job_finish(store *s, const Affiliate__V1__JobResult *r,
    int64_t now_ms, const struct store_job_policy *p);
int store_sqlite_job_extend(store *s, int64_t job_id, const char *token,
    int64_t now_ms, const struct store_job_policy *p);
int store_sqlite_jobs_resume(store *s, int64_t now_ms, int *n);
int store_sqlite_job_list(store *s, const struct store_job_query *q,
    aff_arena *a, Affiliate__V1__JobInfo ***out, size_t *n, int *more);
int store_sqlite_job_retry(store *s, int64_t id, int64_t now_ms,
    const struct store_job_policy *p, aff_arena *a,
    Affiliate__V1__JobInfo **out);
int store_sqlite_jobs_retry_dead(store *s, int64_t now_ms,
    const struct store_job_policy *p, int *retried, int *skipped);
int store_sqlite_jobs_stats(store *s, int64_t now_ms,
    struct store_jobs_stats *out);

int store_sqlite_order_put(store *s, const struct store_order_in *in,
    aff_arena *a, Affiliate__V1__Order **out,
    enum store_order_outcome *outcome);
int store_sqlite_order_list(store *s, const struct store_order_query *q,
    aff_arena *a, Affiliate__V1__Order ***out, size_t *n, int64_t *next);
int store_sqlite_orders_uncached(store *s, int max, aff_arena *a,
    struct store_order_row **out, size_t *n);
int store_sqlite_orders_mark_cached(
    store *s, const struct store_order_row *rows, size_t n, int64_t gen);
int store_sqlite_orders_all_cached(store *s, const char **copy, int64_t *gen);
int store_sqlite_orders_cache_reset(store *s, const char *copy,
    int64_t gen);
int store_sqlite_batch_begin(store *s);
int store_sqlite_earnings(store *s, const struct store_earnings_query *q,
    aff_arena *a, struct store_earnings_row **out, size_t *n);
int store_sqlite_batch_end(store *s, int rv);

int store_sqlite_key_create(store *s, int64_t editor_id,
    const unsigned char sha256[32], aff_arena *a, Affiliate__V1__ApiKey **out);
int store_sqlite_key_get(store *s, int64_t id, struct store_key *k);
int store_sqlite_key_list(store *s, aff_arena *a, Affiliate__V1__ApiKey ***out,
    size_t *n);
int store_sqlite_key_revoke(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__ApiKey **out);
int store_sqlite_webhook_secret_rotate(store *s, int64_t advertiser_id,
    const char *secret, int64_t grace_until, int *replaced);
int store_sqlite_webhook_secrets_get(store *s, int64_t advertiser_id,
    int64_t now, aff_arena *a, char **out, size_t max, size_t *n);
int store_sqlite_webhook_policy_get(store *s, int64_t advertiser_id,
    int *require_timestamp);
int store_sqlite_webhook_policy_set(store *s, int64_t advertiser_id,
    int require_timestamp);
int store_sqlite_postback_endpoint_create(store *s, int64_t editor_id,
    const char *url, const char *events, const char *secret, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out);
int store_sqlite_postback_endpoint_get(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out);
int store_sqlite_postback_endpoint_list(store *s, int64_t editor_id,
    aff_arena *a, Affiliate__V1__PostbackEndpoint ***out, size_t *n);
int store_sqlite_postback_endpoint_delete(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out);
int store_sqlite_postback_endpoint_rotate(store *s, int64_t id,
    const char *secret, aff_arena *a, Affiliate__V1__PostbackEndpoint **out);
int store_sqlite_postback_endpoint_enable(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out);
int store_sqlite_postback_attempt_list(store *s, int64_t endpoint_id,
    int64_t before, int limit, aff_arena *a,
    Affiliate__V1__PostbackAttempt ***out, size_t *n, int *more);
int store_sqlite_postback_delivery_get(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackDelivery **out, int64_t *editor_id);
int store_sqlite_postback_redeliver(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackDelivery **out);
int store_sqlite_call_begin(store *s, const struct store_request_key *k,
    aff_arena *a, uint8_t **reply, size_t *len);
int store_sqlite_call_end(store *s, const struct store_request_key *k,
    const uint8_t *reply, size_t len);

#endif /* STORE_SQLITE_PRIVATE_H */
