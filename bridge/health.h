/*
 * health.h - the bridge's probes: GET /livez (this process answers) and
 * GET /readyz (the server, its store and, when configured, Redis serve).
 * They sit beside the route table, not in it: /livez makes no RPC and
 * /readyz answers its own JSON shape, not the API's error body.
 */
#ifndef HEALTH_H
#define HEALTH_H

#include "call.h"

/* Whether path is /livez or /readyz. */
int health_probe_path(const char *path);

/*
 * Answers the probe at path (one health_probe_path accepted): 200
 * {"status":"ok"}, or for /readyz 503 {"status":"not ready","reason":…}
 * naming what does not serve. Other methods than GET and HEAD are 405.
 * Returns the HTTP status.
 */
int health_probe(struct http_call *hc, const char *path);

#endif /* HEALTH_H */
