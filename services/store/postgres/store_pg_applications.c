/*
 * store_pg_applications.c - editors' applications in PostgreSQL: made
 * pending together with their review job (the outbox row) in one
 * transaction, read and listed, decided once, each change kept in
 * application_events. "One pending or approved application per editor
 * and advertiser" holds across servers by the partial unique index
 * (applications_one_open): the insert names it in ON CONFLICT, so a
 * second server creating the same pair at the same moment waits for the
 * first one's commit and then answers with that application.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "aff_err.h"
#include "aff_util.h"
#include "store.h"
#include "store_pg_private.h"

#define APP_COLUMNS                                                            \
	"id, editor_id, advertiser_id, status, reason, created_at, updated_at"

#define STATEMENTS(X)                                                          \
	X(ST_APP_INSERT, "INSERT INTO applications (editor_id, advertiser_id," \
	                 " status, created_at, updated_at, request_id)"        \
	                 " VALUES ($1, $2, 'pending', $3, $3, $4)"             \
	                 " ON CONFLICT (editor_id, advertiser_id)"             \
	                 " WHERE status IN ('pending', 'approved')"            \
	                 " DO NOTHING RETURNING " APP_COLUMNS)                 \
	X(ST_APP_OPEN, "SELECT " APP_COLUMNS ", request_id FROM applications"  \
	               " WHERE editor_id = $1 AND advertiser_id = $2"          \
	               " AND status IN ('pending', 'approved')")               \
	X(ST_APP_EVENTS, "SELECT status, reason, at FROM application_events"   \
	                 " WHERE application_id = $1 ORDER BY id LIMIT $2")    \
	X(ST_APP_GET,                                                          \
	    "SELECT " APP_COLUMNS " FROM applications WHERE id = $1")          \
	X(ST_APP_LIST, "SELECT " APP_COLUMNS " FROM applications"              \
	               " WHERE id > $1 AND ($3::bigint = 0 OR editor_id = $3)"  \
	               " AND ($4::text = '' OR status = $4)"                   \
	               " ORDER BY id LIMIT $2")                                \
	X(ST_APP_DECIDE, "UPDATE applications SET status = $2, reason = $3,"   \
	                 " updated_at = $4 WHERE id = $1"                      \
	                 " AND status = 'pending'")                            \
	X(ST_EVENT_INSERT, "INSERT INTO application_events (application_id,"   \
	                   " status, reason, at) VALUES ($1, $2, $3, $4)")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

const struct store_pg_statements store_pg_applications_statements = {
	.sql = stmt_sql, .n = ST_COUNT };

/* Reads an Affiliate__V1__Application from row r (APP_COLUMNS order). */
static void *
row_application(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__Application *app;

	if ((app = aff_arena_alloc(a, sizeof(*app))) == NULL)
		return (NULL);
	affiliate__v1__application__init(app);
	app->id = store_pg_int(res, r, 0);
	app->editor_id = store_pg_int(res, r, 1);
	app->advertiser_id = store_pg_int(res, r, 2);
	app->status = store_pg_text(res, r, 3, a);
	app->reason = store_pg_text(res, r, 4, a);
	app->created_at = store_pg_time(res, r, 5, a);
	app->updated_at = store_pg_time(res, r, 6, a);
	if (app->status == NULL || app->reason == NULL ||
	    app->created_at == NULL || app->updated_at == NULL)
		return (NULL);
	return (app);
}

static int
event_insert(pg_store *s, int64_t app_id, const char *status,
    const char *reason, int64_t now_s)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, app_id);
	store_pg_p_text(&p, status);
	store_pg_p_text(&p, reason);
	store_pg_p_int(&p, now_s);
	return (store_pg_run(s, PQ_APPLICATIONS, ST_EVENT_INSERT, &p, NULL,
	    "event insert"));
}

/* The open application of the pair: AFF_ALREADY_EXISTS with it, AFF_OK
 * with it when request_id made it (a resent request), AFF_NOT_FOUND
 * when there is none. */
static int
open_application(pg_store *s, int64_t editor_id, int64_t advertiser_id,
    const char *request_id, aff_arena *a, Affiliate__V1__Application **out)
{
	struct pg_params p = { 0 };
	PGresult *res;
	int rv;

	store_pg_p_int(&p, editor_id);
	store_pg_p_int(&p, advertiser_id);
	if ((rv = store_pg_run(s, PQ_APPLICATIONS, ST_APP_OPEN, &p, &res,
	         "application open")) != AFF_OK)
		return (rv);
	if (PQntuples(res) == 0)
		rv = AFF_NOT_FOUND;
	else if ((*out = row_application(res, 0, a)) == NULL)
		rv = AFF_RESOURCE_EXHAUSTED;
	else
		rv = request_id != NULL && request_id[0] != '\0' &&
		        strcmp(PQgetvalue(res, 0, 7), request_id) == 0
		    ? AFF_OK
		    : AFF_ALREADY_EXISTS;
	PQclear(res);
	return (rv);
}

int
store_pg_application_create(store *base, int64_t editor_id,
    int64_t advertiser_id, const char *request_id,
    const struct store_job_policy *pol, aff_arena *a,
    Affiliate__V1__Application **out)
{
	pg_store *s = PG_STORE(base);
	Affiliate__V1__ReviewApplicationJob job =
	    AFFILIATE__V1__REVIEW_APPLICATION_JOB__INIT;
	uint8_t payload[64];
	size_t plen;
	int64_t now_ms = aff_now_ms(), id;
	struct pg_params p;
	PGresult *res;
	int rv, tries;

	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	/*
	 * Read first (a conflict then burns no id, as in SQLite); insert
	 * only when there is none. Another server's insert between the two
	 * makes ours do nothing, and the read after it finds that one (or,
	 * decided meanwhile, none: try again).
	 */
	for (tries = 0; tries < 3; tries++) {
		rv = open_application(s, editor_id, advertiser_id, request_id, a,
		    out);
		if (rv != AFF_NOT_FOUND) {
			(void)store_pg_tx_end(s, AFF_ABORTED); /* nothing written */
			return (rv);
		}
		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, editor_id);
		store_pg_p_int(&p, advertiser_id);
		store_pg_p_int(&p, now_ms / 1000);
		store_pg_p_text(&p, request_id);
		if ((rv = store_pg_run(s, PQ_APPLICATIONS, ST_APP_INSERT, &p,
		         &res, "application insert")) != AFF_OK)
			return (store_pg_tx_end(s, rv));
		if (PQntuples(res) == 1)
			break;
		PQclear(res);
	}
	if (tries == 3)
		return (store_pg_tx_end(s, AFF_UNAVAILABLE));
	*out = row_application(res, 0, a);
	PQclear(res);
	if (*out == NULL)
		return (store_pg_tx_end(s, AFF_RESOURCE_EXHAUSTED));
	id = (*out)->id;
	if ((rv = event_insert(s, id, "pending", "", now_ms / 1000)) != AFF_OK)
		return (store_pg_tx_end(s, rv));
	job.application_id = id;
	job.editor_id = editor_id;
	job.advertiser_id = advertiser_id;
	plen = affiliate__v1__review_application_job__pack(&job, payload);
	rv = store_pg_job_insert(s, "review_application", id, payload, plen, pol,
	    now_ms);
	return (store_pg_tx_end(s, rv));
}

int
store_pg_application_get(
    store *base, int64_t id, aff_arena *a, Affiliate__V1__Application **out)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, id);
	return (store_pg_one_row(PG_STORE(base), PQ_APPLICATIONS, ST_APP_GET, &p,
	    row_application, a, out, "application read"));
}

int
store_pg_application_list(store *base,
    const struct store_application_query *q, aff_arena *a,
    Affiliate__V1__Application ***out, size_t *n, int *more)
{
	struct pg_params p = { 0 };

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	store_pg_p_int(&p, q->after);
	store_pg_p_int(&p, (int64_t)q->limit + 1);
	store_pg_p_int(&p, q->editor_id);
	store_pg_p_text(&p, q->status);
	return (store_pg_list_page(PG_STORE(base), PQ_APPLICATIONS, ST_APP_LIST,
	    &p, q->limit, row_application, a, out, n, more, NULL,
	    "application list"));
}

/* The application.decided event of a decision just written. */
static int
decided_postback(pg_store *s, int64_t app_id)
{
	Affiliate__V1__Application *app;
	struct pg_params p = { 0 };
	aff_arena a;
	int rv;

	aff_arena_init(&a);
	store_pg_p_int(&p, app_id);
	rv = store_pg_one_row(s, PQ_APPLICATIONS, ST_APP_GET, &p,
	    row_application, &a, &app, "application read");
	if (rv == AFF_OK)
		rv = store_pg_postback_application(s, app);
	aff_arena_fini(&a);
	return (rv);
}

int
store_pg_application_decide(pg_store *s, int64_t app_id, const char *status,
    const char *reason, int64_t now_s)
{
	struct pg_params p = { 0 };
	PGresult *res;
	int rv, changed;

	store_pg_p_int(&p, app_id);
	store_pg_p_text(&p, status);
	store_pg_p_text(&p, reason);
	store_pg_p_int(&p, now_s);
	/* The row lock makes a second server's decision wait, then find it
	 * decided (status no longer pending): once. */
	if ((rv = store_pg_run(s, PQ_APPLICATIONS, ST_APP_DECIDE, &p, &res,
	         "application decide")) != AFF_OK)
		return (rv);
	changed = atoi(PQcmdTuples(res)) > 0;
	PQclear(res);
	if (!changed)
		return (AFF_OK);
	if ((rv = event_insert(s, app_id, status, reason, now_s)) != AFF_OK)
		return (rv);
	return (decided_postback(s, app_id));
}

/* Reads an Affiliate__V1__ApplicationEvent (status, reason, at). */
static void *
row_application_event(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__ApplicationEvent *e;

	if ((e = aff_arena_alloc(a, sizeof(*e))) == NULL)
		return (NULL);
	affiliate__v1__application_event__init(e);
	e->status = store_pg_text(res, r, 0, a);
	e->reason = store_pg_text(res, r, 1, a);
	e->at = store_pg_time(res, r, 2, a);
	return (e->status != NULL && e->reason != NULL && e->at != NULL ? e
	                                                                : NULL);
}

int
store_pg_application_events(store *base, Affiliate__V1__Application *app,
    aff_arena *a)
{
	struct pg_params p = { 0 };
	int more;

	store_pg_p_int(&p, app->id);
	store_pg_p_int(&p, STORE_EVENTS_MAX + 1);
	return (store_pg_list_page(PG_STORE(base), PQ_APPLICATIONS, ST_APP_EVENTS,
	    &p, STORE_EVENTS_MAX, row_application_event, a, &app->events,
	    &app->n_events, &more, NULL, "application events"));
}
