/*
 * test_faults_orders.c - nothing acknowledged is lost, nothing is stored
 * twice, while every part of the system is killed with SIGKILL under a
 * running webhook load.
 *
 * 20,000 distinct signed orders are posted on 32 keep-alive connections
 * to a real affiliate-bridge in front of a real affiliate-server, Redis
 * and two workers, all separate processes. A client retries whatever got
 * no 2xx (an error answer or a broken connection) with a short backoff
 * until it is acknowledged: that is safe because an order_id is stored
 * once. Meanwhile the bridge, the server, a worker and Redis are killed
 * in turn and started again on the same addresses and data folder. Then
 * every order that got a 2xx must be in SQLite and in GET /orders exactly
 * once, and so must every order, since all are retried until acked.
 *
 * The server is killed a second time the moment a client reads a 201:
 * the client thread that got it sends the SIGKILL itself, while the 31
 * other connections have orders queued, in a batch being written or in
 * one committed and being answered. That order, like every acked one,
 * must be stored: an order is answered only after its batch's commit.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aff_util.h"
#include "faults.h"

#define N_ORDERS 20000
#define N_CONNS 32
/* All orders must be acked by then, kills and restarts included (about
 * 5 s here, 10 s under ASan). */
#define LOAD_DEADLINE_MS 150000
/* How long each killed part stays down, so the load meets the outage. */
#define DOWN_MS 300

struct load {
	struct fs_load base;
	unsigned char *acked_by; /* per order: 1 once it got a 2xx */
	/* Set by the test: the next load thread that gets a 2xx sends
	 * SIGKILL to kill_pid at once and says which order it was. */
	atomic_int kill_armed;
	pid_t kill_pid;
	atomic_long killed_after; /* -1 until then */
};

static void *
load_main(void *arg)
{
	struct load *l = arg;
	struct http_conn c;
	struct http_answer a;
	char body[256], hdr[200], what[48];
	long i;

	fs_conn_init(&c, l->base.s->port, 10000);
	while ((i = atomic_fetch_add(&l->base.next, 1)) < N_ORDERS) {
		fs_order_body(i, body, sizeof(body), hdr, sizeof(hdr));
		snprintf(what, sizeof(what), "order F-%ld", i);
		if (fs_load_post(&l->base, &c, "/webhook/orders", hdr, body, what,
		        &a) == 0) {
			l->acked_by[i] = 1;
			if (atomic_exchange(&l->kill_armed, 0)) {
				kill(l->kill_pid, SIGKILL);
				atomic_store(&l->killed_after, i);
			}
		}
	}
	fs_conn_fini(&c);
	return (NULL);
}

enum victim { V_BRIDGE, V_SERVER, V_WORKER, V_REDIS };
static const char *const victim_name[] = { "bridge", "server", "worker",
	"redis" };

/* Kills one part with SIGKILL, keeps it down DOWN_MS, starts it again
 * and returns how long it was out of service (ms). */
static int64_t
kill_and_restart(struct fs_stack *s, enum victim v)
{
	int64_t t0 = aff_mono_ms();

	switch (v) {
	case V_BRIDGE:
		fs_bridge_kill(s);
		tu_sleep_ms(DOWN_MS);
		assert_int_equal(fs_bridge_start(s), 0);
		break;
	case V_SERVER:
		fs_server_kill(s);
		tu_sleep_ms(DOWN_MS);
		assert_int_equal(fs_server_start(s), 0);
		break;
	case V_WORKER:
		fs_worker_kill(s, 0);
		tu_sleep_ms(DOWN_MS);
		assert_int_equal(fs_worker_start(s, 0), 0);
		break;
	case V_REDIS:
		tu_redis_stop(&s->redis);
		tu_sleep_ms(DOWN_MS);
		assert_int_equal(tu_redis_start(&s->redis), 0);
		break;
	}
	return (aff_mono_ms() - t0);
}

static void
test_orders_acked_while_each_part_is_killed_are_stored_once(void **state)
{
	static const enum victim order[] = { V_BRIDGE, V_SERVER, V_WORKER,
		V_REDIS };
	struct fs_stack s = { 0 };
	struct load l = { 0 };
	pthread_t t[N_CONNS];
	/* Static: a failed assertion leaves no leak report of its own. */
	static unsigned char acked_by[N_ORDERS];
	static int stored[N_ORDERS], listed[N_ORDERS];
	long acked = 0, lost_db = 0, lost_list = 0, dup_db = 0, dup_list = 0;
	long rows, listed_total, killed_after;
	int64_t t0, elapsed, outage[4];

	(void)state;
	assert_int_equal(fs_stack_start(&s, 1, 2), 0);
	l.base.s = &s;
	l.acked_by = acked_by;
	t0 = aff_mono_ms();
	l.base.deadline = t0 + LOAD_DEADLINE_MS;
	for (int i = 0; i < N_CONNS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, load_main, &l), 0);
	/* One kill at each fifth of the load, so each meets traffic. */
	for (int k = 0; k < 4; k++) {
		fs_load_wait(&l.base, (long)N_ORDERS * (k + 1) / 5);
		outage[k] = kill_and_restart(&s, order[k]);
	}
	/* At nine tenths: the server killed by the thread that just read a
	 * 201 (fs_load_wait is not called meanwhile: it would see the server
	 * dead and fail). */
	fs_load_wait(&l.base, (long)N_ORDERS * 9 / 10);
	atomic_store(&l.killed_after, -1);
	l.kill_pid = s.server;
	atomic_store(&l.kill_armed, 1);
	while (atomic_load(&l.killed_after) < 0 &&
	    aff_mono_ms() < atomic_load(&l.base.deadline))
		tu_sleep_ms(1);
	killed_after = atomic_load(&l.killed_after);
	assert_true(killed_after >= 0);
	fs_server_kill(&s); /* reaps it */
	tu_sleep_ms(DOWN_MS);
	assert_int_equal(fs_server_start(&s), 0);
	fs_load_wait(&l.base, N_ORDERS);
	for (int i = 0; i < N_CONNS; i++)
		pthread_join(t[i], NULL);
	elapsed = aff_mono_ms() - t0;

	rows = fs_orders_stored(s.db, N_ORDERS, stored);
	listed_total = fs_orders_listed(s.port, N_ORDERS, listed);
	for (long i = 0; i < N_ORDERS; i++) {
		acked += l.acked_by[i];
		lost_db += l.acked_by[i] && stored[i] == 0;
		lost_list += l.acked_by[i] && listed[i] == 0;
		dup_db += stored[i] > 1;
		dup_list += listed[i] > 1;
	}
	printf("faults orders: %d posted on %d connections in %.1f s; kill -9 "
	       "and restart of %s %.2f s, %s %.2f s, %s %.2f s, %s %.2f s\n",
	    N_ORDERS, N_CONNS, (double)elapsed / 1000, victim_name[order[0]],
	    (double)outage[0] / 1000, victim_name[order[1]],
	    (double)outage[1] / 1000, victim_name[order[2]],
	    (double)outage[2] / 1000, victim_name[order[3]],
	    (double)outage[3] / 1000);
	printf("faults orders: acked %ld, lost %ld (SQLite) %ld (GET /orders), "
	       "duplicated %ld (SQLite) %ld (GET /orders); %ld rows, %ld listed; "
	       "%ld retries after %ld broken connections and %ld error answers\n",
	    acked, lost_db, lost_list, dup_db, dup_list, rows, listed_total,
	    (long)atomic_load(&l.base.retries),
	    (long)atomic_load(&l.base.conn_errors),
	    (long)atomic_load(&l.base.refused));
	fflush(stdout);
	assert_null(fs_stack_dead(&s));
	assert_int_equal(atomic_load(&l.base.odd_status), 0);
	printf("faults orders: the server killed as order F-%ld's 201 was "
	       "read: %s\n",
	    killed_after, stored[killed_after] == 1 ? "stored" : "LOST");
	assert_int_equal(stored[killed_after], 1);
	assert_int_equal(lost_db, 0);
	assert_int_equal(lost_list, 0);
	assert_int_equal(dup_db, 0);
	assert_int_equal(dup_list, 0);
	/* After the retries, every order exactly once. */
	assert_int_equal(acked, N_ORDERS);
	assert_int_equal(rows, N_ORDERS);
	assert_int_equal(listed_total, N_ORDERS);
	fs_stack_stop(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_orders_acked_while_each_part_is_killed_are_stored_once),
	};

	return (cmocka_run_group_tests_name("faults_orders", tests, NULL, NULL));
}
