/*
 * test_store.c - the SQLite store on real files: migration, the seed,
 * reads, pagination, eligibility and the catalog version.
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
#include "testutil.h"

struct fixture {
	char *dir;
	char path[512];
	store *s;
	aff_arena arena;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(f->dir = tu_tmpdir());
	snprintf(f->path, sizeof(f->path), "%s/test.db", f->dir);
	assert_int_equal(store_open(f->path, &f->s), AFF_OK);
	aff_arena_init(&f->arena);
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	aff_arena_fini(&f->arena);
	store_close(f->s);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return (0);
}

/* Runs one integer-valued query on a separate, raw SQLite connection. */
static long long
sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return (v);
}

/* Runs SQL on a separate, raw SQLite connection with foreign keys on
 * (as the store's connections have them): SQLite's result code. The
 * catalog has no writer in the server: operators write it so. */
static int
sql_rc(const char *path, const char *sql)
{
	sqlite3 *db;
	int rc;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(
	    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL),
	    SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return (rc);
}

static void
sql_exec(const char *path, const char *sql)
{
	assert_int_equal(sql_rc(path, sql), SQLITE_OK);
}

static void
test_new_database_is_migrated_seeded_and_in_wal_mode(void **state)
{
	struct fixture *f = *state;
	long long links = 0;

	for (int e = 1; e <= STORE_SEED_EDITORS; e++)
		for (int a = 1; a <= STORE_SEED_ADVERTISERS; a++)
			links += store_seed_eligible(e, a);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 15);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM editors"),
	    STORE_SEED_EDITORS);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM advertisers"),
	    STORE_SEED_ADVERTISERS);
	assert_int_equal(
	    sql_int(f->path, "SELECT count(*) FROM eligibility"), links);
	assert_int_equal(sql_int(f->path,
	                     "SELECT count(*) FROM pragma_journal_mode"
	                     " WHERE journal_mode = 'wal'"),
	    1);
}

static void
test_every_editor_may_join_some_advertisers_and_not_others(void **state)
{
	(void)state;
	for (int e = 1; e <= STORE_SEED_EDITORS; e++) {
		int yes = 0;
		for (int a = 1; a <= STORE_SEED_ADVERTISERS; a++)
			yes += store_seed_eligible(e, a);
		assert_true(yes > 0);
		assert_true(yes < STORE_SEED_ADVERTISERS);
	}
}

static void
test_the_seed_is_the_same_on_every_new_database(void **state)
{
	struct fixture *f = *state;
	char other[600];
	store *s2;
	Affiliate__V1__Advertiser **a, **b;
	size_t na, nb;
	int more;
	struct store_advertiser_query q = { .limit = 100 };

	snprintf(other, sizeof(other), "%s/other.db", f->dir);
	assert_int_equal(store_open(other, &s2), AFF_OK);
	assert_int_equal(f->s->ops->advertiser_list(f->s, &q, &f->arena, &a,
	                     &na, &more),
	    AFF_OK);
	assert_int_equal(
	    s2->ops->advertiser_list(s2, &q, &f->arena, &b, &nb, &more), AFF_OK);
	assert_int_equal(na, STORE_SEED_ADVERTISERS);
	assert_int_equal(nb, na);
	for (size_t i = 0; i < na; i++) {
		assert_int_equal(a[i]->id, b[i]->id);
		assert_string_equal(a[i]->name, b[i]->name);
		assert_string_equal(a[i]->category, b[i]->category);
		assert_int_equal(a[i]->commission_rate_bps, b[i]->commission_rate_bps);
		assert_string_equal(a[i]->created_at, b[i]->created_at);
	}
	assert_string_equal(a[0]->name, "Nordic Outdoor");
	assert_string_equal(a[0]->created_at, "2026-01-01T00:00:00Z");
	store_close(s2);
}

static void
test_reopening_keeps_changes_and_does_not_seed_again(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__Advertiser *adv;

	sql_exec(f->path, "UPDATE advertisers SET name = 'Renamed' WHERE id = 3");
	store_close(f->s);
	assert_int_equal(store_open(f->path, &f->s), AFF_OK);
	assert_int_equal(
	    f->s->ops->advertiser_get(f->s, 3, &f->arena, &adv), AFF_OK);
	assert_string_equal(adv->name, "Renamed");
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM advertisers"),
	    STORE_SEED_ADVERTISERS);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 15);
}

static void
test_a_version_1_database_is_migrated_keeping_its_data(void **state)
{
	struct fixture *f = *state;

	/* What the first release left: the catalog only, user_version 1. */
	store_close(f->s);
	f->s = NULL;
	sql_exec(f->path, "DROP TABLE postback_attempts;"
	                  " DROP TABLE postback_deliveries;"
	                  " DROP TABLE postback_events;"
	                  " DROP TABLE postback_endpoints;"
	                  " DROP TABLE orders; DROP TABLE order_events;"
	                  " DROP TABLE jobs; DROP TABLE application_events;"
	                  " DROP TABLE applications; DROP TABLE api_keys;"
	                  " DROP TABLE webhook_secrets; DROP TABLE webhook_policies;"
	                  " DROP TABLE earnings_daily; DROP TABLE earnings_hourly;"
	                  " DROP TABLE earnings_monthly;"
	                  " DROP TABLE request_keys; DROP TABLE webhook_ids;"
	                  " DELETE FROM meta WHERE key = 'orders_copy';"
	                  " ALTER TABLE advertisers DROP COLUMN"
	                  " allow_other_currencies;"
	                  " UPDATE advertisers SET name = 'Kept' WHERE id = 1;"
	                  " PRAGMA user_version = 1;");
	assert_int_equal(store_open(f->path, &f->s), AFF_OK);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 15);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM applications"), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM request_keys"), 0);
	assert_int_equal(sql_int(f->path, "SELECT length(value) FROM meta"
	                                  " WHERE key = 'orders_copy'"),
	    16);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM advertisers"
	                                  " WHERE name = 'Kept'"),
	    1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM advertisers"),
	    STORE_SEED_ADVERTISERS);
}

static void
test_a_newer_schema_is_refused(void **state)
{
	struct fixture *f = *state;
	store *s2 = NULL;

	sql_exec(f->path, "PRAGMA user_version = 99");
	assert_int_equal(store_open(f->path, &s2), AFF_FAILED_PRECONDITION);
	assert_null(s2);
}

static void
test_advertiser_get_reads_every_field(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__Advertiser *adv;

	assert_int_equal(
	    f->s->ops->advertiser_get(f->s, 2, &f->arena, &adv), AFF_OK);
	assert_int_equal(adv->id, 2);
	assert_string_equal(adv->name, "Alpine Gear Co");
	assert_string_equal(adv->category, "outdoor");
	assert_string_equal(adv->currency, "CHF");
	assert_int_equal(adv->commission_rate_bps, 650);
	assert_string_equal(adv->status, "active");
	assert_string_equal(adv->website, "https://alpinegearco.example");
	assert_int_equal(adv->cookie_days, 30);
	assert_string_equal(adv->updated_at, "2026-01-01T00:00:00Z");
}

static void
test_advertiser_get_unknown_is_not_found(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__Advertiser *adv;

	assert_int_equal(f->s->ops->advertiser_get(f->s, 999, &f->arena, &adv),
	    AFF_NOT_FOUND);
}

static void
test_list_pages_through_all_advertisers_in_id_order(void **state)
{
	struct fixture *f = *state;
	struct store_advertiser_query q = { .limit = 5 };
	Affiliate__V1__Advertiser **v;
	size_t n, seen = 0;
	int more = 1, pages = 0;

	while (more) {
		assert_int_equal(f->s->ops->advertiser_list(
		                     f->s, &q, &f->arena, &v, &n, &more),
		    AFF_OK);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(v[i]->id, (int64_t)(seen + i + 1));
		seen += n;
		pages++;
		if (n > 0)
			q.after = v[n - 1]->id;
	}
	assert_int_equal(seen, STORE_SEED_ADVERTISERS);
	assert_int_equal(pages, (STORE_SEED_ADVERTISERS + 4) / 5);
}

static void
test_list_for_an_editor_returns_only_those_it_may_join(void **state)
{
	struct fixture *f = *state;
	struct store_advertiser_query q = { .editor_id = 1, .limit = 100 };
	Affiliate__V1__Advertiser **v;
	size_t n, k = 0;
	int more;

	assert_int_equal(
	    f->s->ops->advertiser_list(f->s, &q, &f->arena, &v, &n, &more),
	    AFF_OK);
	assert_false(more);
	for (int a = 1; a <= STORE_SEED_ADVERTISERS; a++)
		if (store_seed_eligible(1, a)) {
			assert_true(k < n);
			assert_int_equal(v[k++]->id, a);
		}
	assert_int_equal(k, n);
	assert_int_equal(f->s->ops->eligible(f->s, 1, 2), AFF_OK);
	assert_int_equal(f->s->ops->eligible(f->s, 1, 1), AFF_PERMISSION_DENIED);
}

static void
test_editor_exists(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->s->ops->editor_exists(f->s, 1), AFF_OK);
	assert_int_equal(f->s->ops->editor_exists(f->s, 99), AFF_NOT_FOUND);
}

static void
test_catalog_version_moves_on_every_write_by_any_client(void **state)
{
	struct fixture *f = *state;
	const char *id1, *id2;
	int64_t v1, v2, v3, v4, v5;

	assert_int_equal(f->s->ops->catalog_version(f->s, &id1, &v1), AFF_OK);
	assert_int_equal(strlen(id1), 32);
	/* Writes from another connection (the operator's sqlite3 shell, the
	 * catalog's only writer) move it on: the triggers count them. */
	sql_exec(f->path, "INSERT INTO advertisers (id, name, category,"
	                  " currency, commission_rate_bps, status, created_at,"
	                  " updated_at) VALUES (50, 'New Shop', 'misc', 'EUR',"
	                  " 500, 'active', 1767225600, 1767225600)");
	assert_int_equal(f->s->ops->catalog_version(f->s, &id2, &v2), AFF_OK);
	assert_true(v2 > v1);
	assert_string_equal(id1, id2);
	sql_exec(f->path, "INSERT INTO eligibility (editor_id, advertiser_id)"
	                  " VALUES (1, 50)");
	assert_int_equal(f->s->ops->eligible(f->s, 1, 50), AFF_OK);
	assert_int_equal(f->s->ops->catalog_version(f->s, &id2, &v3), AFF_OK);
	assert_true(v3 > v2);
	sql_exec(f->path, "UPDATE advertisers SET commission_rate_bps = 600"
	                  " WHERE id = 50");
	assert_int_equal(f->s->ops->catalog_version(f->s, &id2, &v4), AFF_OK);
	assert_true(v4 > v3);
	sql_exec(f->path, "DELETE FROM eligibility WHERE editor_id = 1"
	                  " AND advertiser_id = 50");
	assert_int_equal(f->s->ops->catalog_version(f->s, &id2, &v5), AFF_OK);
	assert_true(v5 > v4);
	assert_int_equal(f->s->ops->eligible(f->s, 1, 50), AFF_PERMISSION_DENIED);
}

static void
test_bad_writes_are_refused_by_constraints(void **state)
{
	struct fixture *f = *state;

	/* The schema itself refuses them, whoever writes: no link to an
	 * editor that does not exist (foreign keys), no rate over 100 %,
	 * no advertiser id 0. */
	assert_int_equal(sql_rc(f->path, "INSERT INTO eligibility (editor_id,"
	                                 " advertiser_id) VALUES (99, 1)"),
	    SQLITE_CONSTRAINT);
	assert_int_equal(sql_rc(f->path, "INSERT INTO advertisers (id, name,"
	                                 " category, commission_rate_bps,"
	                                 " created_at, updated_at) VALUES (60,"
	                                 " 'Bad Rate', 'misc', 20000, 0, 0)"),
	    SQLITE_CONSTRAINT);
	assert_int_equal(sql_rc(f->path, "INSERT INTO advertisers (id, name,"
	                                 " category, commission_rate_bps,"
	                                 " created_at, updated_at) VALUES (0,"
	                                 " 'Bad Id', 'misc', 500, 0, 0)"),
	    SQLITE_CONSTRAINT);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM advertisers"),
	    STORE_SEED_ADVERTISERS);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM eligibility"
	                                  " WHERE editor_id = 99"), 0);
	/* The store's own connections have the foreign keys on too. */
	{
		struct store_order_in o = { .order_id = "fk-1",
			.advertiser_id = 1, .editor_id = 99, .amount_cents = 100,
			.commission_cents = 10, .currency = "EUR" };
		enum store_order_outcome outcome;
		Affiliate__V1__Order *out = NULL;

		assert_int_equal(f->s->ops->order_put(f->s, &o, &f->arena, &out,
		                     &outcome),
		    AFF_NOT_FOUND);
		assert_int_equal(outcome, STORE_ORDER_NO_EDITOR);
		assert_int_equal(
		    sql_int(f->path, "SELECT count(*) FROM orders"), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_new_database_is_migrated_seeded_and_in_wal_mode, setup,
		    teardown),
		cmocka_unit_test(
		    test_every_editor_may_join_some_advertisers_and_not_others),
		cmocka_unit_test_setup_teardown(
		    test_the_seed_is_the_same_on_every_new_database, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_reopening_keeps_changes_and_does_not_seed_again, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_version_1_database_is_migrated_keeping_its_data, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_newer_schema_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_advertiser_get_reads_every_field, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_advertiser_get_unknown_is_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_list_pages_through_all_advertisers_in_id_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_list_for_an_editor_returns_only_those_it_may_join, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_editor_exists, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_catalog_version_moves_on_every_write_by_any_client, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_writes_are_refused_by_constraints, setup, teardown),
	};

	aff_log_set_level(AFF_LOG_ERROR);
	return (cmocka_run_group_tests_name("store", tests, NULL, NULL));
}
