/*
 * svc_postback.c - PostbackService: editors register the endpoints their
 * postbacks go to, read each endpoint's delivery log and send a delivery
 * again. An editor key acts on its own editor's endpoints only (another
 * editor's are answered as if they did not exist); an admin key, or a
 * caller on a server that requires no key, on any. A secret is in the
 * reply once (create, rotate) and never in a log line or a stored answer.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_postback.h"
#include "affiliate/v1/postback.pb-c.h"
#include "services.h"

#define ATTEMPTS_DEFAULT 100
#define ATTEMPTS_MAX 1000

/* AFF_OK when the caller may act on editor_id's endpoints. */
static int
may_act(const struct rpc_call *call, int64_t editor_id)
{
	return (call->caller.role != AUTH_EDITOR ||
	    call->caller.editor_id == editor_id);
}

/* The endpoint id names, the caller's to act on; else the error answered. */
static int
endpoint_of_caller(struct rpc_call *call, int64_t id,
    Affiliate__V1__PostbackEndpoint **out)
{
	int rv;

	if (id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "id must be a positive integer"));
	rv = call->store->ops->postback_endpoint_get(
	    call->store, id, &call->arena, out);
	if (rv == AFF_OK && !may_act(call, (*out)->editor_id))
		rv = AFF_NOT_FOUND;
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no postback endpoint with id %lld",
		    (long long)id));
	return (rv == AFF_OK ? AFF_OK : svc_store_failed(call, rv));
}

/* Checks the URL (and, unless private targets are allowed, where it
 * resolves); else INVALID_ARGUMENT answered. */
static int
check_url(struct rpc_call *call, const char *url)
{
	const struct svc_app *app = call->app;
	struct aff_postback_url u;
	char err[256], ip[64];
	int rv;

	if (aff_postback_url_parse(url, &u, err, sizeof(err)) != AFF_OK)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT, "%s", err));
	if (app->postback_allow_private)
		return (AFF_OK);
	/* Checked again at every delivery (the name may point elsewhere by
	 * then); here it tells the editor at once. */
	if ((rv = aff_postback_resolve(&u, 0, ip, err, sizeof(err))) != AFF_OK)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT, "%s", err));
	return (AFF_OK);
}

/* The event types as the stored list, in their fixed order; else
 * INVALID_ARGUMENT answered. */
static int
check_events(struct rpc_call *call, char *const *events, size_t n,
    char *csv, size_t cap)
{
	unsigned mask = 0, bit;

	if (n == 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "events must name at least one of %s, %s, %s",
		    aff_postback_types[0], aff_postback_types[1],
		    aff_postback_types[2]));
	for (size_t i = 0; i < n; i++) {
		if ((bit = aff_postback_type_bit(events[i])) == 0)
			return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
			    "unknown event type '%.64s' (known: %s, %s, %s)",
			    events[i], aff_postback_types[0],
			    aff_postback_types[1], aff_postback_types[2]));
		mask |= bit;
	}
	csv[0] = '\0';
	for (int i = 0; i < AFF_POSTBACK_N_TYPES; i++)
		if (mask & (1u << i)) {
			size_t l = strlen(csv);
			snprintf(csv + l, cap - l, "%s%s", l > 0 ? "," : "",
			    aff_postback_types[i]);
		}
	return (AFF_OK);
}

/* The reply with the secret, and the stored answer without it (the same
 * request again makes nothing new but cannot show the secret again). */
static int
secret_reply(struct rpc_call *call, Affiliate__V1__PostbackEndpoint *e,
    char *secret, const char *what, ProtobufCMessage **out)
{
	Affiliate__V1__PostbackEndpointSecret *resp, *replay;

	resp = aff_arena_alloc(&call->arena, sizeof(*resp));
	replay = aff_arena_alloc(&call->arena, sizeof(*replay));
	if (resp == NULL || replay == NULL) {
		OPENSSL_cleanse(secret, AFF_POSTBACK_SECRET_MAX);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	affiliate__v1__postback_endpoint_secret__init(resp);
	affiliate__v1__postback_endpoint_secret__init(replay);
	resp->endpoint = replay->endpoint = e;
	resp->secret = aff_arena_strdup(&call->arena, secret);
	OPENSSL_cleanse(secret, AFF_POSTBACK_SECRET_MAX);
	if (resp->secret == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	call->replay.set = 1;
	call->replay.code = AFF_ALREADY_EXISTS;
	call->replay.message = aff_arena_printf(&call->arena,
	    "postback endpoint %lld was %s by this request_id; its secret was "
	    "shown once and cannot be shown again",
	    (long long)e->id, what);
	call->replay.payload = &replay->base;
	*out = &resp->base;
	return (AFF_OK);
}

static int
create_endpoint(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__CreatePostbackEndpointRequest *in = (const void *)in_;
	Affiliate__V1__PostbackEndpoint *e;
	char csv[128], secret[AFF_POSTBACK_SECRET_MAX];
	int rv;

	if (in->editor_id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "editor_id must be a positive integer"));
	if ((rv = check_url(call, in->url)) != AFF_OK ||
	    (rv = check_events(call, in->events, in->n_events, csv,
	         sizeof(csv))) != AFF_OK ||
	    (rv = svc_check_editor(call, in->editor_id)) != AFF_OK)
		return (rv);
	if (aff_postback_secret_new(secret) != AFF_OK)
		return (rpc_errorf(call, AFF_INTERNAL, "no random bytes"));
	rv = call->store->ops->postback_endpoint_create(call->store,
	    in->editor_id, in->url, csv, secret, &call->arena, &e);
	if (rv != AFF_OK) {
		OPENSSL_cleanse(secret, sizeof(secret));
		if (rv == AFF_NOT_FOUND)
			return (rpc_errorf(call, rv, "no editor with id %lld",
			    (long long)in->editor_id));
		if (rv == AFF_FAILED_PRECONDITION)
			return (rpc_errorf(call, rv,
			    "editor %lld has %d postback endpoints, the most "
			    "one may have: delete one first",
			    (long long)in->editor_id,
			    STORE_POSTBACK_ENDPOINTS_MAX));
		return (svc_store_failed(call, rv));
	}
	aff_info("postbacks: endpoint %lld of editor %lld made (%s) by key "
	         "%lld",
	    (long long)e->id, (long long)e->editor_id, csv,
	    (long long)call->caller.key_id);
	return (secret_reply(call, e, secret, "made", out));
}

static int
list_endpoints(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__ListPostbackEndpointsRequest *in = (const void *)in_;
	Affiliate__V1__ListPostbackEndpointsResponse *resp;
	int rv;

	if ((rv = svc_check_filter_id(call, in->editor_id, "editor_id")) !=
	    AFF_OK)
		return (rv);
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__list_postback_endpoints_response__init(resp);
	rv = call->store->ops->postback_endpoint_list(call->store, in->editor_id,
	    &call->arena, &resp->endpoints, &resp->n_endpoints);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	*out = &resp->base;
	return (AFF_OK);
}

static int
delete_endpoint(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__PostbackEndpointRef *in = (const void *)in_;
	Affiliate__V1__PostbackEndpoint *e;
	int rv;

	if ((rv = endpoint_of_caller(call, in->id, &e)) != AFF_OK)
		return (rv);
	rv = call->store->ops->postback_endpoint_delete(
	    call->store, in->id, &call->arena, &e);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no postback endpoint with id %lld",
		    (long long)in->id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	aff_info("postbacks: endpoint %lld deleted by key %lld",
	    (long long)in->id, (long long)call->caller.key_id);
	*out = &e->base;
	return (AFF_OK);
}

static int
rotate_secret(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__PostbackEndpointRef *in = (const void *)in_;
	Affiliate__V1__PostbackEndpoint *e;
	char secret[AFF_POSTBACK_SECRET_MAX];
	int rv;

	if ((rv = endpoint_of_caller(call, in->id, &e)) != AFF_OK)
		return (rv);
	if (aff_postback_secret_new(secret) != AFF_OK)
		return (rpc_errorf(call, AFF_INTERNAL, "no random bytes"));
	rv = call->store->ops->postback_endpoint_rotate(
	    call->store, in->id, secret, &call->arena, &e);
	if (rv != AFF_OK) {
		OPENSSL_cleanse(secret, sizeof(secret));
		return (rv == AFF_NOT_FOUND
		        ? rpc_errorf(call, rv, "no postback endpoint with id %lld",
		              (long long)in->id)
		        : svc_store_failed(call, rv));
	}
	aff_info("postbacks: endpoint %lld has a new secret (by key %lld)",
	    (long long)in->id, (long long)call->caller.key_id);
	return (secret_reply(call, e, secret, "given a new secret", out));
}

static int
enable_endpoint(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__PostbackEndpointRef *in = (const void *)in_;
	Affiliate__V1__PostbackEndpoint *e;
	int rv;

	if ((rv = endpoint_of_caller(call, in->id, &e)) != AFF_OK)
		return (rv);
	rv = call->store->ops->postback_endpoint_enable(
	    call->store, in->id, &call->arena, &e);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	*out = &e->base;
	return (AFF_OK);
}

static int
list_attempts(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__ListPostbackAttemptsRequest *in = (const void *)in_;
	Affiliate__V1__ListPostbackAttemptsResponse *resp;
	Affiliate__V1__PostbackEndpoint *e;
	int rv, limit, more;

	if (in->limit < 0 || in->limit > ATTEMPTS_MAX)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "limit must be between 1 and %d", ATTEMPTS_MAX));
	if (in->after < 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "after must be an attempt id (0 or more)"));
	if ((rv = endpoint_of_caller(call, in->endpoint_id, &e)) != AFF_OK)
		return (rv);
	limit = in->limit > 0 ? in->limit : ATTEMPTS_DEFAULT;
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__list_postback_attempts_response__init(resp);
	rv = call->store->ops->postback_attempt_list(call->store,
	    in->endpoint_id, in->after, limit, &call->arena, &resp->attempts,
	    &resp->n_attempts, &more);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	if (more && resp->n_attempts > 0)
		resp->next_after = resp->attempts[resp->n_attempts - 1]->id;
	*out = &resp->base;
	return (AFF_OK);
}

static int
redeliver(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__RedeliverPostbackRequest *in = (const void *)in_;
	Affiliate__V1__PostbackDelivery *d;
	int64_t editor = 0;
	int rv;

	if (in->delivery_id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "delivery_id must be a positive integer"));
	rv = call->store->ops->postback_delivery_get(
	    call->store, in->delivery_id, &call->arena, &d, &editor);
	if (rv == AFF_OK && !may_act(call, editor))
		rv = AFF_NOT_FOUND;
	if (rv == AFF_OK)
		rv = call->store->ops->postback_redeliver(
		    call->store, in->delivery_id, &call->arena, &d);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no postback delivery with id %lld",
		    (long long)in->delivery_id));
	if (rv == AFF_FAILED_PRECONDITION)
		return (rpc_errorf(call, rv,
		    "delivery %lld is %s; only a delivered or dead one, to an "
		    "endpoint that still exists, is sent again",
		    (long long)in->delivery_id, d->state));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	aff_info("postbacks: delivery %lld queued again by key %lld",
	    (long long)in->delivery_id, (long long)call->caller.key_id);
	*out = &d->base;
	return (AFF_OK);
}

static const struct rpc_method_def postback_methods[] = {
	{ .name = "CreatePostbackEndpoint", .fn = create_endpoint,
	    .scope = AUTH_SCOPE_FILL, .keyed = 1 },
	{ .name = "ListPostbackEndpoints", .fn = list_endpoints,
	    .scope = AUTH_SCOPE_FILL },
	{ .name = "DeletePostbackEndpoint", .fn = delete_endpoint, .keyed = 1 },
	{ .name = "RotatePostbackSecret", .fn = rotate_secret, .keyed = 1 },
	{ .name = "EnablePostbackEndpoint", .fn = enable_endpoint, .keyed = 1 },
	{ .name = "ListPostbackAttempts", .fn = list_attempts },
	{ .name = "RedeliverPostback", .fn = redeliver, .keyed = 1 },
};

const struct rpc_service_def svc_postback_def = {
	.desc = &affiliate__v1__postback_service__descriptor,
	.methods = postback_methods,
	.n_methods = sizeof(postback_methods) / sizeof(postback_methods[0]),
};
