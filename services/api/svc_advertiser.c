/*
 * svc_advertiser.c - AdvertiserService: browse the advertisers' programmes,
 * all of them or those an editor may join. Both methods read only the
 * catalog, so their replies are cached (see rpc.h).
 */
#include "aff_err.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "services.h"

static int
list_advertisers(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__ListAdvertisersRequest *in = (const void *)in_;
	Affiliate__V1__ListAdvertisersResponse *resp;
	struct store_advertiser_query q;
	int rv, more;

	if ((rv = svc_check_page(call, in->limit, in->after, &q.limit)) !=
	        AFF_OK ||
	    (rv = svc_check_editor(call, in->editor_id)) != AFF_OK)
		return (rv);
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__list_advertisers_response__init(resp);
	q.editor_id = in->editor_id;
	q.after = in->after;
	rv = call->store->ops->advertiser_list(call->store, &q, &call->arena,
	    &resp->advertisers, &resp->n_advertisers, &more);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
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
	if ((rv = svc_check_editor(call, in->editor_id)) != AFF_OK)
		return (rv);
	rv = call->store->ops->advertiser_get(
	    call->store, in->id, &call->arena, &adv);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(
		    call, rv, "no advertiser with id %lld", (long long)in->id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	if (in->editor_id > 0) {
		rv = call->store->ops->eligible(call->store, in->editor_id, in->id);
		if (rv == AFF_PERMISSION_DENIED)
			return (rpc_errorf(call, rv,
			    "editor %lld is not eligible for advertiser %lld",
			    (long long)in->editor_id, (long long)in->id));
		if (rv != AFF_OK)
			return (svc_store_failed(call, rv));
	}
	*out = &adv->base;
	return (AFF_OK);
}

static const struct rpc_method_def advertiser_methods[] = {
	{ .name = "ListAdvertisers", .fn = list_advertisers, .cacheable = 1,
	    .scope = AUTH_SCOPE_CHECK },
	{ .name = "GetAdvertiser", .fn = get_advertiser, .cacheable = 1,
	    .scope = AUTH_SCOPE_CHECK },
};

const struct rpc_service_def svc_advertiser_def = {
	.desc = &affiliate__v1__advertiser_service__descriptor,
	.methods = advertiser_methods,
	.n_methods = sizeof(advertiser_methods) / sizeof(advertiser_methods[0]),
};
