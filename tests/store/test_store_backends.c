/*
 * test_store_backends.c - the store's contract (store.h) checked on both
 * backends by the same test bodies: each test runs once on a SQLite file
 * and once on a real PostgreSQL server started by this test, asserting
 * the same exact answers (status codes, rows, cursors, outcomes), so the
 * two backends are proven to answer alike. Where they differ by design
 * (the job clock, several servers) the test says so; the concurrency of
 * several servers is test_store_pg's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_backends.h"
#include "testutil.h"

#define OPS (f->s->ops)

static void
test_the_name_selects_the_backend(void **state)
{
	(void)state;
	assert_true(store_is_postgres("postgresql://u:p@127.0.0.1:5/db"));
	assert_true(store_is_postgres("postgres://127.0.0.1/db"));
	assert_true(store_is_postgres("host=127.0.0.1 port=5 dbname=x"));
	assert_true(store_is_postgres("dbname=affiliate"));
	assert_false(store_is_postgres("/var/lib/affiliate/affiliate.db"));
	assert_false(store_is_postgres("data/affiliate.db"));
	assert_false(store_is_postgres("./a=b.db"));
	assert_false(store_is_postgres("/srv/x=y/affiliate.db"));
	assert_false(store_is_postgres(":memory:"));
	assert_ptr_equal(store_backend("x.db"), &store_sqlite_ops);
	assert_ptr_equal(store_backend("postgres://h/d"), &store_pg_ops);
}

static void
redacts_to(const char *db, const char *want)
{
	char out[256];

	store_db_redact(db, out, sizeof(out));
	assert_string_equal(out, want);
}

static void
test_the_name_is_shown_without_its_password(void **state)
{
	char small[12];

	(void)state;
	redacts_to("postgresql://u:s3cret@127.0.0.1:5/db",
	    "postgresql://u:***@127.0.0.1:5/db");
	redacts_to("postgres://u:a@b@h/db", "postgres://u:***@h/db");
	redacts_to("postgresql://u@h/db?password=s3&sslmode=require",
	    "postgresql://u@h/db?password=***&sslmode=require");
	redacts_to("postgresql://h/db?sslmode=require&sslpassword=k",
	    "postgresql://h/db?sslmode=require&sslpassword=***");
	redacts_to("postgresql://h:5/db", "postgresql://h:5/db");
	redacts_to("host=h password=s3cret dbname=d",
	    "host=h password=*** dbname=d");
	redacts_to("host=h password = 'se cr\\'et' dbname=d",
	    "host=h password = *** dbname=d");
	redacts_to("sslpassword=k host=h", "sslpassword=*** host=h");
	redacts_to("data/affiliate.db", "data/affiliate.db");
	store_db_redact("postgresql://u:s3cret@h/db", small, sizeof(small));
	assert_string_equal(small, "postgresql:");
}

static void
test_a_new_database_is_migrated_to_the_last_step_and_seeded(void **state)
{
	struct sb_fixture *f = *state;
	long long links = 0;

	for (int e = 1; e <= STORE_SEED_EDITORS; e++)
		for (int a = 1; a <= STORE_SEED_ADVERTISERS; a++)
			links += store_seed_eligible(e, a);
	/* SQLite has step 15 (the list indexes without status dropped). */
	assert_int_equal(sb_sql_int(f->db, sb_cur_pg
	                         ? "SELECT version FROM affiliate_schema"
	                         : "PRAGMA user_version"),
	    sb_cur_pg ? 14 : 15);
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM editors"),
	    STORE_SEED_EDITORS);
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM advertisers"),
	    STORE_SEED_ADVERTISERS);
	assert_int_equal(
	    sb_sql_int(f->db, "SELECT count(*) FROM eligibility"), links);
	/* The triggers counted every seed row, on both. */
	assert_int_equal(
	    sb_sql_int(f->db, "SELECT version FROM catalog_version"),
	    1 + STORE_SEED_EDITORS + STORE_SEED_ADVERTISERS + links);
	assert_int_equal(sb_sql_int(f->db, "SELECT length(value) FROM meta"
	                                   " WHERE key = 'orders_copy'"),
	    16);
}

static void
test_reopening_neither_migrates_nor_seeds_again(void **state)
{
	struct sb_fixture *f = *state;
	Affiliate__V1__Advertiser *adv;
	const char *id1, *id2;
	char keep[40];
	int64_t v;

	assert_int_equal(OPS->catalog_version(f->s, &id1, &v), AFF_OK);
	snprintf(keep, sizeof(keep), "%s", id1);
	sb_sql(f->db, "UPDATE advertisers SET name = 'Renamed' WHERE id = 3");
	store_close(f->s);
	assert_int_equal(store_open(f->db, &f->s), AFF_OK);
	assert_int_equal(OPS->advertiser_get(f->s, 3, &f->a, &adv), AFF_OK);
	assert_string_equal(adv->name, "Renamed");
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM advertisers"),
	    STORE_SEED_ADVERTISERS);
	assert_int_equal(OPS->catalog_version(f->s, &id2, &v), AFF_OK);
	assert_string_equal(id2, keep); /* db_id made once, with the data */
}

static void
test_a_newer_schema_is_refused(void **state)
{
	struct sb_fixture *f = *state;
	store *s2 = NULL;

	sb_sql(f->db, sb_cur_pg ? "UPDATE affiliate_schema SET version = 99"
	                     : "PRAGMA user_version = 99");
	assert_int_equal(store_open(f->db, &s2), AFF_FAILED_PRECONDITION);
	assert_null(s2);
}

static void
test_the_seed_is_the_same_on_both_backends(void **state)
{
	struct sb_fixture *f = *state;
	char other[512];
	store *s2;
	Affiliate__V1__Advertiser **a, **b;
	size_t na, nb;
	int more;
	struct store_advertiser_query q = { .limit = 100 };

	/* The other backend's new database, beside this one. */
	if (sb_cur_pg)
		snprintf(other, sizeof(other), "%s/seed-other.db", sb_tmp);
	else {
		if (sb_pg == NULL)
			skip();
		sb_fresh(1, sb_tmp, other, sizeof(other));
	}
	assert_int_equal(store_open(other, &s2), AFF_OK);
	assert_int_equal(OPS->advertiser_list(f->s, &q, &f->a, &a, &na, &more),
	    AFF_OK);
	assert_int_equal(
	    s2->ops->advertiser_list(s2, &q, &f->a, &b, &nb, &more), AFF_OK);
	assert_int_equal(na, STORE_SEED_ADVERTISERS);
	assert_int_equal(nb, na);
	for (size_t i = 0; i < na; i++) {
		assert_int_equal(a[i]->id, b[i]->id);
		assert_string_equal(a[i]->name, b[i]->name);
		assert_string_equal(a[i]->category, b[i]->category);
		assert_string_equal(a[i]->currency, b[i]->currency);
		assert_string_equal(a[i]->status, b[i]->status);
		assert_string_equal(a[i]->website, b[i]->website);
		assert_int_equal(a[i]->commission_rate_bps, b[i]->commission_rate_bps);
		assert_int_equal(a[i]->cookie_days, b[i]->cookie_days);
		assert_string_equal(a[i]->created_at, b[i]->created_at);
		assert_string_equal(a[i]->updated_at, b[i]->updated_at);
	}
	for (int e = 1; e <= STORE_SEED_EDITORS + 1; e++) {
		assert_int_equal(OPS->editor_exists(f->s, e),
		    s2->ops->editor_exists(s2, e));
		for (int ad = 1; ad <= STORE_SEED_ADVERTISERS; ad++)
			assert_int_equal(OPS->eligible(f->s, e, ad),
			    s2->ops->eligible(s2, e, ad));
	}
	store_close(s2);
	if (!sb_cur_pg)
		sb_fresh(1, sb_tmp, other, sizeof(other)); /* leave it empty */
}

static void
test_reads_pages_and_eligibility(void **state)
{
	struct sb_fixture *f = *state;
	struct store_advertiser_query q = { .limit = 5 };
	Affiliate__V1__Advertiser *adv, **v;
	size_t n, seen = 0;
	int more = 1, pages = 0;

	assert_int_equal(OPS->advertiser_get(f->s, 2, &f->a, &adv), AFF_OK);
	assert_string_equal(adv->name, "Alpine Gear Co");
	assert_string_equal(adv->currency, "CHF");
	assert_int_equal(adv->commission_rate_bps, 650);
	assert_string_equal(adv->website, "https://alpinegearco.example");
	assert_string_equal(adv->created_at, "2026-01-01T00:00:00Z");
	assert_int_equal(OPS->advertiser_get(f->s, 999, &f->a, &adv),
	    AFF_NOT_FOUND);
	while (more) {
		assert_int_equal(
		    OPS->advertiser_list(f->s, &q, &f->a, &v, &n, &more), AFF_OK);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(v[i]->id, (int64_t)(seen + i + 1));
		seen += n;
		pages++;
		if (n > 0)
			q.after = v[n - 1]->id;
	}
	assert_int_equal(seen, STORE_SEED_ADVERTISERS);
	assert_int_equal(pages, (STORE_SEED_ADVERTISERS + 4) / 5);
	q = (struct store_advertiser_query){ .editor_id = 1, .limit = 100 };
	assert_int_equal(
	    OPS->advertiser_list(f->s, &q, &f->a, &v, &n, &more), AFF_OK);
	assert_false(more);
	assert_int_equal(n, 16);
	assert_int_equal(v[0]->id, 2);
	q.limit = 0;
	assert_int_equal(OPS->advertiser_list(f->s, &q, &f->a, &v, &n, &more),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(OPS->eligible(f->s, 1, 2), AFF_OK);
	assert_int_equal(OPS->eligible(f->s, 1, 1), AFF_PERMISSION_DENIED);
	assert_int_equal(OPS->editor_exists(f->s, 1), AFF_OK);
	assert_int_equal(OPS->editor_exists(f->s, 99), AFF_NOT_FOUND);
}

/*
 * The catalog version once it is want, or after 2 s what it is (SQLite:
 * at once; the
 * PostgreSQL backend keeps it in memory, moved by the notification of
 * the commit, which reaches its listener a moment after the writer's
 * COMMIT returns: up to 2 s is allowed, it takes well under a ms).
 */
static int64_t
version_to(struct sb_fixture *f, int64_t want, const char **id)
{
	int64_t now, t0 = aff_mono_ms();

	do {
		assert_int_equal(OPS->catalog_version(f->s, id, &now), AFF_OK);
		if (now == want)
			break;
		usleep(1000);
	} while (aff_mono_ms() - t0 < 2000);
	return (now);
}

static void
test_catalog_version_moves_on_every_write_by_any_client(void **state)
{
	struct sb_fixture *f = *state;
	const char *id1, *id2;
	int64_t v1, v2, v3, v4;

	assert_int_equal(OPS->catalog_version(f->s, &id1, &v1), AFF_OK);
	assert_int_equal(strlen(id1), 32);
	sb_sql(f->db, "INSERT INTO advertisers (id, name, category,"
	              " currency, commission_rate_bps, status, created_at,"
	              " updated_at) VALUES (50, 'New Shop', 'misc', 'EUR',"
	              " 500, 'active', 1767225600, 1767225600)");
	v2 = version_to(f, v1 + 1, &id2);
	assert_int_equal(v2, v1 + 1);
	assert_string_equal(id1, id2);
	sb_sql(f->db, "INSERT INTO eligibility (editor_id, advertiser_id)"
	              " VALUES (1, 50)");
	assert_int_equal(OPS->eligible(f->s, 1, 50), AFF_OK);
	v3 = version_to(f, v2 + 1, &id2);
	assert_int_equal(v3, v2 + 1);
	sb_sql(f->db, "DELETE FROM eligibility WHERE advertiser_id = 50");
	sb_sql(f->db, "UPDATE editors SET website = 'https://x.example'");
	v4 = version_to(f, v3 + 1 + STORE_SEED_EDITORS, &id2);
	assert_int_equal(v4, v3 + 1 + STORE_SEED_EDITORS);
	assert_int_equal(OPS->eligible(f->s, 1, 50), AFF_PERMISSION_DENIED);
	/* The schema refuses bad rows whoever writes. */
	assert_int_equal(sb_sql_rc(f->db, "INSERT INTO eligibility (editor_id,"
	                                  " advertiser_id) VALUES (99, 1)"),
	    -1);
	assert_int_equal(sb_sql_rc(f->db, "INSERT INTO advertisers (id, name,"
	                                  " category, commission_rate_bps,"
	                                  " created_at, updated_at) VALUES (60,"
	                                  " 'Bad Rate', 'misc', 20000, 0, 0)"),
	    -1);
}

static void
test_applications_one_open_per_pair_and_resends(void **state)
{
	struct sb_fixture *f = *state;
	Affiliate__V1__Application *a1, *a2, *a3, **v;
	struct store_application_query q = { .limit = 10 };
	size_t n;
	int more;

	a1 = sb_app_new(f, 1, 2, "req-1", AFF_OK);
	assert_int_equal(a1->id, 1);
	assert_string_equal(a1->status, "pending");
	a2 = sb_app_new(f, 1, 2, "req-2", AFF_ALREADY_EXISTS);
	assert_int_equal(a2->id, 1);
	a2 = sb_app_new(f, 1, 2, "req-1", AFF_OK); /* a resent request */
	assert_int_equal(a2->id, 1);
	a2 = sb_app_new(f, 1, 2, "", AFF_ALREADY_EXISTS);
	a3 = sb_app_new(f, 2, 3, NULL, AFF_OK);
	assert_int_equal(a3->id, 2); /* no id burnt by the conflicts */
	assert_int_equal(OPS->application_get(f->s, 2, &f->a, &a3), AFF_OK);
	assert_int_equal(a3->editor_id, 2);
	assert_int_equal(OPS->application_get(f->s, 9, &f->a, &a3),
	    AFF_NOT_FOUND);
	assert_int_equal(
	    OPS->application_list(f->s, &q, &f->a, &v, &n, &more), AFF_OK);
	assert_int_equal(n, 2);
	q.editor_id = 2;
	assert_int_equal(
	    OPS->application_list(f->s, &q, &f->a, &v, &n, &more), AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0]->id, 2);
	q = (struct store_application_query){ .status = "approved", .limit = 1 };
	assert_int_equal(
	    OPS->application_list(f->s, &q, &f->a, &v, &n, &more), AFF_OK);
	assert_int_equal(n, 0);
	q = (struct store_application_query){ .limit = 1 };
	assert_int_equal(
	    OPS->application_list(f->s, &q, &f->a, &v, &n, &more), AFF_OK);
	assert_int_equal(n, 1);
	assert_true(more);
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM jobs"), 2);
	assert_int_equal(
	    sb_sql_int(f->db, "SELECT count(*) FROM application_events"), 2);
}

static enum store_order_outcome
put(struct sb_fixture *f, const char *id, int64_t ad, int64_t ed,
    int64_t amount, const char *status, int want)
{
	struct store_order_in o = { .order_id = id, .advertiser_id = ad,
		.editor_id = ed, .amount_cents = amount,
		.commission_cents = amount / 10, .currency = "",
		.status = status };
	enum store_order_outcome oc = (enum store_order_outcome)-1;
	Affiliate__V1__Order *out = NULL;

	assert_int_equal(OPS->order_put(f->s, &o, &f->a, &out, &oc), want);
	if (want == AFF_OK || want == AFF_ALREADY_EXISTS) {
		assert_non_null(out);
		assert_string_equal(out->order_id, id);
	}
	return (oc);
}

static void
test_orders_are_stored_once_and_move_forward_only(void **state)
{
	struct sb_fixture *f = *state;
	struct store_order_query q = { .limit = 2 };
	Affiliate__V1__Order **v;
	int64_t next;
	size_t n;

	assert_int_equal(put(f, "o-1", 2, 1, 1000, NULL, AFF_OK),
	    STORE_ORDER_CREATED);
	assert_int_equal(put(f, "o-1", 2, 1, 1000, NULL, AFF_OK),
	    STORE_ORDER_DUPLICATE);
	assert_int_equal(put(f, "o-1", 2, 1, 1000, "pending", AFF_OK),
	    STORE_ORDER_DUPLICATE);
	put(f, "o-1", 2, 1, 999, NULL, AFF_ALREADY_EXISTS);
	assert_int_equal(put(f, "o-1", 2, 1, 1000, "approved", AFF_OK),
	    STORE_ORDER_MOVED);
	put(f, "o-1", 2, 1, 1000, "pending", AFF_FAILED_PRECONDITION);
	put(f, "o-1", 2, 1, 1000, "declined", AFF_FAILED_PRECONDITION);
	assert_int_equal(put(f, "o-x", 2, 99, 1000, NULL, AFF_NOT_FOUND),
	    STORE_ORDER_NO_EDITOR);
	assert_int_equal(put(f, "o-y", 99, 1, 1000, NULL, AFF_NOT_FOUND),
	    STORE_ORDER_NO_ADVERTISER);
	put(f, "o-z", 2, 1, -5, NULL, AFF_INVALID_ARGUMENT);
	assert_int_equal(put(f, "o-2", 3, 2, 2000, "declined", AFF_OK),
	    STORE_ORDER_CREATED);
	assert_int_equal(put(f, "o-3", 2, 2, 3000, NULL, AFF_OK),
	    STORE_ORDER_CREATED);
	/* Pages by arrival; the cursor is the seq, the same on both (no seq
	 * taken by the duplicates and refusals). */
	assert_int_equal(
	    OPS->order_list(f->s, &q, &f->a, &v, &n, &next), AFF_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0]->order_id, "o-1");
	assert_string_equal(v[0]->status, "approved");
	assert_int_equal(v[0]->amount_cents, 1000);
	assert_int_equal(v[0]->commission_cents, 100);
	assert_int_equal(next, 2);
	q.after = next;
	assert_int_equal(
	    OPS->order_list(f->s, &q, &f->a, &v, &n, &next), AFF_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0]->order_id, "o-3");
	assert_int_equal(next, 0);
	q = (struct store_order_query){ .editor_id = 2, .status = "declined",
		.limit = 10 };
	assert_int_equal(
	    OPS->order_list(f->s, &q, &f->a, &v, &n, &next), AFF_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0]->order_id, "o-2");
	q = (struct store_order_query){ .advertiser_id = 2, .limit = 10 };
	assert_int_equal(
	    OPS->order_list(f->s, &q, &f->a, &v, &n, &next), AFF_OK);
	assert_int_equal(n, 2);
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM order_events"),
	    4);
}

static void
test_a_batch_commits_all_but_the_refused_order(void **state)
{
	struct sb_fixture *f = *state;

	assert_int_equal(OPS->batch_begin(f->s), AFF_OK);
	assert_int_equal(put(f, "b-1", 2, 1, 100, NULL, AFF_OK),
	    STORE_ORDER_CREATED);
	assert_int_equal(put(f, "b-2", 2, 99, 100, NULL, AFF_NOT_FOUND),
	    STORE_ORDER_NO_EDITOR);
	put(f, "b-1", 2, 1, 555, NULL, AFF_ALREADY_EXISTS);
	put(f, "b-3", 2, 1, -1, NULL, AFF_INVALID_ARGUMENT);
	assert_int_equal(put(f, "b-4", 2, 1, 100, NULL, AFF_OK),
	    STORE_ORDER_CREATED);
	assert_int_equal(put(f, "b-4", 2, 1, 100, NULL, AFF_OK),
	    STORE_ORDER_DUPLICATE);
	assert_int_equal(OPS->batch_end(f->s, AFF_OK), AFF_OK);
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM orders"), 2);
	/* A batch ended with an error keeps nothing. */
	assert_int_equal(OPS->batch_begin(f->s), AFF_OK);
	put(f, "b-5", 2, 1, 100, NULL, AFF_OK);
	assert_int_equal(OPS->batch_end(f->s, AFF_INTERNAL), AFF_INTERNAL);
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM orders"), 2);
}

static void
test_the_redis_copy_bookkeeping(void **state)
{
	struct sb_fixture *f = *state;
	struct store_order_row *rows;
	const char *copy;
	char copy1[40];
	int64_t gen;
	size_t n;

	assert_int_equal(OPS->orders_all_cached(f->s, &copy, &gen), AFF_OK);
	assert_int_equal(gen, 0);
	assert_int_equal(strlen(copy), 16);
	snprintf(copy1, sizeof(copy1), "%s", copy);
	put(f, "c-1", 2, 1, 100, NULL, AFF_OK);
	put(f, "c-2", 2, 1, 100, NULL, AFF_OK);
	assert_int_equal(OPS->orders_all_cached(f->s, &copy, &gen),
	    AFF_NOT_FOUND);
	assert_int_equal(OPS->orders_uncached(f->s, 10, &f->a, &rows, &n), AFF_OK);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].seq, 1);
	assert_int_equal(rows[0].rev, 1);
	assert_string_equal(rows[1].order->order_id, "c-2");
	/* c-1 moves before the copy is marked: its old revision does not
	 * count, it stays behind. */
	put(f, "c-1", 2, 1, 100, "approved", AFF_OK);
	assert_int_equal(OPS->orders_mark_cached(f->s, rows, n, 1), AFF_OK);
	assert_int_equal(OPS->orders_all_cached(f->s, &copy, &gen),
	    AFF_NOT_FOUND);
	assert_int_equal(gen, 1);
	assert_int_equal(OPS->orders_uncached(f->s, 10, &f->a, &rows, &n), AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].rev, 2);
	assert_int_equal(OPS->orders_mark_cached(f->s, rows, n, 2), AFF_OK);
	assert_int_equal(OPS->orders_all_cached(f->s, &copy, &gen), AFF_OK);
	assert_int_equal(gen, 2);
	assert_string_equal(copy, copy1);
	/* A reset judged on a view that moved on is refused. */
	assert_int_equal(OPS->orders_cache_reset(f->s, copy1, 1), AFF_ABORTED);
	assert_int_equal(OPS->orders_cache_reset(f->s, "other", 2),
	    AFF_ABORTED);
	assert_int_equal(OPS->orders_all_cached(f->s, &copy, &gen), AFF_OK);
	assert_string_equal(copy, copy1);
	assert_int_equal(OPS->orders_cache_reset(f->s, copy, gen), AFF_OK);
	assert_int_equal(OPS->orders_all_cached(f->s, &copy, &gen),
	    AFF_NOT_FOUND);
	assert_int_equal(gen, 0);
	assert_string_not_equal(copy, copy1);
	assert_int_equal(OPS->orders_uncached(f->s, 10, &f->a, &rows, &n), AFF_OK);
	assert_int_equal(n, 2);
	assert_int_equal(OPS->orders_mark_cached(f->s, rows, n, 1), AFF_OK);
	assert_int_equal(OPS->orders_all_cached(f->s, &copy, &gen), AFF_OK);
	assert_int_equal(OPS->orders_uncached(f->s, 10, &f->a, &rows, &n), AFF_OK);
	assert_int_equal(n, 0);
}

static void
test_api_keys_and_webhook_secrets(void **state)
{
	struct sb_fixture *f = *state;
	unsigned char h[32];
	Affiliate__V1__ApiKey *k, **v;
	struct store_key sk;
	char *secrets[4];
	size_t n;
	int rep, ts;

	memset(h, 0xab, sizeof(h));
	assert_int_equal(OPS->key_create(f->s, 0, h, &f->a, &k), AFF_OK);
	assert_int_equal(k->id, 1);
	assert_string_equal(k->role, "admin");
	assert_string_equal(k->revoked_at, "");
	assert_int_equal(OPS->key_create(f->s, 2, h, &f->a, &k), AFF_OK);
	assert_int_equal(k->editor_id, 2);
	assert_int_equal(OPS->key_create(f->s, 99, h, &f->a, &k), AFF_NOT_FOUND);
	assert_int_equal(OPS->key_get(f->s, 2, &sk), AFF_OK);
	assert_false(sk.admin);
	assert_int_equal(sk.editor_id, 2);
	assert_memory_equal(sk.sha256, h, 32);
	assert_false(sk.revoked);
	assert_int_equal(OPS->key_get(f->s, 7, &sk), AFF_NOT_FOUND);
	assert_int_equal(OPS->key_revoke(f->s, 2, &f->a, &k), AFF_OK);
	assert_string_not_equal(k->revoked_at, "");
	assert_int_equal(OPS->key_revoke(f->s, 2, &f->a, &k), AFF_OK);
	assert_int_equal(OPS->key_revoke(f->s, 9, &f->a, &k), AFF_NOT_FOUND);
	assert_int_equal(OPS->key_get(f->s, 2, &sk), AFF_OK);
	assert_true(sk.revoked);
	assert_int_equal(OPS->key_list(f->s, &f->a, &v, &n), AFF_OK);
	assert_int_equal(n, 2);
	assert_int_equal(v[1]->id, 2);

	assert_int_equal(OPS->webhook_secrets_get(f->s, 2, 1000, &f->a, secrets,
	                     4, &n),
	    AFF_OK);
	assert_int_equal(n, 0);
	assert_int_equal(OPS->webhook_secret_rotate(f->s, 2,
	                     "first-secret-first-secret-first-secret", 0, &rep),
	    AFF_OK);
	assert_false(rep);
	assert_int_equal(OPS->webhook_secret_rotate(f->s, 2,
	                     "second-secret-second-secret-second-se", 2000, &rep),
	    AFF_OK);
	assert_true(rep);
	assert_int_equal(OPS->webhook_secrets_get(f->s, 2, 1000, &f->a, secrets,
	                     4, &n),
	    AFF_OK);
	assert_int_equal(n, 2);
	assert_string_equal(secrets[0], "second-secret-second-secret-second-se");
	assert_int_equal(OPS->webhook_secrets_get(f->s, 2, 3000, &f->a, secrets,
	                     4, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(OPS->webhook_secret_rotate(f->s, 99,
	                     "third-secret-third-secret-third-secret", 0, &rep),
	    AFF_NOT_FOUND);
	assert_int_equal(OPS->webhook_policy_get(f->s, 2, &ts), AFF_OK);
	assert_false(ts);
	assert_int_equal(OPS->webhook_policy_set(f->s, 2, 1), AFF_OK);
	assert_int_equal(OPS->webhook_policy_get(f->s, 2, &ts), AFF_OK);
	assert_true(ts);
	assert_int_equal(OPS->webhook_policy_set(f->s, 99, 1), AFF_NOT_FOUND);
}

static void
test_a_keyed_call_is_answered_once_all_or_nothing(void **state)
{
	struct sb_fixture *f = *state;
	struct store_request_key k = { .scope = "key:1", .request_id = "rq-1",
		.method = "affiliate.v1.ApplicationService/Apply" };
	Affiliate__V1__ApiKey *key;
	unsigned char h[32] = { 1 };
	uint8_t *reply;
	size_t len;

	memset(k.digest, 7, sizeof(k.digest));
	assert_int_equal(OPS->call_begin(f->s, &k, &f->a, &reply, &len), AFF_OK);
	sb_app_new(f, 1, 2, "rq-1", AFF_OK);
	/* A refusal inside the call leaves the call's transaction usable. */
	assert_int_equal(OPS->key_create(f->s, 99, h, &f->a, &key),
	    AFF_NOT_FOUND);
	assert_int_equal(OPS->webhook_policy_set(f->s, 99, 1), AFF_NOT_FOUND);
	sb_app_new(f, 1, 2, "rq-other", AFF_ALREADY_EXISTS);
	assert_int_equal(OPS->call_end(f->s, &k, (const uint8_t *)"answer", 6),
	    AFF_OK);
	assert_int_equal(OPS->call_begin(f->s, &k, &f->a, &reply, &len),
	    AFF_ALREADY_EXISTS);
	assert_int_equal(len, 6);
	assert_memory_equal(reply, "answer", 6);
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM applications"),
	    1);
	/* Another request (digest) under the same id is another call; one
	 * rolled back leaves nothing. */
	k.digest[0] = 8;
	assert_int_equal(OPS->call_begin(f->s, &k, &f->a, &reply, &len), AFF_OK);
	sb_app_new(f, 2, 3, "rq-1", AFF_OK);
	assert_int_equal(OPS->call_end(f->s, &k, NULL, 0), AFF_OK);
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM applications"),
	    1);
	assert_int_equal(OPS->call_begin(f->s, &k, &f->a, &reply, &len), AFF_OK);
	assert_int_equal(OPS->call_end(f->s, &k, (const uint8_t *)"", 0), AFF_OK);
	assert_int_equal(OPS->call_begin(f->s, &k, &f->a, &reply, &len),
	    AFF_ALREADY_EXISTS);
	assert_int_equal(len, 0);
	/* Expired keys answer no more: the call runs again. */
	sb_sql(f->db, "UPDATE request_keys SET created_at = 1");
	assert_int_equal(OPS->call_begin(f->s, &k, &f->a, &reply, &len), AFF_OK);
	assert_int_equal(OPS->call_end(f->s, &k, (const uint8_t *)"again", 5),
	    AFF_OK);
	assert_int_equal(sb_sql_int(f->db, "SELECT count(*) FROM request_keys"),
	    1);
}

#define T(fn) SB_TEST(fn)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_name_selects_the_backend),
		cmocka_unit_test(test_the_name_is_shown_without_its_password),
		T(test_a_new_database_is_migrated_to_the_last_step_and_seeded),
		T(test_reopening_neither_migrates_nor_seeds_again),
		T(test_a_newer_schema_is_refused),
		T(test_the_seed_is_the_same_on_both_backends),
		T(test_reads_pages_and_eligibility),
		T(test_catalog_version_moves_on_every_write_by_any_client),
		T(test_applications_one_open_per_pair_and_resends),
		T(test_orders_are_stored_once_and_move_forward_only),
		T(test_a_batch_commits_all_but_the_refused_order),
		T(test_the_redis_copy_bookkeeping),
		T(test_api_keys_and_webhook_secrets),
		T(test_a_keyed_call_is_answered_once_all_or_nothing),
	};
	aff_log_set_level(AFF_LOG_ERROR);
	return (sb_run("store", tests, sizeof(tests) / sizeof(tests[0])));
}
