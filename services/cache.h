/*
 * cache.h - the Redis read cache (hiredis), one connection per handler
 * thread.
 *
 * Redis is never the only copy of anything: every miss or failure here
 * sends the caller to the store. When Redis cannot be reached the cache
 * stays out of the way (no call waits on it) and tries to reconnect with
 * exponential backoff, from 100 ms up to 5 s.
 */
#ifndef CACHE_H
#define CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "aff_arena.h"
#include "affiliate/v1/affiliate.pb-c.h"

typedef struct cache cache;

struct cache_opts {
	const char *host;  /* NULL or "": caching off */
	int port;
	int timeout_ms;    /* connect and command timeout */
	int ttl_s;         /* lifetime of an entry */
};

/* Never fails for an unreachable Redis (it connects lazily); fails only
 * out of memory. Caller closes with cache_close(). */
int cache_open(const struct cache_opts *opts, cache **cp);
void cache_close(cache *c);

/* Whether caching is configured at all. */
int cache_enabled(const cache *c);

/*
 * Looks key up. AFF_OK with *val (caller free()s) and *len on a hit,
 * AFF_NOT_FOUND on a miss, AFF_UNAVAILABLE when Redis is off or down.
 */
int cache_get(cache *c, const void *key, size_t keylen, uint8_t **val,
    size_t *len);

/* Stores val under key with the configured TTL; AFF_OK or AFF_UNAVAILABLE. */
int cache_set(cache *c, const void *key, size_t keylen, const void *val,
    size_t len);

/* Whether the connection is up, without a round trip (reconnecting if
 * the backoff allows); a dead connection shows on its next command. For
 * health checks that run under load. */
int cache_status(cache *c);

/*
 * The Redis copy of the orders, for GET /orders: each order packed under
 * aff:<db>:o:<order_id>, and sorted sets of order ids scored by seq: all,
 * by editor, by advertiser, by status. A generation counter in Redis,
 * bumped with every batch written, is recorded in SQLite with the rows it
 * covers: a Redis that lost data or came back from an older snapshot
 * shows another generation, and is not read (and gets everything again).
 */
struct store_order_row;
struct store_order_query;

/* Writes the orders and their index entries and bumps the generation, in
 * one pipeline; *gen is the new generation. AFF_OK or AFF_UNAVAILABLE. */
int cache_orders_put(cache *c, const char *db_id,
    const struct store_order_row *rows, size_t n, int64_t *gen);

/* The copy's generation (0 when there is none). AFF_OK or
 * AFF_UNAVAILABLE. */
int cache_orders_gen(cache *c, const char *db_id, int64_t *gen);

/*
 * One page of orders from the copy, as store_ops.order_list, when the
 * copy shows generation gen: AFF_OK, or AFF_UNAVAILABLE when Redis is
 * down, shows another generation or lacks a listed order (the caller then
 * reads SQLite).
 */
int cache_orders_list(cache *c, const char *db_id, int64_t gen,
    const struct store_order_query *q, aff_arena *a,
    Affiliate__V1__Order ***out, size_t *n, int64_t *next);

#endif /* CACHE_H */
