/*
 * bridge.c - see bridge.h.
 *
 * One civetweb handler serves every path: it matches the route table,
 * transcodes path and query parameters and the JSON body into the method's
 * request message (driven by protobuf-c's descriptors), makes the RPC, and
 * renders the reply message as JSON, mapping the RPC status to the HTTP
 * status. Every error, including civetweb's own, is a JSON body.
 */
#include "bridge.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>
#include <jansson.h>

#include "aff_addr.h"
#include "aff_arena.h"
#include "aff_client.h"
#include "aff_config.h"
#include "aff_err.h"
#include "aff_json.h"
#include "aff_log.h"
#include "aff_sp.h"
#include "aff_util.h"
#include "affiliate/v1/health.pb-c.h"
#include "cors.h"
#include "http_status.h"
#include "openapi.h"
#include "proxy.h"
#include "routes.h"
#include "tls.h"

struct bridge {
	struct bridge_config cfg;
	int exposed;       /* listens on a non-loopback address, or TLS */
	struct cors_policy cors;
	struct proxy_list proxies;
	struct mg_context *ctx;
	aff_client *client;
	char *openapi;
};

/* One HTTP request being answered. */
struct http_call {
	struct mg_connection *conn;
	const struct mg_request_info *ri;
	bridge *b;
	aff_arena arena;
	char request_id[129];
	int64_t t0;
	int status;
	size_t sent;
	const char *allow;       /* 405 */
	const char *link;        /* a next page */
	int retry_after;         /* 503 */
	const struct aff_call_result *res; /* its metadata become headers */
	int close;               /* the connection cannot be reused */
	const char *extra;       /* more header lines ("Name: v\r\n") */
	int continued;           /* "100 Continue" was sent */
};

int
bridge_config_load(struct bridge_config *cfg, int argc, char **argv, int *help)
{
	const struct aff_option opts[] = {
		{ "listen", "AFFILIATE_BRIDGE_LISTEN", AFF_OPT_STRING, cfg->listen,
		    sizeof(cfg->listen), 0, 0, NULL, "ADDR:PORT",
		    "HTTP address (127.0.0.1:8080)" },
		{ "server", "AFFILIATE_URL", AFF_OPT_STRING, cfg->server_url,
		    sizeof(cfg->server_url), 0, 0, NULL, "URL",
		    "affiliate-server's RPC address (tcp://127.0.0.1:5555)" },
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
	};

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8080");
	snprintf(cfg->server_url, sizeof(cfg->server_url), "tcp://127.0.0.1:5555");
	/* civetweb 1.15 holds a thread per connection until it closes or
	 * times out, so slow or idle clients hold threads: with 64, 200 of
	 * them kept a normal request waiting ~30 s (tests/faults). An idle
	 * thread costs ~15 KB here. */
	cfg->threads = 512;
	cfg->sockets = 4;
	cfg->timeout_ms = 5000;
	cfg->max_body = 1 << 20;
	cfg->log_level = AFF_LOG_INFO;
	return (aff_config_load("affiliate-bridge", opts,
	    sizeof(opts) / sizeof(opts[0]), argc, argv, help));
}

/*
 * Whether civetweb keeps the connection open after this answer, by its own
 * rule (should_keep_alive() and process_new_connection() in civetweb.c):
 * never after a 401 or with a request body left unread; else the client's
 * Connection header when it sent one, HTTP/1.1's default when not. The
 * Connection header sent must say what civetweb will do.
 */
static int
call_keep_alive(const struct http_call *hc)
{
	const char *c;

	if (hc->close || hc->status == 401 || hc->ri->http_version == NULL)
		return (0);
	if ((c = mg_get_header(hc->conn, "Connection")) != NULL)
		return (strcasestr(c, "keep-alive") != NULL);
	return (strcmp(hc->ri->http_version, "1.1") == 0);
}

/*
 * The reply metadata the server means for the HTTP client, as headers
 * (RateLimit-*, Retry-After with a 429, WWW-Authenticate with a 401).
 * Values are the server's, but still checked: no CR or LF gets through.
 */
static void
call_reply_headers(const struct http_call *hc, struct aff_buf *b)
{
	static const struct {
		const char *key, *header;
	} map[] = {
		{ "www-authenticate", "WWW-Authenticate" },
		{ "ratelimit-limit", "RateLimit-Limit" },
		{ "ratelimit-remaining", "RateLimit-Remaining" },
		{ "ratelimit-reset", "RateLimit-Reset" },
		{ "retry-after", "Retry-After" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const char *v = aff_call_result_metadata(hc->res, map[i].key);
		if (v == NULL || strpbrk(v, "\r\n") != NULL || strlen(v) > 256 ||
		    (hc->retry_after > 0 && strcmp(map[i].key, "retry-after") == 0))
			continue;
		aff_buf_printf(b, "%s: %s\r\n", map[i].header, v);
	}
}

static int call_expects_continue(const struct http_call *hc);

/*
 * Writes status line, headers and body in one mg_write: civetweb's
 * mg_response_header_* functions send each header line on its own, and
 * with Nagle's algorithm and delayed ACKs that cost ~40 ms a response
 * (measured by tests/bench: 725 requests/s against 80,000).
 */
static void
call_send(struct http_call *hc, int status, const char *body, size_t len)
{
	struct aff_buf b;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int head_only;

	hc->status = status;
	hc->sent = len;
	/* Refused before its body was asked for: the client may or may not
	 * send it now, so the connection cannot be reused (RFC 9110 10.1.1). */
	if (!hc->continued && call_expects_continue(hc))
		hc->close = 1;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	aff_buf_init(&b);
	aff_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status,
	    mg_get_response_code_text(hc->conn, status));
	/* A 204 has no body, and says nothing of one (RFC 9110 8.6). */
	if (status != 204)
		aff_buf_printf(&b,
		    "Content-Type: application/json; charset=utf-8\r\n"
		    "Content-Length: %zu\r\n",
		    len);
	aff_buf_printf(&b,
	    "X-Request-Id: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "Date: %s\r\n",
	    hc->request_id, date);
	if (hc->extra != NULL)
		aff_buf_add(&b, hc->extra, strlen(hc->extra));
	/* Errors too: a script must be able to read why it was refused. */
	if (hc->b != NULL && hc->ri->request_method != NULL &&
	    strcmp(hc->ri->request_method, "OPTIONS") != 0)
		cors_answer_headers(&hc->b->cors, mg_get_header(hc->conn, "Origin"),
		    &b);
	if (hc->allow != NULL)
		aff_buf_printf(&b, "Allow: %s\r\n", hc->allow);
	/* A Link is as long as the client's query: never dropped, or a
	 * client would take the page for the last. */
	if (hc->link != NULL)
		aff_buf_printf(&b, "Link: %s\r\n", hc->link);
	if (hc->retry_after > 0)
		aff_buf_printf(&b, "Retry-After: %d\r\n", hc->retry_after);
	if (hc->res != NULL)
		call_reply_headers(hc, &b);
	aff_buf_printf(&b, "Connection: %s\r\n\r\n",
	    call_keep_alive(hc) ? "keep-alive" : "close");
	/* A request line too broken to parse has no method. */
	head_only = hc->ri->request_method != NULL &&
	    strcmp(hc->ri->request_method, "HEAD") == 0;
	if (!head_only && len > 0 && len <= 16384)
		aff_buf_add(&b, body, len); /* one write for all of it */
	else if (!head_only && len > 0) {
		mg_write(hc->conn, b.data, b.len);
		aff_buf_fini(&b);
		mg_write(hc->conn, body, len);
		return;
	}
	if (!b.failed)
		mg_write(hc->conn, b.data, b.len);
	aff_buf_fini(&b);
}

static void
call_send_json(struct http_call *hc, int status, json_t *j)
{
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)
	                    : NULL;

	if (s == NULL) {
		static const char oom[] = "{\"error\":{\"code\":\"INTERNAL\","
		                          "\"message\":\"out of memory\"}}";
		call_send(hc, 500, oom, sizeof(oom) - 1);
	} else {
		call_send(hc, status, s, strlen(s));
		free(s);
	}
	json_decref(j);
}

/* Answers {"error":{"code":…,"message":…,"request_id":…}}. */
static int
call_error(struct http_call *hc, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
call_error(
    struct http_call *hc, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", msg,
	    "request_id", hc->request_id);
	if (j == NULL) /* msg quoted bytes that are not UTF-8 */
		j = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message",
		    "(a message that is not UTF-8)", "request_id", hc->request_id);
	call_send_json(hc, status, j);
	return (status);
}

/* The client's X-Request-Id when it is sane (printable, no spaces, at most
 * 128 bytes), else a new one. */
static void
call_request_id(struct http_call *hc)
{
	const char *h = mg_get_header(hc->conn, "X-Request-Id");
	size_t n;

	if (h != NULL && (n = strlen(h)) > 0 && n < sizeof(hc->request_id)) {
		size_t i;
		for (i = 0; i < n; i++)
			if (h[i] <= 0x20 || h[i] >= 0x7f)
				break;
		if (i == n) {
			memcpy(hc->request_id, h, n + 1);
			return;
		}
	}
	aff_request_id_new(hc->request_id);
}

/* Whether the client waits for "100 Continue" before it sends a body
 * (RFC 9110 10.1.1): HTTP/1.1, Expect: 100-continue, and a body to come. */
static int
call_expects_continue(const struct http_call *hc)
{
	const char *e = mg_get_header(hc->conn, "Expect");

	return (e != NULL && strcasecmp(e, "100-continue") == 0 &&
	    hc->ri->http_version != NULL &&
	    strcmp(hc->ri->http_version, "1.1") == 0 &&
	    (hc->ri->content_length > 0 ||
	        mg_get_header(hc->conn, "Transfer-Encoding") != NULL));
}

/* Says "100 Continue" once the request is going to be read: civetweb 1.15
 * sends it only for its own file uploads (forward_body_data), never
 * before a handler's mg_read. */
static void
call_continue(struct http_call *hc)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (call_expects_continue(hc) && !hc->continued) {
		mg_write(hc->conn, cont, sizeof(cont) - 1);
		hc->continued = 1;
	}
}

/*
 * Reads the whole body, at most cfg.max_body bytes, into the arena.
 * Returns 0, or the HTTP status to answer (413 without reading a declared
 * oversized body, 400 when the body ends early).
 */
static int
call_read_body(struct http_call *hc, char **bodyp, size_t *lenp)
{
	long long clen = hc->ri->content_length;
	size_t max = hc->b->cfg.max_body, cap, len = 0;
	char *buf, *nbuf;
	int n;

	if (clen > (long long)max)
		return (413);
	call_continue(hc);
	cap = clen >= 0 ? (size_t)clen : 4096;
	if ((buf = malloc(cap + 1)) == NULL)
		return (500);
	for (;;) {
		if (len == cap) {
			if (clen >= 0)
				break;
			/* No length given (chunked): grow up to the cap. */
			if (cap > max) {
				free(buf);
				return (413);
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			if ((nbuf = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				return (500);
			}
			buf = nbuf;
		}
		if ((n = mg_read(hc->conn, buf + len, cap - len)) <= 0)
			break;
		len += (size_t)n;
	}
	if (clen >= 0 && len != (size_t)clen) {
		free(buf);
		return (400);
	}
	if (len > max) {
		free(buf);
		return (413);
	}
	*bodyp = aff_arena_strndup(&hc->arena, buf, len);
	*lenp = len;
	free(buf);
	return (*bodyp != NULL ? 0 : 500);
}

/* Sets the request's fields from the path parameters and the query
 * string; returns 0 or 400 (already answered). */
static int
call_params(struct http_call *hc, const struct route_match *m,
    ProtobufCMessage *req)
{
	char err[256], key[64], *val, *q;
	const char *seen[16];
	size_t n_seen = 0;

	for (size_t i = 0; i < m->n_params; i++) {
		if (aff_message_set_text(req, m->params[i].name, m->params[i].value,
		        &hc->arena, err, sizeof(err)) != AFF_OK)
			return (call_error(hc, 400, "INVALID_ARGUMENT", "%s", err));
		seen[n_seen++] = m->params[i].name;
	}
	if (hc->ri->query_string == NULL || hc->ri->query_string[0] == '\0')
		return (0);
	if ((q = aff_arena_strdup(&hc->arena, hc->ri->query_string)) == NULL)
		return (call_error(hc, 500, "INTERNAL", "out of memory"));
	for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv != NULL;
	     kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		size_t vlen = eq != NULL ? strlen(eq + 1) : 0;
		int rv, kl, vl;

		if (eq != NULL)
			*eq = '\0';
		if ((val = aff_arena_alloc(&hc->arena, vlen + 1)) == NULL)
			return (call_error(hc, 500, "INTERNAL", "out of memory"));
		kl = mg_url_decode(kv, (int)strlen(kv), key, sizeof(key), 1);
		vl = eq != NULL
		    ? mg_url_decode(eq + 1, (int)vlen, val, (int)vlen + 1, 1)
		    : 0;
		val[vl < 0 ? 0 : vl] = '\0';
		/* A %00 would cut the value short where the server reads it. */
		if (kl < 0 || vl < 0 || (size_t)kl != strlen(key) ||
		    (size_t)vl != strlen(val))
			return (call_error(hc, 400, "INVALID_ARGUMENT",
			    "a query parameter is too long, badly encoded or "
			    "contains NUL"));
		for (size_t i = 0; i < n_seen; i++)
			if (strcmp(seen[i], key) == 0)
				return (call_error(hc, 400, "INVALID_ARGUMENT",
				    "parameter '%.64s' is given twice", key));
		if (n_seen == sizeof(seen) / sizeof(seen[0]))
			return (call_error(hc, 400, "INVALID_ARGUMENT",
			    "too many query parameters"));
		rv = aff_message_set_text(req, key, val, &hc->arena, err, sizeof(err));
		if (rv != AFF_OK)
			return (call_error(hc, 400, "INVALID_ARGUMENT", "%s", err));
		seen[n_seen++] = aff_arena_strdup(&hc->arena, key);
	}
	return (0);
}

/* Fills the request message from the body, by the route's kind. */
static int
call_body(struct http_call *hc, const struct route *r, ProtobufCMessage *req)
{
	char *body = NULL, err[256];
	size_t len = 0;
	json_t *j;
	int st;
	const char *sig = mg_get_header(hc->conn, "X-Partner-Signature");

	/* The server refuses an unsigned webhook whatever its body (401): a
	 * client waiting for "100 Continue" gets that answer without being
	 * asked for the body, which it then never sends. */
	if (r->body == ROUTE_BODY_WEBHOOK && (sig == NULL || *sig == '\0') &&
	    call_expects_continue(hc))
		body = "";
	else if ((st = call_read_body(hc, &body, &len)) != 0) {
		if (st == 413) {
			hc->close = 1; /* what is left of it is never read */
			return (call_error(hc, 413, "RESOURCE_EXHAUSTED",
			    "the body is larger than %zu bytes", hc->b->cfg.max_body));
		}
		if (st == 400)
			return (call_error(hc, 400, "INVALID_ARGUMENT",
			    "the body ended before its Content-Length"));
		return (call_error(hc, 500, "INTERNAL", "out of memory"));
	}
	if (r->body == ROUTE_BODY_WEBHOOK) {
		/* The server verifies the signature over the exact bytes. */
		const ProtobufCFieldDescriptor *fb =
		    protobuf_c_message_descriptor_get_field_by_name(
		        req->descriptor, "body");
		const ProtobufCFieldDescriptor *fs =
		    protobuf_c_message_descriptor_get_field_by_name(
		        req->descriptor, "signature");
		ProtobufCBinaryData *bd = (void *)((char *)req + fb->offset);

		bd->data = (uint8_t *)body;
		bd->len = len;
		*(char **)((char *)req + fs->offset) =
		    aff_arena_strdup(&hc->arena, sig != NULL ? sig : "");
		return (0);
	}
	if (len == 0)
		return (call_error(
		    hc, 400, "INVALID_ARGUMENT", "a JSON object body is required"));
	/* Nesting is bounded before jansson's recursive parser runs on
	 * civetweb's 100 KB stack (aff_json.h). */
	if (aff_json_parse(body, len, &j, err, sizeof(err)) != AFF_OK)
		return (call_error(hc, 400, "INVALID_ARGUMENT", "%s", err));
	st = aff_json_to_message(j, req, &hc->arena, err, sizeof(err));
	json_decref(j);
	if (st != AFF_OK)
		return (call_error(hc, st == AFF_INVALID_ARGUMENT ? 400 : 500,
		    st == AFF_INVALID_ARGUMENT ? "INVALID_ARGUMENT" : "INTERNAL",
		    "%s", st == AFF_INVALID_ARGUMENT ? err : "out of memory"));
	return (0);
}

/* The address of m's field called name (NULL when there is none). */
static const void *
field_ptr(const ProtobufCMessage *m, const char *name,
    const ProtobufCFieldDescriptor **fp)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);

	*fp = f;
	return (f != NULL ? (const char *)m + f->offset : NULL);
}

/* The Link header for the next page: this URL with after=cursor, when the
 * reply's cursor field says there is one. */
static const char *
next_link(struct http_call *hc, const ProtobufCMessage *reply, const char *name)
{
	const ProtobufCFieldDescriptor *f;
	const void *p = field_ptr(reply, name, &f);
	const char *q = hc->ri->query_string != NULL ? hc->ri->query_string : "";
	char enc[256], *kept, *out;

	if (p == NULL)
		return (NULL);
	if (f->type == PROTOBUF_C_TYPE_INT64 && *(const int64_t *)p != 0)
		snprintf(enc, sizeof(enc), "%lld", (long long)*(const int64_t *)p);
	else if (f->type == PROTOBUF_C_TYPE_STRING && *(char *const *)p != NULL &&
	    **(char *const *)p != '\0')
		mg_url_encode(*(char *const *)p, enc, sizeof(enc));
	else
		return (NULL);
	/* Every segment kept plus its '&' and the NUL: strlen(q) + 2. */
	if ((kept = aff_arena_alloc(&hc->arena, strlen(q) + 2)) == NULL)
		return (NULL);
	/* Keep every parameter but after, as the client wrote it. */
	out = kept;
	for (const char *p2 = q; *p2 != '\0';) {
		size_t n = strcspn(p2, "&");
		if (n > 0 && strncmp(p2, "after=", 6) != 0 &&
		    !(n == 5 && strncmp(p2, "after", 5) == 0)) {
			memcpy(out, p2, n);
			out += n;
			*out++ = '&';
		}
		p2 += n + (p2[n] == '&');
	}
	*out = '\0';
	return (aff_arena_printf(&hc->arena, "<%s?%safter=%s>; rel=\"next\"",
	    hc->ri->local_uri, kept, enc));
}

/* Answers a successful reply by the route's rendering. */
static int
call_render(struct http_call *hc, const struct route *r,
    const ProtobufCMessage *reply)
{
	const ProtobufCFieldDescriptor *f;
	struct aff_buf b;
	int st = r->status;

	aff_buf_init(&b);
	switch (r->render) {
	case ROUTE_RENDER_HEALTH: {
		const Affiliate__V1__HealthCheckResponse *h = (const void *)reply;
		if (h->status !=
		    AFFILIATE__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
			hc->retry_after = 1;
			return (call_error(hc, 503, "UNAVAILABLE",
			    "affiliate-server is up but its store is not serving"));
		}
		aff_buf_add(&b, "{\"status\":\"ok\"}", 15);
		break;
	}
	case ROUTE_RENDER_LIST:
		aff_json_write_field(&b, reply, r->list_field);
		hc->link = next_link(hc, reply, r->next_field);
		break;
	case ROUTE_RENDER_WEBHOOK: {
		const protobuf_c_boolean *created = field_ptr(reply, "created", &f);
		st = created != NULL && *created ? 201 : 200;
		aff_json_write_field(&b, reply, "order");
		break;
	}
	case ROUTE_RENDER_MESSAGE:
		aff_json_write_message(&b, reply);
		break;
	}
	if (b.failed) {
		aff_buf_fini(&b);
		return (call_error(hc, 500, "INTERNAL", "out of memory"));
	}
	call_send(hc, st, b.data, b.len);
	aff_buf_fini(&b);
	return (st);
}

/*
 * Answers an RPC error. A reply that carries a message with its error
 * (ALREADY_EXISTS carries the application in the way) shows it as
 * error.details.
 */
static void
call_error_reply(struct http_call *hc, int http, int code,
    const ProtobufCMethodDescriptor *md, const struct aff_call_result *res)
{
	const char *msg = res->message[0] != '\0' ? res->message
	                                          : aff_strerror(code);
	ProtobufCMessage *detail = NULL;
	json_t *j, *dj;

	if (res->payload_len > 0)
		detail = protobuf_c_message_unpack(md->output,
		    aff_arena_allocator(&hc->arena), res->payload_len, res->payload);
	if (detail == NULL || (dj = aff_json_from_message(detail)) == NULL) {
		call_error(hc, http, aff_code_name(code), "%s", msg);
		return;
	}
	j = json_pack("{s:{s:s,s:s,s:s,s:o}}", "error", "code",
	    aff_code_name(code), "message", msg, "request_id", hc->request_id,
	    "details", dj);
	if (j == NULL) {
		call_error(hc, http, aff_code_name(code), "%s", msg);
		return;
	}
	call_send_json(hc, http, j);
}

/* Makes the RPC for a matched route and answers it. */
static int
call_route(struct http_call *hc, const struct route_match *m)
{
	const struct route *r = m->route;
	const ProtobufCMethodDescriptor *md =
	    protobuf_c_service_descriptor_get_method_by_name(r->service, r->rpc);
	struct aff_metadata meta[3];
	char client[64];
	int proxied;
	struct aff_call_opts opts = { 0 };
	struct aff_call_result res;
	ProtobufCMessage *req, *reply;
	const char *auth;
	uint8_t *buf;
	size_t len;
	int st;

	if ((req = aff_message_new(md->input, &hc->arena)) == NULL)
		return (call_error(hc, 500, "INTERNAL", "out of memory"));
	if ((st = call_params(hc, m, req)) != 0)
		return (st);
	if (r->body != ROUTE_BODY_NONE && (st = call_body(hc, r, req)) != 0)
		return (st);
	len = protobuf_c_message_get_packed_size(req);
	if ((buf = aff_arena_alloc(&hc->arena, len)) == NULL)
		return (call_error(hc, 500, "INTERNAL", "out of memory"));
	protobuf_c_message_pack(req, buf);

	opts.request_id = hc->request_id;
	opts.timeout_ms = hc->b->cfg.timeout_ms;
	/* The client's address (for the server's per-address rate limit;
	 * behind a trusted proxy the one it names, see proxy.h), whether
	 * this bridge is reachable from other hosts (protected mode: the
	 * server then requires a key; a request that came through any proxy
	 * says it is), and the key, untouched: the server decides. */
	proxied = proxy_client_address(&hc->b->proxies, hc->ri, client,
	    sizeof(client));
	meta[0] = (struct aff_metadata){ "x-forwarded-for", client };
	opts.metadata = meta;
	opts.n_metadata = 1;
	if (hc->b->exposed || proxied)
		meta[opts.n_metadata++] =
		    (struct aff_metadata){ "x-affiliate-exposed", "1" };
	if ((auth = mg_get_header(hc->conn, "Authorization")) != NULL)
		meta[opts.n_metadata++] =
		    (struct aff_metadata){ "authorization", auth };
	st = aff_client_invoke(hc->b->client, r->service->name, r->rpc, buf, len,
	    &opts, &res);
	hc->res = &res;
	if (st != AFF_OK) {
		int http = http_status_from_code(st);
		if (st == AFF_UNAVAILABLE)
			hc->retry_after = 1;
		call_error_reply(hc, http, st, md, &res);
		hc->res = NULL;
		aff_call_result_fini(&res);
		return (http);
	}
	reply = protobuf_c_message_unpack(md->output,
	    aff_arena_allocator(&hc->arena), res.payload_len, res.payload);
	if (reply == NULL)
		st = call_error(hc, 502, "INTERNAL",
		    "affiliate-server sent a reply that does not unpack");
	else
		st = call_render(hc, r, reply);
	hc->res = NULL;
	aff_call_result_fini(&res);
	return (st);
}

/*
 * OPTIONS on a path: 204 with what it allows; a CORS preflight from an
 * allowed origin also gets the CORS answer (cors.h), any other gets none
 * and the browser refuses the call.
 */
static void
call_options(struct http_call *hc, const char *allow)
{
	struct aff_buf b;

	hc->allow = aff_arena_strdup(&hc->arena, allow);
	aff_buf_init(&b);
	if (mg_get_header(hc->conn, "Access-Control-Request-Method") != NULL)
		cors_preflight_headers(&hc->b->cors,
		    mg_get_header(hc->conn, "Origin"), allow, &b);
	if (b.len > 0 && !b.failed)
		hc->extra = aff_arena_strdup(&hc->arena, b.data);
	aff_buf_fini(&b);
	call_send(hc, 204, "", 0);
}

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

static int
bridge_handle(struct mg_connection *conn, void *cbdata)
{
	struct http_call hc;
	struct route_match m;
	int st;

	memset(&hc, 0, sizeof(hc));
	hc.conn = conn;
	hc.ri = mg_get_request_info(conn);
	hc.b = cbdata;
	hc.t0 = aff_mono_ms();
	aff_arena_init(&hc.arena);
	call_request_id(&hc);

	if (hc.ri->content_length > (long long)hc.b->cfg.max_body) {
		/* Whatever the route, do not read a body over the cap. */
		hc.close = 1;
		call_error(&hc, 413, "RESOURCE_EXHAUSTED",
		    "the body is larger than %zu bytes", hc.b->cfg.max_body);
	} else if ((st = call_expectation(&hc)) != 0) {
		/* answered */
	} else if (strcmp(hc.ri->local_uri, "/openapi.json") == 0) {
		if (strcmp(hc.ri->request_method, "GET") == 0 ||
		    strcmp(hc.ri->request_method, "HEAD") == 0)
			call_send(&hc, 200, hc.b->openapi, strlen(hc.b->openapi));
		else if (strcmp(hc.ri->request_method, "OPTIONS") == 0)
			call_options(&hc, "GET, HEAD, OPTIONS");
		else {
			hc.allow = "GET, HEAD, OPTIONS";
			call_error(&hc, 405, "UNIMPLEMENTED",
			    "%s is not allowed on /openapi.json",
			    hc.ri->request_method);
		}
	} else if ((st = route_match(hc.ri->request_method, hc.ri->local_uri,
	                &m)) == 200) {
		call_route(&hc, &m);
	} else if (st == 405 && strcmp(hc.ri->request_method, "OPTIONS") == 0) {
		call_options(&hc, m.allow);
	} else if (st == 405) {
		hc.allow = aff_arena_strdup(&hc.arena, m.allow);
		call_error(&hc, 405, "UNIMPLEMENTED", "%s is not allowed on %.200s",
		    hc.ri->request_method, hc.ri->local_uri);
	} else if (st == 414) {
		call_error(&hc, 414, "INVALID_ARGUMENT", "a path parameter is too long");
	} else {
		call_error(&hc, 404, "NOT_FOUND", "no route for %s %.200s",
		    hc.ri->request_method, hc.ri->local_uri);
	}
	aff_log(AFF_LOG_INFO, hc.request_id, "http %s %.200s%s%.200s %d %zuB %lldms %s",
	    hc.ri->request_method, hc.ri->local_uri,
	    hc.ri->query_string != NULL ? "?" : "",
	    hc.ri->query_string != NULL ? hc.ri->query_string : "", hc.status,
	    hc.sent, (long long)(aff_mono_ms() - hc.t0), hc.ri->remote_addr);
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
	aff_arena_init(&hc.arena);
	aff_request_id_new(hc.request_id);
	hc.close = 1;
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
	struct mg_callbacks cb;
	char threads[16], ports[136], err[256];
	int tls = cfg->tls_cert[0] != '\0';
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
	co.url = cfg->server_url;
	co.timeout_ms = cfg->timeout_ms;
	co.n_sockets = cfg->sockets;
	/* Each civetweb worker waits for its reply anyway: on its own SP
	 * connection the call costs no thread hand-off (see aff_sp.h). NNG
	 * sockets serve the transports aff_sp does not speak (tls+tcp://,
	 * ws://, ...). */
	co.direct = aff_sp_supported(cfg->server_url);
	if ((rv = aff_client_open(&b->client, &co)) != AFF_OK) {
		aff_error("bridge: cannot use server address %s: %s",
		    cfg->server_url, aff_strerror(rv));
		goto failed_client;
	}
	if ((b->openapi = openapi_build()) == NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed_openapi;
	}
	snprintf(threads, sizeof(threads), "%d", cfg->threads);
	/* civetweb's "s" suffix makes a port TLS. */
	snprintf(ports, sizeof(ports), "%s%s", cfg->listen, tls ? "s" : "");
	/* Never set document_root: the bridge serves no files (and civetweb
	 * 1.15 has an overflow in its redirect path). max_request_size bounds
	 * the headers only; bodies are capped in call_read_body. */
	const char *options[] = {
		"listening_ports", ports,
		"num_threads", threads,
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "5000",
		"request_timeout_ms", "10000",
		"max_request_size", "16384",
		"tcp_nodelay", "1",
		"decode_url", "yes",
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
	cb.log_message = bridge_log_message;
	if (tls)
		cb.init_ssl = bridge_init_ssl;
	mg_init_library(0);
	if ((b->ctx = mg_start(&cb, b, options)) == NULL) {
		aff_error("bridge: cannot listen on %s", cfg->listen);
		rv = AFF_UNAVAILABLE;
		goto failed_start;
	}
	mg_set_request_handler(b->ctx, "/", bridge_handle, b);
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
	free(b->openapi);
failed_openapi:
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
	mg_stop(b->ctx);
	mg_exit_library();
	aff_client_close(b->client);
	free(b->openapi);
	free(b);
}

const char *
bridge_openapi(const bridge *b)
{
	return (b->openapi);
}
