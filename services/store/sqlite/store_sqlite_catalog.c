/*
 * store_sqlite_catalog.c - the catalog in SQLite: reading editors,
 * advertisers, who may join whom (eligibility) and the catalog version
 * that retires cached reads, and the deterministic seed the first
 * migration writes, and the admins' writes (CatalogService). Whoever
 * writes the catalog (this server, or an operator with the sqlite3
 * shell), the schema's triggers move the version in the same
 * transaction; every read of the version is from the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_sqlite_private.h"

#define ADV_COLUMNS                                                            \
	"a.id, a.name, a.category, a.currency, a.commission_rate_bps, "        \
	"a.status, a.website, a.cookie_days, a.created_at, a.updated_at, "     \
	"a.allow_other_currencies"
/* The same, for RETURNING (no alias there). */
#define ADV_RETURNING                                                          \
	" RETURNING id, name, category, currency, commission_rate_bps,"        \
	" status, website, cookie_days, created_at, updated_at,"               \
	" allow_other_currencies"
#define EDITOR_RETURNING " RETURNING id, name, website, created_at"

#define STATEMENTS(X)                                                          \
	X(ST_CATALOG_VERSION,                                                  \
	    "SELECT version FROM catalog_version WHERE id = 1")                \
	X(ST_EDITOR_EXISTS, "SELECT 1 FROM editors WHERE id = ?1")             \
	X(ST_ADV_GET,                                                          \
	    "SELECT " ADV_COLUMNS " FROM advertisers a WHERE a.id = ?1")       \
	X(ST_ADV_LIST, "SELECT " ADV_COLUMNS " FROM advertisers a"             \
	               " WHERE a.id > ?1 ORDER BY a.id LIMIT ?2")              \
	X(ST_ADV_LIST_EDITOR, "SELECT " ADV_COLUMNS " FROM advertisers a"      \
	                      " JOIN eligibility e ON e.advertiser_id = a.id"  \
	                      " AND e.editor_id = ?3"                          \
	                      " WHERE a.id > ?1 ORDER BY a.id LIMIT ?2")       \
	X(ST_ELIGIBLE, "SELECT 1 FROM eligibility"                             \
	               " WHERE editor_id = ?1 AND advertiser_id = ?2")         \
	X(ST_ADV_INSERT,                                                       \
	    "INSERT INTO advertisers (name, category, currency,"               \
	    " commission_rate_bps, status, website, cookie_days,"              \
	    " allow_other_currencies, created_at, updated_at)"                 \
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)" ADV_RETURNING)  \
	X(ST_ADV_UPDATE,                                                       \
	    "UPDATE advertisers SET name = coalesce(?2, name),"                \
	    " category = coalesce(?3, category),"                              \
	    " currency = coalesce(?4, currency),"                              \
	    " commission_rate_bps = coalesce(?5, commission_rate_bps),"        \
	    " status = coalesce(?6, status), website = coalesce(?7, website)," \
	    " cookie_days = coalesce(?8, cookie_days),"                        \
	    " allow_other_currencies = coalesce(?9, allow_other_currencies),"  \
	    " updated_at = ?10 WHERE id = ?1" ADV_RETURNING)                   \
	X(ST_EDITOR_INSERT, "INSERT INTO editors (name, website, created_at)"  \
	                    " VALUES (?1, ?2, ?3)" EDITOR_RETURNING)           \
	X(ST_EDITOR_UPDATE,                                                    \
	    "UPDATE editors SET name = coalesce(?2, name),"                    \
	    " website = coalesce(?3, website) WHERE id = ?1" EDITOR_RETURNING) \
	X(ST_ELIG_GRANT, "INSERT INTO eligibility (editor_id, advertiser_id)"  \
	                 " VALUES (?1, ?2) ON CONFLICT DO NOTHING")            \
	X(ST_ELIG_REVOKE, "DELETE FROM eligibility"                            \
	                  " WHERE editor_id = ?1 AND advertiser_id = ?2")

enum { STATEMENTS(SQLITE_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(SQLITE_STMT_SQL) };

const struct store_sqlite_statements store_sqlite_catalog_statements = {
	stmt_sql,
	ST_COUNT,
};

#define STMT(s, i) ((s)->st[SQ_CATALOG][i])

int
store_sqlite_catalog_seed(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	char dbid[33];
	int rc;
	size_t ne = STORE_SEED_EDITORS, na = STORE_SEED_ADVERTISERS;

	aff_request_id_new(dbid);
	rc = sqlite3_prepare_v2(db,
	    "INSERT INTO meta (key, value) VALUES ('db_id', ?1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto failed;
	sqlite3_bind_text(st, 1, dbid, -1, SQLITE_TRANSIENT);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		goto failed;
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(db,
	    "INSERT INTO editors (id, name, website, created_at)"
	    " VALUES (?1, ?2, ?3, ?4)",
	    -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto failed;
	for (size_t i = 0; i < ne; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (int64_t)i + 1);
		sqlite3_bind_text(st, 2, store_seed_editors[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, store_seed_editors[i].website, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, STORE_SEED_TIME);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE)
			goto failed;
	}
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(db,
	    "INSERT INTO advertisers (id, name, category, currency,"
	    " commission_rate_bps, status, website, cookie_days, created_at,"
	    " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	    " 'https://' || lower(replace(replace(?2, ' ', ''), '&', 'and'))"
	    " || '.example', ?7, ?8, ?8)",
	    -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto failed;
	for (size_t i = 0; i < na; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (int64_t)i + 1);
		sqlite3_bind_text(st, 2, store_seed_advertisers[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    st, 3, store_seed_advertisers[i].category, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    st, 4, store_seed_advertisers[i].currency, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, store_seed_advertisers[i].rate_bps);
		sqlite3_bind_text(st, 6, store_seed_advertisers[i].status, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 7, store_seed_advertisers[i].cookie_days);
		sqlite3_bind_int64(st, 8, STORE_SEED_TIME);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE)
			goto failed;
	}
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(db,
	    "INSERT INTO eligibility (editor_id, advertiser_id) VALUES (?1, ?2)",
	    -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto failed;
	for (size_t e = 1; e <= ne; e++)
		for (size_t a = 1; a <= na; a++) {
			if (!store_seed_eligible((int64_t)e, (int64_t)a))
				continue;
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, (int64_t)e);
			sqlite3_bind_int64(st, 2, (int64_t)a);
			if ((rc = sqlite3_step(st)) != SQLITE_DONE)
				goto failed;
		}
	sqlite3_finalize(st);
	return (AFF_OK);

failed:
	sqlite3_finalize(st);
	return (store_sqlite_err(db, rc, "seed"));
}

int
store_sqlite_catalog_version(store *base, const char **db_id, int64_t *version)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_CATALOG_VERSION);
	int rc, rv = AFF_INTERNAL;

	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*version = sqlite3_column_int64(st, 0);
		*db_id = s->db_id;
		rv = AFF_OK;
	} else
		rv = store_sqlite_err(s->db, rc, "catalog version");
	store_sqlite_stmt_done(st);
	return (rv);
}

int
store_sqlite_catalog_editor_exists(sqlite_store *s, int64_t id)
{
	return (store_sqlite_exists(s, STMT(s, ST_EDITOR_EXISTS), id, 0,
	    AFF_NOT_FOUND));
}

int
store_sqlite_editor_exists(store *base, int64_t id)
{
	return (store_sqlite_catalog_editor_exists(SQLITE_STORE(base), id));
}

int
store_sqlite_eligible(store *base, int64_t editor_id, int64_t advertiser_id)
{
	sqlite_store *s = SQLITE_STORE(base);

	return (store_sqlite_exists(s, STMT(s, ST_ELIGIBLE), editor_id,
	    advertiser_id, AFF_PERMISSION_DENIED));
}

/* Reads an Affiliate__V1__Advertiser from the current row (ADV_COLUMNS
 * order); a store_sqlite_row_fn. */
static void *
row_advertiser(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__Advertiser *adv;

	if ((adv = aff_arena_alloc(a, sizeof(*adv))) == NULL)
		return (NULL);
	affiliate__v1__advertiser__init(adv);
	adv->id = sqlite3_column_int64(st, 0);
	adv->name = store_sqlite_col_text(st, 1, a);
	adv->category = store_sqlite_col_text(st, 2, a);
	adv->currency = store_sqlite_col_text(st, 3, a);
	adv->commission_rate_bps = sqlite3_column_int(st, 4);
	adv->status = store_sqlite_col_text(st, 5, a);
	adv->website = store_sqlite_col_text(st, 6, a);
	adv->cookie_days = sqlite3_column_int(st, 7);
	adv->created_at = store_sqlite_col_time(st, 8, a);
	adv->updated_at = store_sqlite_col_time(st, 9, a);
	adv->allow_other_currencies = sqlite3_column_int(st, 10) != 0;
	if (adv->name == NULL || adv->category == NULL ||
	    adv->currency == NULL || adv->status == NULL ||
	    adv->website == NULL || adv->created_at == NULL ||
	    adv->updated_at == NULL)
		return (NULL);
	return (adv);
}

int
store_sqlite_advertiser_get(
    store *base, int64_t id, aff_arena *a, Affiliate__V1__Advertiser **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_ADV_GET);

	sqlite3_bind_int64(st, 1, id);
	return (store_sqlite_one_row(s, st, row_advertiser, a, out, "advertiser get"));
}

int
store_sqlite_advertiser_list(store *base,
    const struct store_advertiser_query *q, aff_arena *a,
    Affiliate__V1__Advertiser ***out, size_t *n, int *more)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st;

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	st = STMT(s, q->editor_id > 0 ? ST_ADV_LIST_EDITOR : ST_ADV_LIST);
	sqlite3_bind_int64(st, 1, q->after);
	sqlite3_bind_int64(st, 2, (int64_t)q->limit + 1);
	if (q->editor_id > 0)
		sqlite3_bind_int64(st, 3, q->editor_id);
	return (store_sqlite_list_page(s, st, q->limit, row_advertiser, a, out, n,
	    more, NULL, "advertiser list"));
}

/* Binds text or, when not given, NULL (coalesce keeps the column). */
static void
bind_opt_text(sqlite3_stmt *st, int i, int given, const char *v)
{
	if (given && v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void
bind_opt_int(sqlite3_stmt *st, int i, int given, int64_t v)
{
	if (given)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

/* Binds in's fields as ?2..?9 (ST_ADV_UPDATE's order; ST_ADV_INSERT's
 * less one). */
static void
bind_advertiser(sqlite3_stmt *st, int first, const struct store_advertiser_in *in)
{
	bind_opt_text(st, first, in->set & STORE_ADV_NAME, in->name);
	bind_opt_text(st, first + 1, in->set & STORE_ADV_CATEGORY, in->category);
	bind_opt_text(st, first + 2, in->set & STORE_ADV_CURRENCY, in->currency);
	bind_opt_int(st, first + 3, in->set & STORE_ADV_RATE,
	    in->commission_rate_bps);
	bind_opt_text(st, first + 4, in->set & STORE_ADV_STATUS, in->status);
	bind_opt_text(st, first + 5, in->set & STORE_ADV_WEBSITE, in->website);
	bind_opt_int(st, first + 6, in->set & STORE_ADV_COOKIE_DAYS,
	    in->cookie_days);
	bind_opt_int(st, first + 7, in->set & STORE_ADV_OTHER_CURRENCIES,
	    in->allow_other_currencies != 0);
}

/* One write statement returning one row, in a transaction of its own (or
 * a savepoint of a keyed call's). */
static int
write_one(sqlite_store *s, sqlite3_stmt *st, store_sqlite_row_fn *row,
    aff_arena *a, void *out, const char *what)
{
	int rv;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK) {
		store_sqlite_stmt_done(st);
		return (rv);
	}
	rv = store_sqlite_one_row(s, st, row, a, out, what);
	return (store_sqlite_tx_end(s, rv));
}

int
store_sqlite_advertiser_create(store *base,
    const struct store_advertiser_in *in, aff_arena *a,
    Affiliate__V1__Advertiser **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_ADV_INSERT);

	bind_advertiser(st, 1, in);
	sqlite3_bind_int64(st, 9, aff_now_ms() / 1000);
	return (write_one(s, st, row_advertiser, a, out, "advertiser create"));
}

int
store_sqlite_advertiser_update(store *base, int64_t id,
    const struct store_advertiser_in *in, aff_arena *a,
    Affiliate__V1__Advertiser **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_ADV_UPDATE);

	sqlite3_bind_int64(st, 1, id);
	bind_advertiser(st, 2, in);
	sqlite3_bind_int64(st, 10, aff_now_ms() / 1000);
	return (write_one(s, st, row_advertiser, a, out, "advertiser update"));
}

/* Reads an Affiliate__V1__Editor (id, name, website, created_at). */
static void *
row_editor(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__Editor *e;

	if ((e = aff_arena_alloc(a, sizeof(*e))) == NULL)
		return (NULL);
	affiliate__v1__editor__init(e);
	e->id = sqlite3_column_int64(st, 0);
	e->name = store_sqlite_col_text(st, 1, a);
	e->website = store_sqlite_col_text(st, 2, a);
	e->created_at = store_sqlite_col_time(st, 3, a);
	if (e->name == NULL || e->website == NULL || e->created_at == NULL)
		return (NULL);
	return (e);
}

int
store_sqlite_editor_create(store *base, const struct store_editor_in *in,
    aff_arena *a, Affiliate__V1__Editor **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_EDITOR_INSERT);

	sqlite3_bind_text(st, 1, in->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, in->website != NULL ? in->website : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, aff_now_ms() / 1000);
	return (write_one(s, st, row_editor, a, out, "editor create"));
}

int
store_sqlite_editor_update(store *base, int64_t id,
    const struct store_editor_in *in, aff_arena *a, Affiliate__V1__Editor **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_EDITOR_UPDATE);

	sqlite3_bind_int64(st, 1, id);
	bind_opt_text(st, 2, in->name != NULL, in->name);
	bind_opt_text(st, 3, in->website != NULL, in->website);
	return (write_one(s, st, row_editor, a, out, "editor update"));
}

int
store_sqlite_eligibility_set(store *base, int64_t editor_id,
    int64_t advertiser_id, int eligible)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, eligible ? ST_ELIG_GRANT : ST_ELIG_REVOKE);
	int rv;

	sqlite3_bind_int64(st, 1, editor_id);
	sqlite3_bind_int64(st, 2, advertiser_id);
	rv = store_sqlite_step_write(s, st, "eligibility set");
	if (rv == AFF_INVALID_ARGUMENT) /* a foreign key: an unknown id */
		rv = AFF_NOT_FOUND;
	return (rv);
}
