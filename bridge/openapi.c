/* openapi.c - see openapi.h. */
#include "openapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aff_err.h"
#include "aff_json.h"
#include "aff_status.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "routes.h"

/* What the document collects while the paths are written: components are
 * added the first time something refers to them, so none is unused (a
 * lint warning) whichever routes the table has. */
struct oa {
	json_t *schemas, *responses, *headers;
	json_t *op_ids; /* operationIds given so far: they must be unique */
};

/*
 * Status fields are strings in the messages (README, The RPC protocol);
 * their words are status.proto's enums (aff_status.h). A message's
 * "status" field takes the enum of the resource its name says:
 * Application, ListApplicationsRequest, or a later UpdateAdvertiserRequest
 * each get theirs with no row here.
 */
static const struct {
	const char *stem;
	const ProtobufCEnumDescriptor *d;
} status_enums[] = {
	{ "Application", AFF_APPLICATION_STATUS },
	{ "Advertiser", AFF_ADVERTISER_STATUS },
	{ "Order", AFF_ORDER_STATUS },
};

static json_t *
status_enum(const char *message, const char *field)
{
	const char *w;
	json_t *a;

	if (strcmp(field, "status") != 0)
		return (NULL);
	for (size_t i = 0; i < sizeof(status_enums) / sizeof(status_enums[0]);
	     i++) {
		if (strstr(message, status_enums[i].stem) == NULL)
			continue;
		a = json_array();
		for (int v = 1; (w = aff_status_word(status_enums[i].d, v)) != NULL;
		     v++)
			json_array_append_new(a, json_string(w));
		return (a);
	}
	return (NULL);
}

static json_t *schema_of_message(
    const ProtobufCMessageDescriptor *d, int input, struct oa *oa);

/* A message's schema as a reply (every field present: aff_json writes
 * defaults too) or, input, as a request body (any field may be left out:
 * 0 and "" mean "not given"). The two differ, so they are two components
 * when one message is both. */
static json_t *
ref_to(const ProtobufCMessageDescriptor *d, int input, struct oa *oa)
{
	char name[160];
	size_t n = strlen(d->short_name);

	if (input && !(n > 7 && strcmp(d->short_name + n - 7, "Request") == 0))
		snprintf(name, sizeof(name), "%sInput", d->short_name);
	else
		snprintf(name, sizeof(name), "%s", d->short_name);
	if (json_object_get(oa->schemas, name) == NULL) {
		/* Placeholder first: messages may refer to themselves. */
		json_object_set_new(oa->schemas, name, json_object());
		json_object_set_new(
		    oa->schemas, name, schema_of_message(d, input, oa));
	}
	return (json_pack("{s:s+}", "$ref", "#/components/schemas/", name));
}

/* Whether name ends with suffix. */
static int
ends_with(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);

	return (n >= k && strcmp(name + n - k, suffix) == 0);
}

static json_t *
schema_of_field(const ProtobufCMessageDescriptor *owner,
    const ProtobufCFieldDescriptor *f, int input, struct oa *oa)
{
	json_t *s, *e;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		s = json_pack("{s:s,s:s}", "type", "integer", "format", "int32");
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		s = json_pack("{s:s,s:s}", "type", "integer", "format", "int64");
		break;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		s = json_pack("{s:s}", "type", "number");
		break;
	case PROTOBUF_C_TYPE_BOOL:
		s = json_pack("{s:s}", "type", "boolean");
		break;
	case PROTOBUF_C_TYPE_BYTES:
		s = json_pack("{s:s,s:s}", "type", "string", "format", "byte");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		json_t *names = json_array();
		for (unsigned i = 0; i < ed->n_values; i++)
			json_array_append_new(names, json_string(ed->values[i].name));
		s = json_pack("{s:s,s:o}", "type", "string", "enum", names);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		s = ref_to(f->descriptor, input, oa);
		break;
	default:
		s = json_pack("{s:s}", "type", "string");
		/* The messages' timestamps: RFC 3339 in UTC, named *_at. */
		if (ends_with(f->name, "_at"))
			json_object_set_new(s, "format", json_string("date-time"));
		else if ((e = status_enum(owner->short_name, f->name)) != NULL)
			json_object_set_new(s, "enum", e);
		break;
	}
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		s = json_pack("{s:s,s:o}", "type", "array", "items", s);
	return (s);
}

/* Money (aff_json_money_name): a JSON number, always written with two
 * decimals, exact to the cent. */
static json_t *
money_schema(void)
{
	return (json_pack("{s:s,s:s,s:f}", "type", "number", "description",
	    "Money in the currency's major unit, exact to the cent: written "
	    "with exactly two decimals (49.90). Kept as integer cents inside; "
	    "read it as a decimal, not a binary float.",
	    "example", 49.9));
}

static json_t *
schema_of_message(
    const ProtobufCMessageDescriptor *d, int input, struct oa *oa)
{
	json_t *props = json_object(), *req = json_array(), *s;
	char money[64];

	for (unsigned i = 0; i < d->n_fields; i++) {
		const char *name = d->fields[i].name;

		if (aff_json_money_name(&d->fields[i], money, sizeof(money))) {
			json_object_set_new(props, money, money_schema());
			name = money;
		} else
			json_object_set_new(props, name,
			    schema_of_field(d, &d->fields[i], input, oa));
		json_array_append_new(req, json_string(name));
	}
	s = json_pack("{s:s,s:o}", "type", "object", "properties", props);
	if (input || json_array_size(req) == 0)
		json_decref(req);
	else {
		/* Replies carry every field, and nothing else. */
		json_object_set_new(s, "required", req);
		json_object_set_new(s, "additionalProperties", json_false());
	}
	return (s);
}

/* ---- headers and shared responses ---- */

static const struct {
	const char *name, *type, *desc;
} header_defs[] = {
	{ "X-Request-Id", "string",
	    "The request's id: the client's own X-Request-Id when it sent a "
	    "sane one (printable, at most 128 bytes), else a new one. The "
	    "bridge's and the server's log lines carry it." },
	{ "Link", "string",
	    "<URL of the next page>; rel=\"next\" (RFC 8288), only when more "
	    "follow: the same query with after=<cursor>." },
	{ "Retry-After", "integer",
	    "Seconds to wait before trying again (RFC 9110 10.2.3)." },
	{ "RateLimit-Limit", "integer",
	    "The rate limit's burst for this key or address (sent where a "
	    "limit applies)." },
	{ "RateLimit-Remaining", "integer",
	    "Calls left in the bucket after this one." },
	{ "RateLimit-Reset", "integer",
	    "Seconds until the bucket is full again." },
	{ "WWW-Authenticate", "string",
	    "Bearer realm=\"affiliate\" (RFC 6750), with error=\"invalid_token\" "
	    "when a key was given and refused." },
};

/* Adds a reference to the named header to a response's headers. */
static void
header_add(json_t *response, const char *name, struct oa *oa)
{
	json_t *hs = json_object_get(response, "headers");
	char comp[64];
	size_t k = 0;

	for (const char *p = name; *p != '\0' && k < sizeof(comp) - 1; p++)
		if (*p != '-')
			comp[k++] = *p;
	comp[k] = '\0';
	if (json_object_get(oa->headers, comp) == NULL) {
		for (size_t i = 0; i < sizeof(header_defs) / sizeof(header_defs[0]);
		     i++)
			if (strcmp(header_defs[i].name, name) == 0)
				json_object_set_new(oa->headers, comp,
				    json_pack("{s:s,s:{s:s}}", "description",
				        header_defs[i].desc, "schema", "type",
				        header_defs[i].type));
	}
	if (hs == NULL) {
		hs = json_object();
		json_object_set_new(response, "headers", hs);
	}
	json_object_set_new(
	    hs, name, json_pack("{s:s+}", "$ref", "#/components/headers/", comp));
}

/* Headers every answer has, and those of every answer from the server. */
static void
headers_common(json_t *response, int from_server, struct oa *oa)
{
	header_add(response, "X-Request-Id", oa);
	if (from_server) {
		header_add(response, "RateLimit-Limit", oa);
		header_add(response, "RateLimit-Remaining", oa);
		header_add(response, "RateLimit-Reset", oa);
	}
}

static json_t *
error_ref(void)
{
	return (json_pack("{s:s}", "$ref", "#/components/schemas/Error"));
}

/* The error body; details (with its schema) only where a reply comes with
 * the error (a 409 carries what is in the way). */
static json_t *
error_schema(json_t *details)
{
	json_t *codes = json_array(), *props;

	for (int c = 1; c <= AFF_ERR_MAX; c++)
		json_array_append_new(codes, json_string(aff_code_name(c)));
	props = json_pack("{s:{s:s,s:o,s:s},s:{s:s},s:{s:s,s:s}}", "code",
	    "type", "string", "enum", codes, "description",
	    "gRPC's status name; the HTTP status follows grpc-gateway's "
	    "mapping of it",
	    "message", "type", "string", "request_id", "type", "string",
	    "description", "as the X-Request-Id header");
	if (details != NULL)
		json_object_set_new(props, "details", details);
	return (json_pack("{s:s,s:[s],s:b,s:{s:{s:s,s:[s,s,s],s:b,s:o}}}",
	    "type", "object", "required", "error", "additionalProperties", 0,
	    "properties", "error", "type", "object", "required", "code",
	    "message", "request_id", "additionalProperties", 0, "properties",
	    props));
}

static const struct {
	int status;
	const char *name, *desc;
} error_defs[] = {
	{ 400, "BadRequest",
	    "A malformed request: a parameter or body field of the wrong type "
	    "or out of range, an unknown parameter, or framing the bridge "
	    "cannot trust." },
	{ 401, "Unauthorized",
	    "No API key where one is required (a bridge reachable from other "
	    "hosts, or --auth on), a key that is unknown or revoked, or a "
	    "webhook whose signature is missing, wrong or stale." },
	{ 403, "Forbidden",
	    "The key may not do this: another editor's data, an admin call "
	    "with an editor's key, or an editor not eligible for the "
	    "advertiser." },
	{ 404, "NotFound", "An id names nothing." },
	{ 408, "RequestTimeout",
	    "The body did not arrive within the bridge's body deadline." },
	{ 413, "PayloadTooLarge", "The body is larger than --max-body." },
	{ 429, "TooManyRequests",
	    "Over the rate limit of this key or address, or too many slow "
	    "requests from it; Retry-After says when to try again." },
	{ 503, "Unavailable",
	    "affiliate-server is unreachable or not serving: try again." },
};

/* A reference to the shared response for status, made when first used. */
static json_t *
error_response(int status, struct oa *oa)
{
	for (size_t i = 0; i < sizeof(error_defs) / sizeof(error_defs[0]); i++) {
		json_t *r;

		if (error_defs[i].status != status)
			continue;
		if (json_object_get(oa->responses, error_defs[i].name) == NULL) {
			r = json_pack("{s:s,s:{s:{s:o}}}", "description",
			    error_defs[i].desc, "content", "application/json",
			    "schema", error_ref());
			headers_common(r, status != 408 && status != 413, oa);
			if (status == 401)
				header_add(r, "WWW-Authenticate", oa);
			if (status == 429 || status == 503)
				header_add(r, "Retry-After", oa);
			json_object_set_new(oa->responses, error_defs[i].name, r);
		}
		return (json_pack("{s:s+}", "$ref", "#/components/responses/",
		    error_defs[i].name));
	}
	return (NULL);
}

static json_t *
json_response(const char *desc, json_t *schema)
{
	return (json_pack("{s:s,s:{s:{s:o}}}", "description", desc, "content",
	    "application/json", "schema", schema));
}

static void
respond(json_t *responses, int status, json_t *r)
{
	char code[8];

	snprintf(code, sizeof(code), "%d", status);
	json_object_set_new(responses, code, r);
}

/* ---- operations ---- */

static int
is_path_param(const struct route *r, const char *name)
{
	char want[64];

	snprintf(want, sizeof(want), "{%s}", name);
	return (strstr(r->path, want) != NULL);
}

/* The webhook's signature headers, and what each carries. */
static const char *const webhook_headers[][2] = {
	{ "X-Partner-Signature",
	    "<hex HMAC-SHA256 of the body> or t=<unix>,v1=<hex of \"<t>.<body>\">" },
	{ "Stripe-Signature", "the same as X-Partner-Signature (Stripe's name)" },
	{ "webhook-id", "Standard Webhooks: the message id, also the "
	                "idempotency key" },
	{ "webhook-timestamp", "Standard Webhooks: Unix seconds, within 300 s" },
	{ "webhook-signature", "Standard Webhooks: v1,<base64 HMAC-SHA256 of "
	                       "\"<id>.<timestamp>.<body>\">, space-separated" },
};

/* Whether the request names something that may not exist: a path
 * parameter, or an id field (editor_id=42 with no editor 42 is 404). */
static int
may_not_find(const struct route *r, const ProtobufCMessageDescriptor *in)
{
	if (strchr(r->path, '{') != NULL || r->body == ROUTE_BODY_WEBHOOK)
		return (1);
	for (unsigned i = 0; i < in->n_fields; i++)
		if (ends_with(in->fields[i].name, "id") &&
		    in->fields[i].type == PROTOBUF_C_TYPE_INT64)
			return (1);
	return (0);
}

/*
 * The errors a route can answer, from what it is: any call may be
 * malformed (400), limited (429) or meet a server that is down (503);
 * calls that take a key may be refused it (401, 403; health takes none,
 * a webhook's 401 is its signature); ids may name nothing (404); a write
 * may conflict with what is stored (409, with the reply's message as
 * error.details when the server sends one); a body may be too large or
 * too slow (413, 408). Other statuses (500, 502, 504) are the default.
 */
static void
route_errors(const struct route *r, const ProtobufCMethodDescriptor *md,
    json_t *responses, struct oa *oa)
{
	int health = r->render == ROUTE_RENDER_HEALTH;

	respond(responses, 400, error_response(400, oa));
	if (!health)
		respond(responses, 401, error_response(401, oa));
	if (!health && r->body != ROUTE_BODY_WEBHOOK)
		respond(responses, 403, error_response(403, oa));
	if (may_not_find(r, md->input))
		respond(responses, 404, error_response(404, oa));
	if (r->body != ROUTE_BODY_NONE) {
		json_t *c = json_response("A conflict with what is stored; "
		                          "error.details, when present, is what "
		                          "is in the way.",
		    error_schema(ref_to(md->output, 0, oa)));
		headers_common(c, 1, oa);
		respond(responses, 409, c);
		respond(responses, 408, error_response(408, oa));
		respond(responses, 413, error_response(413, oa));
	}
	respond(responses, 429, error_response(429, oa));
	respond(responses, 503, error_response(503, oa));
	json_object_set_new(responses, "default",
	    json_response("An unexpected error (500, 502, 504).", error_ref()));
}

/* The partner's order webhook body (services/api/webhook_body.h): parsed
 * by the server from the raw bytes, so not a message of its own. */
static json_t *
webhook_body_schema(void)
{
	return (json_pack(
	    "{s:s,s:s,s:[s,s,s,s],s:{s:{s:s,s:i,s:i},s:{s:s,s:s,s:i},"
	    "s:{s:s,s:s,s:i},s:{s:s,s:s,s:i,s:s},s:o,s:o,s:{s:s,s:s,s:s},"
	    "s:{s:s,s:[s,s,s],s:s}}}",
	    "type", "object", "description",
	    "A flat JSON object, signed as sent (X-Partner-Signature). "
	    "editor_id or its alias user_id is required.",
	    "required", "order_id", "advertiser_id", "amount", "commission",
	    "properties",
	    "order_id", "type", "string", "minLength", 1, "maxLength", 64,
	    "advertiser_id", "type", "integer", "format", "int64", "minimum", 1,
	    "editor_id", "type", "integer", "format", "int64", "minimum", 1,
	    "user_id", "type", "integer", "format", "int64", "minimum", 1,
	    "description", "the seed's name for editor_id",
	    "amount", money_schema(), "commission", money_schema(),
	    "currency", "type", "string", "pattern", "^[A-Z]{3}$",
	    "description", "ISO 4217; the advertiser's currency when left out",
	    "status", "type", "string", "enum", "pending", "approved",
	    "declined", "description", "pending when left out"));
}

static json_t *
operation(const struct route *r, struct oa *oa)
{
	const ProtobufCMethodDescriptor *md =
	    protobuf_c_service_descriptor_get_method_by_name(r->service, r->rpc);
	const ProtobufCMessageDescriptor *in = md->input;
	json_t *params = json_array(), *responses = json_object(), *op, *ok;
	char op_id[160];

	for (unsigned i = 0; i < in->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &in->fields[i];
		int path = is_path_param(r, f->name);
		if (!path && (r->body != ROUTE_BODY_NONE ||
		                 f->type == PROTOBUF_C_TYPE_MESSAGE ||
		                 f->label == PROTOBUF_C_LABEL_REPEATED))
			continue;
		json_array_append_new(params,
		    json_pack("{s:s,s:s,s:b,s:o}", "name", f->name, "in",
		        path ? "path" : "query", "required", path, "schema",
		        schema_of_field(in, f, 1, oa)));
	}
	switch (r->render) {
	case ROUTE_RENDER_HEALTH:
		ok = json_response("The server answers and its store serves.",
		    json_pack("{s:s,s:[s],s:b,s:{s:{s:s,s:[s]}}}", "type",
		        "object", "required", "status", "additionalProperties", 0,
		        "properties", "status", "type", "string", "enum", "ok"));
		break;
	case ROUTE_RENDER_LIST: {
		const ProtobufCFieldDescriptor *lf =
		    protobuf_c_message_descriptor_get_field_by_name(
		        md->output, r->list_field);
		ok = json_response("One page, in id order.",
		    schema_of_field(md->output, lf, 0, oa));
		header_add(ok, "Link", oa);
		break;
	}
	case ROUTE_RENDER_WEBHOOK: {
		const ProtobufCFieldDescriptor *of =
		    protobuf_c_message_descriptor_get_field_by_name(
		        md->output, "order");
		json_t *dup = json_response(
		    "A duplicate order_id with the same content: the stored order.",
		    ref_to(of->descriptor, 0, oa));
		headers_common(dup, 1, oa);
		respond(responses, 200, dup);
		ok = json_response("A new order, stored.",
		    ref_to(of->descriptor, 0, oa));
		/* One form per request: X-Partner-Signature (or its
		 * alias Stripe-Signature), or the three Standard Webhooks
		 * headers; none of them alone is required. */
		for (size_t i = 0; i < sizeof(webhook_headers) /
		         sizeof(webhook_headers[0]); i++)
			json_array_append_new(params,
			    json_pack("{s:s,s:s,s:b,s:s,s:{s:s}}", "name",
			        webhook_headers[i][0], "in", "header", "required", 0,
			        "description", webhook_headers[i][1], "schema",
			        "type", "string"));
		break;
	}
	default:
		ok = json_response("Success.", ref_to(md->output, 0, oa));
		break;
	}
	headers_common(ok, 1, oa);
	respond(responses, r->status, ok);
	route_errors(r, md, responses, oa);
	snprintf(op_id, sizeof(op_id), "%s_%s", r->service->short_name, r->rpc);
	if (json_object_get(oa->op_ids, op_id) != NULL) {
		/* Two routes for one method: the second is named by its HTTP
		 * method as well. */
		size_t n = strlen(op_id);
		snprintf(op_id + n, sizeof(op_id) - n, "_%s", r->method);
	}
	json_object_set_new(oa->op_ids, op_id, json_true());
	op = json_pack("{s:s,s:s,s:o,s:o}", "summary", r->summary,
	    "operationId", op_id, "parameters", params, "responses", responses);
	if (r->render == ROUTE_RENDER_HEALTH || r->body == ROUTE_BODY_WEBHOOK)
		json_object_set_new(op, "security", json_array()); /* none */
	if (r->body == ROUTE_BODY_JSON || r->body == ROUTE_BODY_PATCH)
		json_object_set_new(op, "requestBody",
		    json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content",
		        "application/json", "schema", ref_to(in, 1, oa)));
	if (r->body == ROUTE_BODY_WEBHOOK)
		json_object_set_new(op, "requestBody",
		    json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content",
		        "application/json", "schema", webhook_body_schema()));
	return (op);
}

/* The bridge's own paths (not in the route table): this document, the
 * probes and the metrics. They take no key. */
static void
bridge_paths(json_t *paths, struct oa *oa)
{
	json_t *r, *bad = error_response(400, oa);

	r = json_pack("{s:s,s:{s:{s:{s:s}}}}", "description",
	    "The OpenAPI 3 document", "content", "application/json", "schema",
	    "type", "object");
	headers_common(r, 0, oa);
	json_object_set_new(paths, "/openapi.json",
	    json_pack("{s:{s:s,s:s,s:[],s:{s:o,s:o}}}", "get", "summary",
	        "This description", "operationId", "OpenAPI", "security",
	        "responses", "200", r, "400", json_incref(bad)));

	r = json_response("The bridge process is up (it does not ask the "
	                  "server).",
	    json_pack("{s:s,s:[s],s:{s:{s:s,s:[s]}}}", "type", "object",
	        "required", "status", "properties", "status", "type", "string",
	        "enum", "ok"));
	headers_common(r, 0, oa);
	json_object_set_new(paths, "/livez",
	    json_pack("{s:{s:s,s:s,s:[],s:{s:o,s:o}}}", "get", "summary",
	        "Liveness of the bridge", "operationId", "Livez", "security",
	        "responses", "200", r, "400", json_incref(bad)));

	json_object_set_new(oa->schemas, "Readiness",
	    json_pack("{s:s,s:[s],s:b,s:{s:{s:s,s:[s,s]},s:{s:s}}}", "type",
	        "object", "required", "status", "additionalProperties", 0,
	        "properties", "status", "type", "string", "enum", "ok",
	        "not ready", "reason", "type", "string"));
	r = json_response("The server answers, its store serves and Redis "
	                  "(when configured) serves.",
	    json_pack("{s:s}", "$ref", "#/components/schemas/Readiness"));
	headers_common(r, 0, oa);
	{
		json_t *nr = json_response("Not ready; reason says why.",
		    json_pack("{s:s}", "$ref", "#/components/schemas/Readiness"));
		headers_common(nr, 0, oa);
		header_add(nr, "Retry-After", oa);
		json_object_set_new(paths, "/readyz",
		    json_pack("{s:{s:s,s:s,s:[],s:{s:o,s:o,s:o}}}", "get",
		        "summary", "Readiness: may this bridge take traffic",
		        "operationId", "Readyz", "security", "responses", "200",
		        r, "400", json_incref(bad), "503", nr));
	}

	r = json_pack("{s:s,s:{s:{s:{s:s}}}}", "description",
	    "Prometheus text format (version 0.0.4)", "content", "text/plain",
	    "schema", "type", "string");
	headers_common(r, 0, oa);
	json_object_set_new(paths, "/metrics",
	    json_pack("{s:{s:s,s:s,s:[],s:{s:o,s:o,s:o}}}", "get", "summary",
	        "The bridge's counters (served on a loopback bridge only)",
	        "operationId", "Metrics", "security", "responses", "200", r,
	        "400", json_incref(bad), "404",
	        error_response(404, oa)));
	json_decref(bad);
}

/* The server URL: the bridge's own address, as a variable a client may
 * change (it may be behind a proxy or on another name). */
static json_t *
servers(const char *listen, int tls)
{
	char host[160];
	const char *colon = strrchr(listen, ':');
	const char *port = colon != NULL ? colon + 1 : listen;

	if (colon == NULL || strncmp(listen, "0.0.0.0:", 8) == 0 ||
	    strncmp(listen, "[::]:", 5) == 0)
		snprintf(host, sizeof(host), "localhost:%.16s", port);
	else
		snprintf(host, sizeof(host), "%.150s", listen);
	return (json_pack("[{s:s,s:s,s:{s:{s:s,s:[s,s]},s:{s:s}}}]", "url",
	    "{scheme}://{host}", "description", "this bridge", "variables",
	    "scheme", "default", tls ? "https" : "http", "enum", "http",
	    "https", "host", "default", host));
}

char *
openapi_build(const char *listen, int tls)
{
	struct oa oa;
	json_t *doc, *paths = json_object();
	char method[8], *text;

	oa.schemas = json_object();
	oa.responses = json_object();
	oa.headers = json_object();
	oa.op_ids = json_object();
	for (size_t i = 0; i < route_count; i++) {
		const struct route *r = &route_table[i];
		json_t *item = json_object_get(paths, r->path);
		size_t k;

		if (item == NULL) {
			item = json_object();
			json_object_set_new(paths, r->path, item);
		}
		for (k = 0; r->method[k] != '\0' && k < sizeof(method) - 1; k++)
			method[k] = (char)(r->method[k] | 0x20); /* lower case */
		method[k] = '\0';
		json_object_set_new(item, method, operation(r, &oa));
	}
	bridge_paths(paths, &oa);
	json_object_set_new(oa.schemas, "Error", error_schema(json_pack(
	    "{s:s,s:s}", "type", "object", "description",
	    "What is in the way, when the server says (a 409's existing "
	    "application)")));
	json_decref(oa.op_ids);
	doc = json_pack("{s:s,s:{s:s,s:s,s:s,s:{s:s,s:s}},s:o,s:[{s:[]}, {}],"
	                "s:o,s:{s:o,s:o,s:o,s:{s:{s:s,s:s,s:s,s:s}}}}",
	    "openapi", "3.0.3", "info", "title", "Affiliate platform API",
	    "version", AFFILIATE_VERSION, "description",
	    "Editors browse advertisers, apply to them and earn commission on "
	    "orders that advertisers report through signed webhooks. Every "
	    "error is {\"error\":{\"code\",\"message\",\"request_id\"}}, with "
	    "the HTTP status of grpc-gateway's mapping of the code. Money is "
	    "a JSON number written with exactly two decimals (49.90), exact "
	    "to the cent; timestamps are RFC 3339 in UTC. Lists take "
	    "?limit=&after= and send Link: <...>; rel=\"next\" while more "
	    "follow.",
	    /* The project has no licence file: proprietary, said the way
	     * npm says it. Change both lines with the project's licence. */
	    "license", "name", "UNLICENSED (proprietary: no licence is granted)",
	    "url", "https://docs.npmjs.com/cli/configuring-npm/package-json#license",
	    "servers", servers(listen, tls), "security", "bearerKey", "paths",
	    paths, "components", "schemas", oa.schemas, "responses",
	    oa.responses, "headers", oa.headers, "securitySchemes",
	    "bearerKey", "type", "http", "scheme", "bearer", "bearerFormat",
	    "aff_<id>_<64 hex>", "description",
	    "An API key (affiliate keys create). Required on a bridge "
	    "reachable from other hosts or with --auth on; an editor's key "
	    "scopes every call to its editor; admin calls need an admin key. "
	    "A call without a key is allowed where keys are not required.");
	if (doc == NULL)
		return (NULL);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return (text);
}
