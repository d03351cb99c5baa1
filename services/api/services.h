/*
 * services.h - the service implementations the server registers.
 * Each is an rpc_service_def over a protobuf-c service descriptor.
 */
#ifndef SERVICES_H
#define SERVICES_H

#include "auth.h"
#include "rpc.h"

extern const struct rpc_service_def svc_advertiser_def;
extern const struct rpc_service_def svc_application_def;
extern const struct rpc_service_def svc_order_def;
extern const struct rpc_service_def svc_health_def;
extern const struct rpc_service_def svc_key_def;
extern const struct rpc_service_def svc_webhook_secret_def;
extern const struct rpc_service_def svc_job_admin_def;
extern const struct rpc_service_def svc_catalog_def;
extern const struct rpc_service_def svc_postback_def;
extern const struct rpc_service_def svc_report_def;

struct jobs;
struct order_writer;
struct aff_webhook_secrets;

/* The server's per-process state that handlers may read (call->app). */
struct svc_app {
	const rpc_registry *registry;
	struct jobs *jobs;                  /* told when jobs are queued */
	struct store_job_policy job_policy; /* for jobs created by calls */
	struct order_writer *orders;        /* group commit of orders */
	const struct aff_webhook_secrets *webhook_secrets;
	/* --webhook-require-timestamp: the plain signature form is refused
	 * for every advertiser (else per advertiser, see store.h). */
	int webhook_require_timestamp;
	/* --postback-allow-private: endpoints may be on loopback, private
	 * and link-local addresses (tests, a single-host setup). */
	int postback_allow_private;
	/* --orders-copy on (with Redis): ListOrders reads the Redis copy of
	 * the orders when it is whole and holds an index for the filter. */
	int orders_copy;
};

/* Answers a store failure ("the store failed: ...") with its code. */
int svc_store_failed(struct rpc_call *call, int rv);

/* AFF_OK when editor_id is 0 (not given) or names an editor; else the
 * error, answered (INVALID_ARGUMENT, NOT_FOUND, a store failure). */
int svc_check_editor(struct rpc_call *call, int64_t editor_id);

/* For a list filter (the REST contract has no 404 for lists: an id that
 * matches nothing gives an empty page): only a negative id is refused. */
int svc_check_filter_id(struct rpc_call *call, int64_t id, const char *name);

/* Checks a page request (limit 0..1000, after >= 0) and sets *page to the
 * page size to use (100 when limit is 0). */
int svc_check_page(struct rpc_call *call, int32_t limit, int64_t after,
    int *page);

#endif /* SERVICES_H */
