/*
 * metrics.h - the bridge's own Prometheus metrics: requests by route and
 * status, and request latency by route, in the text exposition format.
 *
 * Counting costs a few relaxed atomic adds on fixed arrays (no lock, no
 * allocation, labels of bounded cardinality: route templates from the
 * route table, not raw paths, and status codes 100-599), so it sits on the
 * request path of every call without showing in its cost.
 */
#ifndef BRIDGE_METRICS_H
#define BRIDGE_METRICS_H

#include <stddef.h>

struct route;

/* Counts one answered request: route is the matched row (NULL for a path
 * no route has, /openapi.json and /metrics included), status the HTTP
 * status sent, ms the time it took. Thread-safe, lock-free. */
void metrics_request(const struct route *route, const char *path, int status,
    long long ms);

struct aff_mbuf;

/* Appends the bridge's own families (requests, latency, open connections,
 * slow clients cut) to b in the text exposition format. */
void metrics_write(struct aff_mbuf *b);

#endif /* BRIDGE_METRICS_H */
