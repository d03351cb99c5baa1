/*
 * store_sqlite_jobs.c - the job outbox in SQLite: jobs queued with what
 * they are for, claimed for delivery under a lease with a fresh token,
 * given back, kept alive by heartbeats, finished once by their result
 * (retried after a backoff, or dead when out of attempts, their
 * application then rejected), and rebased on the monotonic clock of
 * each start.
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_sqlite_private.h"

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
	                 " AND state = 'inflight' AND lease_token = ?2")

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
