/*
 * svc_health.c - HealthService.Check, modelled on grpc.health.v1: the
 * server is SERVING while its store answers; the cache is reported beside
 * it but is optional (NOT_SERVING there only means slower reads).
 */
#include "aff_err.h"
#include "affiliate/v1/health.pb-c.h"
#include "services.h"

#define ST(x) AFFILIATE__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

static int
health_check(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__HealthCheckRequest *in = (const void *)in_;
	const struct svc_app *app = call->app;
	Affiliate__V1__HealthCheckResponse *resp;
	const char *db_id;
	int64_t version;

	if (in->service[0] != '\0' &&
	    !rpc_registry_has(app->registry, in->service))
		return (rpc_errorf(call, AFF_NOT_FOUND, "unknown service '%s'",
		    in->service));
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__health_check_response__init(resp);
	resp->store = call->store->ops->catalog_version(
	                  call->store, &db_id, &version) == AFF_OK
	    ? ST(SERVING)
	    : ST(NOT_SERVING);
	if (!cache_enabled(call->cache))
		resp->cache = ST(UNKNOWN);
	else
		resp->cache = cache_status(call->cache) == AFF_OK
		    ? ST(SERVING)
		    : ST(NOT_SERVING);
	resp->status = resp->store;
	resp->version = (char *)AFFILIATE_VERSION;
	*out = &resp->base;
	return (AFF_OK);
}

static const struct rpc_method_def health_methods[] = {
	{ .name = "Check", .fn = health_check, .access = AUTH_ACCESS_OPEN },
};

const struct rpc_service_def svc_health_def = {
	.desc = &affiliate__v1__health_service__descriptor,
	.methods = health_methods,
	.n_methods = 1,
};
