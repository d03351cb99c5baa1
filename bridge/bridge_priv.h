/*
 * bridge_priv.h - private to bridge/: the running bridge's state, as
 * bridge.c builds it and the call modules (call.c, call_route.c) read it
 * while they answer a request.
 */
#ifndef BRIDGE_PRIV_H
#define BRIDGE_PRIV_H

#include <civetweb.h>

#include "aff_client.h"
#include "bridge.h"
#include "cors.h"
#include "edge.h"
#include "proxy.h"
#include "readcache.h"

struct bridge {
	struct bridge_config cfg;
	int exposed;       /* listens on a non-loopback address, or TLS */
	struct cors_policy cors;
	struct proxy_list proxies;
	struct mg_context *ctx;
	edge *edge;
	aff_client *client;
	readcache *rcache; /* NULL: --read-cache off */
	char *openapi;
	/* /metrics with several servers: one client each (scrape.h). */
	int n_scrape;
	char scrape_urls[AFF_CLIENT_MAX_URLS][AFF_CLIENT_URL_MAX];
	aff_client *scrape_clients[AFF_CLIENT_MAX_URLS];
};

#endif /* BRIDGE_PRIV_H */
