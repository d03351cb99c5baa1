/*
 * svc_order.c - OrderService: partners report orders through signed
 * webhooks (the signature is checked here, where the secrets are, so no
 * client can go around it); orders are committed (group commit, see
 * order_writer.h) before any success is answered, once per order_id.
 */
#include <string.h>

#include "aff_err.h"
#include "aff_status.h"
#include "aff_util.h"
#include "aff_webhook.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "order_writer.h"
#include "services.h"
#include "webhook_body.h"

/* What a webhook call keeps while its order waits for the commit. */
struct webhook_call {
	struct rpc_call *call;
	struct webhook_order o;
	struct store_order_in in;
};

/* The order's batch committed (or failed): answer the call. Runs on the
 * order writer's thread. */
static void
webhook_done(void *arg, int rv, Affiliate__V1__Order *order,
    enum store_order_outcome outcome)
{
	struct webhook_call *wc = arg;
	struct rpc_call *call = wc->call;
	Affiliate__V1__ReceiveWebhookResponse *resp = NULL;
	int code = AFF_OK;

	if (rv == AFF_NOT_FOUND && outcome == STORE_ORDER_NO_ADVERTISER)
		code = rpc_errorf(call, rv, "no advertiser with id %lld",
		    (long long)wc->o.advertiser_id);
	else if (rv == AFF_NOT_FOUND)
		code = rpc_errorf(call, rv, "no editor with id %lld",
		    (long long)wc->o.editor_id);
	else if (rv == AFF_ALREADY_EXISTS)
		code = rpc_errorf(call, rv,
		    "order %s is already stored with another advertiser, editor, "
		    "amount, commission or currency",
		    wc->o.order_id);
	else if (rv == AFF_FAILED_PRECONDITION &&
	    outcome == STORE_ORDER_WRONG_CURRENCY)
		code = rpc_errorf(call, rv,
		    "advertiser %lld's programme is in %s and takes no order in "
		    "%s (an admin may allow other currencies: "
		    "allow_other_currencies)",
		    (long long)wc->o.advertiser_id, order->currency,
		    wc->o.currency);
	else if (rv == AFF_FAILED_PRECONDITION)
		code = rpc_errorf(call, rv, "order %s is %s and cannot become %s",
		    wc->o.order_id, order->status, wc->o.status);
	else if (rv != AFF_OK)
		code = svc_store_failed(call, rv);
	else if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		code = AFF_RESOURCE_EXHAUSTED;
	if (code != AFF_OK || resp == NULL) {
		rpc_call_finish(call, code != AFF_OK ? code : AFF_INTERNAL, NULL);
		return;
	}
	affiliate__v1__receive_webhook_response__init(resp);
	resp->order = order;
	resp->created = outcome == STORE_ORDER_CREATED;
	rpc_call_finish(call, AFF_OK, &resp->base);
}

/* Whether a string field holds something (a message made by hand may
 * leave one NULL; unpacked ones are ""). */
static int
given(const char *s)
{
	return (s != NULL && *s != '\0');
}

static int
receive_webhook(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__ReceiveWebhookRequest *in = (const void *)in_;
	const struct svc_app *app = call->app;
	struct aff_webhook_secrets own = { 0 };
	const struct aff_webhook_secrets *ws = app->webhook_secrets;
	struct webhook_call *wc;
	char why[256], bad_body[256];
	int64_t now = aff_now_ms() / 1000;
	int rv, body_rv;
	/* Standard Webhooks (any of its headers given) or X-Partner-
	 * Signature. */
	int standard = given(in->webhook_id) || given(in->webhook_timestamp) ||
	    given(in->webhook_signature);

	(void)out;
	if ((wc = aff_arena_alloc(&call->arena, sizeof(*wc))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	memset(&wc->o, 0, sizeof(wc->o));
	/* The body names the advertiser whose secret must have signed it, so
	 * it is read first; a bad body is answered 400 only once the
	 * signature holds (advertiser_id is kept when the parser got that
	 * far). */
	body_rv = webhook_body_parse(in->body.data, in->body.len, &wc->o,
	    bad_body, sizeof(bad_body));
	if (wc->o.advertiser_id > 0) {
		rv = call->store->ops->webhook_secrets_get(call->store,
		    wc->o.advertiser_id, now, &call->arena, own.secret,
		    AFF_WEBHOOK_MAX_SECRETS, &own.n);
		if (rv != AFF_OK)
			return (svc_store_failed(call, rv));
		/* An advertiser with secrets of its own is verified with them
		 * only: another partner's secret (or the global one) cannot
		 * post its orders. */
		if (own.n > 0)
			ws = &own;
	}
	/* One form per request: a request carrying two could be checked
	 * under one and stored under the other's promises. */
	if (standard && given(in->signature))
		return (rpc_errorf(call, AFF_UNAUTHENTICATED,
		    "two signature forms: send X-Partner-Signature (or "
		    "Stripe-Signature), or the webhook-id, webhook-timestamp and "
		    "webhook-signature headers, not both"));
	if (!standard && !given(in->signature))
		return (rpc_errorf(call, AFF_UNAUTHENTICATED,
		    "the X-Partner-Signature header is missing (or "
		    "Stripe-Signature, or the Standard Webhooks headers "
		    "webhook-id, webhook-timestamp and webhook-signature)"));
	/* The plain form never expires: refused when the operator turned it
	 * off, for everyone or for this advertiser (one indexed read, only
	 * for plain headers). */
	if (aff_webhook_is_plain(in->signature)) {
		int off = app->webhook_require_timestamp;
		if (!off && wc->o.advertiser_id > 0 &&
		    (rv = call->store->ops->webhook_policy_get(call->store,
		         wc->o.advertiser_id, &off)) != AFF_OK)
			return (svc_store_failed(call, rv));
		if (off && app->webhook_require_timestamp)
			return (rpc_errorf(call, AFF_UNAUTHENTICATED,
			    "the plain X-Partner-Signature (no timestamp) is "
			    "turned off on this server: sign as "
			    "t=<unix seconds>,v1=<hex>"));
		if (off)
			return (rpc_errorf(call, AFF_UNAUTHENTICATED,
			    "the plain X-Partner-Signature (no timestamp) is "
			    "turned off for advertiser %lld: sign as "
			    "t=<unix seconds>,v1=<hex>",
			    (long long)wc->o.advertiser_id));
	}
	if (standard)
		rv = aff_webhook_verify_standard(ws, in->webhook_id,
		    in->webhook_timestamp, in->webhook_signature, in->body.data,
		    in->body.len, now, why, sizeof(why));
	else
		rv = aff_webhook_verify(ws, in->signature, in->body.data,
		    in->body.len, now, why, sizeof(why));
	if (rv != AFF_OK)
		return (rpc_errorf(call, rv, "%s%s", why,
		    own.n > 0 ? " (checked with advertiser's own secret)" : ""));
	if (body_rv != AFF_OK)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT, "%s", bad_body));
	wc->call = call;
	wc->in = (struct store_order_in){
		.order_id = wc->o.order_id,
		.advertiser_id = wc->o.advertiser_id,
		.editor_id = wc->o.editor_id,
		.amount_cents = wc->o.amount_cents,
		.commission_cents = wc->o.commission_cents,
		.currency = wc->o.currency,
		.status = wc->o.status,
		/* The same id again answers the order it stored (store.h). */
		.webhook_id = standard ? in->webhook_id : NULL,
	};
	/* Answered by webhook_done once the order is on disk: this thread
	 * goes on to the next request meanwhile. */
	rv = order_writer_submit(app->orders, &wc->in, &call->arena,
	    webhook_done, wc);
	if (rv != AFF_OK)
		return (rpc_errorf(call, rv, "the order writer is stopping"));
	return (RPC_DEFERRED);
}

static int
list_orders(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__ListOrdersRequest *in = (const void *)in_;
	Affiliate__V1__ListOrdersResponse *resp;
	struct store_order_query q = { 0 };
	const char *db_id, *copy;
	char ns[96], words[128];
	int64_t next, version, gen;
	int rv;

	if (in->status[0] != '\0' &&
	    aff_status_parse(AFF_ORDER_STATUS, in->status) == 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT, "status must be %s",
		    aff_status_list(AFF_ORDER_STATUS, words, sizeof(words))));
	if (in->after[0] != '\0' &&
	    aff_parse_int64(in->after, 0, INT64_MAX, &q.after) != AFF_OK)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "after must be a cursor from a previous page"));
	if ((rv = svc_check_page(call, in->limit, 0, &q.limit)) != AFF_OK ||
	    (rv = svc_check_filter_id(call, in->editor_id, "editor_id")) !=
	        AFF_OK ||
	    (rv = svc_check_filter_id(call, in->advertiser_id,
	         "advertiser_id")) != AFF_OK)
		return (rv);
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__list_orders_response__init(resp);
	q.editor_id = in->editor_id;
	q.advertiser_id = in->advertiser_id;
	q.status = in->status;
	q.commission_mismatch = in->commission_mismatch;
	/* With --orders-copy on (off by default: the indexes below are
	 * faster, measured in the README's Performance section), from
	 * Redis when its copy is whole and it holds an index that
	 * seeks this page (none or one filter: its sorted set); from the
	 * database otherwise, whose per-combination indexes seek where
	 * walking one Redis set and filtering would cost O(rows in it). */
	rv = AFF_UNAVAILABLE;
	if (((const struct svc_app *)call->app)->orders_copy &&
	    !q.commission_mismatch &&
	    (q.editor_id > 0) + (q.advertiser_id > 0) + (q.status[0] != '\0') <=
	        1 &&
	    cache_enabled(call->cache) &&
	    call->store->ops->orders_all_cached(call->store, &copy, &gen) ==
	        AFF_OK &&
	    call->store->ops->catalog_version(call->store, &db_id, &version) ==
	        AFF_OK) {
		cache_orders_ns(ns, sizeof(ns), db_id, copy);
		rv = cache_orders_list(call->cache, ns, gen, &q, &call->arena,
		    &resp->orders, &resp->n_orders, &next);
	}
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

static int
get_order(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__GetOrderRequest *in = (const void *)in_;
	Affiliate__V1__Order *o;
	int rv;

	if (in->order_id[0] == '\0' ||
	    strlen(in->order_id) > WEBHOOK_ORDER_ID_MAX * 4)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "order_id must be 1 to %d characters", WEBHOOK_ORDER_ID_MAX));
	rv = call->store->ops->order_get(
	    call->store, in->order_id, &call->arena, &o);
	/* Another editor's order is answered as if there were none: an
	 * editor key learns nothing of the others'. */
	if (rv == AFF_OK && call->caller.role == AUTH_EDITOR &&
	    o->editor_id != call->caller.editor_id)
		rv = AFF_NOT_FOUND;
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no order with order_id %s",
		    in->order_id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	*out = &o->base;
	return (AFF_OK);
}

static const struct rpc_method_def order_methods[] = {
	/* Signed by the partner instead of a key. */
	{ .name = "ReceiveWebhook", .fn = receive_webhook,
	    .access = AUTH_ACCESS_OPEN },
	{ .name = "ListOrders", .fn = list_orders, .scope = AUTH_SCOPE_FILL },
	{ .name = "GetOrder", .fn = get_order },
};

const struct rpc_service_def svc_order_def = {
	.desc = &affiliate__v1__order_service__descriptor,
	.methods = order_methods,
	.n_methods = sizeof(order_methods) / sizeof(order_methods[0]),
};
