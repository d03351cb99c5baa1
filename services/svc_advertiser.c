/*
 * svc_advertiser.c - AdvertiserService: browse the advertisers' programmes,
 * all of them or those an editor may join. Both methods read only the
 * catalog, so their replies are cached (see rpc.h).
 */
#include "aff_err.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "services.h"

#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 1000

/* Maps a store failure to a reply; not-found cases are handled by callers. */
static int
store_failed(struct rpc_call *call, int rv)
{
	return (rpc_errorf(call, rv, "the store failed: %s", aff_strerror(rv)));
}

/* AFF_OK when editor_id is 0 (not given) or names an editor. */
static int
check_editor(struct rpc_call *call, int64_t editor_id)
{
	int rv;

	if (editor_id < 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "editor_id must be a positive integer"));
	if (editor_id == 0)
		return (AFF_OK);
	rv = call->store->ops->editor_exists(call->store, editor_id);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no editor with id %lld",
		    (long long)editor_id));
	return (rv == AFF_OK ? AFF_OK : store_failed(call, rv));
}

static int
list_advertisers(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__ListAdvertisersRequest *in = (const void *)in_;
	Affiliate__V1__ListAdvertisersResponse *resp;
	struct store_advertiser_query q;
	int rv, more;

	if (in->limit < 0 || in->limit > LIST_MAX_LIMIT)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "limit must be between 1 and %d", LIST_MAX_LIMIT));
	if (in->after < 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "after must be an advertiser id (0 or more)"));
	if ((rv = check_editor(call, in->editor_id)) != AFF_OK)
		return (rv);
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__list_advertisers_response__init(resp);
	q.editor_id = in->editor_id;
	q.after = in->after;
	q.limit = in->limit > 0 ? in->limit : LIST_DEFAULT_LIMIT;
	rv = call->store->ops->advertiser_list(call->store, &q, &call->arena,
	    &resp->advertisers, &resp->n_advertisers, &more);
	if (rv != AFF_OK)
		return (store_failed(call, rv));
	if (more && resp->n_advertisers > 0)
		resp->next_after = resp->advertisers[resp->n_advertisers - 1]->id;
	*out = &resp->base;
	return (AFF_OK);
}

static int
get_advertiser(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__GetAdvertiserRequest *in = (const void *)in_;
	Affiliate__V1__Advertiser *adv;
	int rv;

	if (in->id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "id must be a positive integer"));
	if ((rv = check_editor(call, in->editor_id)) != AFF_OK)
		return (rv);
	rv = call->store->ops->advertiser_get(
	    call->store, in->id, &call->arena, &adv);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(
		    call, rv, "no advertiser with id %lld", (long long)in->id));
	if (rv != AFF_OK)
		return (store_failed(call, rv));
	if (in->editor_id > 0) {
		rv = call->store->ops->eligible(call->store, in->editor_id, in->id);
		if (rv == AFF_PERMISSION_DENIED)
			return (rpc_errorf(call, rv,
			    "editor %lld is not eligible for advertiser %lld",
			    (long long)in->editor_id, (long long)in->id));
		if (rv != AFF_OK)
			return (store_failed(call, rv));
	}
	*out = &adv->base;
	return (AFF_OK);
}

static const struct rpc_method_def advertiser_methods[] = {
	{ .name = "ListAdvertisers", .fn = list_advertisers, .cacheable = 1 },
	{ .name = "GetAdvertiser", .fn = get_advertiser, .cacheable = 1 },
};

const struct rpc_service_def svc_advertiser_def = {
	.desc = &affiliate__v1__advertiser_service__descriptor,
	.methods = advertiser_methods,
	.n_methods = sizeof(advertiser_methods) / sizeof(advertiser_methods[0]),
};

/* Its issue has not landed: every method answers UNIMPLEMENTED. */
const struct rpc_service_def svc_order_def = {
	.desc = &affiliate__v1__order_service__descriptor,
};
