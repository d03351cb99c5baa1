/*
 * test_applications.c - applications reviewed by real affiliate-worker
 * processes over real NNG sockets (REQ/REP for jobs, PUSH/PULL for
 * results), against a real SQLite file:
 * 1,000 applications with 4 workers, a worker killed with SIGKILL while
 * jobs flow, the server stopped with jobs outstanding, no worker at all,
 * failures retried until the job is dead, a job lost by its worker pushed
 * again, garbage on both sockets, Apply's errors and repeats. Results
 * (duplicate, late, signed, unknown fields) and the worker secret are in
 * test_job_results.c; the server and workers both use in apps_util.c.
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

	/* A "worker" that asks for a job, takes it and never answers. */
	assert_int_equal(nng_req0_open(&black_hole), 0);
	nng_socket_set_ms(black_hole, NNG_OPT_RECVTIMEO, 5000);
	assert_int_equal(nng_dial(black_hole, f->ts.cfg.jobs_url, NULL, 0), 0);
	assert_int_equal(nng_send(black_hole, "", 0, 0), 0);
	assert_int_equal(apply(f, 1, 3, NULL), AFF_OK);
	assert_int_equal(nng_recvmsg(black_hole, &m, 0), 0);
	nng_msg_free(m);
	nng_close(black_hole);
	/* A real worker gets it after the lease (600 ms). */
	start_worker(f, "0", NULL, NULL);
	check_all_approved_once(f, 1, 10000);
	/* At least the second delivery did it (a loaded machine may need a
	 * third within 600 ms); approved once either way. */
	assert_true(tu_sql_int(f->db, "SELECT attempts FROM jobs") >= 2);
}

static void
count_closed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	(void)ev;
	(*(atomic_int *)arg)++;
}

static void
test_a_connection_asking_for_more_jobs_than_a_worker_can_run_is_closed(
    void **state)
{
	struct fixture *f = *state;
	atomic_int closed = 0;
	nng_socket raw;

	/* 257 requests on one connection (a worker has at most 256 slots),
	 * as a raw REQ socket can send them. (No more: NNG 1.5.2's close of
	 * a raw REQ socket with requests still queued after its connection
	 * was closed hangs under ASan.) */
	assert_int_equal(nng_req0_open_raw(&raw), 0);
	/* Once closed, sends wait for a connection: not for long. */
	nng_socket_set_ms(raw, NNG_OPT_SENDTIMEO, 1000);
	nng_socket_set_ms(raw, NNG_OPT_RECONNMINT, 60000);
	nng_socket_set_ms(raw, NNG_OPT_RECONNMAXT, 60000);
	nng_pipe_notify(raw, NNG_PIPE_EV_REM_POST, count_closed, &closed);
	assert_int_equal(nng_dial(raw, f->ts.cfg.jobs_url, NULL, 0), 0);
	for (uint32_t i = 0; i < 257 && atomic_load(&closed) == 0; i++) {
		nng_msg *m;
		assert_int_equal(nng_msg_alloc(&m, 0), 0);
		assert_int_equal(nng_msg_header_append_u32(m, 0x80000000u | i), 0);
		if (nng_sendmsg(raw, m, 0) != 0) {
			nng_msg_free(m);
			break;
		}
	}
	for (int i = 0; i < 100 && atomic_load(&closed) == 0; i++)
		tu_sleep_ms(50);
	assert_int_equal(atomic_load(&closed), 1);
	nng_close(raw);
	tu_sleep_ms(200); /* the server has taken its requests back */
	/* None of its requests took a job; a worker still gets them all. */
	for (int k = 0; k < 10; k++) {
		int64_t e, a;
		pair(k, &e, &a);
		assert_int_equal(apply(f, e, a, NULL), AFF_OK);
	}
	tu_sleep_ms(200);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jobs"
	                                   " WHERE attempts > 0"),
	    0);
	start_worker(f, "0", NULL, NULL);
	check_all_approved_once(f, 10, 10000);
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
		"--data-dir", f->ts.dir, "--review-delay", "0", NULL };
	Affiliate__V1__Job job = AFFILIATE__V1__JOB__INIT;
	Affiliate__V1__ReviewApplicationJob rj =
	    AFFILIATE__V1__REVIEW_APPLICATION_JOB__INIT;
	Affiliate__V1__JobResult *r;
	Affiliate__V1__JobReport *rep;
	nng_socket push, pull;
	uint8_t buf[128], pbuf[64];
	char secret[300];
	nng_msg *m;
	pid_t pid;

	snprintf(jobs_url, sizeof(jobs_url), "ipc://%s/t-jobs.sock", f->ts.dir);
	snprintf(results_url, sizeof(results_url), "ipc://%s/t-results.sock",
	    f->ts.dir);
	snprintf(log, sizeof(log), "%s/t-worker.log", f->ts.dir);
	worker_secret_of(f, secret, sizeof(secret));
	/* This test plays the server: REP for the workers' requests. */
	assert_int_equal(nng_rep0_open(&push), 0);
	assert_int_equal(nng_pull0_open(&pull), 0);
	nng_socket_set_ms(push, NNG_OPT_RECVTIMEO, 5000);
	nng_socket_set_ms(pull, NNG_OPT_RECVTIMEO, 5000);
	nng_socket_set_ms(push, NNG_OPT_SENDTIMEO, 5000);
	assert_int_equal(nng_listen(push, jobs_url, NULL, 0), 0);
	assert_int_equal(nng_listen(pull, results_url, NULL, 0), 0);
	pid = tu_spawn("affiliate-worker", args, log);
	f->workers[f->n_workers++] = pid;

	/* Each answer goes to a request of a free slot. */
	assert_int_equal(nng_recvmsg(push, &m, 0), 0);
	nng_msg_free(m);
	assert_int_equal(nng_send(push, "\xff\x01garbage", 9, 0), 0);
	job.id = 7;
	job.kind = "mine_bitcoin";
	job.attempt = 1;
	job.token = "token-7";
	assert_int_equal(nng_recvmsg(push, &m, 0), 0);
	nng_msg_free(m);
	assert_int_equal(nng_send(push, buf, affiliate__v1__job__pack(&job, buf), 0), 0);
	rj.application_id = 1;
	job.id = 8;
	job.kind = "review_application";
	job.token = "token-8";
	job.payload.data = pbuf;
	job.payload.len = affiliate__v1__review_application_job__pack(&rj, pbuf);
	assert_int_equal(nng_recvmsg(push, &m, 0), 0);
	nng_msg_free(m);
	assert_int_equal(nng_send(push, buf, affiliate__v1__job__pack(&job, buf), 0), 0);

	/* The garbage gets no answer; the unknown kind a failure; the review
	 * an approval. One worker thread may finish them in any order. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(nng_recvmsg(pull, &m, 0), 0);
		rep = affiliate__v1__job_report__unpack(
		    NULL, nng_msg_len(m), nng_msg_body(m));
		assert_non_null(rep);
		/* Signed with the secret the server made in its data folder. */
		assert_int_equal(aff_job_report_verify(secret, rep), AFF_OK);
		assert_int_equal(rep->body_case, AFFILIATE__V1__JOB_REPORT__BODY_RESULT);
		r = affiliate__v1__job_result__unpack(
		    NULL, rep->result.len, rep->result.data);
		affiliate__v1__job_report__free_unpacked(rep, NULL);
		assert_non_null(r);
		if (r->job_id == 7) {
			assert_string_equal(r->token, "token-7");
			assert_false(r->ok);
			assert_string_equal(
			    r->error, "no handler for job kind 'mine_bitcoin'");
		} else {
			assert_int_equal(r->job_id, 8);
			assert_string_equal(r->token, "token-8");
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
		    test_a_connection_asking_for_more_jobs_than_a_worker_can_run_is_closed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_worker_drops_garbage_and_fails_unknown_kinds, setup,
		    teardown),
	};

	return (cmocka_run_group_tests_name("applications", tests, NULL, NULL));
}
