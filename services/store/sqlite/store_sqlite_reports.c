/*
 * store_sqlite_reports.c - earnings reports in SQLite, read from the
 * buckets that schema step 14's triggers keep with every order
 * (earnings_daily by UTC day, earnings_monthly by UTC month,
 * earnings_hourly by UTC hour), never from
 * the orders: a report costs the buckets of its range, however many
 * orders they count.
 *
 * Each statement seeks the tables' primary key (editor_id, day|hour,
 * ...) for each editor asked: one, or for a report over every editor the
 * editors table's ids (a handful of seeks, where a range on the day alone
 * would need a second index that every order would pay to keep). The
 * advertiser is a filter on the rows of that range.
 */
#include <sqlite3.h>

#include "aff_err.h"
#include "store.h"
#include "store_sqlite_private.h"

/* ?1 editor (0: all), ?2 lo, ?3 hi (exclusive), ?4 advertiser (0: all),
 * ?5 the offset in hours (the hourly table by day only). Rows whose sums
 * came to nothing (every order moved out of a status) are left out. */
#define EARNINGS(key, table, unit, order)                                      \
	"SELECT " key ", currency, status, sum(orders), sum(amount_cents),"   \
	" sum(commission_cents), sum(mismatched), count(*) FROM " table       \
	" WHERE editor_id IN (SELECT id FROM editors WHERE ?1 = 0"            \
	" OR id = ?1) AND " unit " >= ?2 AND " unit " < ?3"                   \
	" AND (?4 = 0 OR advertiser_id = ?4) GROUP BY 1, 2, 3"                \
	" HAVING sum(orders) <> 0 ORDER BY " order
/* By advertiser or status over whole months: the months' buckets, and
 * the days' of the months cut at either end. ?5 ?6 the days the months
 * cover, ?7 ?8 those months. */
#define PART(key, table, unit, lo, hi)                                         \
	"SELECT " key " AS k, currency, status, orders, amount_cents,"       \
	" commission_cents, mismatched FROM " table " WHERE editor_id IN"    \
	" (SELECT id FROM editors WHERE ?1 = 0 OR id = ?1) AND " unit " >= " \
	lo " AND " unit " < " hi " AND (?4 = 0 OR advertiser_id = ?4)"
#define MIXED(key, order)                                                      \
	"SELECT k, currency, status, sum(orders), sum(amount_cents),"         \
	" sum(commission_cents), sum(mismatched), count(*) FROM ("            \
	PART(key, "earnings_daily", "day", "?2", "?5") " UNION ALL "          \
	PART(key, "earnings_daily", "day", "?6", "?3") " UNION ALL "          \
	PART(key, "earnings_monthly", "month", "?7", "?8")                    \
	") GROUP BY 1, 2, 3 HAVING sum(orders) <> 0 ORDER BY " order
#define BY_KEY "1, 2, 3"
#define BY_STATUS "3, 2"

/* In the order of enum store_earnings_group, daily, hourly, then
 * monthly. */
#define STATEMENTS(X)                                                          \
	X(ST_DAILY_ADV,                                                        \
	    EARNINGS("advertiser_id", "earnings_daily", "day", BY_KEY))        \
	X(ST_DAILY_DAY, EARNINGS("day", "earnings_daily", "day", BY_KEY))      \
	X(ST_DAILY_STATUS, EARNINGS("0", "earnings_daily", "day", BY_STATUS))  \
	X(ST_HOURLY_ADV,                                                       \
	    EARNINGS("advertiser_id", "earnings_hourly", "hour", BY_KEY))      \
	X(ST_HOURLY_DAY,                                                       \
	    EARNINGS("(hour + ?5) / 24", "earnings_hourly", "hour", BY_KEY))   \
	X(ST_HOURLY_STATUS,                                                    \
	    EARNINGS("0", "earnings_hourly", "hour", BY_STATUS))                \
	X(ST_MONTHLY_ADV, MIXED("advertiser_id", BY_KEY))                      \
	X(ST_MONTHLY_DAY, "SELECT 1") /* never: a day is not a month */      \
	X(ST_MONTHLY_STATUS, MIXED("0", BY_STATUS))

enum { STATEMENTS(SQLITE_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(SQLITE_STMT_SQL) };

const struct store_sqlite_statements store_sqlite_reports_statements = {
	stmt_sql,
	ST_COUNT,
};

/* Rows of a report: no more than the buckets a year of days holds for
 * every currency an advertiser may take; a bound only, grown as needed. */
#define ROWS_FIRST 64

int
store_sqlite_earnings(store *base, const struct store_earnings_query *q,
    aff_arena *a, struct store_earnings_row **out, size_t *n)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = s->st[SQ_REPORTS][(q->hourly ? ST_HOURLY_ADV
	            : q->monthly                           ? ST_MONTHLY_ADV
	                                                   : ST_DAILY_ADV) +
	    (int)q->group];
	struct store_earnings_row *v = NULL, *r;
	size_t cap = 0, k = 0;
	int rc, rv = AFF_OK;

	sqlite3_bind_int64(st, 1, q->editor_id);
	sqlite3_bind_int64(st, 2, q->lo);
	sqlite3_bind_int64(st, 3, q->hi);
	sqlite3_bind_int64(st, 4, q->advertiser_id);
	if (q->hourly && q->group == STORE_EARNINGS_BY_DAY)
		sqlite3_bind_int64(st, 5, q->offset_h);
	if (q->monthly && q->group != STORE_EARNINGS_BY_DAY) {
		sqlite3_bind_int64(st, 5, q->day_a);
		sqlite3_bind_int64(st, 6, q->day_b);
		sqlite3_bind_int64(st, 7, q->month_lo);
		sqlite3_bind_int64(st, 8, q->month_hi);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			/* The arena keeps the old array: a report's rows are
			 * few, doubling bounds the waste to their size. */
			struct store_earnings_row *w;
			size_t ncap = cap == 0 ? ROWS_FIRST : cap * 2;

			if ((w = aff_arena_alloc(a, ncap * sizeof(*w))) == NULL) {
				rv = AFF_RESOURCE_EXHAUSTED;
				break;
			}
			for (size_t i = 0; i < k; i++)
				w[i] = v[i];
			v = w;
			cap = ncap;
		}
		r = &v[k];
		r->key = sqlite3_column_int64(st, 0);
		r->currency = store_sqlite_col_text(st, 1, a);
		r->status = store_sqlite_col_text(st, 2, a);
		r->orders = sqlite3_column_int64(st, 3);
		r->amount_cents = sqlite3_column_int64(st, 4);
		r->commission_cents = sqlite3_column_int64(st, 5);
		r->mismatched = sqlite3_column_int64(st, 6);
		r->buckets = sqlite3_column_int64(st, 7);
		if (r->currency == NULL || r->status == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		k++;
	}
	if (rv == AFF_OK && rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, "earnings");
	store_sqlite_stmt_done(st);
	*out = v;
	*n = rv == AFF_OK ? k : 0;
	return (rv);
}
