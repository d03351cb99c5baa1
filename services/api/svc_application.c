/*
 * svc_application.c - ApplicationService: an editor applies to an
 * advertiser's programme; the application and its review job are committed
 * in one transaction (the outbox), and a worker reviews it in the
 * background (jobs.h).
 */
#include <string.h>

#include "aff_err.h"
#include "aff_status.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "jobs.h"
#include "services.h"

static int
apply(struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__ApplyRequest *in = (const void *)in_;
	const struct svc_app *app = call->app;
	store *s = call->store;
	Affiliate__V1__Advertiser *adv;
	Affiliate__V1__Application *a;
	int rv;

	if (in->advertiser_id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "advertiser_id must be a positive integer"));
	if (in->editor_id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "editor_id must be a positive integer"));
	if ((rv = svc_check_editor(call, in->editor_id)) != AFF_OK)
		return (rv);
	rv = s->ops->advertiser_get(s, in->advertiser_id, &call->arena, &adv);
	if (rv != AFF_OK)
		return (rv == AFF_NOT_FOUND
		        ? rpc_errorf(call, rv, "no advertiser with id %lld",
		              (long long)in->advertiser_id)
		        : svc_store_failed(call, rv));
	if ((rv = s->ops->eligible(s, in->editor_id, in->advertiser_id)) !=
	    AFF_OK)
		return (rv == AFF_PERMISSION_DENIED
		        ? rpc_errorf(call, rv,
		              "editor %lld is not eligible for advertiser %lld",
		              (long long)in->editor_id,
		              (long long)in->advertiser_id)
		        : svc_store_failed(call, rv));
	if (aff_status_parse(AFF_ADVERTISER_STATUS, adv->status) !=
	    AFFILIATE__V1__ADVERTISER_STATUS__ADVERTISER_STATUS_ACTIVE)
		return (rpc_errorf(call, AFF_FAILED_PRECONDITION,
		    "advertiser %lld's programme is %s and takes no applications",
		    (long long)in->advertiser_id, adv->status));
	rv = s->ops->application_create(s, in->editor_id, in->advertiser_id,
	    call->request_id, &app->job_policy, &call->arena, &a);
	if (rv == AFF_ALREADY_EXISTS) {
		/* The reply carries the application that is in the way. */
		call->error_payload = &a->base;
		return (rpc_errorf(call, rv,
		    "editor %lld already has a%s application (%lld) to "
		    "advertiser %lld",
		    (long long)in->editor_id,
		    aff_status_parse(AFF_APPLICATION_STATUS, a->status) ==
		            AFFILIATE__V1__APPLICATION_STATUS__APPLICATION_STATUS_APPROVED
		        ? "n approved"
		        : " pending",
		    (long long)a->id, (long long)in->advertiser_id));
	}
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	jobs_notify(app->jobs);
	*out = &a->base;
	return (AFF_OK);
}

static int
list_applications(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__ListApplicationsRequest *in = (const void *)in_;
	Affiliate__V1__ListApplicationsResponse *resp;
	struct store_application_query q;
	int rv, more;
	char words[128];

	if (in->status[0] != '\0' &&
	    aff_status_parse(AFF_APPLICATION_STATUS, in->status) == 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT, "status must be %s",
		    aff_status_list(AFF_APPLICATION_STATUS, words, sizeof(words))));
	if ((rv = svc_check_page(call, in->limit, in->after, &q.limit)) !=
	        AFF_OK ||
	    (rv = svc_check_filter_id(call, in->editor_id, "editor_id")) !=
	        AFF_OK)
		return (rv);
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__list_applications_response__init(resp);
	q.editor_id = in->editor_id;
	q.status = in->status;
	q.after = in->after;
	rv = call->store->ops->application_list(call->store, &q, &call->arena,
	    &resp->applications, &resp->n_applications, &more);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	if (more && resp->n_applications > 0)
		resp->next_after =
		    resp->applications[resp->n_applications - 1]->id;
	*out = &resp->base;
	return (AFF_OK);
}

static int
get_application(
    struct rpc_call *call, const ProtobufCMessage *in_, ProtobufCMessage **out)
{
	const Affiliate__V1__GetApplicationRequest *in = (const void *)in_;
	Affiliate__V1__Application *a;
	int rv;

	if (in->id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "id must be a positive integer"));
	rv = call->store->ops->application_get(
	    call->store, in->id, &call->arena, &a);
	/* Another editor's application is answered as if there were none:
	 * an editor key learns nothing of the others'. */
	if (rv == AFF_OK && call->caller.role == AUTH_EDITOR &&
	    a->editor_id != call->caller.editor_id)
		rv = AFF_NOT_FOUND;
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(
		    call, rv, "no application with id %lld", (long long)in->id));
	if (rv == AFF_OK)
		rv = call->store->ops->application_events(
		    call->store, a, &call->arena);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	*out = &a->base;
	return (AFF_OK);
}

static const struct rpc_method_def application_methods[] = {
	{ .name = "Apply", .fn = apply, .scope = AUTH_SCOPE_FILL,
	    .keyed = 1 },
	{ .name = "ListApplications", .fn = list_applications,
	    .scope = AUTH_SCOPE_FILL },
	{ .name = "GetApplication", .fn = get_application },
};

const struct rpc_service_def svc_application_def = {
	.desc = &affiliate__v1__application_service__descriptor,
	.methods = application_methods,
	.n_methods = sizeof(application_methods) / sizeof(application_methods[0]),
};
