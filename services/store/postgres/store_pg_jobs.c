/*
 * store_pg_jobs.c - the job outbox in PostgreSQL, shared by every server
 * of one database: jobs claimed with FOR UPDATE SKIP LOCKED (two servers
 * never claim the same delivery, neither waits for the other), results
 * and heartbeats applied under the job's row lock (once, whichever
 * server receives them: the token checks are SQLite's), given back,
 * made due again at start only where their claimer is gone.
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
	              " WHERE pid = pg_backend_pid()")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

const struct store_pg_statements store_pg_jobs_statements = { stmt_sql,
	ST_COUNT };

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
