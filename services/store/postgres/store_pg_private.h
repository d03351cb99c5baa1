/*
 * store_pg_private.h - private to the PostgreSQL backend (services/store/
 * postgres/): the connection struct, the statement tables of its domain
 * files, transactions, and the run/read helpers they share. Nothing
 * outside this folder includes it; the rest of the server sees store.h.
 *
 * As in the SQLite backend, each domain file (catalog, applications,
 * jobs, orders, keys) keeps its SQL and the enum that names it in one
 * X-macro list, so a statement and its name cannot drift apart:
 *
 *   #define STATEMENTS(X) X(ST_APP_GET, "SELECT ...") ...
 *   enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };
 *   static const char *const stmt_sql[] = { STATEMENTS(PG_STMT_SQL) };
 *
 * and the opening code prepares every statement of every domain on each
 * connection (again after a reconnect: a new session has none), named
 * "s<domain>_<index>".
 *
 * Parameters go as text, except bytea (binary); results come as text.
 */
#ifndef STORE_PG_PRIVATE_H
#define STORE_PG_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "aff_arena.h"
#include "store.h"

#define PG_STMT_ENUM(id, sql) id,
#define PG_STMT_SQL(id, sql) [id] = sql,

/*
 * The database's clock in milliseconds, computed in SQL. Every due time
 * and lease of the job outbox is on it (store_pg_jobs.c): servers on
 * other hosts share one database but not one monotonic clock.
 */
#define PG_NOW_MS "(floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint"

/* The statement tables, one per file; PQ_* indexes pg_store.prepared. */
enum store_pg_domain {
	PQ_CORE,         /* transactions (store_pg.c) */
	PQ_CATALOG,      /* store_pg_catalog.c */
	PQ_APPLICATIONS, /* store_pg_applications.c */
	PQ_JOBS,         /* store_pg_jobs.c */
	PQ_ORDERS,       /* store_pg_orders.c */
	PQ_KEYS,         /* store_pg_keys.c */
	PQ_POSTBACKS,    /* store_pg_postbacks.c */
	PQ_REPORTS,      /* store_pg_reports.c */
	PQ_ORDERS_COPY,  /* store_pg_orders_copy.c */
	PQ_DOMAINS,
};

struct store_pg_statements {
	const char *const *sql; /* indexed by the file's own enum */
	int n;
	/*
	 * Statements [plan_from, plan_to) run unnamed, planned with their
	 * values on every call: a prepared statement may switch to a
	 * generic plan after five runs, which estimates a filter's rows as
	 * the column's average and may walk the primary key instead of the
	 * filter's index (the order lists: O(matching rows) for a page).
	 * They are prepared at connection all the same, so a bad one fails
	 * there. Zero for none.
	 */
	int plan_from, plan_to;
};

extern const struct store_pg_statements store_pg_core_statements;
extern const struct store_pg_statements store_pg_catalog_statements;
extern const struct store_pg_statements store_pg_postbacks_statements;
extern const struct store_pg_statements store_pg_applications_statements;
extern const struct store_pg_statements store_pg_jobs_statements;
extern const struct store_pg_statements store_pg_orders_statements;
extern const struct store_pg_statements store_pg_orders_copy_statements;
extern const struct store_pg_statements store_pg_keys_statements;
extern const struct store_pg_statements store_pg_reports_statements;

/* The catalog version kept in memory per server (store_pg_watch.c). */
struct store_pg_watch;

/* The watcher of conninfo's database, started with its thread on first
 * use and shared by every handle opened on the same string; each get is
 * paired with a put, the last of which stops the thread. */
int store_pg_watch_get(const char *conninfo, struct store_pg_watch **wp);
void store_pg_watch_put(struct store_pg_watch *w);
/* AFF_OK with the version in memory, or AFF_NOT_FOUND when the watcher
 * is not listening (read it from the database then). */
int store_pg_watch_version(struct store_pg_watch *w, int64_t *version);
/* This server committed a catalog change that left the version at
 * version: until the watcher publishes that one or a later one (its
 * notification is on its way), store_pg_watch_version answers
 * AFF_NOT_FOUND and readers read the version from the database. */
void store_pg_watch_note(struct store_pg_watch *w, int64_t version);

/* libpq's notice receiver for every connection (store_pg.c): notices go
 * through the log, never raw on stderr. */
void store_pg_notice(void *arg, const PGresult *res);

typedef struct pg_store {
	store base;
	PGconn *conn;
	struct store_pg_watch *watch; /* the server's catalog version */
	char *conninfo;
	char db_id[33];
	char orders_copy[40]; /* what orders_all_cached returned last */
	int depth;            /* open transactions: 1, or more when nested */
	int in_batch;         /* between batch_begin and batch_end */
	int batch_err;        /* why the batch's transaction ended */
	int sync_locked;      /* holds the order sync's advisory lock */
	char session[64];     /* this session's name (store_pg_jobs.c) */
	char last_state[6];   /* SQLSTATE of the last failed statement */
	char last_constraint[64]; /* the constraint it broke, if any */
} pg_store;

#define PG_STORE(base) ((pg_store *)(base))

/* The migration steps, generated at build time from schema/NNNN_*.sql
 * (cmake/AffiliateEmbedSchema.cmake), numbered as SQLite's. */
extern const char *const store_pg_schema_steps[];
extern const int store_pg_schema_version;

/* ---- parameters ---- */

#define PG_MAX_PARAMS 10

struct pg_params {
	int n;
	const char *v[PG_MAX_PARAMS];
	int len[PG_MAX_PARAMS];
	int fmt[PG_MAX_PARAMS];
	char num[PG_MAX_PARAMS][24];
};

void store_pg_p_int(struct pg_params *p, int64_t v);
void store_pg_p_text(struct pg_params *p, const char *t); /* NULL: "" */
void store_pg_p_bin(struct pg_params *p, const void *b, size_t len);
void store_pg_p_null(struct pg_params *p);

/* ---- running statements (store_pg.c) ---- */

/*
 * Runs statement i of domain d with p (NULL: none). AFF_OK with the
 * result in *res (caller PQclear()s it; res NULL: cleared here), or the
 * error translated (nothing in *res; s->last_state and
 * s->last_constraint say more). A connection found broken outside a
 * transaction is reset first: a database that restarted serves the next
 * call again.
 */
int store_pg_run(pg_store *s, int d, int i, const struct pg_params *p,
    PGresult **res, const char *what);

/* As store_pg_run for a single write inside a caller's transaction: in
 * a savepoint of its own, so that its failure leaves that transaction
 * usable (PostgreSQL aborts the whole transaction on any error). */
int store_pg_run_guarded(pg_store *s, int d, int i, const struct pg_params *p,
    PGresult **res, const char *what);

/* Runs SQL text without parameters (migrations, SET): AFF_OK or the
 * error. */
int store_pg_exec(pg_store *s, const char *sql, const char *what);

/* Result readers: column c of row r as int64, as an arena string (never
 * NULL unless out of memory), as RFC 3339 from Unix seconds, and bytea
 * (text form "\x...") decoded into the arena. */
int64_t store_pg_int(const PGresult *res, int r, int c);
char *store_pg_text(const PGresult *res, int r, int c, aff_arena *a);
char *store_pg_time(const PGresult *res, int r, int c, aff_arena *a);
uint8_t *store_pg_bytes(const PGresult *res, int r, int c, aff_arena *a,
    size_t *len);

/* A row reader, as the SQLite backend's: one object from row r. */
typedef void *store_pg_row_fn(const PGresult *res, int r, aff_arena *a);

/* Runs a statement returning at most one row and reads it: AFF_OK with
 * the object in *out (T **), AFF_NOT_FOUND on no row, or the error. */
int store_pg_one_row(pg_store *s, int d, int i, const struct pg_params *p,
    store_pg_row_fn *row, aff_arena *a, void *out, const char *what);

/* One page (LIMIT limit + 1 bound by the caller), as
 * store_sqlite_list_page. */
int store_pg_list_page(pg_store *s, int d, int i, const struct pg_params *p,
    int limit, store_pg_row_fn *row, aff_arena *a, void *out, size_t *n,
    int *more, int64_t *last, const char *what);

/* An existence check: AFF_OK on a row, absent on none. */
int store_pg_exists(pg_store *s, int d, int i, const struct pg_params *p,
    int absent);

/* ---- transactions (store_pg.c) ---- */

/* BEGIN, or inside one a savepoint (a keyed call's transaction). */
int store_pg_tx_begin(pg_store *s);
/* Commits, or rolls back when rv is an error; returns rv or the commit's
 * error. Nested: releases the savepoint, or undoes it. */
int store_pg_tx_end(pg_store *s, int rv);
/* Rolls the open transaction back, whatever its depth. */
void store_pg_tx_rollback(pg_store *s);
/* The session is inside a transaction (usable or failed). */
int store_pg_in_tx(pg_store *s);

/* ---- what one domain file offers another ---- */

int store_pg_catalog_seed(pg_store *s);
int store_pg_catalog_editor_exists(pg_store *s, int64_t id);
int store_pg_application_decide(pg_store *s, int64_t app_id,
    const char *status, const char *reason, int64_t now_s);
int store_pg_job_insert(pg_store *s, const char *kind, int64_t ref_id,
    const uint8_t *payload, size_t len, const struct store_job_policy *p,
    int64_t now_ms);
/* An order's columns as every order statement reads them, and the
 * Affiliate__V1__Order of row r read in that order (store_pg_orders.c;
 * the copy's bookkeeping, store_pg_orders_copy.c, reads them too). */
#define ORDER_COLUMNS                                                          \
	"seq, order_id, advertiser_id, editor_id, amount_cents,"              \
	" commission_cents, currency, status, created_at, updated_at,"        \
	" expected_commission_cents"
void *store_pg_row_order(const PGresult *res, int r, aff_arena *a);

/* store_pg_orders_copy.c: lets go of the order sync's lock, if held. */
void store_pg_sync_unlock(pg_store *s);

/* The store_ops entries, one domain file each. */
int store_pg_catalog_version(store *s, const char **db_id, int64_t *version);
int store_pg_editor_exists(store *s, int64_t id);
int store_pg_advertiser_get(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__Advertiser **out);
int store_pg_advertiser_list(store *s, const struct store_advertiser_query *q,
    aff_arena *a, Affiliate__V1__Advertiser ***out, size_t *n, int *more);
int store_pg_eligible(store *s, int64_t editor_id, int64_t advertiser_id);
int store_pg_advertiser_create(store *s, const struct store_advertiser_in *in,
    aff_arena *a, Affiliate__V1__Advertiser **out);
int store_pg_advertiser_update(store *s, int64_t id,
    const struct store_advertiser_in *in, aff_arena *a,
    Affiliate__V1__Advertiser **out);
int store_pg_editor_create(store *s, const struct store_editor_in *in,
    aff_arena *a, Affiliate__V1__Editor **out);
int store_pg_editor_update(store *s, int64_t id,
    const struct store_editor_in *in, aff_arena *a,
    Affiliate__V1__Editor **out);
int store_pg_eligibility_set(store *s, int64_t editor_id,
    int64_t advertiser_id, int eligible);
int store_pg_application_events(store *s, Affiliate__V1__Application *app,
    aff_arena *a);
int store_pg_earnings(store *s, const struct store_earnings_query *q,
    aff_arena *a, struct store_earnings_row **out, size_t *n);
int store_pg_order_get(store *s, const char *order_id, aff_arena *a,
    Affiliate__V1__Order **out);

int store_pg_application_create(store *s, int64_t editor_id,
    int64_t advertiser_id, const char *request_id,
    const struct store_job_policy *p, aff_arena *a,
    Affiliate__V1__Application **out);
int store_pg_application_get(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__Application **out);
int store_pg_application_list(store *s,
    const struct store_application_query *q, aff_arena *a,
    Affiliate__V1__Application ***out, size_t *n, int *more);

int store_pg_jobs_claim(store *s, int64_t now_ms,
    const struct store_job_policy *p, int max, aff_arena *a,
    struct store_job **out, size_t *n);
int store_pg_jobs_unclaim(store *s, const struct store_job *jobs, size_t n);
int store_pg_job_finish(store *s, const Affiliate__V1__JobResult *r,
    int64_t now_ms, const struct store_job_policy *p);
int store_pg_job_extend(store *s, int64_t job_id, const char *token,
    int64_t now_ms, const struct store_job_policy *p);
int store_pg_jobs_resume(store *s, int64_t now_ms, int *n);
int store_pg_job_list(store *s, const struct store_job_query *q, aff_arena *a,
    Affiliate__V1__JobInfo ***out, size_t *n, int *more);
int store_pg_job_retry(store *s, int64_t id, int64_t now_ms,
    const struct store_job_policy *p, aff_arena *a,
    Affiliate__V1__JobInfo **out);
int store_pg_jobs_retry_dead(store *s, int64_t now_ms,
    const struct store_job_policy *p, int *retried, int *skipped);
int store_pg_jobs_stats(store *s, int64_t now_ms, struct store_jobs_stats *out);

int store_pg_order_put(store *s, const struct store_order_in *in, aff_arena *a,
    Affiliate__V1__Order **out, enum store_order_outcome *outcome);
int store_pg_order_list(store *s, const struct store_order_query *q,
    aff_arena *a, Affiliate__V1__Order ***out, size_t *n, int64_t *next);
int store_pg_orders_uncached(store *s, int max, aff_arena *a,
    struct store_order_row **out, size_t *n);
int store_pg_orders_mark_cached(
    store *s, const struct store_order_row *rows, size_t n, int64_t gen);
int store_pg_orders_all_cached(store *s, const char **copy, int64_t *gen);
int store_pg_orders_cache_reset(store *s, const char *copy, int64_t gen);
int store_pg_batch_begin(store *s);
int store_pg_batch_end(store *s, int rv);

int store_pg_key_create(store *s, int64_t editor_id,
    const unsigned char sha256[32], aff_arena *a, Affiliate__V1__ApiKey **out);
int store_pg_key_get(store *s, int64_t id, struct store_key *k);
int store_pg_key_list(store *s, aff_arena *a, Affiliate__V1__ApiKey ***out,
    size_t *n);
int store_pg_key_revoke(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__ApiKey **out);
int store_pg_webhook_secret_rotate(store *s, int64_t advertiser_id,
    const char *secret, int64_t grace_until, int *replaced);
int store_pg_webhook_secrets_get(store *s, int64_t advertiser_id, int64_t now,
    aff_arena *a, char **out, size_t max, size_t *n);
int store_pg_webhook_policy_get(store *s, int64_t advertiser_id,
    int *require_timestamp);
int store_pg_webhook_policy_set(store *s, int64_t advertiser_id,
    int require_timestamp);
/* store_pg_postbacks.c: as store_sqlite_postbacks.c's (see
 * store_sqlite_private.h). */
int store_pg_postback_order(pg_store *s, const char *type,
    const Affiliate__V1__Order *o, aff_arena *a);
int store_pg_postback_application(
    pg_store *s, const Affiliate__V1__Application *app);
int store_pg_postback_fill(pg_store *s, struct store_job *j, aff_arena *a);
int store_pg_postback_kill(pg_store *s, int64_t delivery_id);
int store_pg_postback_finish(pg_store *s, int64_t job_id, int64_t delivery_id,
    const Affiliate__V1__JobResult *r, int attempts, int max_attempts);
int store_pg_postback_endpoint_create(store *s, int64_t editor_id,
    const char *url, const char *events, const char *secret, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out);
int store_pg_postback_endpoint_get(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out);
int store_pg_postback_endpoint_list(store *s, int64_t editor_id,
    aff_arena *a, Affiliate__V1__PostbackEndpoint ***out, size_t *n);
int store_pg_postback_endpoint_delete(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out);
int store_pg_postback_endpoint_rotate(store *s, int64_t id,
    const char *secret, aff_arena *a, Affiliate__V1__PostbackEndpoint **out);
int store_pg_postback_endpoint_enable(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out);
int store_pg_postback_attempt_list(store *s, int64_t endpoint_id,
    int64_t before, int limit, aff_arena *a,
    Affiliate__V1__PostbackAttempt ***out, size_t *n, int *more);
int store_pg_postback_delivery_get(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackDelivery **out, int64_t *editor_id);
int store_pg_postback_redeliver(store *s, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackDelivery **out);
int store_pg_call_begin(store *s, const struct store_request_key *k,
    aff_arena *a, uint8_t **reply, size_t *len);
int store_pg_call_end(store *s, const struct store_request_key *k,
    const uint8_t *reply, size_t len);

#endif /* STORE_PG_PRIVATE_H */
