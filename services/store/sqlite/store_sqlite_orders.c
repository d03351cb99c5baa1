/*
 * store_sqlite_orders.c - partners' orders in SQLite: stored once by
 * order_id (a duplicate, or a status moving forward, recorded in
 * order_events), alone or as one savepoint of a group-commit batch,
 * listed by arrival, and the bookkeeping of their copy in Redis (which
 * revisions are there, the copy's id and generation). A Standard
 * Webhooks webhook-id is kept with its order (webhook_ids), so the same
 * id again answers that order and stores nothing.
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_status.h"
#include "aff_util.h"
#include "store.h"
#include "store_sqlite_private.h"

#define ORDER_COLUMNS                                                          \
	"seq, order_id, advertiser_id, editor_id, amount_cents,"              \
	" commission_cents, currency, status, created_at, updated_at,"        \
	" expected_commission_cents"

#define ORDER_LIST(where)                                               \
	"SELECT " ORDER_COLUMNS " FROM orders WHERE " where "seq > ?1"       \
	" ORDER BY seq LIMIT ?2"
/* A list with no status filter, by editor and/or advertiser: a merge, in
 * seq order, of the lists of each status (the CHECK on orders.status
 * names all three), each arm seeking the index of its filter and status
 * (schema step 15 dropped the indexes without status: each was a leaf
 * page more for every order written). SQLite runs the arms as
 * co-routines that the merge pulls one row at a time, so a page reads
 * its rows and one more of each arm. */
#define ORDER_ARM(where, status)                                       \
	"SELECT " ORDER_COLUMNS " FROM orders WHERE " where "status = '"     \
	status "' AND seq > ?1"
#define ORDER_LIST_MERGE(where)                                        \
	ORDER_ARM(where, "pending") " UNION ALL " ORDER_ARM(where,           \
	    "approved") " UNION ALL " ORDER_ARM(where, "declined")           \
	    " ORDER BY seq LIMIT ?2"
/* The partial indexes' condition, word for word (SQLite uses a partial
 * index only for a query whose WHERE implies the index's). */
#define MISMATCH "commission_cents <> expected_commission_cents AND "
#define STATEMENTS(X)                                                          \
	/* One order of a group-commit batch: its failure undoes it alone. */ \
	X(ST_SAVEPOINT, "SAVEPOINT aff_order")                                 \
	X(ST_SAVEPOINT_UNDO, "ROLLBACK TO aff_order")                          \
	X(ST_SAVEPOINT_RELEASE, "RELEASE aff_order")                           \
	X(ST_ORDER_GET,                                                        \
	    "SELECT " ORDER_COLUMNS " FROM orders WHERE order_id = ?1")        \
	/* The advertiser's row gives the currency when none is given,   */ \
	/* refuses another one unless it allows others, and its rate the */ \
	/* expected commission, in the one statement of a new order: no  */ \
	/* row inserted means a duplicate, an unknown advertiser or a    */ \
	/* currency refused, told apart only then (ST_ADV_CURRENCY).     */ \
	X(ST_ORDER_INSERT,                                                     \
	    "INSERT INTO orders (order_id, advertiser_id, editor_id,"          \
	    " amount_cents, commission_cents, currency, status, created_at,"   \
	    " updated_at, expected_commission_cents)"                          \
	    " SELECT ?1, ?2, ?3, ?4, ?5, coalesce(nullif(?6, ''), a.currency)," \
	    " ?7, ?8, ?8, " STORE_EXPECTED_COMMISSION("?4",                    \
	        "a.commission_rate_bps") " FROM advertisers a WHERE a.id = ?2" \
	    " AND (?6 = '' OR ?6 = a.currency OR a.allow_other_currencies)"    \
	    " ON CONFLICT (order_id) DO NOTHING RETURNING " ORDER_COLUMNS)     \
	X(ST_ADV_CURRENCY, "SELECT currency FROM advertisers WHERE id = ?1")   \
	X(ST_ORDER_EVENTS, "SELECT status, at FROM order_events"               \
	                   " WHERE order_id = ?1 ORDER BY id LIMIT ?2")        \
	X(ST_ORDER_MOVE, "UPDATE orders SET status = ?2, updated_at = ?3,"     \
	                 " rev = rev + 1 WHERE order_id = ?1"                  \
	                 " RETURNING " ORDER_COLUMNS)                          \
	X(ST_ORDER_EVENT, "INSERT INTO order_events (order_id, status, at)"    \
	                  " VALUES (?1, ?2, ?3)")                              \
	X(ST_WHID_PRUNE, "DELETE FROM webhook_ids WHERE created_at <= ?1")     \
	X(ST_WHID_CLAIM, "INSERT INTO webhook_ids (advertiser_id, webhook_id," \
	                 " order_id, created_at) VALUES (?1, ?2, ?3, ?4)"      \
	                 " ON CONFLICT DO NOTHING RETURNING 1")                \
	X(ST_WHID_ORDER, "SELECT " ORDER_COLUMNS " FROM orders WHERE"          \
	                 " order_id = (SELECT order_id FROM webhook_ids"       \
	                 " WHERE advertiser_id = ?1 AND webhook_id = ?2)")     \
	/* One statement per filter combination, in the order of the  */  \
	/* mask in order_list (editor 1, advertiser 2, status 4), each  */ \
	/* naming only its own columns so that it seeks the index that */  \
	/* leads with them and ends with seq (schema step 9): a page   */  \
	/* costs O(page) whatever the filter. ?3.. are its filters.    */  \
	X(ST_ORDER_LIST, ORDER_LIST(""))                                       \
	X(ST_ORDER_LIST_E, ORDER_LIST_MERGE("editor_id = ?3 AND "))            \
	X(ST_ORDER_LIST_A, ORDER_LIST_MERGE("advertiser_id = ?3 AND "))        \
	X(ST_ORDER_LIST_EA,                                                    \
	    ORDER_LIST_MERGE("editor_id = ?3 AND advertiser_id = ?4 AND "))    \
	X(ST_ORDER_LIST_S, ORDER_LIST("status = ?3 AND "))                     \
	X(ST_ORDER_LIST_ES, ORDER_LIST("editor_id = ?3 AND status = ?4 AND ")) \
	X(ST_ORDER_LIST_AS,                                                    \
	    ORDER_LIST("advertiser_id = ?3 AND status = ?4 AND "))             \
	X(ST_ORDER_LIST_EAS,                                                   \
	    ORDER_LIST("editor_id = ?3 AND advertiser_id = ?4"                 \
	               " AND status = ?5 AND "))                               \
	/* The same with commission_mismatch (mask bit 8), each seeking  */ \
	/* its partial index of mismatching orders (schema step 10).     */ \
	X(ST_ORDER_LIST_M, ORDER_LIST(MISMATCH))                               \
	X(ST_ORDER_LIST_EM, ORDER_LIST("editor_id = ?3 AND " MISMATCH))        \
	X(ST_ORDER_LIST_AM, ORDER_LIST("advertiser_id = ?3 AND " MISMATCH))    \
	X(ST_ORDER_LIST_EAM,                                                   \
	    ORDER_LIST("editor_id = ?3 AND advertiser_id = ?4 AND " MISMATCH)) \
	X(ST_ORDER_LIST_SM, ORDER_LIST("status = ?3 AND " MISMATCH))           \
	X(ST_ORDER_LIST_ESM,                                                   \
	    ORDER_LIST("editor_id = ?3 AND status = ?4 AND " MISMATCH))        \
	X(ST_ORDER_LIST_ASM,                                                   \
	    ORDER_LIST("advertiser_id = ?3 AND status = ?4 AND " MISMATCH))    \
	X(ST_ORDER_LIST_EASM,                                                  \
	    ORDER_LIST("editor_id = ?3 AND advertiser_id = ?4"                 \
	               " AND status = ?5 AND " MISMATCH))                      \
	X(ST_ORDERS_UNCACHED,                                                  \
	    "SELECT " ORDER_COLUMNS ", rev FROM orders"                        \
	    " WHERE cached_rev < rev ORDER BY seq LIMIT ?1")                   \
	X(ST_ORDER_CACHED, "UPDATE orders SET cached_rev = ?2"                 \
	                   " WHERE seq = ?1 AND rev = ?2")                     \
	X(ST_ORDERS_ALL_CACHED,                                                \
	    "SELECT NOT EXISTS (SELECT 1 FROM orders WHERE cached_rev < rev)," \
	    " coalesce((SELECT CAST(value AS INTEGER) FROM meta"               \
	    " WHERE key = 'orders_gen'), 0),"                                  \
	    " coalesce((SELECT value FROM meta WHERE key = 'orders_copy'),"    \
	    " '')")                                                            \
	X(ST_ORDERS_CACHE_RESET, "UPDATE orders SET cached_rev = 0"            \
	                         " WHERE cached_rev > 0")                      \
	X(ST_ORDERS_GEN_SET, "INSERT INTO meta (key, value)"                   \
	                     " VALUES ('orders_gen', ?1) ON CONFLICT (key)"    \
	                     " DO UPDATE SET value = excluded.value")          \
	X(ST_ORDERS_COPY_NEW,                                                  \
	    "UPDATE meta SET value = lower(hex(randomblob(8)))"                \
	    " WHERE key = 'orders_copy'")

enum { STATEMENTS(SQLITE_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(SQLITE_STMT_SQL) };

const struct store_sqlite_statements store_sqlite_orders_statements = {
	stmt_sql,
	ST_COUNT,
};

#define STMT(s, i) ((s)->st[SQ_ORDERS][i])

/* Reads an Affiliate__V1__Order from the current row (ORDER_COLUMNS
 * order); a store_sqlite_row_fn. */
static void *
row_order(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__Order *o;

	if ((o = aff_arena_alloc(a, sizeof(*o))) == NULL)
		return (NULL);
	affiliate__v1__order__init(o);
	o->order_id = store_sqlite_col_text(st, 1, a);
	o->advertiser_id = sqlite3_column_int64(st, 2);
	o->editor_id = sqlite3_column_int64(st, 3);
	o->amount_cents = sqlite3_column_int64(st, 4);
	o->commission_cents = sqlite3_column_int64(st, 5);
	o->currency = store_sqlite_col_text(st, 6, a);
	o->status = store_sqlite_col_text(st, 7, a);
	o->created_at = store_sqlite_col_time(st, 8, a);
	o->updated_at = store_sqlite_col_time(st, 9, a);
	o->expected_commission_cents = sqlite3_column_int64(st, 10);
	if (o->order_id == NULL || o->currency == NULL || o->status == NULL ||
	    o->created_at == NULL || o->updated_at == NULL)
		return (NULL);
	return (o);
}

/* pending may move to approved or declined; nothing else moves. */
static int
order_may_move(const char *from, const char *to)
{
	int t = aff_status_parse(AFF_ORDER_STATUS, to);

	return (aff_status_parse(AFF_ORDER_STATUS, from) ==
	        AFFILIATE__V1__ORDER_STATUS__ORDER_STATUS_PENDING &&
	    (t == AFFILIATE__V1__ORDER_STATUS__ORDER_STATUS_APPROVED ||
	        t == AFFILIATE__V1__ORDER_STATUS__ORDER_STATUS_DECLINED));
}

static int
order_event(sqlite_store *s, const char *order_id, const char *status,
    int64_t now_s)
{
	sqlite3_stmt *st = STMT(s, ST_ORDER_EVENT);

	sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_s);
	return (store_sqlite_step_write(s, st, "order event"));
}

/* How long a webhook-id answers for its order (and then is pruned). */
#define WEBHOOK_ID_RETENTION_S 86400

/* A row that is there; a store_sqlite_row_fn. */
static void *
row_one(sqlite3_stmt *st, aff_arena *a)
{
	(void)st;
	(void)a;
	return ((void *)1);
}

/*
 * Keeps in's webhook-id with its order_id: AFF_OK when the id is new
 * (kept; the caller's transaction decides whether it stays), or
 * AFF_ALREADY_EXISTS with *out the order the id stored first.
 */
static int
webhook_id_claim(sqlite_store *s, const struct store_order_in *in,
    int64_t now_s, aff_arena *a, Affiliate__V1__Order **out)
{
	sqlite3_stmt *st = STMT(s, ST_WHID_PRUNE);
	void *row;
	int rv;

	sqlite3_bind_int64(st, 1, now_s - WEBHOOK_ID_RETENTION_S);
	if ((rv = store_sqlite_step_write(s, st, "webhook ids prune")) != AFF_OK)
		return (rv);
	st = STMT(s, ST_WHID_CLAIM);
	sqlite3_bind_int64(st, 1, in->advertiser_id);
	sqlite3_bind_text(st, 2, in->webhook_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, in->order_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_s);
	rv = store_sqlite_one_row(s, st, row_one, a, &row, "webhook id");
	if (rv != AFF_NOT_FOUND)
		return (rv); /* AFF_OK: new */
	st = STMT(s, ST_WHID_ORDER);
	sqlite3_bind_int64(st, 1, in->advertiser_id);
	sqlite3_bind_text(st, 2, in->webhook_id, -1, SQLITE_STATIC);
	rv = store_sqlite_one_row(s, st, row_order, a, out, "webhook id order");
	/* The id is kept only with its order: one without is a bug. */
	return (rv == AFF_OK ? AFF_ALREADY_EXISTS
	                     : rv == AFF_NOT_FOUND ? AFF_INTERNAL : rv);
}

/* A new order that the insert left out and that is not stored: its
 * advertiser is unknown, or takes no order in this currency (*out then
 * carries the advertiser's id and currency, for the message). */
static int
order_refused(sqlite_store *s, const struct store_order_in *in, aff_arena *a,
    Affiliate__V1__Order **out, enum store_order_outcome *outcome)
{
	sqlite3_stmt *st = STMT(s, ST_ADV_CURRENCY);
	Affiliate__V1__Order *o;
	int rc, rv;

	/* The editor first, as the foreign key would (and as PostgreSQL's
	 * order_put does). */
	rv = store_sqlite_catalog_editor_exists(s, in->editor_id);
	if (rv == AFF_NOT_FOUND)
		*outcome = STORE_ORDER_NO_EDITOR;
	if (rv != AFF_OK)
		return (rv);
	sqlite3_bind_int64(st, 1, in->advertiser_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		store_sqlite_stmt_done(st);
		*outcome = STORE_ORDER_NO_ADVERTISER;
		return (AFF_NOT_FOUND);
	}
	if (rc != SQLITE_ROW) {
		rv = store_sqlite_err(s->db, rc, "advertiser currency");
		store_sqlite_stmt_done(st);
		return (rv);
	}
	if ((o = aff_arena_alloc(a, sizeof(*o))) == NULL) {
		store_sqlite_stmt_done(st);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	affiliate__v1__order__init(o);
	o->advertiser_id = in->advertiser_id;
	o->currency = store_sqlite_col_text(st, 0, a);
	store_sqlite_stmt_done(st);
	if (o->currency == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	*out = o;
	*outcome = STORE_ORDER_WRONG_CURRENCY;
	return (AFF_FAILED_PRECONDITION);
}

/* The work of order_put, inside a transaction or savepoint. */
static int
order_put_tx(sqlite_store *s, const struct store_order_in *in, aff_arena *a,
    Affiliate__V1__Order **out, enum store_order_outcome *outcome)
{
	const char *status = in->status != NULL && in->status[0] != '\0'
	    ? in->status
	    : NULL;
	int64_t now_s = aff_now_ms() / 1000;
	Affiliate__V1__Order *o;
	sqlite3_stmt *st;
	int rv;

	if (in->webhook_id != NULL && in->webhook_id[0] != '\0') {
		rv = webhook_id_claim(s, in, now_s, a, out);
		if (rv == AFF_ALREADY_EXISTS) {
			*outcome = STORE_ORDER_DUPLICATE;
			return (AFF_OK);
		}
		if (rv != AFF_OK)
			return (rv);
	}
	/* The common case, a new order, is one statement; a conflict (the
	 * same order_id again) inserts nothing and reads what is stored. */
	st = STMT(s, ST_ORDER_INSERT);
	sqlite3_bind_text(st, 1, in->order_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, in->advertiser_id);
	sqlite3_bind_int64(st, 3, in->editor_id);
	sqlite3_bind_int64(st, 4, in->amount_cents);
	sqlite3_bind_int64(st, 5, in->commission_cents);
	sqlite3_bind_text(st, 6, in->currency != NULL ? in->currency : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(
	    st, 7, status != NULL ? status : "pending", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, now_s);
	/* RETURNING: the stored currency and expected commission come from
	 * the advertiser's row (catalogadmin), not from what was bound. */
	rv = store_sqlite_one_row(s, st, row_order, a, out, "order insert");
	if (rv == AFF_OK) {
		*outcome = STORE_ORDER_CREATED;
		if ((rv = order_event(s, in->order_id, (*out)->status, now_s)) !=
		    AFF_OK)
			return (rv);
		/* The postback event commits or rolls back with the order. */
		return (store_sqlite_postback_order(s, "order.created", *out, a));
	}
	/* The foreign keys check the ids (no read on the request path); the
	 * rare refusal says which. */
	if (rv == AFF_INVALID_ARGUMENT &&
	    sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY) {
		*outcome = store_sqlite_catalog_editor_exists(s, in->editor_id) ==
		        AFF_NOT_FOUND
		    ? STORE_ORDER_NO_EDITOR
		    : STORE_ORDER_NO_ADVERTISER;
		return (AFF_NOT_FOUND);
	}
	if (rv != AFF_NOT_FOUND)
		return (rv);
	st = STMT(s, ST_ORDER_GET);
	sqlite3_bind_text(st, 1, in->order_id, -1, SQLITE_STATIC);
	rv = store_sqlite_one_row(s, st, row_order, a, &o, "order get");
	if (rv == AFF_NOT_FOUND)
		return (order_refused(s, in, a, out, outcome));
	if (rv != AFF_OK)
		return (rv);
	*out = o;
	/* A resend without a currency took the programme's the first time:
	 * it is the same order whatever that was. */
	if (o->advertiser_id != in->advertiser_id ||
	    o->editor_id != in->editor_id ||
	    o->amount_cents != in->amount_cents ||
	    o->commission_cents != in->commission_cents ||
	    (in->currency != NULL && in->currency[0] != '\0' &&
	        strcmp(o->currency, in->currency) != 0))
		return (AFF_ALREADY_EXISTS);
	if (status == NULL || strcmp(status, o->status) == 0) {
		*outcome = STORE_ORDER_DUPLICATE;
		return (AFF_OK);
	}
	if (!order_may_move(o->status, status))
		return (AFF_FAILED_PRECONDITION);
	st = STMT(s, ST_ORDER_MOVE);
	sqlite3_bind_text(st, 1, in->order_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_s);
	rv = store_sqlite_one_row(s, st, row_order, a, out, "order move");
	if (rv != AFF_OK)
		return (rv);
	*outcome = STORE_ORDER_MOVED;
	if ((rv = order_event(s, in->order_id, status, now_s)) != AFF_OK)
		return (rv);
	return (store_sqlite_postback_order(s, "order.status_changed", *out, a));
}

/*
 * One order of a batch, in a savepoint of the batch's transaction: any
 * failure (a refusal, a constraint, a full disk that SQLite survived)
 * undoes this order alone, and the rest of the batch still commits. When
 * SQLite itself ended the transaction (it may after SQLITE_FULL, IOERR or
 * NOMEM), nothing of the batch holds any more: AFF_ABORTED, for this and
 * every later order, and batch_end reports the cause.
 */
static int
order_put_batched(sqlite_store *s, const struct store_order_in *in,
    aff_arena *a, Affiliate__V1__Order **out,
    enum store_order_outcome *outcome)
{
	int rv;

	if (s->batch_err != AFF_OK)
		return (AFF_ABORTED);
	rv = store_sqlite_tx_run(s, STMT(s, ST_SAVEPOINT), "savepoint");
	if (rv != AFF_OK)
		goto gone;
	rv = order_put_tx(s, in, a, out, outcome);
	if (sqlite3_get_autocommit(s->db))
		goto gone;
	if (rv != AFF_OK && store_sqlite_tx_run(s, STMT(s, ST_SAVEPOINT_UNDO),
	                        "savepoint undo") != AFF_OK)
		goto gone;
	if (store_sqlite_tx_run(s, STMT(s, ST_SAVEPOINT_RELEASE),
	        "savepoint release") != AFF_OK)
		goto gone;
	return (rv);
gone:
	store_sqlite_tx_rollback(s);
	s->batch_err = rv != AFF_OK ? rv : AFF_INTERNAL;
	return (AFF_ABORTED);
}

int
store_sqlite_order_put(store *base, const struct store_order_in *in,
    aff_arena *a, Affiliate__V1__Order **out, enum store_order_outcome *outcome)
{
	sqlite_store *s = SQLITE_STORE(base);
	int rv;

	if (s->in_batch)
		return (order_put_batched(s, in, a, out, outcome));
	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	rv = order_put_tx(s, in, a, out, outcome);
	if (rv != AFF_OK) {
		/* Refusals (duplicates with other content, moves back) wrote
		 * nothing: roll back, keep the refusal and the stored order. */
		(void)store_sqlite_tx_end(s, AFF_ABORTED);
		return (rv);
	}
	return (store_sqlite_tx_end(s, AFF_OK));
}

int
store_sqlite_order_list(store *base, const struct store_order_query *q,
    aff_arena *a, Affiliate__V1__Order ***out, size_t *n, int64_t *next)
{
	sqlite_store *s = SQLITE_STORE(base);
	int has_status = q->status != NULL && q->status[0] != '\0';
	int mask = (q->editor_id > 0 ? 1 : 0) | (q->advertiser_id > 0 ? 2 : 0) |
	    (has_status ? 4 : 0);
	sqlite3_stmt *st = STMT(s, (q->commission_mismatch ? ST_ORDER_LIST_M
	                                                   : ST_ORDER_LIST) +
	        mask);
	int64_t last = 0;
	int more, rv, k = 3;

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	sqlite3_bind_int64(st, 1, q->after);
	sqlite3_bind_int64(st, 2, (int64_t)q->limit + 1);
	if (q->editor_id > 0)
		sqlite3_bind_int64(st, k++, q->editor_id);
	if (q->advertiser_id > 0)
		sqlite3_bind_int64(st, k++, q->advertiser_id);
	if (has_status)
		sqlite3_bind_text(st, k++, q->status, -1, SQLITE_STATIC);
	/* The cursor is the seq, which the Order message does not carry. */
	rv = store_sqlite_list_page(s, st, q->limit, row_order, a, out, n, &more,
	    &last, "order list");
	*next = rv == AFF_OK && more ? last : 0;
	return (rv);
}

int
store_sqlite_orders_uncached(store *base, int max, aff_arena *a,
    struct store_order_row **out, size_t *n)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_ORDERS_UNCACHED);
	struct store_order_row *v;
	int rc, rv = AFF_OK;
	size_t k = 0;

	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)max)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	sqlite3_bind_int(st, 1, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k < (size_t)max) {
		v[k].seq = sqlite3_column_int64(st, 0);
		v[k].rev = sqlite3_column_int64(st, 11); /* after ORDER_COLUMNS */
		if ((v[k].order = row_order(st, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		k++;
	}
	if (rv == AFF_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		rv = store_sqlite_err(s->db, rc, "orders uncached");
	store_sqlite_stmt_done(st);
	*out = v;
	*n = k;
	return (rv);
}

static int
orders_gen_set(sqlite_store *s, int64_t gen)
{
	sqlite3_stmt *st = STMT(s, ST_ORDERS_GEN_SET);

	sqlite3_bind_int64(st, 1, gen);
	return (store_sqlite_step_write(s, st, "orders gen"));
}

int
store_sqlite_orders_mark_cached(store *base, const struct store_order_row *rows,
    size_t n, int64_t gen)
{
	sqlite_store *s = SQLITE_STORE(base);
	int rv;

	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	for (size_t i = 0; i < n && rv == AFF_OK; i++) {
		sqlite3_stmt *st = STMT(s, ST_ORDER_CACHED);
		sqlite3_bind_int64(st, 1, rows[i].seq);
		sqlite3_bind_int64(st, 2, rows[i].rev);
		rv = store_sqlite_step_write(s, st, "order cached");
	}
	if (rv == AFF_OK)
		rv = orders_gen_set(s, gen);
	return (store_sqlite_tx_end(s, rv));
}

int
store_sqlite_orders_all_cached(store *base, const char **copy, int64_t *gen)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_ORDERS_ALL_CACHED);
	int rc = sqlite3_step(st), rv;

	if (rc == SQLITE_ROW) {
		rv = sqlite3_column_int(st, 0) ? AFF_OK : AFF_NOT_FOUND;
		*gen = sqlite3_column_int64(st, 1);
		snprintf(s->orders_copy, sizeof(s->orders_copy), "%s",
		    (const char *)sqlite3_column_text(st, 2));
		*copy = s->orders_copy;
	} else
		rv = store_sqlite_err(s->db, rc, "orders all cached");
	store_sqlite_stmt_done(st);
	return (rv);
}

int
store_sqlite_orders_cache_reset(store *base, const char *copy, int64_t gen)
{
	sqlite_store *s = SQLITE_STORE(base);
	char seen[sizeof(s->orders_copy)];
	const char *now_copy;
	int64_t now_gen;
	int rv;

	/* copy may point into s->orders_copy, which the check rewrites. */
	snprintf(seen, sizeof(seen), "%s", copy);
	if ((rv = store_sqlite_tx_begin(s)) != AFF_OK)
		return (rv);
	rv = store_sqlite_orders_all_cached(base, &now_copy, &now_gen);
	if (rv == AFF_NOT_FOUND)
		rv = AFF_OK;
	if (rv == AFF_OK && (now_gen != gen || strcmp(now_copy, seen) != 0))
		rv = AFF_ABORTED; /* the view moved on: judge again */
	if (rv == AFF_OK)
		rv = store_sqlite_step_write(
	    s, STMT(s, ST_ORDERS_CACHE_RESET), "orders cache reset");
	if (rv == AFF_OK)
		rv = store_sqlite_step_write(
		    s, STMT(s, ST_ORDERS_COPY_NEW), "orders copy id");
	if (rv == AFF_OK)
		rv = orders_gen_set(s, 0);
	return (store_sqlite_tx_end(s, rv));
}

/*
 * The group-commit connection's own settings, applied on its first batch
 * (only the order writer's connection makes batches).
 *
 * temp_store = MEMORY keeps the statement journal of the orders'
 * savepoints in memory. Each order's savepoint copies the pages it
 * changes (about 15: the orders row, its indexes, its event) into that
 * journal so that ROLLBACK TO can undo it; past 64 KiB (one order's
 * worth) SQLite spills it to a temporary file, so every batch created,
 * wrote (measured: 38 pwrite calls an order, 600 a batch of 16) and
 * deleted a file in /var/tmp, on the writer's critical path and on the
 * file system the commit's fdatasync waits for. The journal is never
 * synced nor read after a crash (the WAL is what recovery reads), so
 * keeping it in memory changes nothing of what a commit guarantees.
 */
static int
batch_tune(sqlite_store *s)
{
	int rv;

	if (s->batch_tuned)
		return (AFF_OK);
	if ((rv = store_sqlite_exec(s->db, "PRAGMA temp_store = MEMORY")) !=
	    AFF_OK)
		return (rv);
	s->batch_tuned = 1;
	return (AFF_OK);
}

int
store_sqlite_batch_begin(store *base)
{
	sqlite_store *s = SQLITE_STORE(base);
	int rv;

	if ((rv = batch_tune(s)) != AFF_OK)
		return (rv);
	if ((rv = store_sqlite_tx_begin(s)) == AFF_OK) {
		s->in_batch = 1;
		s->batch_err = AFF_OK;
	}
	return (rv);
}

int
store_sqlite_batch_end(store *base, int rv)
{
	sqlite_store *s = SQLITE_STORE(base);

	s->in_batch = 0;
	if (s->batch_err != AFF_OK) {
		rv = s->batch_err;
		s->batch_err = AFF_OK;
		return (rv);
	}
	return (store_sqlite_tx_end(s, rv));
}

/* Reads an Affiliate__V1__OrderEvent (status, at). */
static void *
row_order_event(sqlite3_stmt *st, aff_arena *a)
{
	Affiliate__V1__OrderEvent *e;

	if ((e = aff_arena_alloc(a, sizeof(*e))) == NULL)
		return (NULL);
	affiliate__v1__order_event__init(e);
	e->status = store_sqlite_col_text(st, 0, a);
	e->at = store_sqlite_col_time(st, 1, a);
	return (e->status != NULL && e->at != NULL ? e : NULL);
}

int
store_sqlite_order_get(store *base, const char *order_id, aff_arena *a,
    Affiliate__V1__Order **out)
{
	sqlite_store *s = SQLITE_STORE(base);
	sqlite3_stmt *st = STMT(s, ST_ORDER_GET);
	Affiliate__V1__Order *o;
	int more, rv;

	sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
	if ((rv = store_sqlite_one_row(s, st, row_order, a, &o, "order get")) !=
	    AFF_OK)
		return (rv);
	/* An order moves at most once (pending -> approved | declined): a
	 * history has one or two events; the bound is only a bound. */
	st = STMT(s, ST_ORDER_EVENTS);
	sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, STORE_EVENTS_MAX + 1);
	rv = store_sqlite_list_page(s, st, STORE_EVENTS_MAX, row_order_event, a,
	    &o->events, &o->n_events, &more, NULL, "order events");
	if (rv == AFF_OK)
		*out = o;
	return (rv);
}
