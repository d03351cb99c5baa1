/*
 * test_store_jobs.c - the store's job queue (store.h) on both backends by
 * the same test bodies, as test_store_backends does for the rest of the
 * contract: a job claimed, finished once and checked by its token;
 * failures backing off and dying after the last attempt; dead jobs listed
 * and retried; a lapsed lease delivered again; a start making the last
 * run's deliveries due.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_backends.h"
#include "testutil.h"

#define OPS (f->s->ops)

static Affiliate__V1__JobResult
review_result(int64_t job, const char *token, int ok, const char *decision,
    uint8_t *buf, size_t cap)
{
	Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
	Affiliate__V1__ReviewApplicationResult rr =
	    AFFILIATE__V1__REVIEW_APPLICATION_RESULT__INIT;

	rr.decision = (char *)decision;
	rr.reason = (char *)"";
	assert_true(affiliate__v1__review_application_result__get_packed_size(
	                &rr) <= cap);
	r.payload.len = affiliate__v1__review_application_result__pack(&rr, buf);
	r.payload.data = buf;
	r.job_id = job;
	r.token = (char *)token;
	r.ok = ok;
	r.error = (char *)(ok ? "" : "handler failed");
	return (r);
}

static void
test_a_job_is_claimed_finished_once_and_checked_by_token(void **state)
{
	struct sb_fixture *f = *state;
	Affiliate__V1__Application *app;
	Affiliate__V1__JobResult r;
	struct store_job *jobs;
	uint8_t buf[64];
	size_t n;

	sb_app_new(f, 1, 2, "r", AFF_OK);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].id, 1);
	assert_string_equal(jobs[0].kind, "review_application");
	assert_int_equal(jobs[0].attempt, 1);
	assert_int_equal(strlen(jobs[0].token), 32);
	assert_true(jobs[0].payload_len > 0);
	{
		Affiliate__V1__ReviewApplicationJob *j =
		    affiliate__v1__review_application_job__unpack(
		        NULL, jobs[0].payload_len, jobs[0].payload);
		assert_non_null(j);
		assert_int_equal(j->application_id, 1);
		assert_int_equal(j->advertiser_id, 2);
		affiliate__v1__review_application_job__free_unpacked(j, NULL);
	}
	/* Claimed: not claimed again while its lease runs. */
	{
		struct store_job *again;
		size_t n2;
		assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(),
		                     &sb_job_policy, 8, &f->a, &again, &n2),
		    AFF_OK);
		assert_int_equal(n2, 0);
	}
	assert_int_equal(OPS->job_extend(f->s, 1, jobs[0].token, aff_mono_ms(),
	                     &sb_job_policy),
	    AFF_OK);
	assert_int_equal(
	    OPS->job_extend(f->s, 1, "0123456789abcdef0123456789abcdef",
	        aff_mono_ms(), &sb_job_policy),
	    AFF_NOT_FOUND);
	assert_int_equal(
	    OPS->job_extend(f->s, 1, "", aff_mono_ms(), &sb_job_policy),
	    AFF_NOT_FOUND);
	r = review_result(1, "0123456789abcdef0123456789abcdef", 1, "approved",
	    buf, sizeof(buf));
	assert_int_equal(
	    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy),
	    AFF_PERMISSION_DENIED);
	r = review_result(42, jobs[0].token, 1, "approved", buf, sizeof(buf));
	assert_int_equal(
	    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy),
	    AFF_NOT_FOUND);
	r = review_result(1, jobs[0].token, 1, "maybe", buf, sizeof(buf));
	assert_int_equal(
	    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy),
	    AFF_INVALID_ARGUMENT);
	r = review_result(1, jobs[0].token, 1, "approved", buf, sizeof(buf));
	assert_int_equal(
	    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy), AFF_OK);
	assert_int_equal(
	    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy),
	    AFF_ALREADY_EXISTS);
	assert_int_equal(OPS->application_get(f->s, 1, &f->a, &app), AFF_OK);
	assert_string_equal(app->status, "approved");
	assert_int_equal(OPS->job_extend(f->s, 1, jobs[0].token, aff_mono_ms(),
	                     &sb_job_policy),
	    AFF_NOT_FOUND);
	/* Approved is open: a new application to the pair is refused. */
	sb_app_new(f, 1, 2, "r2", AFF_ALREADY_EXISTS);
}

static void
test_failures_back_off_and_die_after_the_last_attempt(void **state)
{
	struct sb_fixture *f = *state;
	struct store_job_policy quick = sb_job_policy;
	Affiliate__V1__Application *app;
	Affiliate__V1__JobResult r;
	struct store_job *jobs;
	uint8_t buf[64];
	size_t n;
	char tok[40];

	quick.backoff_ms = 1;
	quick.backoff_max_ms = 1;
	quick.max_attempts = 2;
	assert_int_equal(OPS->application_create(f->s, 1, 2, "r", &quick, &f->a,
	                     &app),
	    AFF_OK);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &quick, 8, &f->a,
	                     &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	snprintf(tok, sizeof(tok), "%s", jobs[0].token);
	r = review_result(1, tok, 0, "", buf, sizeof(buf));
	assert_int_equal(OPS->job_finish(f->s, &r, aff_mono_ms(), &quick), AFF_OK);
	/* The same failure again: stale, nothing changes. */
	assert_int_equal(OPS->job_finish(f->s, &r, aff_mono_ms(), &quick),
	    AFF_ALREADY_EXISTS);
	tu_sleep_ms(20);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &quick, 8, &f->a,
	                     &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].attempt, 2);
	r = review_result(1, jobs[0].token, 0, "", buf, sizeof(buf));
	assert_int_equal(OPS->job_finish(f->s, &r, aff_mono_ms(), &quick), AFF_OK);
	assert_int_equal(OPS->application_get(f->s, 1, &f->a, &app), AFF_OK);
	assert_string_equal(app->status, "rejected");
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM jobs"
	                                   " WHERE state = 'dead'"),
	    1);
	/* A long backoff: not due. */
	sb_app_new(f, 1, 2, "r3", AFF_OK);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	r = review_result(jobs[0].id, jobs[0].token, 0, "", buf, sizeof(buf));
	assert_int_equal(
	    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy), AFF_OK);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 0);
}

/* Claims every due job and fails each: those on their last attempt die.
 * Returns how many were claimed. */
static size_t
fail_due_jobs(struct sb_fixture *f)
{
	Affiliate__V1__JobResult r;
	struct store_job *jobs;
	uint8_t buf[64];
	size_t n;

	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	for (size_t i = 0; i < n; i++) {
		r = review_result(jobs[i].id, jobs[i].token, 0, "", buf, sizeof(buf));
		assert_int_equal(
		    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy),
		    AFF_OK);
	}
	return (n);
}

/* A page of jobs in state (NULL: any), checked for its length. */
static Affiliate__V1__JobInfo **
jobs_page(struct sb_fixture *f, const char *state, int64_t after, int limit,
    size_t want, int want_more)
{
	struct store_job_query q = { .state = state, .after = after,
		.limit = limit };
	Affiliate__V1__JobInfo **v = NULL;
	size_t n = 99;
	int more = -1;

	assert_int_equal(OPS->job_list(f->s, &q, &f->a, &v, &n, &more), AFF_OK);
	assert_int_equal(n, want);
	assert_int_equal(more, want_more);
	return (v);
}

static void
test_dead_jobs_are_listed_and_retried_to_pending(void **state)
{
	struct sb_fixture *f = *state;
	struct store_job_policy once = sb_job_policy;
	Affiliate__V1__Application *app;
	Affiliate__V1__JobInfo **v, *j = NULL;
	Affiliate__V1__JobResult r;
	struct store_job *jobs;
	uint8_t buf[64];
	size_t n;
	int retried = -1, skipped = -1;
	char old_token[40];

	once.max_attempts = 1;
	/* Job 1 dies (one attempt, failed); job 2 waits, queued. */
	assert_int_equal(OPS->application_create(f->s, 1, 2, "d1", &once, &f->a,
	                     &app),
	    AFF_OK);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	snprintf(old_token, sizeof(old_token), "%s", jobs[0].token);
	r = review_result(1, old_token, 0, "", buf, sizeof(buf));
	assert_int_equal(
	    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy), AFF_OK);
	sb_app_new(f, 2, 2, "q1", AFF_OK);
	v = jobs_page(f, NULL, 0, 10, 2, 0);
	assert_int_equal(v[0]->id, 1);
	assert_int_equal(v[1]->id, 2);
	assert_string_equal(v[1]->state, "queued");
	v = jobs_page(f, "dead", 0, 10, 1, 0);
	assert_int_equal(v[0]->id, 1);
	assert_string_equal(v[0]->kind, "review_application");
	assert_string_equal(v[0]->state, "dead");
	assert_int_equal(v[0]->application_id, 1);
	assert_int_equal(v[0]->ref_id, 1);
	assert_int_equal(v[0]->attempts, 1);
	assert_int_equal(v[0]->max_attempts, 1);
	assert_string_equal(v[0]->last_error, "review failed: handler failed");
	assert_int_equal(strlen(v[0]->created_at), 20); /* RFC 3339, Z */
	assert_int_equal(strlen(v[0]->updated_at), 20);
	v = jobs_page(f, "queued", 0, 10, 1, 0);
	assert_int_equal(v[0]->id, 2);
	assert_string_equal(v[0]->last_error, "");
	jobs_page(f, "inflight", 0, 10, 0, 0);
	v = jobs_page(f, NULL, 0, 1, 1, 1);
	assert_int_equal(v[0]->id, 1);
	v = jobs_page(f, NULL, 1, 1, 1, 0);
	assert_int_equal(v[0]->id, 2);
	jobs_page(f, "dead", 1, 10, 0, 0);

	assert_int_equal(
	    OPS->job_retry(f->s, 2, aff_mono_ms(), &sb_job_policy, &f->a, &j),
	    AFF_FAILED_PRECONDITION);
	assert_int_equal(
	    OPS->job_retry(f->s, 99, aff_mono_ms(), &sb_job_policy, &f->a, &j),
	    AFF_NOT_FOUND);
	assert_null(j);
	assert_int_equal(OPS->application_get(f->s, 1, &f->a, &app), AFF_OK);
	assert_string_equal(app->status, "rejected");
	/* Retried: queued with the policy's attempts, its last error kept,
	 * its application pending again (the event says why). */
	assert_int_equal(
	    OPS->job_retry(f->s, 1, aff_mono_ms(), &sb_job_policy, &f->a, &j),
	    AFF_OK);
	assert_non_null(j);
	assert_int_equal(j->id, 1);
	assert_string_equal(j->state, "queued");
	assert_int_equal(j->attempts, 0);
	assert_int_equal(j->max_attempts, sb_job_policy.max_attempts);
	assert_string_equal(j->last_error, "review failed: handler failed");
	assert_int_equal(OPS->application_get(f->s, 1, &f->a, &app), AFF_OK);
	assert_string_equal(app->status, "pending");
	assert_string_equal(app->reason, "");
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM"
	                                   " application_events WHERE"
	                                   " application_id = 1 AND status ="
	                                   " 'pending' AND reason = 'review job"
	                                   " 1 retried'"),
	    1);
	assert_int_equal(
	    OPS->job_retry(f->s, 1, aff_mono_ms(), &sb_job_policy, &f->a, &j),
	    AFF_FAILED_PRECONDITION);
	jobs_page(f, "dead", 0, 10, 0, 0);
	/* A late result of the delivery before the retry names no delivery
	 * of the job now: refused, the application still pending. */
	r = review_result(1, old_token, 1, "approved", buf, sizeof(buf));
	assert_int_equal(
	    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy),
	    AFF_PERMISSION_DENIED);
	assert_int_equal(OPS->application_get(f->s, 1, &f->a, &app), AFF_OK);
	assert_string_equal(app->status, "pending");
	/* Due at once, and decided by its next result. */
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(jobs[i].attempt, 1);
		r = review_result(jobs[i].id, jobs[i].token, 1, "approved", buf,
		    sizeof(buf));
		assert_int_equal(
		    OPS->job_finish(f->s, &r, aff_mono_ms(), &sb_job_policy),
		    AFF_OK);
	}
	assert_int_equal(OPS->application_get(f->s, 1, &f->a, &app), AFF_OK);
	assert_string_equal(app->status, "approved");

	/* All at once: job 3's editor applied again since (application 5
	 * is open), so job 3 stays dead; job 4 is retried. */
	assert_int_equal(OPS->application_create(f->s, 3, 4, "d2", &once, &f->a,
	                     &app),
	    AFF_OK);
	assert_int_equal(OPS->application_create(f->s, 4, 5, "d3", &once, &f->a,
	                     &app),
	    AFF_OK);
	assert_int_equal(fail_due_jobs(f), 2);
	jobs_page(f, "dead", 0, 10, 2, 0);
	assert_int_equal(sb_app_new(f, 3, 4, "again", AFF_OK)->id, 5);
	assert_int_equal(OPS->jobs_retry_dead(f->s, aff_mono_ms(),
	                     &sb_job_policy, &retried, &skipped),
	    AFF_OK);
	assert_int_equal(retried, 1);
	assert_int_equal(skipped, 1);
	v = jobs_page(f, "dead", 0, 10, 1, 0);
	assert_int_equal(v[0]->id, 3);
	assert_int_equal(
	    OPS->job_retry(f->s, 3, aff_mono_ms(), &sb_job_policy, &f->a, &j),
	    AFF_ALREADY_EXISTS);
	assert_int_equal(OPS->application_get(f->s, 3, &f->a, &app), AFF_OK);
	assert_string_equal(app->status, "rejected");
	assert_int_equal(OPS->application_get(f->s, 4, &f->a, &app), AFF_OK);
	assert_string_equal(app->status, "pending");
	v = jobs_page(f, "queued", 0, 10, 2, 0);
	assert_int_equal(v[0]->id, 4);
	assert_int_equal(v[1]->id, 5);
	assert_int_equal(OPS->jobs_retry_dead(f->s, aff_mono_ms(),
	                     &sb_job_policy, &retried, &skipped),
	    AFF_OK);
	assert_int_equal(retried, 0);
	assert_int_equal(skipped, 1);
}

static void
test_a_lapsed_lease_is_delivered_again_and_the_late_result_counts(
    void **state)
{
	struct sb_fixture *f = *state;
	struct store_job_policy shortp = sb_job_policy;
	Affiliate__V1__Application *app;
	Affiliate__V1__JobResult r;
	struct store_job *jobs;
	uint8_t buf[64];
	char first[40];
	size_t n;

	shortp.visibility_ms = 100;
	sb_app_new(f, 1, 2, "r", AFF_OK);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &shortp, 8, &f->a,
	                     &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	snprintf(first, sizeof(first), "%s", jobs[0].token);
	tu_sleep_ms(250);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &shortp, 8, &f->a,
	                     &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].attempt, 2);
	assert_string_not_equal(jobs[0].token, first);
	/* The first delivery's heartbeat no longer holds it. */
	assert_int_equal(OPS->job_extend(f->s, 1, first, aff_mono_ms(), &shortp),
	    AFF_NOT_FOUND);
	r = review_result(1, first, 1, "approved", buf, sizeof(buf));
	assert_int_equal(OPS->job_finish(f->s, &r, aff_mono_ms(), &shortp),
	    AFF_OK);
	assert_int_equal(OPS->application_get(f->s, 1, &f->a, &app), AFF_OK);
	assert_string_equal(app->status, "approved");
	/* Given back: due again, its attempt uncounted. */
	sb_app_new(f, 2, 3, "r2", AFF_OK);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(OPS->jobs_unclaim(f->s, jobs, n), AFF_OK);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].attempt, 1);
}

/*
 * At a start, the jobs in flight of the run before are due again. On
 * SQLite every in-flight job is (one server); on PostgreSQL those whose
 * claiming session is gone (test_store_pg shows a live one's are not):
 * here the run before closed its connection, so both answer alike.
 */
static void
test_resume_makes_the_last_runs_deliveries_due(void **state)
{
	struct sb_fixture *f = *state;
	struct store_job *jobs;
	size_t n = 0;
	int k = 0, total = 0;

	sb_app_new(f, 1, 2, "r", AFF_OK);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	store_close(f->s);
	assert_int_equal(store_open(f->db, &f->s), AFF_OK);
	/* PostgreSQL ends a closed connection's backend a moment later. */
	for (int i = 0; i < 100 && total == 0; i++) {
		assert_int_equal(OPS->jobs_resume(f->s, aff_mono_ms(), &k), AFF_OK);
		total += k;
		if (total == 0)
			tu_sleep_ms(20);
	}
	assert_int_equal(total, 1);
	assert_int_equal(OPS->jobs_claim(f->s, aff_mono_ms(), &sb_job_policy, 8,
	                     &f->a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].attempt, 2);
	assert_int_equal(OPS->jobs_resume(f->s, aff_mono_ms(), &k), AFF_OK);
	/* a live one's: PostgreSQL keeps */
	assert_int_equal(k, sb_cur_pg ? 0 : 1);
}

#define T(fn) SB_TEST(fn)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_a_job_is_claimed_finished_once_and_checked_by_token),
		T(test_failures_back_off_and_die_after_the_last_attempt),
		T(test_dead_jobs_are_listed_and_retried_to_pending),
		T(test_a_lapsed_lease_is_delivered_again_and_the_late_result_counts),
		T(test_resume_makes_the_last_runs_deliveries_due),
	};
	aff_log_set_level(AFF_LOG_ERROR);
	return (sb_run("store jobs", tests, sizeof(tests) / sizeof(tests[0])));
}
