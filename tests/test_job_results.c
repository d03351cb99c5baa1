/*
 * test_job_results.c - the results real affiliate-worker processes (or the
 * test playing one) push back over real NNG sockets, against a real
 * server and SQLite file: a second result for a job and a late one of the
 * delivery before applied once, only a result signed with the worker
 * secret for a delivery the server made applied, a field this version does
 * not know accepted, and the worker secret made in the data folder and
 * read by workers. Apply and the worker flows are in test_applications.c;
 * the server and workers both use apps_util.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "aff_err.h"
#include "aff_jobauth.h"
#include "aff_log.h"
#include "aff_util.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/jobs.pb-c.h"
#include "server.h"
#include "store.h"
#include "testutil.h"
#include "apps_util.h"


/*
 * Applies once and plays the server's part on a store connection of its
 * own, no worker running: claims the one job (into a, initialised here)
 * at *now, the time after the apply. claim_done closes it all and checks
 * the application was approved exactly once.
 */
static store *
claim_one(struct fixture *f, int64_t *now, const struct store_job_policy *p,
    aff_arena *a, struct store_job **jobs)
{
	store *s;
	size_t n;

	assert_int_equal(apply(f, 1, 5, NULL), AFF_OK);
	assert_int_equal(store_open(f->db, &s), AFF_OK);
	aff_arena_init(a);
	*now = aff_mono_ms();
	assert_int_equal(s->ops->jobs_claim(s, *now, p, 10, a, jobs, &n), AFF_OK);
	assert_int_equal(n, 1);
	return (s);
}

static void
claim_done(struct fixture *f, store *s, aff_arena *a)
{
	aff_arena_fini(a);
	store_close(s);
	check_all_approved_once(f, 1, 1000);
}

static void
test_a_second_result_for_a_job_changes_nothing(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
	Affiliate__V1__ReviewApplicationResult rr =
	    AFFILIATE__V1__REVIEW_APPLICATION_RESULT__INIT;
	struct store_job_policy p = { 600, 3, 10, 1000 };
	struct store_job *jobs;
	uint8_t buf[64];
	aff_arena a;
	store *s;
	int64_t now;

	s = claim_one(f, &now, &p, &a, &jobs);
	assert_int_equal(strlen(jobs[0].token), 32);
	rr.decision = "approved";
	r.job_id = jobs[0].id;
	r.attempt = jobs[0].attempt;
	r.ok = 1;
	r.payload.data = buf;
	r.payload.len = affiliate__v1__review_application_result__pack(&rr, buf);
	/* No token, or one the server never gave: no delivery it made. */
	assert_int_equal(
	    s->ops->job_finish(s, &r, aff_mono_ms(), &p), AFF_PERMISSION_DENIED);
	r.token = "00112233445566778899aabbccddeeff";
	assert_int_equal(
	    s->ops->job_finish(s, &r, aff_mono_ms(), &p), AFF_PERMISSION_DENIED);
	r.token = (char *)jobs[0].token;
	assert_int_equal(s->ops->job_finish(s, &r, aff_mono_ms(), &p), AFF_OK);
	assert_int_equal(
	    s->ops->job_finish(s, &r, aff_mono_ms(), &p), AFF_ALREADY_EXISTS);
	rr.decision = "rejected";
	r.payload.len = affiliate__v1__review_application_result__pack(&rr, buf);
	assert_int_equal(
	    s->ops->job_finish(s, &r, aff_mono_ms(), &p), AFF_ALREADY_EXISTS);
	r.ok = 0;
	assert_int_equal(
	    s->ops->job_finish(s, &r, aff_mono_ms(), &p), AFF_ALREADY_EXISTS);
	claim_done(f, s, &a);
}

/*
 * The store's time at step ms of a test that began at base. SQLite's
 * store runs leases on the now_ms each call is given, so the step is only
 * named. PostgreSQL's keeps them on the database's clock and ignores
 * now_ms (services/store/postgres/store_pg_jobs.c: one clock for several
 * servers), so there the test waits until then for real.
 */
static int64_t
at(int64_t base, int64_t ms)
{
	while (tu_backend_pg() && aff_mono_ms() < base + ms)
		tu_sleep_ms(10);
	return (base + ms);
}

static void
test_a_late_result_of_the_delivery_before_still_counts(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
	Affiliate__V1__ReviewApplicationResult rr =
	    AFFILIATE__V1__REVIEW_APPLICATION_RESULT__INIT;
	/* On PostgreSQL the steps happen in real time: a lease long enough
	 * that a loaded host's pause cannot end it between two of them. */
	struct store_job_policy p = { tu_backend_pg() ? 3000 : 600, 3, 10, 1000 };
	struct store_job *j1, *j2;
	char first[40];
	uint8_t buf[64];
	aff_arena a;
	size_t n;
	store *s;
	int64_t now;

	s = claim_one(f, &now, &p, &a, &j1);
	snprintf(first, sizeof(first), "%s", j1[0].token);
	/* A heartbeat keeps the lease: not due 500 ms later... */
	assert_int_equal(
	    s->ops->job_extend(s, j1[0].id, first, at(now, 500), &p), AFF_OK);
	assert_int_equal(
	    s->ops->jobs_claim(s, at(now, 700), &p, 10, &a, &j2, &n), AFF_OK);
	assert_int_equal(n, 0);
	/* ...but it lapses without more, and the job goes out again (on the
	 * database's clock: once it has, asked again until then). */
	for (int64_t t = p.visibility_ms + 600;; t += 100) {
		assert_int_equal(
		    s->ops->jobs_claim(s, at(now, t), &p, 10, &a, &j2, &n), AFF_OK);
		if (n > 0 || !tu_backend_pg() || t > p.visibility_ms + 10000)
			break;
	}
	assert_int_equal(n, 1);
	assert_int_equal(j2[0].attempt, 2);
	assert_string_not_equal(j2[0].token, first);
	/* The first delivery's heartbeat no longer extends anything... */
	assert_int_equal(s->ops->job_extend(s, j1[0].id, first,
	                     at(now, p.visibility_ms + 700), &p),
	    AFF_NOT_FOUND);
	/* ...but its result, arriving now, is applied, once. */
	rr.decision = "approved";
	r.job_id = j1[0].id;
	r.attempt = 1;
	r.ok = 1;
	r.token = first;
	r.payload.data = buf;
	r.payload.len = affiliate__v1__review_application_result__pack(&rr, buf);
	assert_int_equal(s->ops->job_finish(s, &r, aff_mono_ms(), &p), AFF_OK);
	r.token = (char *)j2[0].token;
	assert_int_equal(
	    s->ops->job_finish(s, &r, aff_mono_ms(), &p), AFF_ALREADY_EXISTS);
	claim_done(f, s, &a);
}


#define WORKER_SECRET "worker-secret-for-the-test-0123456789"

static int
setup_worker_secret(void **state)
{
	/* Read by the server at start and by the workers it spawns. */
	setenv("AFFILIATE_WORKER_SECRET", WORKER_SECRET, 1);
	return (setup(state));
}

static int
teardown_worker_secret(void **state)
{
	unsetenv("AFFILIATE_WORKER_SECRET");
	return (teardown(state));
}

/* Takes one job as a worker would (a request on the jobs address); *job
 * is the caller's to free. */
static void
take_job(struct fixture *f, Affiliate__V1__Job **job)
{
	nng_socket req;
	nng_msg *m;

	assert_int_equal(nng_req0_open(&req), 0);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 5000);
	assert_int_equal(nng_dial(req, f->ts.cfg.jobs_url, NULL, 0), 0);
	assert_int_equal(nng_send(req, "", 0, 0), 0);
	assert_int_equal(nng_recvmsg(req, &m, 0), 0);
	*job = affiliate__v1__job__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	assert_non_null(*job);
	nng_msg_free(m);
	nng_close(req);
}

/* Pushes "approved" for job_id with token as a worker would, as a
 * JobReport signed with secret (NULL: a bad MAC); extra (n bytes, may be
 * 0) goes before the packed JobResult's fields, e.g. a field this version
 * does not know. */
static void
push_approval(nng_socket s, int64_t job_id, const char *token,
    const char *secret, const uint8_t *extra, size_t n)
{
	Affiliate__V1__ReviewApplicationResult rr =
	    AFFILIATE__V1__REVIEW_APPLICATION_RESULT__INIT;
	Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
	uint8_t pbuf[64], buf[512], *out;
	size_t len, outlen;

	rr.decision = "approved";
	r.job_id = job_id;
	r.attempt = 1;
	r.ok = 1;
	r.worker = "forger:1";
	r.token = (char *)token;
	r.payload.data = pbuf;
	r.payload.len = affiliate__v1__review_application_result__pack(&rr, pbuf);
	/* extra first: where a newer worker's encoder may put a field. */
	if (n > 0)
		memcpy(buf, extra, n);
	len = n + affiliate__v1__job_result__pack(&r, buf + n);
	assert_int_equal(aff_job_report_pack(secret != NULL ? secret : "not the secret at all",
	                     AFF_JOB_REPORT_RESULT, buf, len, &out, &outlen),
	    AFF_OK);
	assert_int_equal(nng_send(s, out, outlen, 0), 0);
	free(out);
}

static long long
app_status_is(struct fixture *f, int64_t app, const char *status)
{
	char sql[160];

	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM applications WHERE id = %lld AND"
	    " status = '%s'",
	    (long long)app, status);
	return (tu_sql_int(f->db, sql));
}

static void
test_only_a_signed_result_for_a_delivery_the_server_made_is_applied(
    void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__Application *a1 = NULL, *a2 = NULL;
	Affiliate__V1__Job *job;
	int64_t j1;
	char sql[160];
	nng_socket s;

	/* The first application's job is taken, as a worker would; the
	 * second's waits, never sent (no worker). */
	assert_int_equal(apply(f, 1, 3, &a2), AFF_OK);
	take_job(f, &job);
	assert_int_equal(apply(f, 1, 2, &a1), AFF_OK);
	snprintf(sql, sizeof(sql), "SELECT id FROM jobs WHERE ref_id = %lld",
	    (long long)a1->id);
	j1 = tu_sql_int(f->db, sql);
	/* Anyone who reaches the results address can push a JobReport. */
	assert_int_equal(nng_push0_open(&s), 0);
	assert_int_equal(nng_dial(s, f->ts.cfg.results_url, NULL, 0), 0);
	/* Signed with the secret, but for a job never sent: no token, or
	 * one made up, or the token of another job's delivery. */
	push_approval(s, j1, "", WORKER_SECRET, NULL, 0);
	push_approval(s, j1, "00112233445566778899aabbccddeeff", WORKER_SECRET,
	    NULL, 0);
	push_approval(s, j1, job->token, WORKER_SECRET, NULL, 0);
	/* Its token without the secret's MAC, or with another secret's. */
	push_approval(s, job->id, job->token, NULL, NULL, 0);
	push_approval(s, job->id, job->token, "another-secret-0123456789", NULL, 0);
	/* Then signed, for that delivery, behind them on the same
	 * connection (applied in order): once it is in, the others were
	 * looked at. */
	push_approval(s, job->id, job->token, WORKER_SECRET, NULL, 0);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM applications WHERE id = %lld AND"
	    " status = 'approved'",
	    (long long)a2->id);
	assert_int_equal(tu_sql_wait(f->db, sql, 1, 10000), 1);
	nng_close(s);
	assert_int_equal(app_status_is(f, a1->id, "pending"), 1);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jobs WHERE"
	                                   " state = 'queued' AND attempts = 0"),
	    1);
	/* A real worker (with the secret) reviews it. */
	start_worker(f, "0", NULL, NULL);
	check_all_approved_once(f, 2, 10000);
	affiliate__v1__job__free_unpacked(job, NULL);
	protobuf_c_message_free_unpacked(&a1->base, NULL);
	protobuf_c_message_free_unpacked(&a2->base, NULL);
}

static void
test_a_result_with_a_field_this_server_does_not_know_is_accepted(void **state)
{
	struct fixture *f = *state;
	/* Field 99, varint 1: what a newer worker might add. */
	static const uint8_t unknown[] = { 0x98, 0x06, 0x01 };
	Affiliate__V1__Application *a = NULL;
	Affiliate__V1__Job *job;
	char secret[300];
	nng_socket s;

	worker_secret_of(f, secret, sizeof(secret));
	assert_int_equal(apply(f, 1, 2, &a), AFF_OK);
	take_job(f, &job);
	assert_int_equal(nng_push0_open(&s), 0);
	assert_int_equal(nng_dial(s, f->ts.cfg.results_url, NULL, 0), 0);
	/* The MAC covers the bytes as sent, the unknown field included. A
	 * re-pack by this version would differ (protobuf-c packs unknown
	 * fields after the known ones), so a MAC checked over a re-pack, as
	 * before, fails here. */
	push_approval(s, job->id, job->token, secret, unknown, sizeof(unknown));
	check_all_approved_once(f, 1, 10000);
	nng_close(s);
	affiliate__v1__job__free_unpacked(job, NULL);
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void
test_the_worker_secret_is_made_in_the_data_folder_and_read_by_workers(
    void **state)
{
	struct fixture *f = *state;
	char path[700], secret[300], log[700];
	const char *args[] = { "--jobs", f->ts.cfg.jobs_url, "--results",
		f->ts.cfg.results_url, "--worker-secret-file",
		"/nonexistent-aff-dir/worker_secret",
		"--log-level", "error", NULL };
	struct stat st;
	pid_t pid;
	int status;

	/* Made at the first start, this user's only, 64 hex. */
	snprintf(path, sizeof(path), "%s/worker_secret", f->ts.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	worker_secret_of(f, secret, sizeof(secret));
	assert_int_equal(strspn(secret, "0123456789abcdef"), 64);
	/* A worker without a secret does not start: nothing it pushed
	 * would be applied. */
	snprintf(log, sizeof(log), "%s/nosecret.log", f->ts.dir);
	pid = tu_spawn("affiliate-worker", args, log);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 2);
	/* One that reads it from the data folder works. */
	start_worker(f, "0", NULL, NULL);
	assert_int_equal(apply_many(f, 5), 5);
	check_all_approved_once(f, 5, 10000);
	/* Kept across a restart. */
	server_stop(f->ts.srv);
	assert_int_equal(server_start(&f->ts.cfg, &f->ts.srv), AFF_OK);
	{
		char again[300];
		worker_secret_of(f, again, sizeof(again));
		assert_string_equal(again, secret);
	}
	/* A secret too short to be one stops the server from starting. */
	server_stop(f->ts.srv);
	f->ts.srv = NULL;
	setenv("AFFILIATE_WORKER_SECRET", "short", 1);
	assert_int_equal(server_start(&f->ts.cfg, &f->ts.srv),
	    AFF_INVALID_ARGUMENT);
	unsetenv("AFFILIATE_WORKER_SECRET");
	f->ts.srv = NULL;
}
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_a_second_result_for_a_job_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_late_result_of_the_delivery_before_still_counts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_only_a_signed_result_for_a_delivery_the_server_made_is_applied,
		    setup_worker_secret, teardown_worker_secret),
		cmocka_unit_test_setup_teardown(
		    test_a_result_with_a_field_this_server_does_not_know_is_accepted,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_the_worker_secret_is_made_in_the_data_folder_and_read_by_workers,
		    setup, teardown),
	};

	return (cmocka_run_group_tests_name("job_results", tests, NULL, NULL));
}
