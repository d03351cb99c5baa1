/*
 * store_sqlite_postbacks.c - postbacks to editors in SQLite: the
 * endpoints an editor registered, the events written in the transaction
 * of the change that caused them (one delivery and one "postback" job per
 * subscribed endpoint), each attempt's result applied (logged, retried
 * after a jittered backoff or Retry-After, dead when out of attempts or
 * refused for good, the endpoint turned off after a long failing streak),
 * and manual redelivery.
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_sqlite_private.h"

#define EP_COLUMNS                                                             \
	"id, editor_id, url, events, enabled, failure_streak,"                \
	" disabled_reason, created_at, updated_at"
#define DELIVERY_FROM                                                          \
	" FROM postback_deliveries d"                                          \
	" JOIN postback_endpoints ep ON ep.id = d.endpoint_id"                 \
	" JOIN postback_events ev ON ev.id = d.event_id"

#define STATEMENTS(X)                                                          \
	/* No row when the editor has ?6 live endpoints already (the      */ \
	/* write transaction makes the count and the insert one step).    */ \
	X(ST_EP_INSERT, "INSERT INTO postback_endpoints (editor_id, url,"      \
	                " events, secret, created_at, updated_at)"             \
	                " SELECT ?1, ?2, ?3, ?4, ?5, ?5 WHERE (SELECT count(*)"\
	                " FROM postback_endpoints WHERE editor_id = ?1"        \
	                " AND deleted_at IS NULL) < ?6 RETURNING "             \
	                EP_COLUMNS)                                            \
	X(ST_EP_GET, "SELECT " EP_COLUMNS " FROM postback_endpoints"           \
	             " WHERE id = ?1 AND deleted_at IS NULL")                  \
	X(ST_EP_LIST, "SELECT " EP_COLUMNS " FROM postback_endpoints"          \
	              " WHERE deleted_at IS NULL"                              \
	              " AND (?1 = 0 OR editor_id = ?1) ORDER BY id LIMIT 1000")\
	X(ST_EP_DELETE, "UPDATE postback_endpoints SET deleted_at = ?2,"       \
	                " updated_at = ?2 WHERE id = ?1"                       \
	                " AND deleted_at IS NULL RETURNING " EP_COLUMNS)       \
	X(ST_EP_JOBS_GIVEUP,                                                   \
	    "UPDATE jobs SET state = 'dead', last_error = 'endpoint deleted',"\
	    " updated_at = ?2 WHERE kind = 'postback' AND state = 'queued'"    \
	    " AND ref_id IN (SELECT id FROM postback_deliveries"               \
	    " WHERE endpoint_id = ?1 AND state = 'pending')")                  \
	X(ST_EP_DELIVERIES_GIVEUP,                                             \
	    "UPDATE postback_deliveries SET state = 'dead', updated_at = ?2"   \
	    " WHERE endpoint_id = ?1 AND state = 'pending'")                   \
	X(ST_EP_ROTATE, "UPDATE postback_endpoints SET secret = ?2,"           \
	                " updated_at = ?3 WHERE id = ?1"                       \
	                " AND deleted_at IS NULL RETURNING " EP_COLUMNS)       \
	X(ST_EP_ENABLE, "UPDATE postback_endpoints SET enabled = 1,"           \
	                " failure_streak = 0, disabled_reason = '',"           \
	                " updated_at = ?2 WHERE id = ?1"                       \
	                " AND deleted_at IS NULL RETURNING " EP_COLUMNS)       \
	X(ST_TARGETS, "SELECT id FROM postback_endpoints"                      \
	              " WHERE editor_id = ?1 AND deleted_at IS NULL"           \
	              " AND enabled = 1"                                       \
	              " AND (',' || events || ',') LIKE ('%,' || ?2 || ',%')") \
	X(ST_EVENT_INSERT, "INSERT INTO postback_events (event_id, type,"      \
	                   " editor_id, body, created_at)"                     \
	                   " VALUES (?1, ?2, ?3, ?4, ?5)")                     \
	X(ST_DELIVERY_INSERT, "INSERT INTO postback_deliveries (event_id,"     \
	                      " endpoint_id, state, created_at, updated_at)"   \
	                      " VALUES (?1, ?2, 'pending', ?3, ?3)")           \
	X(ST_JOB_FILL, "SELECT ep.url, ep.secret, ev.event_id, ev.body"        \
	               DELIVERY_FROM " WHERE d.id = ?1")                       \
	X(ST_DELIVERY_GET, "SELECT d.id, d.endpoint_id, ev.event_id, ev.type," \
	                   " d.state, d.attempts, ep.editor_id"                \
	                   DELIVERY_FROM " WHERE d.id = ?1")                   \
	X(ST_ATTEMPT_INSERT,                                                   \
	    "INSERT INTO postback_attempts (delivery_id, endpoint_id,"         \
	    " attempt, status_code, latency_ms, error, at)"                    \
	    " SELECT id, endpoint_id, attempts + 1, ?2, ?3, ?4, ?5"            \
	    " FROM postback_deliveries WHERE id = ?1")                         \
	/* A delivery given up meanwhile (endpoint deleted) stays dead. */     \
	X(ST_DELIVERY_COUNT,                                                   \
	    "UPDATE postback_deliveries SET attempts = attempts + 1,"          \
	    " state = CASE WHEN state = 'dead' THEN 'dead' ELSE ?2 END,"       \
	    " updated_at = ?3 WHERE id = ?1")                                  \
	X(ST_DELIVERY_DEAD, "UPDATE postback_deliveries SET state = 'dead',"   \
	                    " updated_at = ?2 WHERE id = ?1")                  \
	X(ST_EP_SUCCESS, "UPDATE postback_endpoints SET failure_streak = 0"    \
	                 " WHERE id = (SELECT endpoint_id"                     \
	                 " FROM postback_deliveries WHERE id = ?1)"            \
	                 " AND failure_streak > 0")                            \
	X(ST_EP_FAILURE,                                                       \
	    "UPDATE postback_endpoints SET failure_streak = failure_streak + 1,"\
	    " enabled = CASE WHEN failure_streak + 1 >= ?2 THEN 0"             \
	    " ELSE enabled END, disabled_reason = CASE WHEN enabled = 1"       \
	    " AND failure_streak + 1 >= ?2 THEN ?3 ELSE disabled_reason END,"  \
	    " updated_at = ?4 WHERE id = (SELECT endpoint_id"                  \
	    " FROM postback_deliveries WHERE id = ?1)"                         \
	    " RETURNING enabled, deleted_at IS NOT NULL, failure_streak, id")  \
	X(ST_ATTEMPT_LIST,                                                     \
	    "SELECT pa.id, pa.delivery_id, ev.event_id, ev.type, pa.attempt,"  \
	    " pa.status_code, pa.latency_ms, pa.error, d.state, pa.at"         \
	    " FROM postback_attempts pa"                                       \
	    " JOIN postback_deliveries d ON d.id = pa.delivery_id"             \
	    " JOIN postback_events ev ON ev.id = d.event_id"                   \
	    " WHERE pa.endpoint_id = ?1 AND (?2 = 0 OR pa.id < ?2)"            \
	    " ORDER BY pa.id DESC LIMIT ?3")                                   \
	X(ST_REDELIVER, "UPDATE postback_deliveries SET state = 'pending',"    \
	                " attempts = 0, updated_at = ?2 WHERE id = ?1"         \
	                " AND state IN ('delivered', 'dead')"                  \
	                " AND (SELECT pe.deleted_at IS NULL FROM"              \
	                " postback_endpoints pe WHERE pe.id = endpoint_id)")   \
	X(ST_JOB_DONE, "UPDATE jobs SET state = 'done', updated_at = ?2"       \
	               " WHERE id = ?1")                                       \
	X(ST_JOB_DEAD, "UPDATE jobs SET state = 'dead', last_error = ?2,"      \
	               " updated_at = ?3 WHERE id = ?1")                       \
	X(ST_JOB_RETRY, "UPDATE jobs SET state = 'queued', last_error = ?2,"   \
	                " due_at = ?3, updated_at = ?4 WHERE id = ?1")

enum { STATEMENTS(SQLITE_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(SQLITE_STMT_SQL) };

const struct store_sqlite_statements store_sqlite_postbacks_statements = {
	stmt_sql,
	ST_COUNT,
};

#define STMT(s, i) ((s)->st[SQ_POSTBACKS][i])

/* An endpoint from the current row (EP_COLUMNS); a store_sqlite_row_fn. */
static void *
row_endpoint(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__PostbackEndpoint *e;
	const char *events;

	if ((e = aff_arena_alloc(a, sizeof(*e))) == NULL)
		return (NULL);
	affiliate__v1__postback_endpoint__init(e);
	e->id = sqlite3_column_int64(st, 0);
	e->editor_id = sqlite3_column_int64(st, 1);
	e->url = store_sqlite_col_text(st, 2, a);
	events = (const char *)sqlite3_column_text(st, 3);
	e->enabled = sqlite3_column_int(st, 4) != 0;
	e->failure_streak = sqlite3_column_int(st, 5);
	e->disabled_reason = store_sqlite_col_text(st, 6, a);
	e->created_at = store_sqlite_col_time(st, 7, a);
	e->updated_at = store_sqlite_col_time(st, 8, a);
	if (e->url == NULL || e->disabled_reason == NULL ||
	    e->created_at == NULL || e->updated_at == NULL ||
	    store_postback_events_split(events != NULL ? events : "", a,
	        &e->events, &e->n_events) != AFF_OK)
		return (NULL);
	return (e);
}

static void *
row_attempt(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__PostbackAttempt *t;

	if ((t = aff_arena_alloc(a, sizeof(*t))) == NULL)
		return (NULL);
	affiliate__v1__postback_attempt__init(t);
	t->id = sqlite3_column_int64(st, 0);
	t->delivery_id = sqlite3_column_int64(st, 1);
	t->event_id = store_sqlite_col_text(st, 2, a);
	t->event_type = store_sqlite_col_text(st, 3, a);
	t->attempt = sqlite3_column_int(st, 4);
	t->status_code = sqlite3_column_int(st, 5);
	t->latency_ms = sqlite3_column_int64(st, 6);
	t->error = store_sqlite_col_text(st, 7, a);
	t->delivery_state = store_sqlite_col_text(st, 8, a);
	t->at = store_sqlite_col_time(st, 9, a);
	if (t->event_id == NULL || t->event_type == NULL || t->error == NULL ||
	    t->delivery_state == NULL || t->at == NULL)
		return (NULL);
	return (t);
}

static void *
row_delivery(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__PostbackDelivery *d;

	if ((d = aff_arena_alloc(a, sizeof(*d))) == NULL)
		return (NULL);
	affiliate__v1__postback_delivery__init(d);
	d->id = sqlite3_column_int64(st, 0);
	d->endpoint_id = sqlite3_column_int64(st, 1);
	d->event_id = store_sqlite_col_text(st, 2, a);
	d->event_type = store_sqlite_col_text(st, 3, a);
	d->state = store_sqlite_col_text(st, 4, a);
	d->attempts = sqlite3_column_int(st, 5);
	if (d->event_id == NULL || d->event_type == NULL || d->state == NULL)
		return (NULL);
	return (d);
}

/* ---- the registry ---- */

int
store_sqlite_postback_endpoint_create(store *base, int64_t editor_id,
    const char *url, const char *events, const char *secret, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_EP_INSERT);
	int rv;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	sqlite3_bind_int64(st, 1, editor_id);
	sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, events, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, secret, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, aff_now_ms() / 1000);
	sqlite3_bind_int(st, 6, STORE_POSTBACK_ENDPOINTS_MAX);
	rv = store_sqlite_one_row(s, st, row_endpoint, a, out, "endpoint insert");
	if (rv == AFF_NOT_FOUND) /* no row: at the most already */
		rv = AFF_FAILED_PRECONDITION;
	else if (rv == AFF_INVALID_ARGUMENT &&
	    sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
		rv = AFF_NOT_FOUND;
	return (store_sqlite_tx_end(s, rv));
}

int
store_sqlite_postback_endpoint_get(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_EP_GET);

	sqlite3_bind_int64(st, 1, id);
	return (store_sqlite_one_row(s, st, row_endpoint, a, out, "endpoint get"));
}

int
store_sqlite_postback_endpoint_list(store *base, int64_t editor_id,
    aff_arena *a, Affiliate__V1__PostbackEndpoint ***out, size_t *n)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_EP_LIST);
	int more;

	sqlite3_bind_int64(st, 1, editor_id);
	/* LIMIT 1000 in the statement: one page holds them all. */
	return (store_sqlite_list_page(s, st, 1000, row_endpoint, a, out, n,
	    &more, NULL, "endpoint list"));
}

/* Runs an endpoint update whose RETURNING gives the endpoint, bound by
 * the caller: AFF_NOT_FOUND when it matched none. */
static int
endpoint_update(sqlite_store *s, sqlite3_stmt *st, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out, const char *what)
{
	int rv;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK) {
		store_sqlite_stmt_done(st);
		return (rv);
	}
	rv = store_sqlite_one_row(s, st, row_endpoint, a, out, what);
	return (store_sqlite_tx_end(s, rv));
}

int
store_sqlite_postback_endpoint_delete(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	int64_t now = aff_now_ms() / 1000;
	sqlite3_stmt *st;
	int rv;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	st = STMT(s, ST_EP_DELETE);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	if ((rv = store_sqlite_one_row(s, st, row_endpoint, a, out,
	         "endpoint delete")) != AFF_OK)
		return (store_sqlite_tx_end(s, rv));
	/* Queued jobs first: they are found through the pending deliveries. */
	st = STMT(s, ST_EP_JOBS_GIVEUP);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, aff_now_ms());
	if ((rv = store_sqlite_step_write(s, st, "endpoint jobs")) != AFF_OK)
		return (store_sqlite_tx_end(s, rv));
	st = STMT(s, ST_EP_DELIVERIES_GIVEUP);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	rv = store_sqlite_step_write(s, st, "endpoint deliveries");
	return (store_sqlite_tx_end(s, rv));
}

int
store_sqlite_postback_endpoint_rotate(store *base, int64_t id,
    const char *secret, aff_arena *a, Affiliate__V1__PostbackEndpoint **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_EP_ROTATE);

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, secret, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, aff_now_ms() / 1000);
	return (endpoint_update(s, st, a, out, "endpoint rotate"));
}

int
store_sqlite_postback_endpoint_enable(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_EP_ENABLE);

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, aff_now_ms() / 1000);
	return (endpoint_update(s, st, a, out, "endpoint enable"));
}

int
store_sqlite_postback_attempt_list(store *base, int64_t endpoint_id,
    int64_t before, int limit, aff_arena *a,
    Affiliate__V1__PostbackAttempt ***out, size_t *n, int *more)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_ATTEMPT_LIST);

	if (limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	sqlite3_bind_int64(st, 1, endpoint_id);
	sqlite3_bind_int64(st, 2, before);
	sqlite3_bind_int64(st, 3, (int64_t)limit + 1);
	return (store_sqlite_list_page(s, st, limit, row_attempt, a, out, n, more,
	    NULL, "attempt list"));
}

int
store_sqlite_postback_delivery_get(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackDelivery **out, int64_t *editor_id)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_DELIVERY_GET);
	int rc, rv = AFF_OK;

	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*editor_id = sqlite3_column_int64(st, 6);
		if ((*out = row_delivery(st, a)) == NULL)
			rv = AFF_RESOURCE_EXHAUSTED;
	} else
		rv = rc == SQLITE_DONE ? AFF_NOT_FOUND
		                       : store_sqlite_err(s->db, rc, "delivery get");
	store_sqlite_stmt_done(st);
	return (rv);
}

/* Queues the job of a delivery, due now, with the postback policy's
 * attempts; its payload names the delivery only (filled at the claim). */
static int
delivery_job(sqlite_store *s, int64_t delivery_id, int64_t now_ms)
{
	Affiliate__V1__PostbackJob job = AFFILIATE__V1__POSTBACK_JOB__INIT;
	struct store_job_policy p = {
		.max_attempts = store_postback_policy_get()->max_attempts,
	};
	uint8_t buf[16];
	size_t len;

	job.delivery_id = delivery_id;
	len = affiliate__v1__postback_job__pack(&job, buf);
	return (store_sqlite_job_insert(s, "postback", delivery_id, buf, len, &p,
	    now_ms));
}

int
store_sqlite_postback_redeliver(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackDelivery **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	int64_t now_ms = aff_now_ms(), editor;
	sqlite3_stmt *st;
	int rv;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	st = STMT(s, ST_REDELIVER);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms / 1000);
	if ((rv = store_sqlite_step_write(s, st, "redeliver")) != AFF_OK)
		goto done;
	if (sqlite3_changes(s->db) == 0) {
		rv = store_sqlite_postback_delivery_get(base, id, a, out, &editor);
		if (rv == AFF_OK)
			rv = AFF_FAILED_PRECONDITION;
		goto done;
	}
	if ((rv = delivery_job(s, id, now_ms)) != AFF_OK)
		goto done;
	rv = store_sqlite_postback_delivery_get(base, id, a, out, &editor);
done:
	return (store_sqlite_tx_end(s, rv));
}

/* ---- events (inside the caller's transaction) ---- */

/* The enabled endpoints of editor_id that take type, every one of them
 * (creation keeps them to STORE_POSTBACK_ENDPOINTS_MAX; none is left
 * out if more are there), their ids in a's memory. */
static int
targets(sqlite_store *s, int64_t editor_id, const char *type, aff_arena *a,
    int64_t **ids, int *n)
{
	sqlite3_stmt *st = STMT(s, ST_TARGETS);
	int rc, cap = 0;

	*n = 0;
	*ids = NULL;
	sqlite3_bind_int64(st, 1, editor_id);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			int64_t *more;

			cap = cap == 0 ? STORE_POSTBACK_ENDPOINTS_MAX : cap * 2;
			if ((more = aff_arena_alloc(a, sizeof(*more) *
			         (size_t)cap)) == NULL) {
				store_sqlite_stmt_done(st);
				return (AFF_RESOURCE_EXHAUSTED);
			}
			if (*n > 0)
				memcpy(more, *ids, sizeof(*more) * (size_t)*n);
			*ids = more;
		}
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	store_sqlite_stmt_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return (store_sqlite_err(s->db, rc, "postback targets"));
	return (AFF_OK);
}

/* Writes the event and a delivery and job per target. */
static int
emit(sqlite_store *s, const char *type, int64_t editor_id,
    const char *event_id, const char *body, const int64_t *ids, int n)
{
	int64_t now_ms = aff_now_ms(), ev;
	sqlite3_stmt *st = STMT(s, ST_EVENT_INSERT);
	int rv;

	sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, editor_id);
	sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now_ms / 1000);
	if ((rv = store_sqlite_step_write(s, st, "postback event")) != AFF_OK)
		return (rv);
	ev = sqlite3_last_insert_rowid(s->db);
	for (int i = 0; i < n; i++) {
		st = STMT(s, ST_DELIVERY_INSERT);
		sqlite3_bind_int64(st, 1, ev);
		sqlite3_bind_int64(st, 2, ids[i]);
		sqlite3_bind_int64(st, 3, now_ms / 1000);
		if ((rv = store_sqlite_step_write(s, st, "postback delivery")) !=
		    AFF_OK)
			return (rv);
		if ((rv = delivery_job(s, sqlite3_last_insert_rowid(s->db),
		         now_ms)) != AFF_OK)
			return (rv);
	}
	return (AFF_OK);
}

int
store_sqlite_postback_order(sqlite_store *s, const char *type,
    const Affiliate__V1__Order *o, aff_arena *a)
{
	int64_t *ids;
	char event_id[40], *body;
	int n, rv;

	/* The common case, nobody listening, costs one index probe. */
	if ((rv = targets(s, o->editor_id, type, a, &ids, &n)) !=
	        AFF_OK ||
	    n == 0)
		return (rv);
	if ((body = store_postback_order_body(type, o, event_id, a)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	return (emit(s, type, o->editor_id, event_id, body, ids, n));
}

int
store_sqlite_postback_application(
    sqlite_store *s, const Affiliate__V1__Application *app)
{
	int64_t *ids;
	char event_id[40], *body;
	aff_arena a;
	int n, rv;

	aff_arena_init(&a);
	if ((rv = targets(s, app->editor_id, "application.decided", &a, &ids,
	         &n)) != AFF_OK ||
	    n == 0) {
		aff_arena_fini(&a);
		return (rv);
	}
	if ((body = store_postback_application_body(app, event_id, &a)) == NULL)
		rv = AFF_RESOURCE_EXHAUSTED;
	else
		rv = emit(s, "application.decided", app->editor_id, event_id, body,
		    ids, n);
	aff_arena_fini(&a);
	return (rv);
}

/* ---- the jobs' side ---- */

int
store_sqlite_postback_fill(sqlite_store *s, struct store_job *j, aff_arena *a)
{
	sqlite3_stmt *st = STMT(s, ST_JOB_FILL);
	int64_t delivery_id;
	uint8_t *buf;
	size_t len;
	int rc, rv;

	/* The job's own payload names the delivery (its ref_id too). */
	{
		Affiliate__V1__PostbackJob *pj = affiliate__v1__postback_job__unpack(
		    NULL, j->payload_len, j->payload);
		if (pj == NULL)
			return (AFF_OK); /* the worker will say it is not one */
		delivery_id = pj->delivery_id;
		affiliate__v1__postback_job__free_unpacked(pj, NULL);
	}
	sqlite3_bind_int64(st, 1, delivery_id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		store_sqlite_stmt_done(st);
		return (rc == SQLITE_DONE ? AFF_OK
		                          : store_sqlite_err(s->db, rc, "job fill"));
	}
	rv = store_postback_job_pack(delivery_id,
	    (const char *)sqlite3_column_text(st, 0),
	    (const char *)sqlite3_column_text(st, 1),
	    (const char *)sqlite3_column_text(st, 2),
	    (const char *)sqlite3_column_text(st, 3), a, &buf, &len);
	store_sqlite_stmt_done(st);
	if (rv == AFF_OK) {
		j->payload = buf;
		j->payload_len = len;
	}
	return (rv);
}

int
store_sqlite_postback_kill(sqlite_store *s, int64_t delivery_id)
{
	sqlite3_stmt *st = STMT(s, ST_DELIVERY_DEAD);

	sqlite3_bind_int64(st, 1, delivery_id);
	sqlite3_bind_int64(st, 2, aff_now_ms() / 1000);
	return (store_sqlite_step_write(s, st, "delivery dead"));
}

static int
job_update(sqlite_store *s, int i, int64_t job_id, const char *why,
    int64_t due)
{
	sqlite3_stmt *st = STMT(s, i);

	sqlite3_bind_int64(st, 1, job_id);
	if (i == ST_JOB_DONE) {
		sqlite3_bind_int64(st, 2, aff_now_ms());
	} else if (i == ST_JOB_DEAD) {
		sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, aff_now_ms());
	} else {
		sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, due);
		sqlite3_bind_int64(st, 4, aff_now_ms());
	}
	return (store_sqlite_step_write(s, st, "postback job"));
}

int
store_sqlite_postback_finish(sqlite_store *s, int64_t job_id,
    int64_t delivery_id, const Affiliate__V1__JobResult *r, int attempts,
    int max_attempts, int64_t now_ms)
{
	const struct store_postback_policy *pol = store_postback_policy_get();
	Affiliate__V1__PostbackResult *pr = NULL;
	char why[512], reason[160];
	int enabled = 1, deleted = 0, streak = 0, rv, rc;
	int64_t endpoint = 0;
	sqlite3_stmt *st;

	if (r->payload.len > 0)
		pr = affiliate__v1__postback_result__unpack(
		    NULL, r->payload.len, r->payload.data);
	snprintf(why, sizeof(why), "%.480s",
	    r->ok ? "" : r->error[0] != '\0' ? r->error : "no reason given");
	st = STMT(s, ST_ATTEMPT_INSERT);
	sqlite3_bind_int64(st, 1, delivery_id);
	sqlite3_bind_int(st, 2, pr != NULL ? pr->status_code : 0);
	sqlite3_bind_int64(st, 3, pr != NULL ? pr->latency_ms : 0);
	sqlite3_bind_text(st, 4, why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, aff_now_ms() / 1000);
	if ((rv = store_sqlite_step_write(s, st, "attempt insert")) != AFF_OK)
		goto done;
	st = STMT(s, ST_DELIVERY_COUNT);
	sqlite3_bind_int64(st, 1, delivery_id);
	sqlite3_bind_text(st, 2, r->ok ? "delivered" : "pending", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, aff_now_ms() / 1000);
	if ((rv = store_sqlite_step_write(s, st, "delivery count")) != AFF_OK)
		goto done;
	if (r->ok) {
		st = STMT(s, ST_EP_SUCCESS);
		sqlite3_bind_int64(st, 1, delivery_id);
		if ((rv = store_sqlite_step_write(s, st, "endpoint ok")) == AFF_OK)
			rv = job_update(s, ST_JOB_DONE, job_id, NULL, 0);
		goto done;
	}
	snprintf(reason, sizeof(reason),
	    "%d failed attempts in a row (the last: %.100s)", pol->disable_after,
	    why);
	st = STMT(s, ST_EP_FAILURE);
	sqlite3_bind_int64(st, 1, delivery_id);
	sqlite3_bind_int(st, 2, pol->disable_after);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, aff_now_ms() / 1000);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		enabled = sqlite3_column_int(st, 0);
		deleted = sqlite3_column_int(st, 1);
		streak = sqlite3_column_int(st, 2);
		endpoint = sqlite3_column_int64(st, 3);
	}
	store_sqlite_stmt_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rv = store_sqlite_err(s->db, rc, "endpoint failure");
		goto done;
	}
	if (!enabled && streak == pol->disable_after)
		aff_warn("postbacks: endpoint %lld disabled: %s",
		    (long long)endpoint, reason);
	if ((pr != NULL && pr->permanent) || attempts >= max_attempts ||
	    !enabled || deleted) {
		if ((rv = job_update(s, ST_JOB_DEAD, job_id, why, 0)) == AFF_OK)
			rv = store_sqlite_postback_kill(s, delivery_id);
		aff_warn("postbacks: delivery %lld is dead after %d attempt(s): "
		         "%s",
		    (long long)delivery_id, attempts,
		    pr != NULL && pr->permanent ? why
		    : !enabled || deleted       ? "endpoint off"
		                                : why);
		goto done;
	}
	rv = job_update(s, ST_JOB_RETRY, job_id, why,
	    now_ms + store_postback_backoff_ms(
	                 attempts, pr != NULL ? pr->retry_after_s : 0));
done:
	if (pr != NULL)
		affiliate__v1__postback_result__free_unpacked(pr, NULL);
	return (rv);
}
