/*
 * store_pg_orders.c - partners' orders in PostgreSQL: stored once by
 * order_id across every server (INSERT ... ON CONFLICT: two servers
 * storing one order_id at the same moment, the second waits for the
 * first one's commit and reads a duplicate, never an error), alone or as
 * one savepoint of a group-commit batch, and listed by arrival. The
 * bookkeeping of their copy in Redis is store_pg_orders_copy.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "aff_err.h"
#include "aff_status.h"
#include "aff_util.h"
#include "store.h"
#include "store_pg_private.h"

#define ORDER_LIST(where)                                               \
	"SELECT " ORDER_COLUMNS " FROM orders WHERE " where "seq > $1::bigint" \
	" ORDER BY seq LIMIT $2::bigint"
/* A new order's row, from the advertiser's: its currency when none is
 * given ($6 ''), another refused unless it allows others, and its rate's
 * expected commission. No row: a duplicate, an unknown id or a currency
 * refused, told apart only then (order_put_tx). */
#define ORDER_SELECT                                                           \
	"SELECT $1::text, $2::bigint, $3::bigint, $4::bigint, $5::bigint,"     \
	" coalesce(nullif($6::text, ''), a.currency), $7::text, $8::bigint,"   \
	" $8::bigint, " STORE_EXPECTED_COMMISSION("$4::bigint",               \
	    "a.commission_rate_bps") " FROM advertisers a WHERE a.id = $2"     \
	" AND NOT EXISTS (SELECT 1 FROM orders WHERE order_id = $1)"          \
	" AND EXISTS (SELECT 1 FROM editors WHERE id = $3)"                    \
	" AND ($6::text = '' OR $6::text = a.currency"                         \
	" OR a.allow_other_currencies = 1)"
/* The partial indexes' condition (schema step 10). */
#define MISMATCH "commission_cents <> expected_commission_cents AND "
#define STATEMENTS(X)                                                          \
	/* One order of a group-commit batch: its failure undoes it alone. */ \
	X(ST_SAVEPOINT, "SAVEPOINT aff_order")                                 \
	X(ST_SAVEPOINT_UNDO, "ROLLBACK TO SAVEPOINT aff_order")                \
	X(ST_SAVEPOINT_RELEASE, "RELEASE SAVEPOINT aff_order")                 \
	X(ST_ORDER_GET,                                                        \
	    "SELECT " ORDER_COLUMNS " FROM orders WHERE order_id = $1")        \
	/* The checks first: a duplicate or an unknown id takes no seq from  \
	 * the sequence (the cursors stay SQLite's); ON CONFLICT for the     \
	 * race, the foreign keys for an id deleted meanwhile. */             \
	X(ST_ORDER_INSERT,                                                     \
	    "INSERT INTO orders (order_id, advertiser_id, editor_id,"          \
	    " amount_cents, commission_cents, currency, status, created_at,"   \
	    " updated_at, expected_commission_cents) " ORDER_SELECT           \
	    " ON CONFLICT (order_id) DO NOTHING RETURNING " ORDER_COLUMNS)     \
	/* The batch's fast path (order_put_pipelined): the insert and its  \
	 * event in one statement. */                                         \
	X(ST_ORDER_INSERT_EVENT,                                               \
	    "WITH o AS (INSERT INTO orders (order_id, advertiser_id,"          \
	    " editor_id, amount_cents, commission_cents, currency, status,"    \
	    " created_at, updated_at, expected_commission_cents) "            \
	    ORDER_SELECT                                                       \
	    " ON CONFLICT (order_id) DO NOTHING RETURNING " ORDER_COLUMNS "),"\
	    " e AS (INSERT INTO order_events (order_id, status, at)"           \
	    " SELECT order_id, status, created_at FROM o)"                     \
	    " SELECT * FROM o")                                                \
	X(ST_ORDER_MOVE, "UPDATE orders SET status = $2, updated_at = $3,"     \
	                 " rev = rev + 1 WHERE order_id = $1"                  \
	                 " AND status = 'pending' RETURNING " ORDER_COLUMNS)   \
	X(ST_ORDER_EVENT, "INSERT INTO order_events (order_id, status, at)"    \
	                  " VALUES ($1, $2, $3)")                              \
	/* Expired rows: pruned by whoever comes (SKIP LOCKED: never a wait \
	 * in the batch's transaction), and taken over by the claim. */     \
	X(ST_WHID_PRUNE, "DELETE FROM webhook_ids WHERE ctid = ANY (ARRAY("    \
	                 "SELECT ctid FROM webhook_ids WHERE created_at <= $1" \
	                 " LIMIT 100 FOR UPDATE SKIP LOCKED))")                \
	X(ST_WHID_CLAIM, "INSERT INTO webhook_ids (advertiser_id, webhook_id," \
	                 " order_id, created_at) VALUES ($1, $2, $3, $4)"      \
	                 " ON CONFLICT (advertiser_id, webhook_id) DO UPDATE"  \
	                 " SET order_id = excluded.order_id,"                  \
	                 " created_at = excluded.created_at"                   \
	                 " WHERE webhook_ids.created_at <= $5 RETURNING 1")    \
	X(ST_WHID_ORDER, "SELECT " ORDER_COLUMNS " FROM orders WHERE"          \
	                 " order_id = (SELECT order_id FROM webhook_ids"       \
	                 " WHERE advertiser_id = $1 AND webhook_id = $2)")     \
	/* One statement per filter combination, in the order of the  */  \
	/* mask in order_list (editor 1, advertiser 2, status 4), each  */ \
	/* naming only its own columns so that even a generic plan     */  \
	/* seeks the index that leads with them and ends with seq      */  \
	/* (schema step 9): a page costs O(page) whatever the filter.  */  \
	X(ST_ORDER_LIST, ORDER_LIST(""))                                       \
	X(ST_ORDER_LIST_E, ORDER_LIST("editor_id = $3::bigint AND "))          \
	X(ST_ORDER_LIST_A, ORDER_LIST("advertiser_id = $3::bigint AND "))      \
	X(ST_ORDER_LIST_EA, ORDER_LIST("editor_id = $3::bigint"                \
	                               " AND advertiser_id = $4::bigint AND "))\
	X(ST_ORDER_LIST_S, ORDER_LIST("status = $3::text AND "))               \
	X(ST_ORDER_LIST_ES, ORDER_LIST("editor_id = $3::bigint"                \
	                               " AND status = $4::text AND "))         \
	X(ST_ORDER_LIST_AS, ORDER_LIST("advertiser_id = $3::bigint"            \
	                               " AND status = $4::text AND "))         \
	X(ST_ORDER_LIST_EAS, ORDER_LIST("editor_id = $3::bigint"               \
	                                " AND advertiser_id = $4::bigint"      \
	                                " AND status = $5::text AND "))        \
	/* The same with commission_mismatch (mask bit 8). */              \
	X(ST_ORDER_LIST_M, ORDER_LIST(MISMATCH))                               \
	X(ST_ORDER_LIST_EM, ORDER_LIST("editor_id = $3::bigint AND " MISMATCH))\
	X(ST_ORDER_LIST_AM,                                                    \
	    ORDER_LIST("advertiser_id = $3::bigint AND " MISMATCH))            \
	X(ST_ORDER_LIST_EAM, ORDER_LIST("editor_id = $3::bigint"               \
	                     " AND advertiser_id = $4::bigint AND " MISMATCH)) \
	X(ST_ORDER_LIST_SM, ORDER_LIST("status = $3::text AND " MISMATCH))     \
	X(ST_ORDER_LIST_ESM, ORDER_LIST("editor_id = $3::bigint"               \
	                     " AND status = $4::text AND " MISMATCH))          \
	X(ST_ORDER_LIST_ASM, ORDER_LIST("advertiser_id = $3::bigint"           \
	                     " AND status = $4::text AND " MISMATCH))          \
	X(ST_ORDER_LIST_EASM, ORDER_LIST("editor_id = $3::bigint"              \
	                      " AND advertiser_id = $4::bigint"                \
	                      " AND status = $5::text AND " MISMATCH))         \
	X(ST_ADV_CURRENCY, "SELECT currency FROM advertisers WHERE id = $1")   \
	X(ST_ORDER_EVENTS, "SELECT status, at FROM order_events"               \
	                   " WHERE order_id = $1 ORDER BY id LIMIT $2")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

/* The sixteen order lists are planned per call (store_pg_private.h). */
const struct store_pg_statements store_pg_orders_statements = {
	.sql = stmt_sql, .n = ST_COUNT,
	.plan_from = ST_ORDER_LIST, .plan_to = ST_ORDER_LIST_EASM + 1 };

void *
store_pg_row_order(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__Order *o;

	if ((o = aff_arena_alloc(a, sizeof(*o))) == NULL)
		return (NULL);
	affiliate__v1__order__init(o);
	o->order_id = store_pg_text(res, r, 1, a);
	o->advertiser_id = store_pg_int(res, r, 2);
	o->editor_id = store_pg_int(res, r, 3);
	o->amount_cents = store_pg_int(res, r, 4);
	o->commission_cents = store_pg_int(res, r, 5);
	o->currency = store_pg_text(res, r, 6, a);
	o->status = store_pg_text(res, r, 7, a);
	o->created_at = store_pg_time(res, r, 8, a);
	o->updated_at = store_pg_time(res, r, 9, a);
	o->expected_commission_cents = store_pg_int(res, r, 10);
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
order_event(pg_store *s, const char *order_id, const char *status,
    int64_t now_s)
{
	struct pg_params p = { 0 };

	store_pg_p_text(&p, order_id);
	store_pg_p_text(&p, status);
	store_pg_p_int(&p, now_s);
	return (store_pg_run(s, PQ_ORDERS, ST_ORDER_EVENT, &p, NULL,
	    "order event"));
}

static int
order_get(pg_store *s, const char *order_id, aff_arena *a,
    Affiliate__V1__Order **o)
{
	struct pg_params p = { 0 };

	store_pg_p_text(&p, order_id);
	return (store_pg_one_row(s, PQ_ORDERS, ST_ORDER_GET, &p,
	    store_pg_row_order, a, o, "order get"));
}

/* The orders table's CHECKs, asked before the insert so that a refused
 * order takes no seq (SQLite's cursors have no gaps there either); the
 * constraints still hold whoever writes. */
static int
order_checks(const struct store_order_in *in, const char *status)
{
	size_t chars = 0;

	for (const char *c = in->currency; c != NULL && *c != '\0'; c++)
		chars += ((unsigned char)*c & 0xc0) != 0x80; /* UTF-8 */
	if (in->amount_cents < 0 || in->commission_cents < 0 ||
	    in->commission_cents > in->amount_cents ||
	    (chars != 3 && chars != 0))
		return (AFF_INVALID_ARGUMENT);
	if (status != NULL && strcmp(status, "pending") != 0 &&
	    strcmp(status, "approved") != 0 && strcmp(status, "declined") != 0)
		return (AFF_INVALID_ARGUMENT);
	return (AFF_OK);
}

/* The parameters of ST_ORDER_INSERT and ST_ORDER_INSERT_EVENT. */
static void
insert_params(struct pg_params *p, const struct store_order_in *in,
    const char *status, int64_t now_s)
{
	store_pg_p_text(p, in->order_id);
	store_pg_p_int(p, in->advertiser_id);
	store_pg_p_int(p, in->editor_id);
	store_pg_p_int(p, in->amount_cents);
	store_pg_p_int(p, in->commission_cents);
	store_pg_p_text(p, in->currency); /* NULL: "", the advertiser's */
	store_pg_p_text(p, status != NULL ? status : "pending");
	store_pg_p_int(p, now_s);
}

/* How long a webhook-id answers for its order (and then is pruned). */
#define WEBHOOK_ID_RETENTION_S 86400

/* A row that is there; a store_pg_row_fn. */
static void *
row_one(const PGresult *res, int r, aff_arena *a)
{
	(void)res;
	(void)r;
	(void)a;
	return ((void *)1);
}

/*
 * Keeps in's webhook-id with its order_id: AFF_OK when the id is new (or
 * its row expired; kept, the caller's transaction decides whether it
 * stays), or AFF_ALREADY_EXISTS with *out the order the id stored first.
 */
static int
webhook_id_claim(pg_store *s, const struct store_order_in *in,
    int64_t now_s, aff_arena *a, Affiliate__V1__Order **out)
{
	struct pg_params p = { 0 };
	void *row;
	int rv;

	store_pg_p_int(&p, now_s - WEBHOOK_ID_RETENTION_S);
	if ((rv = store_pg_run(s, PQ_ORDERS, ST_WHID_PRUNE, &p, NULL,
	         "webhook ids prune")) != AFF_OK)
		return (rv);
	p = (struct pg_params){ 0 };
	store_pg_p_int(&p, in->advertiser_id);
	store_pg_p_text(&p, in->webhook_id);
	store_pg_p_text(&p, in->order_id);
	store_pg_p_int(&p, now_s);
	store_pg_p_int(&p, now_s - WEBHOOK_ID_RETENTION_S);
	rv = store_pg_one_row(s, PQ_ORDERS, ST_WHID_CLAIM, &p, row_one, a, &row,
	    "webhook id");
	if (rv != AFF_NOT_FOUND)
		return (rv); /* AFF_OK: new */
	p = (struct pg_params){ 0 };
	store_pg_p_int(&p, in->advertiser_id);
	store_pg_p_text(&p, in->webhook_id);
	rv = store_pg_one_row(s, PQ_ORDERS, ST_WHID_ORDER, &p,
	    store_pg_row_order, a, out, "webhook id order");
	/* The id is kept only with its order: one without is a bug. */
	return (rv == AFF_OK ? AFF_ALREADY_EXISTS
	                     : rv == AFF_NOT_FOUND ? AFF_INTERNAL : rv);
}

/* A new order that the insert left out, its editor known and the order
 * not stored: its advertiser is unknown, or takes no order in this
 * currency (*out then carries the advertiser's id and currency). */
static int
order_refused(pg_store *s, const struct store_order_in *in, aff_arena *a,
    Affiliate__V1__Order **out, enum store_order_outcome *outcome)
{
	struct pg_params p = { 0 };
	Affiliate__V1__Order *o;
	PGresult *res;
	int rv;

	store_pg_p_int(&p, in->advertiser_id);
	if ((rv = store_pg_run(s, PQ_ORDERS, ST_ADV_CURRENCY, &p, &res,
	         "advertiser currency")) != AFF_OK)
		return (rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		*outcome = STORE_ORDER_NO_ADVERTISER;
		return (AFF_NOT_FOUND);
	}
	if ((o = aff_arena_alloc(a, sizeof(*o))) == NULL) {
		PQclear(res);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	affiliate__v1__order__init(o);
	o->advertiser_id = in->advertiser_id;
	o->currency = store_pg_text(res, 0, 0, a);
	PQclear(res);
	if (o->currency == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	*out = o;
	*outcome = STORE_ORDER_WRONG_CURRENCY;
	return (AFF_FAILED_PRECONDITION);
}

/* The work of order_put, inside a transaction or savepoint. */
static int
order_put_tx(pg_store *s, const struct store_order_in *in, aff_arena *a,
    Affiliate__V1__Order **out, enum store_order_outcome *outcome)
{
	const char *status = in->status != NULL && in->status[0] != '\0'
	    ? in->status
	    : NULL;
	int64_t now_s = aff_now_ms() / 1000;
	Affiliate__V1__Order *o;
	struct pg_params p = { 0 };
	int rv;

	if ((rv = order_checks(in, status)) != AFF_OK)
		return (rv);
	if (in->webhook_id != NULL && in->webhook_id[0] != '\0') {
		rv = webhook_id_claim(s, in, now_s, a, out);
		if (rv == AFF_ALREADY_EXISTS) {
			*outcome = STORE_ORDER_DUPLICATE;
			return (AFF_OK);
		}
		if (rv != AFF_OK)
			return (rv);
	}
	insert_params(&p, in, status, now_s);
	rv = store_pg_one_row(s, PQ_ORDERS, ST_ORDER_INSERT, &p,
	    store_pg_row_order, a, out, "order insert");
	if (rv == AFF_OK) {
		*outcome = STORE_ORDER_CREATED;
		if ((rv = order_event(s, in->order_id, (*out)->status, now_s)) !=
		    AFF_OK)
			return (rv);
		/* The postback event commits or rolls back with the order. */
		return (store_pg_postback_order(s, "order.created", *out, a));
	}
	/* The foreign keys check the ids (no read on the request path); the
	 * constraint's name says which. */
	if (rv == AFF_INVALID_ARGUMENT && strcmp(s->last_state, "23503") == 0) {
		*outcome = strcmp(s->last_constraint, "orders_editor_id_fkey") == 0
		    ? STORE_ORDER_NO_EDITOR
		    : STORE_ORDER_NO_ADVERTISER;
		return (AFF_NOT_FOUND);
	}
	if (rv != AFF_NOT_FOUND)
		return (rv);
	if ((rv = order_get(s, in->order_id, a, &o)) == AFF_NOT_FOUND) {
		/* Nothing inserted and nothing stored: an unknown id. */
		rv = store_pg_catalog_editor_exists(s, in->editor_id);
		if (rv != AFF_OK && rv != AFF_NOT_FOUND)
			return (rv);
		if (rv == AFF_NOT_FOUND) {
			*outcome = STORE_ORDER_NO_EDITOR;
			return (AFF_NOT_FOUND);
		}
		return (order_refused(s, in, a, out, outcome));
	}
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
	p = (struct pg_params){ 0 };
	store_pg_p_text(&p, in->order_id);
	store_pg_p_text(&p, status);
	store_pg_p_int(&p, now_s);
	rv = store_pg_one_row(s, PQ_ORDERS, ST_ORDER_MOVE, &p,
	    store_pg_row_order, a, out, "order move");
	if (rv == AFF_NOT_FOUND) {
		/* Another server moved it first (the row lock made this
		 * update wait, then find it no longer pending). */
		if ((rv = order_get(s, in->order_id, a, &o)) != AFF_OK)
			return (rv);
		*out = o;
		if (strcmp(o->status, status) != 0)
			return (AFF_FAILED_PRECONDITION);
		*outcome = STORE_ORDER_DUPLICATE;
		return (AFF_OK);
	}
	if (rv != AFF_OK)
		return (rv);
	*outcome = STORE_ORDER_MOVED;
	if ((rv = order_event(s, in->order_id, status, now_s)) != AFF_OK)
		return (rv);
	return (store_pg_postback_order(s, "order.status_changed", *out, a));
}

static int order_put_pipelined(pg_store *s, const struct store_order_in *in,
    aff_arena *a, Affiliate__V1__Order **out, int *created);

/*
 * One order of a batch, in a savepoint of the batch's transaction: any
 * failure (a refusal, a constraint) undoes this order alone, and the
 * rest of the batch still commits. When the transaction itself is gone
 * (the connection lost), nothing of the batch holds any more:
 * AFF_ABORTED, for this and every later order, and batch_end reports
 * the cause.
 */
static int
order_put_batched(pg_store *s, const struct store_order_in *in, aff_arena *a,
    Affiliate__V1__Order **out, enum store_order_outcome *outcome)
{
	int rv = AFF_OK, created = 0;

	if (s->batch_err != AFF_OK)
		return (AFF_ABORTED);
	/* A webhook-id takes the general path: it is claimed first. */
	if (in->webhook_id == NULL || in->webhook_id[0] == '\0')
		rv = order_put_pipelined(s, in, a, out, &created);
	if (rv != AFF_OK || !store_pg_in_tx(s) ||
	    PQtransactionStatus(s->conn) == PQTRANS_INERROR)
		goto gone;
	if (created) {
		*outcome = STORE_ORDER_CREATED;
		/* Its postback event joins the batch's transaction; one that
		 * cannot be written takes the batch down with it (nothing is
		 * announced that is not stored, nor stored unannounced). */
		if ((rv = store_pg_postback_order(s, "order.created", *out, a)) !=
		    AFF_OK)
			goto gone;
		return (AFF_OK);
	}
	rv = store_pg_run(s, PQ_ORDERS, ST_SAVEPOINT, NULL, NULL, "savepoint");
	if (rv != AFF_OK)
		goto gone;
	rv = order_put_tx(s, in, a, out, outcome);
	if (!store_pg_in_tx(s))
		goto gone;
	if (rv != AFF_OK && store_pg_run(s, PQ_ORDERS, ST_SAVEPOINT_UNDO, NULL,
	                        NULL, "savepoint undo") != AFF_OK)
		goto gone;
	if (store_pg_run(s, PQ_ORDERS, ST_SAVEPOINT_RELEASE, NULL, NULL,
	        "savepoint release") != AFF_OK)
		goto gone;
	return (rv);
gone:
	store_pg_tx_rollback(s);
	s->batch_err = rv != AFF_OK ? rv : AFF_UNAVAILABLE;
	return (AFF_ABORTED);
}

/*
 * The batch's common case, a new order, in one round trip: SAVEPOINT, the
 * insert with its event, RELEASE, sent together in libpq's pipeline mode
 * (the group-commit writer stores orders one after the other, so each
 * round trip to the database counted four times: 386 orders/s on a busy
 * host). *created: the order was new and is stored (*out). Otherwise
 * nothing is left of it (savepoint released, or rolled back after an
 * error) and the caller takes the general path, which says why.
 */
static int
order_put_pipelined(pg_store *s, const struct store_order_in *in,
    aff_arena *a, Affiliate__V1__Order **out, int *created)
{
	const char *status = in->status != NULL && in->status[0] != '\0'
	    ? in->status
	    : NULL;
	struct pg_params p = { 0 };
	PGresult *r[3] = { NULL, NULL, NULL }, *x;
	char name[3][16];
	static const int which[3] = { ST_SAVEPOINT, ST_ORDER_INSERT_EVENT,
		ST_SAVEPOINT_RELEASE };
	int rv = AFF_OK, ok, sync = 0;

	*created = 0;
	if (order_checks(in, status) != AFF_OK ||
	    PQstatus(s->conn) != CONNECTION_OK ||
	    PQenterPipelineMode(s->conn) != 1)
		return (AFF_OK); /* the general path answers */
	insert_params(&p, in, status, aff_now_ms() / 1000);
	for (int i = 0; i < 3; i++) {
		snprintf(name[i], sizeof(name[i]), "s%d_%d", PQ_ORDERS, which[i]);
		ok = i == 1 ? PQsendQueryPrepared(s->conn, name[i], p.n, p.v,
		                  p.len, p.fmt, 0)
		            : PQsendQueryPrepared(s->conn, name[i], 0, NULL, NULL,
		                  NULL, 0);
		if (!ok)
			break;
	}
	if (PQpipelineSync(s->conn) != 1)
		rv = AFF_UNAVAILABLE;
	/* Each query's result, then the NULL that ends it; then the sync. */
	for (int i = 0; i < 3 && rv == AFF_OK; i++) {
		if ((r[i] = PQgetResult(s->conn)) == NULL) {
			rv = AFF_UNAVAILABLE;
			break;
		}
		if (PQresultStatus(r[i]) == PGRES_PIPELINE_SYNC) {
			sync = 1; /* a query not sent: nothing more comes */
			break;
		}
		while ((x = PQgetResult(s->conn)) != NULL)
			PQclear(x);
	}
	while (!sync && rv == AFF_OK && (x = PQgetResult(s->conn)) != NULL) {
		sync = PQresultStatus(x) == PGRES_PIPELINE_SYNC;
		PQclear(x);
	}
	/* Out of pipeline mode whatever happened (it refuses while results
	 * are pending), or no later statement could run. */
	for (int k = 0; k < 8 && PQexitPipelineMode(s->conn) != 1; k++) {
		rv = AFF_UNAVAILABLE;
		while ((x = PQgetResult(s->conn)) != NULL)
			PQclear(x);
	}
	if (rv == AFF_OK && r[0] != NULL && r[1] != NULL && r[2] != NULL &&
	    PQresultStatus(r[1]) == PGRES_TUPLES_OK && PQntuples(r[1]) == 1 &&
	    PQresultStatus(r[2]) == PGRES_COMMAND_OK) {
		if ((*out = store_pg_row_order(r[1], 0, a)) == NULL)
			rv = AFF_RESOURCE_EXHAUSTED; /* stored: cannot be read */
		*created = 1;
	} else if (rv == AFF_OK && r[0] != NULL &&
	    PQresultStatus(r[0]) == PGRES_COMMAND_OK &&
	    (r[2] == NULL || PQresultStatus(r[2]) != PGRES_COMMAND_OK)) {
		/* The savepoint is still there (the insert failed, so its
		 * release was skipped): undo it. */
		if (store_pg_run(s, PQ_ORDERS, ST_SAVEPOINT_UNDO, NULL, NULL,
		        "savepoint undo") != AFF_OK ||
		    store_pg_run(s, PQ_ORDERS, ST_SAVEPOINT_RELEASE, NULL, NULL,
		        "savepoint release") != AFF_OK)
			rv = AFF_UNAVAILABLE;
	}
	for (int i = 0; i < 3; i++)
		PQclear(r[i]);
	return (rv);
}

int
store_pg_order_put(store *base, const struct store_order_in *in, aff_arena *a,
    Affiliate__V1__Order **out, enum store_order_outcome *outcome)
{
	pg_store *s = PG_STORE(base);
	int rv;

	if (s->in_batch)
		return (order_put_batched(s, in, a, out, outcome));
	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	rv = order_put_tx(s, in, a, out, outcome);
	if (rv != AFF_OK) {
		/* Refusals wrote nothing: roll back, keep the refusal and
		 * the stored order. */
		(void)store_pg_tx_end(s, AFF_ABORTED);
		return (rv);
	}
	return (store_pg_tx_end(s, AFF_OK));
}

int
store_pg_order_list(store *base, const struct store_order_query *q,
    aff_arena *a, Affiliate__V1__Order ***out, size_t *n, int64_t *next)
{
	struct pg_params p = { 0 };
	int has_status = q->status != NULL && q->status[0] != '\0';
	int mask = (q->editor_id > 0 ? 1 : 0) | (q->advertiser_id > 0 ? 2 : 0) |
	    (has_status ? 4 : 0);
	int64_t last = 0;
	int more, rv;

	if (q->limit <= 0)
		return (AFF_INVALID_ARGUMENT);
	store_pg_p_int(&p, q->after);
	store_pg_p_int(&p, (int64_t)q->limit + 1);
	if (q->editor_id > 0)
		store_pg_p_int(&p, q->editor_id);
	if (q->advertiser_id > 0)
		store_pg_p_int(&p, q->advertiser_id);
	if (has_status)
		store_pg_p_text(&p, q->status);
	rv = store_pg_list_page(PG_STORE(base), PQ_ORDERS,
	    (q->commission_mismatch ? ST_ORDER_LIST_M : ST_ORDER_LIST) + mask,
	    &p, q->limit, store_pg_row_order, a, out, n, &more, &last,
	    "order list");
	*next = rv == AFF_OK && more ? last : 0;
	return (rv);
}

int
store_pg_batch_begin(store *base)
{
	pg_store *s = PG_STORE(base);
	int rv;

	if ((rv = store_pg_tx_begin(s)) == AFF_OK) {
		s->in_batch = 1;
		s->batch_err = AFF_OK;
	}
	return (rv);
}

int
store_pg_batch_end(store *base, int rv)
{
	pg_store *s = PG_STORE(base);

	s->in_batch = 0;
	if (s->batch_err != AFF_OK) {
		rv = s->batch_err;
		s->batch_err = AFF_OK;
		return (rv);
	}
	return (store_pg_tx_end(s, rv));
}

/* Reads an Affiliate__V1__OrderEvent (status, at) from row r. */
static void *
row_order_event(const PGresult *res, int r, aff_arena *a)
{
	Affiliate__V1__OrderEvent *e;

	if ((e = aff_arena_alloc(a, sizeof(*e))) == NULL)
		return (NULL);
	affiliate__v1__order_event__init(e);
	e->status = store_pg_text(res, r, 0, a);
	e->at = store_pg_time(res, r, 1, a);
	return (e->status != NULL && e->at != NULL ? e : NULL);
}

int
store_pg_order_get(store *base, const char *order_id, aff_arena *a,
    Affiliate__V1__Order **out)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	Affiliate__V1__Order *o;
	int more, rv;

	if ((rv = order_get(s, order_id, a, &o)) != AFF_OK)
		return (rv);
	store_pg_p_text(&p, order_id);
	store_pg_p_int(&p, STORE_EVENTS_MAX + 1);
	rv = store_pg_list_page(s, PQ_ORDERS, ST_ORDER_EVENTS, &p,
	    STORE_EVENTS_MAX, row_order_event, a, &o->events, &o->n_events, &more,
	    NULL, "order events");
	if (rv == AFF_OK)
		*out = o;
	return (rv);
}
