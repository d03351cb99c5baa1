/*
 * test_applications.c - applications reviewed by real affiliate-worker
 * processes over real NNG sockets (REQ/REP for jobs, PUSH/PULL for
 * results), against a real SQLite file:
 * 1,000 applications with 4 workers, a worker killed with SIGKILL while
 * jobs flow, the server stopped with jobs outstanding, no worker at all,
 * failures retried until the job is dead, a job lost by its worker pushed
 * again, garbage on both sockets, and duplicate results applied once.
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
	assert_int_equal(tu_seed_editors(f->db), 0);
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
		f->ts.cfg.results_url, "--data-dir", f->ts.dir, "--review-delay",
		delay, "--log-level", "warn", flag, value, NULL };
	pid_t pid;

	snprintf(log, sizeof(log), "%s/worker.log", f->ts.dir);
	pid = tu_spawn("affiliate-worker", args, log);
	assert_true(pid > 0);
	f->workers[f->n_workers++] = pid;
	return (pid);
}

/* The worker secret the server made in its data folder. */
static void
worker_secret_of(struct fixture *f, char *out, size_t len)
{
	char path[700];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/worker_secret", f->ts.dir);
	assert_non_null(fp = fopen(path, "r"));
	assert_non_null(fgets(out, (int)len, fp));
	fclose(fp);
	out[strcspn(out, "\n")] = '\0';
	assert_int_equal(strlen(out), 64);
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

static void
test_a_late_result_of_the_delivery_before_still_counts(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
	Affiliate__V1__ReviewApplicationResult rr =
	    AFFILIATE__V1__REVIEW_APPLICATION_RESULT__INIT;
	struct store_job_policy p = { 600, 3, 10, 1000 };
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
	assert_int_equal(s->ops->job_extend(s, j1[0].id, first, now + 500, &p),
	    AFF_OK);
	assert_int_equal(s->ops->jobs_claim(s, now + 700, &p, 10, &a, &j2, &n),
	    AFF_OK);
	assert_int_equal(n, 0);
	/* ...but it lapses without more, and the job goes out again. */
	assert_int_equal(s->ops->jobs_claim(s, now + 1200, &p, 10, &a, &j2, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(j2[0].attempt, 2);
	assert_string_not_equal(j2[0].token, first);
	/* The first delivery's heartbeat no longer extends anything... */
	assert_int_equal(s->ops->job_extend(s, j1[0].id, first, now + 1300, &p),
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

	return (cmocka_run_group_tests_name("applications", tests, NULL, NULL));
}
