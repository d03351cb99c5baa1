/*
 * store_sqlite_jobs.c - the job outbox in SQLite: jobs queued with what
 * they are for, claimed for delivery under a lease with a fresh token,
 * given back, kept alive by heartbeats, finished once by their result
 * (retried after a backoff, or dead when out of attempts, their
 * application then rejected), rebased on the monotonic clock of each
 * start, and listed and queued again by operators (dead jobs).
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_sqlite_private.h"

/* A job as operators see it (row_job reads these, in this order). The
 * times are wall-clock milliseconds, shown in seconds. */
#define JOB_COLUMNS                                                            \
	"id, kind, ref_id, state, attempts, max_attempts, last_error,"         \
	" created_at / 1000, updated_at / 1000"

#define STATEMENTS(X)                                                          \
	X(ST_JOB_INSERT, "INSERT INTO jobs (kind, ref_id, payload, state,"     \
	                 " max_attempts, due_at, created_at, updated_at)"      \
	                 " VALUES (?1, ?2, ?3, 'queued', ?4, ?6, ?5, ?5)")     \
	X(ST_JOBS_EXPIRED, "SELECT id, kind, ref_id, attempts FROM jobs"       \
	                   " WHERE state = 'inflight' AND due_at <= ?1"        \
	                   " AND attempts >= max_attempts")                    \
	X(ST_JOBS_CLAIM,                                                       \
	    "UPDATE jobs SET state = 'inflight', attempts = attempts + 1,"     \
	    " due_at = ?1 + ?2, updated_at = ?4, prev_token = lease_token,"    \
	    " lease_token = lower(hex(randomblob(16)))"                        \
	    " WHERE id IN (SELECT id FROM jobs"                                \
	    " WHERE state IN ('queued', 'inflight') AND due_at <= ?1"          \
	    " AND attempts < max_attempts ORDER BY due_at LIMIT ?3)"           \
	    " RETURNING id, kind, attempts, payload, lease_token")             \
	X(ST_JOB_UNCLAIM, "UPDATE jobs SET state = 'queued',"                  \
	                  " attempts = attempts - 1, due_at = 0,"              \
	                  " lease_token = prev_token, prev_token = ''"         \
	                  " WHERE id = ?1 AND state = 'inflight'")             \
	X(ST_JOB_GET, "SELECT kind, ref_id, state, attempts, max_attempts,"    \
	              " lease_token, prev_token FROM jobs WHERE id = ?1")      \
	X(ST_JOB_DONE, "UPDATE jobs SET state = 'done', updated_at = ?2"       \
	               " WHERE id = ?1")                                       \
	X(ST_JOB_DEAD, "UPDATE jobs SET state = 'dead', last_error = ?2,"      \
	               " updated_at = ?3 WHERE id = ?1")                       \
	X(ST_JOB_RETRY, "UPDATE jobs SET state = 'queued', last_error = ?2,"   \
	                " due_at = ?3, updated_at = ?4 WHERE id = ?1")         \
	X(ST_JOBS_RESUME, "UPDATE jobs SET due_at = ?1"                        \
	                  " WHERE state IN ('queued', 'inflight')"             \
	                  " AND (state = 'inflight' OR due_at > ?1)"           \
	                  " RETURNING state = 'inflight'")                     \
	X(ST_JOB_EXTEND, "UPDATE jobs SET due_at = ?3 WHERE id = ?1"           \
	                 " AND state = 'inflight' AND lease_token = ?2")       \
	/* The operators' lists: one statement per filter, each naming its   \
	 * state in the SQL, so that the partial indexes serve them (SQLite   \
	 * uses one only when the query's own terms say its WHERE). */        \
	X(ST_JOB_LIST_ALL, "SELECT " JOB_COLUMNS " FROM jobs WHERE id > ?1"    \
	                   " ORDER BY id LIMIT ?2")                            \
	X(ST_JOB_LIST_DEAD, "SELECT " JOB_COLUMNS " FROM jobs"                 \
	                    " WHERE state = 'dead' AND id > ?1"                \
	                    " ORDER BY id LIMIT ?2")                           \
	/* INDEXED BY: without statistics SQLite walks the primary key       \
	 * through every done job instead; the backlog is small, sorted. */   \
	X(ST_JOB_LIST_DUE, "SELECT " JOB_COLUMNS " FROM jobs INDEXED BY"       \
	                   " jobs_due WHERE state IN ('queued', 'inflight')"   \
	                   " AND state = ?3 AND id > ?1 ORDER BY id LIMIT ?2") \
	X(ST_JOB_ROW, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1")        \
	X(ST_JOBS_DEAD_IDS, "SELECT id FROM jobs WHERE state = 'dead'"         \
	                    " AND id > ?1 ORDER BY id LIMIT ?2")               \
	X(ST_JOB_REQUEUE, "UPDATE jobs SET state = 'queued', attempts = 0,"    \
	                  " max_attempts = ?2, due_at = ?3, lease_token = '',"  \
	                  " prev_token = '', updated_at = ?4"                  \
	                  " WHERE id = ?1 AND state = 'dead'")                 \
	X(ST_APP_OTHER_OPEN,                                                   \
	    "SELECT o.id FROM applications a JOIN applications o"              \
	    " ON o.editor_id = a.editor_id AND o.advertiser_id = a.advertiser_id"\
	    " AND o.id <> a.id AND o.status IN ('pending', 'approved')"        \
	    " WHERE a.id = ?1")                                                \
	X(ST_APP_REOPEN, "UPDATE applications SET status = 'pending',"         \
	                 " reason = '', updated_at = ?2"                       \
	                 " WHERE id = ?1 AND status = 'rejected'")             \
	X(ST_APP_REOPEN_EVENT, "INSERT INTO application_events"                \
	                       " (application_id, status, reason, at)"         \
	                       " VALUES (?1, 'pending', ?2, ?3)")          \
	/* A dead postback job's delivery, pending again (as a redelivery \
	 * does) only while it is dead: a delivery redelivered since has \
	 * another job, which must stay its only one. */                     \
	X(ST_DELIVERY_REOPEN, "UPDATE postback_deliveries SET"                 \
	                      " state = 'pending', attempts = 0,"              \
	                      " updated_at = ?2 WHERE id = ?1"                 \
	                      " AND state = 'dead' AND (SELECT"                \
	                      " pe.deleted_at IS NULL FROM postback_endpoints" \
	                      " pe WHERE pe.id = endpoint_id)")                \
	/* The IN list is jobs_due's own WHERE, so the partial index serves \
	 * it. A job given back (due_at 0) is due now, not since the boot. */ \
	X(ST_JOBS_OPEN, "SELECT state = 'queued', count(*),"                   \
	                " max(0, ?1 - min(CASE WHEN due_at > 0"                \
	                " THEN due_at ELSE ?1 END)) FROM jobs"                 \
	                " WHERE state IN ('queued', 'inflight') GROUP BY 1")   \
	X(ST_JOBS_DEAD_COUNT, "SELECT count(*) FROM jobs WHERE state = 'dead'")

enum { STATEMENTS(SQLITE_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(SQLITE_STMT_SQL) };

const struct store_sqlite_statements store_sqlite_jobs_statements = {
	stmt_sql,
	ST_COUNT,
};

#define STMT(s, i) ((s)->st[SQ_JOBS][i])

int
store_sqlite_job_insert(sqlite_store *s, const char *kind, int64_t ref_id,
    const uint8_t *payload, size_t len, const struct store_job_policy *p,
    int64_t now_ms)
{
	sqlite3_stmt *st = STMT(s, ST_JOB_INSERT);

	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ref_id);
	sqlite3_bind_blob(st, 3, payload, (int)len, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, p->max_attempts);
	sqlite3_bind_int64(st, 5, now_ms);
	sqlite3_bind_int64(st, 6, aff_mono_ms()); /* due now (store.h) */
	return (store_sqlite_step_write(s, st, "job insert"));
}

/* A job out of attempts: dead, and what it was for rejected. */
static int
job_kill(sqlite_store *s, int64_t job_id, const char *kind, int64_t ref_id,
    const char *why)
{
	sqlite3_stmt *st = STMT(s, ST_JOB_DEAD);
	int rv;

	sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, aff_now_ms()); /* shown to people */
	if ((rv = store_sqlite_step_write(s, st, "job dead")) != AFF_OK)
		return (rv);
	aff_warn("jobs: job %lld (%s %lld) is dead: %s", (long long)job_id, kind,
	    (long long)ref_id, why);
	if (strcmp(kind, "review_application") == 0)
		return (store_sqlite_application_decide(
		    s, ref_id, "rejected", why, aff_now_ms() / 1000));
	if (strcmp(kind, "postback") == 0)
		return (store_sqlite_postback_kill(s, ref_id));
	return (AFF_OK);
}

int
store_sqlite_jobs_claim(store *base, int64_t now_ms,
    const struct store_job_policy *p, int max, aff_arena *a,
    struct store_job **out, size_t *n)
{
	sqlite_store *s = SQLITE_STORE(base);
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
	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	/* In flight, no result, no attempts left: dead. */
	st = STMT(s, ST_JOBS_EXPIRED);
	sqlite3_bind_int64(st, 1, now_ms);
	while (nd < 32 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		dead[nd].id = sqlite3_column_int64(st, 0);
		snprintf(dead[nd].kind, sizeof(dead[nd].kind), "%s",
		    (const char *)sqlite3_column_text(st, 1));
		dead[nd].ref = sqlite3_column_int64(st, 2);
		dead[nd].attempts = sqlite3_column_int(st, 3);
		nd++;
	}
	store_sqlite_stmt_done(st);
	for (int i = 0; i < nd && rv == AFF_OK; i++) {
		char why[96];
		snprintf(why, sizeof(why), "no result after %d attempts",
		    dead[i].attempts);
		rv = job_kill(s, dead[i].id, dead[i].kind, dead[i].ref, why);
	}
	if (rv != AFF_OK)
		return (store_sqlite_tx_end(s, rv));
	st = STMT(s, ST_JOBS_CLAIM);
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, p->visibility_ms);
	sqlite3_bind_int(st, 3, max);
	sqlite3_bind_int64(st, 4, aff_now_ms());
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k < (size_t)max) {
		struct store_job *j = &v[k];
		const void *blob = sqlite3_column_blob(st, 3);
		j->payload_len = (size_t)sqlite3_column_bytes(st, 3);
		j->id = sqlite3_column_int64(st, 0);
		j->kind = store_sqlite_col_text(st, 1, a);
		j->attempt = sqlite3_column_int(st, 2);
		j->payload = aff_arena_alloc(a, j->payload_len);
		j->token = store_sqlite_col_text(st, 4, a);
		if (j->kind == NULL || j->payload == NULL || j->token == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		memcpy((void *)j->payload, blob, j->payload_len);
		k++;
	}
	if (rv == AFF_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, "jobs claim");
	store_sqlite_stmt_done(st);
	/* A postback goes out with its endpoint's URL and secret as they
	 * are now (a rotation signs retries with the new secret). */
	for (size_t i = 0; i < k && rv == AFF_OK; i++)
		if (strcmp(v[i].kind, "postback") == 0)
			rv = store_sqlite_postback_fill(s, &v[i], a);
	if ((rv = store_sqlite_tx_end(s, rv)) != AFF_OK)
		return (rv);
	*out = v;
	*n = k;
	return (AFF_OK);
}

int
store_sqlite_jobs_unclaim(store *base, const struct store_job *jobs, size_t n)
{
	sqlite_store *s = SQLITE_STORE(base);
	int rv;

	if (n == 0)
		return (AFF_OK);
	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	for (size_t i = 0; i < n && rv == AFF_OK; i++) {
		sqlite3_stmt *st = STMT(s, ST_JOB_UNCLAIM);
		sqlite3_bind_int64(st, 1, jobs[i].id);
		rv = store_sqlite_step_write(s, st, "job unclaim");
	}
	return (store_sqlite_tx_end(s, rv));
}

/* Applies a successful result of kind review_application. */
static int
apply_review(sqlite_store *s, int64_t app_id, const Affiliate__V1__JobResult *r)
{
	Affiliate__V1__ReviewApplicationResult *rr;
	int rv;

	if ((rv = store_review_result_unpack(r, &rr)) != AFF_OK)
		return (rv);
	rv = store_sqlite_application_decide(
	    s, app_id, rr->decision, rr->reason, aff_now_ms() / 1000);
	affiliate__v1__review_application_result__free_unpacked(rr, NULL);
	return (rv);
}

int
store_sqlite_job_finish(store *base, const Affiliate__V1__JobResult *r,
    int64_t now_ms, const struct store_job_policy *p)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st;
	char kind[64], state[16], why[512], lease[40], prev[40];
	const char *token = r->token != NULL ? r->token : "";
	int64_t ref;
	int attempts, max_attempts, rc, rv, current;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	st = STMT(s, ST_JOB_GET);
	sqlite3_bind_int64(st, 1, r->job_id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		rv = rc == SQLITE_DONE ? AFF_NOT_FOUND
		                       : store_sqlite_err(s->db, rc, "job get");
		store_sqlite_stmt_done(st);
		return (store_sqlite_tx_end(s, rv));
	}
	snprintf(kind, sizeof(kind), "%s", (const char *)sqlite3_column_text(st, 0));
	ref = sqlite3_column_int64(st, 1);
	snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(st, 2));
	attempts = sqlite3_column_int(st, 3);
	max_attempts = sqlite3_column_int(st, 4);
	snprintf(lease, sizeof(lease), "%s", (const char *)sqlite3_column_text(st, 5));
	snprintf(prev, sizeof(prev), "%s", (const char *)sqlite3_column_text(st, 6));
	store_sqlite_stmt_done(st);

	/* Only a delivery the server made may answer: the current lease, or
	 * the one before it (a slow result that arrives after its job was
	 * delivered again still counts). */
	current = token[0] != '\0' && strcmp(token, lease) == 0;
	if (!current && (token[0] == '\0' || strcmp(token, prev) != 0)) {
		(void)store_sqlite_tx_end(s, AFF_ABORTED);
		return (strcmp(state, "done") == 0 || strcmp(state, "dead") == 0
		        ? AFF_ALREADY_EXISTS
		        : AFF_PERMISSION_DENIED);
	}
	/* Finished already, or a failure from a delivery that is no longer
	 * the one running: a duplicate, nothing changes. */
	if (strcmp(state, "done") == 0 || strcmp(state, "dead") == 0 ||
	    (!r->ok && (!current || strcmp(state, "inflight") != 0))) {
		(void)store_sqlite_tx_end(s, AFF_ABORTED);
		return (AFF_ALREADY_EXISTS);
	}
	/* A postback's attempt is logged and judged whatever its outcome
	 * (the receiver's status decides about retries). */
	if (strcmp(kind, "postback") == 0)
		return (store_sqlite_tx_end(s, store_sqlite_postback_finish(s,
		    r->job_id, ref, r, attempts, max_attempts, now_ms)));
	if (r->ok) {
		if (strcmp(kind, "review_application") == 0)
			rv = apply_review(s, ref, r);
		if (rv == AFF_OK) {
			st = STMT(s, ST_JOB_DONE);
			sqlite3_bind_int64(st, 1, r->job_id);
			sqlite3_bind_int64(st, 2, aff_now_ms());
			rv = store_sqlite_step_write(s, st, "job done");
		}
		return (store_sqlite_tx_end(s, rv));
	}
	snprintf(why, sizeof(why), "review failed: %.400s",
	    r->error[0] != '\0' ? r->error : "no reason given");
	if (attempts >= max_attempts)
		return (store_sqlite_tx_end(s, job_kill(s, r->job_id, kind, ref, why)));
	{
		int64_t backoff = store_job_backoff_ms(p, attempts);

		st = STMT(s, ST_JOB_RETRY);
		sqlite3_bind_int64(st, 1, r->job_id);
		sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, now_ms + backoff);
		sqlite3_bind_int64(st, 4, aff_now_ms());
		rv = store_sqlite_step_write(s, st, "job retry");
	}
	return (store_sqlite_tx_end(s, rv));
}

int
store_sqlite_job_extend(store *base, int64_t job_id, const char *token,
    int64_t now_ms, const struct store_job_policy *p)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_JOB_EXTEND);
	int rv;

	if (token == NULL || token[0] == '\0')
		return (AFF_NOT_FOUND);
	sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_text(st, 2, token, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms + p->visibility_ms);
	if ((rv = store_sqlite_step_write(s, st, "job extend")) != AFF_OK)
		return (rv);
	return (sqlite3_changes(s->db) == 1 ? AFF_OK : AFF_NOT_FOUND);
}

int
store_sqlite_jobs_resume(store *base, int64_t now_ms, int *n)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_JOBS_RESUME);
	int rc, rv;

	*n = 0;
	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	sqlite3_bind_int64(st, 1, now_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*n += sqlite3_column_int(st, 0);
	if (rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, "jobs resume");
	store_sqlite_stmt_done(st);
	return (store_sqlite_tx_end(s, rv));
}

/* Reads an Affiliate__V1__JobInfo from the current row (JOB_COLUMNS
 * order); a store_sqlite_row_fn. */
static void *
row_job(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__JobInfo *j;

	if ((j = aff_arena_alloc(a, sizeof(*j))) == NULL)
		return (NULL);
	affiliate__v1__job_info__init(j);
	j->id = sqlite3_column_int64(st, 0);
	j->kind = store_sqlite_col_text(st, 1, a);
	j->ref_id = sqlite3_column_int64(st, 2);
	j->state = store_sqlite_col_text(st, 3, a);
	j->attempts = sqlite3_column_int(st, 4);
	j->max_attempts = sqlite3_column_int(st, 5);
	j->last_error = store_sqlite_col_text(st, 6, a);
	j->created_at = store_sqlite_col_time(st, 7, a);
	j->updated_at = store_sqlite_col_time(st, 8, a);
	if (j->kind == NULL || j->state == NULL || j->last_error == NULL ||
	    j->created_at == NULL || j->updated_at == NULL)
		return (NULL);
	if (strcmp(j->kind, "review_application") == 0)
		j->application_id = j->ref_id;
	return (j);
}

int
store_sqlite_job_list(store *base, const struct store_job_query *q,
    aff_arena *a, Affiliate__V1__JobInfo ***out, size_t *n, int *more)
{
	sqlite_store *s = SQLITE_STORE(base);
	const char *state = q->state != NULL ? q->state : "";
	sqlite3_stmt *st;

	if (state[0] == '\0')
		st = STMT(s, ST_JOB_LIST_ALL);
	else if (strcmp(state, "dead") == 0)
		st = STMT(s, ST_JOB_LIST_DEAD);
	else {
		st = STMT(s, ST_JOB_LIST_DUE);
		sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 1, q->after);
	sqlite3_bind_int(st, 2, q->limit + 1);
	return (store_sqlite_list_page(s, st, q->limit, row_job, a, out, n,
	    more, NULL, "job list"));
}

/*
 * Queues dead job id again (inside the caller's transaction). Checks
 * before it writes, so an error leaves nothing to undo: AFF_NOT_FOUND,
 * AFF_FAILED_PRECONDITION (not dead), AFF_ALREADY_EXISTS (its
 * application has an open successor; a postback job's delivery is not
 * dead: redelivered since, by another job, or its endpoint deleted).
 */
static int
job_requeue(sqlite_store *s, int64_t id, int64_t now_ms,
    const struct store_job_policy *p)
{
	sqlite3_stmt *st = STMT(s, ST_JOB_GET);
	struct store_job_policy postback_pol = *p;
	char kind[64], state[16], why[64];
	int64_t ref, now_s = aff_now_ms() / 1000;
	int rc, rv;

	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		rv = rc == SQLITE_DONE ? AFF_NOT_FOUND
		                       : store_sqlite_err(s->db, rc, "job get");
		store_sqlite_stmt_done(st);
		return (rv);
	}
	snprintf(kind, sizeof(kind), "%s", (const char *)sqlite3_column_text(st, 0));
	ref = sqlite3_column_int64(st, 1);
	snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(st, 2));
	store_sqlite_stmt_done(st);
	if (strcmp(state, "dead") != 0)
		return (AFF_FAILED_PRECONDITION);
	if (strcmp(kind, "review_application") == 0) {
		/* One open application per pair (the unique index): the
		 * editor may have applied again since this one was rejected. */
		rv = store_sqlite_exists(
		    s, STMT(s, ST_APP_OTHER_OPEN), ref, 0, AFF_NOT_FOUND);
		if (rv == AFF_OK)
			return (AFF_ALREADY_EXISTS);
		if (rv != AFF_NOT_FOUND)
			return (rv);
		st = STMT(s, ST_APP_REOPEN);
		sqlite3_bind_int64(st, 1, ref);
		sqlite3_bind_int64(st, 2, now_s);
		if ((rv = store_sqlite_step_write(s, st, "application reopen")) !=
		    AFF_OK)
			return (rv);
		if (sqlite3_changes(s->db) == 1) {
			snprintf(why, sizeof(why), "review job %lld retried",
			    (long long)id);
			st = STMT(s, ST_APP_REOPEN_EVENT);
			sqlite3_bind_int64(st, 1, ref);
			sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 3, now_s);
			if ((rv = store_sqlite_step_write(s, st, "event insert")) !=
			    AFF_OK)
				return (rv);
		}
	}
	if (strcmp(kind, "postback") == 0) {
		st = STMT(s, ST_DELIVERY_REOPEN);
		sqlite3_bind_int64(st, 1, ref);
		sqlite3_bind_int64(st, 2, now_s);
		if ((rv = store_sqlite_step_write(s, st, "delivery reopen")) !=
		    AFF_OK)
			return (rv);
		if (sqlite3_changes(s->db) == 0)
			return (AFF_ALREADY_EXISTS);
		/* Its attempts are the postback policy's, as at its making. */
		p = &postback_pol;
		postback_pol.max_attempts =
		    store_postback_policy_get()->max_attempts;
	}
	st = STMT(s, ST_JOB_REQUEUE);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, p->max_attempts);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int64(st, 4, aff_now_ms());
	return (store_sqlite_step_write(s, st, "job requeue"));
}

int
store_sqlite_job_retry(store *base, int64_t id, int64_t now_ms,
    const struct store_job_policy *p, aff_arena *a,
    Affiliate__V1__JobInfo **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st;
	int rv;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	if ((rv = job_requeue(s, id, now_ms, p)) == AFF_OK) {
		st = STMT(s, ST_JOB_ROW);
		sqlite3_bind_int64(st, 1, id);
		rv = store_sqlite_one_row(s, st, row_job, a, out, "job row");
	}
	return (store_sqlite_tx_end(s, rv));
}

int
store_sqlite_jobs_retry_dead(store *base, int64_t now_ms,
    const struct store_job_policy *p, int *retried, int *skipped)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st;
	int64_t ids[256], after = 0;
	int rc, rv, k;

	*retried = *skipped = 0;
	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	do {
		/* The ids first, then the writes: no statement reads the
		 * table while another changes it. */
		st = STMT(s, ST_JOBS_DEAD_IDS);
		sqlite3_bind_int64(st, 1, after);
		sqlite3_bind_int(st, 2, (int)(sizeof(ids) / sizeof(ids[0])));
		for (k = 0; (rc = sqlite3_step(st)) == SQLITE_ROW; k++)
			ids[k] = sqlite3_column_int64(st, 0);
		if (rc != SQLITE_DONE)
			rv = store_sqlite_err(s->db, rc, "dead jobs");
		store_sqlite_stmt_done(st);
		for (int i = 0; i < k && rv == AFF_OK; i++) {
			rv = job_requeue(s, ids[i], now_ms, p);
			if (rv == AFF_ALREADY_EXISTS) {
				(*skipped)++;
				rv = AFF_OK;
			} else if (rv == AFF_OK)
				(*retried)++;
			after = ids[i];
		}
	} while (rv == AFF_OK && k == (int)(sizeof(ids) / sizeof(ids[0])));
	if ((rv = store_sqlite_tx_end(s, rv)) != AFF_OK)
		*retried = *skipped = 0;
	return (rv);
}

int
store_sqlite_jobs_stats(store *base, int64_t now_ms,
    struct store_jobs_stats *out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_JOBS_OPEN);
	int rc, rv = AFF_OK;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_int64(st, 1, now_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (sqlite3_column_int(st, 0)) {
			out->queued = sqlite3_column_int64(st, 1);
			out->oldest_due_ms = sqlite3_column_int64(st, 2);
		} else
			out->inflight = sqlite3_column_int64(st, 1);
	if (rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, "jobs stats");
	store_sqlite_stmt_done(st);
	if (rv != AFF_OK)
		return (rv);
	st = STMT(s, ST_JOBS_DEAD_COUNT);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		out->dead = sqlite3_column_int64(st, 0);
	else
		rv = store_sqlite_err(s->db, rc, "jobs stats");
	store_sqlite_stmt_done(st);
	return (rv);
}
