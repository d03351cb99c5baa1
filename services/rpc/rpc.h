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
 *
 * Who may call what is not decided here: the dispatcher asks a gate
 * (struct rpc_gate, installed by the composition root, server.c) that
 * sees only a view of the call (its metadata, peer address, method), so
 * the policy layer never needs this header.
 */
#ifndef RPC_H
#define RPC_H

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>

#include "aff_arena.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "cache.h"
#include "lcache.h"
#include "store.h"

#define RPC_MAX_TRAILERS 8

/* Who a call comes from, as the gate found it (all 0 for an anonymous
 * call, or with no gate). The values of role are the gate's (policy's
 * enum auth_role); this layer only carries them to the handler. */
struct rpc_caller {
	int role;
	int64_t editor_id;  /* an editor key: the editor it acts as */
	int64_t key_id;     /* 0 when no key */
};

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
	struct rpc_caller caller; /* set by the gate before the handler runs */
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
	int64_t t0_us;          /* aff_mono_us() at dispatch, for the metrics */
	int mrow;               /* the method's row in rpc_metrics.h; -1: none */
	char rid[33];
	struct store_request_key key; /* a keyed call's (has_key) */
	int has_key;
	int public_call;        /* the gate's rpc_gate_result.public_call */
	char *reuse_tag;        /* "<db>:<catalog version>" of a cacheable
	                           call, set by the cache key (arena) */
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
	/* Carried to the gate, not read here: who may call the method and
	 * how its editor_id binds to an editor key (policy's enum
	 * auth_access and enum auth_scope; 0 is the default of both). */
	int access;
	int scope;
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

/* The method of metrics row `row` (services in registration order, each
 * method in its descriptor's order): 1 and its names (the descriptor's,
 * static), or 0 past the last method. */
int rpc_registry_method_at(const rpc_registry *r, size_t row,
    const char **service, const char **method);

/* What the gate sees of a call (never struct rpc_call itself). */
struct rpc_gate_view {
	const char *service;
	const char *method;
	int access;              /* the method's rpc_method_def.access */
	int scope;               /* the method's rpc_method_def.scope */
	Affiliate__V1__MetadataEntry *const *metadata; /* the envelope's */
	size_t n_metadata;
	/* Writes the connection's remote address into buf: IPv4 or IPv6
	 * text, "local" (ipc, inproc) or "unknown". Called with peer_arg,
	 * only by a gate that needs it (a per-address limit): reading it is
	 * an NNG call and a conversion the other calls do not pay for. */
	void (*peer)(void *peer_arg, char *buf, size_t cap);
	void *peer_arg;
	store *store;            /* this thread's store connection */
	cache *cache;            /* this thread's Redis connection */
	struct rpc_caller caller; /* set by admit; read by bind */
};

/* A gate's answer: code AFF_OK lets the call go on; any other is the reply
 * (with message). The trailers go on the reply either way. */
struct rpc_gate_result {
	int code;
	/* admit only: the reply owes nothing to who asked (anonymous, no key
	 * required, no rate limit applied), so a cacheable one may be reused
	 * by a front end for other callers (rpc.proto, "x-affiliate-reuse"). */
	int public_call;
	char message[256];
	size_t n_trailers;
	struct rpc_gate_trailer {
		const char *key;  /* a literal */
		char value[64];
	} trailers[RPC_MAX_TRAILERS];
};

/*
 * The admission hook. admit runs before the payload is even read (and
 * sets view->caller); bind runs on the unpacked request before the reply
 * cache is looked at (the cache key names the request as bound), and may
 * change it. Both return result->code. With no gate (NULL admit), every
 * call is admitted as anonymous.
 */
struct rpc_gate {
	int (*admit)(void *opaque, struct rpc_gate_view *view,
	    struct rpc_gate_result *result);
	int (*bind)(void *opaque, const struct rpc_gate_view *view,
	    ProtobufCMessage *in, struct rpc_gate_result *result);
	void *opaque;
};

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
	struct rpc_gate gate;   /* who may call what; zero: everyone */
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
