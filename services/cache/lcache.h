/*
 * lcache.h - the server's in-process reply cache, in front of Redis.
 *
 * Measured (tests/bench): a Redis round trip per cached read costs more
 * than the SQLite read it saves on this machine (8.9k against 14.4k
 * requests/s through the bridge), so hot catalog replies are kept in
 * memory too. Keys carry the catalog version (see rpc.h), so an entry can
 * never be served stale: a write retires it by changing the key. The table
 * is fixed-size and direct-mapped (a colliding put replaces), so memory is
 * bounded by n_entries * max_value.
 */
#ifndef LCACHE_H
#define LCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lcache lcache;

/* n_entries 0 gives no cache (every get misses). Caller frees. */
int lcache_alloc(lcache **lp, size_t n_entries, size_t max_value);
void lcache_free(lcache *l);

/* A hit copies the value into a new malloc'd buffer (*val, caller frees):
 * AFF_OK; a miss: AFF_NOT_FOUND. Thread-safe. */
int lcache_get(lcache *l, const void *key, size_t klen, uint8_t **val,
    size_t *vlen);

/* Stores a copy (values over max_value are not kept). Thread-safe. */
void lcache_put(lcache *l, const void *key, size_t klen, const void *val,
    size_t vlen);

#endif /* LCACHE_H */
