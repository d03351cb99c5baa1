/*
 * test_order_writer.c - the group-commit writer on a real database (a
 * SQLite file, or PostgreSQL as test_order_writer_pg): an order that
 * breaks a constraint is refused alone, and the orders that shared its
 * batch (its transaction) are committed and answered as stored.
 *
 * The webhook parser refuses every order the schema's CHECKs would (a
 * commission over the amount, a currency that is not 3 letters), so the
 * writer is driven directly here, as the handlers drive it.
 *
 * The 40 orders queued while order 0 waited for the lock join order 0's
 * batch before its commit: one batch, one fsync (the writer's batch-size
 * histogram counts one).
 *
 * With SQLite, that batch also creates no temporary file: the savepoints'
 * statement journal stays in memory (a batch of more than one order once
 * spilled it to a file, created and deleted on the writer's critical
 * path). SQLITE_TMPDIR points at a folder of the test's own, watched with
 * inotify.
 */
#include <pthread.h>
#include <setjmp.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_metrics.h"
#include "order_writer.h"
#include "store.h"
#include "testutil.h"
#include "testutil_db.h"

#define N_ORDERS 40
#define BAD 17 /* the one that breaks a CHECK */

/* SQLite's folder for temporary files (set in main, before SQLite reads
 * it), and an inotify descriptor watching it for new files. */
static char *sqlite_tmp;
static int tmp_watch = -1;

/* How many files were created in sqlite_tmp since the last call. */
static int
tmp_files_created(void)
{
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n;
	int files = 0;

	while ((n = read(tmp_watch, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			files += (ev->mask & IN_CREATE) != 0;
			p += sizeof(*ev) + ev->len;
		}
	return (files);
}

struct answer {
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int n;
	int rv[N_ORDERS + 1];
	int created[N_ORDERS + 1];
};

struct sub {
	struct answer *ans;
	int i;
	struct store_order_in in;
	char id[32];
	aff_arena arena;
};

static void
done(void *arg, int rv, Affiliate__V1__Order *order,
    enum store_order_outcome outcome)
{
	struct sub *s = arg;

	(void)order;
	pthread_mutex_lock(&s->ans->mtx);
	s->ans->rv[s->i] = rv;
	s->ans->created[s->i] = rv == AFF_OK && outcome == STORE_ORDER_CREATED;
	s->ans->n++;
	pthread_cond_signal(&s->ans->cv);
	pthread_mutex_unlock(&s->ans->mtx);
}

static void
test_a_bad_order_is_refused_alone_and_its_batch_commits(void **state)
{
	static struct sub subs[N_ORDERS + 1];
	struct answer ans = { .n = 0 };
	char *dir = tu_tmpdir(), path[512], sql[256];
	order_writer *w;
	struct tu_db_lock *lock;
	struct aff_mbuf mb;
	char *text;
	size_t len;

	(void)state;
	pthread_mutex_init(&ans.mtx, NULL);
	pthread_cond_init(&ans.cv, NULL);
	assert_int_equal(tu_db_new(dir, path, sizeof(path)), 0);
	assert_int_equal(order_writer_start(path, &w), AFF_OK);
	(void)tmp_files_created();

	/* Another connection holds the write lock while the orders are
	 * submitted: the writer takes order 0, waits for the lock, and the
	 * other 40 are queued meanwhile; they join order 0's batch once its
	 * statements have run, before its commit. */
	assert_non_null(lock = tu_db_lock(path));
	for (int i = 0; i <= N_ORDERS; i++) {
		struct sub *s = &subs[i];
		s->ans = &ans;
		s->i = i;
		aff_arena_init(&s->arena);
		snprintf(s->id, sizeof(s->id), "wr-%d", i);
		s->in = (struct store_order_in){
			.order_id = s->id,
			.advertiser_id = 1 + i % 20,
			.editor_id = 1 + i % 6,
			.amount_cents = 10000,
			/* A commission over the amount: the schema's CHECK. */
			.commission_cents = i == BAD ? 20000 : 500,
			.currency = "", /* the advertiser's */
		};
		assert_int_equal(
		    order_writer_submit(w, &s->in, &s->arena, done, s), AFF_OK);
		if (i == 0)
			tu_sleep_ms(50); /* order 0 is taken alone */
	}
	tu_sleep_ms(50);
	assert_int_equal(tu_db_unlock(lock), 0);

	pthread_mutex_lock(&ans.mtx);
	while (ans.n < N_ORDERS + 1)
		pthread_cond_wait(&ans.cv, &ans.mtx);
	pthread_mutex_unlock(&ans.mtx);
	/* Read before the stop: closing may make files of its own. */
	if (!tu_backend_pg())
		assert_int_equal(tmp_files_created(), 0);
	aff_mbuf_init(&mb);
	order_writer_metrics_write(w, &mb);
	assert_int_equal(aff_mbuf_take(&mb, &text, &len), 0);
	if (strstr(text, "affiliate_server_order_batch_size_count 1\n") == NULL)
		fprintf(stderr, "%s", text);
	assert_non_null(
	    strstr(text, "affiliate_server_order_batch_size_count 1\n"));
	free(text);
	order_writer_stop(w);

	for (int i = 0; i <= N_ORDERS; i++) {
		if (i == BAD) {
			assert_int_equal(ans.rv[i], AFF_INVALID_ARGUMENT);
			continue;
		}
		if (ans.rv[i] != AFF_OK)
			fprintf(stderr, "order %d: %s\n", i, aff_strerror(ans.rv[i]));
		assert_int_equal(ans.rv[i], AFF_OK);
		assert_true(ans.created[i]);
	}
	assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM orders"),
	    N_ORDERS);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM orders WHERE order_id = 'wr-%d'", BAD);
	assert_int_equal(tu_sql_int(path, sql), 0);
	/* Each stored order has its event, the refused one none. */
	assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM order_events"),
	    N_ORDERS);
	for (int i = 0; i <= N_ORDERS; i++)
		aff_arena_fini(&subs[i].arena);
	pthread_cond_destroy(&ans.cv);
	pthread_mutex_destroy(&ans.mtx);
	tu_db_free(path);
	tu_rmtree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_a_bad_order_is_refused_alone_and_its_batch_commits),
	};

	int rv;

	aff_log_set_level(AFF_LOG_WARN);
	/* SQLite reads SQLITE_TMPDIR once, when it initialises. */
	sqlite_tmp = tu_tmpdir();
	setenv("SQLITE_TMPDIR", sqlite_tmp, 1);
	tmp_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (tmp_watch < 0 ||
	    inotify_add_watch(tmp_watch, sqlite_tmp, IN_CREATE) < 0) {
		perror("inotify");
		return (1);
	}
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	close(tmp_watch);
	tu_rmtree(sqlite_tmp);
	free(sqlite_tmp);
	return (rv);
}
