/* cache.c - see cache.h. */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"

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

static void
cache_down(cache *c, const char *why)
{
	if (c->rc != NULL) {
		redisFree(c->rc);
		c->rc = NULL;
	}
	if (c->was_up)
		aff_warn("cache: redis %s:%d unavailable (%s); serving from the "
		         "store, retrying with backoff",
		    c->host, c->port, why);
	c->was_up = 0;
	c->next_try_ms = aff_mono_ms() + c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
	                                                   : c->backoff_ms * 2;
}

/* Returns a live connection, or NULL while Redis is down or off. */
static redisContext *
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

int
cache_ping(cache *c)
{
	redisContext *rc;
	redisReply *r;
	int rv;

	if ((rc = cache_conn(c)) == NULL)
		return (AFF_UNAVAILABLE);
	if ((r = cache_reply(c, redisCommand(rc, "PING"))) == NULL)
		return (AFF_UNAVAILABLE);
	rv = r->type == REDIS_REPLY_STATUS ? AFF_OK : AFF_UNAVAILABLE;
	freeReplyObject(r);
	return (rv);
}

int
cache_status(cache *c)
{
	return (cache_conn(c) != NULL ? AFF_OK : AFF_UNAVAILABLE);
}
