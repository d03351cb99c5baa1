/* order_sync.c - see order_sync.h. */
#include "order_sync.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"

#define SYNC_BATCH 500
/* The copy catches up on a tick, not after every commit: each catch-up
 * marks rows in a write transaction, which competes with the order writer
 * for SQLite's one write lock (measured: 111 busy waits in 3 s when it ran
 * after every commit). */
#define SYNC_TICK_MS 100

struct order_sync {
	store *s;
	cache *c;
	pthread_t thread;
	int started;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int stopping;
};

/*
 * One pass: the copy checked against what the database recorded, then
 * everything behind written. Any difference in the generation starts a
 * new copy under a new id: Redis lost data or came back from an older
 * snapshot (it shows less), or the database is a restored or copied file
 * whose Redis copy went on in a history the database does not have (it
 * shows more, and counting on could make the numbers match again).
 */
static void
sync_pass(order_sync *os)
{
	const char *db_id, *copy;
	char ns[96];
	int64_t version, shown, recorded;
	int rv;

	if (os->s->ops->catalog_version(os->s, &db_id, &version) != AFF_OK)
		return;
	rv = os->s->ops->orders_all_cached(os->s, &copy, &recorded);
	if (rv != AFF_OK && rv != AFF_NOT_FOUND)
		return;
	cache_orders_ns(ns, sizeof(ns), db_id, copy);
	if (cache_orders_gen(os->c, ns, &shown) != AFF_OK)
		return;
	if (shown != recorded) {
		/* Refused (AFF_ABORTED) when another server's batch was
		 * recorded between the two reads: its write to Redis was
		 * what looked ahead. The next pass judges again. */
		if (os->s->ops->orders_cache_reset(os->s, copy, recorded) !=
		    AFF_OK)
			return;
		aff_info("orders: the Redis copy %s shows generation %lld where "
		         "the database recorded %lld (Redis lost data, or the "
		         "database was restored or copied); building a new copy",
		    ns, (long long)shown, (long long)recorded);
		rv = os->s->ops->orders_all_cached(os->s, &copy, &recorded);
		if (rv != AFF_OK && rv != AFF_NOT_FOUND)
			return;
		cache_orders_ns(ns, sizeof(ns), db_id, copy);
	}
	for (;;) {
		struct store_order_row *rows;
		int64_t gen = 0;
		size_t n;
		aff_arena a;

		aff_arena_init(&a);
		rv = os->s->ops->orders_uncached(os->s, SYNC_BATCH, &a, &rows, &n);
		if (rv == AFF_OK && n > 0 &&
		    (rv = cache_orders_put(os->c, ns, recorded, rows, n, &gen)) ==
		        AFF_OK &&
		    (rv = os->s->ops->orders_mark_cached(os->s, rows, n, gen)) ==
		        AFF_OK)
			recorded = gen;
		aff_arena_fini(&a);
		if (rv != AFF_OK || n < SYNC_BATCH)
			break;
	}
}

static void *
sync_main(void *arg)
{
	order_sync *os = arg;
	struct timespec ts;

	for (;;) {
		/* Monotonic (see aff_cond_init_monotonic): a wall-clock step
		 * must neither stall the sync nor make it spin. */
		aff_mono_deadline(&ts, SYNC_TICK_MS);
		pthread_mutex_lock(&os->mtx);
		while (!os->stopping)
			if (pthread_cond_timedwait(&os->cv, &os->mtx, &ts) ==
			    ETIMEDOUT)
				break;
		if (os->stopping) {
			pthread_mutex_unlock(&os->mtx);
			break;
		}
		pthread_mutex_unlock(&os->mtx);
		sync_pass(os);
	}
	return (NULL);
}

int
order_sync_start(const char *db_path, const struct cache_opts *co,
    order_sync **sp)
{
	order_sync *os;
	int rv;

	if ((os = calloc(1, sizeof(*os))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	pthread_mutex_init(&os->mtx, NULL);
	aff_cond_init_monotonic(&os->cv);
	*sp = os;
	if (co->host == NULL || co->host[0] == '\0')
		return (AFF_OK);
	if ((rv = store_open(db_path, &os->s)) != AFF_OK ||
	    (rv = cache_open(co, &os->c)) != AFF_OK)
		goto failed;
	if (pthread_create(&os->thread, NULL, sync_main, os) != 0) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
	pthread_setname_np(os->thread, "aff:ord-sync");
	os->started = 1;
	return (AFF_OK);
failed:
	order_sync_stop(os);
	*sp = NULL;
	return (rv);
}

void
order_sync_stop(order_sync *os)
{
	if (os == NULL)
		return;
	pthread_mutex_lock(&os->mtx);
	os->stopping = 1;
	pthread_cond_signal(&os->cv);
	pthread_mutex_unlock(&os->mtx);
	if (os->started)
		pthread_join(os->thread, NULL);
	cache_close(os->c);
	store_close(os->s);
	pthread_cond_destroy(&os->cv);
	pthread_mutex_destroy(&os->mtx);
	free(os);
}
