/* cache_limit.c - see cache_limit.h. */
#include "cache_limit.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "aff_err.h"
#include "aff_util.h"
#include "cache_conn.h"

/*
 * KEYS[1] the bucket; ARGV[1] rate (tokens a second), ARGV[2] burst.
 * Returns {allowed, whole tokens left, ms until full, ms until a token}.
 *
 * The token bucket kept as one number (GCRA, the generic cell rate
 * algorithm): the moment, in microseconds of Redis's clock, at which the
 * bucket would be full again ("theoretical arrival time"). A call at now
 * may go on when that moment, moved on by one token's time (step), is
 * within the burst's time (tau) of now; a refused call writes nothing.
 * The same answers as a bucket of tokens and a refill time, in one GET
 * and one SET (measured: half the Redis time of HMGET + HSET + PEXPIRE).
 *
 * The time is Redis's (TIME): a bucket two servers share is never
 * refilled by the faster of their clocks. A clock that went back (Redis
 * restored on another host) refuses until it passes the stored moment,
 * at most the burst's time; the key expires 1 s after the bucket would be
 * full, so an idle bucket costs nothing. Script effects replication (the
 * default from Redis 5; asked for on 3.2-4.x) lets TIME precede the
 * write. Numbers go back as integers: Redis truncates a Lua number.
 */
static const char limit_script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local step = 1000000 / tonumber(ARGV[1])\n"
    "local tau = step * tonumber(ARGV[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
    "if tat < now then tat = now end\n"
    "local new = tat + step\n"
    "if new - tau > now then\n"
    "  return {0, 0, math.ceil((tat - now) / 1000),"
    " math.ceil((new - tau - now) / 1000)}\n"
    "end\n"
    "redis.call('SET', KEYS[1], new, 'PX',"
    " math.ceil((new - now) / 1000) + 1000)\n"
    "return {1, math.floor((now + tau - new) / step),"
    " math.ceil((new - now) / 1000), 0}\n";

/* The script's SHA-1 in hex, as EVALSHA names it; made once. */
static char limit_sha[41];
static pthread_once_t limit_sha_once = PTHREAD_ONCE_INIT;

static void
limit_sha_make(void)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	/* Without a SHA-1 the name matches no script: every call is
	 * NOSCRIPT and then EVAL, slower but right. */
	if (EVP_Digest(limit_script, strlen(limit_script), md, &n, EVP_sha1(),
	        NULL) != 1 || n != 20) {
		snprintf(limit_sha, sizeof(limit_sha), "%040d", 0);
		return;
	}
	aff_hex_encode(md, 20, limit_sha);
}

/* The script's reply into st; AFF_OK, or AFF_UNAVAILABLE when it is not
 * the four integers the script returns. */
static int
limit_reply(const redisReply *r, struct cache_limit_state *st)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4)
		return (AFF_UNAVAILABLE);
	for (size_t i = 0; i < 4; i++)
		if (r->element[i]->type != REDIS_REPLY_INTEGER)
			return (AFF_UNAVAILABLE);
	st->allowed = r->element[0]->integer != 0;
	st->remaining = (int)r->element[1]->integer;
	st->reset_ms = r->element[2]->integer;
	st->retry_ms = r->element[3]->integer;
	return (AFF_OK);
}

/* Whether rc failed because the other end closed it (not a timeout). */
static int
stale(const redisContext *rc)
{
	return (rc->err == REDIS_ERR_EOF ||
	    (rc->err == REDIS_ERR_IO && strstr(rc->errstr, "reset") != NULL) ||
	    (rc->err == REDIS_ERR_IO && strstr(rc->errstr, "pipe") != NULL));
}

int
cache_limit_take(cache *c, const char *key, double rate, int burst,
    struct cache_limit_state *st, int *tried)
{
	redisContext *rc;
	redisReply *r;
	char srate[32], sburst[16];
	int rv;

	*tried = 0;
	if (!cache_enabled(c) || cache_waiting(c))
		return (AFF_UNAVAILABLE);
	*tried = 1;
	if ((rc = cache_conn(c)) == NULL)
		return (AFF_UNAVAILABLE);
	(void)pthread_once(&limit_sha_once, limit_sha_make);
	snprintf(srate, sizeof(srate), "%.17g", rate);
	snprintf(sburst, sizeof(sburst), "%d", burst);
	r = redisCommand(rc, "EVALSHA %s 1 %s %s %s", limit_sha, key, srate,
	    sburst);
	/* Closed by Redis (it restarted while this thread was idle): one new
	 * connection and one more try, so that each thread's stale
	 * connection does not count as an outage. A timeout is not retried:
	 * that would double the wait. */
	if (r == NULL && stale(rc)) {
		cache_drop(c);
		if ((rc = cache_conn(c)) == NULL)
			return (AFF_UNAVAILABLE);
		r = redisCommand(rc, "EVALSHA %s 1 %s %s %s", limit_sha, key,
		    srate, sburst);
	}
	/* Redis restarted or flushed its scripts: send the text once, which
	 * also loads it for the next EVALSHA. */
	if (r != NULL && r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(r);
		r = redisCommand(rc, "EVAL %s 1 %s %s %s", limit_script, key, srate,
		    sburst);
	}
	if (r == NULL) {
		cache_down(c, rc->errstr[0] ? rc->errstr : "no reply");
		return (AFF_UNAVAILABLE);
	}
	/* An error reply (LOADING, BUSY, OOM, a read-only replica) leaves the
	 * connection up: this call falls back, the next one asks again. */
	rv = limit_reply(r, st);
	freeReplyObject(r);
	return (rv);
}
