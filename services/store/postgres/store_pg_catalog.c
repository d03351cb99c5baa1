/*
 * store_pg_catalog.c - the catalog in PostgreSQL: reading editors,
 * advertisers, eligibility and the catalog version, and the same
 * deterministic seed as SQLite's, written by the first migration, and
 * the admins' writes (CatalogService). The
 * version row is moved by triggers on every catalog write by any client
 * (another server, an operator's psql), and read per call (one indexed
 * row), so every server's cache sees another's change at once.
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_pg_private.h"

#define ADV_COLUMNS                                                            \
	"a.id, a.name, a.category, a.currency, a.commission_rate_bps, "        \
	"a.status, a.website, a.cookie_days, a.created_at, a.updated_at, "     \
	"a.allow_other_currencies"
#define ADV_RETURNING                                                          \
	" RETURNING id, name, category, currency, commission_rate_bps,"        \
	" status, website, cookie_days, created_at, updated_at,"               \
	" allow_other_currencies"
#define EDITOR_RETURNING " RETURNING id, name, website, created_at"

#define STATEMENTS(X)                                                          \
	X(ST_CATALOG_VERSION,                                                  \
	    "SELECT version FROM catalog_version WHERE id = 1")                \
	X(ST_EDITOR_EXISTS, "SELECT 1 FROM editors WHERE id = $1")             \
	X(ST_ADV_GET,                                                          \
	    "SELECT " ADV_COLUMNS " FROM advertisers a WHERE a.id = $1")       \
	X(ST_ADV_LIST, "SELECT " ADV_COLUMNS " FROM advertisers a"             \
	               " WHERE a.id > $1 ORDER BY a.id LIMIT $2")              \
	X(ST_ADV_LIST_EDITOR, "SELECT " ADV_COLUMNS " FROM advertisers a"      \
	                      " JOIN eligibility e ON e.advertiser_id = a.id"  \
	                      " AND e.editor_id = $3"                          \
	                      " WHERE a.id > $1 ORDER BY a.id LIMIT $2")       \
	X(ST_ELIGIBLE, "SELECT 1 FROM eligibility"                             \
	               " WHERE editor_id = $1 AND advertiser_id = $2")         \
	/* Ids are given in the seed, so the table has no sequence: the   */ \
	/* next is max + 1 under a lock that only catalog writers take    */ \
	/* (SHARE ROW EXCLUSIVE: reads and the orders' key checks pass).  */ \
	X(ST_ADV_LOCK, "LOCK TABLE advertisers IN SHARE ROW EXCLUSIVE MODE")   \
	X(ST_EDITOR_LOCK, "LOCK TABLE editors IN SHARE ROW EXCLUSIVE MODE")    \
	X(ST_ADV_INSERT,                                                       \
	    "INSERT INTO advertisers (id, name, category, currency,"           \
	    " commission_rate_bps, status, website, cookie_days,"              \
	    " allow_other_currencies, created_at, updated_at)"                 \
	    " SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8," \
	    " $9, $9 FROM advertisers" ADV_RETURNING)                          \
	X(ST_ADV_UPDATE,                                                       \
	    "UPDATE advertisers SET name = coalesce($2, name),"                \
	    " category = coalesce($3, category),"                              \
	    " currency = coalesce($4, currency),"                              \
	    " commission_rate_bps = coalesce($5::integer, commission_rate_bps),"\
	    " status = coalesce($6, status), website = coalesce($7, website)," \
	    " cookie_days = coalesce($8::integer, cookie_days),"               \
	    " allow_other_currencies = coalesce($9::integer,"                  \
	    " allow_other_currencies),"                                        \
	    " updated_at = $10 WHERE id = $1" ADV_RETURNING)                   \
	X(ST_EDITOR_INSERT, "INSERT INTO editors (id, name, website,"          \
	                    " created_at) SELECT coalesce(max(id), 0) + 1,"    \
	                    " $1, $2, $3 FROM editors" EDITOR_RETURNING)       \
	X(ST_EDITOR_UPDATE,                                                    \
	    "UPDATE editors SET name = coalesce($2, name),"                    \
	    " website = coalesce($3, website) WHERE id = $1" EDITOR_RETURNING) \
	X(ST_ELIG_GRANT, "INSERT INTO eligibility (editor_id, advertiser_id)"  \
	                 " VALUES ($1, $2) ON CONFLICT DO NOTHING")            \
	X(ST_ELIG_REVOKE, "DELETE FROM eligibility"                            \
	                  " WHERE editor_id = $1 AND advertiser_id = $2")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

const struct store_pg_statements store_pg_catalog_statements = {
	.sql = stmt_sql, .n = ST_COUNT };

/* Runs one seed INSERT with its parameters (inside the migration's
 * transaction). */
static int
seed_run(pg_store *s, const char *sql, const struct pg_params *p)
{
	PGresult *r = PQexecParams(s->conn, sql, p->n, NULL, p->v, p->len,
	    p->fmt, 0);
	int rv = AFF_OK;

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		aff_error("store: seed: %s", PQresultErrorMessage(r));
		rv = AFF_INTERNAL;
	}
	PQclear(r);
	return (rv);
}

/* Row by row, as SQLite's seed, so the catalog version after it is the
 * same number on both. */
int
store_pg_catalog_seed(pg_store *s)
{
	size_t ne = STORE_SEED_EDITORS, na = STORE_SEED_ADVERTISERS;
	struct pg_params p;
	char dbid[33];
	int rv;

	aff_request_id_new(dbid);
	p = (struct pg_params){ 0 };
	store_pg_p_text(&p, dbid);
	if ((rv = seed_run(s, "INSERT INTO meta (key, value) VALUES"
	                      " ('db_id', $1)",
	         &p)) != AFF_OK)
		return (rv);
	for (size_t i = 0; i < ne; i++) {
		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, (int64_t)i + 1);
		store_pg_p_text(&p, store_seed_editors[i].name);
		store_pg_p_text(&p, store_seed_editors[i].website);
		store_pg_p_int(&p, STORE_SEED_TIME);
		if ((rv = seed_run(s, "INSERT INTO editors (id, name, website,"
		                      " created_at) VALUES ($1, $2, $3, $4)",
		         &p)) != AFF_OK)
			return (rv);
	}
	for (size_t i = 0; i < na; i++) {
		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, (int64_t)i + 1);
		store_pg_p_text(&p, store_seed_advertisers[i].name);
		store_pg_p_text(&p, store_seed_advertisers[i].category);
		store_pg_p_text(&p, store_seed_advertisers[i].currency);
		store_pg_p_int(&p, store_seed_advertisers[i].rate_bps);
		store_pg_p_text(&p, store_seed_advertisers[i].status);
		store_pg_p_int(&p, store_seed_advertisers[i].cookie_days);
		store_pg_p_int(&p, STORE_SEED_TIME);
		if ((rv = seed_run(s,
		         "INSERT INTO advertisers (id, name, category, currency,"
		         " commission_rate_bps, status, website, cookie_days,"
		         " created_at, updated_at) VALUES ($1, $2::text, $3, $4,"
		         " $5, $6, 'https://' || lower(replace(replace($2::text,"
		         " ' ', ''), '&', 'and')) || '.example', $7, $8, $8)",
		         &p)) != AFF_OK)
			return (rv);
	}
	for (size_t e = 1; e <= ne; e++)
		for (size_t a = 1; a <= na; a++) {
			if (!store_seed_eligible((int64_t)e, (int64_t)a))
				continue;
			p = (struct pg_params){ 0 };
			store_pg_p_int(&p, (int64_t)e);
			store_pg_p_int(&p, (int64_t)a);
			if ((rv = seed_run(s, "INSERT INTO eligibility"
			                      " (editor_id, advertiser_id)"
			                      " VALUES ($1, $2)",
			         &p)) != AFF_OK)
				return (rv);
		}
	return (AFF_OK);
}

int
store_pg_catalog_version(store *base, const char **db_id, int64_t *version)
{
	pg_store *s = PG_STORE(base);
	PGresult *res;
	int rv;

	/* In memory while the server's listener follows the changes
	 * (store_pg_watch.c); from the database otherwise. */
	if (store_pg_watch_version(s->watch, version) == AFF_OK) {
		*db_id = s->db_id;
		return (AFF_OK);
	}
	if ((rv = store_pg_run(s, PQ_CATALOG, ST_CATALOG_VERSION, NULL, &res,
	         "catalog version")) != AFF_OK)
		return (rv);
	if (PQntuples(res) == 1) {
		*version = store_pg_int(res, 0, 0);
		*db_id = s->db_id;
	} else
		rv = AFF_INTERNAL;
	PQclear(res);
	return (rv);
}

int
store_pg_catalog_editor_exists(pg_store *s, int64_t id)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, id);
	return (store_pg_exists(s, PQ_CATALOG, ST_EDITOR_EXISTS, &p,
	    AFF_NOT_FOUND));
}

int
store_pg_editor_exists(store *base, int64_t id)
{
	return (store_pg_catalog_editor_exists(PG_STORE(base), id));
}

int
store_pg_eligible(store *base, int64_t editor_id, int64_t advertiser_id)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, editor_id);
	store_pg_p_int(&p, advertiser_id);
	return (store_pg_exists(PG_STORE(base), PQ_CATALOG, ST_ELIGIBLE, &p,
	    AFF_PERMISSION_DENIED));
}

/* Reads an Affiliate__V1__Advertiser from row r (ADV_COLUMNS order). */
static void *
row_advertiser(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__Advertiser *adv;

	if ((adv = aff_arena_alloc(a, sizeof(*adv))) == NULL)
		return (NULL);
	affiliate__v1__advertiser__init(adv);
	adv->id = store_pg_int(res, r, 0);
	adv->name = store_pg_text(res, r, 1, a);
	adv->category = store_pg_text(res, r, 2, a);
	adv->currency = store_pg_text(res, r, 3, a);
	adv->commission_rate_bps = (int32_t)store_pg_int(res, r, 4);
	adv->status = store_pg_text(res, r, 5, a);
	adv->website = store_pg_text(res, r, 6, a);
	adv->cookie_days = (int32_t)store_pg_int(res, r, 7);
	adv->created_at = store_pg_time(res, r, 8, a);
	adv->updated_at = store_pg_time(res, r, 9, a);
	adv->allow_other_currencies = store_pg_int(res, r, 10) != 0;
	if (adv->name == NULL || adv->category == NULL ||
	    adv->currency == NULL || adv->status == NULL ||
	    adv->website == NULL || adv->created_at == NULL ||
	    adv->updated_at == NULL)
		return (NULL);
	return (adv);
}

int
store_pg_advertiser_get(
    store *base, int64_t id, aff_arena *a, Affiliate__V1__Advertiser **out)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, id);
	return (store_pg_one_row(PG_STORE(base), PQ_CATALOG, ST_ADV_GET, &p,
	    row_advertiser, a, out, "advertiser get"));
}

int
store_pg_advertiser_list(store *base, const struct store_advertiser_query *q,
    aff_arena *a, Affiliate__V1__Advertiser ***out, size_t *n, int *more)
{
	struct pg_params p = { 0 };

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	store_pg_p_int(&p, q->after);
	store_pg_p_int(&p, (int64_t)q->limit + 1);
	if (q->editor_id > 0)
		store_pg_p_int(&p, q->editor_id);
	return (store_pg_list_page(PG_STORE(base), PQ_CATALOG,
	    q->editor_id > 0 ? ST_ADV_LIST_EDITOR : ST_ADV_LIST, &p, q->limit,
	    row_advertiser, a, out, n, more, NULL, "advertiser list"));
}

/* The parameter, or NULL when not given (coalesce keeps the column). */
static void
p_opt_text(struct pg_params *p, int given, const char *v)
{
	if (given && v != NULL)
		store_pg_p_text(p, v);
	else
		store_pg_p_null(p);
}

static void
p_opt_int(struct pg_params *p, int given, int64_t v)
{
	if (given)
		store_pg_p_int(p, v);
	else
		store_pg_p_null(p);
}

static void
p_advertiser(struct pg_params *p, const struct store_advertiser_in *in)
{
	p_opt_text(p, in->set & STORE_ADV_NAME, in->name);
	p_opt_text(p, in->set & STORE_ADV_CATEGORY, in->category);
	p_opt_text(p, in->set & STORE_ADV_CURRENCY, in->currency);
	p_opt_int(p, in->set & STORE_ADV_RATE, in->commission_rate_bps);
	p_opt_text(p, in->set & STORE_ADV_STATUS, in->status);
	p_opt_text(p, in->set & STORE_ADV_WEBSITE, in->website);
	p_opt_int(p, in->set & STORE_ADV_COOKIE_DAYS, in->cookie_days);
	p_opt_int(p, in->set & STORE_ADV_OTHER_CURRENCIES,
	    in->allow_other_currencies != 0);
}

/*
 * A catalog write: statement i (after the lock statement, when not -1),
 * reading one row with row when it has one (out: T **), in a transaction
 * (or a keyed call's savepoint) that also reads the version it leaves.
 * This server's in-memory version is then told (store_pg_watch_note):
 * its next read sees the change without waiting for the notification.
 */
static int
catalog_write(pg_store *s, int lock, int i, const struct pg_params *p,
    store_pg_row_fn *row, aff_arena *a, void *out, const char *what)
{
	PGresult *res;
	int64_t version = 0;
	int rv;

	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	if (lock >= 0)
		rv = store_pg_run(s, PQ_CATALOG, lock, NULL, NULL, what);
	if (rv == AFF_OK && row != NULL)
		rv = store_pg_one_row(s, PQ_CATALOG, i, p, row, a, out, what);
	else if (rv == AFF_OK)
		rv = store_pg_run(s, PQ_CATALOG, i, p, NULL, what);
	if (rv == AFF_OK &&
	    (rv = store_pg_run(s, PQ_CATALOG, ST_CATALOG_VERSION, NULL, &res,
	         "catalog version")) == AFF_OK) {
		if (PQntuples(res) == 1)
			version = store_pg_int(res, 0, 0);
		PQclear(res);
	}
	if ((rv = store_pg_tx_end(s, rv)) == AFF_OK && version > 0)
		store_pg_watch_note(s->watch, version);
	return (rv);
}

int
store_pg_advertiser_create(store *base, const struct store_advertiser_in *in,
    aff_arena *a, Affiliate__V1__Advertiser **out)
{
	struct pg_params p = { 0 };

	p_advertiser(&p, in);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	return (catalog_write(PG_STORE(base), ST_ADV_LOCK, ST_ADV_INSERT, &p,
	    row_advertiser, a, out, "advertiser create"));
}

int
store_pg_advertiser_update(store *base, int64_t id,
    const struct store_advertiser_in *in, aff_arena *a,
    Affiliate__V1__Advertiser **out)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, id);
	p_advertiser(&p, in);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	return (catalog_write(PG_STORE(base), -1, ST_ADV_UPDATE, &p,
	    row_advertiser, a, out, "advertiser update"));
}

/* Reads an Affiliate__V1__Editor (id, name, website, created_at). */
static void *
row_editor(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__Editor *e;

	if ((e = aff_arena_alloc(a, sizeof(*e))) == NULL)
		return (NULL);
	affiliate__v1__editor__init(e);
	e->id = store_pg_int(res, r, 0);
	e->name = store_pg_text(res, r, 1, a);
	e->website = store_pg_text(res, r, 2, a);
	e->created_at = store_pg_time(res, r, 3, a);
	if (e->name == NULL || e->website == NULL || e->created_at == NULL)
		return (NULL);
	return (e);
}

int
store_pg_editor_create(store *base, const struct store_editor_in *in,
    aff_arena *a, Affiliate__V1__Editor **out)
{
	struct pg_params p = { 0 };

	store_pg_p_text(&p, in->name);
	store_pg_p_text(&p, in->website != NULL ? in->website : "");
	store_pg_p_int(&p, aff_now_ms() / 1000);
	return (catalog_write(PG_STORE(base), ST_EDITOR_LOCK, ST_EDITOR_INSERT,
	    &p, row_editor, a, out, "editor create"));
}

int
store_pg_editor_update(store *base, int64_t id,
    const struct store_editor_in *in, aff_arena *a, Affiliate__V1__Editor **out)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, id);
	p_opt_text(&p, in->name != NULL, in->name);
	p_opt_text(&p, in->website != NULL, in->website);
	return (catalog_write(PG_STORE(base), -1, ST_EDITOR_UPDATE, &p,
	    row_editor, a, out, "editor update"));
}

int
store_pg_eligibility_set(store *base, int64_t editor_id,
    int64_t advertiser_id, int eligible)
{
	struct pg_params p = { 0 };
	int rv;

	store_pg_p_int(&p, editor_id);
	store_pg_p_int(&p, advertiser_id);
	rv = catalog_write(PG_STORE(base), -1,
	    eligible ? ST_ELIG_GRANT : ST_ELIG_REVOKE, &p, NULL, NULL, NULL,
	    "eligibility set");
	if (rv == AFF_INVALID_ARGUMENT) /* a foreign key: an unknown id */
		rv = AFF_NOT_FOUND;
	return (rv);
}
