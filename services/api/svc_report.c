/*
 * svc_report.c - ReportService: earnings reports (issue 18). A report
 * asks the store for the sums of its range, which the store reads from
 * the aggregates its triggers keep with every order (schema step 14:
 * per UTC day, month and hour),
 * and puts them in groups: one per key (advertiser, day or status) and
 * currency, each with the orders, amount and commission of every status
 * and of all. Money stays integer cents, summed per currency, never
 * across. Scoped as ListOrders: an editor key's editor_id is its own (the
 * gate fills and checks it, AUTH_SCOPE_FILL).
 */
#include <stdio.h>
#include <string.h>

#include "aff_err.h"
#include "affiliate/v1/report.pb-c.h"
#include "services.h"

/* The longest range: a year of days (a leap one) by day, ten years
 * otherwise (a group per advertiser or status however long the range). */
#define RANGE_MAX_DAYS_BY_DAY 366
#define RANGE_MAX_DAYS        3660

#define TZ_FORMS                                                               \
	"Z, UTC or a fixed offset +HH:00 / -HH:00 (whole hours up to 23; "     \
	"IANA names such as Europe/Paris are not accepted: their offset "      \
	"changes within a year)"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + (int64_t)doe - 719468);
}

/* The inverse: the year, month and day of day z. */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	*y = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y += *m <= 2;
}

/* Day z as "YYYY-MM-DD" into out (11 bytes). */
static void
day_format(int64_t z, char out[11])
{
	int64_t y;
	unsigned m, d;

	civil_from_days(z, &y, &m, &d);
	snprintf(out, 11, "%04d-%02u-%02u", (int)y, m % 100, d % 100);
}

/*
 * Days [lo, hi) by advertiser or status: the whole UTC months inside are
 * read from the monthly sums (a year: 12 rows per advertiser, currency
 * and status, where its days would be 365), the days of the months cut
 * at either end from the daily ones.
 */
static void
months_split(struct store_earnings_query *q)
{
	int64_t y;
	unsigned m, d;
	int64_t first, last;

	civil_from_days(q->lo, &y, &m, &d);
	first = y * 12 + m - 1 + (d != 1); /* the first month that starts in */
	civil_from_days(q->hi, &y, &m, &d);
	last = y * 12 + m - 1; /* the month hi is in: ends after the range */
	if (first >= last)
		return; /* no whole month: days only */
	q->monthly = 1;
	q->month_lo = first;
	q->month_hi = last;
	q->day_a = days_from_civil(first / 12, (unsigned)(first % 12) + 1, 1);
	q->day_b = days_from_civil(last / 12, (unsigned)(last % 12) + 1, 1);
}

static int
digits(const char *s, int n, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return (0);
}

/* "YYYY-MM-DD" (a real day, 1970 to 9999) as days since 1970-01-01. */
static int
date_parse(const char *s, int64_t *days)
{
	static const unsigned mdays[12]
	    = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-'
	    || digits(s, 4, &y) != 0 || digits(s + 5, 2, &m) != 0
	    || digits(s + 8, 2, &d) != 0)
		return (-1);
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return (-1);
	if (m == 2 && d == 29
	    && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return (-1);
	*days = days_from_civil(y, m, d);
	return (0);
}

/* tz as whole hours east of UTC; -1: not a form taken, -2: an offset
 * that is not whole hours. */
static int
tz_parse(const char *tz, int *hours)
{
	unsigned h, m;

	*hours = 0;
	if (tz[0] == '\0' || strcmp(tz, "Z") == 0 || strcmp(tz, "UTC") == 0)
		return (0);
	if (strlen(tz) != 6 || (tz[0] != '+' && tz[0] != '-') || tz[3] != ':'
	    || digits(tz + 1, 2, &h) != 0 || digits(tz + 4, 2, &m) != 0
	    || h > 23 || m > 59)
		return (-1);
	if (m != 0)
		return (-2);
	*hours = tz[0] == '-' ? -(int)h : (int)h;
	return (0);
}

static const char *const group_names[] = {
	[STORE_EARNINGS_BY_ADVERTISER] = "advertiser",
	[STORE_EARNINGS_BY_DAY] = "day",
	[STORE_EARNINGS_BY_STATUS] = "status",
};

static Affiliate__V1__EarningsFigures *
figures_new(aff_arena *a)
{
	Affiliate__V1__EarningsFigures *f = aff_arena_alloc(a, sizeof(*f));

	if (f != NULL)
		affiliate__v1__earnings_figures__init(f);
	return (f);
}

static Affiliate__V1__EarningsGroup *
group_new(aff_arena *a)
{
	Affiliate__V1__EarningsGroup *g = aff_arena_alloc(a, sizeof(*g));

	if (g == NULL)
		return (NULL);
	affiliate__v1__earnings_group__init(g);
	if ((g->pending = figures_new(a)) == NULL
	    || (g->approved = figures_new(a)) == NULL
	    || (g->declined = figures_new(a)) == NULL)
		return (NULL);
	return (g);
}

/* Puts the store's rows (sorted by key, currency, status; by status:
 * status, currency) into resp's groups: a new group where the key or the
 * currency changes. */
static int
groups_fill(Affiliate__V1__EarningsReport *resp, enum store_earnings_group by,
    const struct store_earnings_row *v, size_t n, aff_arena *a)
{
	Affiliate__V1__EarningsGroup *g = NULL;
	const struct store_earnings_row *prev = NULL;
	char day[11];

	if (n > 0
	    && (resp->groups = aff_arena_alloc(a, n * sizeof(*resp->groups)))
	        == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	for (size_t i = 0; i < n; i++) {
		const struct store_earnings_row *r = &v[i];
		Affiliate__V1__EarningsFigures *fig;

		if (prev == NULL || r->key != prev->key
		    || strcmp(r->currency, prev->currency) != 0
		    || (by == STORE_EARNINGS_BY_STATUS
		        && strcmp(r->status, prev->status) != 0)) {
			if ((g = group_new(a)) == NULL)
				return (AFF_RESOURCE_EXHAUSTED);
			g->currency = (char *)r->currency;
			if (by == STORE_EARNINGS_BY_ADVERTISER)
				g->advertiser_id = r->key;
			else if (by == STORE_EARNINGS_BY_STATUS)
				g->status = (char *)r->status;
			else {
				day_format(r->key, day);
				if ((g->day = aff_arena_strdup(a, day)) == NULL)
					return (AFF_RESOURCE_EXHAUSTED);
			}
			resp->groups[resp->n_groups++] = g;
		}
		prev = r;
		if (strcmp(r->status, "approved") == 0)
			fig = g->approved;
		else if (strcmp(r->status, "declined") == 0)
			fig = g->declined;
		else
			fig = g->pending;
		fig->orders += r->orders;
		fig->amount_cents += r->amount_cents;
		fig->commission_cents += r->commission_cents;
		g->orders += r->orders;
		g->amount_cents += r->amount_cents;
		g->commission_cents += r->commission_cents;
		g->mismatched += r->mismatched;
		resp->buckets_read += r->buckets;
		resp->orders_counted += r->orders;
	}
	return (AFF_OK);
}

static int
get_earnings(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__GetEarningsRequest *in = (const void *)in_;
	Affiliate__V1__EarningsReport *resp;
	struct store_earnings_query q = { 0 };
	struct store_earnings_row *v;
	int64_t from, to, max;
	size_t n;
	int rv, h;

	if ((rv = svc_check_filter_id(call, in->editor_id, "editor_id"))
	        != AFF_OK
	    || (rv = svc_check_filter_id(
	            call, in->advertiser_id, "advertiser_id"))
	        != AFF_OK)
		return (rv);
	if (in->group_by[0] == '\0' || strcmp(in->group_by, "advertiser") == 0)
		q.group = STORE_EARNINGS_BY_ADVERTISER;
	else if (strcmp(in->group_by, "day") == 0)
		q.group = STORE_EARNINGS_BY_DAY;
	else if (strcmp(in->group_by, "status") == 0)
		q.group = STORE_EARNINGS_BY_STATUS;
	else
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "group_by must be advertiser, day or status"));
	if (in->from[0] == '\0' || in->to[0] == '\0')
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "from and to are required (YYYY-MM-DD, to included)"));
	if (date_parse(in->from, &from) != 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "from must be a date YYYY-MM-DD (1970 to 9999)"));
	if (date_parse(in->to, &to) != 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "to must be a date YYYY-MM-DD (1970 to 9999)"));
	if (from > to)
		return (rpc_errorf(
		    call, AFF_INVALID_ARGUMENT, "from must not be after to"));
	max = q.group == STORE_EARNINGS_BY_DAY ? RANGE_MAX_DAYS_BY_DAY
	                                       : RANGE_MAX_DAYS;
	if (to - from + 1 > max)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "the range from %s to %s is %lld days; at most %lld when "
		    "grouped by %s",
		    in->from, in->to, (long long)(to - from + 1),
		    (long long)max, group_names[q.group]));
	rv = tz_parse(in->tz, &h);
	if (rv == -2)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "tz %s is not a whole number of hours: reports keep hourly "
		    "sums, so tz must be " TZ_FORMS,
		    in->tz));
	if (rv != 0)
		return (rpc_errorf(
		    call, AFF_INVALID_ARGUMENT, "tz must be " TZ_FORMS));
	q.editor_id = in->editor_id;
	q.advertiser_id = in->advertiser_id;
	/* UTC days from the daily sums; a local day of another offset is 24
	 * UTC hours across two UTC days: from the hourly ones. */
	if (h == 0) {
		q.lo = from;
		q.hi = to + 1;
		if (q.group != STORE_EARNINGS_BY_DAY)
			months_split(&q);
	} else {
		q.hourly = 1;
		q.offset_h = h;
		q.lo = from * 24 - h;
		q.hi = (to + 1) * 24 - h;
	}
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__earnings_report__init(resp);
	resp->editor_id = in->editor_id;
	resp->advertiser_id = in->advertiser_id;
	resp->from = (char *)in->from;
	resp->to = (char *)in->to;
	resp->group_by = (char *)group_names[q.group];
	resp->tz = h == 0 ? (char *)"UTC"
	                  : aff_arena_printf(&call->arena, "%c%02d:00",
	                      h < 0 ? '-' : '+', h < 0 ? -h : h);
	if (resp->tz == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	rv = call->store->ops->earnings(call->store, &q, &call->arena, &v, &n);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	if ((rv = groups_fill(resp, q.group, v, n, &call->arena)) != AFF_OK)
		return (rv);
	*out = &resp->base;
	return (AFF_OK);
}

static const struct rpc_method_def report_methods[] = {
	{ .name = "GetEarnings", .fn = get_earnings, .scope = AUTH_SCOPE_FILL },
};

const struct rpc_service_def svc_report_def = {
	.desc = &affiliate__v1__report_service__descriptor,
	.methods = report_methods,
	.n_methods = sizeof(report_methods) / sizeof(report_methods[0]),
};
