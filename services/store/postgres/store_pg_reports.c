/*
 * store_pg_reports.c - earnings reports in PostgreSQL, read from the
 * buckets that schema step 14's trigger keeps with every order
 * (earnings_daily by UTC day, earnings_monthly by UTC month,
 * earnings_hourly by UTC hour, each bucket
 * split in shards by writing connection), never from the orders: a
 * report costs the buckets of its range, however many orders they count.
 * The same questions and answers as store_sqlite_reports.c; sums are cast
 * back to bigint (PostgreSQL sums bigints as numeric).
 */
#include <stdlib.h>

#include <libpq-fe.h>

#include "aff_err.h"
#include "store.h"
#include "store_pg_private.h"

/* $1 editor (0: all), $2 lo, $3 hi (exclusive), $4 advertiser (0: all),
 * $5 the offset in hours (the hourly table by day only). */
#define EARNINGS(key, table, unit, order)                                      \
	"SELECT " key ", currency, status, sum(orders)::bigint,"              \
	" sum(amount_cents)::bigint, sum(commission_cents)::bigint,"          \
	" sum(mismatched)::bigint, count(*) FROM " table                      \
	" WHERE editor_id IN (SELECT id FROM editors WHERE $1::bigint = 0"    \
	" OR id = $1) AND " unit " >= $2 AND " unit " < $3"                   \
	" AND ($4::bigint = 0 OR advertiser_id = $4) GROUP BY 1, 2, 3"        \
	" HAVING sum(orders) <> 0 ORDER BY " order
/* By advertiser or status over whole months: the months' buckets, and
 * the days' of the months cut at either end. $5 $6 the days the months
 * cover, $7 $8 those months. */
#define PART(key, table, unit, lo, hi)                                         \
	"SELECT " key " AS k, currency, status, orders, amount_cents,"       \
	" commission_cents, mismatched FROM " table " WHERE editor_id IN"    \
	" (SELECT id FROM editors WHERE $1::bigint = 0 OR id = $1) AND "     \
	unit " >= " lo " AND " unit " < " hi                                 \
	" AND ($4::bigint = 0 OR advertiser_id = $4)"
#define MIXED(key, order)                                                      \
	"SELECT k, currency, status, sum(orders)::bigint,"                    \
	" sum(amount_cents)::bigint, sum(commission_cents)::bigint,"          \
	" sum(mismatched)::bigint, count(*) FROM ("                           \
	PART(key, "earnings_daily", "day", "$2::bigint", "$5::bigint")        \
	" UNION ALL "                                                         \
	PART(key, "earnings_daily", "day", "$6::bigint", "$3::bigint")        \
	" UNION ALL "                                                         \
	PART(key, "earnings_monthly", "month", "$7::bigint", "$8::bigint")    \
	") p GROUP BY 1, 2, 3 HAVING sum(orders) <> 0 ORDER BY " order
#define BY_KEY "1, 2, 3"
#define BY_STATUS "3, 2"

/* In the order of enum store_earnings_group, daily, hourly, then
 * monthly. */
#define STATEMENTS(X)                                                          \
	X(ST_DAILY_ADV,                                                        \
	    EARNINGS("advertiser_id", "earnings_daily", "day", BY_KEY))        \
	X(ST_DAILY_DAY, EARNINGS("day", "earnings_daily", "day", BY_KEY))      \
	X(ST_DAILY_STATUS,                                                     \
	    EARNINGS("0::bigint", "earnings_daily", "day", BY_STATUS))         \
	X(ST_HOURLY_ADV,                                                       \
	    EARNINGS("advertiser_id", "earnings_hourly", "hour", BY_KEY))      \
	X(ST_HOURLY_DAY,                                                       \
	    EARNINGS("(hour + $5::bigint) / 24", "earnings_hourly", "hour",    \
	        BY_KEY))                                                       \
	X(ST_HOURLY_STATUS,                                                    \
	    EARNINGS("0::bigint", "earnings_hourly", "hour", BY_STATUS))        \
	X(ST_MONTHLY_ADV, MIXED("advertiser_id", BY_KEY))                      \
	X(ST_MONTHLY_DAY, "SELECT 1") /* never: a day is not a month */      \
	X(ST_MONTHLY_STATUS, MIXED("0::bigint", BY_STATUS))

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

/* Planned per call, all of them: with its values the planner folds the
 * "$1 = 0 OR" filters away and sees the range; a generic plan could not
 * (store_pg_private.h). */
const struct store_pg_statements store_pg_reports_statements = {
	.sql = stmt_sql, .n = ST_COUNT, .plan_from = 0, .plan_to = ST_COUNT };

int
store_pg_earnings(store *base, const struct store_earnings_query *q,
    aff_arena *a, struct store_earnings_row **out, size_t *n)
{
	pg_store *s = PG_STORE(base);
	int i = (q->hourly       ? ST_HOURLY_ADV
	        : q->monthly ? ST_MONTHLY_ADV
	                     : ST_DAILY_ADV) +
	    (int)q->group;
	struct store_earnings_row *v = NULL;
	struct pg_params p = { 0 };
	PGresult *res;
	int rv, rows;

	store_pg_p_int(&p, q->editor_id);
	store_pg_p_int(&p, q->lo);
	store_pg_p_int(&p, q->hi);
	store_pg_p_int(&p, q->advertiser_id);
	if (i == ST_HOURLY_DAY)
		store_pg_p_int(&p, q->offset_h);
	if (i == ST_MONTHLY_ADV || i == ST_MONTHLY_STATUS) {
		store_pg_p_int(&p, q->day_a);
		store_pg_p_int(&p, q->day_b);
		store_pg_p_int(&p, q->month_lo);
		store_pg_p_int(&p, q->month_hi);
	}
	*out = NULL;
	*n = 0;
	if ((rv = store_pg_run(s, PQ_REPORTS, i, &p, &res, "earnings")) !=
	    AFF_OK)
		return (rv);
	rows = PQntuples(res);
	if (rows > 0 &&
	    (v = aff_arena_alloc(a, (size_t)rows * sizeof(*v))) == NULL) {
		PQclear(res);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	for (int r = 0; r < rows; r++) {
		v[r].key = store_pg_int(res, r, 0);
		v[r].currency = store_pg_text(res, r, 1, a);
		v[r].status = store_pg_text(res, r, 2, a);
		v[r].orders = store_pg_int(res, r, 3);
		v[r].amount_cents = store_pg_int(res, r, 4);
		v[r].commission_cents = store_pg_int(res, r, 5);
		v[r].mismatched = store_pg_int(res, r, 6);
		v[r].buckets = store_pg_int(res, r, 7);
		if (v[r].currency == NULL || v[r].status == NULL) {
			PQclear(res);
			return (AFF_RESOURCE_EXHAUSTED);
		}
	}
	PQclear(res);
	if (rows > 0)
		*out = v;
	*n = (size_t)rows;
	return (AFF_OK);
}
