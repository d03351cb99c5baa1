/*
 * test_faults_disk.c - a full disk: writes answer an error (never a 2xx),
 * reads go on, and writes succeed again once room returns, without a
 * restart and without losing anything acknowledged.
 *
 * The disk is SQLite's: the server runs with AFFILIATE_DB_MAX_PAGES a few
 * pages above the file's size, and the file is padded first with a table
 * of blobs ("filler") that the test drops later, as an operator deleting
 * files would free room: the freed pages go to SQLite's free list, the
 * server's connections reuse them, and no limit has to be lifted. Redis is
 * off, so every read is answered by SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "faults.h"

/* Orders posted before the disk must be full: a page of room holds a few
 * dozen, so it is full long before. */
#define MAX_BEFORE_FULL 1000
/* Pages of room above the padded file's size. */
#define ROOM_PAGES 6
#define AFTER_FULL 20
#define NEW_AFTER_ROOM 200

static int
post_order(struct http_conn *c, long i, struct http_answer *a)
{
	char body[256], hdr[200];

	fs_order_body(i, body, sizeof(body), hdr, sizeof(hdr));
	assert_int_equal(fs_request(c, "POST", "/webhook/orders", hdr, body, a), 0);
	return (a->status);
}

static int
get(struct http_conn *c, const char *target)
{
	struct http_answer a;

	assert_int_equal(fs_request(c, "GET", target, NULL, NULL, &a), 0);
	return (a.status);
}

/* Applies for pair k (fs_pair). */
static int
post_application(struct http_conn *c, long k, struct http_answer *a)
{
	char body[96];
	long editor, adv;

	fs_pair(k, &editor, &adv);
	snprintf(body, sizeof(body), "{\"advertiser_id\":%ld,\"editor_id\":%ld}",
	    adv, editor);
	assert_int_equal(fs_request(c, "POST", "/applications", NULL, body, a), 0);
	return (a->status);
}

/* Every order i < n listed once by GET /orders and stored once, but
 * those refused[i] (NULL: none), neither stored nor listed. */
static void
check_orders_once(const struct fs_stack *s, long n, const char *refused)
{
	long want = n;
	int *stored = calloc((size_t)n, sizeof(int));
	int *listed = calloc((size_t)n, sizeof(int));

	assert_non_null(stored);
	assert_non_null(listed);
	for (long i = 0; refused != NULL && i < n; i++)
		want -= refused[i];
	assert_int_equal(fs_orders_stored(s->db, n, stored), want);
	assert_int_equal(fs_orders_listed(s->port, n, listed), want);
	for (long i = 0; i < n; i++) {
		int once = refused == NULL || !refused[i];
		assert_int_equal(stored[i], once);
		assert_int_equal(listed[i], once);
	}
	free(stored);
	free(listed);
}

static void
test_a_full_disk_refuses_writes_serves_reads_and_recovers(void **state)
{
	struct fs_stack s = { 0 };
	struct http_conn c;
	struct http_answer a;
	long acked = 0, apps = 0, pages, next = 0, streak = 0, refused_n = 0;
	char refused[MAX_BEFORE_FULL] = { 0 };
	long long approved;
	int full_status = 0, st;

	(void)state;
	TU_SQLITE_ONLY("the full disk is made with SQLite's page cap "
	               "(AFFILIATE_DB_MAX_PAGES) on its file; a PostgreSQL "
	               "server's disk is not the test's to fill");
	/* The worker starts after the server's restart below: one whose
	 * dial lands on the server being killed may never dial again
	 * (NNG 1.5.2, see the README's RPC protocol section). */
	assert_int_equal(fs_stack_start(&s, 0, 0), 0);
	assert_int_equal(tu_seed_editors(s.db), 0);
	/* Pad the file, then run the server with a cap just above it. */
	assert_int_equal(tu_sql_exec(s.db,
	                     "CREATE TABLE filler (b BLOB);"
	                     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
	                     " SELECT i + 1 FROM n WHERE i < 200)"
	                     " INSERT INTO filler SELECT zeroblob(3000) FROM n;"),
	    0);
	pages = tu_sql_int(s.db, "PRAGMA page_count");
	assert_true(pages > 200);
	fs_server_kill(&s);
	s.max_pages = pages + ROOM_PAGES;
	assert_int_equal(fs_server_start(&s), 0);
	s.n_workers = 1;
	assert_int_equal(fs_worker_start(&s, 0), 0);
	fs_conn_init(&c, s.port, 10000);

	/* Orders are acked until the disk is full, then refused. An order
	 * writes to several tables (the earnings sums of schema step 14 with
	 * it), so one whose rows still fit in pages with room may be acked
	 * after another was refused: new orders are posted until AFTER_FULL
	 * in a row are refused, each refused one remembered (never stored). */
	while (next < MAX_BEFORE_FULL && streak < AFTER_FULL) {
		if ((st = post_order(&c, next, &a)) == 201) {
			acked++;
			streak = 0;
		} else {
			assert_int_equal(st, 429);
			assert_non_null(
			    strstr(a.body, "\"code\":\"RESOURCE_EXHAUSTED\""));
			if (full_status == 0)
				full_status = st;
			refused[next] = 1;
			refused_n++;
			streak++;
		}
		next++;
	}
	assert_true(acked > 0 && streak == AFTER_FULL);
	assert_int_equal(tu_sql_int(s.db, "SELECT count(*) FROM orders"), acked);
	/* Applications are writes too: accepted while their own tables have
	 * room in the pages they hold, then refused. */
	while (apps < MAX_BEFORE_FULL && post_application(&c, apps, &a) == 202)
		apps++;
	assert_true(apps < MAX_BEFORE_FULL);
	assert_int_equal(a.status, 429);
	assert_int_equal(
	    tu_sql_int(s.db, "SELECT count(*) FROM applications"), apps);
	/* Reads go on: health, the catalog, orders, applications. */
	assert_int_equal(get(&c, "/"), 200);
	assert_int_equal(get(&c, "/advertisers?editor_id=1"), 200);
	assert_int_equal(get(&c, "/advertisers/2?editor_id=1"), 200);
	assert_int_equal(get(&c, "/applications"), 200);
	/* An acked order posted again is answered from what is stored. */
	assert_int_equal(post_order(&c, 0, &a), 200);
	check_orders_once(&s, next, refused);

	/* Room returns (no restart): the refused orders are retried and
	 * acked, new ones too, and applications are accepted again. */
	assert_int_equal(tu_sql_exec(s.db, "DROP TABLE filler"), 0);
	for (long i = 0; i < next; i++)
		if (refused[i])
			assert_int_equal(post_order(&c, i, &a), 201);
	for (long i = next; i < next + NEW_AFTER_ROOM; i++)
		assert_int_equal(post_order(&c, i, &a), 201);
	for (long k = apps; k < apps + 10; k++)
		assert_int_equal(post_application(&c, k, &a), 202);
	check_orders_once(&s, next + NEW_AFTER_ROOM, NULL);
	/* Those accepted while full too: their reviews, refused while full,
	 * are retried until they are written. */
	approved = tu_sql_wait(s.db,
	    "SELECT count(*) FROM applications WHERE status = 'approved'",
	    apps + 10, 30000);
	if (approved != apps + 10)
		fs_stack_explain(&s, "the applications are not all approved");
	assert_int_equal(approved, apps + 10);
	assert_int_equal(
	    tu_sql_int(s.db, "SELECT count(*) FROM applications"), apps + 10);
	printf("faults full disk: %ld pages + %d of room; acked %ld orders and "
	       "%ld applications, then refused with %d; reads 200; after room "
	       "returned %d orders and 10 applications acked, all approved; "
	       "lost 0, duplicated 0\n",
	    pages, ROOM_PAGES, acked, apps, full_status,
	    (int)(refused_n + NEW_AFTER_ROOM));
	fs_conn_fini(&c);
	fs_stack_stop(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_a_full_disk_refuses_writes_serves_reads_and_recovers),
	};

	return (cmocka_run_group_tests_name("faults_disk", tests, NULL, NULL));
}
