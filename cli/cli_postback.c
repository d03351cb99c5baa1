/* cli_postback.c - see cli_postback.h. */
#include "cli_postback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_util.h"
#include "affiliate/v1/postback.pb-c.h"

#define SVC (&affiliate__v1__postback_service__descriptor)

static int
bad(const char *msg, const char *arg)
{
	fprintf(stderr, "affiliate: postbacks: %s%s%s\n", msg,
	    arg != NULL ? ": " : "", arg != NULL ? arg : "");
	return (2);
}

/* The id in argv[1] (one id and nothing more); -1 when malformed. */
static int64_t
one_id(int argc, char **argv)
{
	int64_t id;

	if (argc != 2 || aff_parse_int64(argv[1], 1, INT64_MAX, &id) != AFF_OK)
		return (-1);
	return (id);
}

static int
create(int argc, char **argv, const struct cli_postback_opts *o,
    cli_postback_call_fn *call, void *ctx)
{
	Affiliate__V1__CreatePostbackEndpointRequest req =
	    AFFILIATE__V1__CREATE_POSTBACK_ENDPOINT_REQUEST__INIT;
	char *events[8], *copy, *save = NULL;
	size_t n = 0;
	int rv;

	if (argc != 3)
		return (bad("create takes URL EVENT[,EVENT...]", NULL));
	if ((copy = strdup(argv[2])) == NULL)
		return (1);
	for (char *t = strtok_r(copy, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		if (n == sizeof(events) / sizeof(events[0])) {
			free(copy);
			return (bad("too many events", argv[2]));
		}
		events[n++] = t;
	}
	req.editor_id = o->editor;
	req.url = argv[1];
	req.events = events;
	req.n_events = n;
	rv = call(ctx, SVC, "CreatePostbackEndpoint", &req.base);
	free(copy);
	return (rv);
}

int
cli_postback(int argc, char **argv, const struct cli_postback_opts *o,
    cli_postback_call_fn *call, void *ctx)
{
	Affiliate__V1__PostbackEndpointRef ref =
	    AFFILIATE__V1__POSTBACK_ENDPOINT_REF__INIT;
	const char *w;

	argc--;
	argv++;
	if (argc < 1)
		return (bad("say create, list, delete, rotate, enable, attempts "
		            "or redeliver",
		    NULL));
	w = argv[0];
	if (strcmp(w, "create") == 0)
		return (create(argc, argv, o, call, ctx));
	if (strcmp(w, "list") == 0) {
		Affiliate__V1__ListPostbackEndpointsRequest req =
		    AFFILIATE__V1__LIST_POSTBACK_ENDPOINTS_REQUEST__INIT;
		if (argc != 1)
			return (bad("list takes no argument", argv[1]));
		req.editor_id = o->editor;
		return (call(ctx, SVC, "ListPostbackEndpoints", &req.base));
	}
	if (strcmp(w, "attempts") == 0) {
		Affiliate__V1__ListPostbackAttemptsRequest req =
		    AFFILIATE__V1__LIST_POSTBACK_ATTEMPTS_REQUEST__INIT;
		if ((req.endpoint_id = one_id(argc, argv)) < 0)
			return (bad("attempts takes an endpoint id", NULL));
		req.limit = (int32_t)o->limit;
		req.after = o->after;
		return (call(ctx, SVC, "ListPostbackAttempts", &req.base));
	}
	if (strcmp(w, "redeliver") == 0) {
		Affiliate__V1__RedeliverPostbackRequest req =
		    AFFILIATE__V1__REDELIVER_POSTBACK_REQUEST__INIT;
		if ((req.delivery_id = one_id(argc, argv)) < 0)
			return (bad("redeliver takes a delivery id", NULL));
		return (call(ctx, SVC, "RedeliverPostback", &req.base));
	}
	if (strcmp(w, "delete") == 0 || strcmp(w, "rotate") == 0 ||
	    strcmp(w, "enable") == 0) {
		if ((ref.id = one_id(argc, argv)) < 0)
			return (bad("takes an endpoint id", w));
		return (call(ctx, SVC,
		    w[0] == 'd'   ? "DeletePostbackEndpoint"
		        : w[0] == 'r' ? "RotatePostbackSecret"
		                      : "EnablePostbackEndpoint",
		    &ref.base));
	}
	return (bad("unknown command", w));
}
