/*
 * test_store_earnings.c - issue 18's earnings aggregates (schema step 14)
 * on both backends (a SQLite file, and a real PostgreSQL server this test
 * starts), by the same test bodies:
 *   - after random orders (editors, advertisers, currencies, days, hours,
 *     some with a commission off the expected one) and random moves
 *     (pending -> approved | declined, in a group-commit batch too), the
 *     three aggregate tables (day, month, hour) equal a GROUP BY over the
 *     orders table, exactly;
 *   - store_ops.earnings answers each status and currency to the cent,
 *     by advertiser, by day (UTC days, and local days of a fixed offset
 *     from the hourly table) and by status, filtered and scoped; over
 *     whole months from the monthly table as from the days;
 *   - a database whose orders were stored before step 14 is summed by the
 *     step when it is reopened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aff_err.h"
#include "aff_log.h"
#include "store.h"
#include "store_backends.h"
#include "testutil.h"

#define OPS (f->s->ops)

/* The buckets a GROUP BY over the orders gives, and the table's own sums
 * (its PostgreSQL shards added up), each minus the other: 0 rows when
 * they are equal. bucket: the table's unit from created_at. */
static long long
aggregate_diff(struct sb_fixture *f, const char *table, const char *col,
    const char *bucket)
{
	char sql[4096], from_orders[900], from_table[700];

	snprintf(from_orders, sizeof(from_orders),
	    "SELECT editor_id, %s, advertiser_id, currency,"
	    " status, count(*), sum(amount_cents), sum(commission_cents),"
	    " sum(CASE WHEN commission_cents <> expected_commission_cents"
	    " THEN 1 ELSE 0 END) FROM orders GROUP BY 1, 2, 3, 4, 5",
	    bucket);
	snprintf(from_table, sizeof(from_table),
	    "SELECT editor_id, %s, advertiser_id, currency, status,"
	    " sum(orders), sum(amount_cents), sum(commission_cents),"
	    " sum(mismatched) FROM %s GROUP BY 1, 2, 3, 4, 5"
	    " HAVING sum(orders) <> 0",
	    col, table);
	snprintf(sql, sizeof(sql),
	    "SELECT (SELECT count(*) FROM (%s EXCEPT %s) x)"
	    " + (SELECT count(*) FROM (%s EXCEPT %s) y)",
	    from_orders, from_table, from_table, from_orders);
	return (sb_sql_int(f->db, sql));
}

static void
assert_aggregates_match(struct sb_fixture *f)
{
	assert_int_equal(
	    aggregate_diff(f, "earnings_daily", "day", "created_at / 86400"),
	    0);
	assert_int_equal(
	    aggregate_diff(f, "earnings_hourly", "hour", "created_at / 3600"),
	    0);
	/* The UTC month, computed apart from the schema's expressions
	 * (date() on SQLite, extract() on PostgreSQL). */
	assert_int_equal(
	    aggregate_diff(f, "earnings_monthly", "month",
	        sb_cur_pg ? "(extract(year FROM to_timestamp(created_at)"
	                 " AT TIME ZONE 'UTC') * 12 + extract(month"
	                 " FROM to_timestamp(created_at) AT TIME"
	                 " ZONE 'UTC') - 1)::bigint"
	               : "CAST(substr(date(created_at,"
	                 " 'unixepoch'), 1, 4) AS INTEGER) * 12 +"
	                 " CAST(substr(date(created_at,"
	                 " 'unixepoch'), 6, 2) AS INTEGER) - 1"),
	    0);
	/* Not vacuous: the tables hold the orders. */
	assert_int_equal(
	    sb_sql_int(f->db, "SELECT sum(orders) FROM earnings_daily"),
	    sb_sql_int(f->db, "SELECT count(*) FROM orders"));
	assert_int_equal(
	    sb_sql_int(f->db, "SELECT sum(orders) FROM earnings_monthly"),
	    sb_sql_int(f->db, "SELECT count(*) FROM orders"));
}

static void
put(struct sb_fixture *f, const char *id, int64_t adv, int64_t ed,
    int64_t amount, int64_t commission, const char *currency,
    const char *status, enum store_order_outcome want)
{
	struct store_order_in in = { .order_id = id,
		.advertiser_id = adv,
		.editor_id = ed,
		.amount_cents = amount,
		.commission_cents = commission,
		.currency = currency,
		.status = status };
	Affiliate__V1__Order *o;
	enum store_order_outcome oc;

	assert_int_equal(OPS->order_put(f->s, &in, &f->a, &o, &oc), AFF_OK);
	assert_int_equal(oc, want);
}

/* Moves an order's arrival to t (Unix seconds), as a clock would have:
 * an update of a bucketed column, which the triggers follow too. */
static void
set_created(struct sb_fixture *f, const char *id, long long t)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	    "UPDATE orders SET created_at = %lld WHERE order_id = '%s'", t, id);
	sb_sql(f->db, sql);
}

/* Advertisers with several currencies: 1 EUR (and USD: allowed below),
 * 2 CHF, 6 GBP, 8 USD. */
static const int64_t advs[] = { 1, 2, 6, 8 };

static void
allow_usd_at_1(struct sb_fixture *f)
{
	struct store_advertiser_in in = { .set = STORE_ADV_OTHER_CURRENCIES,
		.allow_other_currencies = 1 };
	Affiliate__V1__Advertiser *adv;

	assert_int_equal(
	    OPS->advertiser_update(f->s, 1, &in, &f->a, &adv), AFF_OK);
}

static void
test_random_orders_and_moves_keep_the_aggregates_equal_to_a_group_by(
    void **state)
{
	struct sb_fixture *f = *state;
	static const char *const to[] = { "approved", "declined" };
	const int n = 240;
	char id[32];
	unsigned seed = 18;

	allow_usd_at_1(f);
	for (int i = 0; i < n; i++) {
		int64_t adv = advs[rand_r(&seed) % 4];
		int64_t amount = 100 + rand_r(&seed) % 100000;

		snprintf(id, sizeof(id), "agg-%d", i);
		put(f, id, adv, 1 + rand_r(&seed) % 3, amount,
		    rand_r(&seed) % 7 == 0 ? amount / 3 : amount / 20,
		    adv == 1 && rand_r(&seed) % 2 ? "USD" : NULL,
		    rand_r(&seed) % 5 == 0 ? to[rand_r(&seed) % 2] : NULL,
		    STORE_ORDER_CREATED);
	}
	/* Spread over 40 days, at any hour (one statement: an update of a
	 * bucketed column, which the triggers follow too). */
	sb_sql(f->db,
	    "UPDATE orders SET created_at = 1767225600"
	    " + seq * 7919 % 40 * 86400 + seq * 104729 % 86400");
	assert_aggregates_match(f);
	/* Moves, half of them in a group-commit batch (a savepoint each;
	 * one refused move back undoes itself alone). */
	assert_int_equal(OPS->batch_begin(f->s), AFF_OK);
	for (int i = 0; i < n; i += 2) {
		struct store_order_in in = { 0 };
		Affiliate__V1__Order *o;
		enum store_order_outcome oc;

		snprintf(id, sizeof(id), "agg-%d", i);
		assert_int_equal(OPS->order_get(f->s, id, &f->a, &o), AFF_OK);
		in = (struct store_order_in) { .order_id = id,
			.advertiser_id = o->advertiser_id,
			.editor_id = o->editor_id,
			.amount_cents = o->amount_cents,
			.commission_cents = o->commission_cents,
			.currency = o->currency,
			.status = strcmp(o->status, "pending") == 0
			    ? to[rand_r(&seed) % 2]
			    : "pending" };
		assert_int_equal(OPS->order_put(f->s, &in, &f->a, &o, &oc),
		    strcmp(in.status, "pending") == 0 ? AFF_FAILED_PRECONDITION
		                                      : AFF_OK);
		if (i == n / 2) {
			assert_int_equal(OPS->batch_end(f->s, AFF_OK), AFF_OK);
			assert_int_equal(OPS->batch_begin(f->s), AFF_OK);
		}
	}
	assert_int_equal(OPS->batch_end(f->s, AFF_OK), AFF_OK);
	/* And one at a time, outside a batch. */
	for (int i = 1; i < n; i += 6) {
		snprintf(id, sizeof(id), "agg-%d", i);
		{
			Affiliate__V1__Order *o;
			enum store_order_outcome oc;
			struct store_order_in in;

			assert_int_equal(
			    OPS->order_get(f->s, id, &f->a, &o), AFF_OK);
			if (strcmp(o->status, "pending") != 0)
				continue;
			in = (struct store_order_in) { .order_id = id,
				.advertiser_id = o->advertiser_id,
				.editor_id = o->editor_id,
				.amount_cents = o->amount_cents,
				.commission_cents = o->commission_cents,
				.status = "declined" };
			assert_int_equal(
			    OPS->order_put(f->s, &in, &f->a, &o, &oc), AFF_OK);
			assert_int_equal(oc, STORE_ORDER_MOVED);
		}
	}
	assert_aggregates_match(f);
	assert_true(sb_sql_int(f->db,
	                "SELECT count(*) FROM orders"
	                " WHERE status = 'declined'")
	    > 0);
	assert_true(sb_sql_int(f->db,
	                "SELECT count(DISTINCT currency)"
	                " FROM orders")
	    == 4);
	assert_true(sb_sql_int(f->db,
	                "SELECT sum(mismatched)"
	                " FROM earnings_daily")
	    > 0);
}

/* Finds the row (key, currency, status) of a report; NULL when none. */
static const struct store_earnings_row *
row(const struct store_earnings_row *v, size_t n, int64_t key,
    const char *currency, const char *status)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].key == key && strcmp(v[i].currency, currency) == 0
		    && strcmp(v[i].status, status) == 0)
			return (&v[i]);
	return (NULL);
}

static void
assert_row(const struct store_earnings_row *v, size_t n, int64_t key,
    const char *currency, const char *status, int64_t orders, int64_t amount,
    int64_t commission, int64_t mismatched)
{
	const struct store_earnings_row *r = row(v, n, key, currency, status);

	if (r == NULL)
		fail_msg("no row %lld %s %s", (long long)key, currency, status);
	assert_int_equal(r->orders, orders);
	assert_int_equal(r->amount_cents, amount);
	assert_int_equal(r->commission_cents, commission);
	assert_int_equal(r->mismatched, mismatched);
}

#define DAY0 20454 /* 2026-01-01 */
#define T0   (DAY0 * 86400LL)

static void
test_a_report_sums_each_status_and_currency_to_the_cent(void **state)
{
	struct sb_fixture *f = *state;
	struct store_earnings_query q = { .editor_id = 1,
		.group = STORE_EARNINGS_BY_ADVERTISER,
		.lo = DAY0,
		.hi = DAY0 + 31 };
	struct store_earnings_row *v;
	size_t n;

	allow_usd_at_1(f);
	/* Editor 1: advertiser 1 in EUR and USD, advertiser 2 in CHF. */
	put(f, "r1", 1, 1, 1001, 80, NULL, NULL, STORE_ORDER_CREATED);
	put(f, "r2", 1, 1, 2003, 100, NULL, NULL, STORE_ORDER_CREATED);
	put(f, "r3", 1, 1, 999, 99, "USD", NULL, STORE_ORDER_CREATED);
	put(f, "r4", 2, 1, 5000, 250, NULL, NULL, STORE_ORDER_CREATED);
	put(f, "r5", 1, 2, 7000, 350, NULL, NULL, STORE_ORDER_CREATED);
	set_created(f, "r1", T0 + 3600);                     /* 01-01 01:00Z */
	set_created(f, "r2", T0 + 86400 + 23 * 3600 + 1800); /* 01-02 23:30Z */
	set_created(f, "r3", T0 + 2 * 86400);                /* 01-03 00:00Z */
	set_created(f, "r4", T0 + 40 * 86400); /* 02-10: out of range */
	set_created(f, "r5", T0 + 3600);       /* editor 2 */
	put(f, "r2", 1, 1, 2003, 100, NULL, "approved", STORE_ORDER_MOVED);
	put(f, "r3", 1, 1, 999, 99, "USD", "declined", STORE_ORDER_MOVED);

	/* By advertiser: EUR and USD apart. Advertiser 1's rate is 8 %:
	 * r1's 1001 gives 80.08 -> 80, as reported (no mismatch); r2's 100
	 * is not 160, r3's 99 not 80. */
	assert_int_equal(OPS->earnings(f->s, &q, &f->a, &v, &n), AFF_OK);
	assert_int_equal(n, 3);
	assert_row(v, n, 1, "EUR", "approved", 1, 2003, 100, 1);
	assert_row(v, n, 1, "EUR", "pending", 1, 1001, 80, 0);
	assert_row(v, n, 1, "USD", "declined", 1, 999, 99, 1);
	/* Sorted by key, currency, status. */
	assert_string_equal(v[0].status, "approved");
	assert_string_equal(v[2].currency, "USD");
	/* A bucket emptied by a move (r2's pending one) is still read:
	 * at least one per row, and (PostgreSQL) a delta row per shard. */
	assert_true(v[0].buckets + v[1].buckets + v[2].buckets >= 4);

	/* By UTC day. */
	q.group = STORE_EARNINGS_BY_DAY;
	assert_int_equal(OPS->earnings(f->s, &q, &f->a, &v, &n), AFF_OK);
	assert_int_equal(n, 3);
	assert_row(v, n, DAY0, "EUR", "pending", 1, 1001, 80, 0);
	assert_row(v, n, DAY0 + 1, "EUR", "approved", 1, 2003, 100, 1);
	assert_row(v, n, DAY0 + 2, "USD", "declined", 1, 999, 99, 1);

	/* By local day at +01:00 (hourly buckets): r2 (23:30Z) is on
	 * 01-03 there, with r3; the range in hours. */
	q.hourly = 1;
	q.offset_h = 1;
	q.lo = (int64_t)DAY0 * 24 - 1;
	q.hi = (int64_t)(DAY0 + 31) * 24 - 1;
	assert_int_equal(OPS->earnings(f->s, &q, &f->a, &v, &n), AFF_OK);
	assert_int_equal(n, 3);
	assert_row(v, n, DAY0, "EUR", "pending", 1, 1001, 80, 0);
	assert_row(v, n, DAY0 + 2, "EUR", "approved", 1, 2003, 100, 1);
	assert_row(v, n, DAY0 + 2, "USD", "declined", 1, 999, 99, 1);
	/* At -02:00, r1 (01:00Z) is on 12-31, out of the range. */
	q.offset_h = -2;
	q.lo = (int64_t)DAY0 * 24 + 2;
	q.hi = (int64_t)(DAY0 + 31) * 24 + 2;
	assert_int_equal(OPS->earnings(f->s, &q, &f->a, &v, &n), AFF_OK);
	assert_int_equal(n, 2);
	assert_row(v, n, DAY0 + 1, "EUR", "approved", 1, 2003, 100, 1);
	assert_row(v, n, DAY0 + 1, "USD", "declined", 1, 999, 99, 1);

	/* By advertiser over whole months (January and February: r4 on
	 * 10 February counts) from the monthly sums, and the same range cut
	 * (from 2 January: January's days, February's month) answer as the
	 * days alone do. */
	{
		struct store_earnings_query d = { .editor_id = 1,
			.group = STORE_EARNINGS_BY_ADVERTISER,
			.lo = DAY0,
			.hi = DAY0 + 59 };
		struct store_earnings_query m = d;
		struct store_earnings_row *w;
		size_t k;

		m.monthly = 1;
		m.day_a = DAY0;
		m.day_b = DAY0 + 59;
		m.month_lo = 2026 * 12;
		m.month_hi = 2026 * 12 + 2;
		assert_int_equal(
		    OPS->earnings(f->s, &m, &f->a, &v, &n), AFF_OK);
		assert_int_equal(n, 4);
		assert_row(v, n, 2, "CHF", "pending", 1, 5000, 250, 1);
		assert_row(v, n, 1, "EUR", "pending", 1, 1001, 80, 0);
		assert_int_equal(
		    OPS->earnings(f->s, &d, &f->a, &w, &k), AFF_OK);
		assert_int_equal(k, n);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(v[i].key, w[i].key);
			assert_string_equal(v[i].currency, w[i].currency);
			assert_string_equal(v[i].status, w[i].status);
			assert_int_equal(v[i].orders, w[i].orders);
			assert_int_equal(v[i].amount_cents, w[i].amount_cents);
			assert_int_equal(
			    v[i].commission_cents, w[i].commission_cents);
		}
		/* From 2 January: r1 (1 January) out, the rest alike. */
		m.lo = d.lo = DAY0 + 1;
		m.day_a = DAY0 + 31;
		m.month_lo = 2026 * 12 + 1;
		assert_int_equal(
		    OPS->earnings(f->s, &m, &f->a, &v, &n), AFF_OK);
		assert_int_equal(n, 3);
		assert_null(row(v, n, 1, "EUR", "pending"));
		assert_row(v, n, 1, "EUR", "approved", 1, 2003, 100, 1);
		assert_row(v, n, 2, "CHF", "pending", 1, 5000, 250, 1);
		m.group = STORE_EARNINGS_BY_STATUS;
		assert_int_equal(
		    OPS->earnings(f->s, &m, &f->a, &v, &n), AFF_OK);
		assert_int_equal(n, 3);
		assert_string_equal(v[0].status, "approved");
		assert_row(v, n, 0, "CHF", "pending", 1, 5000, 250, 1);
	}

	/* By status, every editor (0), advertiser 1 only: sorted by
	 * status, then currency; editor 2's r5 counts. */
	q = (struct store_earnings_query) { .group = STORE_EARNINGS_BY_STATUS,
		.advertiser_id = 1,
		.lo = DAY0,
		.hi = DAY0 + 31 };
	assert_int_equal(OPS->earnings(f->s, &q, &f->a, &v, &n), AFF_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].status, "approved");
	assert_string_equal(v[1].status, "declined");
	assert_row(v, n, 0, "EUR", "pending", 2, 8001, 430, 1);
	/* An editor or advertiser that does not exist: no rows. */
	q.editor_id = 999;
	assert_int_equal(OPS->earnings(f->s, &q, &f->a, &v, &n), AFF_OK);
	assert_int_equal(n, 0);
	q.editor_id = 0;
	q.advertiser_id = 999;
	assert_int_equal(OPS->earnings(f->s, &q, &f->a, &v, &n), AFF_OK);
	assert_int_equal(n, 0);
}

static void
test_orders_stored_before_step_14_are_summed_when_reopened(void **state)
{
	struct sb_fixture *f = *state;
	char id[32];

	allow_usd_at_1(f);
	for (int i = 0; i < 30; i++) {
		snprintf(id, sizeof(id), "old-%d", i);
		put(f, id, advs[i % 4], 1 + i % 2, 1000 + i * 37, 50 + i % 3,
		    i % 5 == 0 && i % 4 == 0 ? "USD" : NULL,
		    i % 3 == 0 ? "approved" : NULL, STORE_ORDER_CREATED);
		set_created(f, id, T0 + i * 7200LL);
	}
	store_close(f->s);
	f->s = NULL;
	/* The database as step 13 left it: no aggregates, version 13. */
	if (sb_cur_pg) {
		sb_sql(f->db, "DROP FUNCTION orders_earnings() CASCADE");
		sb_sql(f->db, "DROP FUNCTION earnings_month(bigint)");
		sb_sql(f->db,
		    "DROP TABLE earnings_daily, earnings_hourly,"
		    " earnings_monthly");
		sb_sql(f->db, "UPDATE affiliate_schema SET version = 13");
	} else {
		sb_sql(f->db, "DROP TRIGGER orders_earnings_insert");
		sb_sql(f->db, "DROP TRIGGER orders_earnings_remove");
		sb_sql(f->db, "DROP TRIGGER orders_earnings_move");
		sb_sql(f->db, "DROP TABLE earnings_daily");
		sb_sql(f->db, "DROP TABLE earnings_hourly");
		sb_sql(f->db, "DROP TABLE earnings_monthly");
		sb_sql(f->db, "PRAGMA user_version = 13");
	}
	/* More orders and a move then, written by hand as step 13 did. */
	sb_sql(f->db,
	    "INSERT INTO orders (order_id, advertiser_id, editor_id,"
	    " amount_cents, commission_cents, currency, status,"
	    " created_at, updated_at, expected_commission_cents)"
	    " VALUES ('old-x', 6, 3, 12345, 617, 'GBP', 'declined',"
	    " 1767300000, 1767300000, 617)");
	sb_sql(f->db,
	    "UPDATE orders SET status = 'declined'"
	    " WHERE order_id = 'old-1'");
	assert_int_equal(store_open(f->db, &f->s), AFF_OK);
	assert_int_equal(sb_sql_int(f->db,
	                     sb_cur_pg ? "SELECT version FROM affiliate_schema"
	                            : "PRAGMA user_version"),
	    sb_cur_pg ? 14 : 15);
	assert_aggregates_match(f);
	assert_int_equal(sb_sql_int(f->db,
	                     "SELECT sum(orders) FROM"
	                     " earnings_daily"),
	    31);
	/* And the triggers are there again. */
	put(f, "new-1", 1, 1, 500, 25, NULL, NULL, STORE_ORDER_CREATED);
	put(f, "new-1", 1, 1, 500, 25, NULL, "approved", STORE_ORDER_MOVED);
	assert_aggregates_match(f);
}

#define T(fn) SB_TEST(fn)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_random_orders_and_moves_keep_the_aggregates_equal_to_a_group_by),
		T(test_a_report_sums_each_status_and_currency_to_the_cent),
		T(test_orders_stored_before_step_14_are_summed_when_reopened),
	};
	aff_log_set_level(AFF_LOG_ERROR);
	return (sb_run("earnings", tests, sizeof(tests) / sizeof(tests[0])));
}
