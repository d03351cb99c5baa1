/* server.c - see server.h. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aff_addr.h"
#include "aff_config.h"
#include "aff_err.h"
#include "aff_postback.h"
#include "aff_jobauth.h"
#include "aff_log.h"
#include "aff_tls.h"
#include "aff_util.h"
#include "aff_webhook.h"
#include "jobs.h"
#include "order_sync.h"
#include "order_writer.h"
#include "auth.h"
#include "cache_limit.h"
#include "rpc.h"
#include "rpc_server.h"
#include "services.h"
#include "store.h"

struct server {
	struct server_config cfg;
	rpc_registry *registry;
	lcache *lcache;
	jobs *jobs;
	order_writer *orders;
	order_sync *order_sync;
	struct aff_webhook_secrets secrets;
	struct svc_app app;
	struct auth_policy auth;
	/* "aff:<database id>:rl:": the rate-limit buckets in Redis belong to
	 * one database's keys (key ids are per database), shared by every
	 * server on it; "" when Redis is off (local buckets only). */
	char limit_ns[64];
	char worker_secret[256]; /* AFFILIATE_WORKER_SECRET or DATA_DIR/worker_secret */
	rpc_server *rpc;
};

static const struct rpc_service_def *const service_defs[] = {
	&svc_advertiser_def,
	&svc_application_def,
	&svc_order_def,
	&svc_health_def,
	&svc_key_def,
	&svc_webhook_secret_def,
	&svc_job_admin_def,
	&svc_catalog_def,
	&svc_postback_def,
	&svc_report_def,
};

/* "host:port", or "off" (or "") for no cache. */
static int
parse_redis(void *dst, const char *v)
{
	struct server_config *cfg = dst;
	const char *colon;
	int64_t port;

	if (*v == '\0' || strcmp(v, "off") == 0) {
		cfg->redis_host[0] = '\0';
		return (0);
	}
	if ((colon = strrchr(v, ':')) == NULL || colon == v ||
	    (size_t)(colon - v) >= sizeof(cfg->redis_host) ||
	    aff_parse_int64(colon + 1, 1, 65535, &port) != AFF_OK) {
		fprintf(stderr,
		    "affiliate-server: --redis must be HOST:PORT or off, not "
		    "'%s'\n",
		    v);
		return (-1);
	}
	memcpy(cfg->redis_host, v, (size_t)(colon - v));
	cfg->redis_host[colon - v] = '\0';
	cfg->redis_port = (int)port;
	return (0);
}

static int
parse_auth(void *dst, const char *v)
{
	struct server_config *cfg = dst;
	enum auth_mode m;

	if (auth_mode_parse(v, &m) != 0) {
		fprintf(stderr,
		    "affiliate-server: --auth must be auto, on or off, not '%s'\n",
		    v);
		return (-1);
	}
	snprintf(cfg->auth, sizeof(cfg->auth), "%s", v);
	return (0);
}

static int
parse_limit(char *dst, size_t cap, const char *flag, const char *v)
{
	struct auth_limit l;

	if (strlen(v) >= cap || auth_limit_parse(v, &l) != 0) {
		fprintf(stderr,
		    "affiliate-server: --%s must be auto, off or RATE[/BURST] "
		    "(calls a second, 1..1000000), not '%s'\n",
		    flag, v);
		return (-1);
	}
	snprintf(dst, cap, "%s", v);
	return (0);
}

static int
parse_limit_key(void *dst, const char *v)
{
	struct server_config *cfg = dst;

	return (parse_limit(
	    cfg->rate_limit, sizeof(cfg->rate_limit), "rate-limit", v));
}

static int
parse_limit_anon(void *dst, const char *v)
{
	struct server_config *cfg = dst;

	return (parse_limit(cfg->rate_limit_anon, sizeof(cfg->rate_limit_anon),
	    "rate-limit-anon", v));
}

/* A switch: on, 1, true, yes or off, 0, false, no; else the flag's
 * error, said. */
static int
parse_switch(const char *flag, const char *v, int *out)
{
	if (strcmp(v, "1") == 0 || strcmp(v, "on") == 0 ||
	    strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
		*out = 1;
	else if (strcmp(v, "0") == 0 || strcmp(v, "off") == 0 ||
	    strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
		*out = 0;
	else {
		fprintf(stderr,
		    "affiliate-server: --%s must be on or off (1 or 0), not "
		    "'%s'\n",
		    flag, v);
		return (-1);
	}
	return (0);
}

static int
parse_limit_shared(void *dst, const char *v)
{
	struct server_config *cfg = dst;

	return (parse_switch("rate-limit-shared", v, &cfg->rate_limit_shared));
}

static int
parse_orders_copy(void *dst, const char *v)
{
	struct server_config *cfg = dst;

	return (parse_switch("orders-copy", v, &cfg->orders_copy));
}

static int
parse_require_ts(void *dst, const char *v)
{
	struct server_config *cfg = dst;

	if (*v == '\0') {
		cfg->webhook_require_timestamp = 0;
		return (0);
	}
	return (parse_switch("webhook-require-timestamp", v,
	    &cfg->webhook_require_timestamp));
}

int
server_config_load(
    struct server_config *cfg, int argc, char **argv, int *help)
{
	const struct aff_option opts[] = {
		{ "listen", "AFFILIATE_LISTEN", AFF_OPT_STRING, cfg->listen_url,
		    sizeof(cfg->listen_url), 0, 0, NULL, "URL",
		    "RPC address, tcp://, ipc:// or tls+tcp:// (with --tls-*: "
		    "clients need a certificate from --tls-ca) "
		    "(tcp://127.0.0.1:5555)" },
		{ "data-dir", "AFFILIATE_DATA_DIR", AFF_OPT_STRING, cfg->data_dir,
		    sizeof(cfg->data_dir), 0, 0, NULL, "DIR",
		    "data folder (data)" },
		{ "db", "AFFILIATE_DB", AFF_OPT_STRING, cfg->db_path,
		    sizeof(cfg->db_path), 0, 0, NULL, "PATH",
		    "SQLite file (DIR/affiliate.db), or PostgreSQL: "
		    "postgresql://... or a conninfo host=... dbname=..." },
		{ "redis", "AFFILIATE_REDIS", AFF_OPT_CUSTOM, cfg, 0, 0, 0,
		    parse_redis, "HOST:PORT", "Redis cache, or off (127.0.0.1:6379)" },
		{ "redis-timeout", "AFFILIATE_REDIS_TIMEOUT_MS", AFF_OPT_INT,
		    &cfg->redis_timeout_ms, 0, 1, 60000, NULL, "MS",
		    "Redis connect and command timeout (200)" },
		{ "cache-ttl", "AFFILIATE_CACHE_TTL", AFF_OPT_INT, &cfg->cache_ttl_s,
		    0, 1, 86400, NULL, "SECS", "cache entry lifetime (300)" },
		{ "orders-copy", "AFFILIATE_ORDERS_COPY", AFF_OPT_CUSTOM, cfg, 0,
		    0, 0, parse_orders_copy, "on|off",
		    "list orders from a copy kept in Redis (measured slower than "
		    "the database's indexes, and it costs every order) (off)" },
		{ "local-cache", "AFFILIATE_LOCAL_CACHE", AFF_OPT_INT,
		    &cfg->local_cache, 0, 0, 1 << 20, NULL, "ENTRIES",
		    "in-memory reply cache entries, 0 for none (4096)" },
		{ "threads", "AFFILIATE_THREADS", AFF_OPT_INT, &cfg->threads, 0, 1,
		    256, NULL, "N", "handler threads (2 per CPU, at least 4)" },
		{ "contexts", "AFFILIATE_CONTEXTS", AFF_OPT_INT, &cfg->contexts, 0,
		    1, 65536, NULL, "N", "requests received at once (128)" },
		{ "max-message", "AFFILIATE_MAX_MESSAGE", AFF_OPT_SIZE,
		    &cfg->max_message, 0, 1024, 1 << 30, NULL, "BYTES",
		    "largest request accepted (2097152)" },
		{ "log-level", "AFFILIATE_LOG_LEVEL", AFF_OPT_LEVEL,
		    &cfg->log_level, 0, 0, 0, NULL, "LEVEL",
		    "debug, info, warn or error (info)" },
		{ "log-format", "AFFILIATE_LOG_FORMAT", AFF_OPT_CUSTOM, NULL, 0,
		    0, 0, aff_log_format_option, "FORMAT",
		    "text, or json: one JSON object a line (text)" },
		{ "jobs", "AFFILIATE_JOBS_URL", AFF_OPT_STRING, cfg->jobs_url,
		    sizeof(cfg->jobs_url), 0, 0, NULL, "URL",
		    "where workers pull jobs (tcp://127.0.0.1:5556)" },
		{ "results", "AFFILIATE_RESULTS_URL", AFF_OPT_STRING,
		    cfg->results_url, sizeof(cfg->results_url), 0, 0, NULL, "URL",
		    "where workers push results (tcp://127.0.0.1:5557)" },
		{ "job-visibility", "AFFILIATE_JOB_VISIBILITY_MS", AFF_OPT_INT,
		    &cfg->job_visibility_ms, 0, 10, 86400000, NULL, "MS",
		    "a job's lease: without a result or heartbeat by then it is "
		    "delivered again (10000)" },
		{ "job-attempts", "AFFILIATE_JOB_MAX_ATTEMPTS", AFF_OPT_INT,
		    &cfg->job_max_attempts, 0, 1, 100, NULL, "N",
		    "deliveries before a job is dead (5)" },
		{ "job-backoff", "AFFILIATE_JOB_BACKOFF_MS", AFF_OPT_INT,
		    &cfg->job_backoff_ms, 0, 1, 3600000, NULL, "MS",
		    "first retry delay after a failure, doubling (200)" },
		{ "tls-cert", "AFFILIATE_TLS_CERT", AFF_OPT_STRING, cfg->tls_cert,
		    sizeof(cfg->tls_cert), 0, 0, NULL, "FILE",
		    "PEM certificate of the tls+tcp:// RPC, job and result "
		    "listeners (none)" },
		{ "tls-key", "AFFILIATE_TLS_KEY", AFF_OPT_STRING, cfg->tls_key,
		    sizeof(cfg->tls_key), 0, 0, NULL, "FILE",
		    "its PEM private key (none)" },
		{ "tls-ca", "AFFILIATE_TLS_CA", AFF_OPT_STRING, cfg->tls_ca,
		    sizeof(cfg->tls_ca), 0, 0, NULL, "FILE",
		    "PEM CA that signs the client certificates of workers, "
		    "bridges and RPC clients, required on tls+tcp:// (none)" },
		{ "auth", "AFFILIATE_AUTH", AFF_OPT_CUSTOM, cfg, 0, 0, 0,
		    parse_auth, "MODE",
		    "API keys required: auto (when reachable from another host), "
		    "on, off (auto)" },
		{ "rate-limit", "AFFILIATE_RATE_LIMIT", AFF_OPT_CUSTOM, cfg, 0, 0, 0,
		    parse_limit_key, "RATE[/BURST]",
		    "calls a second per API key (0.1: one in 10 s); auto = "
		    "50/100 where keys are required; off (auto)" },
		{ "rate-limit-anon", "AFFILIATE_RATE_LIMIT_ANON", AFF_OPT_CUSTOM,
		    cfg, 0, 0, 0, parse_limit_anon, "RATE[/BURST]",
		    "calls a second per client address without a key (webhooks "
		    "too); auto = 200/400 where keys are required; off (auto)" },
		{ "rate-limit-shared", "AFFILIATE_RATE_LIMIT_SHARED",
		    AFF_OPT_CUSTOM, cfg, 0, 0, 0, parse_limit_shared, "on|off",
		    "count the rate limits in Redis, shared by every server on "
		    "the database (a Redis round trip per limited call), or in "
		    "this process only (on)" },
		{ "trusted-bridges", "AFFILIATE_TRUSTED_BRIDGES", AFF_OPT_STRING,
		    cfg->trusted_bridges, sizeof(cfg->trusted_bridges), 0, 0, NULL,
		    "ADDRS",
		    "bridges (IP addresses, comma-separated) whose x-forwarded-for "
		    "is believed, besides loopback and ipc (none)" },
		{ "webhook-require-timestamp",
		    "AFFILIATE_WEBHOOK_REQUIRE_TIMESTAMP", AFF_OPT_CUSTOM, cfg, 0,
		    0, 0, parse_require_ts, "on|off",
		    "refuse the plain webhook signature (no timestamp, so it can "
		    "be replayed) for every advertiser (off)" },
		{ "postback-allow-private", "AFFILIATE_POSTBACK_ALLOW_PRIVATE",
		    AFF_OPT_CUSTOM, &cfg->postback_allow_private, 0, 0, 0,
		    aff_postback_allow_private_option, "on|off",
		    "postback endpoints may be on loopback, private and "
		    "link-local addresses (tests, one host) (off)" },
		{ "postback-attempts", "AFFILIATE_POSTBACK_ATTEMPTS", AFF_OPT_INT,
		    &cfg->postback_attempts, 0, 1, 100, NULL, "N",
		    "attempts before a postback delivery is dead (8)" },
		{ "postback-backoff", "AFFILIATE_POSTBACK_BACKOFF_MS", AFF_OPT_INT,
		    &cfg->postback_backoff_ms, 0, 1, 3600000, NULL, "MS",
		    "first wait after a failed postback, doubling, half of it "
		    "random, up to an hour (1000)" },
		{ "postback-disable-after", "AFFILIATE_POSTBACK_DISABLE_AFTER",
		    AFF_OPT_INT, &cfg->postback_disable_after, 0, 1, 1000000, NULL,
		    "N", "failed postback attempts in a row that turn an endpoint "
		    "off (100)" },
		/* Environment only (secrets are never flags: argv is visible
		 * to every user), read where they are used. */
		{ NULL, "AFFILIATE_WEBHOOK_SECRET", AFF_OPT_STRING, NULL, 0, 0, 0,
		    NULL, NULL,
		    "webhook signing secrets, comma-separated (none: one is made "
		    "in DIR/webhook_secret)" },
		{ NULL, "AFFILIATE_WORKER_SECRET", AFF_OPT_STRING, NULL, 0, 0, 0,
		    NULL, NULL,
		    "shared with the workers (16+ characters): results without "
		    "its MAC are dropped (none)" },
		{ NULL, "AFFILIATE_DB_MAX_PAGES", AFF_OPT_STRING, NULL, 0, 0, 0,
		    NULL, NULL,
		    "size cap of the SQLite file in pages; past it writes fail "
		    "as on a full disk (none)" },
	};

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_url, sizeof(cfg->listen_url), "tcp://127.0.0.1:5555");
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "data");
	snprintf(cfg->redis_host, sizeof(cfg->redis_host), "127.0.0.1");
	cfg->redis_port = 6379;
	cfg->redis_timeout_ms = 200;
	cfg->cache_ttl_s = 300;
	cfg->local_cache = 4096;
	/* Measured: 4 handler threads on 2 cores serve 19.6k cached reads/s
	 * through the bridge, 8 threads 15.5k (more switching, no more
	 * parallelism). */
	cfg->threads = (int)sysconf(_SC_NPROCESSORS_ONLN) * 2;
	if (cfg->threads < 4)
		cfg->threads = 4;
	cfg->contexts = 128;
	cfg->max_message = 2u << 20;
	cfg->log_level = AFF_LOG_INFO;
	snprintf(cfg->jobs_url, sizeof(cfg->jobs_url), "tcp://127.0.0.1:5556");
	snprintf(cfg->results_url, sizeof(cfg->results_url),
	    "tcp://127.0.0.1:5557");
	cfg->job_visibility_ms = 10000;
	cfg->job_max_attempts = 5;
	cfg->job_backoff_ms = 200;
	cfg->postback_attempts = 8;
	cfg->postback_backoff_ms = 1000;
	cfg->postback_disable_after = 100;
	snprintf(cfg->auth, sizeof(cfg->auth), "auto");
	cfg->rate_limit_shared = 1;
	snprintf(cfg->rate_limit, sizeof(cfg->rate_limit), "auto");
	snprintf(cfg->rate_limit_anon, sizeof(cfg->rate_limit_anon), "auto");
	return (aff_config_load("affiliate-server", opts,
	    sizeof(opts) / sizeof(opts[0]), argc, argv, help));
}

/* Copies text into a buffer of cap bytes, cut to fit. (snprintf with "%s"
 * does the same through the whole format machinery: on the admission path,
 * twice per call, that was ~1,400 instructions, 8 % of a cached read.) */
static void
copy_text(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Decision metadata and message, as the RPC layer puts them on a reply. */
static int
gate_result(const struct auth_decision *d, struct rpc_gate_result *r)
{
	r->code = d->code;
	r->public_call = d->public_call;
	copy_text(r->message, sizeof(r->message), d->message);
	r->n_trailers = 0;
	for (size_t i = 0; i < d->n_reply_md && i < RPC_MAX_TRAILERS; i++) {
		r->trailers[i].key = d->reply_md[i].key;
		copy_text(r->trailers[i].value, sizeof(r->trailers[i].value),
		    d->reply_md[i].value);
		r->n_trailers++;
	}
	return (r->code);
}

/*
 * The RPC layer's gate, pointed at the policy layer: the two know nothing
 * of each other (rpc.h, auth.h), so their views meet here, in the one
 * place that links both.
 */
/* A thread's Redis connection and the server's namespace, as the
 * policy's shared buckets (ratelimit.h) see them. */
struct limit_redis {
	cache *cache;
	const char *ns;
};

/* ratelimit_shared.take over cache_limit_take: the policy's rule and
 * state in seconds, Redis's in milliseconds. */
static int
limit_redis_take(void *arg, const char *key, const struct ratelimit_rule *rule,
    struct ratelimit_state *st)
{
	const struct limit_redis *lr = arg;
	struct cache_limit_state cs;
	char k[160];
	int tried;

	snprintf(k, sizeof(k), "%s%s", lr->ns, key);
	if (cache_limit_take(lr->cache, k, rule->rate, rule->burst, &cs,
	        &tried) != AFF_OK)
		return (tried ? RATELIMIT_SHARED_FAILED : RATELIMIT_SHARED_SKIPPED);
	st->limit = rule->burst;
	st->remaining = cs.remaining;
	st->reset_s = (int)((cs.reset_ms + 999) / 1000);
	st->retry_s = cs.allowed ? 0 : (int)((cs.retry_ms + 999) / 1000);
	if (!cs.allowed && st->retry_s < 1)
		st->retry_s = 1;
	return (cs.allowed ? RATELIMIT_SHARED_ALLOW : RATELIMIT_SHARED_DENY);
}

static int
gate_admit(void *opaque, struct rpc_gate_view *view,
    struct rpc_gate_result *r)
{
	const server *s = opaque;
	struct limit_redis lr = { view->cache, s->limit_ns };
	struct ratelimit_shared shared = { limit_redis_take, &lr };
	struct auth_view v = {
		.metadata = view->metadata,
		.n_metadata = view->n_metadata,
		.peer = view->peer,
		.peer_arg = view->peer_arg,
		.method = view->method,
		.access = (enum auth_access)view->access,
		.shared = s->limit_ns[0] != '\0' && view->cache != NULL ? &shared
		                                                        : NULL,
	};
	struct auth_decision d;

	(void)auth_admit(&s->auth, view->store, &v, &d);
	view->caller.role = (int)d.caller.role;
	view->caller.editor_id = d.caller.editor_id;
	view->caller.key_id = d.caller.key_id;
	return (gate_result(&d, r));
}

static int
gate_bind(void *opaque, const struct rpc_gate_view *view,
    ProtobufCMessage *in, struct rpc_gate_result *r)
{
	struct auth_caller c = {
		.role = (enum auth_role)view->caller.role,
		.editor_id = view->caller.editor_id,
		.key_id = view->caller.key_id,
	};
	struct auth_decision d;

	(void)auth_scope(&c, (enum auth_scope)view->scope, in, &d);
	return (gate_result(&d, r));
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
	env->complete = rpc_server_reply;
	env->lcache = s->lcache;
	env->app = &s->app;
	env->gate = (struct rpc_gate){
		.admit = gate_admit,
		.bind = gate_bind,
		.opaque = s,
	};
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
server_handle(void *state, nng_msg *req, struct rpc_slot *slot)
{
	struct rpc_thread_env *env = state;

	env->received_ms = rpc_server_received_ms(slot);
	return (rpc_dispatch(env, nng_msg_body(req), nng_msg_len(req), slot));
}

static nng_msg *
server_refuse(nng_msg *req)
{
	return (rpc_refuse(nng_msg_body(req), nng_msg_len(req), AFF_UNAVAILABLE,
	    "affiliate-server is stopping; the call was not run (send it "
	    "again, to this server once it is back or to another)"));
}

/* The data folder and the database path of cfg, made ready. */
static int
server_paths(struct server_config *cfg)
{
	/* The data folder keeps the database (by default) and the webhook
	 * secret made when none is configured. */
	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
		aff_error("server: cannot create data folder %s: %s",
		    cfg->data_dir, strerror(errno));
		return (AFF_UNAVAILABLE);
	}
	if (cfg->db_path[0] == '\0' &&
	    snprintf(cfg->db_path, sizeof(cfg->db_path), "%s/affiliate.db",
	        cfg->data_dir) >= (int)sizeof(cfg->db_path))
		return (AFF_INVALID_ARGUMENT);
	return (AFF_OK);
}

int
server_create_admin_key(const struct server_config *cfg_in)
{
	struct server_config cfg = *cfg_in;
	Affiliate__V1__ApiKey *k;
	char token[AUTH_TOKEN_MAX];
	aff_arena a;
	store *s;
	int rv;

	if ((rv = server_paths(&cfg)) != AFF_OK ||
	    (rv = store_open(cfg.db_path, &s)) != AFF_OK)
		return (rv);
	aff_arena_init(&a);
	if ((rv = auth_key_create(s, 0, &a, &k, token)) == AFF_OK) {
		printf("%s\n", token);
		fflush(stdout);
		aff_info("keys: admin key %lld made in %s (its token is printed "
		         "once, on stdout)",
		    (long long)k->id,
		    /* A conninfo may carry a password: not in the log. */
		    store_is_postgres(cfg.db_path) ? "the PostgreSQL database"
		                                   : cfg.db_path);
	}
	OPENSSL_cleanse(token, sizeof(token));
	aff_arena_fini(&a);
	store_close(s);
	return (rv);
}

int
server_backup(const struct server_config *cfg_in, const char *file)
{
	struct server_config cfg = *cfg_in;
	int rv;

	if ((rv = server_paths(&cfg)) != AFF_OK ||
	    (rv = store_backup(cfg.db_path, file)) != AFF_OK)
		return (rv);
	aff_info("backup: %s copied to %s", cfg.db_path, file);
	return (AFF_OK);
}

/* Sets up the auth policy from the configuration and says at start what
 * it is (the operator must know whether keys are required). */
static int
server_auth_setup(server *s)
{
	struct auth_policy *p = &s->auth;
	int rv;

	(void)auth_mode_parse(s->cfg.auth, &p->mode);
	(void)auth_limit_parse(s->cfg.rate_limit, &p->per_key);
	(void)auth_limit_parse(s->cfg.rate_limit_anon, &p->per_addr);
	if (p->per_key.mode == AUTH_MODE_AUTO)
		p->per_key.rule = (struct ratelimit_rule){ 50, 100 };
	if (p->per_addr.mode == AUTH_MODE_AUTO)
		p->per_addr.rule = (struct ratelimit_rule){ 200, 400 };
	p->listener_public = !aff_url_is_local(s->cfg.listen_url);
	p->trusted = s->cfg.trusted_bridges;
	if ((p->per_key.mode != AUTH_MODE_OFF ||
	        p->per_addr.mode != AUTH_MODE_OFF) &&
	    (rv = ratelimit_alloc(&p->buckets, 1 << 16)) != AFF_OK)
		return (rv);
	if (p->buckets != NULL && s->limit_ns[0] != '\0')
		aff_info("server: rate limits count in redis %s:%d, shared by "
		         "every server on this database (this process's own "
		         "buckets while redis is down)",
		    s->cfg.redis_host, s->cfg.redis_port);
	else if (p->buckets != NULL)
		aff_info("server: rate limits count in this process (%s): with "
		         "several servers, each allows the full rate",
		    s->cfg.redis_host[0] != '\0' ? "AFFILIATE_RATE_LIMIT_SHARED=off"
		                                : "redis is off");
	switch (p->mode) {
	case AUTH_MODE_ON:
		aff_info("server: auth on: every call but health and signed "
		         "webhooks needs an API key");
		break;
	case AUTH_MODE_OFF:
		if (p->listener_public)
			aff_warn("server: auth OFF (AFFILIATE_AUTH=off) on %s, which "
			         "other hosts can reach: anyone there reads every "
			         "editor's data",
			    s->cfg.listen_url);
		else
			aff_info("server: auth off (AFFILIATE_AUTH=off): no API key "
			         "is required, even through a public bridge");
		break;
	case AUTH_MODE_AUTO:
		if (p->listener_public)
			aff_info("server: auth on (protected mode: %s is not a "
			         "loopback address): API keys are required",
			    s->cfg.listen_url);
		else
			aff_info("server: auth off on this loopback listener "
			         "(protected mode); calls through a bridge on a "
			         "public address still need API keys; "
			         "AFFILIATE_AUTH=on requires them everywhere");
		break;
	}
	return (AFF_OK);
}

/*
 * The worker secret: whoever reaches the results address could otherwise
 * push a JobResult approving or rejecting any application. So there is
 * always one: AFFILIATE_WORKER_SECRET, or the one made at the first start
 * in DATA_DIR/worker_secret (mode 0600), which workers on this host read
 * with --data-dir and workers elsewhere from a copy (--worker-secret-file).
 * Job addresses other hosts reach should also be tls+tcp:// with client
 * certificates, so that strangers cannot take jobs (README, Security).
 */
static int
server_jobs_check(server *s)
{
	int made, rv;

	if ((rv = aff_worker_secret_load(getenv("AFFILIATE_WORKER_SECRET"), NULL,
	         s->cfg.data_dir, 1, s->worker_secret, sizeof(s->worker_secret),
	         &made)) != AFF_OK)
		return (rv);
	if (getenv("AFFILIATE_WORKER_SECRET") != NULL &&
	    *getenv("AFFILIATE_WORKER_SECRET") != '\0')
		aff_info("jobs: results are applied only with the MAC of "
		         "AFFILIATE_WORKER_SECRET");
	else
		aff_info("jobs: worker secret %s %s/worker_secret (mode 0600; "
		         "workers read it with --data-dir or --worker-secret-file)",
		    made ? "made and kept in" : "read from", s->cfg.data_dir);
	if ((!aff_url_is_local(s->cfg.jobs_url) &&
	        !aff_tls_url(s->cfg.jobs_url)) ||
	    (!aff_url_is_local(s->cfg.results_url) &&
	        !aff_tls_url(s->cfg.results_url)))
		aff_warn("server: the job addresses (%s, %s) are reachable from "
		         "other hosts without tls+tcp://: anyone who reaches them "
		         "can take jobs (results still need the worker secret)",
		    s->cfg.jobs_url, s->cfg.results_url);
	return (AFF_OK);
}

/*
 * The TLS files serve whichever of the three addresses is tls+tcp://; the
 * others take none (aff_tls_listen refuses files there). Files given with
 * no tls+tcp:// address at all are a mistake worth stopping for: the
 * operator believes something is protected that is not.
 */
static int
server_tls_check(const struct server_config *c)
{
	if ((c->tls_cert[0] != '\0' || c->tls_key[0] != '\0' ||
	        c->tls_ca[0] != '\0') &&
	    !aff_tls_url(c->listen_url) && !aff_tls_url(c->jobs_url) &&
	    !aff_tls_url(c->results_url)) {
		aff_error("server: --tls-cert/--tls-key/--tls-ca are given but "
		          "none of --listen, --jobs, --results is tls+tcp://");
		return (AFF_INVALID_ARGUMENT);
	}
	return (AFF_OK);
}

int
server_start(const struct server_config *cfg, server **sp)
{
	struct aff_tls_files tls;
	struct rpc_server_opts ro;
	struct jobs_config jc = { 0 };
	server *s;
	int made;
	store *first;
	char shown[sizeof(cfg->db_path)];
	int rv;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	s->cfg = *cfg;
	aff_log_set_level(cfg->log_level);
	if ((rv = server_paths(&s->cfg)) != AFF_OK ||
	    (rv = server_tls_check(&s->cfg)) != AFF_OK)
		goto failed_store;
	tls = (struct aff_tls_files){ s->cfg.tls_cert, s->cfg.tls_key,
		s->cfg.tls_ca };
	/* Before any store opens: the store's threads read it. */
	store_postback_configure(&(struct store_postback_policy){
	    .max_attempts = s->cfg.postback_attempts,
	    .backoff_ms = s->cfg.postback_backoff_ms,
	    .backoff_max_ms = 3600000,
	    .disable_after = s->cfg.postback_disable_after,
	});
	/* Create, migrate and seed once, before the threads open it. */
	if ((rv = store_open(s->cfg.db_path, &first)) != AFF_OK)
		goto failed_store;
	if (s->cfg.redis_host[0] != '\0' && s->cfg.rate_limit_shared) {
		const char *db_id;
		int64_t version;
		if ((rv = first->ops->catalog_version(first, &db_id, &version)) !=
		    AFF_OK) {
			store_close(first);
			goto failed_store;
		}
		snprintf(s->limit_ns, sizeof(s->limit_ns), "aff:%.32s:rl:", db_id);
	}
	store_close(first);
	if ((rv = rpc_registry_alloc(&s->registry, service_defs,
	         sizeof(service_defs) / sizeof(service_defs[0]))) != AFF_OK)
		goto failed_registry;
	s->app.registry = s->registry;
	if ((rv = server_auth_setup(s)) != AFF_OK)
		goto failed_auth;
	/* Replies over 64 KiB (long pages) are left to Redis. */
	if ((rv = lcache_alloc(&s->lcache, (size_t)s->cfg.local_cache,
	         64 << 10)) != AFF_OK)
		goto failed_lcache;

	s->app.postback_allow_private = s->cfg.postback_allow_private;
	if (s->cfg.postback_allow_private)
		aff_warn("server: postback endpoints may be on loopback and "
		         "private addresses (--postback-allow-private)");
	s->app.job_policy = (struct store_job_policy){
		.visibility_ms = s->cfg.job_visibility_ms,
		.max_attempts = s->cfg.job_max_attempts,
		.backoff_ms = s->cfg.job_backoff_ms,
		.backoff_max_ms = 60000,
	};
	if ((rv = aff_webhook_secrets_load(&s->secrets,
	         getenv("AFFILIATE_WEBHOOK_SECRET"), s->cfg.data_dir, &made)) !=
	    AFF_OK) {
		aff_error("server: no usable webhook secret (AFFILIATE_WEBHOOK_SECRET "
		          "or %s/webhook_secret)",
		    s->cfg.data_dir);
		goto failed_secrets;
	}
	if (getenv("AFFILIATE_WEBHOOK_SECRET") != NULL &&
	    *getenv("AFFILIATE_WEBHOOK_SECRET") != '\0')
		aff_info("server: %zu webhook secret(s) from "
		         "AFFILIATE_WEBHOOK_SECRET",
		    s->secrets.n);
	else
		aff_info("server: webhook secret %s %s/webhook_secret (mode 0600)",
		    made ? "made and kept in" : "read from", s->cfg.data_dir);
	s->app.webhook_secrets = &s->secrets;
	s->app.webhook_require_timestamp = s->cfg.webhook_require_timestamp;
	s->app.orders_copy = s->cfg.orders_copy && s->cfg.redis_host[0] != '\0';
	if (s->cfg.webhook_require_timestamp)
		aff_info("server: webhooks must be signed t=<unix>,v1=<hex> (the "
		         "plain form is refused)");
	{
		struct cache_opts co = {
			.host = s->cfg.redis_host,
			.port = s->cfg.redis_port,
			.timeout_ms = s->cfg.redis_timeout_ms,
			.ttl_s = s->cfg.cache_ttl_s,
		};
		/* Off: no copy is kept (order_sync_start with no Redis). */
		if (!s->app.orders_copy)
			co.host = NULL;
		if ((rv = order_sync_start(s->cfg.db_path, &co, &s->order_sync)) !=
		    AFF_OK)
			goto failed_sync;
	}
	if ((rv = order_writer_start(s->cfg.db_path, &s->orders)) != AFF_OK)
		goto failed_orders;
	s->app.orders = s->orders;
	jc.jobs_url = s->cfg.jobs_url;
	jc.results_url = s->cfg.results_url;
	jc.db_path = s->cfg.db_path;
	jc.policy = s->app.job_policy;
	jc.secret = s->worker_secret;
	if (aff_tls_url(s->cfg.jobs_url) || aff_tls_url(s->cfg.results_url)) {
		jc.tls_cert = s->cfg.tls_cert;
		jc.tls_key = s->cfg.tls_key;
		jc.tls_ca = s->cfg.tls_ca;
	}
	if ((rv = server_jobs_check(s)) != AFF_OK ||
	    (rv = jobs_start(&jc, &s->jobs)) != AFF_OK)
		goto failed_jobs;
	s->app.jobs = s->jobs;

	memset(&ro, 0, sizeof(ro));
	ro.url = s->cfg.listen_url;
	ro.tls = aff_tls_url(s->cfg.listen_url) ? &tls : NULL;
	ro.n_contexts = s->cfg.contexts;
	ro.n_threads = s->cfg.threads;
	ro.max_msg = s->cfg.max_message;
	ro.thread_init = server_thread_init;
	ro.thread_fini = server_thread_fini;
	ro.arg = s;
	ro.handle = server_handle;
	ro.refuse = server_refuse;
	if ((rv = rpc_server_start(&ro, &s->rpc)) != AFF_OK)
		goto failed_rpc;
	/* A conninfo may carry a password: never in the log. */
	store_db_redact(s->cfg.db_path, shown, sizeof(shown));
	aff_info("server: store %s, cache %s%s%.0d", shown,
	    s->cfg.redis_host[0] ? s->cfg.redis_host : "off",
	    s->cfg.redis_host[0] ? ":" : "",
	    s->cfg.redis_host[0] ? s->cfg.redis_port : 0);
	*sp = s;
	return (AFF_OK);

failed_rpc:
	jobs_stop(s->jobs);
failed_jobs:
	order_writer_stop(s->orders);
failed_orders:
	order_sync_stop(s->order_sync);
failed_sync:
	aff_webhook_secrets_fini(&s->secrets);
failed_secrets:
	lcache_free(s->lcache);
failed_lcache:
	ratelimit_free(s->auth.buckets);
failed_auth:
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
	/* No new call runs (each is answered UNAVAILABLE, nothing done);
	 * then the order writer commits what it holds and answers every
	 * order while the socket is still open; then the replies are handed
	 * to their connections and the socket closes. */
	rpc_server_drain(s->rpc);
	order_writer_stop(s->orders);
	rpc_server_close(s->rpc);
	rpc_server_free(s->rpc);
	jobs_stop(s->jobs);
	order_sync_stop(s->order_sync);
	aff_webhook_secrets_fini(&s->secrets);
	lcache_free(s->lcache);
	ratelimit_free(s->auth.buckets);
	rpc_registry_free(s->registry);
	OPENSSL_cleanse(s->worker_secret, sizeof(s->worker_secret));
	free(s);
}
