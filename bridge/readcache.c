/* readcache.c - see readcache.h. */
#include "readcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/random.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "affiliate/v1/affiliate.pb-c.h"

/* One kept answer, in one allocation: the struct, then key, body, link. */
struct entry {
	struct entry *hnext;      /* the bucket's chain */
	struct entry *prev, *next; /* use order: head is the most recent */
	uint64_t hash;
	size_t klen, blen, bytes;
	int status;
	char *key, *body, *link;  /* link NULL: none */
};

struct readcache {
	pthread_mutex_t mtx;
	struct entry **buckets;
	size_t n_buckets; /* a power of two */
	struct entry *head, *tail;
	size_t entries, bytes, max_entries, max_bytes;
	uint64_t seed;   /* the hash's: outsiders cannot aim keys at a bucket */
	/* The newest catalog version seen, and when it was last confirmed
	 * (the start of the confirming call; INT64_MIN: not since the last
	 * flush that needs a new confirmation). */
	char db[96];
	int64_t version;
	int has_version;
	int64_t confirmed_ms;
	uint64_t epoch;
	int max_age_ms;
	struct readcache_stats st;

	aff_client *client;
	int poll_ms, rpc_timeout_ms;
	pthread_t poller;
	int polling;
	int active; /* the last reply said public reads are kept: poll */
	int stop;
	pthread_cond_t cv;
};

/* Drops every entry (mtx held). */
static void
flush_locked(readcache *rc)
{
	struct entry *e = rc->head, *next;

	for (; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	memset(rc->buckets, 0, rc->n_buckets * sizeof(rc->buckets[0]));
	rc->head = rc->tail = NULL;
	if (rc->entries > 0)
		rc->st.flushes++;
	rc->entries = rc->bytes = 0;
}

static void
lru_unlink(readcache *rc, struct entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		rc->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		rc->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(readcache *rc, struct entry *e)
{
	e->prev = NULL;
	e->next = rc->head;
	if (rc->head != NULL)
		rc->head->prev = e;
	rc->head = e;
	if (rc->tail == NULL)
		rc->tail = e;
}

/* Removes e from its bucket and the use order, and frees it. */
static void
entry_drop(readcache *rc, struct entry *e)
{
	struct entry **pp = &rc->buckets[e->hash & (rc->n_buckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(rc, e);
	rc->entries--;
	rc->bytes -= e->bytes;
	free(e);
}

static struct entry *
find_locked(readcache *rc, uint64_t h, const char *key, size_t klen)
{
	for (struct entry *e = rc->buckets[h & (rc->n_buckets - 1)]; e != NULL;
	     e = e->hnext)
		if (e->hash == h && e->klen == klen &&
		    memcmp(e->key, key, klen) == 0)
			return (e);
	return (NULL);
}

/* Splits "<db>:<version>"; 0, or -1 when tag is not one. */
static int
tag_parse(const char *tag, char *db, size_t cap, int64_t *version)
{
	const char *colon = strrchr(tag, ':');
	char *end;
	long long v;

	if (colon == NULL || (size_t)(colon - tag) >= cap || colon[1] == '\0')
		return (-1);
	errno = 0;
	v = strtoll(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0')
		return (-1);
	memcpy(db, tag, (size_t)(colon - tag));
	db[colon - tag] = '\0';
	*version = v;
	return (0);
}

/*
 * Takes in what a reply said of the catalog (mtx held). Returns 1 when
 * tag names the newest version (now confirmed at t0), 0 when it is older
 * or not a tag.
 */
static int
seen_locked(readcache *rc, const char *tag, uint64_t epoch, int64_t t0)
{
	char db[sizeof(rc->db)];
	int64_t v;

	if (epoch != rc->epoch)
		return (0);
	if (tag == NULL) {
		/* An OK anonymous read the server no longer calls public:
		 * nothing kept may be served, not even until the next poll. */
		flush_locked(rc);
		rc->confirmed_ms = INT64_MIN;
		rc->active = 0;
		return (0);
	}
	if (tag_parse(tag, db, sizeof(db), &v) != 0)
		return (0);
	if (!rc->active) {
		/* Public reads again (or for the first time): poll. */
		rc->active = 1;
		pthread_cond_signal(&rc->cv);
	}
	if (!rc->has_version || strcmp(db, rc->db) != 0 || v > rc->version) {
		/* The catalog moved (or this is another database): all that is
		 * kept is of an older view. */
		flush_locked(rc);
		memcpy(rc->db, db, strlen(db) + 1);
		rc->version = v;
		rc->has_version = 1;
		rc->confirmed_ms = t0;
		return (1);
	}
	if (v < rc->version) {
		/* A server behind the others (a notification still on its
		 * way): not kept. But a version that goes back and stays back
		 * past the bound (a database restored from a backup) is the
		 * database's now. */
		if (rc->confirmed_ms != INT64_MIN &&
		    t0 - rc->confirmed_ms <= rc->max_age_ms)
			return (0);
		flush_locked(rc);
		rc->version = v;
		rc->confirmed_ms = t0;
		return (1);
	}
	if (t0 > rc->confirmed_ms)
		rc->confirmed_ms = t0;
	return (1);
}

void
readcache_seen(readcache *rc, const char *tag, uint64_t epoch, int64_t t0)
{
	if (rc == NULL)
		return;
	pthread_mutex_lock(&rc->mtx);
	(void)seen_locked(rc, tag, epoch, t0);
	pthread_mutex_unlock(&rc->mtx);
}

uint64_t
readcache_epoch(readcache *rc)
{
	uint64_t e;

	if (rc == NULL)
		return (0);
	pthread_mutex_lock(&rc->mtx);
	e = rc->epoch;
	pthread_mutex_unlock(&rc->mtx);
	return (e);
}

void
readcache_invalidate(readcache *rc)
{
	if (rc == NULL)
		return;
	pthread_mutex_lock(&rc->mtx);
	flush_locked(rc);
	rc->epoch++;
	rc->confirmed_ms = INT64_MIN;
	pthread_mutex_unlock(&rc->mtx);
}

int
readcache_get(readcache *rc, const char *key, size_t klen, aff_arena *a,
    struct readcache_answer *out)
{
	uint64_t h;
	struct entry *e;
	char *body = NULL, *link = NULL;
	int hit = 0;

	if (rc == NULL)
		return (0);
	h = aff_fnv1a(AFF_FNV1A_OFFSET ^ rc->seed, key, klen);
	pthread_mutex_lock(&rc->mtx);
	/* Stale: not confirmed within max_age (the poll is late or the
	 * server is unreachable): ask the server, which confirms again. */
	if (rc->confirmed_ms == INT64_MIN ||
	    aff_mono_ms() - rc->confirmed_ms > rc->max_age_ms ||
	    (e = find_locked(rc, h, key, klen)) == NULL)
		goto out;
	body = aff_arena_alloc(a, e->blen + 1);
	if (e->link != NULL)
		link = aff_arena_strndup(a, e->link, strlen(e->link));
	if (body == NULL || (e->link != NULL && link == NULL))
		goto out;
	memcpy(body, e->body, e->blen);
	body[e->blen] = '\0';
	out->status = e->status;
	out->body = body;
	out->len = e->blen;
	out->link = link;
	lru_unlink(rc, e);
	lru_push(rc, e);
	hit = 1;
out:
	if (hit)
		rc->st.hits++;
	else
		rc->st.misses++;
	pthread_mutex_unlock(&rc->mtx);
	return (hit);
}

void
readcache_put(readcache *rc, const char *key, size_t klen, const char *tag,
    uint64_t epoch, int64_t t0, const struct readcache_answer *ans)
{
	size_t llen = ans->link != NULL ? strlen(ans->link) + 1 : 0;
	size_t bytes = sizeof(struct entry) + klen + ans->len + llen;
	struct entry *e, *old;
	uint64_t h;

	if (rc == NULL || tag == NULL || bytes > rc->max_bytes / 4)
		return; /* one answer never takes more than a quarter */
	h = aff_fnv1a(AFF_FNV1A_OFFSET ^ rc->seed, key, klen);
	if ((e = malloc(bytes)) == NULL)
		return;
	e->hash = h;
	e->klen = klen;
	e->blen = ans->len;
	e->bytes = bytes;
	e->status = ans->status;
	e->key = (char *)(e + 1);
	e->body = e->key + klen;
	e->link = llen > 0 ? e->body + ans->len : NULL;
	memcpy(e->key, key, klen);
	memcpy(e->body, ans->body, ans->len);
	if (llen > 0)
		memcpy(e->link, ans->link, llen);
	pthread_mutex_lock(&rc->mtx);
	if (!seen_locked(rc, tag, epoch, t0)) {
		pthread_mutex_unlock(&rc->mtx);
		free(e);
		return;
	}
	if ((old = find_locked(rc, h, key, klen)) != NULL)
		entry_drop(rc, old);
	while (rc->tail != NULL && (rc->entries + 1 > rc->max_entries ||
	                               rc->bytes + bytes > rc->max_bytes)) {
		entry_drop(rc, rc->tail);
		rc->st.evictions++;
	}
	e->hnext = rc->buckets[h & (rc->n_buckets - 1)];
	rc->buckets[h & (rc->n_buckets - 1)] = e;
	lru_push(rc, e);
	rc->entries++;
	rc->bytes += bytes;
	rc->st.stores++;
	pthread_mutex_unlock(&rc->mtx);
}

void
readcache_stats(readcache *rc, struct readcache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (rc == NULL)
		return;
	pthread_mutex_lock(&rc->mtx);
	*st = rc->st;
	st->entries = rc->entries;
	st->bytes = rc->bytes;
	pthread_mutex_unlock(&rc->mtx);
}

/* Sorts query segments as strings. */
static int
seg_cmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;

	return (strcmp(*x, *y));
}

char *
readcache_key(aff_arena *a, const char *path, const char *query,
    size_t *lenp)
{
	size_t plen = strlen(path), qlen = query != NULL ? strlen(query) : 0;
	size_t n = 0, cap = qlen / 2 + 1;
	char *q, *key, *p, **segs;

	if ((key = aff_arena_alloc(a, plen + 1 + qlen + 1)) == NULL ||
	    (q = aff_arena_strndup(a, query != NULL ? query : "", qlen)) ==
	        NULL ||
	    (segs = aff_arena_alloc(a, cap * sizeof(*segs))) == NULL)
		return (NULL);
	for (char *save = NULL, *s = strtok_r(q, "&", &save);
	     s != NULL && n < cap; s = strtok_r(NULL, "&", &save))
		segs[n++] = s;
	qsort(segs, n, sizeof(*segs), seg_cmp);
	p = key;
	memcpy(p, path, plen);
	p += plen;
	*p++ = '?';
	for (size_t i = 0; i < n; i++) {
		size_t sl = strlen(segs[i]);
		if (i > 0)
			*p++ = '&';
		memcpy(p, segs[i], sl);
		p += sl;
	}
	*p = '\0';
	*lenp = (size_t)(p - key);
	return (key);
}

/*
 * The poll: an anonymous ListAdvertisers of one item, as any public read,
 * so its reply says both the catalog's version and whether anonymous
 * reads are still public (a reply without the tag: no longer).
 */
static void
poll_once(readcache *rc)
{
	Affiliate__V1__ListAdvertisersRequest req =
	    AFFILIATE__V1__LIST_ADVERTISERS_REQUEST__INIT;
	struct aff_call_opts opts = { 0 };
	struct aff_call_result res;
	uint8_t buf[32];
	size_t len;
	uint64_t epoch = readcache_epoch(rc);
	int64_t t0 = aff_mono_ms();

	req.limit = 1;
	len = affiliate__v1__list_advertisers_request__pack(&req, buf);
	opts.timeout_ms = rc->rpc_timeout_ms;
	if (aff_client_invoke(rc->client,
	        affiliate__v1__advertiser_service__descriptor.name,
	        "ListAdvertisers", buf, len, &opts, &res) == AFF_OK)
		readcache_seen(rc, aff_call_result_metadata(&res,
		                       "x-affiliate-reuse"),
		    epoch, t0);
	aff_call_result_fini(&res);
}

static void *
poll_main(void *arg)
{
	readcache *rc = arg;
	struct timespec ts;

	pthread_mutex_lock(&rc->mtx);
	while (!rc->stop) {
		/* Only while public reads are being kept: with keys required or
		 * anonymous calls limited nothing is kept, and a poll would
		 * only take from the bridge host's own rate-limit bucket. A
		 * reply to a client's read that carries the tag wakes it. */
		while (!rc->stop && !rc->active)
			pthread_cond_wait(&rc->cv, &rc->mtx);
		/* The reply that woke it, or the last poll, has just confirmed
		 * the version: the next poll is due poll_ms later. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += rc->poll_ms / 1000;
		ts.tv_nsec += (long)(rc->poll_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!rc->stop &&
		    pthread_cond_timedwait(&rc->cv, &rc->mtx, &ts) != ETIMEDOUT)
			;
		if (rc->stop || !rc->active)
			continue;
		pthread_mutex_unlock(&rc->mtx);
		poll_once(rc);
		pthread_mutex_lock(&rc->mtx);
	}
	pthread_mutex_unlock(&rc->mtx);
	return (NULL);
}

int
readcache_open(const struct readcache_opts *o, aff_client *client,
    readcache **rcp)
{
	readcache *rc;
	pthread_condattr_t ca;

	if ((rc = calloc(1, sizeof(*rc))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	rc->max_entries = o->max_entries > 0 ? o->max_entries
	                                     : READCACHE_MAX_ENTRIES;
	rc->max_bytes = o->max_bytes > 0 ? o->max_bytes : READCACHE_MAX_BYTES;
	rc->poll_ms = o->poll_ms != 0 ? o->poll_ms : READCACHE_POLL_MS;
	rc->max_age_ms = o->max_age_ms > 0 ? o->max_age_ms
	                                   : READCACHE_MAX_AGE_MS;
	rc->rpc_timeout_ms = o->rpc_timeout_ms > 0 ? o->rpc_timeout_ms
	                                           : rc->max_age_ms;
	rc->confirmed_ms = INT64_MIN;
	for (rc->n_buckets = 16; rc->n_buckets < rc->max_entries;)
		rc->n_buckets *= 2;
	if (getrandom(&rc->seed, sizeof(rc->seed), GRND_NONBLOCK) !=
	    sizeof(rc->seed))
		rc->seed = (uint64_t)aff_mono_ms() ^ (uint64_t)(uintptr_t)rc;
	if ((rc->buckets = calloc(rc->n_buckets, sizeof(rc->buckets[0]))) ==
	    NULL)
		goto failed_buckets;
	if (pthread_mutex_init(&rc->mtx, NULL) != 0)
		goto failed_mutex;
	/* The poll's wait is on the monotonic clock, as every wait here. */
	if (pthread_condattr_init(&ca) != 0)
		goto failed_cond;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&rc->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto failed_cond;
	}
	pthread_condattr_destroy(&ca);
	rc->client = client;
	if (client != NULL && rc->poll_ms > 0) {
		if (pthread_create(&rc->poller, NULL, poll_main, rc) != 0)
			goto failed_thread;
		rc->polling = 1;
	}
	*rcp = rc;
	return (AFF_OK);

failed_thread:
	pthread_cond_destroy(&rc->cv);
failed_cond:
	pthread_mutex_destroy(&rc->mtx);
failed_mutex:
	free(rc->buckets);
failed_buckets:
	free(rc);
	return (AFF_RESOURCE_EXHAUSTED);
}

void
readcache_close(readcache *rc)
{
	if (rc == NULL)
		return;
	if (rc->polling) {
		pthread_mutex_lock(&rc->mtx);
		rc->stop = 1;
		pthread_cond_signal(&rc->cv);
		pthread_mutex_unlock(&rc->mtx);
		pthread_join(rc->poller, NULL);
	}
	flush_locked(rc);
	pthread_cond_destroy(&rc->cv);
	pthread_mutex_destroy(&rc->mtx);
	free(rc->buckets);
	free(rc);
}
