/*
 * rpc_metrics.h - the server's RPC counters for /metrics: calls by method
 * and status code, their latency by method, and the reply cache's hits
 * and misses (memory, then Redis).
 *
 * Process-wide fixed arrays of relaxed atomics, indexed by the method's
 * row in the registry (rpc_registry_method_at): counting a call is three
 * atomic adds, with no lock and no allocation; labels stay bounded (the
 * registry's methods and the 17 codes; a name no method has counts as
 * method "other", never as itself).
 */
#ifndef RPC_METRICS_H
#define RPC_METRICS_H

#include <stdint.h>

#include "rpc.h"

struct aff_mbuf;

/* Rows past this are counted as "other" (the registry has ~20 methods). */
#define RPC_METRICS_ROWS 64

/* One answered call: row from rpc_call.mrow (-1: no method was found),
 * code its status, us its time from dispatch to reply (< 0: not timed,
 * a call refused before it was read). */
void rpc_metrics_call(int row, int code, int64_t us);

enum { RPC_CACHE_MEMORY, RPC_CACHE_REDIS };
/* One look into a reply cache (RPC_CACHE_*), hit or not. */
void rpc_metrics_cache(int which, int hit);

/* Appends the families affiliate_server_rpc_requests_total,
 * affiliate_server_rpc_duration_seconds and
 * affiliate_server_cache_requests_total, named from r. */
void rpc_metrics_write(const rpc_registry *r, struct aff_mbuf *b);

#endif /* RPC_METRICS_H */
