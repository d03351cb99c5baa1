/*
 * store_pg_orders_copy.c - the bookkeeping of the orders' copy in Redis,
 * with several servers syncing it against one PostgreSQL database.
 *
 * Several syncs (one per server) against one database: a pass takes the
 * session advisory lock PG_LOCK_SYNC when it finds rows to copy and
 * holds it until their revisions are marked, so one server at a time
 * writes a batch into Redis; the others find nothing to do meanwhile,
 * and cannot reset the copy under a batch in flight (a reset needs the
 * same lock). orders_mark_cached marks nothing when the copy it read
 * (orders_all_cached on the same handle) was replaced since, and the
 * recorded generation only grows. A revision is marked cached only as
 * the revision the batch wrote (rev = cached), so a row changed since
 * stays behind: the copy is never called whole when it is not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "aff_err.h"
#include "store.h"
#include "store_pg_private.h"

/* The order sync's lock (store_pg.c has the migrations' one). */
#define PG_LOCK_SYNC "1634100580, 2"

#define STATEMENTS(X)                                                          \
	X(ST_ORDERS_UNCACHED,                                                  \
	    "SELECT " ORDER_COLUMNS ", rev FROM orders"                        \
	    " WHERE cached_rev < rev ORDER BY seq LIMIT $1")                   \
	X(ST_ORDERS_CACHED, "UPDATE orders o SET cached_rev = v.rev"           \
	                    " FROM unnest($1::bigint[], $2::bigint[])"         \
	                    " AS v(seq, rev)"                                  \
	                    " WHERE o.seq = v.seq AND o.rev = v.rev")          \
	X(ST_ORDERS_ALL_CACHED,                                                \
	    "SELECT NOT EXISTS (SELECT 1 FROM orders WHERE cached_rev < rev)," \
	    " coalesce((SELECT value::bigint FROM meta"                        \
	    " WHERE key = 'orders_gen'), 0),"                                  \
	    " coalesce((SELECT value FROM meta WHERE key = 'orders_copy'),"    \
	    " '')")                                                            \
	X(ST_ORDERS_CACHE_RESET, "UPDATE orders SET cached_rev = 0"            \
	                         " WHERE cached_rev > 0")                      \
	X(ST_ORDERS_GEN_SET, "INSERT INTO meta (key, value)"                   \
	                     " VALUES ('orders_gen', $1) ON CONFLICT (key)"    \
	                     " DO UPDATE SET value = greatest("                \
	                     "meta.value::bigint, excluded.value::bigint)::text")\
	X(ST_ORDERS_GEN_ZERO, "INSERT INTO meta (key, value)"                  \
	                      " VALUES ('orders_gen', '0') ON CONFLICT (key)"  \
	                      " DO UPDATE SET value = '0'")                    \
	X(ST_ORDERS_COPY_LOCK, "SELECT value FROM meta"                        \
	                       " WHERE key = 'orders_copy' FOR UPDATE")        \
	X(ST_ORDERS_COPY_NEW,                                                  \
	    "UPDATE meta SET value = substr(md5(gen_random_uuid()::text), 1,"  \
	    " 16) WHERE key = 'orders_copy' RETURNING value")                  \
	X(ST_SYNC_TRYLOCK, "SELECT pg_try_advisory_lock(" PG_LOCK_SYNC ")")    \
	X(ST_SYNC_UNLOCK, "SELECT pg_advisory_unlock(" PG_LOCK_SYNC ")")       \
	X(ST_SYNC_TRYLOCK_TX,                                                  \
	    "SELECT pg_try_advisory_xact_lock(" PG_LOCK_SYNC ")")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

const struct store_pg_statements store_pg_orders_copy_statements = {
	.sql = stmt_sql, .n = ST_COUNT };

#define RUN(s, i, p, res, what)                                                \
	store_pg_run((s), PQ_ORDERS_COPY, (i), (p), (res), (what))

/* Runs one of the lock statements: *got is its boolean answer. */
static int
sync_lock_run(pg_store *s, int st, int *got)
{
	PGresult *res;
	int rv;

	*got = 0;
	if ((rv = RUN(s, st, NULL, &res, "sync lock")) != AFF_OK)
		return (rv);
	*got = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return (AFF_OK);
}

void
store_pg_sync_unlock(pg_store *s)
{
	int got;

	if (s->sync_locked && s->depth == 0) {
		(void)sync_lock_run(s, ST_SYNC_UNLOCK, &got);
		s->sync_locked = 0;
	}
}

int
store_pg_orders_uncached(
    store *base, int max, aff_arena *a, struct store_order_row **out, size_t *n)
{
	pg_store *s = PG_STORE(base);
	struct store_order_row *v;
	struct pg_params p = { 0 };
	PGresult *res;
	int rv, rows, got;
	size_t k = 0;

	*n = 0;
	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)max)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	*out = v;
	if (!s->sync_locked) {
		if ((rv = sync_lock_run(s, ST_SYNC_TRYLOCK, &got)) != AFF_OK)
			return (rv);
		if (!got)
			return (AFF_OK); /* another server is copying now */
		s->sync_locked = 1;
	}
	store_pg_p_int(&p, max);
	if ((rv = RUN(s, ST_ORDERS_UNCACHED, &p, &res, "orders uncached"))
	    != AFF_OK)
		return (rv);
	rows = PQntuples(res);
	for (int i = 0; i < rows && k < (size_t)max; i++) {
		v[k].seq = store_pg_int(res, i, 0);
		v[k].rev = store_pg_int(res, i, 11); /* after ORDER_COLUMNS */
		if ((v[k].order = store_pg_row_order(res, i, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		k++;
	}
	PQclear(res);
	*n = k;
	if (k == 0)
		store_pg_sync_unlock(s); /* nothing to write: no batch */
	return (rv);
}

/* Appends v to an array literal "{1,2,...}" being built in buf. */
static void
array_add(char *buf, size_t cap, size_t *len, int64_t v, int first)
{
	int w = snprintf(
	    buf + *len, cap - *len, "%s%lld", first ? "" : ",", (long long)v);

	if (w > 0 && (size_t)w < cap - *len)
		*len += (size_t)w;
}

int
store_pg_orders_mark_cached(
    store *base, const struct store_order_row *rows, size_t n, int64_t gen)
{
	pg_store *s = PG_STORE(base);
	struct pg_params p = { 0 };
	size_t cap = n * 21 + 3, ls = 1, lr = 1;
	char *seqs = NULL, *revs = NULL;
	PGresult *res;
	int rv;

	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	/* The copy's row locked: a reset (another server's) waits, or
	 * went first and this batch went into a copy no longer in use. */
	if ((rv = RUN(s, ST_ORDERS_COPY_LOCK, NULL, &res, "orders copy"))
	    != AFF_OK)
		goto done;
	if (s->orders_copy[0] != '\0'
	    && (PQntuples(res) != 1
	        || strcmp(PQgetvalue(res, 0, 0), s->orders_copy) != 0))
		rv = AFF_ABORTED;
	PQclear(res);
	if (rv != AFF_OK || n == 0)
		goto gen;
	if ((seqs = malloc(cap)) == NULL || (revs = malloc(cap)) == NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto done;
	}
	seqs[0] = revs[0] = '{';
	for (size_t i = 0; i < n; i++) {
		array_add(seqs, cap, &ls, rows[i].seq, i == 0);
		array_add(revs, cap, &lr, rows[i].rev, i == 0);
	}
	memcpy(seqs + ls, "}", 2);
	memcpy(revs + lr, "}", 2);
	store_pg_p_text(&p, seqs);
	store_pg_p_text(&p, revs);
	rv = RUN(s, ST_ORDERS_CACHED, &p, NULL, "orders cached");
gen:
	if (rv == AFF_OK) {
		p = (struct pg_params) { 0 };
		store_pg_p_int(&p, gen);
		rv = RUN(s, ST_ORDERS_GEN_SET, &p, NULL, "orders gen");
	}
done:
	free(seqs);
	free(revs);
	rv = store_pg_tx_end(s, rv);
	store_pg_sync_unlock(s); /* the batch is recorded (or not): done */
	return (rv);
}

int
store_pg_orders_all_cached(store *base, const char **copy, int64_t *gen)
{
	pg_store *s = PG_STORE(base);
	PGresult *res;
	int rv;

	/* A sync pass starts here: a lock left from a pass that failed
	 * half-way (Redis down before the mark) goes. */
	store_pg_sync_unlock(s);
	if ((rv = RUN(s, ST_ORDERS_ALL_CACHED, NULL, &res, "orders all cached"))
	    != AFF_OK)
		return (rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return (AFF_INTERNAL);
	}
	rv = PQgetvalue(res, 0, 0)[0] == 't' ? AFF_OK : AFF_NOT_FOUND;
	*gen = store_pg_int(res, 0, 1);
	snprintf(s->orders_copy, sizeof(s->orders_copy), "%s",
	    PQgetvalue(res, 0, 2));
	*copy = s->orders_copy;
	PQclear(res);
	return (rv);
}

int
store_pg_orders_cache_reset(store *base, const char *copy, int64_t gen)
{
	pg_store *s = PG_STORE(base);
	char seen[sizeof(s->orders_copy)];
	PGresult *res;
	int rv, got;

	/* copy may point into s->orders_copy, which the check rewrites. */
	snprintf(seen, sizeof(seen), "%s", copy);
	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	/* Not under another server's batch in flight: its generation in
	 * Redis is ahead of the database only until it marks. */
	if ((rv = sync_lock_run(s, ST_SYNC_TRYLOCK_TX, &got)) == AFF_OK && !got)
		rv = AFF_UNAVAILABLE;
	/* Nor after one that marked since the caller looked: the copy's row
	 * locked (a mark holds it too), then the view read again. */
	if (rv == AFF_OK
	    && (rv = store_pg_run(s, PQ_ORDERS_COPY, ST_ORDERS_COPY_LOCK, NULL,
	            &res, "orders copy"))
	        == AFF_OK)
		PQclear(res);
	if (rv == AFF_OK
	    && (rv = store_pg_run(s, PQ_ORDERS_COPY, ST_ORDERS_ALL_CACHED, NULL,
	            &res, "orders all cached"))
	        == AFF_OK) {
		if (PQntuples(res) != 1)
			rv = AFF_INTERNAL;
		else if (store_pg_int(res, 0, 1) != gen
		    || strcmp(PQgetvalue(res, 0, 2), seen) != 0)
			rv = AFF_ABORTED; /* the view moved on: judge again */
		PQclear(res);
	}
	if (rv == AFF_OK)
		rv = RUN(
		    s, ST_ORDERS_CACHE_RESET, NULL, NULL, "orders cache reset");
	if (rv == AFF_OK
	    && (rv = RUN(s, ST_ORDERS_COPY_NEW, NULL, &res, "orders copy id"))
	        == AFF_OK) {
		/* This handle knows the copy it made. */
		snprintf(s->orders_copy, sizeof(s->orders_copy), "%s",
		    PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
		PQclear(res);
	}
	if (rv == AFF_OK)
		rv = RUN(s, ST_ORDERS_GEN_ZERO, NULL, NULL, "orders gen");
	return (store_pg_tx_end(s, rv));
}
