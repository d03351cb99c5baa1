/* openapi.c - see openapi.h. */
#include "openapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aff_json.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "routes.h"

static json_t *schema_of_message(
    const ProtobufCMessageDescriptor *d, json_t *components);

static json_t *
ref_to(const ProtobufCMessageDescriptor *d, json_t *components)
{
	if (json_object_get(components, d->short_name) == NULL) {
		/* Placeholder first: messages may refer to themselves. */
		json_object_set_new(components, d->short_name, json_object());
		json_object_set_new(
		    components, d->short_name, schema_of_message(d, components));
	}
	return (json_pack("{s:s+}", "$ref", "#/components/schemas/",
	    d->short_name));
}

static json_t *
schema_of_field(const ProtobufCFieldDescriptor *f, json_t *components)
{
	json_t *s;

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
		s = ref_to(f->descriptor, components);
		break;
	default:
		s = json_pack("{s:s}", "type", "string");
		break;
	}
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		s = json_pack("{s:s,s:o}", "type", "array", "items", s);
	return (s);
}

static json_t *
schema_of_message(const ProtobufCMessageDescriptor *d, json_t *components)
{
	json_t *props = json_object();

	char money[64];

	for (unsigned i = 0; i < d->n_fields; i++) {
		if (aff_json_money_name(&d->fields[i], money, sizeof(money))) {
			json_object_set_new(props, money,
			    json_pack("{s:s,s:s}", "type", "number", "description",
			        "exact to the cent: two decimals"));
			continue;
		}
		json_object_set_new(props, d->fields[i].name,
		    schema_of_field(&d->fields[i], components));
	}
	return (json_pack("{s:s,s:o}", "type", "object", "properties", props));
}

static json_t *
json_response(const char *desc, json_t *schema)
{
	return (json_pack("{s:s,s:{s:{s:o}}}", "description", desc, "content",
	    "application/json", "schema", schema));
}

static int
is_path_param(const struct route *r, const char *name)
{
	char want[64];

	snprintf(want, sizeof(want), "{%s}", name);
	return (strstr(r->path, want) != NULL);
}

static json_t *
operation(const struct route *r, json_t *components)
{
	const ProtobufCMethodDescriptor *md =
	    protobuf_c_service_descriptor_get_method_by_name(r->service, r->rpc);
	const ProtobufCMessageDescriptor *in = md->input;
	json_t *params = json_array(), *responses = json_object(), *op, *ok;
	char status[8];

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
		        schema_of_field(f, components)));
	}
	switch (r->render) {
	case ROUTE_RENDER_HEALTH:
		ok = json_response("the server answers",
		    json_pack("{s:s,s:{s:{s:s}}}", "type", "object", "properties",
		        "status", "type", "string"));
		break;
	case ROUTE_RENDER_LIST: {
		const ProtobufCFieldDescriptor *lf =
		    protobuf_c_message_descriptor_get_field_by_name(
		        md->output, r->list_field);
		ok = json_response("one page; Link: <…>; rel=\"next\" when more "
		                   "follow",
		    schema_of_field(lf, components));
		break;
	}
	case ROUTE_RENDER_WEBHOOK:
		json_object_set_new(responses, "200",
		    json_response("a duplicate order_id: the stored order",
		        ref_to(&affiliate__v1__order__descriptor, components)));
		ok = json_response("a new order, stored",
		    ref_to(&affiliate__v1__order__descriptor, components));
		json_array_append_new(params,
		    json_pack("{s:s,s:s,s:b,s:{s:s}}", "name",
		        "X-Partner-Signature", "in", "header", "required", 1,
		        "schema", "type", "string"));
		break;
	default:
		ok = json_response("success", ref_to(md->output, components));
		break;
	}
	snprintf(status, sizeof(status), "%d", r->status);
	json_object_set_new(responses, status, ok);
	json_object_set_new(responses, "default",
	    json_response("an error", json_pack("{s:s}", "$ref",
	                                  "#/components/schemas/Error")));
	op = json_pack("{s:s,s:s++,s:o,s:o}", "summary", r->summary,
	    "operationId", r->service->short_name, "_", r->rpc, "parameters",
	    params, "responses", responses);
	if (r->body == ROUTE_BODY_JSON || r->body == ROUTE_BODY_PATCH)
		json_object_set_new(op, "requestBody",
		    json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content",
		        "application/json", "schema", ref_to(in, components)));
	if (r->body == ROUTE_BODY_WEBHOOK)
		json_object_set_new(op, "requestBody",
		    json_pack("{s:b,s:{s:{s:{s:s}}}}", "required", 1, "content",
		        "application/json", "schema", "type", "object"));
	return (op);
}

char *
openapi_build(void)
{
	json_t *doc, *paths = json_object(), *components = json_object();
	char method[8], *text;

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
		json_object_set_new(item, method, operation(r, components));
	}
	json_object_set_new(paths, "/openapi.json",
	    json_pack("{s:{s:s,s:s,s:{s:{s:s}}}}", "get", "summary",
	        "This description", "operationId", "OpenAPI", "responses",
	        "200", "description", "OpenAPI 3 document"));
	json_object_set_new(components, "Error",
	    json_pack("{s:s,s:{s:{s:s,s:{s:{s:s},s:{s:s},s:{s:s}}}}}", "type",
	        "object", "properties", "error", "type", "object", "properties",
	        "code", "type", "string", "message", "type", "string",
	        "request_id", "type", "string"));
	doc = json_pack("{s:s,s:{s:s,s:s,s:s},s:o,s:{s:o}}", "openapi", "3.0.3",
	    "info", "title", "Affiliate platform API", "version",
	    AFFILIATE_VERSION, "description",
	    "Editors browse advertisers, apply to them and earn commission on "
	    "orders that advertisers report through signed webhooks. Errors "
	    "are {\"error\":{\"code\",\"message\",\"request_id\"}}.",
	    "paths", paths, "components", "schemas", components);
	if (doc == NULL)
		return (NULL);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return (text);
}
