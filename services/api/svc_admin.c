/*
 * svc_admin.c - KeyService (API keys) and WebhookSecretService (the
 * advertisers' own webhook signing secrets, and whether their webhooks
 * may use the plain, timeless signature). Admin keys only (the
 * dispatcher checks, see auth.h). Tokens and secrets are in the reply once
 * and never in a log line or an error message.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "affiliate/v1/admin.pb-c.h"
#include "services.h"

#define GRACE_DEFAULT_S 86400
#define GRACE_MAX_S (30 * 86400)

static int
create_key(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__CreateKeyRequest *in = (const void *)in_;
	Affiliate__V1__CreateKeyResponse *resp, *replay;
	char token[AUTH_TOKEN_MAX];
	int rv;

	if (in->admin == (in->editor_id != 0))
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "give either editor_id (an editor key) or admin (an admin "
		    "key)"));
	if ((rv = svc_check_editor(call, in->editor_id)) != AFF_OK)
		return (rv);
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__create_key_response__init(resp);
	rv = auth_key_create(
	    call->store, in->editor_id, &call->arena, &resp->key, token);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no editor with id %lld",
		    (long long)in->editor_id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	resp->token = aff_arena_strdup(&call->arena, token);
	OPENSSL_cleanse(token, sizeof(token));
	if (resp->token == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	/* The same request again makes no second key, but cannot show the
	 * token again either: only its SHA-256 is kept, and the request key's
	 * stored answer must not keep it in clear. */
	if ((replay = aff_arena_alloc(&call->arena, sizeof(*replay))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__create_key_response__init(replay);
	replay->key = resp->key;
	call->replay.set = 1;
	call->replay.code = AFF_ALREADY_EXISTS;
	call->replay.message = aff_arena_printf(&call->arena,
	    "key %lld was made by this request_id; its token was shown once "
	    "and cannot be shown again",
	    (long long)resp->key->id);
	call->replay.payload = &replay->base;
	aff_info("keys: key %lld made (%s%.0lld) by key %lld",
	    (long long)resp->key->id, resp->key->role,
	    (long long)resp->key->editor_id, (long long)call->caller.key_id);
	*out = &resp->base;
	return (AFF_OK);
}

static int
list_keys(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	Affiliate__V1__ListKeysResponse *resp;
	int rv;

	(void)in_;
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__list_keys_response__init(resp);
	rv = call->store->ops->key_list(
	    call->store, &call->arena, &resp->keys, &resp->n_keys);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	*out = &resp->base;
	return (AFF_OK);
}

static int
revoke_key(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__RevokeKeyRequest *in = (const void *)in_;
	Affiliate__V1__ApiKey *k;
	int rv;

	if (in->id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "id must be a positive integer"));
	rv = call->store->ops->key_revoke(call->store, in->id, &call->arena, &k);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(
		    call, rv, "no API key with id %lld", (long long)in->id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	aff_info("keys: key %lld revoked by key %lld", (long long)in->id,
	    (long long)call->caller.key_id);
	*out = &k->base;
	return (AFF_OK);
}

static const struct rpc_method_def key_methods[] = {
	{ .name = "CreateKey", .fn = create_key, .access = AUTH_ACCESS_ADMIN,
	    .keyed = 1 },
	{ .name = "ListKeys", .fn = list_keys, .access = AUTH_ACCESS_ADMIN },
	{ .name = "RevokeKey", .fn = revoke_key, .access = AUTH_ACCESS_ADMIN,
	    .keyed = 1 },
};

const struct rpc_service_def svc_key_def = {
	.desc = &affiliate__v1__key_service__descriptor,
	.methods = key_methods,
	.n_methods = sizeof(key_methods) / sizeof(key_methods[0]),
};

static int
rotate_webhook_secret(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__RotateWebhookSecretRequest *in = (const void *)in_;
	Affiliate__V1__RotateWebhookSecretResponse *resp;
	unsigned char raw[32];
	char secret[65], until[32];
	int64_t grace, grace_until;
	int rv, replaced = 0;

	if (in->advertiser_id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "advertiser_id must be a positive integer"));
	if (in->grace_seconds < 0 || in->grace_seconds > GRACE_MAX_S)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "grace_seconds must be from 0 (one day) to %d", GRACE_MAX_S));
	grace = in->grace_seconds > 0 ? in->grace_seconds : GRACE_DEFAULT_S;
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__rotate_webhook_secret_response__init(resp);
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return (rpc_errorf(call, AFF_INTERNAL, "no random bytes"));
	aff_hex_encode(raw, sizeof(raw), secret);
	OPENSSL_cleanse(raw, sizeof(raw));
	grace_until = aff_now_ms() / 1000 + grace;
	rv = call->store->ops->webhook_secret_rotate(
	    call->store, in->advertiser_id, secret, grace_until, &replaced);
	resp->secret = aff_arena_strdup(&call->arena, secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no advertiser with id %lld",
		    (long long)in->advertiser_id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	if (resp->secret == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	resp->advertiser_id = in->advertiser_id;
	aff_time_rfc3339(grace_until, until);
	resp->previous_valid_until =
	    replaced ? aff_arena_strdup(&call->arena, until) : "";
	aff_info("webhook: advertiser %lld has a new signing secret (the "
	         "previous one%s valid until %s) by key %lld",
	    (long long)in->advertiser_id, replaced ? "" : ": none;", until,
	    (long long)call->caller.key_id);
	*out = &resp->base;
	return (AFF_OK);
}

static int
set_webhook_policy(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__SetWebhookPolicyRequest *in = (const void *)in_;
	Affiliate__V1__WebhookPolicy *resp;
	int rv;

	if (in->advertiser_id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "advertiser_id must be a positive integer"));
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__webhook_policy__init(resp);
	rv = call->store->ops->webhook_policy_set(
	    call->store, in->advertiser_id, in->require_timestamp);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no advertiser with id %lld",
		    (long long)in->advertiser_id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	resp->advertiser_id = in->advertiser_id;
	resp->require_timestamp = in->require_timestamp;
	aff_info("webhook: advertiser %lld %s plain signatures (by key %lld)",
	    (long long)in->advertiser_id,
	    in->require_timestamp ? "refuses" : "accepts",
	    (long long)call->caller.key_id);
	*out = &resp->base;
	return (AFF_OK);
}

static const struct rpc_method_def secret_methods[] = {
	{ .name = "RotateWebhookSecret", .fn = rotate_webhook_secret,
	    .access = AUTH_ACCESS_ADMIN, .keyed = 1 },
	{ .name = "SetWebhookPolicy", .fn = set_webhook_policy,
	    .access = AUTH_ACCESS_ADMIN },
};

const struct rpc_service_def svc_webhook_secret_def = {
	.desc = &affiliate__v1__webhook_secret_service__descriptor,
	.methods = secret_methods,
	.n_methods = sizeof(secret_methods) / sizeof(secret_methods[0]),
};
