/*
 * cli_catalog.c - see cli_catalog.h. A field is given as FIELD=VALUE,
 * named as in the request message (and in the REST body), so one
 * parser, walking the message's descriptor, serves every command; an
 * update sends the names given as its update_mask, so a field left out
 * is left as it is.
 */
#include "cli_catalog.h"

#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_util.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"

#define CATALOG (&affiliate__v1__catalog_service__descriptor)

/*
 * Sets req's fields from words FIELD=VALUE (argv[first..]); when mask is
 * not NULL, *mask gets the names, in order (caller frees the array, the
 * names point into argv). Returns 0 or the usage error's 2.
 */
static int
set_fields(struct cli *c, int first, ProtobufCMessage *req, char ***mask,
    size_t *n_mask)
{
	const ProtobufCMessageDescriptor *d = req->descriptor;
	int64_t n;

	if (mask != NULL) {
		*n_mask = 0;
		if ((*mask = calloc((size_t)c->argc + 1, sizeof(char *))) == NULL)
			return (2);
	}
	if (c->argc <= first)
		return (usage_error("%s %s needs FIELD=VALUE words", c->argv[0],
		    c->argv[1]));
	for (int i = first; i < c->argc; i++) {
		char *w = c->argv[i], *eq = strchr(w, '=');
		const ProtobufCFieldDescriptor *f;
		void *p;

		if (eq == NULL)
			return (usage_error("'%s' is not FIELD=VALUE", w));
		*eq = '\0';
		f = protobuf_c_message_descriptor_get_field_by_name(d, w);
		if (f == NULL || strcmp(w, "id") == 0 ||
		    strcmp(w, "update_mask") == 0 ||
		    f->label == PROTOBUF_C_LABEL_REPEATED)
			return (usage_error("%s %s has no field '%s'", c->argv[0],
			    c->argv[1], w));
		p = (char *)req + f->offset;
		switch (f->type) {
		case PROTOBUF_C_TYPE_STRING:
			*(char **)p = eq + 1;
			break;
		case PROTOBUF_C_TYPE_INT32:
			if (aff_parse_int64(eq + 1, INT32_MIN, INT32_MAX, &n) != AFF_OK)
				return (usage_error("%s must be an integer, not '%s'", w,
				    eq + 1));
			*(int32_t *)p = (int32_t)n;
			break;
		case PROTOBUF_C_TYPE_BOOL:
			if (strcmp(eq + 1, "true") != 0 && strcmp(eq + 1, "false") != 0)
				return (usage_error("%s must be true or false, not '%s'",
				    w, eq + 1));
			*(protobuf_c_boolean *)p = strcmp(eq + 1, "true") == 0;
			break;
		default:
			return (usage_error("%s cannot be given here", w));
		}
		if (mask != NULL)
			(*mask)[(*n_mask)++] = w;
	}
	return (0);
}

/* "NOUN update ID FIELD=VALUE...": the id, or the usage error. */
static int
update_id(struct cli *c, int64_t *id)
{
	if (c->argc < 3 ||
	    aff_parse_int64(c->argv[2], 1, INT64_MAX, id) != AFF_OK)
		return (usage_error("%s update needs an id (a positive integer) "
		                    "before its FIELD=VALUE words",
		    c->argv[0]));
	return (0);
}

int
cli_catalog_advertisers(struct cli *c)
{
	int rv;

	if (strcmp(c->argv[1], "create") == 0) {
		Affiliate__V1__CreateAdvertiserRequest req =
		    AFFILIATE__V1__CREATE_ADVERTISER_REQUEST__INIT;
		if ((rv = set_fields(c, 2, &req.base, NULL, NULL)) != 0)
			return (rv);
		return (cli_call(c, CATALOG, "CreateAdvertiser", &req.base));
	} else {
		Affiliate__V1__UpdateAdvertiserRequest req =
		    AFFILIATE__V1__UPDATE_ADVERTISER_REQUEST__INIT;
		if ((rv = update_id(c, &req.id)) == 0 &&
		    (rv = set_fields(c, 3, &req.base, &req.update_mask,
		         &req.n_update_mask)) == 0)
			rv = cli_call(c, CATALOG, "UpdateAdvertiser", &req.base);
		free(req.update_mask);
		return (rv);
	}
}

int
cli_catalog_editors(struct cli *c)
{
	int rv;

	if (c->argc >= 2 && strcmp(c->argv[1], "create") == 0) {
		Affiliate__V1__CreateEditorRequest req =
		    AFFILIATE__V1__CREATE_EDITOR_REQUEST__INIT;
		if ((rv = set_fields(c, 2, &req.base, NULL, NULL)) != 0)
			return (rv);
		return (cli_call(c, CATALOG, "CreateEditor", &req.base));
	}
	if (c->argc >= 2 && strcmp(c->argv[1], "update") == 0) {
		Affiliate__V1__UpdateEditorRequest req =
		    AFFILIATE__V1__UPDATE_EDITOR_REQUEST__INIT;
		if ((rv = update_id(c, &req.id)) == 0 &&
		    (rv = set_fields(c, 3, &req.base, &req.update_mask,
		         &req.n_update_mask)) == 0)
			rv = cli_call(c, CATALOG, "UpdateEditor", &req.base);
		free(req.update_mask);
		return (rv);
	}
	return (usage_error("editors needs a command: create, update"));
}

int
cli_catalog_eligibility(struct cli *c)
{
	Affiliate__V1__EligibilityRequest req =
	    AFFILIATE__V1__ELIGIBILITY_REQUEST__INIT;
	int grant;

	if (c->argc < 2 || (strcmp(c->argv[1], "grant") != 0 &&
	                       strcmp(c->argv[1], "revoke") != 0))
		return (usage_error("eligibility needs a command: grant, revoke"));
	grant = strcmp(c->argv[1], "grant") == 0;
	if (c->argc != 4 ||
	    aff_parse_int64(c->argv[2], 1, INT64_MAX, &req.editor_id) != AFF_OK ||
	    aff_parse_int64(c->argv[3], 1, INT64_MAX, &req.advertiser_id) !=
	        AFF_OK)
		return (usage_error("eligibility %s takes EDITOR ADVERTISER (two "
		                    "positive integers)",
		    c->argv[1]));
	return (cli_call(c, CATALOG,
	    grant ? "GrantEligibility" : "RevokeEligibility", &req.base));
}

int
cli_catalog_order_get(struct cli *c)
{
	Affiliate__V1__GetOrderRequest req = AFFILIATE__V1__GET_ORDER_REQUEST__INIT;

	if (c->argc != 3)
		return (usage_error("orders get takes one ORDER_ID"));
	req.order_id = c->argv[2];
	return (cli_call(c, &affiliate__v1__order_service__descriptor,
	    "GetOrder", &req.base));
}
