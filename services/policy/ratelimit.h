/*
 * ratelimit.h - token buckets, one per API key or client address, in a
 * bounded table shared by the handler threads.
 *
 * A bucket holds up to burst tokens and gains rate tokens a second; a call
 * takes one. The table is set-associative with a lock per group of sets:
 * when a set is full the bucket idle longest (the fullest, so forgetting it
 * costs its owner nothing) gives its place.
 *
 * These buckets live in this process. Several servers share a limit
 * through a shared bucket store (struct ratelimit_shared: Redis, which
 * the cache layer speaks and server.c wires in; this layer knows nothing
 * of it): ratelimit_take_shared asks it first and falls back to the
 * buckets here, each server counting on its own, while it is down.
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit;

struct ratelimit_rule {
	double rate;  /* tokens a second, > 0 */
	int burst;    /* bucket size, >= 1 */
};

/* What a take found, for the RateLimit-* headers. */
struct ratelimit_state {
	int limit;      /* the burst */
	int remaining;  /* whole tokens left after this call */
	int reset_s;    /* seconds until the bucket is full again */
	int retry_s;    /* when refused: seconds until a token is there */
};

/* A table of about slots buckets; AFF_OK or AFF_RESOURCE_EXHAUSTED. */
int ratelimit_alloc(ratelimit **rp, size_t slots);
void ratelimit_free(ratelimit *r);

/* Takes a token from key's bucket (made full when new) at now_ms. Returns
 * 1 when the call may go on, 0 when it is over the limit; st is filled
 * either way. */
int ratelimit_take(ratelimit *r, const char *key,
    const struct ratelimit_rule *rule, int64_t now_ms,
    struct ratelimit_state *st);

/* What a shared bucket store's take returns. */
enum ratelimit_shared_result {
	RATELIMIT_SHARED_DENY = 0,  /* over the limit; st filled */
	RATELIMIT_SHARED_ALLOW = 1, /* the call may go on; st filled */
	RATELIMIT_SHARED_FAILED = -1,  /* it was asked and failed just now */
	RATELIMIT_SHARED_SKIPPED = -2, /* known down (waiting to reconnect):
	                                  not asked */
};

/*
 * Buckets kept outside this process, shared by several servers. take
 * takes a token from key's bucket on the store's own clock (the hosts'
 * clocks may disagree) and returns an enum ratelimit_shared_result; it
 * must not wait longer than the store's own timeout. arg is the
 * caller's (one per thread: the connection).
 */
struct ratelimit_shared {
	int (*take)(void *arg, const char *key,
	    const struct ratelimit_rule *rule, struct ratelimit_state *st);
	void *arg;
};

/*
 * As ratelimit_take, but in sh's shared bucket when sh (and sh->take) is
 * not NULL and the store answers; in r's local bucket otherwise. Logs
 * once when the shared store starts failing (an outage: each server then
 * limits on its own) and once when it answers again, whichever thread
 * sees it first. During an outage one call at a time asks the store
 * again, after a backoff doubling from 100 ms to 5 s; the others go
 * straight to the local buckets, so a stalled store costs a call its
 * timeout only now and then.
 */
int ratelimit_take_shared(ratelimit *r, const struct ratelimit_shared *sh,
    const char *key, const struct ratelimit_rule *rule, int64_t now_ms,
    struct ratelimit_state *st);

#endif /* RATELIMIT_H */
