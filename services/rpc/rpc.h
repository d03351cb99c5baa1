/*
 * rpc.h - generic dispatch of RPC envelopes to service handlers.
 *
 * Services are described by protobuf-c's generated service descriptors:
 * the dispatcher finds the method by name there, unpacks the payload with
 * the method's input descriptor and packs the handler's output with its
 * output descriptor. A service registers a table of handlers by method
 * name; a method without a handler answers UNIMPLEMENTED.
 *
 * Methods marked cacheable read only the catalog (advertisers, editors,
 * eligibility): their replies are cached in memory (lcache.h) and in Redis
 * under the catalog version, so any write to the catalog retires them.
 */
#ifndef RPC_H
#define RPC_H

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>

#include "aff_arena.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "auth.h"
#include "cache.h"
#include "lcache.h"
#include "store.h"

#define RPC_MAX_TRAILERS 8

/* One call being handled. Everything in it lives until the reply is sent. */
struct rpc_call {
	aff_arena arena;        /* allocate the response and strings here */
	const char *service;
	const char *method;
	const char *request_id;
	int64_t deadline_ms;    /* aff_mono_ms() clock; 0 = none */
	size_t n_metadata;      /* the envelope's metadata entries */
	Affiliate__V1__MetadataEntry **metadata;
	store *store;           /* this thread's store connection */
	cache *cache;           /* this thread's cache connection */
	const char *message;    /* set by rpc_errorf */
	ProtobufCMessage *error_payload; /* optional payload with an error */
	void *app;              /* the server's per-process state */
	struct auth_caller caller; /* set before the handler runs */
	/* A keyed call's answer to a repeat of it, when that is not the
	 * answer given now (a secret shown once): set by the handler. */
	struct {
		int set, code;
		const char *message;
		ProtobufCMessage *payload;
	} replay;

	/* Private to the dispatcher. */
	Affiliate__V1__MetadataEntry *trailers[RPC_MAX_TRAILERS];
	size_t n_trailers;
	const ProtobufCMessageDescriptor *output;
	int64_t t0;
	char rid[33];
	struct store_request_key key; /* a keyed call's (has_key) */
	int has_key;
	struct rpc_slot *slot;
	void (*complete)(struct rpc_slot *slot, nng_msg *reply);
};

/*
 * A handler may return RPC_DEFERRED instead of a status: it keeps call (and
 * its arena) and answers later, from any thread, with rpc_call_finish.
 * Nothing may touch call after that.
 */
#define RPC_DEFERRED (-1)

/* Answers a deferred call: code, and on AFF_OK out (in call->arena). */
void rpc_call_finish(struct rpc_call *call, int code, ProtobufCMessage *out);

/*
 * A handler: reads in (already unpacked, of the method's input type) and on
 * success sets *out to a message of the method's output type allocated in
 * call->arena. Returns AFF_OK or an error status (use rpc_errorf to say
 * why).
 */
typedef int (*rpc_handler_fn)(
    struct rpc_call *call, const ProtobufCMessage *in, ProtobufCMessage **out);

struct rpc_method_def {
	const char *name;   /* as in the .proto */
	rpc_handler_fn fn;
	int cacheable;      /* reads the catalog only */
	enum auth_access access; /* who may call it (auth.h) */
	enum auth_scope scope;   /* how editor_id binds to an editor key */
	/* Mutating: a call with a request_id runs in one transaction with
	 * its request key and answer (store call_begin); the same call again
	 * gets the first answer and changes nothing. The handler may not
	 * defer. */
	int keyed;
};

struct rpc_service_def {
	const ProtobufCServiceDescriptor *desc;
	const struct rpc_method_def *methods;
	size_t n_methods;
};

typedef struct rpc_registry rpc_registry;

/* Builds a registry over n service definitions (not copied: keep them
 * alive). Asserts that each method named exists in its descriptor. */
int rpc_registry_alloc(
    rpc_registry **rp, const struct rpc_service_def *const *defs, size_t n);
void rpc_registry_free(rpc_registry *r);

/* Whether a service of that fully qualified name is registered. */
int rpc_registry_has(const rpc_registry *r, const char *service);

/* Per-thread resources a call needs. */
struct rpc_slot;

struct rpc_thread_env {
	const rpc_registry *registry;
	/* Sends a deferred reply (rpc_server_reply). */
	void (*complete)(struct rpc_slot *slot, nng_msg *reply);
	store *store;
	cache *cache;
	lcache *lcache;         /* shared by the threads; may be NULL */
	void *app;
	const struct auth_policy *auth; /* NULL: no keys, no limits */
	nng_pipe pipe;          /* the connection of the request at hand */
	int64_t received_ms;    /* when it was received (aff_mono_ms()); 0 =
	                           now. The envelope's timeout counts from it,
	                           so time spent queued counts too. */
};

/*
 * Decodes one request envelope, runs the handler and returns the reply
 * envelope as a new message (caller sends or frees it), or
 * RPC_SERVER_DEFERRED when the handler answers later through
 * env->complete(slot, ...). Never NULL except out of memory: every bad
 * input gets an error reply.
 */
nng_msg *rpc_dispatch(struct rpc_thread_env *env, const void *data,
    size_t len, struct rpc_slot *slot);

/*
 * The reply envelope to the request envelope data[0..len) (its
 * request_id echoed) with code and message, for a request that is not
 * run. NULL out of memory.
 */
nng_msg *rpc_refuse(const void *data, size_t len, int code,
    const char *message);

/* Adds a metadata entry to the reply envelope (copied; at most
 * RPC_MAX_TRAILERS, the rest dropped). */
void rpc_call_trailer(struct rpc_call *call, const char *key,
    const char *value);

/* Sets call->message from a format and returns code, for
 * `return (rpc_errorf(call, AFF_NOT_FOUND, "no advertiser %lld", id));`. */
int rpc_errorf(struct rpc_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* RPC_H */
