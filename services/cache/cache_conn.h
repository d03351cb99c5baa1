/*
 * cache_conn.h - private to the cache layer: the per-thread Redis
 * connection of cache.c, for the layer's other modules (cache_limit.c),
 * so that each thread keeps one connection, one backoff and one "down"
 * line in the log for everything it asks Redis.
 */
#ifndef CACHE_CONN_H
#define CACHE_CONN_H

#include <hiredis/hiredis.h>

#include "cache.h"

/* A live connection, or NULL while Redis is off or down (connecting
 * first when the backoff allows, which waits at most the timeout). The
 * connection's commands time out after the configured timeout. */
redisContext *cache_conn(cache *c);

/* Marks Redis down after a failed command (why: what failed; logged at
 * the first failure only), dropping the connection; the next attempt
 * waits for the backoff. */
void cache_down(cache *c, const char *why);

/* Drops the connection without marking Redis down: the next cache_conn
 * connects at once. For a connection found closed by the other end (Redis
 * restarted while this thread was idle), not for one that timed out. */
void cache_drop(cache *c);

/* Whether cache_conn would return NULL without trying: Redis is off, or
 * down and the backoff is not over. */
int cache_waiting(const cache *c);

#endif /* CACHE_CONN_H */
