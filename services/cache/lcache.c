/* lcache.c - see lcache.h. */
#include "lcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_util.h"

#define LCACHE_SHARDS 64

struct lentry {
	uint64_t hash;
	size_t klen, vlen;
	uint8_t *blob; /* key then value; NULL when empty */
};

struct lcache {
	size_t n;
	size_t max_value;
	struct lentry *e;
	pthread_mutex_t locks[LCACHE_SHARDS];
};

int
lcache_alloc(lcache **lp, size_t n_entries, size_t max_value)
{
	lcache *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	if (n_entries > 0 &&
	    (l->e = calloc(n_entries, sizeof(*l->e))) == NULL) {
		free(l);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	l->n = n_entries;
	l->max_value = max_value;
	for (int i = 0; i < LCACHE_SHARDS; i++)
		pthread_mutex_init(&l->locks[i], NULL);
	*lp = l;
	return (AFF_OK);
}

void
lcache_free(lcache *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].blob);
	for (int i = 0; i < LCACHE_SHARDS; i++)
		pthread_mutex_destroy(&l->locks[i]);
	free(l->e);
	free(l);
}

int
lcache_get(lcache *l, const void *key, size_t klen, uint8_t **val, size_t *vlen)
{
	uint64_t h;
	size_t i;
	struct lentry *e;
	int rv = AFF_NOT_FOUND;

	if (l == NULL || l->n == 0)
		return (AFF_NOT_FOUND);
	h = aff_fnv1a(AFF_FNV1A_OFFSET, key, klen);
	i = (size_t)(h % l->n);
	e = &l->e[i];
	pthread_mutex_lock(&l->locks[i % LCACHE_SHARDS]);
	if (e->blob != NULL && e->hash == h && e->klen == klen &&
	    memcmp(e->blob, key, klen) == 0 &&
	    (*val = malloc(e->vlen > 0 ? e->vlen : 1)) != NULL) {
		memcpy(*val, e->blob + klen, e->vlen);
		*vlen = e->vlen;
		rv = AFF_OK;
	}
	pthread_mutex_unlock(&l->locks[i % LCACHE_SHARDS]);
	return (rv);
}

void
lcache_put(lcache *l, const void *key, size_t klen, const void *val, size_t vlen)
{
	uint64_t h;
	size_t i;
	uint8_t *blob, *old;

	if (l == NULL || l->n == 0 || vlen > l->max_value)
		return;
	if ((blob = malloc(klen + vlen)) == NULL)
		return; /* a cache may forget */
	memcpy(blob, key, klen);
	memcpy(blob + klen, val, vlen);
	h = aff_fnv1a(AFF_FNV1A_OFFSET, key, klen);
	i = (size_t)(h % l->n);
	pthread_mutex_lock(&l->locks[i % LCACHE_SHARDS]);
	old = l->e[i].blob;
	l->e[i] = (struct lentry){ h, klen, vlen, blob };
	pthread_mutex_unlock(&l->locks[i % LCACHE_SHARDS]);
	free(old);
}
