/*
 * svc_order.c - OrderService: partners report orders through signed
 * webhooks (the signature is checked here, where the secrets are, so no
 * client can go around it); orders are committed (group commit, see
 * order_writer.h) before any success is answered, once per order_id.
 */
#include <string.h>

#include "aff_err.h"
#include "aff_util.h"
#include "aff_webhook.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "order_writer.h"
#include "services.h"
#include "webhook_body.h"

static int
receive_webhook(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__ReceiveWebhookRequest *in = (const void *)in_;
	const struct svc_app *app = call->app;
	Affiliate__V1__ReceiveWebhookResponse *resp;
	Affiliate__V1__Advertiser *adv;
	struct webhook_order o;
	struct store_order_in so;
	enum store_order_outcome outcome;
	char why[256];
	int rv;

	rv = aff_webhook_verify(app->webhook_secrets, in->signature,
	    in->body.data, in->body.len, aff_now_ms() / 1000, why, sizeof(why));
	if (rv != AFF_OK)
		return (rpc_errorf(call, rv, "%s", why));
	if (webhook_body_parse(in->body.data, in->body.len, &o, why,
	        sizeof(why)) != AFF_OK)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT, "%s", why));
	rv = call->store->ops->advertiser_get(
	    call->store, o.advertiser_id, &call->arena, &adv);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no advertiser with id %lld",
		    (long long)o.advertiser_id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	if ((rv = svc_check_editor(call, o.editor_id)) != AFF_OK)
		return (rv);
	so = (struct store_order_in){
		.order_id = o.order_id,
		.advertiser_id = o.advertiser_id,
		.editor_id = o.editor_id,
		.amount_cents = o.amount_cents,
		.commission_cents = o.commission_cents,
		.currency = o.currency,
		.status = o.status,
	};
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__receive_webhook_response__init(resp);
	rv = order_writer_put(app->orders, &so, &call->arena, &resp->order,
	    &outcome);
	if (rv == AFF_ALREADY_EXISTS)
		return (rpc_errorf(call, rv,
		    "order %s is already stored with another advertiser, editor, "
		    "amount, commission or currency",
		    o.order_id));
	if (rv == AFF_FAILED_PRECONDITION)
		return (rpc_errorf(call, rv,
		    "order %s is %s and cannot become %s", o.order_id,
		    resp->order->status, o.status));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	resp->created = outcome == STORE_ORDER_CREATED;
	*out = &resp->base;
	return (AFF_OK);
}

static int
list_orders(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__ListOrdersRequest *in = (const void *)in_;
	Affiliate__V1__ListOrdersResponse *resp;
	struct store_order_query q = { 0 };
	const char *db_id;
	int64_t next, version;
	int rv;

	if (in->status[0] != '\0' && strcmp(in->status, "pending") != 0 &&
	    strcmp(in->status, "approved") != 0 &&
	    strcmp(in->status, "declined") != 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "status must be pending, approved or declined"));
	if (in->after[0] != '\0' &&
	    aff_parse_int64(in->after, 0, INT64_MAX, &q.after) != AFF_OK)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "after must be a cursor from a previous page"));
	if (in->advertiser_id < 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "advertiser_id must be a positive integer"));
	if ((rv = svc_check_page(call, in->limit, 0, &q.limit)) != AFF_OK ||
	    (rv = svc_check_editor(call, in->editor_id)) != AFF_OK)
		return (rv);
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__list_orders_response__init(resp);
	q.editor_id = in->editor_id;
	q.advertiser_id = in->advertiser_id;
	q.status = in->status;
	/* From Redis when its copy is whole; from SQLite otherwise. */
	rv = AFF_UNAVAILABLE;
	if (cache_enabled(call->cache) &&
	    call->store->ops->orders_all_cached(call->store) == AFF_OK &&
	    call->store->ops->catalog_version(call->store, &db_id, &version) ==
	        AFF_OK)
		rv = cache_orders_list(call->cache, db_id, &q, &call->arena,
		    &resp->orders, &resp->n_orders, &next);
	if (rv != AFF_OK)
		rv = call->store->ops->order_list(call->store, &q, &call->arena,
		    &resp->orders, &resp->n_orders, &next);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	if (next != 0 &&
	    (resp->next_after = aff_arena_printf(&call->arena, "%lld",
	         (long long)next)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	*out = &resp->base;
	return (AFF_OK);
}

static const struct rpc_method_def order_methods[] = {
	{ .name = "ReceiveWebhook", .fn = receive_webhook },
	{ .name = "ListOrders", .fn = list_orders },
};

const struct rpc_service_def svc_order_def = {
	.desc = &affiliate__v1__order_service__descriptor,
	.methods = order_methods,
	.n_methods = sizeof(order_methods) / sizeof(order_methods[0]),
};
