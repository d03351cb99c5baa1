/*
 * store_pg_jobs.c - the job outbox in PostgreSQL, shared by every server
 * of one database: jobs claimed with FOR UPDATE SKIP LOCKED (two servers
 * never claim the same delivery, neither waits for the other), results
 * and heartbeats applied under the job's row lock (once, whichever
 * server receives them: the token checks are SQLite's), given back,
 * made due again at start only where their claimer is gone, and
 * listed and queued again by operators (dead jobs).
 *
 * One clock for every lease: the database host's. The store interface
 * hands each call the caller's monotonic time (now_ms), which means
 * nothing to another server: a lease one server set on its clock would
 * lapse at a random moment on another's. Here every due time and lease
 * deadline is computed in SQL from clock_timestamp() (PG_NOW_MS), and the
 * callers' now_ms is not stored. The trade-off: a step of the database
 * host's wall clock moves every lease at once (a step forward delivers
 * in-flight jobs again early, which the tokens make harmless; a step
 * back delays due jobs by as much), where SQLite's monotonic times never
 * follow a step. Keep the database host on NTP (slewing, not stepping).
 * Because the times are already on one clock, jobs_resume has nothing
 * to rebase; it only makes due again the deliveries whose claiming
 * database session is gone (the server that claimed them died), never
 * those of another live server.
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

/* A session: the backend's pid and start, unique while the postmaster
 * lives (a pid alone is reused). */
#define PG_SESSION_EXPR                                                        \
	"pid::text || '@' || extract(epoch FROM backend_start)::text"

/* A job as operators see it (row_job reads these, in this order). The
 * times are wall-clock milliseconds, shown in seconds. */
#define JOB_COLUMNS                                                            \
	"id, kind, ref_id, state, attempts, max_attempts, last_error,"         \
	" created_at / 1000, updated_at / 1000"

#define STATEMENTS(X)                                                          \
	X(ST_JOB_INSERT, "INSERT INTO jobs (kind, ref_id, payload, state,"     \
	                 " max_attempts, due_at, created_at, updated_at)"      \
	                 " VALUES ($1, $2, $3, 'queued', $4, " PG_NOW_MS ","   \
	                 " $5, $5)")                                           \
	X(ST_JOBS_EXPIRED, "SELECT id, kind, ref_id, attempts FROM jobs"       \
	                   " WHERE state = 'inflight'"                         \
	                   " AND due_at <= " PG_NOW_MS                         \
	                   " AND attempts >= max_attempts ORDER BY id"         \
	                   " LIMIT 32 FOR UPDATE SKIP LOCKED")                 \
	X(ST_JOBS_CLAIM,                                                       \
	    "WITH due AS (SELECT id FROM jobs"                                 \
	    " WHERE state IN ('queued', 'inflight')"                           \
	    " AND due_at <= " PG_NOW_MS " AND attempts < max_attempts"         \
	    " ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)"                \
	    " UPDATE jobs j SET state = 'inflight',"                           \
	    " attempts = j.attempts + 1, due_at = " PG_NOW_MS " + $1,"         \
	    " updated_at = $3, prev_token = j.lease_token,"                    \
	    " lease_token = md5(gen_random_uuid()::text), claimed_by = $4"     \
	    " FROM due WHERE j.id = due.id"                                    \
	    " RETURNING j.id, j.kind, j.attempts, j.payload, j.lease_token")   \
	X(ST_JOB_UNCLAIM, "UPDATE jobs SET state = 'queued',"                  \
	                  " attempts = attempts - 1, due_at = 0,"              \
	                  " lease_token = prev_token, prev_token = '',"        \
	                  " claimed_by = ''"                                   \
	                  " WHERE id = $1 AND state = 'inflight'"              \
	                  " AND lease_token = $2")                             \
	X(ST_JOB_GET, "SELECT kind, ref_id, state, attempts, max_attempts,"    \
	              " lease_token, prev_token FROM jobs WHERE id = $1"       \
	              " FOR UPDATE")                                           \
	X(ST_JOB_DONE, "UPDATE jobs SET state = 'done', updated_at = $2"       \
	               " WHERE id = $1")                                       \
	X(ST_JOB_DEAD, "UPDATE jobs SET state = 'dead', last_error = $2,"      \
	               " updated_at = $3 WHERE id = $1")                       \
	X(ST_JOB_RETRY, "UPDATE jobs SET state = 'queued', last_error = $2,"   \
	                " due_at = " PG_NOW_MS " + $3, updated_at = $4"        \
	                " WHERE id = $1")                                      \
	X(ST_JOBS_RESUME,                                                      \
	    "UPDATE jobs SET due_at = " PG_NOW_MS                              \
	    " WHERE state = 'inflight' AND claimed_by NOT IN"                  \
	    " (SELECT " PG_SESSION_EXPR " FROM pg_stat_activity"               \
	    " WHERE backend_start IS NOT NULL)")                               \
	X(ST_JOB_EXTEND, "UPDATE jobs SET due_at = " PG_NOW_MS " + $3"         \
	                 " WHERE id = $1 AND state = 'inflight'"               \
	                 " AND lease_token = $2")                              \
	X(ST_SESSION, "SELECT " PG_SESSION_EXPR " FROM pg_stat_activity"       \
	              " WHERE pid = pg_backend_pid()")                         \
	/* The operators' lists: one statement per filter, each naming its   \
	 * state in the SQL, so that a generic plan still proves the partial \
	 * index's WHERE (jobs_dead; jobs_due for queued and in flight). */  \
	X(ST_JOB_LIST_ALL, "SELECT " JOB_COLUMNS " FROM jobs WHERE id > $1"    \
	                   " ORDER BY id LIMIT $2")                            \
	X(ST_JOB_LIST_DEAD, "SELECT " JOB_COLUMNS " FROM jobs"                 \
	                    " WHERE state = 'dead' AND id > $1"                \
	                    " ORDER BY id LIMIT $2")                           \
	X(ST_JOB_LIST_DUE, "SELECT " JOB_COLUMNS " FROM jobs"                  \
	                   " WHERE state IN ('queued', 'inflight')"            \
	                   " AND state = $3 AND id > $1 ORDER BY id LIMIT $2") \
	X(ST_JOB_ROW, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = $1")        \
	X(ST_JOBS_DEAD_IDS, "SELECT id FROM jobs WHERE state = 'dead'"         \
	                    " AND id > $1 ORDER BY id LIMIT $2")               \
	X(ST_JOB_REQUEUE, "UPDATE jobs SET state = 'queued', attempts = 0,"    \
	                  " max_attempts = $2, due_at = " PG_NOW_MS ","        \
	                  " lease_token = '', prev_token = '',"                \
	                  " claimed_by = '', updated_at = $3"                  \
	                  " WHERE id = $1 AND state = 'dead'")                 \
	X(ST_APP_OTHER_OPEN,                                                   \
	    "SELECT o.id FROM applications a JOIN applications o"              \
	    " ON o.editor_id = a.editor_id AND o.advertiser_id = a.advertiser_id"\
	    " AND o.id <> a.id AND o.status IN ('pending', 'approved')"        \
	    " WHERE a.id = $1")                                                \
	X(ST_APP_REOPEN, "UPDATE applications SET status = 'pending',"         \
	                 " reason = '', updated_at = $2"                       \
	                 " WHERE id = $1 AND status = 'rejected'")             \
	X(ST_APP_REOPEN_EVENT, "INSERT INTO application_events"                \
	                       " (application_id, status, reason, at)"         \
	                       " VALUES ($1, 'pending', $2, $3)")        \
	/* A dead postback job's delivery, pending again (as a redelivery \
	 * does) only while it is dead: a delivery redelivered since has \
	 * another job, which must stay its only one. */                     \
	X(ST_DELIVERY_REOPEN, "UPDATE postback_deliveries SET"                 \
	                      " state = 'pending', attempts = 0,"              \
	                      " updated_at = $2 WHERE id = $1"                 \
	                      " AND state = 'dead' AND (SELECT"                \
	                      " pe.deleted_at IS NULL FROM postback_endpoints" \
	                      " pe WHERE pe.id = endpoint_id)")                \
	/* The open jobs through jobs_due (its WHERE), the dead apart; one  \
	 * clock, the database's, as every job time here. */                 \
	X(ST_JOBS_STATS,                                                       \
	    "SELECT count(*) FILTER (WHERE state = 'queued'),"                 \
	    " count(*) FILTER (WHERE state = 'inflight'),"                     \
	    " (SELECT count(*) FROM jobs WHERE state = 'dead'),"               \
	    " COALESCE(GREATEST(0, " PG_NOW_MS " - min(CASE WHEN due_at > 0"   \
	    " THEN due_at ELSE " PG_NOW_MS " END)"                             \
	    " FILTER (WHERE state = 'queued')), 0)"                            \
	    " FROM jobs WHERE state IN ('queued', 'inflight')")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

const struct store_pg_statements store_pg_jobs_statements = {
	.sql = stmt_sql, .n = ST_COUNT };

int
store_pg_job_insert(pg_store *s, const char *kind, int64_t ref_id,
    const uint8_t *payload, size_t len, const struct store_job_policy *pol,
    int64_t now_ms)
{
	struct pg_params p = { 0 };

	store_pg_p_text(&p, kind);
	store_pg_p_int(&p, ref_id);
	store_pg_p_bin(&p, payload, len);
	store_pg_p_int(&p, pol->max_attempts);
	store_pg_p_int(&p, now_ms);
	return (store_pg_run(s, PQ_JOBS, ST_JOB_INSERT, &p, NULL, "job insert"));
}

/* A job out of attempts: dead, and what it was for rejected. */
static int
job_kill(pg_store *s, int64_t job_id, const char *kind, int64_t ref_id,
    const char *why)
{
	struct pg_params p = { 0 };
	int rv;

	store_pg_p_int(&p, job_id);
	store_pg_p_text(&p, why);
	store_pg_p_int(&p, aff_now_ms()); /* shown to people */
	if ((rv = store_pg_run(s, PQ_JOBS, ST_JOB_DEAD, &p, NULL, "job dead")) !=
	    AFF_OK)
		return (rv);
	aff_warn("jobs: job %lld (%s %lld) is dead: %s", (long long)job_id, kind,
	    (long long)ref_id, why);
	if (strcmp(kind, "review_application") == 0)
		return (store_pg_application_decide(
		    s, ref_id, "rejected", why, aff_now_ms() / 1000));
	if (strcmp(kind, "postback") == 0)
		return (store_pg_postback_kill(s, ref_id));
	return (AFF_OK);
}

/* This session's name, as jobs.claimed_by records it. */
static int
session_name(pg_store *s, char *buf, size_t cap)
{
	PGresult *res;
	int rv;

	if ((rv = store_pg_run(s, PQ_JOBS, ST_SESSION, NULL, &res, "session")) !=
	    AFF_OK)
		return (rv);
	snprintf(buf, cap, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return (AFF_OK);
}

int
store_pg_jobs_claim(store *base, int64_t now_ms,
    const struct store_job_policy *pol, int max, aff_arena *a,
    struct store_job **out, size_t *n)
{
	pg_store *s = PG_STORE(base);
	struct store_job *v;
	struct pg_params p = { 0 };
	PGresult *res;
	int rv, rows;
	size_t k = 0;

	(void)now_ms; /* the database's clock decides (see the top) */
	*n = 0;
	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)max)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	if (s->session[0] == '\0' &&
	    (rv = session_name(s, s->session, sizeof(s->session))) != AFF_OK)
		return (store_pg_tx_end(s, rv));
	/* In flight, no result, no attempts left: dead. */
	if ((rv = store_pg_run(s, PQ_JOBS, ST_JOBS_EXPIRED, NULL, &res,
	         "jobs expired")) != AFF_OK)
		return (store_pg_tx_end(s, rv));
	rows = PQntuples(res);
	for (int i = 0; i < rows && rv == AFF_OK; i++) {
		char why[96];
		snprintf(why, sizeof(why), "no result after %d attempts",
		    atoi(PQgetvalue(res, i, 3)));
		rv = job_kill(s, store_pg_int(res, i, 0), PQgetvalue(res, i, 1),
		    store_pg_int(res, i, 2), why);
	}
	PQclear(res);
	if (rv != AFF_OK)
		return (store_pg_tx_end(s, rv));
	store_pg_p_int(&p, pol->visibility_ms);
	store_pg_p_int(&p, max);
	store_pg_p_int(&p, aff_now_ms());
	store_pg_p_text(&p, s->session);
	if ((rv = store_pg_run(s, PQ_JOBS, ST_JOBS_CLAIM, &p, &res,
	         "jobs claim")) != AFF_OK)
		return (store_pg_tx_end(s, rv));
	rows = PQntuples(res);
	for (int i = 0; i < rows && k < (size_t)max; i++) {
		struct store_job *j = &v[k];
		j->id = store_pg_int(res, i, 0);
		j->kind = store_pg_text(res, i, 1, a);
		j->attempt = atoi(PQgetvalue(res, i, 2));
		j->payload = store_pg_bytes(res, i, 3, a, &j->payload_len);
		j->token = store_pg_text(res, i, 4, a);
		if (j->kind == NULL || j->payload == NULL || j->token == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		k++;
	}
	PQclear(res);
	/* A postback goes out with its endpoint's URL and secret as they
	 * are now (a rotation signs retries with the new secret). */
	for (size_t i = 0; i < k && rv == AFF_OK; i++)
		if (strcmp(v[i].kind, "postback") == 0)
			rv = store_pg_postback_fill(s, &v[i], a);
	if ((rv = store_pg_tx_end(s, rv)) != AFF_OK)
		return (rv);
	*out = v;
	*n = k;
	return (AFF_OK);
}

int
store_pg_jobs_unclaim(store *base, const struct store_job *jobs, size_t n)
{
	pg_store *s = PG_STORE(base);
	int rv;

	if (n == 0)
		return (AFF_OK);
	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	for (size_t i = 0; i < n && rv == AFF_OK; i++) {
		struct pg_params p = { 0 };
		store_pg_p_int(&p, jobs[i].id);
		store_pg_p_text(&p, jobs[i].token);
		rv = store_pg_run(s, PQ_JOBS, ST_JOB_UNCLAIM, &p, NULL,
		    "job unclaim");
	}
	return (store_pg_tx_end(s, rv));
}

/* Applies a successful result of kind review_application. */
static int
apply_review(pg_store *s, int64_t app_id, const Affiliate__V1__JobResult *r)
{
	Affiliate__V1__ReviewApplicationResult *rr;
	int rv;

	if ((rv = store_review_result_unpack(r, &rr)) != AFF_OK)
		return (rv);
	rv = store_pg_application_decide(
	    s, app_id, rr->decision, rr->reason, aff_now_ms() / 1000);
	affiliate__v1__review_application_result__free_unpacked(rr, NULL);
	return (rv);
}

int
store_pg_job_finish(store *base, const Affiliate__V1__JobResult *r,
    int64_t now_ms, const struct store_job_policy *pol)
{
	pg_store *s = PG_STORE(base);
	char kind[64], state[16], why[512], lease[40], prev[40];
	const char *token = r->token != NULL ? r->token : "";
	struct pg_params p = { 0 };
	PGresult *res;
	int64_t ref;
	int attempts, max_attempts, rv, current;

	(void)now_ms; /* the database's clock decides (see the top) */
	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	/* FOR UPDATE: a second server with the same result waits here,
	 * then reads the job finished. */
	store_pg_p_int(&p, r->job_id);
	if ((rv = store_pg_run(s, PQ_JOBS, ST_JOB_GET, &p, &res, "job get")) !=
	    AFF_OK)
		return (store_pg_tx_end(s, rv));
	if (PQntuples(res) == 0) {
		PQclear(res);
		return (store_pg_tx_end(s, AFF_NOT_FOUND));
	}
	snprintf(kind, sizeof(kind), "%s", PQgetvalue(res, 0, 0));
	ref = store_pg_int(res, 0, 1);
	snprintf(state, sizeof(state), "%s", PQgetvalue(res, 0, 2));
	attempts = atoi(PQgetvalue(res, 0, 3));
	max_attempts = atoi(PQgetvalue(res, 0, 4));
	snprintf(lease, sizeof(lease), "%s", PQgetvalue(res, 0, 5));
	snprintf(prev, sizeof(prev), "%s", PQgetvalue(res, 0, 6));
	PQclear(res);

	/* Only a delivery the server made may answer: the current lease, or
	 * the one before it. */
	current = token[0] != '\0' && strcmp(token, lease) == 0;
	if (!current && (token[0] == '\0' || strcmp(token, prev) != 0)) {
		(void)store_pg_tx_end(s, AFF_ABORTED);
		return (strcmp(state, "done") == 0 || strcmp(state, "dead") == 0
		        ? AFF_ALREADY_EXISTS
		        : AFF_PERMISSION_DENIED);
	}
	if (strcmp(state, "done") == 0 || strcmp(state, "dead") == 0 ||
	    (!r->ok && (!current || strcmp(state, "inflight") != 0))) {
		(void)store_pg_tx_end(s, AFF_ABORTED);
		return (AFF_ALREADY_EXISTS);
	}
	/* A postback's attempt is logged and judged whatever its outcome
	 * (the receiver's status decides about retries). */
	if (strcmp(kind, "postback") == 0)
		return (store_pg_tx_end(s, store_pg_postback_finish(s, r->job_id,
		    ref, r, attempts, max_attempts)));
	if (r->ok) {
		if (strcmp(kind, "review_application") == 0)
			rv = apply_review(s, ref, r);
		if (rv == AFF_OK) {
			p = (struct pg_params){ 0 };
			store_pg_p_int(&p, r->job_id);
			store_pg_p_int(&p, aff_now_ms());
			rv = store_pg_run(s, PQ_JOBS, ST_JOB_DONE, &p, NULL,
			    "job done");
		}
		return (store_pg_tx_end(s, rv));
	}
	snprintf(why, sizeof(why), "review failed: %.400s",
	    r->error[0] != '\0' ? r->error : "no reason given");
	if (attempts >= max_attempts)
		return (store_pg_tx_end(s, job_kill(s, r->job_id, kind, ref, why)));
	{
		int64_t backoff = store_job_backoff_ms(pol, attempts);

		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, r->job_id);
		store_pg_p_text(&p, why);
		store_pg_p_int(&p, backoff);
		store_pg_p_int(&p, aff_now_ms());
		rv = store_pg_run(s, PQ_JOBS, ST_JOB_RETRY, &p, NULL, "job retry");
	}
	return (store_pg_tx_end(s, rv));
}

int
store_pg_job_extend(store *base, int64_t job_id, const char *token,
    int64_t now_ms, const struct store_job_policy *pol)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	PGresult *res;
	int rv;

	(void)now_ms;
	if (token == NULL || token[0] == '\0')
		return (AFF_NOT_FOUND);
	store_pg_p_int(&p, job_id);
	store_pg_p_text(&p, token);
	store_pg_p_int(&p, pol->visibility_ms);
	if ((rv = store_pg_run_guarded(s, PQ_JOBS, ST_JOB_EXTEND, &p, &res,
	         "job extend")) != AFF_OK)
		return (rv);
	rv = atoi(PQcmdTuples(res)) == 1 ? AFF_OK : AFF_NOT_FOUND;
	PQclear(res);
	return (rv);
}

int
store_pg_jobs_resume(store *base, int64_t now_ms, int *n)
{
	pg_store *s = PG_STORE(base);
	PGresult *res;
	int rv;

	(void)now_ms; /* one clock: nothing to rebase (see the top) */
	*n = 0;
	if ((rv = store_pg_run(s, PQ_JOBS, ST_JOBS_RESUME, NULL, &res,
	         "jobs resume")) != AFF_OK)
		return (rv);
	*n = atoi(PQcmdTuples(res));
	PQclear(res);
	return (AFF_OK);
}

/* Reads an Affiliate__V1__JobInfo from row r (JOB_COLUMNS order); a
 * store_pg_row_fn. */
static void *
row_job(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__JobInfo *j;

	if ((j = aff_arena_alloc(a, sizeof(*j))) == NULL)
		return (NULL);
	affiliate__v1__job_info__init(j);
	j->id = store_pg_int(res, r, 0);
	j->kind = store_pg_text(res, r, 1, a);
	j->ref_id = store_pg_int(res, r, 2);
	j->state = store_pg_text(res, r, 3, a);
	j->attempts = (int32_t)store_pg_int(res, r, 4);
	j->max_attempts = (int32_t)store_pg_int(res, r, 5);
	j->last_error = store_pg_text(res, r, 6, a);
	j->created_at = store_pg_time(res, r, 7, a);
	j->updated_at = store_pg_time(res, r, 8, a);
	if (j->kind == NULL || j->state == NULL || j->last_error == NULL ||
	    j->created_at == NULL || j->updated_at == NULL)
		return (NULL);
	if (strcmp(j->kind, "review_application") == 0)
		j->application_id = j->ref_id;
	return (j);
}

int
store_pg_job_list(store *base, const struct store_job_query *q, aff_arena *a,
    Affiliate__V1__JobInfo ***out, size_t *n, int *more)
{
	const char *state = q->state != NULL ? q->state : "";
	struct pg_params p = { 0 };
	int st = state[0] == '\0'         ? ST_JOB_LIST_ALL
	    : strcmp(state, "dead") == 0 ? ST_JOB_LIST_DEAD
	                                 : ST_JOB_LIST_DUE;

	store_pg_p_int(&p, q->after);
	store_pg_p_int(&p, q->limit + 1);
	if (st == ST_JOB_LIST_DUE)
		store_pg_p_text(&p, state);
	return (store_pg_list_page(PG_STORE(base), PQ_JOBS, st, &p, q->limit,
	    row_job, a, out, n, more, NULL, "job list"));
}

/*
 * Queues dead job id again (inside the caller's transaction, the job's
 * row locked by ST_JOB_GET's FOR UPDATE, so a second retry waits and
 * then reads it queued). Checks before it writes: AFF_NOT_FOUND,
 * AFF_FAILED_PRECONDITION (not dead), AFF_ALREADY_EXISTS (its
 * application has an open successor; a postback job's delivery is not
 * dead: redelivered since, by another job, or its endpoint deleted).
 */
static int
job_requeue(pg_store *s, int64_t id, const struct store_job_policy *pol)
{
	struct pg_params p = { 0 };
	PGresult *res;
	char kind[64] = "", state[16] = "", why[64];
	int64_t ref = 0, now_s = aff_now_ms() / 1000;
	int rv, rows, max_attempts = pol->max_attempts;

	store_pg_p_int(&p, id);
	if ((rv = store_pg_run(s, PQ_JOBS, ST_JOB_GET, &p, &res, "job get")) !=
	    AFF_OK)
		return (rv);
	if ((rows = PQntuples(res)) > 0) {
		snprintf(kind, sizeof(kind), "%s", PQgetvalue(res, 0, 0));
		ref = store_pg_int(res, 0, 1);
		snprintf(state, sizeof(state), "%s", PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	if (rows == 0)
		return (AFF_NOT_FOUND);
	if (strcmp(state, "dead") != 0)
		return (AFF_FAILED_PRECONDITION);
	if (strcmp(kind, "review_application") == 0) {
		/* One open application per pair (the unique index): the
		 * editor may have applied again since this one was rejected. */
		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, ref);
		rv = store_pg_exists(
		    s, PQ_JOBS, ST_APP_OTHER_OPEN, &p, AFF_NOT_FOUND);
		if (rv == AFF_OK)
			return (AFF_ALREADY_EXISTS);
		if (rv != AFF_NOT_FOUND)
			return (rv);
		store_pg_p_int(&p, now_s);
		if ((rv = store_pg_run(s, PQ_JOBS, ST_APP_REOPEN, &p, &res,
		         "application reopen")) != AFF_OK)
			return (rv);
		rows = atoi(PQcmdTuples(res));
		PQclear(res);
		if (rows == 1) {
			snprintf(why, sizeof(why), "review job %lld retried",
			    (long long)id);
			p = (struct pg_params){ 0 };
			store_pg_p_int(&p, ref);
			store_pg_p_text(&p, why);
			store_pg_p_int(&p, now_s);
			if ((rv = store_pg_run(s, PQ_JOBS, ST_APP_REOPEN_EVENT, &p,
			         NULL, "event insert")) != AFF_OK)
				return (rv);
		}
	}
	if (strcmp(kind, "postback") == 0) {
		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, ref);
		store_pg_p_int(&p, now_s);
		if ((rv = store_pg_run(s, PQ_JOBS, ST_DELIVERY_REOPEN, &p, &res,
		         "delivery reopen")) != AFF_OK)
			return (rv);
		rows = atoi(PQcmdTuples(res));
		PQclear(res);
		if (rows == 0)
			return (AFF_ALREADY_EXISTS);
		/* Its attempts are the postback policy's, as at its making. */
		max_attempts = store_postback_policy_get()->max_attempts;
	}
	p = (struct pg_params){ 0 };
	store_pg_p_int(&p, id);
	store_pg_p_int(&p, max_attempts);
	store_pg_p_int(&p, aff_now_ms());
	return (store_pg_run(s, PQ_JOBS, ST_JOB_REQUEUE, &p, NULL,
	    "job requeue"));
}

int
store_pg_job_retry(store *base, int64_t id, int64_t now_ms,
    const struct store_job_policy *pol, aff_arena *a,
    Affiliate__V1__JobInfo **out)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	int rv;

	(void)now_ms; /* the database's clock decides (see the top) */
	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	if ((rv = job_requeue(s, id, pol)) == AFF_OK) {
		store_pg_p_int(&p, id);
		rv = store_pg_one_row(s, PQ_JOBS, ST_JOB_ROW, &p, row_job, a, out,
		    "job row");
	}
	return (store_pg_tx_end(s, rv));
}

int
store_pg_jobs_retry_dead(store *base, int64_t now_ms,
    const struct store_job_policy *pol, int *retried, int *skipped)
{
	pg_store *s = PG_STORE(base);
	int64_t ids[256], after = 0;
	PGresult *res;
	int rv, k;

	(void)now_ms;
	*retried = *skipped = 0;
	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	do {
		struct pg_params p = { 0 };

		store_pg_p_int(&p, after);
		store_pg_p_int(&p, (int64_t)(sizeof(ids) / sizeof(ids[0])));
		if ((rv = store_pg_run(s, PQ_JOBS, ST_JOBS_DEAD_IDS, &p, &res,
		         "dead jobs")) != AFF_OK)
			break;
		k = PQntuples(res);
		for (int i = 0; i < k; i++)
			ids[i] = store_pg_int(res, i, 0);
		PQclear(res);
		for (int i = 0; i < k && rv == AFF_OK; i++) {
			rv = job_requeue(s, ids[i], pol);
			if (rv == AFF_ALREADY_EXISTS) {
				(*skipped)++;
				rv = AFF_OK;
			} else if (rv == AFF_FAILED_PRECONDITION)
				/* Another server's retry got there first (the
				 * ids were read unlocked): not dead any more. */
				rv = AFF_OK;
			else if (rv == AFF_OK)
				(*retried)++;
			after = ids[i];
		}
	} while (rv == AFF_OK && k == (int)(sizeof(ids) / sizeof(ids[0])));
	if ((rv = store_pg_tx_end(s, rv)) != AFF_OK)
		*retried = *skipped = 0;
	return (rv);
}

int
store_pg_jobs_stats(store *base, int64_t now_ms, struct store_jobs_stats *out)
{
	pg_store *s = PG_STORE(base);
	PGresult *res;
	int rv;

	(void)now_ms; /* the database's clock (see the top) */
	memset(out, 0, sizeof(*out));
	if ((rv = store_pg_run(s, PQ_JOBS, ST_JOBS_STATS, NULL, &res,
	         "jobs stats")) != AFF_OK)
		return (rv);
	if (PQntuples(res) == 1) {
		out->queued = store_pg_int(res, 0, 0);
		out->inflight = store_pg_int(res, 0, 1);
		out->dead = store_pg_int(res, 0, 2);
		out->oldest_due_ms = store_pg_int(res, 0, 3);
	}
	PQclear(res);
	return (AFF_OK);
}
