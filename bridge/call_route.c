/* call_route.c - see call_route.h. */
#include "call_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "aff_arena.h"
#include "aff_client.h"
#include "aff_err.h"
#include "aff_json.h"
#include "aff_util.h"
#include "json_in.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "bridge_priv.h"
#include "edge.h"
#include "http_status.h"
#include "proxy.h"
#include "readcache.h"

/*
 * Reads the whole body, at most cfg.max_body bytes, into the arena
 * (NUL-terminated, for the JSON parser).
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
	if (clen >= 0) {
		/* A declared length (every webhook partner sends one): read
		 * straight into the arena, where the request message points,
		 * with no staging buffer to copy out of. */
		cap = (size_t)clen;
		if ((buf = aff_arena_alloc(&hc->arena, cap + 1)) == NULL)
			return (500);
		while (len < cap &&
		    (n = mg_read(hc->conn, buf + len, cap - len)) > 0)
			len += (size_t)n;
		if (len != cap)
			return (400);
		buf[len] = '\0';
		*bodyp = buf;
		*lenp = len;
		return (0);
	}
	cap = 4096;
	if ((buf = malloc(cap + 1)) == NULL)
		return (500);
	for (;;) {
		if (len == cap) {
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
		if (json_in_set_text(req, m->params[i].name, m->params[i].value,
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
		rv = json_in_set_text(req, key, val, &hc->arena, err, sizeof(err));
		if (rv != AFF_OK)
			return (call_error(hc, 400, "INVALID_ARGUMENT", "%s", err));
		seen[n_seen++] = aff_arena_strdup(&hc->arena, key);
	}
	return (0);
}

/* The webhook's signature headers, each forwarded untouched into the
 * request's field of the same meaning (the server checks them). */
static const struct {
	const char *header, *field;
} webhook_headers[] = {
	{ "X-Partner-Signature", "signature" },
	{ "Stripe-Signature", "signature" }, /* its alias (Stripe's name) */
	{ "webhook-id", "webhook_id" },
	{ "webhook-timestamp", "webhook_timestamp" },
	{ "webhook-signature", "webhook_signature" },
};
#define N_WEBHOOK_HEADERS (sizeof(webhook_headers) / sizeof(webhook_headers[0]))

/* The value of the one header called name (NULL when absent); *twice
 * is set when it is given more than once (which one counts would then
 * depend on who reads it). */
static const char *
header_once(const struct mg_request_info *ri, const char *name, int *twice)
{
	const char *v = NULL;

	for (int i = 0; i < ri->num_headers; i++)
		if (strcasecmp(ri->http_headers[i].name, name) == 0) {
			if (v != NULL)
				*twice = 1;
			v = ri->http_headers[i].value;
		}
	return (v);
}

/* Whether any webhook signature header is there, non-empty. */
static int
webhook_signed(const struct mg_request_info *ri)
{
	int twice = 0;

	for (size_t i = 0; i < N_WEBHOOK_HEADERS; i++) {
		const char *v = header_once(ri, webhook_headers[i].header, &twice);
		if (v != NULL && *v != '\0')
			return (1);
	}
	return (0);
}

/* Copies the signature headers into the webhook request: 0, or the
 * status of the error answered. */
static int
webhook_fill(struct http_call *hc, ProtobufCMessage *req)
{
	const char *alias = NULL;

	for (size_t i = 0; i < N_WEBHOOK_HEADERS; i++) {
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(
		        req->descriptor, webhook_headers[i].field);
		char **slot = (char **)((char *)req + f->offset);
		int twice = 0;
		const char *v =
		    header_once(hc->ri, webhook_headers[i].header, &twice);

		if (twice)
			return (call_error(hc, 400, "INVALID_ARGUMENT",
			    "the %s header is given twice",
			    webhook_headers[i].header));
		if (v == NULL || *v == '\0')
			continue;
		if (i == 1 && alias != NULL)
			return (call_error(hc, 401, "UNAUTHENTICATED",
			    "X-Partner-Signature and Stripe-Signature are both "
			    "given: send one"));
		if (i == 0)
			alias = v;
		if ((*slot = aff_arena_strdup(&hc->arena, v)) == NULL)
			return (call_error(hc, 500, "INTERNAL", "out of memory"));
	}
	return (0);
}

/*
 * A PATCH body's keys as the request's update_mask (AIP-134), unless the
 * body gave one: the fields to change are those the client wrote. A key
 * that is a path parameter is refused (the path names the resource).
 * Returns 0 or the status answered.
 */
static int
call_patch_mask(struct http_call *hc, const struct route_match *m,
    const json_t *j, ProtobufCMessage *req)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(
	        req->descriptor, "update_mask");
	size_t *n, k = 0;
	char ***arr;
	const char *key;
	json_t *v;

	if (f == NULL || f->label != PROTOBUF_C_LABEL_REPEATED)
		return (call_error(hc, 500, "INTERNAL", "no update_mask"));
	n = (size_t *)((char *)req + f->quantifier_offset);
	arr = (char ***)((char *)req + f->offset);
	json_object_foreach((json_t *)j, key, v)
	{
		for (size_t i = 0; i < m->n_params; i++)
			if (strcmp(key, m->params[i].name) == 0)
				return (call_error(hc, 400, "INVALID_ARGUMENT",
				    "%s is given in the path, not in the body",
				    key));
	}
	if (*n > 0)
		return (0);
	if ((*arr = aff_arena_alloc(&hc->arena,
	         sizeof(char *) * (json_object_size(j) + 1))) == NULL)
		return (call_error(hc, 500, "INTERNAL", "out of memory"));
	json_object_foreach((json_t *)j, key, v)
	{
		if (json_is_null(v))
			continue;
		if (((*arr)[k] = aff_arena_strdup(&hc->arena, key)) == NULL)
			return (call_error(hc, 500, "INTERNAL", "out of memory"));
		k++;
	}
	*n = k;
	return (0);
}

/* Reads the body under the edge's watchdog (slow clients); 0, or the
 * status answered. */
static int
call_body_read(struct http_call *hc, char **body, size_t *len)
{
	int st, cut;

	edge_body_begin();
	st = call_read_body(hc, body, len);
	hc->body_read = 1;
	if ((cut = edge_body_end()) != 0) {
		/* The watchdog shut the socket for reading: too slow. */
		char msg[256];

		edge_cut_message(hc->b->edge, cut, 1, msg, sizeof(msg));
		hc->close = 1;
		if (cut == 408)
			return (call_error(hc, 408, "DEADLINE_EXCEEDED", "%s", msg));
		hc->retry_after = 1;
		return (call_error(hc, 429, "RESOURCE_EXHAUSTED", "%s", msg));
	}
	if (st == 413) {
		hc->close = 1; /* what is left of it is never read */
		return (call_error(hc, 413, "RESOURCE_EXHAUSTED",
		    "the body is larger than %zu bytes", hc->b->cfg.max_body));
	}
	if (st == 400)
		return (call_error(hc, 400, "INVALID_ARGUMENT",
		    "the body ended before its Content-Length"));
	if (st != 0)
		return (call_error(hc, 500, "INTERNAL", "out of memory"));
	return (0);
}

/*
 * A route that takes no body (its parameters are in the path and query):
 * a body that says anything is refused rather than dropped unread, so
 * PUT /editors/1/advertisers/2 {"eligible":false} is not answered with a
 * grant. Nothing, blanks or {} pass. GET and HEAD are left alone (their
 * bodies mean nothing in HTTP, and cached reads never read one).
 */
static int
call_no_body(struct http_call *hc, const struct route *r)
{
	char *body = NULL, *p;
	size_t len = 0;
	int st;

	if (strcmp(r->method, "GET") == 0 ||
	    (hc->ri->content_length <= 0 &&
	        (hc->ri->content_length == 0 ||
	            mg_get_header(hc->conn, "Transfer-Encoding") == NULL)))
		return (0);
	if ((st = call_body_read(hc, &body, &len)) != 0)
		return (st);
	p = body + strspn(body, " \t\r\n");
	if (*p == '{') {
		p++;
		p += strspn(p, " \t\r\n");
		if (*p == '}')
			p++;
		else
			p = body;
		p += strspn(p, " \t\r\n");
	}
	if (*p != '\0' || strlen(body) != len)
		return (call_error(hc, 400, "INVALID_ARGUMENT",
		    "%s %s takes no body: its parameters are in the path%s",
		    r->method, r->path,
		    strcmp(r->path, "/editors/{editor_id}/advertisers/"
		                    "{advertiser_id}") == 0
		        ? " (PUT grants, DELETE revokes)"
		        : ""));
	return (0);
}

/* Fills the request message from the body, by the route's kind. */
static int
call_body(struct http_call *hc, const struct route_match *m,
    ProtobufCMessage *req)
{
	const struct route *r = m->route;
	char *body = NULL, err[256];
	size_t len = 0;
	json_t *j;
	int st = 0;

	/* The server refuses an unsigned webhook whatever its body (401): a
	 * client waiting for "100 Continue" gets that answer without being
	 * asked for the body, which it then never sends (the body is left
	 * unread, so the connection closes). */
	if (r->body == ROUTE_BODY_WEBHOOK && !webhook_signed(hc->ri) &&
	    call_expects_continue(hc))
		body = "";
	else if ((st = call_body_read(hc, &body, &len)) != 0)
		return (st);
	if (r->body == ROUTE_BODY_WEBHOOK) {
		/* The server verifies the signature over the exact bytes. */
		const ProtobufCFieldDescriptor *fb =
		    protobuf_c_message_descriptor_get_field_by_name(
		        req->descriptor, "body");
		ProtobufCBinaryData *bd = (void *)((char *)req + fb->offset);

		bd->data = (uint8_t *)body;
		bd->len = len;
		return (webhook_fill(hc, req));
	}
	if (len == 0)
		return (call_error(
		    hc, 400, "INVALID_ARGUMENT", "a JSON object body is required"));
	/* Nesting is bounded before jansson's recursive parser runs on
	 * civetweb's 100 KB stack (json_in.h). */
	if (json_in_parse(body, len, &j, err, sizeof(err)) != AFF_OK)
		return (call_error(hc, 400, "INVALID_ARGUMENT", "%s", err));
	st = json_in_to_message(j, req, &hc->arena, err, sizeof(err));
	if (st != AFF_OK) {
		json_decref(j);
		return (call_error(hc, st == AFF_INVALID_ARGUMENT ? 400 : 500,
		    st == AFF_INVALID_ARGUMENT ? "INVALID_ARGUMENT" : "INTERNAL",
		    "%s", st == AFF_INVALID_ARGUMENT ? err : "out of memory"));
	}
	st = r->body == ROUTE_BODY_PATCH ? call_patch_mask(hc, m, j, req) : 0;
	json_decref(j);
	return (st);
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

/* What a rendered answer needs to be kept (readcache_put). */
struct keep {
	const char *key;
	size_t klen;
	const char *tag; /* the reply's x-affiliate-reuse */
	uint64_t epoch;
	int64_t t0;
};

/* Answers a successful reply by the route's rendering; with keep, a 200
 * is also kept in the read cache, as sent. */
static int
call_render(struct http_call *hc, const struct route *r,
    const ProtobufCMessage *reply, const struct keep *keep)
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
	if (keep != NULL && st == 200) {
		struct readcache_answer ans = { st, b.data, b.len, hc->link };
		readcache_put(hc->b->rcache, keep->key, keep->klen, keep->tag,
		    keep->epoch, keep->t0, &ans);
	}
	call_send(hc, st, b.data, b.len);
	aff_buf_fini(&b);
	return (st);
}

/*
 * What the read cache does with a route. Said here rather than in the
 * route table so that a new route needs nothing: a new read is not kept,
 * a new write drops every kept answer (it may change the catalog).
 */
enum route_cache {
	ROUTE_CACHE_DEFAULT,
	ROUTE_CACHE_READ, /* a catalog read the server may mark public */
	ROUTE_CACHE_KEEP, /* a write that never touches the catalog */
};

static enum route_cache
route_cache(const struct route *r)
{
	if (r->service == &affiliate__v1__advertiser_service__descriptor &&
	    strcmp(r->method, "GET") == 0 &&
	    (strcmp(r->rpc, "ListAdvertisers") == 0 ||
	        strcmp(r->rpc, "GetAdvertiser") == 0))
		return (ROUTE_CACHE_READ);
	/* Orders are not the catalog. */
	if (r->body == ROUTE_BODY_WEBHOOK)
		return (ROUTE_CACHE_KEEP);
	return (ROUTE_CACHE_DEFAULT);
}

/*
 * Whether this request may be answered from the read cache, and its
 * answer kept there: a public catalog read (GET or HEAD), on a bridge
 * that is not exposed, from a client that came through no proxy and
 * sends nothing that could make its answer its own (a key, a cookie,
 * forwarding headers). The server decides the rest (readcache.h).
 */
static int
call_cacheable(const struct http_call *hc, const struct route *r, int proxied)
{
	const struct mg_request_info *ri = hc->ri;

	if (hc->b->rcache == NULL || route_cache(r) != ROUTE_CACHE_READ ||
	    hc->b->exposed || proxied)
		return (0);
	for (int i = 0; i < ri->num_headers; i++) {
		const char *n = ri->http_headers[i].name;
		if (strcasecmp(n, "Authorization") == 0 ||
		    strcasecmp(n, "Cookie") == 0 ||
		    strcasecmp(n, "Forwarded") == 0 ||
		    strncasecmp(n, "X-Forwarded-", 12) == 0)
			return (0);
	}
	return (1);
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
int
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
	int st, cacheable;
	struct keep keep = { 0 };
	struct readcache_answer hit;

	/* The client's address (for the server's per-address rate limit;
	 * behind a trusted proxy the one it names, see proxy.h). */
	proxied = proxy_client_address(&hc->b->proxies, hc->ri, client,
	    sizeof(client));
	/* A hot public read never leaves the bridge: the key is the raw
	 * path and query, so a hit skips the parameters' parsing too (only
	 * answers that parsed, 200s, are kept). */
	if ((cacheable = call_cacheable(hc, r, proxied)) != 0 &&
	    (keep.key = readcache_key(&hc->arena, hc->ri->local_uri,
	         hc->ri->query_string, &keep.klen)) != NULL) {
		if (readcache_get(hc->b->rcache, keep.key, keep.klen, &hc->arena,
		        &hit)) {
			hc->link = hit.link;
			call_send(hc, hit.status, hit.body, hit.len);
			return (hit.status);
		}
		keep.epoch = readcache_epoch(hc->b->rcache);
		keep.t0 = aff_mono_ms();
	} else
		cacheable = 0;
	if ((req = json_in_message_new(md->input, &hc->arena)) == NULL)
		return (call_error(hc, 500, "INTERNAL", "out of memory"));
	if ((st = call_params(hc, m, req)) != 0)
		return (st);
	if (r->body == ROUTE_BODY_NONE && (st = call_no_body(hc, r)) != 0)
		return (st);
	if (r->body != ROUTE_BODY_NONE && (st = call_body(hc, m, req)) != 0)
		return (st);
	opts.request_id = hc->request_id;
	opts.timeout_ms = hc->b->cfg.timeout_ms;
	/* Every route is a read, a webhook stored once per order_id, a
	 * catalog change that is the same when made twice, or a keyed call
	 * (Apply, CreateAdvertiser, CreateEditor, the job retries) keyed by
	 * this request_id: with servers on one database a second run
	 * anywhere answers the first (README, Several servers). */
	opts.idempotent = hc->b->cfg.shared_db;
	/* The client's address, whether this bridge is reachable from
	 * other hosts (protected mode: the server then requires a key; a
	 * request that came through any proxy says it is), and the key,
	 * untouched: the server decides. */
	meta[0] = (struct aff_metadata){ "x-forwarded-for", client };
	opts.metadata = meta;
	opts.n_metadata = 1;
	if (hc->b->exposed || proxied)
		meta[opts.n_metadata++] =
		    (struct aff_metadata){ "x-affiliate-exposed", "1" };
	if ((auth = mg_get_header(hc->conn, "Authorization")) != NULL)
		meta[opts.n_metadata++] =
		    (struct aff_metadata){ "authorization", auth };
	/* Packed straight into the request envelope: a webhook's body is
	 * copied once more here, into the message sent, not twice. */
	st = aff_client_invoke_message(hc->b->client, r->service->name, r->rpc,
	    req, &opts, &res);
	/* A write that may have changed the catalog (whatever it answered:
	 * a timeout may still have committed) drops every kept answer. */
	if (strcmp(r->method, "GET") != 0 && route_cache(r) != ROUTE_CACHE_KEEP)
		readcache_invalidate(hc->b->rcache);
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
	else {
		const struct keep *k = NULL;

		if (cacheable) {
			/* No tag on an OK anonymous read: the server no longer
			 * calls such reads public, and what is kept goes. */
			keep.tag = aff_call_result_metadata(&res, "x-affiliate-reuse");
			if (keep.tag != NULL)
				k = &keep;
			else
				readcache_seen(hc->b->rcache, NULL, keep.epoch, keep.t0);
		}
		st = call_render(hc, r, reply, k);
	}
	hc->res = NULL;
	aff_call_result_fini(&res);
	return (st);
}

