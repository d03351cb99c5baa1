/* server.c - see server.h. */
#include "server.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "rpc.h"
#include "rpc_server.h"
#include "services.h"

struct server {
	struct server_config cfg;
	rpc_registry *registry;
	struct svc_app app;
	rpc_server *rpc;
};

static const struct rpc_service_def *const service_defs[] = {
	&svc_advertiser_def,
	&svc_application_def,
	&svc_order_def,
	&svc_health_def,
};

static const char usage[] =
    "usage: affiliate-server [options]\n"
    "  --listen URL        RPC address (AFFILIATE_LISTEN, tcp://127.0.0.1:5555)\n"
    "  --data-dir DIR      data folder (AFFILIATE_DATA_DIR, ./data)\n"
    "  --db PATH           SQLite file (AFFILIATE_DB, DIR/affiliate.db)\n"
    "  --redis HOST:PORT   Redis cache, or 'off' (AFFILIATE_REDIS, "
    "127.0.0.1:6379)\n"
    "  --cache-ttl SECS    cache entry lifetime (AFFILIATE_CACHE_TTL, 300)\n"
    "  --threads N         handler threads (AFFILIATE_THREADS, 8)\n"
    "  --contexts N        requests received at once (AFFILIATE_CONTEXTS, "
    "128)\n"
    "  --max-message BYTES largest request accepted (AFFILIATE_MAX_MESSAGE, "
    "2097152)\n"
    "  --log-level LEVEL   debug|info|warn|error (AFFILIATE_LOG_LEVEL, info)\n"
    "  --help, --version\n";

static int
set_str(char *dst, size_t cap, const char *v, const char *what)
{
	if (strlen(v) >= cap) {
		fprintf(stderr, "affiliate-server: %s is too long\n", what);
		return (AFF_INVALID_ARGUMENT);
	}
	memcpy(dst, v, strlen(v) + 1);
	return (AFF_OK);
}

static int
set_int(int *dst, const char *v, int64_t min, int64_t max, const char *what)
{
	int64_t n;

	if (aff_parse_int64(v, min, max, &n) != AFF_OK) {
		fprintf(stderr,
		    "affiliate-server: %s must be a whole number from %lld to "
		    "%lld, not '%s'\n",
		    what, (long long)min, (long long)max, v);
		return (AFF_INVALID_ARGUMENT);
	}
	*dst = (int)n;
	return (AFF_OK);
}

/* "host:port" or "off" (or "") for no cache. */
static int
set_redis(struct server_config *cfg, const char *v)
{
	const char *colon;
	char port[16];

	if (*v == '\0' || strcmp(v, "off") == 0) {
		cfg->redis_host[0] = '\0';
		return (AFF_OK);
	}
	if ((colon = strrchr(v, ':')) == NULL || colon == v ||
	    (size_t)(colon - v) >= sizeof(cfg->redis_host) ||
	    strlen(colon + 1) >= sizeof(port)) {
		fprintf(stderr,
		    "affiliate-server: redis must be HOST:PORT or off, not '%s'\n",
		    v);
		return (AFF_INVALID_ARGUMENT);
	}
	memcpy(cfg->redis_host, v, (size_t)(colon - v));
	cfg->redis_host[colon - v] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	return (set_int(&cfg->redis_port, port, 1, 65535, "the redis port"));
}

static int
set_level(struct server_config *cfg, const char *v)
{
	if ((cfg->log_level = aff_log_level_parse(v)) < 0) {
		fprintf(stderr,
		    "affiliate-server: log level must be debug, info, warn or "
		    "error, not '%s'\n",
		    v);
		return (AFF_INVALID_ARGUMENT);
	}
	return (AFF_OK);
}

enum { OPT_LISTEN = 1, OPT_DATA, OPT_DB, OPT_REDIS, OPT_TTL, OPT_THREADS,
	OPT_CONTEXTS, OPT_MAXMSG, OPT_LEVEL, OPT_HELP, OPT_VERSION };

/* Applies one setting, from the environment or a flag. */
static int
config_set(struct server_config *cfg, int opt, const char *v)
{
	int n, rv;

	switch (opt) {
	case OPT_LISTEN:
		return (set_str(cfg->listen_url, sizeof(cfg->listen_url), v,
		    "the listen URL"));
	case OPT_DATA:
		return (set_str(
		    cfg->data_dir, sizeof(cfg->data_dir), v, "the data folder"));
	case OPT_DB:
		return (set_str(
		    cfg->db_path, sizeof(cfg->db_path), v, "the database path"));
	case OPT_REDIS:
		return (set_redis(cfg, v));
	case OPT_TTL:
		return (set_int(&cfg->cache_ttl_s, v, 1, 86400, "the cache TTL"));
	case OPT_THREADS:
		return (set_int(&cfg->threads, v, 1, 256, "threads"));
	case OPT_CONTEXTS:
		return (set_int(&cfg->contexts, v, 1, 65536, "contexts"));
	case OPT_MAXMSG:
		if ((rv = set_int(&n, v, 1024, 1 << 30, "max message")) == 0)
			cfg->max_message = (size_t)n;
		return (rv);
	case OPT_LEVEL:
		return (set_level(cfg, v));
	}
	return (AFF_INVALID_ARGUMENT);
}

int
server_config_load(
    struct server_config *cfg, int argc, char **argv, int *help)
{
	static const struct {
		const char *env;
		int opt;
	} envs[] = {
		{ "AFFILIATE_LISTEN", OPT_LISTEN },
		{ "AFFILIATE_DATA_DIR", OPT_DATA },
		{ "AFFILIATE_DB", OPT_DB },
		{ "AFFILIATE_REDIS", OPT_REDIS },
		{ "AFFILIATE_CACHE_TTL", OPT_TTL },
		{ "AFFILIATE_THREADS", OPT_THREADS },
		{ "AFFILIATE_CONTEXTS", OPT_CONTEXTS },
		{ "AFFILIATE_MAX_MESSAGE", OPT_MAXMSG },
		{ "AFFILIATE_LOG_LEVEL", OPT_LEVEL },
	};
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "data-dir", required_argument, NULL, OPT_DATA },
		{ "db", required_argument, NULL, OPT_DB },
		{ "redis", required_argument, NULL, OPT_REDIS },
		{ "cache-ttl", required_argument, NULL, OPT_TTL },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "contexts", required_argument, NULL, OPT_CONTEXTS },
		{ "max-message", required_argument, NULL, OPT_MAXMSG },
		{ "log-level", required_argument, NULL, OPT_LEVEL },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *v;
	int opt;

	memset(cfg, 0, sizeof(*cfg));
	*help = 0;
	snprintf(cfg->listen_url, sizeof(cfg->listen_url), "tcp://127.0.0.1:5555");
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "data");
	snprintf(cfg->redis_host, sizeof(cfg->redis_host), "127.0.0.1");
	cfg->redis_port = 6379;
	cfg->redis_timeout_ms = 200;
	cfg->cache_ttl_s = 300;
	cfg->threads = 8;
	cfg->contexts = 128;
	cfg->max_message = 2u << 20;
	cfg->log_level = AFF_LOG_INFO;

	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		if ((v = getenv(envs[i].env)) == NULL)
			continue;
		if (config_set(cfg, envs[i].opt, v) != AFF_OK) {
			fprintf(stderr, "affiliate-server: (from %s)\n", envs[i].env);
			return (AFF_INVALID_ARGUMENT);
		}
	}
	if ((v = getenv("AFFILIATE_REDIS_TIMEOUT_MS")) != NULL &&
	    set_int(&cfg->redis_timeout_ms, v, 1, 60000, "redis timeout") != 0)
		return (AFF_INVALID_ARGUMENT);
	if (argv == NULL)
		return (AFF_OK);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == OPT_HELP || opt == OPT_VERSION) {
			fputs(opt == OPT_HELP ? usage
			                      : "affiliate-server " AFFILIATE_VERSION
			                        "\n",
			    stdout);
			*help = 1;
			return (AFF_OK);
		}
		if (opt == '?' || config_set(cfg, opt, optarg) != AFF_OK) {
			fputs(usage, stderr);
			return (AFF_INVALID_ARGUMENT);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "affiliate-server: unexpected argument '%s'\n%s",
		    argv[optind], usage);
		return (AFF_INVALID_ARGUMENT);
	}
	return (AFF_OK);
}

static void *
server_thread_init(void *arg)
{
	server *s = arg;
	struct rpc_thread_env *env;
	struct cache_opts co = {
		.host = s->cfg.redis_host,
		.port = s->cfg.redis_port,
		.timeout_ms = s->cfg.redis_timeout_ms,
		.ttl_s = s->cfg.cache_ttl_s,
	};

	if ((env = calloc(1, sizeof(*env))) == NULL)
		return (NULL);
	env->registry = s->registry;
	env->app = &s->app;
	if (store_open(s->cfg.db_path, &env->store) != AFF_OK)
		goto failed_store;
	if (cache_open(&co, &env->cache) != AFF_OK)
		goto failed_cache;
	return (env);

failed_cache:
	store_close(env->store);
failed_store:
	free(env);
	return (NULL);
}

static void
server_thread_fini(void *state)
{
	struct rpc_thread_env *env = state;

	cache_close(env->cache);
	store_close(env->store);
	free(env);
}

static nng_msg *
server_handle(void *state, nng_msg *req)
{
	return (rpc_dispatch(state, nng_msg_body(req), nng_msg_len(req)));
}

int
server_start(const struct server_config *cfg, server **sp)
{
	struct rpc_server_opts ro;
	server *s;
	store *first;
	int rv;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	s->cfg = *cfg;
	aff_log_set_level(cfg->log_level);
	if (s->cfg.db_path[0] == '\0') {
		if (mkdir(s->cfg.data_dir, 0700) != 0 && errno != EEXIST) {
			aff_error("server: cannot create data folder %s: %s",
			    s->cfg.data_dir, strerror(errno));
			rv = AFF_UNAVAILABLE;
			goto failed_store;
		}
		if (snprintf(s->cfg.db_path, sizeof(s->cfg.db_path),
		        "%s/affiliate.db",
		        s->cfg.data_dir) >= (int)sizeof(s->cfg.db_path)) {
			rv = AFF_INVALID_ARGUMENT;
			goto failed_store;
		}
	}
	/* Create, migrate and seed once, before the threads open it. */
	if ((rv = store_open(s->cfg.db_path, &first)) != AFF_OK)
		goto failed_store;
	store_close(first);
	if ((rv = rpc_registry_alloc(&s->registry, service_defs,
	         sizeof(service_defs) / sizeof(service_defs[0]))) != AFF_OK)
		goto failed_registry;
	s->app.registry = s->registry;

	memset(&ro, 0, sizeof(ro));
	ro.url = s->cfg.listen_url;
	ro.n_contexts = s->cfg.contexts;
	ro.n_threads = s->cfg.threads;
	ro.max_msg = s->cfg.max_message;
	ro.thread_init = server_thread_init;
	ro.thread_fini = server_thread_fini;
	ro.arg = s;
	ro.handle = server_handle;
	if ((rv = rpc_server_start(&ro, &s->rpc)) != AFF_OK)
		goto failed_rpc;
	aff_info("server: store %s, cache %s%s%.0d", s->cfg.db_path,
	    s->cfg.redis_host[0] ? s->cfg.redis_host : "off",
	    s->cfg.redis_host[0] ? ":" : "",
	    s->cfg.redis_host[0] ? s->cfg.redis_port : 0);
	*sp = s;
	return (AFF_OK);

failed_rpc:
	rpc_registry_free(s->registry);
failed_registry:
failed_store:
	free(s);
	return (rv);
}

void
server_stop(server *s)
{
	if (s == NULL)
		return;
	rpc_server_stop(s->rpc);
	rpc_registry_free(s->registry);
	free(s);
}
