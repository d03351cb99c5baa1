/*
 * test_order_plans.c - every order list statement seeks its index (issue
 * 15, schema step 9): a page of GET /orders costs O(page) whatever the
 * filter, and a change to a statement, an index or the planner's view of
 * the data that brings back a full scan (or a sort of every matching row)
 * fails here, not in a benchmark at 1,000,000 orders.
 *
 * The statements are the store's own (its statement tables), picked by
 * their text: every "SELECT ... FROM orders WHERE ... seq > ... ORDER BY
 * seq LIMIT" is a list statement, and the columns it filters on name the
 * index it must use. Each is explained on a real database holding orders
 * of editors 2-6, advertisers 3-24, pending and approved, for editor 1,
 * advertiser 2 and declined, which hold none: a plan that walks the table
 * reads every row for an empty page. SQLite: EXPLAIN QUERY PLAN before
 * and after ANALYZE (the server runs none; an operator may), each
 * combination on exactly its index. PostgreSQL (test_order_plans_pg):
 * EXPLAIN EXECUTE of the prepared statement after ANALYZE with a custom
 * plan, an index of the filter's columns, never the primary key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "aff_arena.h"
#include "aff_err.h"
#include "postgres/store_pg_private.h"
#include "sqlite/store_sqlite_private.h"
#include "store.h"
#include "testutil.h"

#define N_ORDERS 600
#define PLAN_MAX 4096

/* The filters of a list statement, as order_list's mask. */
enum { F_EDITOR = 1, F_ADVERTISER = 2, F_STATUS = 4, F_MISMATCH = 8 };

/* The index each filter combination must seek (schema step 9; the
 * commission_mismatch lists, step 12's partial indexes). On SQLite, a
 * list by editor and/or advertiser with no status is a merge of the three
 * statuses' lists (schema step 15), each arm on the status index of its
 * filter; PostgreSQL keeps an index of their own (checked by prefix). */
static const char *const want_index[16] = {
	[0] = NULL, /* the table itself, by seq (the backend's primary key) */
	[F_EDITOR] = "orders_by_editor_status",
	[F_ADVERTISER] = "orders_by_advertiser_status",
	[F_EDITOR | F_ADVERTISER] = "orders_by_editor_advertiser_status",
	[F_STATUS] = "orders_by_status",
	[F_EDITOR | F_STATUS] = "orders_by_editor_status",
	[F_ADVERTISER | F_STATUS] = "orders_by_advertiser_status",
	[F_EDITOR | F_ADVERTISER | F_STATUS] =
	    "orders_by_editor_advertiser_status",
	[F_MISMATCH] = "orders_mismatch",
	[F_MISMATCH | F_EDITOR] = "orders_mismatch_by_editor",
	[F_MISMATCH | F_ADVERTISER] = "orders_mismatch_by_advertiser",
	[F_MISMATCH | F_EDITOR | F_ADVERTISER] =
	    "orders_mismatch_by_editor_advertiser",
	[F_MISMATCH | F_STATUS] = "orders_mismatch_by_status",
	[F_MISMATCH | F_EDITOR | F_STATUS] = "orders_mismatch_by_editor_status",
	[F_MISMATCH | F_ADVERTISER | F_STATUS] =
	    "orders_mismatch_by_advertiser_status",
	[F_MISMATCH | F_EDITOR | F_ADVERTISER | F_STATUS] =
	    "orders_mismatch_by_editor_advertiser_status",
};

/* -1 when sql is not an order list statement, else its filter mask. */
static int
list_mask(const char *sql)
{
	const char *from = strstr(sql, " FROM orders WHERE "), *end;
	char where[1024];
	int mask = 0, merge;

	if (strncmp(sql, "SELECT ", 7) != 0 || from == NULL ||
	    strstr(from, "seq > ") == NULL ||
	    strstr(from, " ORDER BY seq LIMIT ") == NULL)
		return (-1);
	/* A merge's filters are its first arm's (the next arm's columns
	 * would name them all). */
	if (!(merge = (end = strstr(from, " UNION ALL ")) != NULL))
		end = from + strlen(from);
	snprintf(where, sizeof(where), "%.*s", (int)(end - from), from);
	/* By the column's name alone, so that a filter rewritten around its
	 * column ("editor_id + 0 = ?") still counts, and is caught. */
	if (strstr(where, "editor_id") != NULL)
		mask |= F_EDITOR;
	if (strstr(where, "advertiser_id") != NULL)
		mask |= F_ADVERTISER;
	/* A merge over the statuses names them as constants: no filter. */
	if (strstr(where, "status") != NULL && !merge)
		mask |= F_STATUS;
	if (strstr(where, "expected_commission_cents") != NULL)
		mask |= F_MISMATCH;
	return (mask);
}

/* Orders of editors 2-6, advertisers 3-24, pending or approved, written
 * through the store as the order writer writes them. */
static void
fill_orders(const char *db)
{
	static const char *const status[] = { "pending", "approved" };
	store *s;
	aff_arena a;
	char id[32];

	assert_int_equal(store_open(db, &s), AFF_OK);
	aff_arena_init(&a);
	assert_int_equal(s->ops->batch_begin(s), AFF_OK);
	for (int i = 0; i < N_ORDERS; i++) {
		struct store_order_in in = {
			.order_id = id,
			.advertiser_id = 3 + i % 22,
			.editor_id = 2 + i % 5,
			.amount_cents = 1000 + i,
			.commission_cents = 100,
			.currency = "", /* the advertiser's own */
			.status = status[i % 2],
		};
		Affiliate__V1__Order *o;
		enum store_order_outcome oc;

		snprintf(id, sizeof(id), "plan-%d", i);
		assert_int_equal(s->ops->order_put(s, &in, &a, &o, &oc), AFF_OK);
		assert_int_equal(oc, STORE_ORDER_CREATED);
	}
	assert_int_equal(s->ops->batch_end(s, AFF_OK), AFF_OK);
	aff_arena_fini(&a);
	store_close(s);
}

/* Fails the test unless plan (one line per plan row) seeks the index of
 * mask and neither scans the table nor sorts. */
static void
check_plan(int pg, const char *sql, int mask, const char *when,
    const char *plan)
{
	char want[128];
	const char *bad[] = { pg ? "Seq Scan" : "SCAN orders",
		pg ? "Sort" : "TEMP B-TREE", pg ? "Bitmap" : "AUTOMATIC" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strstr(plan, bad[i]) != NULL)
			fail_msg("%s: '%s' (%s) plans %s:\n%s", when, sql, bad[i],
			    "a full scan or a sort", plan);
	if (want_index[mask] == NULL)
		snprintf(want, sizeof(want), "%s",
		    pg ? "Index Scan using orders_pkey on orders"
		       : "SEARCH orders USING INTEGER PRIMARY KEY (rowid>?)");
	else if (pg) {
		/* PostgreSQL picks among the indexes by cost: any index that
		 * leads with a filter column finds the absent value at once;
		 * the primary key would walk every row after the cursor. */
		if (strstr(plan, "using orders_pkey") != NULL ||
		    strstr(plan, mask & F_MISMATCH
		            ? "Index Scan using orders_mismatch"
		            : "Index Scan using orders_by_") == NULL)
			fail_msg("%s: '%s' does not seek an index of its filter:\n%s",
			    when, sql, plan);
		return;
	} else
		snprintf(want, sizeof(want), "USING INDEX %s (", want_index[mask]);
	/* A mismatch list may also seek its filters' own index (SQLite picks
	 * it after ANALYZE for three filters): a seek all the same, though
	 * it then skips the matching orders of that editor, advertiser and
	 * status to find a page of mismatches. */
	if ((mask & F_MISMATCH) && strstr(plan, want) == NULL &&
	    want_index[mask & ~F_MISMATCH] != NULL)
		snprintf(want, sizeof(want), "USING INDEX %s (",
		    want_index[mask & ~F_MISMATCH]);
	if (strstr(plan, want) == NULL)
		fail_msg("%s: '%s' does not seek %s:\n%s", when, sql, want, plan);
	/* A merge: each of its three arms seeks, and the merge of sorted
	 * arms needs no sort of its own. */
	if (strstr(sql, " UNION ALL ") != NULL) {
		int arms = 0;

		for (const char *p = plan; (p = strstr(p, want)) != NULL; p++)
			arms++;
		if (arms != 3 || strstr(plan, "MERGE (UNION ALL)") == NULL)
			fail_msg("%s: '%s' is not a merge of three seeks of %s:\n%s",
			    when, sql, want, plan);
	}
}

/* ---- SQLite ---- */

static void
sqlite_plan(sqlite3 *db, const char *sql, char *plan, size_t cap)
{
	char q[2048];
	sqlite3_stmt *st;
	size_t off = 0;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	plan[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW && off < cap)
		off += (size_t)snprintf(plan + off, cap - off, "%s\n",
		    (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
}

static int
sqlite_check_all(sqlite3 *db, const char *when)
{
	const struct store_sqlite_statements *t =
	    &store_sqlite_orders_statements;
	char plan[PLAN_MAX];
	int n = 0, mask;

	for (int i = 0; i < t->n; i++) {
		if ((mask = list_mask(t->sql[i])) < 0)
			continue;
		sqlite_plan(db, t->sql[i], plan, sizeof(plan));
		check_plan(0, t->sql[i], mask, when, plan);
		n++;
	}
	return (n);
}

static void
test_sqlite_order_lists_seek_their_index(const char *path)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* All sixteen combinations (with and without the mismatch filter),
	 * each once. */
	assert_int_equal(sqlite_check_all(db, "without ANALYZE"), 16);
	/* As in life, few orders' commissions differ from the programme's
	 * (1 in 50): the statistics then show the partial index small. */
	assert_int_equal(sqlite3_exec(db,
	                     "UPDATE orders SET commission_cents ="
	                     " expected_commission_cents WHERE seq % 50 <> 0",
	                     NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ANALYZE", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite_check_all(db, "after ANALYZE"), 16);
	sqlite3_close(db);
}

/* ---- PostgreSQL ---- */

static PGresult *
pg_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	return (r);
}

static int
pg_check_all(PGconn *c, const char *mode)
{
	const struct store_pg_statements *t = &store_pg_orders_statements;
	char q[2048], plan[PLAN_MAX], when[64];
	int n = 0, mask;

	snprintf(q, sizeof(q), "SET plan_cache_mode = %s", mode);
	PQclear(pg_ok(c, q));
	snprintf(when, sizeof(when), "after ANALYZE, %s", mode);
	for (int i = 0; i < t->n; i++) {
		char args[128];
		size_t off = 0;
		PGresult *r;

		if ((mask = list_mask(t->sql[i])) < 0)
			continue;
		/* $1 the cursor, $2 the limit, then the filters in mask order. */
		off += (size_t)snprintf(args, sizeof(args), "0, 10");
		if (mask & F_EDITOR)
			off += (size_t)snprintf(args + off, sizeof(args) - off, ", 1");
		if (mask & F_ADVERTISER)
			off += (size_t)snprintf(args + off, sizeof(args) - off, ", 2");
		if (mask & F_STATUS)
			snprintf(args + off, sizeof(args) - off, ", 'declined'");
		snprintf(q, sizeof(q), "PREPARE plan%d AS %s", i, t->sql[i]);
		PQclear(pg_ok(c, q));
		snprintf(q, sizeof(q), "EXPLAIN EXECUTE plan%d (%s)", i, args);
		r = pg_ok(c, q);
		off = 0;
		plan[0] = '\0';
		for (int row = 0; row < PQntuples(r) && off < sizeof(plan); row++)
			off += (size_t)snprintf(plan + off, sizeof(plan) - off,
			    "%s\n", PQgetvalue(r, row, 0));
		PQclear(r);
		snprintf(q, sizeof(q), "DEALLOCATE plan%d", i);
		PQclear(pg_ok(c, q));
		check_plan(1, t->sql[i], mask, when, plan);
		n++;
	}
	return (n);
}

/*
 * What the store itself runs: each of the sixteen lists eight times (a
 * prepared statement may switch to a generic plan after five) on the
 * store's own connection, then that session's pg_prepared_statements:
 * no list statement ever ran as a prepared one (neither plan counted),
 * so each ran unnamed, planned with its values, the plan explained
 * above with force_custom_plan.
 */
static void
test_pg_store_plans_lists_per_call(const char *uri)
{
	const struct store_pg_statements *t = &store_pg_orders_statements;
	static const char *const status[] = { NULL, "declined" };
	store *s;
	aff_arena a;
	PGresult *r;
	int lists = 0;

	assert_int_equal(store_open(uri, &s), AFF_OK);
	aff_arena_init(&a);
	for (int mask = 0; mask < 16; mask++)
		for (int k = 0; k < 8; k++) {
			struct store_order_query q = {
				.editor_id = mask & F_EDITOR ? 1 : 0,
				.advertiser_id = mask & F_ADVERTISER ? 2 : 0,
				.status = status[(mask & F_STATUS) != 0],
				.commission_mismatch = (mask & F_MISMATCH) != 0,
				.limit = 10,
			};
			Affiliate__V1__Order **o;
			size_t n;
			int64_t next;

			assert_int_equal(s->ops->order_list(s, &q, &a, &o, &n,
			                     &next),
			    AFF_OK);
		}
	r = PQexec(PG_STORE(s)->conn,
	    "SELECT name, generic_plans + custom_plans"
	    " FROM pg_prepared_statements");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	for (int row = 0; row < PQntuples(r); row++) {
		int d, i;

		if (sscanf(PQgetvalue(r, row, 0), "s%d_%d", &d, &i) != 2 ||
		    d != PQ_ORDERS)
			continue;
		if (list_mask(t->sql[i]) >= 0) {
			if (strcmp(PQgetvalue(r, row, 1), "0") != 0)
				fail_msg("'%s' ran prepared %s times",
				    t->sql[i], PQgetvalue(r, row, 1));
			lists++;
		}
	}
	assert_int_equal(lists, 16);
	PQclear(r);
	aff_arena_fini(&a);
	store_close(s);
}

static void
test_pg_order_lists_seek_their_index(const char *uri)
{
	PGconn *c = PQconnectdb(uri);

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(pg_ok(c, "ANALYZE orders"));
	/* Custom plans only: a generic plan (what a prepared statement may
	 * switch to after five runs) estimates a filter's rows as the
	 * column's average and walks the primary key for editor, advertiser,
	 * status, editor+status and advertiser+status: the store plans them
	 * per call (checked next). */
	assert_int_equal(pg_check_all(c, "force_custom_plan"), 16);
	PQfinish(c);
	test_pg_store_plans_lists_per_call(uri);
}

static void
test_every_order_list_filter_seeks_its_index(void **state)
{
	char *dir = tu_tmpdir(), db[512];

	(void)state;
	assert_int_equal(tu_db_new(dir, db, sizeof(db)), 0);
	fill_orders(db);
	if (tu_backend_pg())
		test_pg_order_lists_seek_their_index(db);
	else
		test_sqlite_order_lists_seek_their_index(db);
	tu_db_free(db);
	tu_rmtree(dir);
	free(dir);
}

/*
 * What the lists return, not only how: every filter combination paged 7
 * at a time through the store gives exactly the orders, in seq order, of
 * one query of the same filter with no index tricks, over orders of all
 * three statuses. SQLite's lists with no status are merges of three
 * (schema step 15); a merge that lost a status, repeated a row or broke
 * the seq order across a page fails here.
 */
static void
test_sqlite_lists_page_exactly_the_matching_orders(void **state)
{
	char *dir = tu_tmpdir(), db[512];
	sqlite3 *sdb;
	store *s;

	(void)state;
	if (tu_backend_pg()) {
		free(dir);
		skip();
	}
	assert_int_equal(tu_db_new(dir, db, sizeof(db)), 0);
	fill_orders(db);
	assert_int_equal(sqlite3_open(db, &sdb), SQLITE_OK);
	/* A third of them declined, mismatches here and there. */
	assert_int_equal(sqlite3_exec(sdb,
	                     "UPDATE orders SET status = 'declined'"
	                     " WHERE seq % 3 = 0;"
	                     " UPDATE orders SET commission_cents ="
	                     " expected_commission_cents WHERE seq % 2 = 0",
	                     NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(store_open(db, &s), AFF_OK);
	for (int mask = 0; mask < 16; mask++) {
		struct store_order_query q = {
			.editor_id = mask & F_EDITOR ? 4 : 0,
			.advertiser_id = mask & F_ADVERTISER ? 5 : 0,
			.status = mask & F_STATUS ? "declined" : NULL,
			.commission_mismatch = (mask & F_MISMATCH) != 0,
			.limit = 7,
		};
		char sql[512], want[16384] = "", got[16384] = "";
		size_t wl = 0, gl = 0;
		sqlite3_stmt *st;
		aff_arena a;

		snprintf(sql, sizeof(sql),
		    "SELECT order_id FROM orders WHERE 1%s%s%s%s ORDER BY seq",
		    mask & F_EDITOR ? " AND +editor_id = 4" : "",
		    mask & F_ADVERTISER ? " AND +advertiser_id = 5" : "",
		    mask & F_STATUS ? " AND +status = 'declined'" : "",
		    mask & F_MISMATCH
		        ? " AND +commission_cents <> expected_commission_cents"
		        : "");
		assert_int_equal(sqlite3_prepare_v2(sdb, sql, -1, &st, NULL),
		    SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW && wl < sizeof(want))
			wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s ",
			    (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		aff_arena_init(&a);
		do {
			Affiliate__V1__Order **o;
			size_t n;
			int64_t next;

			assert_int_equal(s->ops->order_list(s, &q, &a, &o, &n, &next),
			    AFF_OK);
			assert_true(n <= 7);
			for (size_t i = 0; i < n && gl < sizeof(got); i++)
				gl += (size_t)snprintf(got + gl, sizeof(got) - gl, "%s ",
				    o[i]->order_id);
			q.after = next;
		} while (q.after != 0);
		aff_arena_fini(&a);
		/* Each filter matches some orders, so an empty list fails. */
		assert_true(wl > 0);
		if (strcmp(want, got) != 0)
			fail_msg("mask %d (%s): the store listed\n%s\nthe query\n%s",
			    mask, sql, got, want);
	}
	store_close(s);
	sqlite3_close(sdb);
	tu_db_free(db);
	tu_rmtree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_order_list_filter_seeks_its_index),
		cmocka_unit_test(
		    test_sqlite_lists_page_exactly_the_matching_orders),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
