/* http_status.c - see http_status.h. */
#include "http_status.h"

#include "aff_err.h"

int
http_status_from_code(int code)
{
	static const int map[] = {
		[AFF_OK] = 200,
		[AFF_CANCELLED] = 499,
		[AFF_UNKNOWN] = 500,
		[AFF_INVALID_ARGUMENT] = 400,
		[AFF_DEADLINE_EXCEEDED] = 504,
		[AFF_NOT_FOUND] = 404,
		[AFF_ALREADY_EXISTS] = 409,
		[AFF_PERMISSION_DENIED] = 403,
		[AFF_RESOURCE_EXHAUSTED] = 429,
		[AFF_FAILED_PRECONDITION] = 400,
		[AFF_ABORTED] = 409,
		[AFF_OUT_OF_RANGE] = 400,
		[AFF_UNIMPLEMENTED] = 501,
		[AFF_INTERNAL] = 500,
		[AFF_UNAVAILABLE] = 503,
		[AFF_DATA_LOSS] = 500,
		[AFF_UNAUTHENTICATED] = 401,
	};

	if (code < 0 || code > AFF_ERR_MAX)
		return (500);
	return (map[code]);
}

const char *
http_code_name_for_status(int status)
{
	switch (status) {
	case 400:
	case 411:
	case 414:
	case 431:
		return ("INVALID_ARGUMENT");
	case 401:
		return ("UNAUTHENTICATED");
	case 403:
		return ("PERMISSION_DENIED");
	case 404:
		return ("NOT_FOUND");
	case 405:
	case 501:
		return ("UNIMPLEMENTED");
	case 408:
	case 504:
		return ("DEADLINE_EXCEEDED");
	case 409:
		return ("ALREADY_EXISTS");
	case 413:
	case 429:
		return ("RESOURCE_EXHAUSTED");
	case 503:
		return ("UNAVAILABLE");
	default:
		return (status < 500 ? "INVALID_ARGUMENT" : "INTERNAL");
	}
}
