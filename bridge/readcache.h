/*
 * readcache.h - private to bridge/: the bridge's cache of rendered catalog
 * answers (issue 15), so that a hot public read (GET /advertisers,
 * GET /advertisers/{id}) is answered without a round trip to the server.
 *
 * This is soft state: losing it costs only round trips, and it never
 * holds anything the server did not mark as everyone's. An answer is
 * kept only when the server's reply carried x-affiliate-reuse
 * ("<db>:<catalog version>": an anonymous call, no key required of it,
 * no rate limit applied; rpc.proto), and only for requests the bridge
 * itself finds anonymous (the caller, call_route.c, checks the headers).
 * Every kept answer is tagged with that version, and is served only
 * while:
 *   - the version is still the newest one seen, and
 *   - that version was confirmed by the server (a poll, or any reply
 *     that carried the tag) no longer than max_age_ms ago, counted from
 *     the start of the confirming call.
 * A poll thread makes an anonymous ListAdvertisers (limit 1) every
 * poll_ms: a newer version drops every entry; a reply without the tag
 * (the server now requires keys or limits anonymous calls) drops every
 * entry too, and stops the poll until a client's read comes back with
 * the tag again (so a server that never makes reads public is never
 * polled). So a change made anywhere (another bridge, another server,
 * an operator's SQL) is served by this bridge within max_age_ms, and a
 * change made through this bridge (readcache_invalidate) at once.
 *
 * Safe for any number of threads (one mutex; a hit copies the answer out
 * under it). Bounded by an entry count and a byte count, least recently
 * used first out.
 */
#ifndef READCACHE_H
#define READCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "aff_arena.h"
#include "aff_client.h"

typedef struct readcache readcache;

#define READCACHE_MAX_ENTRIES 4096
#define READCACHE_MAX_BYTES (8u << 20)
#define READCACHE_POLL_MS 200
#define READCACHE_MAX_AGE_MS 500

struct readcache_opts {
	size_t max_entries; /* 0: READCACHE_MAX_ENTRIES */
	size_t max_bytes;   /* keys, tags, bodies and links; 0: ..._MAX_BYTES */
	int poll_ms;        /* 0: READCACHE_POLL_MS; < 0: no poll thread */
	int max_age_ms;     /* 0: READCACHE_MAX_AGE_MS */
	int rpc_timeout_ms; /* the poll's deadline; 0: max_age_ms */
};

/* An answer as kept and as served: status, body and the Link header's
 * value (NULL: none). Everything else in the response is the request's
 * own (X-Request-Id, Date, CORS, Connection). */
struct readcache_answer {
	int status;
	const char *body;
	size_t len;
	const char *link;
};

struct readcache_stats {
	uint64_t hits, misses, stores, evictions, flushes;
	size_t entries, bytes;
};

/*
 * Makes a cache; with client (and poll_ms >= 0) it starts the poll thread
 * on it. The client must outlive the cache. Returns AFF_OK or
 * AFF_RESOURCE_EXHAUSTED. Free with readcache_close (NULL is fine).
 */
int readcache_open(const struct readcache_opts *o, aff_client *client,
    readcache **rcp);
void readcache_close(readcache *rc);

/*
 * The cache key of a read: path as received (not decoded) and its query
 * with the parameters sorted (empty ones dropped), so "?a=1&b=2" and
 * "?b=2&a=1" are one entry. In the arena; NULL when out of memory.
 */
char *readcache_key(aff_arena *a, const char *path, const char *query,
    size_t *lenp);

/* The invalidation epoch, read before the call whose answer may be put:
 * a put from before an invalidation is refused. */
uint64_t readcache_epoch(readcache *rc);

/*
 * Looks key up: 1 and *out (copied into a) when a fresh answer is kept,
 * else 0 (a miss, counted).
 */
int readcache_get(readcache *rc, const char *key, size_t klen, aff_arena *a,
    struct readcache_answer *out);

/*
 * Keeps ans under key. tag is the reply's x-affiliate-reuse, t0 the
 * monotonic ms when the call started, epoch readcache_epoch() from before
 * it. Refused (nothing kept) when tag is older than the newest version
 * seen, or an invalidation came after epoch. The tag also confirms its
 * version (readcache_seen).
 */
void readcache_put(readcache *rc, const char *key, size_t klen,
    const char *tag, uint64_t epoch, int64_t t0,
    const struct readcache_answer *ans);

/*
 * What a reply of a cacheable call said: tag is its x-affiliate-reuse
 * (NULL: the reply said nothing reusable, though it was OK and the
 * request anonymous: the server's policy no longer makes such reads
 * public, so every entry goes). epoch and t0 as in readcache_put: a
 * reply to a call from before an invalidation says nothing.
 */
void readcache_seen(readcache *rc, const char *tag, uint64_t epoch,
    int64_t t0);

/* Drops every entry at once and refuses puts from calls that started
 * before (a write through this bridge that may change the catalog). */
void readcache_invalidate(readcache *rc);

void readcache_stats(readcache *rc, struct readcache_stats *st);

#endif /* READCACHE_H */
