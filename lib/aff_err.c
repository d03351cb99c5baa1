/* aff_err.c - names and descriptions of the project's status codes. */
#include "aff_err.h"

#include <nng/nng.h>

static const struct {
	const char *name;
	const char *text;
} aff_codes[] = {
	[AFF_OK]                  = { "OK", "ok" },
	[AFF_CANCELLED]           = { "CANCELLED", "cancelled" },
	[AFF_UNKNOWN]             = { "UNKNOWN", "unknown error" },
	[AFF_INVALID_ARGUMENT]    = { "INVALID_ARGUMENT", "invalid argument" },
	[AFF_DEADLINE_EXCEEDED]   = { "DEADLINE_EXCEEDED", "deadline exceeded" },
	[AFF_NOT_FOUND]           = { "NOT_FOUND", "not found" },
	[AFF_ALREADY_EXISTS]      = { "ALREADY_EXISTS", "already exists" },
	[AFF_PERMISSION_DENIED]   = { "PERMISSION_DENIED", "permission denied" },
	[AFF_RESOURCE_EXHAUSTED]  = { "RESOURCE_EXHAUSTED", "resource exhausted" },
	[AFF_FAILED_PRECONDITION] = { "FAILED_PRECONDITION", "failed precondition" },
	[AFF_ABORTED]             = { "ABORTED", "aborted" },
	[AFF_OUT_OF_RANGE]        = { "OUT_OF_RANGE", "out of range" },
	[AFF_UNIMPLEMENTED]       = { "UNIMPLEMENTED", "not implemented" },
	[AFF_INTERNAL]            = { "INTERNAL", "internal error" },
	[AFF_UNAVAILABLE]         = { "UNAVAILABLE", "service unavailable" },
	[AFF_DATA_LOSS]           = { "DATA_LOSS", "data loss" },
	[AFF_UNAUTHENTICATED]     = { "UNAUTHENTICATED", "unauthenticated" },
};

const char *
aff_strerror(int rv)
{
	if (rv < 0 || rv > AFF_ERR_MAX)
		return ("unknown error code");
	return (aff_codes[rv].text);
}

const char *
aff_code_name(int rv)
{
	if (rv < 0 || rv > AFF_ERR_MAX)
		return ("UNKNOWN");
	return (aff_codes[rv].name);
}

int
aff_err_from_nng_endpoint(int rv)
{
	if (rv == 0)
		return (AFF_OK);
	return ((rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL)
	        ? AFF_INVALID_ARGUMENT
	        : AFF_UNAVAILABLE);
}
