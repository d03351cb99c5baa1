/*
 * store_pg_postbacks.c - postbacks to editors in PostgreSQL, as
 * store_sqlite_postbacks.c does them in SQLite: the endpoints, the events
 * written in the transaction of their change (a delivery and a
 * "postback" job per subscribed endpoint), each attempt's result applied
 * (logged; done, retried after a jittered backoff or Retry-After, or
 * dead; the endpoint's failing streak), and manual redelivery. Retry
 * times are on the database's clock, as every job's (store_pg_jobs.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_pg_private.h"

#define EP_COLUMNS                                                             \
	"id, editor_id, url, events, enabled, failure_streak,"                \
	" disabled_reason, created_at, updated_at"
#define DELIVERY_FROM                                                          \
	" FROM postback_deliveries d"                                          \
	" JOIN postback_endpoints ep ON ep.id = d.endpoint_id"                 \
	" JOIN postback_events ev ON ev.id = d.event_id"

#define STATEMENTS(X)                                                          \
	/* No row when the editor has $6 live endpoints already (two      */ \
	/* servers creating at once may each pass it: one over at most).  */ \
	X(ST_EP_INSERT, "INSERT INTO postback_endpoints (editor_id, url,"      \
	                " events, secret, created_at, updated_at)"             \
	                " SELECT $1, $2, $3, $4, $5, $5 WHERE (SELECT count(*)"\
	                " FROM postback_endpoints WHERE editor_id = $1"        \
	                " AND deleted_at IS NULL) < $6::bigint RETURNING "     \
	                EP_COLUMNS)                                            \
	X(ST_EP_GET, "SELECT " EP_COLUMNS " FROM postback_endpoints"           \
	             " WHERE id = $1 AND deleted_at IS NULL")                  \
	X(ST_EP_LIST, "SELECT " EP_COLUMNS " FROM postback_endpoints"          \
	              " WHERE deleted_at IS NULL AND ($1::bigint = 0"          \
	              " OR editor_id = $1) ORDER BY id LIMIT 1000")            \
	X(ST_EP_DELETE, "UPDATE postback_endpoints SET deleted_at = $2,"       \
	                " updated_at = $2 WHERE id = $1"                       \
	                " AND deleted_at IS NULL RETURNING " EP_COLUMNS)       \
	X(ST_EP_JOBS_GIVEUP,                                                   \
	    "UPDATE jobs SET state = 'dead', last_error = 'endpoint deleted',"\
	    " updated_at = $2 WHERE kind = 'postback' AND state = 'queued'"    \
	    " AND ref_id IN (SELECT id FROM postback_deliveries"               \
	    " WHERE endpoint_id = $1 AND state = 'pending')")                  \
	X(ST_EP_DELIVERIES_GIVEUP,                                             \
	    "UPDATE postback_deliveries SET state = 'dead', updated_at = $2"   \
	    " WHERE endpoint_id = $1 AND state = 'pending'")                   \
	X(ST_EP_ROTATE, "UPDATE postback_endpoints SET secret = $2,"           \
	                " updated_at = $3 WHERE id = $1"                       \
	                " AND deleted_at IS NULL RETURNING " EP_COLUMNS)       \
	X(ST_EP_ENABLE, "UPDATE postback_endpoints SET enabled = 1,"           \
	                " failure_streak = 0, disabled_reason = '',"           \
	                " updated_at = $2 WHERE id = $1"                       \
	                " AND deleted_at IS NULL RETURNING " EP_COLUMNS)       \
	X(ST_TARGETS, "SELECT id FROM postback_endpoints"                      \
	              " WHERE editor_id = $1 AND deleted_at IS NULL"           \
	              " AND enabled = 1 AND (',' || events || ',')"            \
	              " LIKE ('%,' || $2::text || ',%') LIMIT 64")             \
	X(ST_EVENT_INSERT, "INSERT INTO postback_events (event_id, type,"      \
	                   " editor_id, body, created_at)"                     \
	                   " VALUES ($1, $2, $3, $4, $5) RETURNING id")        \
	X(ST_DELIVERY_INSERT, "INSERT INTO postback_deliveries (event_id,"     \
	                      " endpoint_id, state, created_at, updated_at)"   \
	                      " VALUES ($1, $2, 'pending', $3, $3)"            \
	                      " RETURNING id")                                 \
	X(ST_JOB_FILL, "SELECT ep.url, ep.secret, ev.event_id, ev.body"        \
	               DELIVERY_FROM " WHERE d.id = $1")                       \
	X(ST_DELIVERY_GET, "SELECT d.id, d.endpoint_id, ev.event_id, ev.type," \
	                   " d.state, d.attempts, ep.editor_id"                \
	                   DELIVERY_FROM " WHERE d.id = $1")                   \
	X(ST_ATTEMPT_INSERT,                                                   \
	    "INSERT INTO postback_attempts (delivery_id, endpoint_id,"         \
	    " attempt, status_code, latency_ms, error, at)"                    \
	    " SELECT id, endpoint_id, attempts + 1, $2, $3, $4, $5"            \
	    " FROM postback_deliveries WHERE id = $1")                         \
	X(ST_DELIVERY_COUNT,                                                   \
	    "UPDATE postback_deliveries SET attempts = attempts + 1,"          \
	    " state = CASE WHEN state = 'dead' THEN 'dead' ELSE $2 END,"       \
	    " updated_at = $3 WHERE id = $1")                                  \
	X(ST_DELIVERY_DEAD, "UPDATE postback_deliveries SET state = 'dead',"   \
	                    " updated_at = $2 WHERE id = $1")                  \
	X(ST_EP_SUCCESS, "UPDATE postback_endpoints SET failure_streak = 0"    \
	                 " WHERE id = (SELECT endpoint_id"                     \
	                 " FROM postback_deliveries WHERE id = $1)"            \
	                 " AND failure_streak > 0")                            \
	X(ST_EP_FAILURE,                                                       \
	    "UPDATE postback_endpoints SET failure_streak = failure_streak + 1,"\
	    " enabled = CASE WHEN failure_streak + 1 >= $2 THEN 0"             \
	    " ELSE enabled END, disabled_reason = CASE WHEN enabled = 1"       \
	    " AND failure_streak + 1 >= $2 THEN $3 ELSE disabled_reason END,"  \
	    " updated_at = $4 WHERE id = (SELECT endpoint_id"                  \
	    " FROM postback_deliveries WHERE id = $1)"                         \
	    " RETURNING enabled, (deleted_at IS NOT NULL)::int,"               \
	    " failure_streak, id")                                             \
	X(ST_ATTEMPT_LIST,                                                     \
	    "SELECT pa.id, pa.delivery_id, ev.event_id, ev.type, pa.attempt,"  \
	    " pa.status_code, pa.latency_ms, pa.error, d.state, pa.at"         \
	    " FROM postback_attempts pa"                                       \
	    " JOIN postback_deliveries d ON d.id = pa.delivery_id"             \
	    " JOIN postback_events ev ON ev.id = d.event_id"                   \
	    " WHERE pa.endpoint_id = $1 AND ($2::bigint = 0 OR pa.id < $2)"    \
	    " ORDER BY pa.id DESC LIMIT $3")                                   \
	X(ST_REDELIVER, "UPDATE postback_deliveries SET state = 'pending',"    \
	                " attempts = 0, updated_at = $2 WHERE id = $1"         \
	                " AND state IN ('delivered', 'dead')"                  \
	                " AND (SELECT pe.deleted_at IS NULL FROM"              \
	                " postback_endpoints pe WHERE pe.id = endpoint_id)")   \
	X(ST_JOB_DONE, "UPDATE jobs SET state = 'done', updated_at = $2"       \
	               " WHERE id = $1")                                       \
	X(ST_JOB_DEAD, "UPDATE jobs SET state = 'dead', last_error = $2,"      \
	               " updated_at = $3 WHERE id = $1")                       \
	X(ST_JOB_RETRY, "UPDATE jobs SET state = 'queued', last_error = $2,"   \
	                " due_at = " PG_NOW_MS " + $3, updated_at = $4"        \
	                " WHERE id = $1")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

const struct store_pg_statements store_pg_postbacks_statements = {
	.sql = stmt_sql, .n = ST_COUNT };

#define RUN(s, i, p, res, what) store_pg_run(s, PQ_POSTBACKS, i, p, res, what)

static void *
row_endpoint(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__PostbackEndpoint *e;

	if ((e = aff_arena_alloc(a, sizeof(*e))) == NULL)
		return (NULL);
	affiliate__v1__postback_endpoint__init(e);
	e->id = store_pg_int(res, r, 0);
	e->editor_id = store_pg_int(res, r, 1);
	e->url = store_pg_text(res, r, 2, a);
	e->enabled = store_pg_int(res, r, 4) != 0;
	e->failure_streak = (int32_t)store_pg_int(res, r, 5);
	e->disabled_reason = store_pg_text(res, r, 6, a);
	e->created_at = store_pg_time(res, r, 7, a);
	e->updated_at = store_pg_time(res, r, 8, a);
	if (e->url == NULL || e->disabled_reason == NULL ||
	    e->created_at == NULL || e->updated_at == NULL ||
	    store_postback_events_split(PQgetvalue(res, r, 3), a, &e->events,
	        &e->n_events) != AFF_OK)
		return (NULL);
	return (e);
}

static void *
row_attempt(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__PostbackAttempt *t;

	if ((t = aff_arena_alloc(a, sizeof(*t))) == NULL)
		return (NULL);
	affiliate__v1__postback_attempt__init(t);
	t->id = store_pg_int(res, r, 0);
	t->delivery_id = store_pg_int(res, r, 1);
	t->event_id = store_pg_text(res, r, 2, a);
	t->event_type = store_pg_text(res, r, 3, a);
	t->attempt = (int32_t)store_pg_int(res, r, 4);
	t->status_code = (int32_t)store_pg_int(res, r, 5);
	t->latency_ms = store_pg_int(res, r, 6);
	t->error = store_pg_text(res, r, 7, a);
	t->delivery_state = store_pg_text(res, r, 8, a);
	t->at = store_pg_time(res, r, 9, a);
	if (t->event_id == NULL || t->event_type == NULL || t->error == NULL ||
	    t->delivery_state == NULL || t->at == NULL)
		return (NULL);
	return (t);
}

static void *
row_delivery(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__PostbackDelivery *d;

	if ((d = aff_arena_alloc(a, sizeof(*d))) == NULL)
		return (NULL);
	affiliate__v1__postback_delivery__init(d);
	d->id = store_pg_int(res, r, 0);
	d->endpoint_id = store_pg_int(res, r, 1);
	d->event_id = store_pg_text(res, r, 2, a);
	d->event_type = store_pg_text(res, r, 3, a);
	d->state = store_pg_text(res, r, 4, a);
	d->attempts = (int32_t)store_pg_int(res, r, 5);
	if (d->event_id == NULL || d->event_type == NULL || d->state == NULL)
		return (NULL);
	return (d);
}

/* ---- the registry ---- */

int
store_pg_postback_endpoint_create(store *base, int64_t editor_id,
    const char *url, const char *events, const char *secret, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	int rv;

	store_pg_p_int(&p, editor_id);
	store_pg_p_text(&p, url);
	store_pg_p_text(&p, events);
	store_pg_p_text(&p, secret);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	store_pg_p_int(&p, STORE_POSTBACK_ENDPOINTS_MAX);
	rv = store_pg_one_row(s, PQ_POSTBACKS, ST_EP_INSERT, &p, row_endpoint, a,
	    out, "endpoint insert");
	if (rv == AFF_NOT_FOUND) /* no row: at the most already */
		rv = AFF_FAILED_PRECONDITION;
	else if (rv == AFF_INVALID_ARGUMENT &&
	    strcmp(s->last_state, "23503") == 0)
		rv = AFF_NOT_FOUND;
	return (rv);
}

int
store_pg_postback_endpoint_get(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, id);
	return (store_pg_one_row(PG_STORE(base), PQ_POSTBACKS, ST_EP_GET, &p,
	    row_endpoint, a, out, "endpoint get"));
}

int
store_pg_postback_endpoint_list(store *base, int64_t editor_id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint ***out, size_t *n)
{
	struct pg_params p = { 0 };
	int more;

	store_pg_p_int(&p, editor_id);
	return (store_pg_list_page(PG_STORE(base), PQ_POSTBACKS, ST_EP_LIST, &p,
	    1000, row_endpoint, a, out, n, &more, NULL, "endpoint list"));
}

int
store_pg_postback_endpoint_delete(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	int64_t now = aff_now_ms() / 1000;
	int rv;

	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	store_pg_p_int(&p, id);
	store_pg_p_int(&p, now);
	if ((rv = store_pg_one_row(s, PQ_POSTBACKS, ST_EP_DELETE, &p,
	         row_endpoint, a, out, "endpoint delete")) != AFF_OK)
		return (store_pg_tx_end(s, rv));
	p = (struct pg_params){ 0 };
	store_pg_p_int(&p, id);
	store_pg_p_int(&p, aff_now_ms());
	if ((rv = RUN(s, ST_EP_JOBS_GIVEUP, &p, NULL, "endpoint jobs")) !=
	    AFF_OK)
		return (store_pg_tx_end(s, rv));
	p = (struct pg_params){ 0 };
	store_pg_p_int(&p, id);
	store_pg_p_int(&p, now);
	rv = RUN(s, ST_EP_DELIVERIES_GIVEUP, &p, NULL, "endpoint deliveries");
	return (store_pg_tx_end(s, rv));
}

int
store_pg_postback_endpoint_rotate(store *base, int64_t id, const char *secret,
    aff_arena *a, Affiliate__V1__PostbackEndpoint **out)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, id);
	store_pg_p_text(&p, secret);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	return (store_pg_one_row(PG_STORE(base), PQ_POSTBACKS, ST_EP_ROTATE, &p,
	    row_endpoint, a, out, "endpoint rotate"));
}

int
store_pg_postback_endpoint_enable(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackEndpoint **out)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, id);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	return (store_pg_one_row(PG_STORE(base), PQ_POSTBACKS, ST_EP_ENABLE, &p,
	    row_endpoint, a, out, "endpoint enable"));
}

int
store_pg_postback_attempt_list(store *base, int64_t endpoint_id,
    int64_t before, int limit, aff_arena *a,
    Affiliate__V1__PostbackAttempt ***out, size_t *n, int *more)
{
	struct pg_params p = { 0 };

	if (limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	store_pg_p_int(&p, endpoint_id);
	store_pg_p_int(&p, before);
	store_pg_p_int(&p, (int64_t)limit + 1);
	return (store_pg_list_page(PG_STORE(base), PQ_POSTBACKS, ST_ATTEMPT_LIST,
	    &p, limit, row_attempt, a, out, n, more, NULL, "attempt list"));
}

int
store_pg_postback_delivery_get(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackDelivery **out, int64_t *editor_id)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	PGresult *res;
	int rv;

	store_pg_p_int(&p, id);
	if ((rv = RUN(s, ST_DELIVERY_GET, &p, &res, "delivery get")) != AFF_OK)
		return (rv);
	if (PQntuples(res) == 0)
		rv = AFF_NOT_FOUND;
	else {
		*editor_id = store_pg_int(res, 0, 6);
		if ((*out = row_delivery(res, 0, a)) == NULL)
			rv = AFF_RESOURCE_EXHAUSTED;
	}
	PQclear(res);
	return (rv);
}

static int
delivery_job(pg_store *s, int64_t delivery_id, int64_t now_ms)
{
	Affiliate__V1__PostbackJob job = AFFILIATE__V1__POSTBACK_JOB__INIT;
	struct store_job_policy p = {
		.max_attempts = store_postback_policy_get()->max_attempts,
	};
	uint8_t buf[16];
	size_t len;

	job.delivery_id = delivery_id;
	len = affiliate__v1__postback_job__pack(&job, buf);
	return (store_pg_job_insert(s, "postback", delivery_id, buf, len, &p,
	    now_ms));
}

int
store_pg_postback_redeliver(store *base, int64_t id, aff_arena *a,
    Affiliate__V1__PostbackDelivery **out)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	int64_t now_ms = aff_now_ms(), editor;
	PGresult *res;
	int rv, changed;

	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	store_pg_p_int(&p, id);
	store_pg_p_int(&p, now_ms / 1000);
	if ((rv = RUN(s, ST_REDELIVER, &p, &res, "redeliver")) != AFF_OK)
		return (store_pg_tx_end(s, rv));
	changed = atoi(PQcmdTuples(res)) > 0;
	PQclear(res);
	if (!changed) {
		rv = store_pg_postback_delivery_get(base, id, a, out, &editor);
		return (store_pg_tx_end(s, rv == AFF_OK ? AFF_FAILED_PRECONDITION
		                                        : rv));
	}
	if ((rv = delivery_job(s, id, now_ms)) == AFF_OK)
		rv = store_pg_postback_delivery_get(base, id, a, out, &editor);
	return (store_pg_tx_end(s, rv));
}

/* ---- events (inside the caller's transaction) ---- */

/* The enabled endpoints of editor_id that take type, every one of them,
 * their ids in a's memory (as SQLite's). */
static int
targets(pg_store *s, int64_t editor_id, const char *type, aff_arena *a,
    int64_t **ids, int *n)
{
	struct pg_params p = { 0 };
	PGresult *res;
	int rv, rows;

	*n = 0;
	*ids = NULL;
	store_pg_p_int(&p, editor_id);
	store_pg_p_text(&p, type);
	if ((rv = RUN(s, ST_TARGETS, &p, &res, "postback targets")) != AFF_OK)
		return (rv);
	if ((rows = PQntuples(res)) > 0 &&
	    (*ids = aff_arena_alloc(a, sizeof(**ids) * (size_t)rows)) == NULL)
		rv = AFF_RESOURCE_EXHAUSTED;
	for (int i = 0; rv == AFF_OK && i < rows; i++)
		(*ids)[(*n)++] = store_pg_int(res, i, 0);
	PQclear(res);
	return (rv);
}

static int
emit(pg_store *s, const char *type, int64_t editor_id, const char *event_id,
    const char *body, const int64_t *ids, int n)
{
	struct pg_params p = { 0 };
	int64_t now_ms = aff_now_ms(), ev;
	PGresult *res;
	int rv;

	store_pg_p_text(&p, event_id);
	store_pg_p_text(&p, type);
	store_pg_p_int(&p, editor_id);
	store_pg_p_text(&p, body);
	store_pg_p_int(&p, now_ms / 1000);
	if ((rv = RUN(s, ST_EVENT_INSERT, &p, &res, "postback event")) != AFF_OK)
		return (rv);
	ev = store_pg_int(res, 0, 0);
	PQclear(res);
	for (int i = 0; i < n; i++) {
		int64_t d;
		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, ev);
		store_pg_p_int(&p, ids[i]);
		store_pg_p_int(&p, now_ms / 1000);
		if ((rv = RUN(s, ST_DELIVERY_INSERT, &p, &res,
		         "postback delivery")) != AFF_OK)
			return (rv);
		d = store_pg_int(res, 0, 0);
		PQclear(res);
		if ((rv = delivery_job(s, d, now_ms)) != AFF_OK)
			return (rv);
	}
	return (AFF_OK);
}

int
store_pg_postback_order(pg_store *s, const char *type,
    const Affiliate__V1__Order *o, aff_arena *a)
{
	int64_t *ids;
	char event_id[40], *body;
	int n, rv;

	if ((rv = targets(s, o->editor_id, type, a, &ids, &n)) !=
	        AFF_OK ||
	    n == 0)
		return (rv);
	if ((body = store_postback_order_body(type, o, event_id, a)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	return (emit(s, type, o->editor_id, event_id, body, ids, n));
}

int
store_pg_postback_application(
    pg_store *s, const Affiliate__V1__Application *app)
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
store_pg_postback_fill(pg_store *s, struct store_job *j, aff_arena *a)
{
	Affiliate__V1__PostbackJob *pj;
	struct pg_params p = { 0 };
	int64_t delivery_id;
	PGresult *res;
	uint8_t *buf;
	size_t len;
	int rv;

	pj = affiliate__v1__postback_job__unpack(NULL, j->payload_len, j->payload);
	if (pj == NULL)
		return (AFF_OK); /* the worker will say it is not one */
	delivery_id = pj->delivery_id;
	affiliate__v1__postback_job__free_unpacked(pj, NULL);
	store_pg_p_int(&p, delivery_id);
	if ((rv = RUN(s, ST_JOB_FILL, &p, &res, "job fill")) != AFF_OK)
		return (rv);
	if (PQntuples(res) == 1) {
		rv = store_postback_job_pack(delivery_id, PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
		    PQgetvalue(res, 0, 3), a, &buf, &len);
		if (rv == AFF_OK) {
			j->payload = buf;
			j->payload_len = len;
		}
	}
	PQclear(res);
	return (rv);
}

int
store_pg_postback_kill(pg_store *s, int64_t delivery_id)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, delivery_id);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	return (RUN(s, ST_DELIVERY_DEAD, &p, NULL, "delivery dead"));
}

int
store_pg_postback_finish(pg_store *s, int64_t job_id, int64_t delivery_id,
    const Affiliate__V1__JobResult *r, int attempts, int max_attempts)
{
	const struct store_postback_policy *pol = store_postback_policy_get();
	Affiliate__V1__PostbackResult *pr = NULL;
	char why[512], reason[160];
	int enabled = 1, deleted = 0, streak = 0, rv;
	int64_t endpoint = 0;
	struct pg_params p = { 0 };
	PGresult *res;

	if (r->payload.len > 0)
		pr = affiliate__v1__postback_result__unpack(
		    NULL, r->payload.len, r->payload.data);
	snprintf(why, sizeof(why), "%.480s",
	    r->ok ? "" : r->error[0] != '\0' ? r->error : "no reason given");
	store_pg_p_int(&p, delivery_id);
	store_pg_p_int(&p, pr != NULL ? pr->status_code : 0);
	store_pg_p_int(&p, pr != NULL ? pr->latency_ms : 0);
	store_pg_p_text(&p, why);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	if ((rv = RUN(s, ST_ATTEMPT_INSERT, &p, NULL, "attempt insert")) != AFF_OK)
		goto done;
	p = (struct pg_params){ 0 };
	store_pg_p_int(&p, delivery_id);
	store_pg_p_text(&p, r->ok ? "delivered" : "pending");
	store_pg_p_int(&p, aff_now_ms() / 1000);
	if ((rv = RUN(s, ST_DELIVERY_COUNT, &p, NULL, "delivery count")) !=
	    AFF_OK)
		goto done;
	if (r->ok) {
		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, delivery_id);
		if ((rv = RUN(s, ST_EP_SUCCESS, &p, NULL, "endpoint ok")) != AFF_OK)
			goto done;
		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, job_id);
		store_pg_p_int(&p, aff_now_ms());
		rv = RUN(s, ST_JOB_DONE, &p, NULL, "job done");
		goto done;
	}
	snprintf(reason, sizeof(reason),
	    "%d failed attempts in a row (the last: %.100s)", pol->disable_after,
	    why);
	p = (struct pg_params){ 0 };
	store_pg_p_int(&p, delivery_id);
	store_pg_p_int(&p, pol->disable_after);
	store_pg_p_text(&p, reason);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	if ((rv = RUN(s, ST_EP_FAILURE, &p, &res, "endpoint failure")) != AFF_OK)
		goto done;
	if (PQntuples(res) == 1) {
		enabled = (int)store_pg_int(res, 0, 0);
		deleted = (int)store_pg_int(res, 0, 1);
		streak = (int)store_pg_int(res, 0, 2);
		endpoint = store_pg_int(res, 0, 3);
	}
	PQclear(res);
	if (!enabled && streak == pol->disable_after)
		aff_warn("postbacks: endpoint %lld disabled: %s",
		    (long long)endpoint, reason);
	p = (struct pg_params){ 0 };
	store_pg_p_int(&p, job_id);
	store_pg_p_text(&p, why);
	if ((pr != NULL && pr->permanent) || attempts >= max_attempts ||
	    !enabled || deleted) {
		store_pg_p_int(&p, aff_now_ms());
		if ((rv = RUN(s, ST_JOB_DEAD, &p, NULL, "job dead")) == AFF_OK)
			rv = store_pg_postback_kill(s, delivery_id);
		aff_warn("postbacks: delivery %lld is dead after %d attempt(s): "
		         "%s",
		    (long long)delivery_id, attempts,
		    !enabled || deleted ? "endpoint off" : why);
		goto done;
	}
	store_pg_p_int(&p, store_postback_backoff_ms(attempts,
	    pr != NULL ? pr->retry_after_s : 0));
	store_pg_p_int(&p, aff_now_ms());
	rv = RUN(s, ST_JOB_RETRY, &p, NULL, "job retry");
done:
	if (pr != NULL)
		affiliate__v1__postback_result__free_unpacked(pr, NULL);
	return (rv);
}
