/*
 * auth.h - who is calling, and may they: API keys, protected mode, rate
 * limits and editor scoping, checked once per call before any handler (or
 * the reply cache) runs, so binary RPC clients and the bridge meet the
 * same rules. The RPC layer asks through its gate hook, which the server
 * points here (server.c); this layer sees only a view of the call.
 *
 * A key is the bearer token "aff_<id>_<64 hex>": <id> finds its row, and
 * the row holds only the SHA-256 of the 64 hex characters (256 random
 * bits: a hash without salt or stretching is enough), compared in
 * constant time. It is read from the database on every call, never kept
 * in the process, so a key revoked through any server (or in the
 * database directly) stops working on every server at once.
 *
 * Rate limits count in the buckets the view names as shared (Redis, so
 * several servers count together) and in this process's own while those
 * are down or not configured (ratelimit.h).
 *
 * When is a key required (protected mode, as Redis does it)? With
 * --auth on, always; with off, never; with auto (the default), when the
 * RPC listener is not on a loopback address, or when the call comes
 * through a bridge that listens on one (the bridge says so in the
 * "x-affiliate-exposed" metadata: a client can only make its own call
 * stricter with it). A key that is given is always checked, whatever the
 * mode, and scopes the call to its editor. Admin methods always need an
 * admin key.
 */
#ifndef AUTH_H
#define AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "aff_arena.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "ratelimit.h"
#include "store.h"

#define AUTH_TOKEN_MAX 96 /* "aff_" + 19 digits + "_" + 64 hex + NUL */

enum auth_mode { AUTH_MODE_AUTO, AUTH_MODE_ON, AUTH_MODE_OFF };

enum auth_role { AUTH_ANON, AUTH_EDITOR, AUTH_ADMIN };

/* Who a call comes from. */
struct auth_caller {
	enum auth_role role;
	int64_t editor_id;  /* AUTH_EDITOR: the editor the key acts as */
	int64_t key_id;     /* 0 when no key */
};

/* Which calls a method takes. */
enum auth_access {
	AUTH_ACCESS_CALLER, /* a key when keys are required (the default) */
	AUTH_ACCESS_OPEN,   /* never a key (health; webhooks are signed) */
	AUTH_ACCESS_ADMIN,  /* an admin key, always */
};

/* How a method's editor_id field is bound to an editor key's editor. */
enum auth_scope {
	AUTH_SCOPE_NONE,
	AUTH_SCOPE_FILL,  /* 0 becomes the caller's; another editor is 403 */
	AUTH_SCOPE_CHECK, /* another editor is 403; 0 stays 0 */
};

/* A rate-limit setting: off, auto (only where keys are required) or on. */
struct auth_limit {
	enum auth_mode mode;
	struct ratelimit_rule rule;
};

/* The server's policy, shared by the handler threads (read-only). */
struct auth_policy {
	enum auth_mode mode;
	int listener_public;       /* the RPC listener is not loopback-only */
	struct auth_limit per_key; /* per API key */
	struct auth_limit per_addr;/* per client address, calls without a key */
	ratelimit *buckets;        /* NULL when both limits are off */
	const char *trusted;       /* comma-separated addresses whose
	                              x-forwarded-for is believed (besides
	                              loopback and ipc) */
};

/* What policy sees of a call: no more than this (it knows nothing of the
 * RPC layer's call). */
struct auth_view {
	Affiliate__V1__MetadataEntry *const *metadata; /* key/value pairs */
	size_t n_metadata;
	/* Writes the connection's remote address into buf: IPv4 or IPv6
	 * text, "local" (ipc, inproc: this host) or "unknown"; called with
	 * peer_arg when a per-address limit needs it (NULL: "unknown"). */
	void (*peer)(void *peer_arg, char *buf, size_t cap);
	void *peer_arg;
	const char *method;        /* for the record; access says the rule */
	enum auth_access access;
	/* The buckets shared with the other servers (this thread's Redis
	 * connection); NULL: this process's buckets only. */
	const struct ratelimit_shared *shared;
};

#define AUTH_REPLY_MD_MAX 5

/* What policy decides: allowed (code AFF_OK) or the status to answer with
 * its message, who the caller is, and metadata for the reply either way
 * (www-authenticate, retry-after, ratelimit-*). */
struct auth_decision {
	int code;
	char message[256];
	struct auth_caller caller;
	/* Set by auth_admit when the answer owes nothing to who asks: an
	 * anonymous call, no key required of it and no rate limit applied.
	 * Only then may a front end (the bridge) reuse the reply for others
	 * (ReplyEnvelope "x-affiliate-reuse", rpc.proto). */
	int public_call;
	size_t n_reply_md;
	struct auth_md {
		const char *key;   /* a literal */
		char value[64];
	} reply_md[AUTH_REPLY_MD_MAX];
};

/*
 * Admits a call: authenticates its "authorization" metadata against the
 * keys in s (sets d->caller), applies the rate limit and adds the reply
 * metadata (RateLimit-*, WWW-Authenticate). Returns d->code: AFF_OK, or
 * the error to answer (UNAUTHENTICATED, PERMISSION_DENIED,
 * RESOURCE_EXHAUSTED, a store failure) with d->message saying why. p may
 * be NULL (no policy: nothing required, nothing limited).
 */
int auth_admit(const struct auth_policy *p, store *s,
    const struct auth_view *v, struct auth_decision *d);

/* Binds in's editor_id field to an editor caller's editor (see enum
 * auth_scope). Returns d->code: AFF_OK or PERMISSION_DENIED (explained). */
int auth_scope(const struct auth_caller *c, enum auth_scope scope,
    ProtobufCMessage *in, struct auth_decision *d);

/*
 * Makes a key: an editor key for editor_id > 0, an admin key for 0. The
 * token (shown once) goes to token; the stored row to *out (in a).
 */
int auth_key_create(store *s, int64_t editor_id, aff_arena *a,
    Affiliate__V1__ApiKey **out, char token[AUTH_TOKEN_MAX]);

/* "auto", "on" or "off" into *mode; -1 when it is none of these. */
int auth_mode_parse(const char *v, enum auth_mode *mode);

/* "auto", "off" or RATE[/BURST] (calls a second, 0.001 to 1000000, a
 * fraction for less than one a second: 0.1 is one every 10 s; burst =
 * 2 * rate, at least 1, when not given) into l; -1 when malformed. */
int auth_limit_parse(const char *v, struct auth_limit *l);

struct aff_mbuf;

/* Appends affiliate_server_rate_limit_refusals_total (by limit: key,
 * address) to b. The count is two relaxed atomics, process-wide. */
void auth_metrics_write(struct aff_mbuf *b);

#endif /* AUTH_H */
