/*
 * bridge.h - affiliate-bridge as a library: the JSON REST API over
 * civetweb, each request one RPC to affiliate-server. It holds no state and
 * no secrets. main.c and the tests drive it through here.
 */
#ifndef BRIDGE_H
#define BRIDGE_H

#include <stddef.h>

struct bridge_config {
	char listen[128];      /* --listen, AFFILIATE_BRIDGE_LISTEN */
	char server_url[256];  /* --server, AFFILIATE_URL */
	int threads;           /* --threads, AFFILIATE_BRIDGE_THREADS */
	int sockets;           /* --sockets, AFFILIATE_BRIDGE_SOCKETS */
	int timeout_ms;        /* --timeout, AFFILIATE_BRIDGE_TIMEOUT_MS */
	size_t max_body;       /* --max-body, AFFILIATE_MAX_BODY */
	int log_level;         /* --log-level, AFFILIATE_LOG_LEVEL */
	char cors_origins[1024];    /* --cors-origins, ..._BRIDGE_CORS_ORIGINS */
	char tls_cert[512];         /* --tls-cert, AFFILIATE_BRIDGE_TLS_CERT */
	char tls_key[512];          /* --tls-key, AFFILIATE_BRIDGE_TLS_KEY */
	char trusted_proxies[1024]; /* --trusted-proxies,
	                               AFFILIATE_BRIDGE_TRUSTED_PROXIES */
};

/* Defaults, then the environment, then argv (may be NULL); as
 * aff_config_load. */
int bridge_config_load(struct bridge_config *cfg, int argc, char **argv,
    int *help);

typedef struct bridge bridge;

/* Starts serving. AFF_OK, AFF_INVALID_ARGUMENT (bad setting) or
 * AFF_UNAVAILABLE (the port cannot be bound). Caller stops with
 * bridge_stop(). The server need not be up: calls answer 503 until it is. */
int bridge_start(const struct bridge_config *cfg, bridge **bp);
void bridge_stop(bridge *b);

/* The OpenAPI 3 description served at /openapi.json (owned by b). */
const char *bridge_openapi(const bridge *b);

#endif /* BRIDGE_H */
