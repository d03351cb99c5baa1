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
 * The Redis copy of the orders, for GET /orders. It lives under a
 * namespace ns, "aff:<database id>:<copy id>" (cache_orders_ns): the copy
 * id is random, kept in the database, and replaced whenever the copy
 * cannot be trusted, so a copy belongs to one database's one history.
 * Each order is packed under ns:o:<order_id>, with sorted sets of order
 * ids scored by seq: all, by editor, by advertiser, by status. The hash
 * ns:o:meta holds the generation (gen), bumped with every batch written
 * and recorded in the database with the rows it covers, and a field
 * "i:<index>" for every index that holds an order.
 *
 * A copy whose generation is not the one the database recorded is not
 * read: Redis lost data or came back from an older snapshot, or the
 * database was restored from an older file (or copied) while Redis kept
 * the copy of a history the database no longer has. The sync then starts
 * a new copy under a new copy id.
 */
struct store_order_row;
struct store_order_query;

/* Writes "aff:<db_id>:<copy>" into buf (at least 80 bytes). */
void cache_orders_ns(char *buf, size_t cap, const char *db_id,
    const char *copy);

/*
 * Writes the orders and their index entries and bumps the generation in
 * one MULTI/EXEC, only when the copy still shows generation expect.
 * *gen is the new generation. AFF_OK, AFF_ABORTED when the copy shows
 * another generation (or changed meanwhile), AFF_UNAVAILABLE.
 */
int cache_orders_put(cache *c, const char *ns, int64_t expect,
    const struct store_order_row *rows, size_t n, int64_t *gen);

/* The copy's generation (0 when there is none). AFF_OK or
 * AFF_UNAVAILABLE. */
int cache_orders_gen(cache *c, const char *ns, int64_t *gen);

/*
 * One page of orders from the copy, as store_ops.order_list, when the
 * copy shows generation gen: AFF_OK, or AFF_UNAVAILABLE when Redis is
 * down, shows another generation, or lacks an index key or a listed
 * order it must have (then the copy's generation is dropped, so that it
 * is rebuilt; the caller reads the store). An index that never held an
 * order is an empty page.
 */
int cache_orders_list(cache *c, const char *ns, int64_t gen,
    const struct store_order_query *q, aff_arena *a,
    Affiliate__V1__Order ***out, size_t *n, int64_t *next);

#endif /* CACHE_H */
