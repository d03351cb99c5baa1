/*
 * store_sqlite_applications.c - editors' applications to advertisers'
 * programmes in SQLite: made pending together with their review job (the
 * outbox row) in one transaction, read and listed, decided once, each
 * change kept in application_events.
 */
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_util.h"
#include "store.h"
#include "store_sqlite_private.h"

#define APP_COLUMNS                                                            \
	"id, editor_id, advertiser_id, status, reason, created_at, updated_at"

#define STATEMENTS(X)                                                          \
	X(ST_APP_INSERT, "INSERT INTO applications (editor_id, advertiser_id," \
	                 " status, created_at, updated_at, request_id)"        \
	                 " VALUES (?1, ?2, 'pending', ?3, ?3, ?4)")            \
	X(ST_APP_OPEN, "SELECT " APP_COLUMNS ", request_id FROM applications"  \
	               " WHERE editor_id = ?1 AND advertiser_id = ?2"          \
	               " AND status IN ('pending', 'approved')")               \
	X(ST_APP_EVENTS, "SELECT status, reason, at FROM application_events"   \
	                 " WHERE application_id = ?1 ORDER BY id LIMIT ?2")    \
	X(ST_APP_GET,                                                          \
	    "SELECT " APP_COLUMNS " FROM applications WHERE id = ?1")          \
	X(ST_APP_LIST, "SELECT " APP_COLUMNS " FROM applications"              \
	               " WHERE id > ?1 AND (?3 = 0 OR editor_id = ?3)"         \
	               " AND (?4 = '' OR status = ?4) ORDER BY id LIMIT ?2")   \
	X(ST_APP_DECIDE, "UPDATE applications SET status = ?2, reason = ?3,"   \
	                 " updated_at = ?4 WHERE id = ?1"                      \
	                 " AND status = 'pending'")                            \
	X(ST_EVENT_INSERT, "INSERT INTO application_events (application_id,"   \
	                   " status, reason, at) VALUES (?1, ?2, ?3, ?4)")

enum { STATEMENTS(SQLITE_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(SQLITE_STMT_SQL) };

const struct store_sqlite_statements store_sqlite_applications_statements = {
	stmt_sql,
	ST_COUNT,
};

#define STMT(s, i) ((s)->st[SQ_APPLICATIONS][i])

/* Reads an Affiliate__V1__Application from the current row (APP_COLUMNS
 * order); a store_sqlite_row_fn. */
static void *
row_application(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__Application *app;

	if ((app = aff_arena_alloc(a, sizeof(*app))) == NULL)
		return (NULL);
	affiliate__v1__application__init(app);
	app->id = sqlite3_column_int64(st, 0);
	app->editor_id = sqlite3_column_int64(st, 1);
	app->advertiser_id = sqlite3_column_int64(st, 2);
	app->status = store_sqlite_col_text(st, 3, a);
	app->reason = store_sqlite_col_text(st, 4, a);
	app->created_at = store_sqlite_col_time(st, 5, a);
	app->updated_at = store_sqlite_col_time(st, 6, a);
	if (app->status == NULL || app->reason == NULL ||
	    app->created_at == NULL || app->updated_at == NULL)
		return (NULL);
	return (app);
}

static int
event_insert(sqlite_store *s, int64_t app_id, const char *status,
    const char *reason, int64_t now_s)
{
	sqlite3_stmt *st = STMT(s, ST_EVENT_INSERT);

	sqlite3_bind_int64(st, 1, app_id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_s);
	return (store_sqlite_step_write(s, st, "event insert"));
}

int
store_sqlite_application_create(store *base, int64_t editor_id,
    int64_t advertiser_id, const char *request_id,
    const struct store_job_policy *p, aff_arena *a,
    Affiliate__V1__Application **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	Affiliate__V1__ReviewApplicationJob job =
	    AFFILIATE__V1__REVIEW_APPLICATION_JOB__INIT;
	uint8_t payload[64];
	size_t plen;
	int64_t now_ms = aff_now_ms(), id;
	sqlite3_stmt *st;
	int rv;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	st = STMT(s, ST_APP_OPEN);
	sqlite3_bind_int64(st, 1, editor_id);
	sqlite3_bind_int64(st, 2, advertiser_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *made_by = (const char *)sqlite3_column_text(st, 7);
		int same = request_id != NULL && request_id[0] != '\0' &&
		    made_by != NULL && strcmp(made_by, request_id) == 0;
		*out = row_application(st, a);
		store_sqlite_stmt_done(st);
		if (*out == NULL)
			rv = AFF_RESOURCE_EXHAUSTED;
		else
			rv = same ? AFF_OK : AFF_ALREADY_EXISTS;
		(void)store_sqlite_tx_end(s, AFF_ABORTED); /* nothing written */
		return (rv);
	}
	store_sqlite_stmt_done(st);
	st = STMT(s, ST_APP_INSERT);
	sqlite3_bind_int64(st, 1, editor_id);
	sqlite3_bind_int64(st, 2, advertiser_id);
	sqlite3_bind_int64(st, 3, now_ms / 1000);
	sqlite3_bind_text(st, 4, request_id != NULL ? request_id : "", -1,
	    SQLITE_STATIC);
	if ((rv = store_sqlite_step_write(s, st, "application insert")) != AFF_OK)
		goto done;
	id = sqlite3_last_insert_rowid(s->db);
	if ((rv = event_insert(s, id, "pending", "", now_ms / 1000)) != AFF_OK)
		goto done;
	job.application_id = id;
	job.editor_id = editor_id;
	job.advertiser_id = advertiser_id;
	plen = affiliate__v1__review_application_job__pack(&job, payload);
	if ((rv = store_sqlite_job_insert(s, "review_application", id, payload, plen,
	         p, now_ms)) != AFF_OK)
		goto done;
	st = STMT(s, ST_APP_GET);
	sqlite3_bind_int64(st, 1, id);
	rv = store_sqlite_one_row(s, st, row_application, a, out, "application read");
done:
	return (store_sqlite_tx_end(s, rv));
}

int
store_sqlite_application_get(
    store *base, int64_t id, aff_arena *a, Affiliate__V1__Application **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_APP_GET);

	sqlite3_bind_int64(st, 1, id);
	return (store_sqlite_one_row(s, st, row_application, a, out,
	    "application read"));
}

int
store_sqlite_application_list(store *base,
    const struct store_application_query *q, aff_arena *a,
    Affiliate__V1__Application ***out, size_t *n, int *more)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_APP_LIST);

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	sqlite3_bind_int64(st, 1, q->after);
	sqlite3_bind_int64(st, 2, (int64_t)q->limit + 1);
	sqlite3_bind_int64(st, 3, q->editor_id);
	sqlite3_bind_text(
	    st, 4, q->status != NULL ? q->status : "", -1, SQLITE_STATIC);
	return (store_sqlite_list_page(s, st, q->limit, row_application, a, out, n,
	    more, NULL, "application list"));
}

/* The application.decided event of a decision just written. */
static int
decided_postback(sqlite_store *s, int64_t app_id)
{
	Affiliate__V1__Application *app;
	sqlite3_stmt *st = STMT(s, ST_APP_GET);
	aff_arena a;
	int rv;

	aff_arena_init(&a);
	sqlite3_bind_int64(st, 1, app_id);
	rv = store_sqlite_one_row(s, st, row_application, &a, &app,
	    "application read");
	if (rv == AFF_OK)
		rv = store_sqlite_postback_application(s, app);
	aff_arena_fini(&a);
	return (rv);
}

int
store_sqlite_application_decide(sqlite_store *s, int64_t app_id,
    const char *status, const char *reason, int64_t now_s)
{
	sqlite3_stmt *st = STMT(s, ST_APP_DECIDE);
	int rv;

	sqlite3_bind_int64(st, 1, app_id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_s);
	if ((rv = store_sqlite_step_write(s, st, "application decide")) != AFF_OK)
		return (rv);
	if (sqlite3_changes(s->db) == 0)
		return (AFF_OK);
	if ((rv = event_insert(s, app_id, status, reason, now_s)) != AFF_OK)
		return (rv);
	return (decided_postback(s, app_id));
}

/* Reads an Affiliate__V1__ApplicationEvent (status, reason, at). */
static void *
row_application_event(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__ApplicationEvent *e;

	if ((e = aff_arena_alloc(a, sizeof(*e))) == NULL)
		return (NULL);
	affiliate__v1__application_event__init(e);
	e->status = store_sqlite_col_text(st, 0, a);
	e->reason = store_sqlite_col_text(st, 1, a);
	e->at = store_sqlite_col_time(st, 2, a);
	return (e->status != NULL && e->reason != NULL && e->at != NULL ? e
	                                                                : NULL);
}

int
store_sqlite_application_events(store *base, Affiliate__V1__Application *app,
    aff_arena *a)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_APP_EVENTS);
	int more;

	sqlite3_bind_int64(st, 1, app->id);
	sqlite3_bind_int64(st, 2, STORE_EVENTS_MAX + 1);
	return (store_sqlite_list_page(s, st, STORE_EVENTS_MAX,
	    row_application_event, a, &app->events, &app->n_events, &more, NULL,
	    "application events"));
}
