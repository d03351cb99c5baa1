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

/*
 * The project's code for NNG's answer rv to a dial or a listen (nng_dial,
 * nng_listen, nng_dialer_start, nng_listener_start): AFF_OK for 0; a URL
 * NNG cannot use (a bad address, a transport or option it does not
 * support) is the caller's AFF_INVALID_ARGUMENT, a setting to fix; any
 * other failure (refused, address in use, out of memory) is
 * AFF_UNAVAILABLE, worth trying again. The adapters that call NNG
 * translate through this one function so they cannot disagree.
 */
int aff_err_from_nng_endpoint(int rv);

#endif /* AFF_ERR_H */
