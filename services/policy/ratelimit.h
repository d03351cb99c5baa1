/*
 * ratelimit.h - token buckets, one per API key or client address, in a
 * bounded table shared by the handler threads.
 *
 * A bucket holds up to burst tokens and gains rate tokens a second; a call
 * takes one. The table is set-associative with a lock per group of sets:
 * when a set is full the bucket idle longest (the fullest, so forgetting it
 * costs its owner nothing) gives its place. Buckets live in this process
 * only: with several servers each counts on its own.
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

#endif /* RATELIMIT_H */
