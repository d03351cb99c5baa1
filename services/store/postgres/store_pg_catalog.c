/*
 * store_pg_catalog.c - the catalog in PostgreSQL: reading editors,
 * advertisers, eligibility and the catalog version, and the same
 * deterministic seed as SQLite's, written by the first migration. The
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
	"a.status, a.website, a.cookie_days, a.created_at, a.updated_at"

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
	               " WHERE editor_id = $1 AND advertiser_id = $2")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

const struct store_pg_statements store_pg_catalog_statements = { stmt_sql,
	ST_COUNT };

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
