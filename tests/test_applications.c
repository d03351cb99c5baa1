/*
 * test_applications.c - applications reviewed by real affiliate-worker
 * processes over real NNG push/pull sockets, against a real SQLite file:
 * 1,000 applications with 4 workers, a worker killed with SIGKILL while
 * jobs flow, the server stopped with jobs outstanding, no worker at all,
 * failures retried until the job is dead, a job lost by its worker pushed
 * again, garbage on both sockets, and duplicate results applied once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "aff_err.h"
#include "aff_jobauth.h"
#include "aff_log.h"
#include "aff_util.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/jobs.pb-c.h"
#include "server.h"
#include "store.h"
#include "testutil.h"

#define APP_SVC (&affiliate__v1__application_service__descriptor)
#define MAX_WORKERS 4

struct fixture {
	struct tu_server ts;
	char db[600];
	pid_t workers[MAX_WORKERS];
	int n_workers;
};

/* Extra editors 100..149, each eligible for every active advertiser, so
 * that there are more than 1,000 distinct pairs to apply for. */
#define EXTRA_EDITORS 50

/* The visibility timeout of the next setup: long enough that a loaded CI
 * machine never times a job out by accident, except in the test that
 * wants exactly that. */
static const char *visibility_ms = "5000";

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	setenv("AFFILIATE_JOB_VISIBILITY_MS", visibility_ms, 1);
	setenv("AFFILIATE_JOB_BACKOFF_MS", "10", 1);
	setenv("AFFILIATE_JOB_MAX_ATTEMPTS", "3", 1);
	assert_int_equal(tu_server_start(&f->ts, 0), 0);
	snprintf(f->db, sizeof(f->db), "%s/affiliate.db", f->ts.dir);
	assert_int_equal(tu_sql_exec(f->db,
	                     "WITH RECURSIVE n(i) AS (SELECT 100 UNION ALL"
	                     " SELECT i + 1 FROM n WHERE i < 149)"
	                     " INSERT INTO editors (id, name, created_at)"
	                     " SELECT i, 'Editor ' || i, 0 FROM n;"
	                     "INSERT INTO eligibility (editor_id, advertiser_id)"
	                     " SELECT e.id, a.id FROM editors e, advertisers a"
	                     " WHERE e.id >= 100 AND a.status = 'active';"),
	    0);
	*state = f;
	return (0);
}

static int
setup_short_visibility(void **state)
{
	int rv;

	visibility_ms = "600";
	rv = setup(state);
	visibility_ms = "5000";
	return (rv);
}

static void
stop_workers(struct fixture *f)
{
	for (int i = 0; i < f->n_workers; i++)
		tu_kill(f->workers[i], SIGKILL);
	f->n_workers = 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	stop_workers(f);
	tu_server_stop(&f->ts);
	free(f);
	return (0);
}

/* Starts an affiliate-worker process; extra is one more flag pair or NULL. */
static pid_t
start_worker(struct fixture *f, const char *delay, const char *flag,
    const char *value)
{
	char log[700];
	const char *args[] = { "--jobs", f->ts.cfg.jobs_url, "--results",
		f->ts.cfg.results_url, "--review-delay", delay, "--log-level",
		"warn", flag, value, NULL };
	pid_t pid;

	snprintf(log, sizeof(log), "%s/worker.log", f->ts.dir);
	pid = tu_spawn("affiliate-worker", args, log);
	assert_true(pid > 0);
	f->workers[f->n_workers++] = pid;
	return (pid);
}

static int
apply(struct fixture *f, int64_t editor, int64_t adv,
    Affiliate__V1__Application **out)
{
	Affiliate__V1__ApplyRequest req = AFFILIATE__V1__APPLY_REQUEST__INIT;
	Affiliate__V1__Application *tmp = NULL;
	int rv;

	req.editor_id = editor;
	req.advertiser_id = adv;
	rv = tu_call(&f->ts, APP_SVC, "Apply", &req.base,
	    (ProtobufCMessage **)(out != NULL ? out : &tmp));
	if (tmp != NULL)
		protobuf_c_message_free_unpacked(&tmp->base, NULL);
	return (rv);
}

struct apply_range {
	struct fixture *f;
	int from, to; /* pair numbers */
	int ok;
};

/* Pair k: editor 100 + k / 23, the (k % 23)-th active advertiser. */
static void
pair(int k, int64_t *editor, int64_t *adv)
{
	int a = 1 + k % 23;

	*editor = 100 + k / 23;
	*adv = a >= 12 ? a + 1 : a; /* 12 is paused */
}

static void *
apply_range_main(void *arg)
{
	struct apply_range *r = arg;

	for (int k = r->from; k < r->to; k++) {
		int64_t e, a;
		pair(k, &e, &a);
		if (apply(r->f, e, a, NULL) == AFF_OK)
			r->ok++;
	}
	return (NULL);
}

/* Applies for pairs [0, n) from 8 threads; returns how many were accepted. */
static int
apply_many(struct fixture *f, int n)
{
	struct apply_range r[8];
	pthread_t t[8];
	int ok = 0;

	for (int i = 0; i < 8; i++) {
		r[i] = (struct apply_range){ f, n * i / 8, n * (i + 1) / 8, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, apply_range_main, &r[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].ok;
	}
	return (ok);
}

/* Every application approved exactly once, every job done. */
static void
check_all_approved_once(struct fixture *f, long long n, int timeout_ms)
{
	assert_int_equal(tu_sql_wait(f->db,
	                     "SELECT count(*) FROM applications"
	                     " WHERE status = 'approved'",
	                     n, timeout_ms),
	    n);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM applications"), n);
	assert_int_equal(
	    tu_sql_int(f->db, "SELECT count(*) FROM jobs WHERE state = 'done'"), n);
	/* Exactly once: one 'pending' and one 'approved' event each. */
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM application_events"
	                                   " WHERE status = 'approved'"),
	    n);
	assert_int_equal(tu_sql_int(f->db,
	                     "SELECT max(c) FROM (SELECT count(*) AS c FROM"
	                     " application_events GROUP BY application_id)"),
	    2);
}

static void
test_1000_applications_with_4_workers_are_each_approved_once(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 4; i++)
		start_worker(f, "0", "--concurrency", "4");
	assert_int_equal(apply_many(f, 1000), 1000);
	check_all_approved_once(f, 1000, 60000);
}

static void
test_a_worker_killed_while_jobs_flow_loses_nothing(void **state)
{
	struct fixture *f = *state;
	pid_t victim;

	/* The victim's jobs come back after the visibility timeout (5 s). */
	victim = start_worker(f, "20", "--concurrency", "4");
	start_worker(f, "20", "--concurrency", "4");
	assert_int_equal(apply_many(f, 300), 300);
	/* Once some are done, the first worker dies with jobs in hand. */
	assert_true(tu_sql_wait(f->db,
	                "SELECT count(*) >= 20 FROM applications"
	                " WHERE status = 'approved'",
	                1, 20000) == 1);
	tu_kill(victim, SIGKILL);
	f->workers[0] = 0;
	check_all_approved_once(f, 300, 60000);
}

static void
test_a_server_stopped_with_jobs_outstanding_finishes_them_after_restart(
    void **state)
{
	struct fixture *f = *state;

	start_worker(f, "100", "--concurrency", "2");
	assert_int_equal(apply_many(f, 60), 60);
	assert_true(tu_sql_wait(f->db,
	                "SELECT count(*) > 0 FROM jobs WHERE state = 'inflight'",
	                1, 10000) == 1);
	server_stop(f->ts.srv);
	f->ts.srv = NULL;
	assert_true(tu_sql_int(f->db, "SELECT count(*) FROM applications"
	                              " WHERE status = 'pending'") > 0);
	assert_int_equal(server_start(&f->ts.cfg, &f->ts.srv), AFF_OK);
	check_all_approved_once(f, 60, 60000);
}

static void
test_without_workers_applications_wait_then_complete(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(apply_many(f, 20), 20);
	tu_sleep_ms(300);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM applications"
	                                   " WHERE status = 'pending'"),
	    20);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jobs"
	                                   " WHERE state = 'queued'"
	                                   " AND attempts = 0"),
	    20);
	start_worker(f, "0", NULL, NULL);
	check_all_approved_once(f, 20, 20000);
}

static void
test_failures_are_retried_with_backoff_then_the_job_is_dead(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__GetApplicationRequest req =
	    AFFILIATE__V1__GET_APPLICATION_REQUEST__INIT;
	Affiliate__V1__Application *a = NULL;

	start_worker(f, "0", "--fail-percent", "100");
	assert_int_equal(apply(f, 1, 2, &a), AFF_OK);
	req.id = a->id;
	protobuf_c_message_free_unpacked(&a->base, NULL);
	assert_int_equal(tu_sql_wait(f->db,
	                     "SELECT count(*) FROM jobs WHERE state = 'dead'", 1,
	                     20000),
	    1);
	/* Three attempts (AFFILIATE_JOB_MAX_ATTEMPTS), the error kept. */
	assert_int_equal(tu_sql_int(f->db, "SELECT attempts FROM jobs"), 3);
	assert_int_equal(tu_sql_int(f->db,
	                     "SELECT count(*) FROM jobs WHERE last_error ="
	                     " 'review failed: the advertiser''s review service"
	                     " failed'"),
	    1);
	assert_int_equal(tu_call(&f->ts, APP_SVC, "GetApplication", &req.base,
	                     (ProtobufCMessage **)&a),
	    AFF_OK);
	assert_string_equal(a->status, "rejected");
	assert_string_equal(
	    a->reason, "review failed: the advertiser's review service failed");
	protobuf_c_message_free_unpacked(&a->base, NULL);
	/* Rejected, so the editor may apply again. */
	assert_int_equal(apply(f, 1, 2, NULL), AFF_OK);
}

static void
test_a_job_its_worker_never_answers_is_pushed_again(void **state)
{
	struct fixture *f = *state;
	nng_socket black_hole;
	nng_msg *m;

	/* A "worker" that takes jobs and never answers. */
	assert_int_equal(nng_pull0_open(&black_hole), 0);
	nng_socket_set_ms(black_hole, NNG_OPT_RECVTIMEO, 5000);
	assert_int_equal(nng_dial(black_hole, f->ts.cfg.jobs_url, NULL, 0), 0);
	tu_sleep_ms(100);
	assert_int_equal(apply(f, 1, 3, NULL), AFF_OK);
	assert_int_equal(nng_recvmsg(black_hole, &m, 0), 0);
	nng_msg_free(m);
	nng_close(black_hole);
	/* A real worker gets it after the visibility timeout (600 ms). */
	start_worker(f, "0", NULL, NULL);
	check_all_approved_once(f, 1, 10000);
	/* At least the second delivery did it (a loaded machine may need a
	 * third within 600 ms); approved once either way. */
	assert_true(tu_sql_int(f->db, "SELECT attempts FROM jobs") >= 2);
}

static void
test_garbage_on_the_results_socket_is_dropped(void **state)
{
	struct fixture *f = *state;
	nng_socket s;
	static const char garbage[] = "\xff\xff\xff\xff not a result";

	assert_int_equal(nng_push0_open(&s), 0);
	assert_int_equal(nng_dial(s, f->ts.cfg.results_url, NULL, 0), 0);
	assert_int_equal(nng_send(s, (void *)garbage, sizeof(garbage), 0), 0);
	/* A well-formed result for a job that does not exist, too. */
	{
		Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
		uint8_t buf[64];
		r.job_id = 424242;
		r.ok = 1;
		assert_int_equal(nng_send(s, buf,
		                     affiliate__v1__job_result__pack(&r, buf), 0),
		    0);
	}
	tu_sleep_ms(100);
	nng_close(s);
	start_worker(f, "0", NULL, NULL);
	assert_int_equal(apply_many(f, 10), 10);
	check_all_approved_once(f, 10, 10000);
}

static void
test_a_worker_drops_garbage_and_fails_unknown_kinds(void **state)
{
	struct fixture *f = *state;
	char jobs_url[700], results_url[700], log[700];
	const char *args[] = { "--jobs", jobs_url, "--results", results_url,
		"--review-delay", "0", NULL };
	Affiliate__V1__Job job = AFFILIATE__V1__JOB__INIT;
	Affiliate__V1__ReviewApplicationJob rj =
	    AFFILIATE__V1__REVIEW_APPLICATION_JOB__INIT;
	Affiliate__V1__JobResult *r;
	nng_socket push, pull;
	uint8_t buf[128], pbuf[64];
	nng_msg *m;
	pid_t pid;

	snprintf(jobs_url, sizeof(jobs_url), "ipc://%s/t-jobs.sock", f->ts.dir);
	snprintf(results_url, sizeof(results_url), "ipc://%s/t-results.sock",
	    f->ts.dir);
	snprintf(log, sizeof(log), "%s/t-worker.log", f->ts.dir);
	assert_int_equal(nng_push0_open(&push), 0);
	assert_int_equal(nng_pull0_open(&pull), 0);
	nng_socket_set_ms(pull, NNG_OPT_RECVTIMEO, 5000);
	nng_socket_set_ms(push, NNG_OPT_SENDTIMEO, 5000);
	assert_int_equal(nng_listen(push, jobs_url, NULL, 0), 0);
	assert_int_equal(nng_listen(pull, results_url, NULL, 0), 0);
	pid = tu_spawn("affiliate-worker", args, log);
	f->workers[f->n_workers++] = pid;

	assert_int_equal(nng_send(push, "\xff\x01garbage", 9, 0), 0);
	job.id = 7;
	job.kind = "mine_bitcoin";
	job.attempt = 1;
	assert_int_equal(nng_send(push, buf, affiliate__v1__job__pack(&job, buf), 0), 0);
	rj.application_id = 1;
	job.id = 8;
	job.kind = "review_application";
	job.payload.data = pbuf;
	job.payload.len = affiliate__v1__review_application_job__pack(&rj, pbuf);
	assert_int_equal(nng_send(push, buf, affiliate__v1__job__pack(&job, buf), 0), 0);

	/* The garbage gets no answer; the unknown kind a failure; the review
	 * an approval. One worker thread may finish them in any order. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(nng_recvmsg(pull, &m, 0), 0);
		r = affiliate__v1__job_result__unpack(
		    NULL, nng_msg_len(m), nng_msg_body(m));
		assert_non_null(r);
		if (r->job_id == 7) {
			assert_false(r->ok);
			assert_string_equal(
			    r->error, "no handler for job kind 'mine_bitcoin'");
		} else {
			assert_int_equal(r->job_id, 8);
			assert_true(r->ok);
			assert_true(r->payload.len > 0);
		}
		affiliate__v1__job_result__free_unpacked(r, NULL);
		nng_msg_free(m);
	}
	assert_int_equal(kill(pid, 0), 0); /* still running */
	nng_close(push);
	nng_close(pull);
}

static void
test_a_second_result_for_a_job_changes_nothing(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
	Affiliate__V1__ReviewApplicationResult rr =
	    AFFILIATE__V1__REVIEW_APPLICATION_RESULT__INIT;
	struct store_job_policy p = { 600, 3, 10, 1000, 16 };
	struct store_job *jobs;
	uint8_t buf[64];
	aff_arena a;
	size_t n;
	store *s;

	assert_int_equal(apply(f, 1, 5, NULL), AFF_OK);
	/* Play the server's part on its own connection, no worker running. */
	assert_int_equal(store_open(f->db, &s), AFF_OK);
	aff_arena_init(&a);
	tu_sleep_ms(50);
	assert_int_equal(s->ops->jobs_claim(s, aff_now_ms(), &p, 10, &a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	rr.decision = "approved";
	r.job_id = jobs[0].id;
	r.attempt = jobs[0].attempt;
	r.ok = 1;
	r.payload.data = buf;
	r.payload.len = affiliate__v1__review_application_result__pack(&rr, buf);
	assert_int_equal(s->ops->job_finish(s, &r, aff_now_ms(), &p), AFF_OK);
	assert_int_equal(
	    s->ops->job_finish(s, &r, aff_now_ms(), &p), AFF_ALREADY_EXISTS);
	rr.decision = "rejected";
	r.payload.len = affiliate__v1__review_application_result__pack(&rr, buf);
	assert_int_equal(
	    s->ops->job_finish(s, &r, aff_now_ms(), &p), AFF_ALREADY_EXISTS);
	r.ok = 0;
	assert_int_equal(
	    s->ops->job_finish(s, &r, aff_now_ms(), &p), AFF_ALREADY_EXISTS);
	aff_arena_fini(&a);
	store_close(s);
	check_all_approved_once(f, 1, 1000);
}

static void
test_apply_errors_are_clear(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__ApplyRequest req = AFFILIATE__V1__APPLY_REQUEST__INIT;
	Affiliate__V1__Application *a = NULL;
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;

	assert_int_equal(apply(f, 0, 2, NULL), AFF_INVALID_ARGUMENT);
	assert_int_equal(apply(f, 1, -2, NULL), AFF_INVALID_ARGUMENT);
	assert_int_equal(apply(f, 999, 2, NULL), AFF_NOT_FOUND);
	assert_int_equal(apply(f, 1, 999, NULL), AFF_NOT_FOUND);
	assert_int_equal(apply(f, 1, 1, NULL), AFF_PERMISSION_DENIED);
	assert_int_equal(apply(f, 4, 12, NULL), AFF_FAILED_PRECONDITION);
	assert_int_equal(apply(f, 1, 2, &a), AFF_OK);
	req.editor_id = 1;
	req.advertiser_id = 2;
	assert_int_equal(aff_client_call(f->ts.client, APP_SVC, "Apply", &req.base,
	                     NULL, &resp, &res),
	    AFF_ALREADY_EXISTS);
	/* The error carries the application in the way. */
	assert_non_null(resp);
	assert_int_equal(((Affiliate__V1__Application *)resp)->id, a->id);
	assert_string_equal(res.message,
	    "editor 1 already has a pending application (1) to advertiser 2");
	aff_call_result_fini(&res);
	protobuf_c_message_free_unpacked(resp, NULL);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM applications"), 1);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jobs"), 1);
}

static void
test_the_same_apply_request_again_gets_its_application_back(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__ApplyRequest req = AFFILIATE__V1__APPLY_REQUEST__INIT;
	struct aff_call_opts opts = { .request_id = "apply-once-1" };
	struct aff_call_result res;
	ProtobufCMessage *a1 = NULL, *a2 = NULL;

	/* What NNG does when a connection drops with the request in flight:
	 * the same request (same id) arrives again. */
	req.editor_id = 1;
	req.advertiser_id = 3;
	assert_int_equal(aff_client_call(f->ts.client, APP_SVC, "Apply",
	                     &req.base, &opts, &a1, &res),
	    AFF_OK);
	aff_call_result_fini(&res);
	assert_int_equal(aff_client_call(f->ts.client, APP_SVC, "Apply",
	                     &req.base, &opts, &a2, &res),
	    AFF_OK);
	aff_call_result_fini(&res);
	assert_int_equal(((Affiliate__V1__Application *)a1)->id,
	    ((Affiliate__V1__Application *)a2)->id);
	protobuf_c_message_free_unpacked(a1, NULL);
	protobuf_c_message_free_unpacked(a2, NULL);
	/* Another request for the same pair is a conflict. */
	opts.request_id = "apply-other-2";
	assert_int_equal(aff_client_call(f->ts.client, APP_SVC, "Apply",
	                     &req.base, &opts, &a2, &res),
	    AFF_ALREADY_EXISTS);
	aff_call_result_fini(&res);
	if (a2 != NULL)
		protobuf_c_message_free_unpacked(a2, NULL);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM applications"), 1);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jobs"), 1);
}

/*
 * A client that got no answer sends its Apply again with the same
 * request_id, after the application was reviewed and rejected (which
 * frees the pair for a new application): it gets the answer of the
 * first, the same application, and nothing new is made. Without the
 * request key it made a second application and a second review.
 */
static void
test_an_apply_repeated_after_its_rejection_gets_the_same_answer(
    void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__ApplyRequest req = AFFILIATE__V1__APPLY_REQUEST__INIT;
	struct aff_call_opts opts = { .request_id = "apply-rejected-1" };
	struct aff_call_result res;
	Affiliate__V1__Application *a1 = NULL, *a2 = NULL;
	uint8_t p1[128], p2[128];
	size_t n1, n2;

	start_worker(f, "0", "--fail-percent", "100");
	req.editor_id = 1;
	req.advertiser_id = 5;
	assert_int_equal(aff_client_call(f->ts.client, APP_SVC, "Apply",
	                     &req.base, &opts, (ProtobufCMessage **)&a1, &res),
	    AFF_OK);
	aff_call_result_fini(&res);
	assert_string_equal(a1->status, "pending");
	assert_int_equal(tu_sql_wait(f->db,
	                     "SELECT count(*) FROM applications"
	                     " WHERE status = 'rejected'",
	                     1, 20000),
	    1);
	assert_int_equal(aff_client_call(f->ts.client, APP_SVC, "Apply",
	                     &req.base, &opts, (ProtobufCMessage **)&a2, &res),
	    AFF_OK);
	aff_call_result_fini(&res);
	/* The same answer, byte for byte: the application as it was made. */
	n1 = affiliate__v1__application__pack(a1, p1);
	n2 = affiliate__v1__application__pack(a2, p2);
	assert_int_equal(n1, n2);
	assert_memory_equal(p1, p2, n1);
	protobuf_c_message_free_unpacked(&a1->base, NULL);
	protobuf_c_message_free_unpacked(&a2->base, NULL);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM applications"), 1);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jobs"), 1);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM request_keys"
	                                   " WHERE request_id = 'apply-rejected-1'"
	                                   " AND method = 'Apply'"),
	    1);
	/* Another request_id is another call: a new application. */
	opts.request_id = "apply-rejected-2";
	assert_int_equal(aff_client_call(f->ts.client, APP_SVC, "Apply",
	                     &req.base, &opts, (ProtobufCMessage **)&a2, &res),
	    AFF_OK);
	aff_call_result_fini(&res);
	protobuf_c_message_free_unpacked(&a2->base, NULL);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM applications"), 2);
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

/* Pushes "approved" for job_id as a worker would, its MAC made with
 * secret (NULL: none). */
static void
push_approval(nng_socket s, int64_t job_id, const char *secret)
{
	Affiliate__V1__ReviewApplicationResult rr =
	    AFFILIATE__V1__REVIEW_APPLICATION_RESULT__INIT;
	Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
	uint8_t pbuf[64], buf[256];
	char mac[65];

	rr.decision = "approved";
	r.job_id = job_id;
	r.attempt = 1;
	r.ok = 1;
	r.worker = "forger:1";
	r.payload.data = pbuf;
	r.payload.len = affiliate__v1__review_application_result__pack(&rr, pbuf);
	if (secret != NULL)
		assert_int_equal(aff_job_result_sign(secret, &r, mac), AFF_OK);
	assert_int_equal(
	    nng_send(s, buf, affiliate__v1__job_result__pack(&r, buf), 0), 0);
}

static void
test_a_result_without_the_worker_secrets_mac_is_not_applied(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__Application *a1 = NULL, *a2 = NULL;
	int64_t j1, j2;
	char sql[128];
	nng_socket s;

	/* No worker: both jobs wait, nothing has claimed them. */
	assert_int_equal(apply(f, 1, 2, &a1), AFF_OK);
	assert_int_equal(apply(f, 1, 3, &a2), AFF_OK);
	snprintf(sql, sizeof(sql), "SELECT id FROM jobs WHERE ref_id = %lld",
	    (long long)a1->id);
	j1 = tu_sql_int(f->db, sql);
	snprintf(sql, sizeof(sql), "SELECT id FROM jobs WHERE ref_id = %lld",
	    (long long)a2->id);
	j2 = tu_sql_int(f->db, sql);
	/* Anyone who reaches the results address can push a JobResult. */
	assert_int_equal(nng_push0_open(&s), 0);
	assert_int_equal(nng_dial(s, f->ts.cfg.results_url, NULL, 0), 0);
	push_approval(s, j1, NULL);
	push_approval(s, j1, "another-secret-0123456789");
	/* One signed with the secret, behind them on the same connection
	 * (applied in order): once it is in, the others were looked at. */
	push_approval(s, j2, WORKER_SECRET);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM applications WHERE id = %lld AND"
	    " status = 'approved'",
	    (long long)a2->id);
	assert_int_equal(tu_sql_wait(f->db, sql, 1, 10000), 1);
	nng_close(s);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM applications WHERE id = %lld AND"
	    " status = 'pending'",
	    (long long)a1->id);
	assert_int_equal(tu_sql_int(f->db, sql), 1);
	/* A real worker (with the secret) reviews it. */
	start_worker(f, "0", NULL, NULL);
	check_all_approved_once(f, 2, 10000);
	protobuf_c_message_free_unpacked(&a1->base, NULL);
	protobuf_c_message_free_unpacked(&a2->base, NULL);
}

/* server_start's answer with these job addresses and environment. */
static int
server_start_with(const char *jobs_url, const char *results_url,
    const char *auth, const char *secret)
{
	struct server_config cfg;
	server *srv = NULL;
	char *dir = tu_tmpdir();
	int help, rv;

	assert_non_null(dir);
	setenv("AFFILIATE_AUTH", auth, 1);
	if (secret != NULL)
		setenv("AFFILIATE_WORKER_SECRET", secret, 1);
	unsetenv("AFFILIATE_LISTEN");
	assert_int_equal(server_config_load(&cfg, 0, NULL, &help), AFF_OK);
	unsetenv("AFFILIATE_AUTH");
	snprintf(cfg.listen_url, sizeof(cfg.listen_url), "ipc://%s/rpc", dir);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	snprintf(cfg.jobs_url, sizeof(cfg.jobs_url), "%s", jobs_url);
	snprintf(cfg.results_url, sizeof(cfg.results_url), "%s", results_url);
	cfg.redis_host[0] = '\0';
	cfg.threads = 1;
	cfg.log_level = AFF_LOG_ERROR;
	rv = server_start(&cfg, &srv);
	unsetenv("AFFILIATE_WORKER_SECRET");
	server_stop(srv);
	tu_rmtree(dir);
	free(dir);
	return (rv);
}

static void
test_job_addresses_other_hosts_reach_need_a_worker_secret(void **state)
{
	char j[64], r[64];

	(void)state;
	/* Nothing is bound when refused, so 0.0.0.0 is safe to name here. */
	snprintf(j, sizeof(j), "tcp://127.0.0.1:%d", tu_free_port());
	snprintf(r, sizeof(r), "tcp://0.0.0.0:%d", tu_free_port());
	assert_int_equal(server_start_with(j, r, "auto", NULL),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(server_start_with(r, j, "on", NULL),
	    AFF_INVALID_ARGUMENT);
	/* A secret too short to be one. */
	assert_int_equal(server_start_with(j, j, "auto", "short"),
	    AFF_INVALID_ARGUMENT);
	/* Loopback needs none (this host's users are trusted, as with the
	 * RPC listener), and takes one. */
	snprintf(r, sizeof(r), "tcp://127.0.0.1:%d", tu_free_port());
	assert_int_equal(server_start_with(j, r, "auto", NULL), AFF_OK);
	assert_int_equal(server_start_with(j, r, "on", WORKER_SECRET), AFF_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_errors_are_clear, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_the_same_apply_request_again_gets_its_application_back,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_1000_applications_with_4_workers_are_each_approved_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_worker_killed_while_jobs_flow_loses_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_server_stopped_with_jobs_outstanding_finishes_them_after_restart,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_without_workers_applications_wait_then_complete, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_failures_are_retried_with_backoff_then_the_job_is_dead,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_an_apply_repeated_after_its_rejection_gets_the_same_answer,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_job_its_worker_never_answers_is_pushed_again,
		    setup_short_visibility, teardown),
		cmocka_unit_test_setup_teardown(
		    test_garbage_on_the_results_socket_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_worker_drops_garbage_and_fails_unknown_kinds, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_second_result_for_a_job_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_result_without_the_worker_secrets_mac_is_not_applied,
		    setup_worker_secret, teardown_worker_secret),
		cmocka_unit_test(
		    test_job_addresses_other_hosts_reach_need_a_worker_secret),
	};

	return (cmocka_run_group_tests_name("applications", tests, NULL, NULL));
}
