/*
 * svc_job_admin.c - JobAdminService: the job outbox for operators. Lists
 * jobs by state with their last error, and queues dead ones again (one,
 * or all at once), as RQ's `rq requeue` and Sidekiq's dead set do. A
 * retried review job's application goes back to pending, and a worker
 * decides it again. Admin keys only (the dispatcher checks, see auth.h).
 */
#include <string.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "affiliate/v1/admin.pb-c.h"
#include "jobs.h"
#include "services.h"

static int
list_jobs(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__ListJobsRequest *in = (const void *)in_;
	Affiliate__V1__ListJobsResponse *resp;
	struct store_job_query q;
	int rv, more = 0;

	/* done jobs are listed with the rest (state ""), not alone: nothing
	 * indexes them, and an operator has no use for them by themselves. */
	if (in->state[0] != '\0' && strcmp(in->state, "dead") != 0 &&
	    strcmp(in->state, "queued") != 0 && strcmp(in->state, "inflight") != 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "state must be dead, queued or inflight (or none for every "
		    "job), not '%.32s'",
		    in->state));
	if ((rv = svc_check_page(call, in->limit, in->after, &q.limit)) != AFF_OK)
		return (rv);
	q.state = in->state;
	q.after = in->after;
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__list_jobs_response__init(resp);
	rv = call->store->ops->job_list(call->store, &q, &call->arena,
	    &resp->jobs, &resp->n_jobs, &more);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	if (more && resp->n_jobs > 0)
		resp->next_after = resp->jobs[resp->n_jobs - 1]->id;
	*out = &resp->base;
	return (AFF_OK);
}

static int
retry_job(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__RetryJobRequest *in = (const void *)in_;
	const struct svc_app *app = call->app;
	Affiliate__V1__JobInfo *j;
	int rv;

	if (in->id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "id must be a positive integer"));
	/* Due now on this server's monotonic clock, as every due time the
	 * SQLite outbox holds (store.h; PostgreSQL takes its own). */
	rv = call->store->ops->job_retry(call->store, in->id, aff_mono_ms(),
	    &app->job_policy, &call->arena, &j);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(
		    call, rv, "no job with id %lld", (long long)in->id));
	if (rv == AFF_FAILED_PRECONDITION)
		return (rpc_errorf(call, rv,
		    "job %lld is not dead: only a dead job is retried",
		    (long long)in->id));
	if (rv == AFF_ALREADY_EXISTS)
		return (rpc_errorf(call, rv,
		    "job %lld stays dead: its application's editor has applied "
		    "to the same advertiser again, and that application is "
		    "open; or, a postback job, its delivery is not dead (sent "
		    "again since by another job: POST "
		    "/postback-deliveries/{id}/redeliver) or its endpoint is "
		    "deleted",
		    (long long)in->id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	aff_info("jobs: job %lld (%s %lld) retried by key %lld",
	    (long long)j->id, j->kind, (long long)j->ref_id,
	    (long long)call->caller.key_id);
	jobs_notify(app->jobs);
	*out = &j->base;
	return (AFF_OK);
}

static int
retry_dead_jobs(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const struct svc_app *app = call->app;
	Affiliate__V1__RetryDeadJobsResponse *resp;
	int rv, retried, skipped;

	(void)in_;
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__retry_dead_jobs_response__init(resp);
	rv = call->store->ops->jobs_retry_dead(
	    call->store, aff_mono_ms(), &app->job_policy, &retried, &skipped);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	resp->retried = retried;
	resp->skipped = skipped;
	aff_info("jobs: %d dead jobs retried (%d left dead: their editor "
	         "applied again, or their postback delivery is not dead) by "
	         "key %lld",
	    retried, skipped, (long long)call->caller.key_id);
	if (retried > 0)
		jobs_notify(app->jobs);
	*out = &resp->base;
	return (AFF_OK);
}

/* The retries are keyed: the same request again (a resend, the bridge's
 * failover) answers what the first one did instead of FAILED_PRECONDITION
 * for a job that the first one queued. */
static const struct rpc_method_def job_admin_methods[] = {
	{ .name = "ListJobs", .fn = list_jobs, .access = AUTH_ACCESS_ADMIN },
	{ .name = "RetryJob", .fn = retry_job, .access = AUTH_ACCESS_ADMIN,
	    .keyed = 1 },
	{ .name = "RetryDeadJobs", .fn = retry_dead_jobs,
	    .access = AUTH_ACCESS_ADMIN, .keyed = 1 },
};

const struct rpc_service_def svc_job_admin_def = {
	.desc = &affiliate__v1__job_admin_service__descriptor,
	.methods = job_admin_methods,
	.n_methods = sizeof(job_admin_methods) / sizeof(job_admin_methods[0]),
};
