/*
 * apps_util.c - the server, workers and applications test_applications
 * and test_job_results share (see apps_util.h).
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

/* The visibility timeout of the next setup: long enough that a loaded CI
 * machine never times a job out by accident, except in the test that
 * wants exactly that. */
static const char *visibility_ms = "5000";

int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	setenv("AFFILIATE_JOB_VISIBILITY_MS", visibility_ms, 1);
	setenv("AFFILIATE_JOB_BACKOFF_MS", "10", 1);
	setenv("AFFILIATE_JOB_MAX_ATTEMPTS", "3", 1);
	assert_int_equal(tu_server_start(&f->ts, 0), 0);
	snprintf(f->db, sizeof(f->db), "%s", f->ts.db);
	assert_int_equal(tu_seed_editors(f->db), 0);
	*state = f;
	return (0);
}

int
setup_short_visibility(void **state)
{
	int rv;

	visibility_ms = "600";
	rv = setup(state);
	visibility_ms = "5000";
	return (rv);
}

void
stop_workers(struct fixture *f)
{
	for (int i = 0; i < f->n_workers; i++)
		tu_kill(f->workers[i], SIGKILL);
	f->n_workers = 0;
}

int
teardown(void **state)
{
	struct fixture *f = *state;

	stop_workers(f);
	tu_server_stop(&f->ts);
	free(f);
	return (0);
}

/* Starts an affiliate-worker process; extra is one more flag pair or NULL. */
pid_t
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
void
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

int
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
void
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
int
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
void
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
	                     " application_events GROUP BY application_id) AS e"),
	    2);
}
