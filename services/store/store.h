/*
 * store.h - the system of record, behind a narrow interface.
 *
 * A store handle is one connection, used by one thread at a time (each
 * server handler thread opens its own). The SQLite implementation is
 * store_sqlite_ops; a server database could take its place by providing
 * another struct store_ops. Results are protobuf messages allocated in the
 * caller's per-call arena, so the caller never frees them one by one.
 * store_pg_ops (services/store/postgres/) is the other, for several
 * servers sharing one PostgreSQL database; store_open() picks one by the
 * database's name.
 *
 * Every function returns AFF_OK or an aff_err code: AFF_NOT_FOUND,
 * AFF_INVALID_ARGUMENT, AFF_UNAVAILABLE (the database cannot be reached or
 * is busy past the timeout), AFF_RESOURCE_EXHAUSTED (disk or memory full),
 * AFF_INTERNAL (anything else; logged where it happens).
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

#include "aff_arena.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/jobs.pb-c.h"
#include "affiliate/v1/postback.pb-c.h"

typedef struct store store;

struct store_advertiser_query {
	int64_t editor_id; /* 0: all advertisers; else those it may join */
	int64_t after;     /* ids greater than this */
	int limit;         /* page size, > 0 */
};

struct store_application_query {
	int64_t editor_id;  /* 0: any */
	const char *status; /* "" or NULL: any */
	int64_t after;      /* ids greater than this */
	int limit;          /* page size, > 0 */
};

/* A job claimed for delivery (strings and payload in the caller's arena). */
struct store_job {
	int64_t id;
	const char *kind;
	int attempt;        /* 1 for the first delivery */
	const uint8_t *payload;
	size_t payload_len;
	const char *token;  /* this delivery's lease token (32 hex) */
};

/*
 * How jobs are retried. Every time the job functions take (now_ms, due
 * and lease deadlines) is on the server's monotonic clock (aff_mono_ms):
 * a lease never follows a wall-clock step. Such times mean nothing to
 * another boot, so jobs_resume rebases them at every start. A backend
 * that several servers share may keep its own clock instead and ignore
 * now_ms (PostgreSQL keeps the database host's, the one clock every
 * server sees: store_pg_jobs.c); callers must not assume that a time
 * they pass, rather than the time passing, moves a lease.
 */
struct store_job_policy {
	int64_t visibility_ms;  /* the lease: no result nor heartbeat by then,
	                           deliver again */
	int max_attempts;       /* deliveries before the job is dead */
	int64_t backoff_ms;     /* a failure waits backoff * 2^(attempt-1) */
	int64_t backoff_max_ms;
};

/* A page of jobs for operators (job_list). */
struct store_job_query {
	const char *state; /* "dead" | "queued" | "inflight"; "" or NULL: any */
	int64_t after;     /* ids greater than this */
	int limit;         /* page size, > 0 */
};

/* The outbox at a glance (store_ops.jobs_stats). */
struct store_jobs_stats {
	int64_t queued, inflight, dead;
	int64_t oldest_due_ms;
};

/*
 * An advertiser's fields as an admin writes them (validated by the
 * caller). set says which are given (STORE_ADV_*): advertiser_update
 * changes those and keeps the others; advertiser_create takes them all.
 */
enum {
	STORE_ADV_NAME = 1 << 0,
	STORE_ADV_CATEGORY = 1 << 1,
	STORE_ADV_CURRENCY = 1 << 2,
	STORE_ADV_RATE = 1 << 3,
	STORE_ADV_STATUS = 1 << 4,
	STORE_ADV_WEBSITE = 1 << 5,
	STORE_ADV_COOKIE_DAYS = 1 << 6,
	STORE_ADV_OTHER_CURRENCIES = 1 << 7,
	STORE_ADV_ALL = (1 << 8) - 1,
};
struct store_advertiser_in {
	unsigned set;
	const char *name, *category, *currency, *status, *website;
	int32_t commission_rate_bps, cookie_days;
	int allow_other_currencies;
};

/* An editor's fields; NULL: unchanged (editor_update). */
struct store_editor_in {
	const char *name, *website;
};

/* An order as a partner reports it (validated by the caller). */
struct store_order_in {
	const char *order_id;
	int64_t advertiser_id, editor_id;
	int64_t amount_cents, commission_cents;
	const char *currency; /* "" or NULL: the advertiser's currency */
	const char *status; /* "" or NULL: pending for a new order */
	/* Standard Webhooks' webhook-id ("" or NULL: none), the
	 * idempotency key of the advertiser's webhooks: see order_put. */
	const char *webhook_id;
};

struct store_order_query {
	int64_t editor_id, advertiser_id; /* 0: any */
	const char *status;               /* "" or NULL: any */
	int commission_mismatch; /* only orders whose commission differs
	                            from the expected one */
	int64_t after;                    /* seq cursor */
	int limit;
};

/* An order with its place (seq) and revision, for the Redis copy. */
struct store_order_row {
	int64_t seq, rev;
	Affiliate__V1__Order *order;
};

/*
 * An earnings report's question (store_ops.earnings): orders created in
 * [lo, hi) of the bucket unit, hourly false: UTC days since 1970-01-01
 * (earnings_daily), true: UTC hours (earnings_hourly, for a report in a
 * fixed offset of offset_h whole hours east of UTC: its local days are
 * (hour + offset_h) / 24). monthly (daily, not by day): the days
 * [day_a, day_b) are the whole UTC months [month_lo, month_hi) (year * 12
 * + month - 1), read from earnings_monthly; only [lo, day_a) and
 * [day_b, hi) from earnings_daily.
 */
enum store_earnings_group {
	STORE_EARNINGS_BY_ADVERTISER,
	STORE_EARNINGS_BY_DAY,
	STORE_EARNINGS_BY_STATUS,
};
struct store_earnings_query {
	int64_t editor_id, advertiser_id; /* 0: any */
	enum store_earnings_group group;
	int hourly, monthly;
	int64_t lo, hi;
	int offset_h; /* hourly only, -23..23 */
	int64_t day_a, day_b, month_lo, month_hi; /* monthly only */
};

/* One (group, currency, status) sum of a report. key: the advertiser id,
 * or the (local) day number since 1970-01-01; 0 by status. */
struct store_earnings_row {
	int64_t key;
	const char *currency, *status;
	int64_t orders, amount_cents, commission_cents, mismatched;
	int64_t buckets; /* aggregate rows summed into it */
};

/* What order_put did. */
enum store_order_outcome {
	STORE_ORDER_CREATED,
	STORE_ORDER_DUPLICATE, /* the same order again: nothing written */
	STORE_ORDER_MOVED,     /* its status moved forward */
	STORE_ORDER_NO_ADVERTISER, /* AFF_NOT_FOUND: no such advertiser */
	STORE_ORDER_NO_EDITOR,     /* AFF_NOT_FOUND: no such editor */
	/* AFF_FAILED_PRECONDITION: a currency the programme does not take
	 * (*out is NULL) */
	STORE_ORDER_WRONG_CURRENCY,
};

/* An API key as the check needs it. */
struct store_key {
	int admin;                 /* else an editor key */
	int64_t editor_id;         /* the editor it acts as (0 for admin) */
	unsigned char sha256[32];  /* of its secret */
	int revoked;
};

/*
 * A mutating call's request key: who calls (scope: "key:<id>", or "" for
 * a caller without a key), the envelope's request_id, and the SHA-256 of
 * the service, method and request bytes. The same request_id with
 * another request is another call.
 */
struct store_request_key {
	const char *scope;
	const char *request_id;
	const char *method;
	uint8_t digest[32];
};

struct store_ops {
	const char *name;

	/*
	 * Opens a connection to the database at path, creating, migrating
	 * and seeding it on first use (safe when many threads open at once).
	 * Caller closes with close().
	 */
	int (*open)(const char *path, store **sp);
	void (*close)(store *s);

	/*
	 * The identity of this database (random, made with it) and the
	 * version of the catalog (advertisers, editors, eligibility), which
	 * changes with every write to it, by whatever client. Together they
	 * name a consistent view for the cache.
	 */
	int (*catalog_version)(store *s, const char **db_id, int64_t *version);

	/* AFF_OK when the editor exists, AFF_NOT_FOUND when not. */
	int (*editor_exists)(store *s, int64_t id);

	int (*advertiser_get)(store *s, int64_t id, aff_arena *a,
	    Affiliate__V1__Advertiser **out);

	/*
	 * One page in id order. *more is set when rows follow the page.
	 * *out is an arena array of *n pointers.
	 */
	int (*advertiser_list)(store *s, const struct store_advertiser_query *q,
	    aff_arena *a, Affiliate__V1__Advertiser ***out, size_t *n,
	    int *more);

	/* AFF_OK when the editor may join the advertiser, else
	 * AFF_PERMISSION_DENIED. */
	int (*eligible)(store *s, int64_t editor_id, int64_t advertiser_id);

	/*
	 * Catalog writes (admins, CatalogService). Every one moves the
	 * catalog version in its transaction (the schema's triggers), and
	 * a server's in-memory copy of the version (PostgreSQL) is told at
	 * once, so that the next read by this server sees the change.
	 * advertiser_create / editor_create assign the next id;
	 * *_update change what in says and answer AFF_NOT_FOUND for an
	 * unknown id. eligibility_set grants (eligible) or revokes, once
	 * (again: unchanged); AFF_NOT_FOUND when either id is unknown.
	 */
	int (*advertiser_create)(store *s, const struct store_advertiser_in *in,
	    aff_arena *a, Affiliate__V1__Advertiser **out);
	int (*advertiser_update)(store *s, int64_t id,
	    const struct store_advertiser_in *in, aff_arena *a,
	    Affiliate__V1__Advertiser **out);
	int (*editor_create)(store *s, const struct store_editor_in *in,
	    aff_arena *a, Affiliate__V1__Editor **out);
	int (*editor_update)(store *s, int64_t id,
	    const struct store_editor_in *in, aff_arena *a,
	    Affiliate__V1__Editor **out);
	int (*eligibility_set)(store *s, int64_t editor_id,
	    int64_t advertiser_id, int eligible);

	/*
	 * Inserts a pending application and its review job (the outbox row)
	 * in one transaction, recording request_id. AFF_ALREADY_EXISTS when
	 * the editor has a pending or approved application to the advertiser
	 * (*out is that one), unless that one was made by this same
	 * request_id: then AFF_OK with it (a resent request). The caller has
	 * checked the ids and the eligibility.
	 */
	int (*application_create)(store *s, int64_t editor_id,
	    int64_t advertiser_id, const char *request_id,
	    const struct store_job_policy *p, aff_arena *a,
	    Affiliate__V1__Application **out);

	int (*application_get)(store *s, int64_t id, aff_arena *a,
	    Affiliate__V1__Application **out);

	/* Sets (*app)->events to its history, oldest first. */
	int (*application_events)(store *s, Affiliate__V1__Application *app,
	    aff_arena *a);

	/* One page in id order; as advertiser_list. */
	int (*application_list)(store *s,
	    const struct store_application_query *q, aff_arena *a,
	    Affiliate__V1__Application ***out, size_t *n, int *more);

	/*
	 * Claims up to max jobs that are due: queued ones whose time has
	 * come and in-flight ones whose lease has lapsed. Each is marked in
	 * flight until now + visibility, its attempt counted, and given a new
	 * random lease token (the one before is kept: a late result of the
	 * delivery before still counts). In-flight jobs out of attempts
	 * become dead instead (and their application rejected).
	 */
	int (*jobs_claim)(store *s, int64_t now_ms,
	    const struct store_job_policy *p, int max, aff_arena *a,
	    struct store_job **out, size_t *n);

	/* Gives claimed jobs back, due now, their attempt uncounted (they
	 * could not be sent), in one transaction. */
	int (*jobs_unclaim)(store *s, const struct store_job *jobs, size_t n);

	/*
	 * Applies a job's result, once: AFF_OK when applied; AFF_ALREADY_EXISTS
	 * when the job was already finished or the result is stale (a failure
	 * from a delivery that is no longer the current one: nothing
	 * changes); AFF_PERMISSION_DENIED when its token names no delivery of
	 * the job (neither the current lease nor the one before); AFF_NOT_FOUND
	 * for an unknown job; AFF_INVALID_ARGUMENT for a result payload that
	 * does not parse. A success is applied from the current or the
	 * previous delivery. A failure is retried after the backoff, or makes
	 * the job dead and rejects the application when attempts are spent.
	 */
	int (*job_finish)(store *s, const struct Affiliate__V1__JobResult *r,
	    int64_t now_ms, const struct store_job_policy *p);

	/* A heartbeat: the lease of the delivery named by token runs until
	 * now + visibility. AFF_OK, or AFF_NOT_FOUND when that delivery is
	 * not the job's current one in flight (nothing changes). */
	int (*job_extend)(store *s, int64_t job_id, const char *token,
	    int64_t now_ms, const struct store_job_policy *p);

	/* At start: jobs queued or in flight are due now (a result may never
	 * come for those in flight, and due times of an earlier run are on
	 * another monotonic clock). *n is how many were in flight. */
	int (*jobs_resume)(store *s, int64_t now_ms, int *n);

	/* For /metrics: the outbox's jobs queued, in flight and dead, and
	 * how long the oldest queued job has been due (0 when none is; ms on
	 * the clock the job functions use). Reads the open jobs through the
	 * jobs_due index, never the done ones. */
	int (*jobs_stats)(store *s, int64_t now_ms, struct store_jobs_stats *st);

	/*
	 * The outbox for operators. job_list: one page in id order, as
	 * advertiser_list (the caller has checked the state's name).
	 * job_retry queues a dead job again, due now (now_ms as the other
	 * job functions take it) with p->max_attempts deliveries, its lease
	 * tokens forgotten (a result of a delivery before the retry counts
	 * no more) and its last error kept; a review job's application goes
	 * back from rejected to pending (its event recorded), all in one
	 * transaction. *out is the job as it is then. AFF_NOT_FOUND for an
	 * unknown job, AFF_FAILED_PRECONDITION for one that is not dead,
	 * AFF_ALREADY_EXISTS when the application's editor has another open
	 * application to that advertiser (one open per pair: nothing
	 * changes). jobs_retry_dead does that to every dead job in one
	 * transaction: *retried queued, *skipped left dead for that reason.
	 */
	int (*job_list)(store *s, const struct store_job_query *q, aff_arena *a,
	    Affiliate__V1__JobInfo ***out, size_t *n, int *more);
	int (*job_retry)(store *s, int64_t id, int64_t now_ms,
	    const struct store_job_policy *p, aff_arena *a,
	    Affiliate__V1__JobInfo **out);
	int (*jobs_retry_dead)(store *s, int64_t now_ms,
	    const struct store_job_policy *p, int *retried, int *skipped);

	/*
	 * Stores a reported order, once: new (created), the same again
	 * (duplicate), or a later status (pending -> approved | declined,
	 * recorded with its time). AFF_NOT_FOUND when the advertiser or the
	 * editor does not exist (the foreign keys say so; *outcome names
	 * which); AFF_FAILED_PRECONDITION for a move back or across, or
	 * for a new order in another currency than its advertiser's when
	 * the advertiser does not allow others (STORE_ORDER_WRONG_CURRENCY);
	 * a new order without a currency takes its advertiser's, and its
	 * expected commission from the advertiser's rate (store.h's
	 * STORE_EXPECTED_COMMISSION); AFF_ALREADY_EXISTS when order_id is stored with another
	 * advertiser, editor, amount, commission or currency. *out is the
	 * stored order. Inside batch_begin/batch_end it is part of the
	 * batch's transaction in a savepoint of its own: any error undoes
	 * this order alone and the batch goes on, except AFF_ABORTED: the
	 * database ended the batch's transaction (then every later order_put
	 * of the batch is AFF_ABORTED too, and batch_end returns the cause).
	 * Outside a batch, a transaction of its own.
	 * With a webhook_id: when the advertiser already sent that id
	 * (within the last 24 h), nothing is written and *out is the order
	 * it stored then (STORE_ORDER_DUPLICATE), whatever o names; else the
	 * id is kept with the order, in the same transaction (savepoint).
	 */
	int (*order_put)(store *s, const struct store_order_in *o,
	    aff_arena *a, Affiliate__V1__Order **out,
	    enum store_order_outcome *outcome);

	/*
	 * An earnings report's sums from the aggregate tables that the
	 * orders' triggers keep (schema step 14), never from the orders:
	 * one row per (key, currency, status) with orders in it, sorted by
	 * key, currency, status (by status: status, then currency). An
	 * editor or advertiser that does not exist gives no rows. *out is
	 * an arena array of *n.
	 */
	int (*earnings)(store *s, const struct store_earnings_query *q,
	    aff_arena *a, struct store_earnings_row **out, size_t *n);

	/* One order with its status history (events, oldest first), or
	 * AFF_NOT_FOUND. */
	int (*order_get)(store *s, const char *order_id, aff_arena *a,
	    Affiliate__V1__Order **out);

	/* One page in seq order; *next is the cursor of the next page (0
	 * when none). */
	int (*order_list)(store *s, const struct store_order_query *q,
	    aff_arena *a, Affiliate__V1__Order ***out, size_t *n,
	    int64_t *next);

	/* Up to max orders whose Redis copy is missing or behind, in seq
	 * order. */
	int (*orders_uncached)(store *s, int max, aff_arena *a,
	    struct store_order_row **out, size_t *n);

	/* Records that these revisions are in Redis (a row changed since
	 * stays behind), and that the copy's generation is now gen, in one
	 * transaction. */
	int (*orders_mark_cached)(store *s, const struct store_order_row *rows,
	    size_t n, int64_t gen);

	/* AFF_OK when Redis has every order as it is now, AFF_NOT_FOUND when
	 * not; *copy is the id of the copy (cache.h; valid until the next
	 * call on s) and *gen the generation it must show to be trusted. */
	int (*orders_all_cached)(store *s, const char **copy, int64_t *gen);

	/*
	 * The Redis copy cannot be trusted (lost, rolled back, or of another
	 * history): every order is to be written again, into a new copy (a
	 * new random copy id, generation 0). Only when the database still
	 * records copy at generation gen, the view the caller judged (from
	 * orders_all_cached); else AFF_ABORTED and nothing changes: another
	 * server's sync recorded a batch (or started a new copy) since, so
	 * a copy that looked ahead of the database was only that batch
	 * between its write to Redis and its record here. Judge again.
	 */
	int (*orders_cache_reset)(store *s, const char *copy, int64_t gen);

	/*
	 * API keys. key_create stores an editor key (editor_id > 0) or an
	 * admin key (0) with the SHA-256 of its secret (never the secret);
	 * AFF_NOT_FOUND for an unknown editor. key_get reads one for the
	 * check (AFF_NOT_FOUND when there is none). key_revoke marks it
	 * revoked at once (again: unchanged); AFF_NOT_FOUND when unknown.
	 */
	int (*key_create)(store *s, int64_t editor_id,
	    const unsigned char sha256[32], aff_arena *a,
	    Affiliate__V1__ApiKey **out);
	int (*key_get)(store *s, int64_t id, struct store_key *k);
	int (*key_list)(store *s, aff_arena *a, Affiliate__V1__ApiKey ***out,
	    size_t *n);
	int (*key_revoke)(store *s, int64_t id, aff_arena *a,
	    Affiliate__V1__ApiKey **out);

	/*
	 * An advertiser's own webhook signing secrets. rotate makes secret
	 * the current one and lets the one it replaces run until grace_until
	 * (Unix seconds), in one transaction (*replaced: there was one);
	 * AFF_NOT_FOUND for an unknown advertiser. get returns up to max secrets valid at now, newest
	 * first (*n = 0: the advertiser has none of its own).
	 */
	int (*webhook_secret_rotate)(store *s, int64_t advertiser_id,
	    const char *secret, int64_t grace_until, int *replaced);
	int (*webhook_secrets_get)(store *s, int64_t advertiser_id, int64_t now,
	    aff_arena *a, char **out, size_t max, size_t *n);

	/*
	 * Whether an advertiser's webhooks must carry the timestamped
	 * signature (the plain form refused). get sets *require_timestamp
	 * to 0 for an advertiser never set (or unknown); set answers
	 * AFF_NOT_FOUND for an unknown advertiser.
	 */
	int (*webhook_policy_get)(store *s, int64_t advertiser_id,
	    int *require_timestamp);
	int (*webhook_policy_set)(store *s, int64_t advertiser_id,
	    int require_timestamp);


	/*
	 * Postbacks (proto postback.proto). endpoint_create stores an
	 * enabled endpoint of editor_id (AFF_NOT_FOUND: no such editor;
	 * AFF_FAILED_PRECONDITION: the editor already has
	 * STORE_POSTBACK_ENDPOINTS_MAX live ones);
	 * events is the comma-separated list of its event types, checked by
	 * the caller. get, delete, rotate and enable answer AFF_NOT_FOUND for
	 * an unknown or deleted endpoint. delete keeps the row (its log
	 * stays readable) and gives its pending deliveries up (dead);
	 * rotate replaces the secret; enable turns it on again with its
	 * failure streak reset. list: editor_id's endpoints (0: everyone's)
	 * in id order.
	 */
#define STORE_POSTBACK_ENDPOINTS_MAX 16
	int (*postback_endpoint_create)(store *s, int64_t editor_id,
	    const char *url, const char *events, const char *secret,
	    aff_arena *a, Affiliate__V1__PostbackEndpoint **out);
	int (*postback_endpoint_get)(store *s, int64_t id, aff_arena *a,
	    Affiliate__V1__PostbackEndpoint **out);
	int (*postback_endpoint_list)(store *s, int64_t editor_id, aff_arena *a,
	    Affiliate__V1__PostbackEndpoint ***out, size_t *n);
	int (*postback_endpoint_delete)(store *s, int64_t id, aff_arena *a,
	    Affiliate__V1__PostbackEndpoint **out);
	int (*postback_endpoint_rotate)(store *s, int64_t id, const char *secret,
	    aff_arena *a, Affiliate__V1__PostbackEndpoint **out);
	int (*postback_endpoint_enable)(store *s, int64_t id, aff_arena *a,
	    Affiliate__V1__PostbackEndpoint **out);

	/* An endpoint's delivery log, newest first: attempts with ids below
	 * before (0: from the newest). As advertiser_list otherwise. */
	int (*postback_attempt_list)(store *s, int64_t endpoint_id,
	    int64_t before, int limit, aff_arena *a,
	    Affiliate__V1__PostbackAttempt ***out, size_t *n, int *more);

	/* A delivery, and the editor whose endpoint it goes to. */
	int (*postback_delivery_get)(store *s, int64_t id, aff_arena *a,
	    Affiliate__V1__PostbackDelivery **out, int64_t *editor_id);

	/* Queues a delivered or dead delivery again (a new job, its
	 * attempts from 1), in one transaction. AFF_FAILED_PRECONDITION
	 * while it is pending or its endpoint is deleted; AFF_NOT_FOUND. */
	int (*postback_redeliver)(store *s, int64_t id, aff_arena *a,
	    Affiliate__V1__PostbackDelivery **out);

	/*
	 * The transaction of a keyed (mutating) call, so that its request key
	 * and answer are stored with its change, all or nothing. call_begin
	 * opens it (under the write lock) and looks k up: AFF_OK when the
	 * call was not answered before (the transaction stays open: the
	 * call's writes join it, each store function in a savepoint of its
	 * own); AFF_ALREADY_EXISTS with *reply (in a) the answer stored the
	 * first time (nothing left open); or an error (nothing open).
	 * call_end ends it: reply non-NULL is stored with k and committed
	 * (AFF_OK or the commit's error), NULL rolls everything back.
	 * Keys are kept for 24 h.
	 */
	int (*call_begin)(store *s, const struct store_request_key *k,
	    aff_arena *a, uint8_t **reply, size_t *len);
	int (*call_end)(store *s, const struct store_request_key *k,
	    const uint8_t *reply, size_t len);

	/* Group commit: the writes between begin and end are one
	 * transaction, so one fsync covers them all. */
	int (*batch_begin)(store *s);
	int (*batch_end)(store *s, int rv);
};

struct store {
	const struct store_ops *ops;
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops; /* postgres/store_pg.c */

/* The seed: editors 1..STORE_SEED_EDITORS, advertisers
 * 1..STORE_SEED_ADVERTISERS, and store_seed_eligible() says who may join
 * whom. */
#define STORE_SEED_EDITORS 6
#define STORE_SEED_ADVERTISERS 24
int store_seed_eligible(int64_t editor_id, int64_t advertiser_id);

/* The seed's rows (store.c), which every backend writes in its first
 * migration step, created and updated at STORE_SEED_TIME; advertiser
 * i + 1's website is made from its name. */
#define STORE_SEED_TIME 1767225600 /* 2026-01-01T00:00:00Z */
struct store_seed_editor {
	const char *name, *website;
};
struct store_seed_advertiser {
	const char *name, *category, *currency, *status;
	int rate_bps, cookie_days;
};
extern const struct store_seed_editor store_seed_editors[STORE_SEED_EDITORS];
extern const struct store_seed_advertiser
    store_seed_advertisers[STORE_SEED_ADVERTISERS];

/*
 * The backend a database name (--db, AFFILIATE_DB) selects: a URI
 * postgresql://... or postgres://..., or a libpq key=value conninfo
 * ("host=... dbname=..."), selects PostgreSQL; anything else is the path
 * of a SQLite file, the default.
 */
int store_is_postgres(const char *db);
const struct store_ops *store_backend(const char *db);

/*
 * db as it may be shown (logs, replies): a PostgreSQL URI's password
 * (postgresql://user:***@host/db) and the value of a password or
 * sslpassword key (conninfo, or the URI's query) replaced by "***"; a
 * SQLite path as it is. Written to out (cap bytes, always ended, cut to
 * fit).
 */
void store_db_redact(const char *db, char *out, size_t cap);

/*
 * The commission a programme's rate gives for an amount, as SQL over the
 * columns or parameters named (both backends compute it in the INSERT):
 * amount_cents * rate_bps / 10000 rounded half up to the cent (amounts
 * are never negative). 10^14 cents * 10^4 fits in 64 bits.
 */
#define STORE_EXPECTED_COMMISSION(amount, rate)                                \
	"((" amount ") * (" rate ") + 5000) / 10000"
int64_t store_expected_commission(int64_t amount_cents, int32_t rate_bps);

/* The most events order_get and application_events read for one. */
#define STORE_EVENTS_MAX 100

/* What every backend's job_finish shares. The wait before a failed job's
 * next delivery: backoff_ms * 2^(attempts-1), at most backoff_max_ms. */
int64_t store_job_backoff_ms(const struct store_job_policy *p, int attempts);

/* A review_application result's payload, unpacked and its decision
 * checked (approved | rejected): AFF_OK with *out (caller frees it with
 * affiliate__v1__review_application_result__free_unpacked), or
 * AFF_INVALID_ARGUMENT. */
int store_review_result_unpack(const Affiliate__V1__JobResult *r,
    Affiliate__V1__ReviewApplicationResult **out);

/* Opens the database db names with its backend (store_backend). */
int store_open(const char *db, store **sp);

/*
 * A consistent copy of the database db names, taken beside a running
 * server, into file (which must not exist): SQLite's online backup in one
 * read transaction (a snapshot of what was committed when it began),
 * quick_check'ed, fsync'ed, then renamed into place
 * (sqlite/store_sqlite_backup.c). AFF_OK, AFF_ALREADY_EXISTS (file
 * exists), AFF_NOT_FOUND (no database), AFF_DATA_LOSS (the copy fails
 * its check), AFF_UNIMPLEMENTED for PostgreSQL (pg_dump is its tool:
 * README, Backups), AFF_INTERNAL; each logged with its reason.
 */
int store_backup(const char *db, const char *file);
int store_sqlite_backup(const char *db_path, const char *file);


/*
 * Postbacks: how deliveries are retried and when an endpoint is turned
 * off. Set once by the server before any store is opened
 * (store_postback_configure); the defaults hold until then. Events are
 * written by order_put (order.created, order.status_changed) and by the
 * decision of an application (application.decided), in their
 * transaction, for the editor's enabled endpoints that subscribed: one
 * delivery and one job (kind "postback", ref_id the delivery) each.
 */
struct store_postback_policy {
	int max_attempts;      /* a delivery is dead after this many (8) */
	int64_t backoff_ms;    /* the first retry's wait, doubling (1000) */
	int64_t backoff_max_ms;/* the longest wait (3600000) */
	int disable_after;     /* failed attempts in a row that turn an
	                          endpoint off (100) */
};
void store_postback_configure(const struct store_postback_policy *p);
const struct store_postback_policy *store_postback_policy_get(void);

/* The wait before attempt attempts + 1 of a delivery: backoff * 2^(n-1)
 * at most backoff_max, with "equal jitter" (half of it random, so that
 * deliveries failed together do not come back together), and no sooner
 * than the receiver's Retry-After (retry_after_s, capped at the max). */
int64_t store_postback_backoff_ms(int attempts, int retry_after_s);

/*
 * An event's body (the bytes sent, and signed, as they are):
 * {"id":"evt_<32 hex>","type":T,"timestamp":"<RFC 3339>","data":{...}},
 * data the order or the application as the API shows it. event_id (40
 * bytes) gets the id. The body is in the arena; NULL: out of memory.
 */
char *store_postback_order_body(const char *type,
    const Affiliate__V1__Order *o, char event_id[40], aff_arena *a);
char *store_postback_application_body(const Affiliate__V1__Application *app,
    char event_id[40], aff_arena *a);

/* A PostbackJob packed into the arena (what a "postback" job carries when
 * it is handed out). AFF_OK or AFF_RESOURCE_EXHAUSTED. */
int store_postback_job_pack(int64_t delivery_id, const char *url,
    const char *secret, const char *event_id, const char *body,
    aff_arena *a, uint8_t **out, size_t *len);

/* An endpoint's comma-separated event types as a repeated field (in a). */
int store_postback_events_split(const char *csv, aff_arena *a,
    char ***out, size_t *n);

static inline void
store_close(store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

#endif /* STORE_H */
