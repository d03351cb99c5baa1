/*
 * test_faults_applications.c - applications in flight when the server or
 * a worker is killed with SIGKILL all end approved, none twice.
 *
 * 600 applications are posted through a real affiliate-bridge on 16
 * keep-alive connections, each with its own X-Request-Id; whatever gets
 * no 2xx is posted again with the same id (the server gives back the
 * application that id made, so a retry never makes a second one). The
 * server is killed while they are being posted, a worker while jobs run,
 * and the server again once all are in with jobs in flight; each comes
 * back on the same addresses and data folder. Then every application
 * that got a 2xx must exist once and end approved, with one approval
 * event and its job done.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aff_util.h"
#include "faults.h"

#define N_APPS 600
#define N_CONNS 16
#define LOAD_DEADLINE_MS 120000
#define APPROVE_TIMEOUT_MS 90000
#define DOWN_MS 300

struct load {
	struct fs_load base;
	int64_t *app_id; /* per application: the id its 2xx answered, or 0 */
};

static void *
load_main(void *arg)
{
	struct load *l = arg;
	struct http_conn c;
	struct http_answer a;
	char body[128], hdr[64], what[48];
	const char *id;
	long k;

	fs_conn_init(&c, l->base.s->port, 10000);
	while ((k = atomic_fetch_add(&l->base.next, 1)) < N_APPS) {
		long e, adv;

		fs_pair(k, &e, &adv);
		snprintf(body, sizeof(body), "{\"advertiser_id\":%ld,\"editor_id\":%ld}",
		    adv, e);
		/* The same id on every retry: the server gives back what the
		 * first attempt made (a 409 here would be a second one). */
		snprintf(hdr, sizeof(hdr), "X-Request-Id: fa-%ld\r\n", k);
		snprintf(what, sizeof(what), "application fa-%ld", k);
		if (fs_load_post(&l->base, &c, "/applications", hdr, body, what,
		        &a) == 0 &&
		    (id = strstr(a.body, "\"id\":")) != NULL)
			l->app_id[k] = strtoll(id + 5, NULL, 10);
	}
	fs_conn_fini(&c);
	return (NULL);
}

static void
server_kill_and_restart(struct fs_stack *s)
{
	fs_server_kill(s);
	tu_sleep_ms(DOWN_MS);
	assert_int_equal(fs_server_start(s), 0);
}

static long long
sql(const struct fs_stack *s, const char *q)
{
	return (tu_sql_int(s->db, q));
}

static void
count_one(const char *item, void *arg)
{
	(void)item;
	(*(long *)arg)++;
}

static void
test_applications_in_flight_when_server_or_worker_dies_end_approved_once(
    void **state)
{
	struct fs_stack s = { 0 };
	struct load l = { 0 };
	pthread_t t[N_CONNS];
	long acked = 0, lost = 0, listed = 0;
	long long rows, approved, dup;
	int64_t t0;

	(void)state;
	/* 600 reviews of 100 ms on 2 x 4 slots: about 7.5 s of work, so
	 * jobs are still in flight when the last POST is answered. */
	s.review_ms = 100;
	assert_int_equal(fs_stack_start(&s, 1, 2), 0);
	assert_int_equal(tu_seed_editors(s.db), 0);
	l.base.s = &s;
	l.app_id = calloc(N_APPS, sizeof(int64_t));
	assert_non_null(l.app_id);
	t0 = aff_mono_ms();
	l.base.deadline = t0 + LOAD_DEADLINE_MS;
	for (int i = 0; i < N_CONNS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, load_main, &l), 0);
	/* The server dies while applications are being posted, ... */
	fs_load_wait(&l.base, N_APPS / 4);
	server_kill_and_restart(&s);
	/* ... a worker while it has jobs in hand, ... */
	fs_load_wait(&l.base, N_APPS / 2);
	assert_true(tu_sql_wait(s.db,
	                "SELECT count(*) > 0 FROM jobs WHERE state = 'inflight'",
	                1, 10000) == 1);
	fs_worker_kill(&s, 0);
	tu_sleep_ms(DOWN_MS);
	assert_int_equal(fs_worker_start(&s, 0), 0);
	fs_load_wait(&l.base, N_APPS);
	for (int i = 0; i < N_CONNS; i++)
		pthread_join(t[i], NULL);
	/* ... and the server again, all posted and jobs still in flight. */
	assert_true(tu_sql_wait(s.db,
	                "SELECT count(*) > 0 FROM jobs WHERE state = 'inflight'",
	                1, 10000) == 1);
	server_kill_and_restart(&s);
	approved = tu_sql_wait(s.db,
	    "SELECT count(*) FROM applications WHERE status = 'approved'", N_APPS,
	    APPROVE_TIMEOUT_MS);

	/* Each acked application is there, made by its own request. */
	for (long k = 0; k < N_APPS; k++) {
		char q[160];
		if (l.app_id[k] == 0)
			continue;
		acked++;
		snprintf(q, sizeof(q),
		    "SELECT count(*) FROM applications WHERE id = %lld"
		    " AND request_id = 'fa-%ld' AND status = 'approved'",
		    (long long)l.app_id[k], k);
		lost += sql(&s, q) != 1;
	}
	rows = sql(&s, "SELECT count(*) FROM applications");
	/* A second row for one pair, or a second approval of one. */
	dup = rows - sql(&s, "SELECT count(*) FROM (SELECT DISTINCT editor_id,"
	                     " advertiser_id FROM applications) AS p") +
	    sql(&s, "SELECT count(*) FROM application_events"
	            " WHERE status = 'approved'") -
	    approved;
	assert_true(fs_list_each(s.port,
	                "/applications?status=approved&limit=1000", "{\"id\":",
	                count_one, &listed) >= 0);
	printf("faults applications: %d posted on %d connections; server killed "
	       "twice, a worker once; %.1f s until all approved\n",
	    N_APPS, N_CONNS, (double)(aff_mono_ms() - t0) / 1000);
	printf("faults applications: acked %ld, lost %ld, duplicated %lld; %lld "
	       "rows, %lld approved, %ld listed approved; %ld retries after %ld "
	       "broken connections and %ld error answers; %lld deliveries for "
	       "%d jobs\n",
	    acked, lost, dup, rows, approved, listed,
	    (long)atomic_load(&l.base.retries),
	    (long)atomic_load(&l.base.conn_errors),
	    (long)atomic_load(&l.base.refused),
	    sql(&s, "SELECT sum(attempts) FROM jobs"), N_APPS);
	fflush(stdout);
	assert_null(fs_stack_dead(&s));
	assert_int_equal(atomic_load(&l.base.odd_status), 0);
	assert_int_equal(lost, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(acked, N_APPS);
	assert_int_equal(rows, N_APPS);
	assert_int_equal(approved, N_APPS);
	assert_int_equal(listed, N_APPS);
	assert_int_equal(sql(&s, "SELECT count(*) FROM jobs WHERE state = 'done'"),
	    N_APPS);
	assert_int_equal(sql(&s, "SELECT max(c) FROM (SELECT count(*) AS c FROM"
	                         " application_events GROUP BY application_id) AS e"),
	    2);
	free(l.app_id);
	fs_stack_stop(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_applications_in_flight_when_server_or_worker_dies_end_approved_once),
	};

	return (cmocka_run_group_tests_name("faults_applications", tests, NULL,
	    NULL));
}
