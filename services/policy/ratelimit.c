/* ratelimit.c - see ratelimit.h. */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"

#define WAYS 4
#define LOCKS 64
#define PROBE_MIN_MS 100
#define PROBE_MAX_MS 5000

struct bucket {
	uint64_t tag;   /* the key's hash; 0 = free */
	double tokens;
	int64_t t_ms;   /* when tokens was last brought up to date */
};

struct ratelimit {
	size_t n_sets;
	uint64_t seed;  /* random: a peer cannot aim keys at one set */
	struct bucket *b;
	pthread_mutex_t locks[LOCKS];
	/* 1 while the shared store is failing: the threads agree on one
	 * outage, so it is logged once, not once per thread or per call. */
	atomic_int shared_down;
	/* While it is down, one call at a time asks it again, not before
	 * next_probe_ms (monotonic), with a backoff doubling from
	 * PROBE_MIN_MS to PROBE_MAX_MS: a stalled store costs one call its
	 * timeout now and then, not every call on every thread. */
	atomic_llong next_probe_ms;
	atomic_int probe_backoff_ms;
};

int
ratelimit_alloc(ratelimit **rp, size_t slots)
{
	ratelimit *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	r->n_sets = slots / WAYS > 0 ? slots / WAYS : 1;
	if ((r->b = calloc(r->n_sets * WAYS, sizeof(*r->b))) == NULL) {
		free(r);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	if (RAND_bytes((unsigned char *)&r->seed, sizeof(r->seed)) != 1)
		r->seed = (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < LOCKS; i++)
		pthread_mutex_init(&r->locks[i], NULL);
	atomic_init(&r->shared_down, 0);
	atomic_init(&r->next_probe_ms, 0);
	atomic_init(&r->probe_backoff_ms, PROBE_MIN_MS);
	*rp = r;
	return (AFF_OK);
}

void
ratelimit_free(ratelimit *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < LOCKS; i++)
		pthread_mutex_destroy(&r->locks[i]);
	free(r->b);
	free(r);
}

/* FNV-1a from a random seed, then a final mix; never 0. */
static uint64_t
key_hash(const ratelimit *r, const char *key)
{
	uint64_t h = aff_fnv1a(AFF_FNV1A_OFFSET ^ r->seed, key, strlen(key));

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (h != 0 ? h : 1);
}

int
ratelimit_take(ratelimit *r, const char *key,
    const struct ratelimit_rule *rule, int64_t now_ms,
    struct ratelimit_state *st)
{
	uint64_t h = key_hash(r, key);
	size_t set = (size_t)(h % r->n_sets);
	struct bucket *b = &r->b[set * WAYS], *found = NULL, *victim = NULL;
	pthread_mutex_t *lock = &r->locks[set % LOCKS];
	double cap = (double)rule->burst;
	int ok;

	pthread_mutex_lock(lock);
	for (int i = 0; i < WAYS; i++) {
		if (b[i].tag == h) {
			found = &b[i];
			break;
		}
		/* A free place first, else the one idle longest. */
		if (victim == NULL || (victim->tag != 0 &&
		        (b[i].tag == 0 || b[i].t_ms < victim->t_ms)))
			victim = &b[i];
	}
	if (found == NULL) {
		found = victim;
		found->tag = h;
		found->tokens = cap;
		found->t_ms = now_ms;
	}
	if (now_ms > found->t_ms) {
		found->tokens += (double)(now_ms - found->t_ms) / 1000.0 * rule->rate;
		found->t_ms = now_ms;
	}
	if (found->tokens > cap)
		found->tokens = cap;
	ok = found->tokens >= 1.0;
	if (ok)
		found->tokens -= 1.0;
	st->limit = rule->burst;
	st->remaining = (int)floor(found->tokens);
	st->reset_s = (int)ceil((cap - found->tokens) / rule->rate);
	st->retry_s = ok ? 0 : (int)ceil((1.0 - found->tokens) / rule->rate);
	if (!ok && st->retry_s < 1)
		st->retry_s = 1;
	pthread_mutex_unlock(lock);
	return (ok);
}

int
ratelimit_take_shared(ratelimit *r, const struct ratelimit_shared *sh,
    const char *key, const struct ratelimit_rule *rule, int64_t now_ms,
    struct ratelimit_state *st)
{
	long long next;
	int rv, was, backoff;

	if (sh == NULL || sh->take == NULL)
		return (ratelimit_take(r, key, rule, now_ms, st));
	/* Down: only the call that wins the probe slot asks. */
	if (atomic_load_explicit(&r->shared_down, memory_order_relaxed)) {
		next = atomic_load(&r->next_probe_ms);
		backoff = atomic_load_explicit(&r->probe_backoff_ms,
		    memory_order_relaxed);
		if (now_ms < next || !atomic_compare_exchange_strong(
		                         &r->next_probe_ms, &next, now_ms + backoff))
			return (ratelimit_take(r, key, rule, now_ms, st));
	}
	rv = sh->take(sh->arg, key, rule, st);
	if (rv == RATELIMIT_SHARED_ALLOW || rv == RATELIMIT_SHARED_DENY) {
		was = 1;
		if (atomic_load_explicit(&r->shared_down, memory_order_relaxed) &&
		    atomic_compare_exchange_strong(&r->shared_down, &was, 0)) {
			atomic_store(&r->probe_backoff_ms, PROBE_MIN_MS);
			aff_info("ratelimit: the shared buckets (redis) answer "
			         "again: the limits hold across servers");
		}
		return (rv);
	}
	if (rv == RATELIMIT_SHARED_SKIPPED) {
		/* This thread's connection waits out its own backoff: it asked
		 * nothing, so the next call (maybe on another thread) may. */
		if (atomic_load_explicit(&r->shared_down, memory_order_relaxed))
			atomic_store(&r->next_probe_ms, now_ms);
		return (ratelimit_take(r, key, rule, now_ms, st));
	}
	/* A failure starts an outage (logged once, by the thread that sees
	 * it first) or, during one, makes the next probe wait longer. */
	was = 0;
	if (atomic_compare_exchange_strong(&r->shared_down, &was, 1)) {
		backoff = PROBE_MIN_MS;
		aff_warn("ratelimit: the shared buckets (redis) are unavailable: "
		         "each server limits on its own (this process's buckets) "
		         "until redis answers again");
	} else {
		backoff = atomic_load(&r->probe_backoff_ms) * 2;
		if (backoff > PROBE_MAX_MS)
			backoff = PROBE_MAX_MS;
	}
	atomic_store(&r->probe_backoff_ms, backoff);
	/* From now, not from the call's start: the failure may have been a
	 * timeout. */
	atomic_store(&r->next_probe_ms, (long long)aff_mono_ms() + backoff);
	return (ratelimit_take(r, key, rule, now_ms, st));
}
