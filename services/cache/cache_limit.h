/*
 * cache_limit.h - token buckets in Redis, shared by every server that
 * uses the same Redis: the rate limits hold across servers, not per
 * process.
 *
 * A bucket is one number in Redis (the moment it would be full again:
 * GCRA, see cache_limit.c) read and moved on by one Lua script, so a take
 * is atomic and one round trip (EVALSHA; EVAL once after Redis lost its
 * script cache: NOSCRIPT). The script reads the time with Redis's TIME,
 * never a host's clock, so servers whose wall clocks disagree still share
 * one bucket. An idle bucket expires once it would be full again (a
 * missing bucket is a full one). The policy layer decides what a refusal means (ratelimit.h); this
 * module only keeps the count.
 */
#ifndef CACHE_LIMIT_H
#define CACHE_LIMIT_H

#include "cache.h"

/* What a take found (times in milliseconds, on Redis's clock). */
struct cache_limit_state {
	int allowed;      /* 1: a token was taken; 0: the bucket is empty */
	int remaining;    /* whole tokens left after this call */
	int64_t reset_ms; /* until the bucket is full again */
	int64_t retry_ms; /* when refused: until a token is there */
};

/*
 * Takes a token from bucket key (made full when missing) that holds up to
 * burst tokens and gains rate tokens a second. AFF_OK with *st filled;
 * AFF_UNAVAILABLE when Redis is off or down or answered with an error,
 * with *tried 0 when it was not even asked (off, or waiting out the
 * reconnect backoff) and 1 when it failed just now. Waits at most the
 * cache's timeout (twice when the script has to be loaded again).
 */
int cache_limit_take(cache *c, const char *key, double rate, int burst,
    struct cache_limit_state *st, int *tried);

#endif /* CACHE_LIMIT_H */
