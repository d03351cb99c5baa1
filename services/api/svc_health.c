/*
 * svc_health.c - HealthService.Check, modelled on grpc.health.v1: the
 * server is SERVING while its store answers; the cache is reported beside
 * it but is optional (NOT_SERVING there only means slower reads).
 */
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_metrics.h"
#include "affiliate/v1/health.pb-c.h"
#include "auth.h"
#include "jobs.h"
#include "order_writer.h"
#include "rpc_metrics.h"
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

/* HealthService.Metrics: every counter is a relaxed load and the store
 * answers two indexed counts, so a scrape costs about what a cached read
 * does. */
static int
health_metrics(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const struct svc_app *app = call->app;
	Affiliate__V1__MetricsResponse *resp;
	struct aff_mbuf b;
	char *text;
	size_t len;

	(void)in_;
	aff_mbuf_init(&b);
	rpc_metrics_write(app->registry, &b);
	if (app->orders != NULL)
		order_writer_metrics_write(app->orders, &b);
	auth_metrics_write(&b);
	if (cache_enabled(call->cache)) {
		aff_metric_head(&b, "affiliate_server_redis_up", "gauge",
		    "1 while the server reaches Redis, 0 while it serves without "
		    "it (absent when Redis is not configured).");
		aff_mbuf_printf(&b, "affiliate_server_redis_up %d\n",
		    cache_status(call->cache) == AFF_OK);
	}
	jobs_metrics_write(app->jobs, call->store, &b);
	if (aff_mbuf_take(&b, &text, &len) != 0)
		return (AFF_RESOURCE_EXHAUSTED);
	resp = aff_arena_alloc(&call->arena, sizeof(*resp));
	if (resp != NULL)
		affiliate__v1__metrics_response__init(resp);
	if (resp == NULL ||
	    (resp->text = aff_arena_alloc(&call->arena, len + 1)) == NULL) {
		free(text);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	memcpy(resp->text, text, len + 1);
	free(text);
	*out = &resp->base;
	return (AFF_OK);
}

static const struct rpc_method_def health_methods[] = {
	{ .name = "Check", .fn = health_check, .access = AUTH_ACCESS_OPEN },
	{ .name = "Metrics", .fn = health_metrics, .access = AUTH_ACCESS_OPEN },
};

const struct rpc_service_def svc_health_def = {
	.desc = &affiliate__v1__health_service__descriptor,
	.methods = health_methods,
	.n_methods = 2,
};
