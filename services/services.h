/*
 * services.h - the service implementations the server registers.
 * Each is an rpc_service_def over a protobuf-c service descriptor.
 */
#ifndef SERVICES_H
#define SERVICES_H

#include "rpc.h"

extern const struct rpc_service_def svc_advertiser_def;
extern const struct rpc_service_def svc_application_def;
extern const struct rpc_service_def svc_order_def;
extern const struct rpc_service_def svc_health_def;

struct jobs;

/* The server's per-process state that handlers may read (call->app). */
struct svc_app {
	const rpc_registry *registry;
	struct jobs *jobs;                  /* told when jobs are queued */
	struct store_job_policy job_policy; /* for jobs created by calls */
};

#endif /* SERVICES_H */
