/*
 * bridge.c - see bridge.h: the bridge's life (start, stop) and civetweb's
 * callbacks.
 *
 * One civetweb handler serves every path: it checks the request's framing,
 * path and Expect, serves /openapi.json and OPTIONS, and hands a matched
 * route to call_route (call_route.h), which transcodes the request, makes
 * the RPC and renders the reply. Every answer goes through the response
 * writer (call.h), so every error, including civetweb's own, is a JSON
 * body.
 */
#include "bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "aff_addr.h"
#include "aff_arena.h"
#include "aff_client.h"
#include "aff_err.h"
#include "aff_log.h"
#include "aff_sp.h"
#include "aff_util.h"
#include "bridge_priv.h"
#include "call.h"
#include "call_route.h"
#include "cors.h"
#include "edge.h"
#include "framing.h"
#include "health.h"
#include "http_status.h"
#include "metrics.h"
#include "openapi.h"
#include "proxy.h"
#include "readcache.h"
#include "routes.h"
#include "scrape.h"
#include "tls.h"

/* civetweb's max_request_size: its buffer for the request line and the
 * headers. */
#define BRIDGE_MAX_HEAD 16384
#define BRIDGE_MAX_HEAD_S "16384"

/* Set on a civetweb worker thread when the connection's last request was
 * answered outside the handler (civetweb's own error, or the edge's cut),
 * so that bridge_connection_close does not answer it a second time. */
static __thread int tl_answered;

/* An Expect other than 100-continue cannot be met: 417 (RFC 9110
 * 10.1.1). Returns 0 when there is none to refuse. */
static int
call_expectation(struct http_call *hc)
{
	const char *e = mg_get_header(hc->conn, "Expect");

	if (e == NULL || strcasecmp(e, "100-continue") == 0)
		return (0);
	hc->close = 1;
	return (call_error(hc, 417, "FAILED_PRECONDITION",
	    "only the expectation 100-continue is understood"));
}

/* GET /metrics: the bridge's counters in Prometheus' text format. Served
 * only by a bridge that is not exposed (loopback, no TLS) and to a
 * request that came through no proxy, so it is never a way around the
 * keys an exposed bridge requires; an exposed bridge answers 404. */
static void
bridge_metrics(struct http_call *hc)
{
	char client[64], *text;
	size_t len;

	if (hc->b->exposed || proxy_client_address(&hc->b->proxies, hc->ri,
	                          client, sizeof(client))) {
		call_error(hc, 404, "NOT_FOUND",
		    "/metrics is served on a loopback bridge only");
		return;
	}
	if (strcmp(hc->ri->request_method, "GET") != 0 &&
	    strcmp(hc->ri->request_method, "HEAD") != 0) {
		hc->allow = "GET, HEAD";
		call_error(hc, 405, "UNIMPLEMENTED", "%s is not allowed on /metrics",
		    hc->ri->request_method);
		return;
	}
	if (scrape_render(hc->b, hc->request_id, &text, &len) != 0) {
		call_error(hc, 500, "INTERNAL", "out of memory");
		return;
	}
	hc->content_type = "text/plain; version=0.0.4; charset=utf-8";
	call_send(hc, 200, text, len);
	free(text);
}

/* Answers one request; the status it was answered with. */
static int
bridge_handle(struct mg_connection *conn, bridge *b)
{
	struct http_call hc;
	struct route_match m;
	const struct route *matched = NULL;
	const char *why;
	char *path;
	int st, n, probe = 0;

	memset(&hc, 0, sizeof(hc));
	hc.conn = conn;
	hc.ri = mg_get_request_info(conn);
	hc.b = b;
	hc.t0 = aff_mono_ms();
	aff_arena_init(&hc.arena);
	call_request_id(&hc);

	/* civetweb's decode_url is off: it would decode the path in place,
	 * a %00 included, and cut it there unseen. */
	n = (int)strlen(hc.ri->local_uri);
	path = strchr(hc.ri->local_uri, '%') == NULL
	    ? (char *)hc.ri->local_uri
	    : aff_arena_alloc(&hc.arena, (size_t)n + 1);
	if (path == NULL)
		call_error(&hc, 500, "INTERNAL", "out of memory");
	else if ((st = framing_check(hc.ri, BRIDGE_MAX_HEAD, &why)) != 0) {
		/* Nothing after this request can be framed: close. */
		hc.close = 1;
		call_error(&hc, st, "INVALID_ARGUMENT", "%s", why);
	} else if (path != hc.ri->local_uri &&
	    ((n = mg_url_decode(hc.ri->local_uri, n, path, n + 1, 0)) < 0 ||
	        (size_t)n != strlen(path))) {
		hc.close = 1;
		call_error(&hc, 400, "INVALID_ARGUMENT",
		    "the path contains an encoded NUL");
	} else if (hc.ri->content_length > (long long)hc.b->cfg.max_body) {
		/* Whatever the route, do not read a body over the cap. */
		hc.close = 1;
		call_error(&hc, 413, "RESOURCE_EXHAUSTED",
		    "the body is larger than %zu bytes", hc.b->cfg.max_body);
	} else if ((st = call_expectation(&hc)) != 0) {
		/* answered */
	} else if (strcmp(path, "/openapi.json") == 0) {
		if (call_get_only(&hc, path))
			call_send(&hc, 200, hc.b->openapi, strlen(hc.b->openapi));
	} else if (strcmp(path, "/metrics") == 0) {
		bridge_metrics(&hc);
	} else if (health_probe_path(path)) {
		probe = 1;
		health_probe(&hc, path);
	} else if ((st = route_match(hc.ri->request_method, hc.ri->local_uri,
	                &m)) == 200) {
		/* Routed on the path as received: an encoded '/' in an
		 * order_id is part of it, not a separator. */
		matched = m.route;
		call_route(&hc, &m);
	} else if (st == 405 && strcmp(hc.ri->request_method, "OPTIONS") == 0) {
		call_options(&hc, m.allow);
	} else if (st == 405) {
		hc.allow = aff_arena_strdup(&hc.arena, m.allow);
		call_error(&hc, 405, "UNIMPLEMENTED", "%s is not allowed on %.200s",
		    hc.ri->request_method, path);
	} else if (st == 414) {
		call_error(&hc, 414, "INVALID_ARGUMENT", "a path parameter is too long");
	} else {
		call_error(&hc, 404, "NOT_FOUND", "no route for %s %.200s",
		    hc.ri->request_method, path);
	}
	/* Probes come every second or so: at info they would bury the
	 * requests; a failing readiness probe is still worth a line. */
	aff_log(probe && hc.status < 500 ? AFF_LOG_DEBUG : AFF_LOG_INFO,
	    hc.request_id, "http %s %.200s%s%.200s %d %zuB %lldms %s",
	    hc.ri->request_method, hc.ri->local_uri,
	    hc.ri->query_string != NULL ? "?" : "",
	    hc.ri->query_string != NULL ? hc.ri->query_string : "", hc.status,
	    hc.sent, (long long)(aff_mono_ms() - hc.t0), hc.ri->remote_addr);
	metrics_request(matched, path, hc.status, aff_mono_ms() - hc.t0);
	aff_arena_fini(&hc.arena);
	return (hc.status);
}

/* civetweb's own errors (a garbage request line, headers too large) get
 * the same JSON error body. */
static int
bridge_http_error(struct mg_connection *conn, int status, const char *msg)
{
	struct http_call hc;

	memset(&hc, 0, sizeof(hc));
	hc.conn = conn;
	hc.ri = mg_get_request_info(conn);
	if (hc.ri == NULL)
		return (1); /* nothing to answer with: civetweb's default */
	hc.b = mg_get_user_data(mg_get_context(conn));
	tl_answered = 1;
	if (!edge_answer_claim())
		return (0); /* the watchdog answered 408 or 429 and cut it */
	aff_arena_init(&hc.arena);
	call_request_id(&hc);
	hc.close = 1;
	/* civetweb's 411 is a Content-Length strtoll could not read at all
	 * (empty, "x"): malformed framing, as "0x21" is. */
	if (status == 411) {
		status = 400;
		msg = "Content-Length is not a decimal number";
	}
	call_error(&hc, status, http_code_name_for_status(status), "%s",
	    msg != NULL && msg[0] != '\0' ? msg : "bad request");
	aff_log(AFF_LOG_INFO, hc.request_id, "http %d (%s) %s", status,
	    msg != NULL ? msg : "", hc.ri->remote_addr);
	aff_arena_fini(&hc.arena);
	return (0);
}

/* civetweb's init_ssl: fills its SSL_CTX from --tls-cert and --tls-key
 * (1: done; -1: mg_start fails). */
static int
bridge_init_ssl(void *ssl_ctx, void *user_data)
{
	bridge *b = user_data;
	char err[512];

	if (tls_ctx_setup(ssl_ctx, b->cfg.tls_cert, b->cfg.tls_key, err,
	        sizeof(err)) != AFF_OK) {
		aff_error("bridge: TLS: %s", err);
		return (-1);
	}
	return (1);
}

static int
bridge_init_connection(const struct mg_connection *conn, void **conn_data)
{
	(void)conn;
	(void)conn_data;
	tl_answered = 0;
	return (0);
}

/*
 * civetweb 1.15 parses a request whose target is "*" (OPTIONS *) or the
 * absolute form for another host or port, then closes the connection
 * without calling any handler and without a word (process_new_connection:
 * "TODO: handle non-local request"). It is answered here, just before that
 * close. The request fields were reset at the start of the connection's
 * last request, so a method with no local_uri is that request's.
 */
static void
bridge_connection_close(const struct mg_connection *cconn)
{
	struct mg_connection *conn = (struct mg_connection *)cconn;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct http_call hc;

	if (tl_answered || ri == NULL || ri->request_method == NULL ||
	    ri->http_version == NULL || ri->request_uri == NULL ||
	    ri->local_uri != NULL || !edge_answer_claim()) {
		edge_connection_close();
		return;
	}
	memset(&hc, 0, sizeof(hc));
	hc.conn = conn;
	hc.ri = ri;
	hc.close = 1;
	aff_arena_init(&hc.arena);
	call_request_id(&hc);
	if (strcmp(ri->request_uri, "*") == 0 &&
	    strcmp(ri->request_method, "OPTIONS") == 0) {
		hc.allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
		call_send(&hc, 200, "{}", 2);
	} else if (strcmp(ri->request_uri, "*") == 0)
		call_error(&hc, 400, "INVALID_ARGUMENT",
		    "the target * is for OPTIONS only");
	else
		call_error(&hc, 400, "INVALID_ARGUMENT",
		    "the target %.200s names another server", ri->request_uri);
	aff_log(AFF_LOG_INFO, hc.request_id, "http %s %.200s %d %s",
	    ri->request_method, ri->request_uri, hc.status, ri->remote_addr);
	aff_arena_fini(&hc.arena);
	edge_connection_close();
}

static void *
bridge_init_thread(const struct mg_context *ctx, int thread_type)
{
	bridge *b = mg_get_user_data(ctx);

	edge_thread_init(b->edge, thread_type);
	return (NULL);
}

/* Whoever answered (the handler or civetweb itself), the connection is
 * idle until its next request's first byte. */
static void
bridge_end_request(const struct mg_connection *conn, int status)
{
	(void)conn;
	(void)status;
	edge_request_end();
}

/*
 * The headers are in: unless the watchdog has already cut the connection,
 * the request is answered here, for every path. civetweb's own routing
 * (mg_set_request_handler) is not used, for two reasons:
 * - civetweb accepts and reads requests from inside mg_start, and a
 *   handler can only be set once mg_start has returned: a request read in
 *   between found no route and got civetweb's 404 (a restarted bridge
 *   under load answered a partner's order "Not Found");
 * - past begin_request, civetweb 1.15 looks the handler up under a lock
 *   and stats a /.htpasswd for every request (a failed newfstatat), one
 *   of about nine system calls a request on the webhook's path.
 * A positive return is the request answered; civetweb then drops what the
 * handler did not read of its body, as it does after a handler.
 */
static int
bridge_begin_request(struct mg_connection *conn)
{
	int st = edge_request_begin();

	if (st != 0) {
		tl_answered = 1;
		mg_disable_connection_keep_alive(conn);
		return (st == 408 ? 408 : 429);
	}
	st = bridge_handle(conn, mg_get_user_data(mg_get_context(conn)));
	return (st > 0 ? st : 500);
}

static int
bridge_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	aff_warn("civetweb: %s", message);
	return (1);
}

int
bridge_start(const struct bridge_config *cfg, bridge **bp)
{
	struct aff_client_opts co = { 0 };
	struct aff_tls_files server_tls = { cfg->server_tls_cert,
		cfg->server_tls_key, cfg->server_tls_ca };
	struct mg_callbacks cb;
	char threads[16], ports[136], err[512], request_timeout[16];
	char urls[AFF_CLIENT_MAX_URLS][AFF_CLIENT_URL_MAX];
	int n_urls;
	int tls = cfg->tls_cert[0] != '\0';
	struct edge_config ec;
	bridge *b;
	int rv;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	b->cfg = *cfg;
	/* A TLS bridge is there to be reached from elsewhere. */
	b->exposed = !aff_listen_is_local(cfg->listen) || tls;
	aff_log_set_level(cfg->log_level);
	rv = AFF_INVALID_ARGUMENT;
	if (cors_policy_parse(cfg->cors_origins, &b->cors, err, sizeof(err)) !=
	        AFF_OK ||
	    proxy_list_parse(cfg->trusted_proxies, &b->proxies, err,
	        sizeof(err)) != AFF_OK) {
		aff_error("bridge: %s", err);
		goto failed_settings;
	}
	if (cfg->tls_key[0] != '\0' && !tls) {
		aff_error("bridge: --tls-key needs --tls-cert");
		goto failed_settings;
	}
	if (tls && !mg_check_feature(2)) {
		aff_error("bridge: this civetweb has no TLS support");
		goto failed_settings;
	}
	if (tls && tls_civetweb_compat(err, sizeof(err)) != AFF_OK) {
		aff_error("bridge: TLS: %s", err);
		goto failed_settings;
	}
	if (aff_client_url_list(cfg->server_url, urls, &n_urls, err,
	        sizeof(err)) != AFF_OK) {
		aff_error("bridge: --server (AFFILIATE_URL): %s", err);
		goto failed_settings;
	}
	co.url = cfg->server_url;
	co.timeout_ms = cfg->timeout_ms;
	co.n_sockets = cfg->sockets;
	/* Each civetweb worker waits for its reply anyway: on its own SP
	 * connection the call costs no thread hand-off (see aff_sp.h). NNG
	 * sockets serve the transports aff_sp does not speak (tls+tcp://,
	 * ws://, ...); a list that mixes them goes through NNG sockets. */
	co.direct = 1;
	for (int i = 0; i < n_urls; i++)
		co.direct &= aff_sp_supported(urls[i]) != 0;
	co.tls = &server_tls;
	if ((rv = aff_client_open(&b->client, &co)) != AFF_OK) {
		aff_error("bridge: cannot use server address %s: %s",
		    cfg->server_url, aff_strerror(rv));
		goto failed_client;
	}
	if (cfg->read_cache) {
		struct readcache_opts ro = {
			.poll_ms = cfg->read_cache_poll_ms,
			.max_age_ms = cfg->read_cache_max_age_ms,
		};
		if ((rv = readcache_open(&ro, b->client, &b->rcache)) != AFF_OK)
			goto failed_readcache;
	}
	if ((rv = scrape_open(b)) != AFF_OK)
		goto failed_scrape;
	if ((b->openapi = openapi_build(cfg->listen, tls)) == NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed_openapi;
	}
	ec.header_timeout_ms = cfg->header_timeout_ms;
	ec.body_timeout_ms = cfg->body_timeout_ms;
	ec.body_min_rate = cfg->body_min_rate;
	ec.slow_per_addr = cfg->slow_per_addr;
	/* A quarter of the threads stays for requests that are not slow,
	 * however many addresses the slow ones come from. */
	ec.slow_total = cfg->threads - cfg->threads / 4;
	if ((rv = edge_start(&ec, &b->edge)) != AFF_OK)
		goto failed_edge;
	/* civetweb's own timeout is a fallback behind the edge's deadlines:
	 * it counts one silent wait only, and would answer a slow body with
	 * "the body ended early" (400) before the edge's 408. */
	snprintf(request_timeout, sizeof(request_timeout), "%d",
	    (cfg->header_timeout_ms > cfg->body_timeout_ms
	            ? cfg->header_timeout_ms
	            : cfg->body_timeout_ms) +
	        30000);
	snprintf(threads, sizeof(threads), "%d", cfg->threads);
	/* civetweb's "s" suffix makes a port TLS. */
	snprintf(ports, sizeof(ports), "%s%s", cfg->listen, tls ? "s" : "");
	/* Never set document_root: the bridge serves no files (and civetweb
	 * 1.15 has an overflow in its redirect path). max_request_size bounds
	 * the headers only; bodies are capped in call_read_body
	 * (call_route.c). */
	const char *options[] = {
		"listening_ports", ports,
		"num_threads", threads,
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "5000",
		"request_timeout_ms", request_timeout,
		"max_request_size", BRIDGE_MAX_HEAD_S,
		/* An absolute-form target (http://host:port/path) for this
		 * port is served by its path, whatever the host (RFC 9112
		 * 3.2.2); civetweb would compare the host with its
		 * authentication_domain and drop the request. */
		"enable_auth_domain_check", "no",
		"tcp_nodelay", "1",
		"decode_url", "no", /* bridge_handle decodes the path */
		/* CORS is the bridge's (cors.h): civetweb would answer every
		 * preflight itself with "*". */
		"access_control_allow_origin", "",
		"access_control_allow_methods", "",
		"access_control_allow_headers", "",
		/* TLS 1.2 at least (tls.c says it to OpenSSL too). */
		"ssl_protocol_version", "4",
		NULL,
	};
	memset(&cb, 0, sizeof(cb));
	cb.http_error = bridge_http_error;
	cb.init_connection = bridge_init_connection;
	cb.init_thread = bridge_init_thread;
	cb.begin_request = bridge_begin_request;
	cb.end_request = bridge_end_request;
	cb.connection_close = bridge_connection_close;
	cb.log_message = bridge_log_message;
	if (tls)
		cb.init_ssl = bridge_init_ssl;
	mg_init_library(0);
	if ((b->ctx = mg_start(&cb, b, options)) == NULL) {
		aff_error("bridge: cannot listen on %s", cfg->listen);
		rv = AFF_UNAVAILABLE;
		goto failed_start;
	}
	aff_info("bridge: listening on %s://%s, server %s over %s (%d "
	         "threads, body cap %zu bytes)",
	    tls ? "https" : "http", cfg->listen, cfg->server_url,
	    co.direct ? "one SP connection per thread" : "NNG REQ sockets",
	    cfg->threads, cfg->max_body);
	if (b->exposed)
		aff_info("bridge: %s is reachable from other hosts%s: the server "
		         "requires API keys for calls through this bridge "
		         "(protected mode) unless it runs with AFFILIATE_AUTH=off%s",
		    cfg->listen, tls ? " (it serves TLS)" : "",
		    tls ? "" : "; this bridge speaks plain HTTP: give it "
		               "--tls-cert or put a TLS terminator in front of it "
		               "(README, Security)");
	*bp = b;
	return (AFF_OK);

failed_start:
	mg_exit_library();
	edge_stop(b->edge);
	edge_free(b->edge);
failed_edge:
	free(b->openapi);
failed_openapi:
	scrape_close(b);
failed_scrape:
	readcache_close(b->rcache);
failed_readcache:
	aff_client_close(b->client);
failed_client:
failed_settings:
	free(b);
	return (rv);
}

void
bridge_stop(bridge *b)
{
	if (b == NULL)
		return;
	edge_stop(b->edge);
	mg_stop(b->ctx);
	edge_free(b->edge);
	mg_exit_library();
	/* Its poll thread calls through the client: stopped first. */
	readcache_close(b->rcache);
	scrape_close(b);
	aff_client_close(b->client);
	free(b->openapi);
	free(b);
}
