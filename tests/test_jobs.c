/*
 * test_jobs.c - the job pipeline under the conditions of a real
 * deployment, over real processes (affiliate-server and affiliate-worker
 * binaries) and real sockets: a backlog behind one slow worker, a worker
 * killed mid-lease, the server's wall clock stepped (libfaketime), a
 * flood of garbage results, and workers on tls+tcp:// that need a client
 * certificate.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "aff_client.h"
#include "aff_err.h"
#include "aff_jobauth.h"
#include "aff_tls.h"
#include "aff_util.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/jobs.pb-c.h"
#include "testutil.h"

#define APP_SVC (&affiliate__v1__application_service__descriptor)
#define FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

struct stack {
	struct tu_server ts; /* only .client and .dir: the server is a process */
	char url[64], jobs[700], results[700], db[700], log[700], clock[700];
	pid_t server, workers[4];
	int n_workers;
	int tls;             /* jobs and results on tls+tcp:// */
};

/* Starts affiliate-server (under libfaketime, its wall clock read from
 * s->clock, when faked) with the given lease, and seeds 50 editors
 * eligible for every active advertiser. */
static void
stack_start(struct stack *s, const char *lease_ms, int faked)
{
	char crt[700], key[700], ca[700];
	const char *args[] = { "--listen", s->url, "--data-dir", s->ts.dir,
		"--db", s->db, "--redis", "off", "--jobs", s->jobs, "--results", s->results,
		"--job-visibility", lease_ms, "--job-attempts", "3",
		"--job-backoff", "10", "--log-level", "warn", "--tls-cert", crt,
		"--tls-key", key, "--tls-ca", ca, NULL };
	struct aff_client_opts co = { 0 };

	assert_non_null(s->ts.dir = tu_tmpdir());
	args[3] = s->ts.dir;
	snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%d", tu_free_port());
	if (s->tls) {
		snprintf(s->jobs, sizeof(s->jobs), "tls+tcp://127.0.0.1:%d",
		    tu_free_port());
		snprintf(s->results, sizeof(s->results), "tls+tcp://127.0.0.1:%d",
		    tu_free_port());
		snprintf(crt, sizeof(crt), "%s/server.crt", s->ts.dir);
		snprintf(key, sizeof(key), "%s/server.key", s->ts.dir);
		snprintf(ca, sizeof(ca), "%s/ca.crt", s->ts.dir);
	} else {
		snprintf(s->jobs, sizeof(s->jobs), "ipc://%s/jobs.sock", s->ts.dir);
		snprintf(s->results, sizeof(s->results), "ipc://%s/results.sock",
		    s->ts.dir);
		args[20] = NULL; /* no TLS files */
	}
	assert_int_equal(tu_db_new(s->ts.dir, s->db, sizeof(s->db)), 0);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->ts.dir);
	if (s->tls) {
		char cmd[4096];
		/* A CA, the server's certificate, a worker's, and a stranger's
		 * from another CA: EC keys (fast), one day. */
		snprintf(cmd, sizeof(cmd),
		    "cd %s && exec >openssl.log 2>&1 && for n in ca other; do openssl req -x509 -newkey ec"
		    " -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key"
		    " -out $n.crt -subj /CN=test-$n -days 1; done &&"
		    " for n in server worker stranger; do openssl req -newkey ec"
		    " -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key"
		    " -out $n.csr -subj /CN=127.0.0.1; done &&"
		    " printf 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\\n' >san &&"
		    " openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key"
		    " -CAcreateserial -out server.crt -days 1 -extfile san &&"
		    " openssl x509 -req -in worker.csr -CA ca.crt -CAkey ca.key"
		    " -CAcreateserial -out worker.crt -days 1 &&"
		    " openssl x509 -req -in stranger.csr -CA other.crt"
		    " -CAkey other.key -CAcreateserial -out stranger.crt -days 1",
		    s->ts.dir);
		assert_int_equal(system(cmd), 0);
	}
	if (faked) {
		FILE *f;
		snprintf(s->clock, sizeof(s->clock), "%s/clock", s->ts.dir);
		assert_non_null(f = fopen(s->clock, "w"));
		fputs("+0\n", f);
		fclose(f);
		/* Only the wall clock is faked: CLOCK_MONOTONIC is the real one. */
		tu_preload_begin(FAKETIME_LIB);
		setenv("FAKETIME_TIMESTAMP_FILE", s->clock, 1);
		setenv("FAKETIME_NO_CACHE", "1", 1);
		setenv("DONT_FAKE_MONOTONIC", "1", 1);
	}
	s->server = tu_spawn("affiliate-server", args, s->log);
	if (faked) {
		tu_preload_end();
		unsetenv("FAKETIME_TIMESTAMP_FILE");
		unsetenv("FAKETIME_NO_CACHE");
		unsetenv("DONT_FAKE_MONOTONIC");
	}
	assert_true(s->server > 0);
	co.url = s->url;
	co.wait_connected = 1;
	co.timeout_ms = 10000;
	/* The server binds when its database is ready: wait for it. */
	for (int i = 0; i < 100 && aff_client_open(&s->ts.client, &co) != AFF_OK;
	     i++)
		tu_sleep_ms(100);
	assert_non_null(s->ts.client);
	assert_int_equal(tu_seed_editors(s->db), 0);
}

static void
stack_stop(struct stack *s)
{
	for (int i = 0; i < s->n_workers; i++)
		tu_kill(s->workers[i], SIGKILL);
	tu_kill(s->server, SIGTERM);
	aff_client_close(s->ts.client);
	tu_db_free(s->db);
	if (getenv("AFFILIATE_TEST_KEEP") == NULL)
		tu_rmtree(s->ts.dir);
	free(s->ts.dir);
	memset(s, 0, sizeof(*s));
}

/* Starts a worker; its slot index. cert: "worker", or NULL for none. */
static int
start_worker(struct stack *s, const char *delay, const char *concurrency,
    const char *cert)
{
	char log[700], crt[700], key[700], ca[700];
	const char *args[] = { "--jobs", s->jobs, "--results", s->results,
		"--data-dir", s->ts.dir, "--review-delay", delay, "--concurrency",
		concurrency, "--log-level", "warn", "--tls-cert", crt,
		"--tls-key", key, "--tls-ca", ca, NULL };

	snprintf(log, sizeof(log), "%s/worker.log", s->ts.dir);
	if (cert != NULL) {
		snprintf(crt, sizeof(crt), "%s/%s.crt", s->ts.dir, cert);
		snprintf(key, sizeof(key), "%s/%s.key", s->ts.dir, cert);
		snprintf(ca, sizeof(ca), "%s/ca.crt", s->ts.dir);
	} else
		args[12] = NULL;
	s->workers[s->n_workers] = tu_spawn("affiliate-worker", args, log);
	assert_true(s->workers[s->n_workers] > 0);
	return (s->n_workers++);
}

/* Applies for pairs [from, to) (editor 100 + k / 23, an active
 * advertiser); each must be accepted. */
static void
apply_pairs(struct stack *s, int from, int to)
{
	for (int k = from; k < to; k++) {
		Affiliate__V1__ApplyRequest req = AFFILIATE__V1__APPLY_REQUEST__INIT;
		Affiliate__V1__Application *a = NULL;
		int adv = 1 + k % 23;
		req.editor_id = 100 + k / 23;
		req.advertiser_id = adv >= 12 ? adv + 1 : adv; /* 12 is paused */
		assert_int_equal(tu_call(&s->ts, APP_SVC, "Apply", &req.base,
		                     (ProtobufCMessage **)&a),
		    AFF_OK);
		protobuf_c_message_free_unpacked(&a->base, NULL);
	}
}

/* Waits until exactly n jobs are out with a worker. */
static void
wait_inflight(struct stack *s, long long n, int timeout_ms)
{
	assert_int_equal(tu_sql_wait(s->db,
	                     "SELECT count(*) FROM jobs WHERE state = 'inflight'",
	                     n, timeout_ms),
	    n);
}

static void
wait_approved(struct stack *s, long long n, int timeout_ms)
{
	assert_int_equal(tu_sql_wait(s->db,
	                     "SELECT count(*) FROM applications"
	                     " WHERE status = 'approved'",
	                     n, timeout_ms),
	    n);
	assert_int_equal(tu_sql_int(s->db, "SELECT count(*) FROM applications"), n);
}

static void
test_a_backlog_behind_one_slow_worker_drains_with_every_application_approved(
    void **state)
{
	struct stack s = { 0 };
	int64_t t0;

	(void)state;
	/*
	 * Leases of 600 ms, reviews of 2 s, 6 at once, 48 applications: three
	 * times the 16 jobs a worker used to be pushed ahead. Each job waits
	 * up to 14 s for its turn, 23 leases, and runs for more than three:
	 * only credits (no job leaves before a slot asks) and heartbeats (a
	 * running job keeps its lease) get every one approved at its first
	 * attempt.
	 */
	stack_start(&s, "600", 0);
	apply_pairs(&s, 0, 48);
	t0 = aff_mono_ms();
	start_worker(&s, "2000", "6", NULL);
	wait_approved(&s, 48, 90000);
	fprintf(stderr, "test_jobs: 48 reviews of 2 s by 6 slots in %lld ms\n",
	    (long long)(aff_mono_ms() - t0));
	assert_int_equal(tu_sql_int(s.db, "SELECT count(*) FROM jobs"
	                                  " WHERE state = 'done' AND attempts = 1"),
	    48);
	assert_int_equal(tu_sql_int(s.db, "SELECT count(*) FROM application_events"
	                                  " WHERE status = 'rejected'"),
	    0);
	stack_stop(&s);
}

static void
test_a_worker_killed_mid_lease_has_its_job_delivered_again_after_the_lease(
    void **state)
{
	struct stack s = { 0 };
	int64_t killed, approved;
	int victim;

	(void)state;
	/* A lease of 1.5 s, kept alive every 500 ms by a worker whose review
	 * takes 20 s, until it is killed. */
	stack_start(&s, "1500", 0);
	victim = start_worker(&s, "20000", "1", NULL);
	apply_pairs(&s, 0, 1);
	wait_inflight(&s, 1, 10000);
	tu_sleep_ms(2000); /* past the first lease: heartbeats keep it */
	assert_int_equal(tu_sql_int(s.db, "SELECT attempts FROM jobs"), 1);
	tu_kill(s.workers[victim], SIGKILL);
	s.workers[victim] = 0;
	killed = aff_mono_ms();
	start_worker(&s, "0", "1", NULL);
	/* Not before the lease: its last heartbeat was at most 500 ms before
	 * the kill, so it runs at least 1 s more. */
	tu_sleep_ms(700);
	assert_int_equal(tu_sql_int(s.db, "SELECT attempts FROM jobs"), 1);
	assert_int_equal(tu_sql_int(s.db, "SELECT count(*) FROM applications"
	                                  " WHERE status = 'pending'"),
	    1);
	/* After it: delivered again, approved. */
	wait_approved(&s, 1, 10000);
	approved = aff_mono_ms();
	assert_true(approved - killed >= 1000);
	assert_true(approved - killed < 1500 + 2000);
	assert_int_equal(tu_sql_int(s.db, "SELECT attempts FROM jobs"), 2);
	stack_stop(&s);
}

static void
clock_set(struct stack *s, const char *offset)
{
	FILE *f = fopen(s->clock, "w");

	assert_non_null(f);
	fprintf(f, "%s\n", offset);
	fclose(f);
}

static void
test_a_wall_clock_step_neither_expires_leases_nor_stalls_the_dispatcher(
    void **state)
{
	struct stack s = { 0 };
	int victim;

	(void)state;
	if (access(FAKETIME_LIB, R_OK) != 0) {
		fprintf(stderr, "test_jobs: %s missing (apt-get install faketime); "
		                "skipped\n",
		    FAKETIME_LIB);
		skip();
	}
	stack_start(&s, "1000", 1);
	/* Reviews of 2.5 s on 1 s leases; the server's clock jumps a day
	 * ahead while they run: no lease may lapse for that. */
	start_worker(&s, "2500", "2", NULL);
	apply_pairs(&s, 0, 2);
	wait_inflight(&s, 2, 10000);
	clock_set(&s, "+1d");
	wait_approved(&s, 2, 20000);
	assert_int_equal(tu_sql_int(s.db, "SELECT max(attempts) FROM jobs"), 1);
	/* A day back now: new work still goes out at once... */
	clock_set(&s, "-1d");
	for (int i = 0; i < s.n_workers; i++)
		tu_kill(s.workers[i], SIGKILL);
	s.n_workers = 0;
	victim = start_worker(&s, "20000", "1", NULL);
	apply_pairs(&s, 2, 3);
	wait_inflight(&s, 1, 5000);
	/* The job is inflight once claimed for the worker's request; a
	 * worker killed before the answer reaches it never had the job, and
	 * that delivery is not an attempt (it counted 3, not 4, once on a
	 * loaded host). Half a second lets it arrive. */
	tu_sleep_ms(500);
	/* ...and the lease of a worker killed now still lapses after 1 s,
	 * not a day later. */
	tu_kill(s.workers[victim], SIGKILL);
	s.workers[victim] = 0;
	start_worker(&s, "0", "1", NULL);
	wait_approved(&s, 3, 5000);
	assert_int_equal(tu_sql_int(s.db, "SELECT sum(attempts) FROM jobs"), 4);
	stack_stop(&s);
}

/* The server log's lines that contain what. */
static int
log_lines_with(struct stack *s, const char *what, char *last, size_t lastlen)
{
	char line[4096];
	FILE *f = fopen(s->log, "r");
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, what) != NULL) {
			n++;
			if (last != NULL)
				snprintf(last, lastlen, "%s", line);
		}
	fclose(f);
	return (n);
}

static void
test_a_flood_of_garbage_results_writes_one_warning_a_second(void **state)
{
	struct stack s = { 0 };
	Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
	uint8_t buf[256], *out;
	char secret[300], path[700], last[4096];
	size_t len, outlen;
	nng_socket push;
	FILE *f;

	(void)state;
	stack_start(&s, "5000", 0);
	assert_int_equal(nng_push0_open(&push), 0);
	nng_socket_set_ms(push, NNG_OPT_SENDTIMEO, 5000);
	assert_int_equal(nng_dial(push, s.results, NULL, 0), 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(nng_send(push, "\xff\xff garbage", 10, 0), 0);
	/* A second later, one more: the next line, with the count. */
	tu_sleep_ms(1500);
	assert_int_equal(nng_send(push, "\xff\xff garbage", 10, 0), 0);
	/* A signed result for a delivery never made, from a worker whose
	 * name carries bytes a terminal would act on. */
	snprintf(path, sizeof(path), "%s/worker_secret", s.ts.dir);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(secret, sizeof(secret), f));
	fclose(f);
	secret[strcspn(secret, "\n")] = '\0';
	r.job_id = 1;
	r.ok = 1;
	r.token = "00112233445566778899aabbccddeeff";
	r.worker = "evil\xc3\xa9\x1b[2J\xff";
	len = affiliate__v1__job_result__pack(&r, buf);
	assert_int_equal(aff_job_report_pack(secret, AFF_JOB_REPORT_RESULT, buf,
	                     len, &out, &outlen),
	    AFF_OK);
	assert_int_equal(nng_send(push, out, outlen, 0), 0);
	free(out);
	for (int i = 0; i < 50 && log_lines_with(&s, "answers no delivery",
	                              NULL, 0) == 0;
	     i++)
		tu_sleep_ms(100);
	nng_close(push);
	/* 2,001 garbage messages: two lines, the second naming them all. */
	assert_int_equal(log_lines_with(&s, "not a JobReport", last, sizeof(last)),
	    2);
	assert_non_null(strstr(last, "(2001 since start, 1999 not logged)"));
	/* The name is escaped, byte by byte. */
	assert_int_equal(
	    log_lines_with(&s, "from evil\\xc3\\xa9\\x1b[2J\\xff answers", NULL, 0),
	    1);
	stack_stop(&s);
}

/* Whether a REQ socket dialled with tls (NULL: the URL's own default)
 * gets a job within ms. */
static int
stranger_gets_a_job(const char *url, nng_tls_config *tls, int ms)
{
	nng_socket req;
	nng_dialer d;
	nng_msg *m;
	int rv;

	assert_int_equal(nng_req0_open(&req), 0);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, ms);
	nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, ms);
	assert_int_equal(nng_dialer_create(&d, req, url), 0);
	if (tls != NULL)
		assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls), 0);
	assert_int_equal(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
	rv = nng_send(req, "", 0, 0);
	if (rv == 0 && (rv = nng_recvmsg(req, &m, 0)) == 0)
		nng_msg_free(m);
	nng_close(req);
	return (rv == 0);
}

static void
test_workers_on_tls_tcp_need_a_client_certificate_from_the_ca(void **state)
{
	struct stack s = { .tls = 1 };
	char plain[700], path[700], key[700];
	nng_tls_config *c;

	(void)state;
	stack_start(&s, "5000", 0);
	apply_pairs(&s, 0, 4);
	/* Plain TCP to the TLS port: no job. */
	snprintf(plain, sizeof(plain), "tcp://%.600s", s.jobs + strlen("tls+tcp://"));
	assert_false(stranger_gets_a_job(plain, NULL, 1000));
	/* TLS trusting the server, but no client certificate: no job. */
	assert_int_equal(nng_tls_config_alloc(&c, NNG_TLS_MODE_CLIENT), 0);
	snprintf(path, sizeof(path), "%s/ca.crt", s.ts.dir);
	assert_int_equal(nng_tls_config_ca_file(c, path), 0);
	assert_int_equal(nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED), 0);
	assert_false(stranger_gets_a_job(s.jobs, c, 1000));
	nng_tls_config_free(c);
	/* A certificate from another CA: no job. */
	assert_int_equal(nng_tls_config_alloc(&c, NNG_TLS_MODE_CLIENT), 0);
	assert_int_equal(nng_tls_config_ca_file(c, path), 0);
	snprintf(path, sizeof(path), "%s/stranger.crt", s.ts.dir);
	snprintf(key, sizeof(key), "%s/stranger.key", s.ts.dir);
	{
		char *crt_pem = NULL, *key_pem = NULL;
		size_t n;
		FILE *f;
		assert_non_null(f = fopen(path, "r"));
		crt_pem = calloc(1, 8192);
		n = fread(crt_pem, 1, 8191, f);
		fclose(f);
		assert_true(n > 0);
		assert_non_null(f = fopen(key, "r"));
		key_pem = calloc(1, 8192);
		n = fread(key_pem, 1, 8191, f);
		fclose(f);
		assert_true(n > 0);
		assert_int_equal(nng_tls_config_own_cert(c, crt_pem, key_pem, NULL), 0);
		free(crt_pem);
		free(key_pem);
	}
	assert_false(stranger_gets_a_job(s.jobs, c, 1000));
	nng_tls_config_free(c);
	/* Nothing was delivered to any of them. */
	assert_int_equal(tu_sql_int(s.db, "SELECT sum(attempts) FROM jobs"), 0);
	/* A worker with a certificate from the CA gets them all. */
	start_worker(&s, "0", "2", "worker");
	wait_approved(&s, 4, 20000);
	assert_int_equal(tu_sql_int(s.db, "SELECT sum(attempts) FROM jobs"), 4);
	stack_stop(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_a_backlog_behind_one_slow_worker_drains_with_every_application_approved),
		cmocka_unit_test(
		    test_a_worker_killed_mid_lease_has_its_job_delivered_again_after_the_lease),
		cmocka_unit_test(
		    test_a_wall_clock_step_neither_expires_leases_nor_stalls_the_dispatcher),
		cmocka_unit_test(
		    test_a_flood_of_garbage_results_writes_one_warning_a_second),
		cmocka_unit_test(
		    test_workers_on_tls_tcp_need_a_client_certificate_from_the_ca),
	};

	/* Everything is set here: the environment must not leak in. */
	unsetenv("AFFILIATE_WORKER_SECRET");
	unsetenv("AFFILIATE_DATA_DIR");
	return (cmocka_run_group_tests_name("jobs", tests, NULL, NULL));
}
