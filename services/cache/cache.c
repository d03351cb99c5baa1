/* cache.c - see cache.h. */
#include "cache.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_status.h"
#include "aff_util.h"
#include "cache_conn.h"
#include "store.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct cache {
	char *host;
	int port;
	int timeout_ms;
	int ttl_s;
	redisContext *rc;
	int64_t next_try_ms; /* monotonic; no connect attempt before it */
	int backoff_ms;
	int was_up;          /* to log transitions once, not every call */
	int64_t last_ok_ms;  /* monotonic: the last reply read, or connect */
};

int
cache_open(const struct cache_opts *opts, cache **cp)
{
	cache *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	if (opts->host != NULL && opts->host[0] != '\0' &&
	    (c->host = strdup(opts->host)) == NULL) {
		free(c);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	c->port = opts->port;
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 200;
	c->ttl_s = opts->ttl_s > 0 ? opts->ttl_s : 300;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->was_up = 1; /* the first failure is worth a line */
	*cp = c;
	return (AFF_OK);
}

void
cache_close(cache *c)
{
	if (c == NULL)
		return;
	if (c->rc != NULL)
		redisFree(c->rc);
	free(c->host);
	free(c);
}

int
cache_enabled(const cache *c)
{
	return (c != NULL && c->host != NULL);
}

/* why may be the context's own errstr, so it is logged before the
 * context is freed. */
void
cache_down(cache *c, const char *why)
{
	if (c->was_up)
		aff_warn("cache: redis %s:%d unavailable (%s); serving from the "
		         "store, retrying with backoff",
		    c->host, c->port, why);
	if (c->rc != NULL) {
		redisFree(c->rc);
		c->rc = NULL;
	}
	c->was_up = 0;
	c->next_try_ms = aff_mono_ms() + c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
	                                                   : c->backoff_ms * 2;
}

redisContext *
cache_conn(cache *c)
{
	struct timeval tv;

	if (c->host == NULL)
		return (NULL);
	if (c->rc != NULL)
		return (c->rc);
	if (aff_mono_ms() < c->next_try_ms)
		return (NULL);
	tv.tv_sec = c->timeout_ms / 1000;
	tv.tv_usec = (c->timeout_ms % 1000) * 1000;
	c->rc = redisConnectWithTimeout(c->host, c->port, tv);
	if (c->rc == NULL) {
		cache_down(c, "out of memory");
		return (NULL);
	}
	if (c->rc->err != 0) {
		cache_down(c, c->rc->errstr);
		return (NULL);
	}
	redisSetTimeout(c->rc, tv);
	if (!c->was_up)
		aff_info("cache: redis %s:%d connected", c->host, c->port);
	c->was_up = 1;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->last_ok_ms = aff_mono_ms();
	return (c->rc);
}

/* Checks a reply; on a connection error marks Redis down. */
static redisReply *
cache_reply(cache *c, void *r)
{
	if (r == NULL) {
		cache_down(c, c->rc->errstr[0] ? c->rc->errstr : "no reply");
		return (NULL);
	}
	c->last_ok_ms = aff_mono_ms();
	return (r);
}

int
cache_get(cache *c, const void *key, size_t keylen, uint8_t **val, size_t *len)
{
	redisContext *rc;
	redisReply *r;
	int rv;

	if ((rc = cache_conn(c)) == NULL)
		return (AFF_UNAVAILABLE);
	if ((r = cache_reply(c, redisCommand(rc, "GET %b", key, keylen))) == NULL)
		return (AFF_UNAVAILABLE);
	if (r->type == REDIS_REPLY_STRING) {
		if ((*val = malloc(r->len > 0 ? r->len : 1)) != NULL) {
			memcpy(*val, r->str, r->len);
			*len = r->len;
			rv = AFF_OK;
		} else
			rv = AFF_NOT_FOUND;
	} else if (r->type == REDIS_REPLY_NIL)
		rv = AFF_NOT_FOUND;
	else {
		/* e.g. a LOADING error while Redis restarts: a miss. */
		rv = AFF_NOT_FOUND;
	}
	freeReplyObject(r);
	return (rv);
}

int
cache_set(cache *c, const void *key, size_t keylen, const void *val, size_t len)
{
	redisContext *rc;
	redisReply *r;

	if ((rc = cache_conn(c)) == NULL)
		return (AFF_UNAVAILABLE);
	r = cache_reply(c, redisCommand(rc, "SET %b %b EX %d", key, keylen,
	                       val, len, c->ttl_s));
	if (r == NULL)
		return (AFF_UNAVAILABLE);
	freeReplyObject(r);
	return (AFF_OK);
}

void
cache_drop(cache *c)
{
	if (c->rc != NULL) {
		redisFree(c->rc);
		c->rc = NULL;
	}
}

int
cache_waiting(const cache *c)
{
	return (c->host == NULL ||
	    (c->rc == NULL && aff_mono_ms() < c->next_try_ms));
}

/* Holding a connection is not enough: a Redis that died since its last
 * reply is only seen at the next command. A connection silent for a
 * second is asked (PING), so a readiness probe sees an outage within
 * about a second without a Redis round trip on every busy call. */
int
cache_status(cache *c)
{
	redisContext *rc;
	redisReply *r;

	if ((rc = cache_conn(c)) == NULL)
		return (AFF_UNAVAILABLE);
	if (aff_mono_ms() - c->last_ok_ms < 1000)
		return (AFF_OK);
	if ((r = cache_reply(c, redisCommand(rc, "PING"))) == NULL)
		return (AFF_UNAVAILABLE);
	freeReplyObject(r);
	return (AFF_OK);
}

/* ---- the orders' copy ---- */

void
cache_orders_ns(char *buf, size_t cap, const char *db_id, const char *copy)
{
	snprintf(buf, cap, "aff:%.32s:%.32s", db_id, copy);
}

/* Appends one command; the replies are read by pipeline_finish. */
static void
pipe_cmd(redisContext *rc, int *queued, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (redisvAppendCommand(rc, fmt, ap) == REDIS_OK)
		(*queued)++;
	va_end(ap);
}

/* Queues the next n order ids (with their seq) of a list index after the
 * seq after. */
static void
pipe_ids(redisContext *rc, int *queued, const char *index, int64_t after,
    size_t n)
{
	pipe_cmd(rc, queued,
	    "ZRANGEBYSCORE %s (%lld +inf WITHSCORES LIMIT 0 %lld", index,
	    (long long)after, (long long)n);
}

/* Reads one reply of a pipeline; NULL (Redis marked down) when the
 * connection failed. */
static redisReply *
pipe_reply(cache *c)
{
	redisReply *r = NULL;

	if (redisGetReply(c->rc, (void **)&r) != REDIS_OK || r == NULL) {
		cache_down(c, c->rc->errstr[0] ? c->rc->errstr : "no reply");
		return (NULL);
	}
	return (r);
}

/* The generation in a reply to HGET/HMGET (nil: 0); -1 when it is not
 * a number. */
static int64_t
reply_gen(const redisReply *r)
{
	if (r->type == REDIS_REPLY_NIL)
		return (0);
	if (r->type != REDIS_REPLY_STRING)
		return (-1);
	return (strtoll(r->str, NULL, 10));
}

/*
 * A batch's writes, grouped so that Redis runs a command per key, not per
 * order: one MSET of the orders, one ZADD per index key (the copy's
 * "oi:" sorted sets: all, e:<editor>, a:<advertiser>, s:<status>) with
 * all of the batch's entries for it, and one HSET naming those keys in
 * the meta hash (field "i:" and the name, once an index holds an order:
 * an index key missing while meta names it was lost, evicted or deleted,
 * and is not an empty page). Sent one command per order and index, a
 * new order cost 11 commands: Redis spent 30 us of CPU on each and the
 * sync thread 16 us formatting them and reading their answers, a tenth
 * of the whole webhook path's CPU.
 */
struct put_entry {
	char name[48]; /* the index key after "<ns>:oi:" */
	char score[24];
	const char *id;
};

/* One order's value, and the key it is kept under. */
struct put_value {
	char key[96 + 260];
	uint8_t val[1024];
	size_t len;
};

static int
put_entry_cmp(const void *a, const void *b)
{
	return (strcmp(((const struct put_entry *)a)->name,
	    ((const struct put_entry *)b)->name));
}

/* The argv of one command, built up to its cap. */
struct put_argv {
	const char **v;
	size_t *len;
	int n;
};

static void
argv_add(struct put_argv *a, const void *s, size_t len)
{
	a->v[a->n] = s;
	a->len[a->n++] = len;
}

static void
pipe_argv(redisContext *rc, int *queued, const struct put_argv *a)
{
	if (redisAppendCommandArgv(rc, a->n, a->v, a->len) == REDIS_OK)
		(*queued)++;
}

int
cache_orders_put(cache *c, const char *ns, int64_t expect,
    const struct store_order_row *rows, size_t n, int64_t *gen)
{
	redisContext *rc;
	redisReply *r;
	int queued = 0, rv = AFF_OK;
	int64_t shown;
	/* Per index key: its full name, for ZADD and for the meta's field. */
	char (*keys)[160] = NULL;
	struct put_entry *e = NULL;
	struct put_value *pv = NULL;
	struct put_argv a = { 0 };
	size_t ne = 0, nk = 0, cap = 2 * 4 * n + 8;

	if ((rc = cache_conn(c)) == NULL)
		return (AFF_UNAVAILABLE);
	if ((e = malloc(4 * n * sizeof(*e) + 1)) == NULL ||
	    (pv = malloc(n * sizeof(*pv) + 1)) == NULL ||
	    (keys = malloc(4 * n * sizeof(*keys) + 1)) == NULL ||
	    (a.v = malloc(cap * sizeof(*a.v))) == NULL ||
	    (a.len = malloc(cap * sizeof(*a.len))) == NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const Affiliate__V1__Order *o = rows[i].order;

		pv[i].len = affiliate__v1__order__get_packed_size(o);
		if (pv[i].len > sizeof(pv[i].val)) {
			pv[i].len = 0; /* cannot be: ids are at most 256 bytes */
			continue;
		}
		affiliate__v1__order__pack(o, pv[i].val);
		snprintf(pv[i].key, sizeof(pv[i].key), "%s:o:%s", ns,
		    o->order_id);
		for (int k = 0; k < 4; k++) {
			struct put_entry *p = &e[ne++];
			if (k == 0)
				snprintf(p->name, sizeof(p->name), "all");
			else if (k == 1)
				snprintf(p->name, sizeof(p->name), "e:%lld",
				    (long long)o->editor_id);
			else if (k == 2)
				snprintf(p->name, sizeof(p->name), "a:%lld",
				    (long long)o->advertiser_id);
			else
				snprintf(p->name, sizeof(p->name), "s:%.40s",
				    o->status);
			snprintf(p->score, sizeof(p->score), "%lld",
			    (long long)rows[i].seq);
			p->id = o->order_id;
		}
	}
	qsort(e, ne, sizeof(*e), put_entry_cmp);

	/* The batch lands only on the copy this database last wrote: WATCH
	 * makes the check and the write one step, so another writer (a
	 * restored or copied database with the same id) cannot slip a batch
	 * in between. */
	pipe_cmd(rc, &queued, "WATCH %s:o:meta", ns);
	pipe_cmd(rc, &queued, "HGET %s:o:meta gen", ns);
	if (queued != 2 || (r = pipe_reply(c)) == NULL) {
		rv = AFF_UNAVAILABLE;
		goto out;
	}
	freeReplyObject(r);
	if ((r = pipe_reply(c)) == NULL) {
		rv = AFF_UNAVAILABLE;
		goto out;
	}
	shown = reply_gen(r);
	freeReplyObject(r);
	if (shown != expect) {
		if ((r = cache_reply(c, redisCommand(rc, "UNWATCH"))) == NULL)
			rv = AFF_UNAVAILABLE;
		else {
			freeReplyObject(r);
			rv = AFF_ABORTED;
		}
		goto out;
	}
	queued = 0;
	pipe_cmd(rc, &queued, "MULTI");
	/* An order changed since it was created leaves the status sets it
	 * was in; one at its first revision was never in another. */
	for (size_t i = 0; i < n; i++) {
		const char *word;

		if (rows[i].rev <= 1 || pv[i].len == 0)
			continue;
		for (int v = 1;
		     (word = aff_status_word(AFF_ORDER_STATUS, v)) != NULL; v++)
			if (strcmp(word, rows[i].order->status) != 0)
				pipe_cmd(rc, &queued, "ZREM %s:oi:s:%s %s", ns, word,
				    rows[i].order->order_id);
	}
	a.n = 0;
	argv_add(&a, "MSET", 4);
	for (size_t i = 0; i < n; i++)
		if (pv[i].len > 0) {
			argv_add(&a, pv[i].key, strlen(pv[i].key));
			argv_add(&a, pv[i].val, pv[i].len);
		}
	if (a.n > 1)
		pipe_argv(rc, &queued, &a);
	for (size_t i = 0; i < ne;) {
		size_t j = i;

		snprintf(keys[nk], sizeof(keys[nk]), "%s:oi:%s", ns, e[i].name);
		a.n = 0;
		argv_add(&a, "ZADD", 4);
		argv_add(&a, keys[nk], strlen(keys[nk]));
		for (; j < ne && strcmp(e[j].name, e[i].name) == 0; j++) {
			argv_add(&a, e[j].score, strlen(e[j].score));
			argv_add(&a, e[j].id, strlen(e[j].id));
		}
		pipe_argv(rc, &queued, &a);
		/* The meta field for it: "i:" and the name, kept beside it. */
		snprintf(keys[nk], sizeof(keys[nk]), "i:%s", e[i].name);
		nk++;
		i = j;
	}
	if (nk > 0) {
		char meta[96];

		snprintf(meta, sizeof(meta), "%s:o:meta", ns);
		a.n = 0;
		argv_add(&a, "HSET", 4);
		argv_add(&a, meta, strlen(meta));
		for (size_t k = 0; k < nk; k++) {
			argv_add(&a, keys[k], strlen(keys[k]));
			argv_add(&a, "1", 1);
		}
		pipe_argv(rc, &queued, &a);
	}
	pipe_cmd(rc, &queued, "HINCRBY %s:o:meta gen 1", ns);
	pipe_cmd(rc, &queued, "EXEC");
	/* MULTI's OK and one QUEUED per command, then EXEC's answer. */
	for (int i = 0; i < queued - 1; i++) {
		if ((r = pipe_reply(c)) == NULL) {
			rv = AFF_UNAVAILABLE;
			goto out;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			aff_warn("cache: redis: %s", r->str);
			rv = AFF_UNAVAILABLE;
		}
		freeReplyObject(r);
	}
	if ((r = pipe_reply(c)) == NULL) {
		rv = AFF_UNAVAILABLE;
		goto out;
	}
	if (r->type == REDIS_REPLY_NIL)
		rv = AFF_ABORTED; /* the copy changed under the WATCH */
	else if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
	    r->element[r->elements - 1]->type != REDIS_REPLY_INTEGER)
		rv = AFF_UNAVAILABLE;
	else if (rv == AFF_OK)
		*gen = r->element[r->elements - 1]->integer;
	freeReplyObject(r);
out:
	free(a.len);
	free(a.v);
	free(keys);
	free(pv);
	free(e);
	return (rv);
}

int
cache_orders_gen(cache *c, const char *ns, int64_t *gen)
{
	redisContext *rc;
	redisReply *r;
	int rv = AFF_OK;

	if ((rc = cache_conn(c)) == NULL)
		return (AFF_UNAVAILABLE);
	r = cache_reply(c, redisCommand(rc, "HGET %s:o:meta gen", ns));
	if (r == NULL)
		return (AFF_UNAVAILABLE);
	if ((*gen = reply_gen(r)) < 0)
		rv = AFF_UNAVAILABLE;
	freeReplyObject(r);
	return (rv);
}

/* The copy is missing a key it must have: its generation goes, so no
 * reader trusts it and the sync builds a new one. */
static void
cache_orders_broken(cache *c, const char *ns, const char *what)
{
	redisReply *r;

	aff_warn("cache: the Redis copy of the orders lost %s; reading the "
	         "store until it is rebuilt",
	    what);
	r = cache_reply(c, redisCommand(c->rc, "HDEL %s:o:meta gen", ns));
	if (r != NULL)
		freeReplyObject(r);
}

/* Whether o passes the query's filters. */
static int
order_matches(const Affiliate__V1__Order *o, const struct store_order_query *q)
{
	return ((q->editor_id == 0 || o->editor_id == q->editor_id) &&
	    (q->advertiser_id == 0 || o->advertiser_id == q->advertiser_id) &&
	    (q->status == NULL || q->status[0] == '\0' ||
	        strcmp(o->status, q->status) == 0));
}

int
cache_orders_list(cache *c, const char *ns, int64_t gen,
    const struct store_order_query *q, aff_arena *a,
    Affiliate__V1__Order ***out, size_t *n, int64_t *next)
{
	char index[192], name[40];
	Affiliate__V1__Order **v;
	redisContext *rc;
	redisReply *ids = NULL, *vals = NULL, *meta, *exists;
	int queued = 0, empty = 0;
	int64_t after = q->after, last = 0;
	int filters = (q->editor_id > 0) + (q->advertiser_id > 0) +
	    (q->status != NULL && q->status[0] != '\0');
	/* With one filter or none the index is the filter: the page is its
	 * next limit + 1 entries (one more tells whether a page follows),
	 * so no more are fetched. With more, others apply in memory and a
	 * chunk is read at a time. Fetching 256 for a page of 10 made the
	 * list an MGET of 256 keys each call: 1,700 pages/s. */
	size_t k = 0, chunk = filters <= 1 || (size_t)q->limit + 1 >= 256
	    ? (size_t)q->limit + 1
	    : 256;
	int rv = AFF_OK, more = 0;

	if (gen <= 0 || (rc = cache_conn(c)) == NULL)
		return (AFF_UNAVAILABLE);
	/* The most selective index; the other filters apply in memory. */
	if (q->editor_id > 0)
		snprintf(name, sizeof(name), "e:%lld", (long long)q->editor_id);
	else if (q->advertiser_id > 0)
		snprintf(name, sizeof(name), "a:%lld", (long long)q->advertiser_id);
	else if (q->status != NULL && q->status[0] != '\0')
		snprintf(name, sizeof(name), "s:%.16s", q->status);
	else
		snprintf(name, sizeof(name), "all");
	snprintf(index, sizeof(index), "%s:oi:%s", ns, name);
	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)q->limit)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	/* One round trip: the copy's generation, whether it ever held an
	 * order in this index, whether the index key is there, and the
	 * page's first ids (dropped unless the first three say the copy is
	 * the current one and whole). */
	pipe_cmd(rc, &queued, "HMGET %s:o:meta gen i:%s", ns, name);
	pipe_cmd(rc, &queued, "EXISTS %s", index);
	pipe_ids(rc, &queued, index, after, chunk);
	if (queued != 3 || (meta = pipe_reply(c)) == NULL)
		return (AFF_UNAVAILABLE);
	if ((exists = pipe_reply(c)) == NULL) {
		freeReplyObject(meta);
		return (AFF_UNAVAILABLE);
	}
	if ((ids = pipe_reply(c)) == NULL) {
		freeReplyObject(meta);
		freeReplyObject(exists);
		return (AFF_UNAVAILABLE);
	}
	if (meta->type != REDIS_REPLY_ARRAY || meta->elements != 2 ||
	    reply_gen(meta->element[0]) != gen ||
	    exists->type != REDIS_REPLY_INTEGER)
		rv = AFF_UNAVAILABLE;
	else if (meta->element[1]->type == REDIS_REPLY_NIL)
		empty = 1; /* no order was ever in it: an empty page */
	else if (exists->integer == 0) {
		cache_orders_broken(c, ns, index);
		rv = AFF_UNAVAILABLE;
	}
	freeReplyObject(meta);
	freeReplyObject(exists);
	if (rv != AFF_OK) {
		freeReplyObject(ids);
		return (rv);
	}
	more = empty;
	while (!more) {
		size_t i;

		/* The first chunk came with the checks; the next are asked. */
		if (ids == NULL) {
			queued = 0;
			pipe_ids(rc, &queued, index, after, chunk);
			if (queued != 1 ||
			    redisGetReply(rc, (void **)&ids) != REDIS_OK ||
			    ids == NULL) {
				cache_down(c, "no reply");
				return (AFF_UNAVAILABLE);
			}
		}
		if (ids->type != REDIS_REPLY_ARRAY || ids->elements % 2 != 0) {
			rv = AFF_UNAVAILABLE;
			break;
		}
		if (ids->elements == 0)
			break;
		/* MGET the orders of this chunk. */
		{
			size_t m = ids->elements / 2, argc = m + 1;
			const char **argv = aff_arena_alloc(a, sizeof(char *) * argc);
			size_t *lens = aff_arena_alloc(a, sizeof(size_t) * argc);
			if (argv == NULL || lens == NULL) {
				rv = AFF_RESOURCE_EXHAUSTED;
				break;
			}
			argv[0] = "MGET";
			lens[0] = 4;
			for (i = 0; i < m; i++) {
				const redisReply *id = ids->element[2 * i];
				char *key = aff_arena_printf(a, "%s:o:%.*s", ns,
				    (int)id->len, id->str);
				if (key == NULL) {
					rv = AFF_RESOURCE_EXHAUSTED;
					break;
				}
				argv[i + 1] = key;
				lens[i + 1] = strlen(key);
			}
			if (rv != AFF_OK)
				break;
			vals = cache_reply(c,
			    redisCommandArgv(rc, (int)argc, argv, lens));
			if (vals == NULL) {
				freeReplyObject(ids);
				return (AFF_UNAVAILABLE);
			}
			if (vals->type != REDIS_REPLY_ARRAY || vals->elements != m) {
				rv = AFF_UNAVAILABLE;
				break;
			}
			for (i = 0; i < m; i++) {
				const redisReply *val = vals->element[i];
				Affiliate__V1__Order *o;
				int64_t seq = strtoll(ids->element[2 * i + 1]->str, NULL, 10);
				if (val->type != REDIS_REPLY_STRING) {
					/* A listed order is missing. */
					cache_orders_broken(c, ns, "an order");
					rv = AFF_UNAVAILABLE;
					break;
				}
				o = affiliate__v1__order__unpack(aff_arena_allocator(a),
				    val->len, (const uint8_t *)val->str);
				if (o == NULL) {
					rv = AFF_UNAVAILABLE;
					break;
				}
				after = seq;
				if (!order_matches(o, q))
					continue;
				if (k == (size_t)q->limit) {
					more = 1;
					break;
				}
				v[k++] = o;
				last = seq;
			}
		}
		if (rv != AFF_OK || ids->elements / 2 < chunk)
			break;
		freeReplyObject(ids);
		freeReplyObject(vals);
		ids = vals = NULL;
	}
	if (ids != NULL)
		freeReplyObject(ids);
	if (vals != NULL)
		freeReplyObject(vals);
	if (rv != AFF_OK)
		return (rv);
	*out = v;
	*n = k;
	*next = more && !empty ? last : 0;
	return (AFF_OK);
}
