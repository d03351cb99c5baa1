/*
 * server.h - affiliate-server as a library: configuration (flags and
 * AFFILIATE_* environment variables), start and stop. main.c and the
 * in-process tests both drive it through here.
 */
#ifndef SERVER_H
#define SERVER_H

#include <stddef.h>

struct server_config {
	char listen_url[256];   /* AFFILIATE_LISTEN, --listen */
	char data_dir[512];     /* AFFILIATE_DATA_DIR, --data-dir */
	char db_path[512];      /* AFFILIATE_DB, --db ("" = data_dir/affiliate.db) */
	char redis_host[256];   /* AFFILIATE_REDIS, --redis host:port | off */
	int redis_port;
	int redis_timeout_ms;   /* AFFILIATE_REDIS_TIMEOUT_MS */
	int cache_ttl_s;        /* AFFILIATE_CACHE_TTL, --cache-ttl */
	int local_cache;        /* AFFILIATE_LOCAL_CACHE, --local-cache (entries) */
	int threads;            /* AFFILIATE_THREADS, --threads */
	int contexts;           /* AFFILIATE_CONTEXTS, --contexts */
	size_t max_message;     /* AFFILIATE_MAX_MESSAGE, --max-message */
	int log_level;          /* AFFILIATE_LOG_LEVEL, --log-level */
	char jobs_url[256];     /* AFFILIATE_JOBS_URL, --jobs */
	char results_url[256];  /* AFFILIATE_RESULTS_URL, --results */
	int job_visibility_ms;  /* AFFILIATE_JOB_VISIBILITY_MS */
	int job_max_attempts;   /* AFFILIATE_JOB_MAX_ATTEMPTS */
	int job_backoff_ms;     /* AFFILIATE_JOB_BACKOFF_MS */
	char tls_cert[512];     /* AFFILIATE_TLS_CERT, --tls-cert: tls+tcp://
	                           RPC, job and result listeners */
	char tls_key[512];      /* AFFILIATE_TLS_KEY, --tls-key */
	char tls_ca[512];       /* AFFILIATE_TLS_CA, --tls-ca: signs clients'
	                           (workers', bridges') certificates */
	char auth[8];           /* AFFILIATE_AUTH, --auth: auto | on | off */
	char rate_limit[32];    /* AFFILIATE_RATE_LIMIT: per key */
	char rate_limit_anon[32]; /* AFFILIATE_RATE_LIMIT_ANON: per address */
	int orders_copy;        /* AFFILIATE_ORDERS_COPY, --orders-copy: keep
	                         * a copy of the orders in Redis for lists */
	int rate_limit_shared;  /* AFFILIATE_RATE_LIMIT_SHARED: count in Redis
	                           (when set) for every server (1), or in
	                           this process only (0) */
	char trusted_bridges[512]; /* AFFILIATE_TRUSTED_BRIDGES */
	int webhook_require_timestamp; /* AFFILIATE_WEBHOOK_REQUIRE_TIMESTAMP */
	int postback_allow_private;  /* AFFILIATE_POSTBACK_ALLOW_PRIVATE */
	int postback_attempts;       /* AFFILIATE_POSTBACK_ATTEMPTS */
	int postback_backoff_ms;     /* AFFILIATE_POSTBACK_BACKOFF_MS */
	int postback_disable_after;  /* AFFILIATE_POSTBACK_DISABLE_AFTER */
};

/*
 * Fills cfg with the defaults overridden by the environment, then by argv
 * (argv may be NULL). Returns AFF_OK, or AFF_INVALID_ARGUMENT after printing
 * what is wrong to stderr; sets *help when --help or --version was asked.
 */
int server_config_load(struct server_config *cfg, int argc, char **argv,
    int *help);

/*
 * Makes an admin API key in the database of cfg (created and migrated if
 * need be) and prints its token on stdout: the first key, made by whoever
 * can write the data folder. AFF_OK or the store's error.
 */
int server_create_admin_key(const struct server_config *cfg);

/*
 * affiliate-server --backup FILE: a consistent copy of the configured
 * database into FILE, beside a running server or without one
 * (store_backup); never overwrites FILE. AFF_OK or the store's code.
 */
int server_backup(const struct server_config *cfg, const char *file);

typedef struct server server;

/* Opens the store (creating and seeding it), connects the cache and
 * starts serving. Caller stops with server_stop(). */
int server_start(const struct server_config *cfg, server **sp);
void server_stop(server *s);

#endif /* SERVER_H */
