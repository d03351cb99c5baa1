/*
 * bridge_config.h - affiliate-bridge's settings: their defaults, and how
 * the environment and the command line set them (the option table of
 * aff_config.h).
 */
#ifndef BRIDGE_CONFIG_H
#define BRIDGE_CONFIG_H

#include <stddef.h>

struct bridge_config {
	char listen[128];      /* --listen, AFFILIATE_BRIDGE_LISTEN */
	/* --server, AFFILIATE_URL: one URL, or up to AFF_CLIENT_MAX_URLS
	 * comma-separated (servers sharing one database). */
	char server_url[4096];
	int shared_db;         /* --shared-db, AFFILIATE_BRIDGE_SHARED_DB: the
	                          servers share one database, so a webhook or
	                          a keyed call that may have reached a server
	                          that failed is sent to another (README,
	                          Several servers) */
	int threads;           /* --threads, AFFILIATE_BRIDGE_THREADS */
	int sockets;           /* --sockets, AFFILIATE_BRIDGE_SOCKETS */
	int timeout_ms;        /* --timeout, AFFILIATE_BRIDGE_TIMEOUT_MS */
	size_t max_body;       /* --max-body, AFFILIATE_MAX_BODY */
	int log_level;         /* --log-level, AFFILIATE_LOG_LEVEL */
	char cors_origins[1024];    /* --cors-origins, ..._BRIDGE_CORS_ORIGINS */
	char tls_cert[512];         /* --tls-cert, AFFILIATE_BRIDGE_TLS_CERT */
	char tls_key[512];          /* --tls-key, AFFILIATE_BRIDGE_TLS_KEY */
	/* A tls+tcp:// --server: this bridge's client certificate and key,
	 * and the CA that signs the server's (--server-tls-*,
	 * AFFILIATE_BRIDGE_SERVER_TLS_*). */
	char server_tls_cert[512];
	char server_tls_key[512];
	char server_tls_ca[512];
	char trusted_proxies[1024]; /* --trusted-proxies,
	                               AFFILIATE_BRIDGE_TRUSTED_PROXIES */
	/* Slow clients (edge.h): --header-timeout,
	 * AFFILIATE_BRIDGE_HEADER_TIMEOUT_MS; --body-timeout,
	 * AFFILIATE_BRIDGE_BODY_TIMEOUT_MS; --body-min-rate,
	 * AFFILIATE_BRIDGE_BODY_MIN_RATE; --slow-per-addr,
	 * AFFILIATE_BRIDGE_SLOW_PER_ADDR. */
	/* --read-cache, AFFILIATE_READ_CACHE: keep the public catalog
	 * answers the server marks reusable (readcache.h); read_cache_poll_ms
	 * and read_cache_max_age_ms are readcache_opts' (0: its defaults),
	 * set by tests only. */
	int read_cache;
	int read_cache_poll_ms;
	int read_cache_max_age_ms;
	int header_timeout_ms;
	int body_timeout_ms;
	int body_min_rate;
	int slow_per_addr;
};

/* Defaults, then the environment, then argv (may be NULL); as
 * aff_config_load. */
int bridge_config_load(struct bridge_config *cfg, int argc, char **argv,
    int *help);

#endif /* BRIDGE_CONFIG_H */
