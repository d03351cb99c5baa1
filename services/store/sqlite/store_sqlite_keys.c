/*
 * store_sqlite_keys.c - who may call and what they called, in SQLite:
 * API keys (only the SHA-256 of each secret), the request keys that make
 * a keyed call's answer part of its transaction (call_begin/call_end),
 * and the advertisers' own webhook signing secrets and policies.
 */
#include <string.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_util.h"
#include "store.h"
#include "store_sqlite_private.h"

#define KEY_COLUMNS                                                            \
	"id, role, coalesce(editor_id, 0), created_at, revoked_at"

#define STATEMENTS(X)                                                          \
	X(ST_RKEY_GET, "SELECT reply FROM request_keys WHERE scope = ?1"       \
	               " AND request_id = ?2 AND digest = ?3"                  \
	               " AND created_at > ?4")                                 \
	X(ST_RKEY_PRUNE, "DELETE FROM request_keys WHERE created_at <= ?1")    \
	X(ST_RKEY_PUT, "INSERT INTO request_keys (scope, request_id, method,"  \
	               " digest, reply, created_at)"                           \
	               " VALUES (?1, ?2, ?4, ?3, ?5, ?6)")                     \
	X(ST_KEY_INSERT, "INSERT INTO api_keys (role, editor_id,"              \
	                 " secret_sha256, created_at) VALUES (?1, ?2, ?3, ?4)" \
	                 " RETURNING " KEY_COLUMNS)                            \
	X(ST_KEY_GET, "SELECT role, coalesce(editor_id, 0), secret_sha256,"    \
	              " revoked_at IS NOT NULL FROM api_keys WHERE id = ?1")   \
	X(ST_KEY_LIST, "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY id")     \
	X(ST_KEY_REVOKE, "UPDATE api_keys SET revoked_at ="                    \
	                 " coalesce(revoked_at, ?2) WHERE id = ?1"             \
	                 " RETURNING " KEY_COLUMNS)                            \
	/* The secret in use now stops at ?2 (the end of the grace period);  \
	 * one already ending keeps its earlier end. */                        \
	X(ST_WHSEC_EXPIRE, "UPDATE webhook_secrets SET expires_at = ?2"        \
	                   " WHERE advertiser_id = ?1 AND (expires_at IS NULL" \
	                   " OR expires_at > ?2)")                             \
	X(ST_WHSEC_INSERT, "INSERT INTO webhook_secrets (advertiser_id,"       \
	                   " secret, created_at) VALUES (?1, ?2, ?3)")         \
	X(ST_WHSEC_GET, "SELECT secret FROM webhook_secrets"                   \
	                " WHERE advertiser_id = ?1 AND (expires_at IS NULL"    \
	                " OR expires_at > ?2) ORDER BY id DESC LIMIT ?3")      \
	X(ST_WHPOL_GET, "SELECT require_timestamp FROM webhook_policies"       \
	                " WHERE advertiser_id = ?1")                           \
	X(ST_WHPOL_SET, "INSERT INTO webhook_policies (advertiser_id,"         \
	                " require_timestamp, updated_at) VALUES (?1, ?2, ?3)"  \
	                " ON CONFLICT (advertiser_id) DO UPDATE SET"           \
	                " require_timestamp = excluded.require_timestamp,"     \
	                " updated_at = excluded.updated_at")

enum { STATEMENTS(SQLITE_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(SQLITE_STMT_SQL) };

const struct store_sqlite_statements store_sqlite_keys_statements = {
	stmt_sql,
	ST_COUNT,
};

#define STMT(s, i) ((s)->st[SQ_KEYS][i])

/* ---- request keys ---- */

/* How long a request key answers for its call (and then is pruned). */
#define REQUEST_KEY_RETENTION_S 86400

static void
bind_key(sqlite3_stmt *st, const struct store_request_key *k)
{
	sqlite3_bind_text(st, 1, k->scope, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, k->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, k->digest, sizeof(k->digest), SQLITE_STATIC);
}

int
store_sqlite_call_begin(store *base, const struct store_request_key *k,
    aff_arena *a, uint8_t **reply, size_t *len)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_RKEY_GET);
	int rc, rv;

	/* BEGIN IMMEDIATE: the key is looked up under the write lock, so
	 * two copies of one call cannot both miss it and both run. */
	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	bind_key(st, k);
	sqlite3_bind_int64(st, 4, aff_now_ms() / 1000 - REQUEST_KEY_RETENTION_S);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*len = (size_t)sqlite3_column_bytes(st, 0);
		if ((*reply = aff_arena_alloc(a, *len > 0 ? *len : 1)) == NULL)
			rv = AFF_RESOURCE_EXHAUSTED;
		else {
			/* An empty blob reads as NULL: memcpy must not see it. */
			if (*len > 0)
				memcpy(*reply, sqlite3_column_blob(st, 0), *len);
			rv = AFF_ALREADY_EXISTS;
		}
	} else if (rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, "request key");
	store_sqlite_stmt_done(st);
	if (rv != AFF_OK)
		(void)store_sqlite_tx_end(s, AFF_ABORTED);
	return (rv);
}

int
store_sqlite_call_end(store *base, const struct store_request_key *k,
    const uint8_t *reply, size_t len)
{
	sqlite_store *s = SQLITE_STORE(base);
	int64_t now = aff_now_ms() / 1000;
	sqlite3_stmt *st;
	int rv;

	if (reply == NULL) {
		(void)store_sqlite_tx_end(s, AFF_ABORTED);
		return (AFF_OK);
	}
	st = STMT(s, ST_RKEY_PRUNE);
	sqlite3_bind_int64(st, 1, now - REQUEST_KEY_RETENTION_S);
	if ((rv = store_sqlite_step_write(s, st, "request keys prune")) == AFF_OK) {
		st = STMT(s, ST_RKEY_PUT);
		bind_key(st, k);
		sqlite3_bind_text(st, 4, k->method, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, reply, (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, now);
		rv = store_sqlite_step_write(s, st, "request key");
	}
	return (store_sqlite_tx_end(s, rv));
}
/* Reads an Affiliate__V1__ApiKey from the current row (KEY_COLUMNS
 * order); a store_sqlite_row_fn. */
static void *
row_key(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__ApiKey *k;

	if ((k = aff_arena_alloc(a, sizeof(*k))) == NULL)
		return (NULL);
	affiliate__v1__api_key__init(k);
	k->id = sqlite3_column_int64(st, 0);
	k->role = store_sqlite_col_text(st, 1, a);
	k->editor_id = sqlite3_column_int64(st, 2);
	k->created_at = store_sqlite_col_time(st, 3, a);
	k->revoked_at = sqlite3_column_type(st, 4) == SQLITE_NULL
	    ? ""
	    : store_sqlite_col_time(st, 4, a);
	if (k->role == NULL || k->created_at == NULL || k->revoked_at == NULL)
		return (NULL);
	return (k);
}

int
store_sqlite_key_create(store *base, int64_t editor_id,
    const unsigned char sha256[32], aff_arena *a, Affiliate__V1__ApiKey **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_KEY_INSERT);
	int rv;

	sqlite3_bind_text(st, 1, editor_id > 0 ? "editor" : "admin", -1,
	    SQLITE_STATIC);
	if (editor_id > 0)
		sqlite3_bind_int64(st, 2, editor_id);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_blob(st, 3, sha256, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, aff_now_ms() / 1000);
	rv = store_sqlite_one_row(s, st, row_key, a, out, "key create");
	/* The only constraint a checked editor id can break is the editor's
	 * foreign key. */
	return (rv == AFF_INVALID_ARGUMENT ? AFF_NOT_FOUND : rv);
}

int
store_sqlite_key_get(store *base, int64_t id, struct store_key *k)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_KEY_GET);
	int rc, rv;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 2) == 32) {
		const char *role = (const char *)sqlite3_column_text(st, 0);
		k->admin = role != NULL && strcmp(role, "admin") == 0;
		k->editor_id = sqlite3_column_int64(st, 1);
		memcpy(k->sha256, sqlite3_column_blob(st, 2), 32);
		k->revoked = sqlite3_column_int(st, 3);
		rv = AFF_OK;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		rv = AFF_NOT_FOUND;
	else
		rv = store_sqlite_err(s->db, rc, "key get");
	store_sqlite_stmt_done(st);
	return (rv);
}

int
store_sqlite_key_list(
    store *base, aff_arena *a, Affiliate__V1__ApiKey ***out, size_t *n)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_KEY_LIST);
	Affiliate__V1__ApiKey **v = NULL, **nv;
	size_t k = 0, cap = 0;
	int rc, rv = AFF_OK;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			cap = cap > 0 ? cap * 2 : 16;
			if ((nv = aff_arena_alloc(a, cap * sizeof(*v))) == NULL) {
				rv = AFF_RESOURCE_EXHAUSTED;
				break;
			}
			if (k > 0)
				memcpy(nv, v, k * sizeof(*v));
			v = nv;
		}
		if ((v[k++] = row_key(st, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
	}
	if (rv == AFF_OK && rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, "key list");
	store_sqlite_stmt_done(st);
	*out = v;
	*n = k;
	return (rv);
}

int
store_sqlite_key_revoke(
    store *base, int64_t id, aff_arena *a, Affiliate__V1__ApiKey **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_KEY_REVOKE);

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, aff_now_ms() / 1000);
	return (store_sqlite_one_row(s, st, row_key, a, out, "key revoke"));
}

int
store_sqlite_webhook_secret_rotate(store *base, int64_t advertiser_id,
    const char *secret, int64_t grace_until, int *replaced)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st;
	int rv;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	st = STMT(s, ST_WHSEC_EXPIRE);
	sqlite3_bind_int64(st, 1, advertiser_id);
	sqlite3_bind_int64(st, 2, grace_until);
	rv = store_sqlite_step_write(s, st, "webhook secret expire");
	*replaced = sqlite3_changes(s->db) > 0;
	if (rv == AFF_OK) {
		st = STMT(s, ST_WHSEC_INSERT);
		sqlite3_bind_int64(st, 1, advertiser_id);
		sqlite3_bind_text(st, 2, secret, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, aff_now_ms() / 1000);
		rv = store_sqlite_step_write(s, st, "webhook secret insert");
		if (rv == AFF_INVALID_ARGUMENT) /* the advertiser's foreign key */
			rv = AFF_NOT_FOUND;
	}
	return (store_sqlite_tx_end(s, rv));
}

int
store_sqlite_webhook_secrets_get(store *base, int64_t advertiser_id,
    int64_t now, aff_arena *a, char **out, size_t max, size_t *n)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_WHSEC_GET);
	int rc, rv = AFF_OK;

	*n = 0;
	sqlite3_bind_int64(st, 1, advertiser_id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((out[*n] = store_sqlite_col_text(st, 0, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		(*n)++;
	}
	if (rv == AFF_OK && rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, "webhook secrets");
	store_sqlite_stmt_done(st);
	return (rv);
}

int
store_sqlite_webhook_policy_get(store *base, int64_t advertiser_id,
    int *require_timestamp)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_WHPOL_GET);
	int rc, rv = AFF_OK;

	*require_timestamp = 0;
	sqlite3_bind_int64(st, 1, advertiser_id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*require_timestamp = sqlite3_column_int(st, 0) != 0;
	else if (rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, "webhook policy");
	store_sqlite_stmt_done(st);
	return (rv);
}

int
store_sqlite_webhook_policy_set(store *base, int64_t advertiser_id,
    int require_timestamp)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_WHPOL_SET);
	int rv;

	sqlite3_bind_int64(st, 1, advertiser_id);
	sqlite3_bind_int(st, 2, require_timestamp != 0);
	sqlite3_bind_int64(st, 3, aff_now_ms() / 1000);
	rv = store_sqlite_step_write(s, st, "webhook policy set");
	if (rv == AFF_INVALID_ARGUMENT) /* the advertiser's foreign key */
		rv = AFF_NOT_FOUND;
	return (rv);
}

