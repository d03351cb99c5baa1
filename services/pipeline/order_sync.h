/*
 * order_sync.h - keeps the Redis copy of the orders (see cache.h) caught
 * up with SQLite, off the request path: a thread writes orders whose copy
 * is missing or behind every 100 ms. While Redis is down nothing is
 * refused or lost: orders stay marked behind, and are written when it
 * returns. A Redis that comes back empty or from an older snapshot (an
 * older generation, see cache.h) gets every order again.
 */
#ifndef ORDER_SYNC_H
#define ORDER_SYNC_H

#include "cache.h"

typedef struct order_sync order_sync;

/* Starts the thread with its own store and cache connections. With no
 * cache configured it does nothing (and *sp is a valid no-op). */
int order_sync_start(const char *db_path, const struct cache_opts *co,
    order_sync **sp);
void order_sync_stop(order_sync *s);

#endif /* ORDER_SYNC_H */
