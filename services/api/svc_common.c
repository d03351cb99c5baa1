/* svc_common.c - checks the services share (see services.h). */
#include "aff_err.h"
#include "services.h"

#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 1000

int
svc_store_failed(struct rpc_call *call, int rv)
{
	return (rpc_errorf(call, rv, "the store failed: %s", aff_strerror(rv)));
}

int
svc_check_editor(struct rpc_call *call, int64_t editor_id)
{
	int rv;

	if (editor_id < 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "editor_id must be a positive integer"));
	if (editor_id == 0)
		return (AFF_OK);
	rv = call->store->ops->editor_exists(call->store, editor_id);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no editor with id %lld",
		    (long long)editor_id));
	return (rv == AFF_OK ? AFF_OK : svc_store_failed(call, rv));
}

int
svc_check_filter_id(struct rpc_call *call, int64_t id, const char *name)
{
	if (id < 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "%s must be a positive integer", name));
	return (AFF_OK);
}

int
svc_check_page(struct rpc_call *call, int32_t limit, int64_t after, int *page)
{
	if (limit < 0 || limit > LIST_MAX_LIMIT)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "limit must be between 1 and %d", LIST_MAX_LIMIT));
	if (after < 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "after must be an id (0 or more)"));
	*page = limit > 0 ? limit : LIST_DEFAULT_LIMIT;
	return (AFF_OK);
}
