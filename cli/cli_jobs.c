/*
 * cli_jobs.c - `affiliate jobs`: the job outbox for operators
 * (JobAdminService, admin keys). jobs list shows jobs with their last
 * error, by state; jobs retry queues a dead job again (or every dead job
 * with --all-dead), and the worker pool decides its application again.
 */
#include <string.h>

#include "aff_err.h"
#include "affiliate/v1/admin.pb-c.h"
#include "cli.h"

#define JOBS_VERBS "list, retry"

static int
jobs_list(struct cli *c)
{
	Affiliate__V1__ListJobsRequest req = AFFILIATE__V1__LIST_JOBS_REQUEST__INIT;
	int rv;

	if ((rv = no_args(c)) != AFF_OK)
		return (rv);
	if (c->all_dead)
		return (usage_error("--all-dead is for jobs retry"));
	/* The server says which states it lists (INVALID_ARGUMENT). */
	req.state = (char *)(c->state != NULL ? c->state : "");
	req.limit = (int32_t)c->limit;
	req.after = c->after;
	return (cli_call(c, &affiliate__v1__job_admin_service__descriptor,
	    "ListJobs", &req.base));
}

static int
jobs_retry(struct cli *c)
{
	int rv;

	if (c->state != NULL)
		return (usage_error("--state is for jobs list"));
	if (c->all_dead) {
		Affiliate__V1__RetryDeadJobsRequest req =
		    AFFILIATE__V1__RETRY_DEAD_JOBS_REQUEST__INIT;
		if (c->argc > 2)
			return (usage_error(
			    "jobs retry takes an ID or --all-dead, not both"));
		return (cli_call(c, &affiliate__v1__job_admin_service__descriptor,
		    "RetryDeadJobs", &req.base));
	}
	{
		Affiliate__V1__RetryJobRequest req =
		    AFFILIATE__V1__RETRY_JOB_REQUEST__INIT;
		if (c->argc < 3)
			return (usage_error("jobs retry needs a job ID or --all-dead"));
		if ((rv = one_id(c, "job", &req.id)) != AFF_OK)
			return (rv);
		return (cli_call(c, &affiliate__v1__job_admin_service__descriptor,
		    "RetryJob", &req.base));
	}
}

int
cmd_jobs(struct cli *c)
{
	const char *v = verb(c, JOBS_VERBS);

	if (v == NULL)
		return (2);
	if (strcmp(v, "list") == 0)
		return (jobs_list(c));
	if (strcmp(v, "retry") == 0)
		return (jobs_retry(c));
	return (unknown_verb(c, JOBS_VERBS));
}
