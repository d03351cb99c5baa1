/*
 * store_pg_keys.c - who may call and what they called, in PostgreSQL:
 * API keys (only the SHA-256 of each secret), the request keys that make
 * a keyed call's answer part of its transaction (call_begin/call_end),
 * and the advertisers' own webhook signing secrets and policies.
 *
 * A request key is claimed by inserting it first, its reply NULL until
 * call_end fills it in the same transaction. PostgreSQL has no database
 * write lock as SQLite's BEGIN IMMEDIATE: the primary key is the lock. The
 * same call arriving on two servers at once: the second one's insert
 * waits for the first one's transaction, then finds the key answered
 * (and reads the stored reply), or, rolled back, claims it itself.
 */
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "aff_err.h"
#include "aff_util.h"
#include "store.h"
#include "store_pg_private.h"

#define KEY_COLUMNS                                                            \
	"id, role, coalesce(editor_id, 0), created_at, revoked_at"

#define STATEMENTS(X)                                                          \
	/* Ours when new, or when the one stored has expired ($6). */          \
	X(ST_RKEY_CLAIM, "INSERT INTO request_keys (scope, request_id,"        \
	                 " digest, method, reply, created_at)"                 \
	                 " VALUES ($1, $2, $3, $4, NULL, $5)"                  \
	                 " ON CONFLICT (scope, request_id, digest) DO UPDATE"  \
	                 " SET method = excluded.method, reply = NULL,"        \
	                 " created_at = excluded.created_at"                   \
	                 " WHERE request_keys.created_at <= $6 RETURNING 1")   \
	X(ST_RKEY_GET, "SELECT reply FROM request_keys WHERE scope = $1"       \
	               " AND request_id = $2 AND digest = $3"                  \
	               " AND reply IS NOT NULL")                               \
	/* SKIP LOCKED: an old key another call is claiming again is not     \
	 * waited for (two such calls would wait for each other). */           \
	X(ST_RKEY_PRUNE, "DELETE FROM request_keys WHERE ctid = ANY (ARRAY("   \
	                 "SELECT ctid FROM request_keys WHERE created_at <= $1"\
	                 " LIMIT 1000 FOR UPDATE SKIP LOCKED))")               \
	X(ST_RKEY_PUT, "UPDATE request_keys SET reply = $4 WHERE scope = $1"   \
	               " AND request_id = $2 AND digest = $3")                 \
	X(ST_KEY_INSERT, "INSERT INTO api_keys (role, editor_id,"              \
	                 " secret_sha256, created_at) VALUES ($1, $2, $3, $4)" \
	                 " RETURNING " KEY_COLUMNS)                            \
	X(ST_KEY_GET, "SELECT role, coalesce(editor_id, 0), secret_sha256,"    \
	              " revoked_at IS NOT NULL FROM api_keys WHERE id = $1")   \
	X(ST_KEY_LIST, "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY id")     \
	X(ST_KEY_REVOKE, "UPDATE api_keys SET revoked_at ="                    \
	                 " coalesce(revoked_at, $2) WHERE id = $1"             \
	                 " RETURNING " KEY_COLUMNS)                            \
	X(ST_WHSEC_EXPIRE, "UPDATE webhook_secrets SET expires_at = $2"        \
	                   " WHERE advertiser_id = $1 AND (expires_at IS NULL" \
	                   " OR expires_at > $2)")                             \
	X(ST_WHSEC_INSERT, "INSERT INTO webhook_secrets (advertiser_id,"       \
	                   " secret, created_at) VALUES ($1, $2, $3)")         \
	X(ST_WHSEC_GET, "SELECT secret FROM webhook_secrets"                   \
	                " WHERE advertiser_id = $1 AND (expires_at IS NULL"    \
	                " OR expires_at > $2) ORDER BY id DESC LIMIT $3")      \
	X(ST_WHPOL_GET, "SELECT require_timestamp FROM webhook_policies"       \
	                " WHERE advertiser_id = $1")                           \
	X(ST_WHPOL_SET, "INSERT INTO webhook_policies (advertiser_id,"         \
	                " require_timestamp, updated_at) VALUES ($1, $2, $3)"  \
	                " ON CONFLICT (advertiser_id) DO UPDATE SET"           \
	                " require_timestamp = excluded.require_timestamp,"     \
	                " updated_at = excluded.updated_at")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

const struct store_pg_statements store_pg_keys_statements = {
	.sql = stmt_sql, .n = ST_COUNT };

/* ---- request keys ---- */

/* How long a request key answers for its call (and then is pruned). */
#define REQUEST_KEY_RETENTION_S 86400

static void
key_params(struct pg_params *p, const struct store_request_key *k)
{
	store_pg_p_text(p, k->scope);
	store_pg_p_text(p, k->request_id);
	store_pg_p_bin(p, k->digest, sizeof(k->digest));
}

int
store_pg_call_begin(store *base, const struct store_request_key *k,
    aff_arena *a, uint8_t **reply, size_t *len)
{
	pg_store *s = PG_STORE(base);
	int64_t now = aff_now_ms() / 1000;
	struct pg_params p = { 0 };
	PGresult *res;
	int rv, claimed;

	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	key_params(&p, k);
	store_pg_p_text(&p, k->method);
	store_pg_p_int(&p, now);
	store_pg_p_int(&p, now - REQUEST_KEY_RETENTION_S);
	if ((rv = store_pg_run(s, PQ_KEYS, ST_RKEY_CLAIM, &p, &res,
	         "request key")) != AFF_OK)
		goto failed;
	claimed = PQntuples(res) == 1;
	PQclear(res);
	if (claimed)
		return (AFF_OK); /* the transaction stays open for the call */
	/* Answered before (by this server or another, committed: the
	 * claim waited for it). */
	p = (struct pg_params){ 0 };
	key_params(&p, k);
	if ((rv = store_pg_run(s, PQ_KEYS, ST_RKEY_GET, &p, &res,
	         "request key")) != AFF_OK)
		goto failed;
	if (PQntuples(res) == 0)
		rv = AFF_UNAVAILABLE; /* cannot be: the claim saw it */
	else if ((*reply = store_pg_bytes(res, 0, 0, a, len)) == NULL)
		rv = AFF_RESOURCE_EXHAUSTED;
	else
		rv = AFF_ALREADY_EXISTS;
	PQclear(res);
failed:
	(void)store_pg_tx_end(s, AFF_ABORTED);
	return (rv);
}

int
store_pg_call_end(store *base, const struct store_request_key *k,
    const uint8_t *reply, size_t len)
{
	pg_store *s = PG_STORE(base);
	int64_t now = aff_now_ms() / 1000;
	struct pg_params p = { 0 };
	int rv;

	if (reply == NULL) {
		(void)store_pg_tx_end(s, AFF_ABORTED);
		return (AFF_OK);
	}
	store_pg_p_int(&p, now - REQUEST_KEY_RETENTION_S);
	if ((rv = store_pg_run(s, PQ_KEYS, ST_RKEY_PRUNE, &p, NULL,
	         "request keys prune")) == AFF_OK) {
		p = (struct pg_params){ 0 };
		key_params(&p, k);
		store_pg_p_bin(&p, reply, len);
		rv = store_pg_run(s, PQ_KEYS, ST_RKEY_PUT, &p, NULL,
		    "request key");
	}
	return (store_pg_tx_end(s, rv));
}

/* ---- API keys ---- */

/* Reads an Affiliate__V1__ApiKey from row r (KEY_COLUMNS order). */
static void *
row_key(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__ApiKey *k;

	if ((k = aff_arena_alloc(a, sizeof(*k))) == NULL)
		return (NULL);
	affiliate__v1__api_key__init(k);
	k->id = store_pg_int(res, r, 0);
	k->role = store_pg_text(res, r, 1, a);
	k->editor_id = store_pg_int(res, r, 2);
	k->created_at = store_pg_time(res, r, 3, a);
	k->revoked_at = PQgetisnull(res, r, 4) ? "" : store_pg_time(res, r, 4, a);
	if (k->role == NULL || k->created_at == NULL || k->revoked_at == NULL)
		return (NULL);
	return (k);
}

int
store_pg_key_create(store *base, int64_t editor_id,
    const unsigned char sha256[32], aff_arena *a, Affiliate__V1__ApiKey **out)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	PGresult *res;
	int rv;

	store_pg_p_text(&p, editor_id > 0 ? "editor" : "admin");
	if (editor_id > 0)
		store_pg_p_int(&p, editor_id);
	else
		store_pg_p_null(&p);
	store_pg_p_bin(&p, sha256, 32);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	rv = store_pg_run_guarded(s, PQ_KEYS, ST_KEY_INSERT, &p, &res,
	    "key create");
	/* The only constraint a checked editor id can break is the editor's
	 * foreign key. */
	if (rv == AFF_INVALID_ARGUMENT)
		return (AFF_NOT_FOUND);
	if (rv != AFF_OK)
		return (rv);
	if (PQntuples(res) != 1)
		rv = AFF_INTERNAL;
	else if ((*out = row_key(res, 0, a)) == NULL)
		rv = AFF_RESOURCE_EXHAUSTED;
	PQclear(res);
	return (rv);
}

int
store_pg_key_get(store *base, int64_t id, struct store_key *k)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	PGresult *res;
	uint8_t *h;
	size_t hlen = 0;
	aff_arena a;
	int rv;

	store_pg_p_int(&p, id);
	if ((rv = store_pg_run(s, PQ_KEYS, ST_KEY_GET, &p, &res, "key get")) !=
	    AFF_OK)
		return (rv);
	aff_arena_init(&a);
	rv = AFF_NOT_FOUND;
	if (PQntuples(res) == 1 &&
	    (h = store_pg_bytes(res, 0, 2, &a, &hlen)) != NULL && hlen == 32) {
		k->admin = strcmp(PQgetvalue(res, 0, 0), "admin") == 0;
		k->editor_id = store_pg_int(res, 0, 1);
		memcpy(k->sha256, h, 32);
		k->revoked = PQgetvalue(res, 0, 3)[0] == 't';
		rv = AFF_OK;
	}
	aff_arena_fini(&a);
	PQclear(res);
	return (rv);
}

int
store_pg_key_list(
    store *base, aff_arena *a, Affiliate__V1__ApiKey ***out, size_t *n)
{
	pg_store *s = PG_STORE(base);
	Affiliate__V1__ApiKey **v = NULL;
	PGresult *res;
	int rv, rows;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if ((rv = store_pg_run(s, PQ_KEYS, ST_KEY_LIST, NULL, &res,
	         "key list")) != AFF_OK)
		return (rv);
	rows = PQntuples(res);
	if (rows > 0 &&
	    (v = aff_arena_alloc(a, (size_t)rows * sizeof(*v))) == NULL)
		rv = AFF_RESOURCE_EXHAUSTED;
	for (int i = 0; i < rows && rv == AFF_OK; i++)
		if ((v[k++] = row_key(res, i, a)) == NULL)
			rv = AFF_RESOURCE_EXHAUSTED;
	PQclear(res);
	*out = v;
	*n = k;
	return (rv);
}

int
store_pg_key_revoke(
    store *base, int64_t id, aff_arena *a, Affiliate__V1__ApiKey **out)
{
	struct pg_params p = { 0 };

	store_pg_p_int(&p, id);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	return (store_pg_one_row(PG_STORE(base), PQ_KEYS, ST_KEY_REVOKE, &p,
	    row_key, a, out, "key revoke"));
}

/* ---- webhook secrets and policies ---- */

int
store_pg_webhook_secret_rotate(store *base, int64_t advertiser_id,
    const char *secret, int64_t grace_until, int *replaced)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	PGresult *res;
	int rv;

	*replaced = 0;
	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	store_pg_p_int(&p, advertiser_id);
	store_pg_p_int(&p, grace_until);
	if ((rv = store_pg_run(s, PQ_KEYS, ST_WHSEC_EXPIRE, &p, &res,
	         "webhook secret expire")) == AFF_OK) {
		*replaced = atoi(PQcmdTuples(res)) > 0;
		PQclear(res);
		p = (struct pg_params){ 0 };
		store_pg_p_int(&p, advertiser_id);
		store_pg_p_text(&p, secret);
		store_pg_p_int(&p, aff_now_ms() / 1000);
		rv = store_pg_run(s, PQ_KEYS, ST_WHSEC_INSERT, &p, NULL,
		    "webhook secret insert");
		if (rv == AFF_INVALID_ARGUMENT) /* the advertiser's foreign key */
			rv = AFF_NOT_FOUND;
	}
	return (store_pg_tx_end(s, rv));
}

int
store_pg_webhook_secrets_get(store *base, int64_t advertiser_id, int64_t now,
    aff_arena *a, char **out, size_t max, size_t *n)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	PGresult *res;
	int rv, rows;

	*n = 0;
	store_pg_p_int(&p, advertiser_id);
	store_pg_p_int(&p, now);
	store_pg_p_int(&p, (int64_t)max);
	if ((rv = store_pg_run(s, PQ_KEYS, ST_WHSEC_GET, &p, &res,
	         "webhook secrets")) != AFF_OK)
		return (rv);
	rows = PQntuples(res);
	for (int i = 0; i < rows && (size_t)i < max; i++) {
		if ((out[*n] = store_pg_text(res, i, 0, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		(*n)++;
	}
	PQclear(res);
	return (rv);
}

int
store_pg_webhook_policy_get(store *base, int64_t advertiser_id,
    int *require_timestamp)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	PGresult *res;
	int rv;

	*require_timestamp = 0;
	store_pg_p_int(&p, advertiser_id);
	if ((rv = store_pg_run(s, PQ_KEYS, ST_WHPOL_GET, &p, &res,
	         "webhook policy")) != AFF_OK)
		return (rv);
	if (PQntuples(res) > 0)
		*require_timestamp = atoi(PQgetvalue(res, 0, 0)) != 0;
	PQclear(res);
	return (AFF_OK);
}

int
store_pg_webhook_policy_set(store *base, int64_t advertiser_id,
    int require_timestamp)
{
	struct pg_params p = { 0 };
	int rv;

	store_pg_p_int(&p, advertiser_id);
	store_pg_p_int(&p, require_timestamp != 0);
	store_pg_p_int(&p, aff_now_ms() / 1000);
	rv = store_pg_run_guarded(PG_STORE(base), PQ_KEYS, ST_WHPOL_SET, &p,
	    NULL, "webhook policy set");
	if (rv == AFF_INVALID_ARGUMENT) /* the advertiser's foreign key */
		rv = AFF_NOT_FOUND;
	return (rv);
}
