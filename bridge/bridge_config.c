/* bridge_config.c - see bridge_config.h. */
#include "bridge_config.h"

#include <stdio.h>
#include <string.h>

#include "aff_config.h"
#include "aff_log.h"

/* --read-cache: on or off (also 1 or 0). */
static int
parse_read_cache(void *dst, const char *v)
{
	int *on = dst;

	if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0)
		*on = 1;
	else if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0)
		*on = 0;
	else {
		fprintf(stderr,
		    "affiliate-bridge: --read-cache must be on or off, not '%s'\n",
		    v);
		return (-1);
	}
	return (0);
}

int
bridge_config_load(struct bridge_config *cfg, int argc, char **argv, int *help)
{
	const struct aff_option opts[] = {
		{ "listen", "AFFILIATE_BRIDGE_LISTEN", AFF_OPT_STRING, cfg->listen,
		    sizeof(cfg->listen), 0, 0, NULL, "ADDR:PORT",
		    "HTTP address (127.0.0.1:8080)" },
		{ "server", "AFFILIATE_URL", AFF_OPT_STRING, cfg->server_url,
		    sizeof(cfg->server_url), 0, 0, NULL, "URL",
		    "affiliate-server's RPC address, tcp://, ipc:// or tls+tcp://, "
		    "or several comma-separated (at most 16): calls are spread "
		    "over those that answer (tcp://127.0.0.1:5555)" },
		{ "shared-db", "AFFILIATE_BRIDGE_SHARED_DB", AFF_OPT_INT,
		    &cfg->shared_db, 0, 0, 1, NULL, "0|1",
		    "1: the --server URLs share one database, so webhooks and "
		    "keyed calls cut off by a failing server are sent to "
		    "another (0)" },
		{ "server-tls-cert", "AFFILIATE_BRIDGE_SERVER_TLS_CERT",
		    AFF_OPT_STRING, cfg->server_tls_cert,
		    sizeof(cfg->server_tls_cert), 0, 0, NULL, "FILE",
		    "tls+tcp:// --server: this bridge's PEM client certificate "
		    "(none)" },
		{ "server-tls-key", "AFFILIATE_BRIDGE_SERVER_TLS_KEY",
		    AFF_OPT_STRING, cfg->server_tls_key,
		    sizeof(cfg->server_tls_key), 0, 0, NULL, "FILE",
		    "its PEM private key (none)" },
		{ "server-tls-ca", "AFFILIATE_BRIDGE_SERVER_TLS_CA", AFF_OPT_STRING,
		    cfg->server_tls_ca, sizeof(cfg->server_tls_ca), 0, 0, NULL,
		    "FILE", "PEM CA that signs the server's certificate (none)" },
		{ "threads", "AFFILIATE_BRIDGE_THREADS", AFF_OPT_INT, &cfg->threads,
		    0, 1, 1024, NULL, "N", "HTTP worker threads (512)" },
		{ "sockets", "AFFILIATE_BRIDGE_SOCKETS", AFF_OPT_INT, &cfg->sockets,
		    0, 1, 64, NULL, "N",
		    "NNG REQ sockets to the server, for URLs other than tcp:// and "
		    "ipc:// (4)" },
		{ "timeout", "AFFILIATE_BRIDGE_TIMEOUT_MS", AFF_OPT_INT,
		    &cfg->timeout_ms, 0, 1, 600000, NULL, "MS",
		    "deadline of each RPC (5000)" },
		/* At most what fits an RPC envelope under the server's default
		 * message limit (2 MiB): a larger body would be dropped there
		 * and answered 504, not 413. */
		{ "max-body", "AFFILIATE_MAX_BODY", AFF_OPT_SIZE, &cfg->max_body, 0,
		    0, (2 << 20) - (64 << 10), NULL, "BYTES",
		    "largest request body (1048576)" },
		{ "log-level", "AFFILIATE_LOG_LEVEL", AFF_OPT_LEVEL,
		    &cfg->log_level, 0, 0, 0, NULL, "LEVEL",
		    "debug, info, warn or error (info)" },
		{ "log-format", "AFFILIATE_LOG_FORMAT", AFF_OPT_CUSTOM, NULL, 0,
		    0, 0, aff_log_format_option, "FORMAT",
		    "text, or json: one JSON object a line (text)" },
		{ "cors-origins", "AFFILIATE_BRIDGE_CORS_ORIGINS", AFF_OPT_STRING,
		    cfg->cors_origins, sizeof(cfg->cors_origins), 0, 0, NULL,
		    "ORIGINS",
		    "origins browsers may call from: comma-separated "
		    "https://host[:port], or * (none: no CORS)" },
		{ "tls-cert", "AFFILIATE_BRIDGE_TLS_CERT", AFF_OPT_STRING,
		    cfg->tls_cert, sizeof(cfg->tls_cert), 0, 0, NULL, "FILE",
		    "serve HTTPS with this PEM certificate chain (none: HTTP)" },
		{ "tls-key", "AFFILIATE_BRIDGE_TLS_KEY", AFF_OPT_STRING,
		    cfg->tls_key, sizeof(cfg->tls_key), 0, 0, NULL, "FILE",
		    "the certificate's PEM private key (none: in --tls-cert)" },
		{ "trusted-proxies", "AFFILIATE_BRIDGE_TRUSTED_PROXIES",
		    AFF_OPT_STRING, cfg->trusted_proxies,
		    sizeof(cfg->trusted_proxies), 0, 0, NULL, "ADDRS",
		    "proxies (addresses, CIDRs) whose X-Forwarded-For and "
		    "Forwarded are believed (none)" },
		{ "read-cache", "AFFILIATE_READ_CACHE", AFF_OPT_CUSTOM,
		    &cfg->read_cache, 0, 0, 0, parse_read_cache, "on|off",
		    "answer public catalog reads the server marks reusable from "
		    "rendered copies, dropped when the catalog changes: through "
		    "this bridge at once, elsewhere within 0.5 s (on)" },
		{ "header-timeout", "AFFILIATE_BRIDGE_HEADER_TIMEOUT_MS", AFF_OPT_INT,
		    &cfg->header_timeout_ms, 0, 100, 600000, NULL, "MS",
		    "a request's headers, from its first byte, arrive within this "
		    "or get 408 (10000)" },
		{ "body-timeout", "AFFILIATE_BRIDGE_BODY_TIMEOUT_MS", AFF_OPT_INT,
		    &cfg->body_timeout_ms, 0, 100, 600000, NULL, "MS",
		    "a request body's deadline, extended by each byte at the "
		    "minimum rate; past it, 408 (10000)" },
		{ "body-min-rate", "AFFILIATE_BRIDGE_BODY_MIN_RATE", AFF_OPT_INT,
		    &cfg->body_min_rate, 0, 1, 1 << 30, NULL, "BYTES/S",
		    "each body byte adds 1/this s to the body's deadline (500)" },
		{ "slow-per-addr", "AFFILIATE_BRIDGE_SLOW_PER_ADDR", AFF_OPT_INT,
		    &cfg->slow_per_addr, 0, 1, 100000, NULL, "N",
		    "unfinished requests (headers or body still coming after 1 s) "
		    "one client address may hold; past it, 429 (32)" },
	};

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8080");
	snprintf(cfg->server_url, sizeof(cfg->server_url), "tcp://127.0.0.1:5555");
	/* civetweb 1.15 holds a thread per connection until it closes or
	 * times out, so slow or idle clients hold threads: with a few dozen,
	 * a few hundred slow clients kept normal requests waiting (the
	 * faults tests; README, Reliability, Faults). An idle thread costs little
	 * memory (README, The REST API, Concurrency). */
	cfg->threads = 512;
	cfg->sockets = 4;
	cfg->timeout_ms = 5000;
	cfg->max_body = 1 << 20;
	cfg->log_level = AFF_LOG_INFO;
	cfg->read_cache = 1;
	/* As Apache's mod_reqtimeout (header=10-…, body=10,MinRate=500). */
	cfg->header_timeout_ms = 10000;
	cfg->body_timeout_ms = 10000;
	cfg->body_min_rate = 500;
	/* A browser opens 6 connections to a host; an office behind one
	 * NAT address a few times that. */
	cfg->slow_per_addr = 32;
	return (aff_config_load("affiliate-bridge", opts,
	    sizeof(opts) / sizeof(opts[0]), argc, argv, help));
}
