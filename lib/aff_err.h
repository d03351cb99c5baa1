/*
 * aff_err.h - the project's one error enum.
 *
 * The values are gRPC's status codes, so an error returned by the store or
 * the cache travels to the RPC reply (and on to the bridge's HTTP status)
 * without a translation table in between. NNG, SQLite, hiredis and civetweb
 * errors are translated into these at the adapter that calls them.
 */
#ifndef AFF_ERR_H
#define AFF_ERR_H

enum aff_err {
	AFF_OK                  = 0,
	AFF_CANCELLED           = 1,
	AFF_UNKNOWN             = 2,
	AFF_INVALID_ARGUMENT    = 3,
	AFF_DEADLINE_EXCEEDED   = 4,
	AFF_NOT_FOUND           = 5,
	AFF_ALREADY_EXISTS      = 6,
	AFF_PERMISSION_DENIED   = 7,
	AFF_RESOURCE_EXHAUSTED  = 8,
	AFF_FAILED_PRECONDITION = 9,
	AFF_ABORTED             = 10,
	AFF_OUT_OF_RANGE        = 11,
	AFF_UNIMPLEMENTED       = 12,
	AFF_INTERNAL            = 13,
	AFF_UNAVAILABLE         = 14,
	AFF_DATA_LOSS           = 15,
	AFF_UNAUTHENTICATED     = 16,
};

#define AFF_ERR_MAX AFF_UNAUTHENTICATED

/* A short English description of rv ("not found"); never NULL. */
const char *aff_strerror(int rv);

/* The code's canonical name ("NOT_FOUND"), as in gRPC; never NULL. */
const char *aff_code_name(int rv);

#endif /* AFF_ERR_H */
