/*
 * test_store_catalog.c - issue 18's store contract on both backends (a
 * SQLite file, and a real PostgreSQL server this test starts): catalog
 * writes (create, update what is given, eligibility once) each moving
 * the catalog version; a new order's currency from its advertiser, and
 * another refused unless allowed; the expected commission rounded half
 * up at arrival; the commission_mismatch list and its plan (a partial
 * index, no scan, no sort); one order and one application with their
 * history. The same body runs on each backend.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "aff_err.h"
#include "aff_log.h"
#include "store.h"
#include "store_backends.h"
#include "testutil.h"

#define OPS (f->s->ops)

static int64_t
version(struct sb_fixture *f)
{
	const char *id;
	int64_t v;

	assert_int_equal(OPS->catalog_version(f->s, &id, &v), AFF_OK);
	return (v);
}

static void
test_catalog_writes_change_what_is_given_and_move_the_version(void **state)
{
	struct sb_fixture *f = *state;
	struct store_advertiser_in in = { .set = STORE_ADV_ALL,
		.name = "Book Nook", .category = "books", .currency = "GBP",
		.commission_rate_bps = 825, .status = "active", .website = "",
		.cookie_days = 30 };
	struct store_editor_in ed = { .name = "New Blog", .website = "" };
	Affiliate__V1__Advertiser *adv;
	Affiliate__V1__Editor *e;
	int64_t v = version(f);

	assert_int_equal(OPS->advertiser_create(f->s, &in, &f->a, &adv), AFF_OK);
	assert_int_equal(adv->id, STORE_SEED_ADVERTISERS + 1);
	assert_string_equal(adv->currency, "GBP");
	assert_false(adv->allow_other_currencies);
	assert_true(version(f) > v);
	v = version(f);
	/* Only the rate and the flag change. */
	in = (struct store_advertiser_in){
		.set = STORE_ADV_RATE | STORE_ADV_OTHER_CURRENCIES,
		.commission_rate_bps = 900, .allow_other_currencies = 1 };
	assert_int_equal(
	    OPS->advertiser_update(f->s, adv->id, &in, &f->a, &adv), AFF_OK);
	assert_string_equal(adv->name, "Book Nook");
	assert_string_equal(adv->currency, "GBP");
	assert_int_equal(adv->commission_rate_bps, 900);
	assert_int_equal(adv->cookie_days, 30);
	assert_true(adv->allow_other_currencies);
	assert_true(version(f) > v);
	assert_int_equal(OPS->advertiser_update(f->s, 999, &in, &f->a, &adv),
	    AFF_NOT_FOUND);

	assert_int_equal(OPS->editor_create(f->s, &ed, &f->a, &e), AFF_OK);
	assert_int_equal(e->id, STORE_SEED_EDITORS + 1);
	ed = (struct store_editor_in){ .website = "https://b.example" };
	assert_int_equal(OPS->editor_update(f->s, e->id, &ed, &f->a, &e), AFF_OK);
	assert_string_equal(e->name, "New Blog");
	assert_string_equal(e->website, "https://b.example");
	assert_int_equal(OPS->editor_update(f->s, 99, &ed, &f->a, &e),
	    AFF_NOT_FOUND);

	v = version(f);
	assert_int_equal(OPS->eligible(f->s, 7, 25), AFF_PERMISSION_DENIED);
	assert_int_equal(OPS->eligibility_set(f->s, 7, 25, 1), AFF_OK);
	assert_int_equal(OPS->eligible(f->s, 7, 25), AFF_OK);
	assert_true(version(f) > v);
	assert_int_equal(OPS->eligibility_set(f->s, 7, 25, 1), AFF_OK);
	assert_int_equal(OPS->eligibility_set(f->s, 7, 25, 0), AFF_OK);
	assert_int_equal(OPS->eligible(f->s, 7, 25), AFF_PERMISSION_DENIED);
	assert_int_equal(OPS->eligibility_set(f->s, 7, 99, 1), AFF_NOT_FOUND);
	assert_int_equal(OPS->eligibility_set(f->s, 99, 1, 1), AFF_NOT_FOUND);
}

static int
put(struct sb_fixture *f, const char *id, int64_t ad, int64_t amount,
    int64_t commission, const char *currency, const char *status,
    Affiliate__V1__Order **out, enum store_order_outcome *oc)
{
	struct store_order_in o = { .order_id = id, .advertiser_id = ad,
		.editor_id = 1, .amount_cents = amount,
		.commission_cents = commission, .currency = currency,
		.status = status };

	*out = NULL;
	return (OPS->order_put(f->s, &o, &f->a, out, oc));
}

static void
test_an_orders_currency_and_expected_commission_come_from_its_advertiser(
    void **state)
{
	struct sb_fixture *f = *state;
	struct store_advertiser_in allow = {
		.set = STORE_ADV_OTHER_CURRENCIES, .allow_other_currencies = 1 };
	enum store_order_outcome oc;
	Affiliate__V1__Order *o;
	Affiliate__V1__Advertiser *adv;

	/* Advertiser 2: CHF, 650 bps. 49.99 * 6.5 % = 3.24935 -> 3.25. */
	assert_int_equal(put(f, "c-1", 2, 4999, 400, "", NULL, &o, &oc), AFF_OK);
	assert_int_equal(oc, STORE_ORDER_CREATED);
	assert_string_equal(o->currency, "CHF");
	assert_int_equal(o->expected_commission_cents, 325);
	assert_int_equal(store_expected_commission(4999, 650), 325);
	/* Half a cent goes up, less goes down: 0.50 cent at 10 bps of
	 * 5.00; 0.499 cent at 998 bps of 0.05. */
	assert_int_equal(store_expected_commission(500, 10), 1);
	assert_int_equal(store_expected_commission(5, 998), 0);
	assert_int_equal(store_expected_commission(100000000000000LL, 10000),
	    100000000000000LL);
	assert_int_equal(put(f, "c-2", 2, 10000, 650, "CHF", NULL, &o, &oc),
	    AFF_OK);
	assert_int_equal(o->expected_commission_cents, 650);
	/* Another currency: refused, nothing stored, the programme's named. */
	assert_int_equal(put(f, "c-3", 2, 1000, 10, "EUR", NULL, &o, &oc),
	    AFF_FAILED_PRECONDITION);
	assert_int_equal(oc, STORE_ORDER_WRONG_CURRENCY);
	assert_string_equal(o->currency, "CHF");
	assert_int_equal(sb_sql_int(f->db,
	                     "SELECT count(*) FROM orders WHERE order_id = 'c-3'"),
	    0);
	assert_int_equal(put(f, "c-3", 99, 1000, 10, "EUR", NULL, &o, &oc),
	    AFF_NOT_FOUND);
	assert_int_equal(oc, STORE_ORDER_NO_ADVERTISER);
	assert_int_equal(
	    OPS->advertiser_update(f->s, 2, &allow, &f->a, &adv), AFF_OK);
	assert_int_equal(put(f, "c-3", 2, 1000, 10, "EUR", NULL, &o, &oc),
	    AFF_OK);
	assert_string_equal(o->currency, "EUR");
	/* A resend without a currency is the same order; with another, not. */
	assert_int_equal(put(f, "c-1", 2, 4999, 400, "", NULL, &o, &oc), AFF_OK);
	assert_int_equal(oc, STORE_ORDER_DUPLICATE);
	assert_int_equal(put(f, "c-1", 2, 4999, 400, "EUR", NULL, &o, &oc),
	    AFF_ALREADY_EXISTS);
	/* New orders may arrive decided (README, Orders: Lifecycle). */
	assert_int_equal(put(f, "c-4", 5, 1000, 0, "", "declined", &o, &oc),
	    AFF_OK);
	assert_string_equal(o->status, "declined");
}

static void
test_one_order_and_one_application_with_their_history(void **state)
{
	struct sb_fixture *f = *state;
	enum store_order_outcome oc;
	Affiliate__V1__Order *o;
	Affiliate__V1__Application *app;

	assert_int_equal(put(f, "h-1", 2, 100, 6, "", NULL, &o, &oc), AFF_OK);
	assert_int_equal(put(f, "h-1", 2, 100, 6, "", "approved", &o, &oc),
	    AFF_OK);
	assert_int_equal(OPS->order_get(f->s, "h-1", &f->a, &o), AFF_OK);
	assert_string_equal(o->status, "approved");
	assert_int_equal(o->n_events, 2);
	assert_string_equal(o->events[0]->status, "pending");
	assert_string_equal(o->events[1]->status, "approved");
	assert_int_equal(strlen(o->events[1]->at), 20);
	assert_int_equal(OPS->order_get(f->s, "nope", &f->a, &o), AFF_NOT_FOUND);

	app = sb_app_new(f, 1, 2, "r-1", AFF_OK);
	assert_int_equal(OPS->application_events(f->s, app, &f->a), AFF_OK);
	assert_int_equal(app->n_events, 1);
	assert_string_equal(app->events[0]->status, "pending");
}

/* Orders o-0..o-(n-1), every tenth with a commission other than its
 * advertiser's rate gives. */
static void
put_many(struct sb_fixture *f, int n)
{
	enum store_order_outcome oc;
	Affiliate__V1__Order *o;
	char id[16];

	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "o-%d", i);
		/* Advertiser 1: 800 bps; 10000 cents expect 800. */
		assert_int_equal(put(f, id, 1, 10000, i % 10 == 0 ? 799 : 800,
		                     "", i % 20 == 0 ? "approved" : NULL, &o, &oc),
		    AFF_OK);
	}
}

static void
test_the_mismatch_list_pages_over_mismatching_orders_only(void **state)
{
	struct sb_fixture *f = *state;
	struct store_order_query q = { .commission_mismatch = 1, .limit = 3 };
	Affiliate__V1__Order **v;
	int64_t next;
	size_t n, total = 0;

	put_many(f, 60);
	do {
		assert_int_equal(OPS->order_list(f->s, &q, &f->a, &v, &n, &next),
		    AFF_OK);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(v[i]->commission_cents, 799);
			assert_int_equal(v[i]->expected_commission_cents, 800);
		}
		total += n;
		q.after = next;
	} while (next != 0);
	assert_int_equal(total, 6);
	/* With the other filters: editor 1, advertiser 1, approved. */
	q = (struct store_order_query){ .commission_mismatch = 1, .limit = 100,
		.editor_id = 1, .advertiser_id = 1, .status = "approved" };
	assert_int_equal(OPS->order_list(f->s, &q, &f->a, &v, &n, &next), AFF_OK);
	assert_int_equal(n, 3); /* o-0, o-20, o-40 */
	q.editor_id = 2;
	assert_int_equal(OPS->order_list(f->s, &q, &f->a, &v, &n, &next), AFF_OK);
	assert_int_equal(n, 0);
}

/*
 * The plan of a mismatch page on SQLite: a search of a partial index of
 * mismatching orders, no scan of orders, no sort (the statements'
 * WHERE, as the store writes it; the query planner uses a partial index
 * only when the query's WHERE implies the index's).
 */
static void
test_a_mismatch_page_searches_a_partial_index(void **state)
{
	static const char *const wheres[] = {
		"", "editor_id = 1 AND ", "advertiser_id = 1 AND ",
		"editor_id = 1 AND advertiser_id = 1 AND ", "status = 'x' AND ",
		"editor_id = 1 AND status = 'x' AND ",
		"advertiser_id = 1 AND status = 'x' AND ",
		"editor_id = 1 AND advertiser_id = 1 AND status = 'x' AND ",
	};
	struct sb_fixture *f = *state;
	sqlite3 *db;

	if (sb_cur_pg)
		skip();
	put_many(f, 40);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	sqlite3_exec(db, "ANALYZE", NULL, NULL, NULL);
	for (size_t i = 0; i < sizeof(wheres) / sizeof(wheres[0]); i++) {
		char sql[512], plan[1024] = "";
		sqlite3_stmt *st;

		snprintf(sql, sizeof(sql),
		    "EXPLAIN QUERY PLAN SELECT order_id FROM orders WHERE %s"
		    "commission_cents <> expected_commission_cents AND seq > 0"
		    " ORDER BY seq LIMIT 10",
		    wheres[i]);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
		    SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			size_t k = strlen(plan);
			snprintf(plan + k, sizeof(plan) - k, "%s; ",
			    (const char *)sqlite3_column_text(st, 3));
		}
		sqlite3_finalize(st);
		if (strstr(plan, "USING INDEX orders_mismatch") == NULL ||
		    strstr(plan, "SCAN") != NULL || strstr(plan, "TEMP B-TREE") != NULL)
			fail_msg("%s: %s", wheres[i], plan);
	}
	sqlite3_close(db);
}

#define T(fn) SB_TEST(fn)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_catalog_writes_change_what_is_given_and_move_the_version),
		T(test_an_orders_currency_and_expected_commission_come_from_its_advertiser),
		T(test_one_order_and_one_application_with_their_history),
		T(test_the_mismatch_list_pages_over_mismatching_orders_only),
		T(test_a_mismatch_page_searches_a_partial_index),
	};
	aff_log_set_level(AFF_LOG_ERROR);
	return (sb_run("store", tests, sizeof(tests) / sizeof(tests[0])));
}
