/* aff_client_pool.c - see aff_client_pool.h. */
#include "aff_client_pool.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"

/* A down server's first retry comes after this, doubling per failure up
 * to the max: a restarting server is back within a second or two, and a
 * dead one costs one failed dial per 2 s. */
#define CLIENT_BACKOFF_MIN_MS 100
#define CLIENT_BACKOFF_MAX_MS 2000

int
aff_client_url_list(const char *list, char urls[][AFF_CLIENT_URL_MAX],
    int *n, char *err, size_t errlen)
{
	const char *p = list, *e;

	*n = 0;
	if (list == NULL || list[0] == '\0') {
		snprintf(err, errlen, "no server URL");
		return (AFF_INVALID_ARGUMENT);
	}
	for (;; p = e + 1) {
		size_t len;

		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len == 0) {
			snprintf(err, errlen,
			    "an empty URL in the list \"%.200s\" (element %d)", list,
			    *n + 1);
			return (AFF_INVALID_ARGUMENT);
		}
		if (*n == AFF_CLIENT_MAX_URLS) {
			snprintf(err, errlen, "more than %d URLs in the list",
			    AFF_CLIENT_MAX_URLS);
			return (AFF_INVALID_ARGUMENT);
		}
		if (len >= AFF_CLIENT_URL_MAX) {
			snprintf(err, errlen, "URL %d of the list is longer than %d "
			                      "bytes",
			    *n + 1, AFF_CLIENT_URL_MAX - 1);
			return (AFF_INVALID_ARGUMENT);
		}
		memcpy(urls[*n], p, len);
		urls[*n][len] = '\0';
		if (strpbrk(urls[*n], " \t\r\n") != NULL ||
		    strstr(urls[*n], "://") == NULL ||
		    strstr(urls[*n], "://") == urls[*n]) {
			snprintf(err, errlen,
			    "\"%.200s\" (URL %d of the list) is not an address "
			    "such as tcp://HOST:PORT, ipc:///PATH or "
			    "tls+tcp://HOST:PORT",
			    urls[*n], *n + 1);
			return (AFF_INVALID_ARGUMENT);
		}
		(*n)++;
		if (e == NULL)
			break;
	}
	return (AFF_OK);
}

void
aff_client_pool_srv_init(struct aff_client_srv *s, const char *url)
{
	snprintf(s->url, sizeof(s->url), "%s", url);
	atomic_init(&s->next, 0);
	atomic_init(&s->down_until, 0);
	atomic_init(&s->backoff_ms, CLIENT_BACKOFF_MIN_MS);
	atomic_init(&s->down_since, 0);
}

/*
 * Marks s down for its backoff, doubling the next one. Only a client with
 * other servers skips a down one: with one URL every call tries it, as
 * before.
 */
void
aff_client_pool_down(struct aff_client_pool *p, struct aff_client_srv *s)
{
	int backoff = atomic_load(&s->backoff_ms);
	int64_t now = aff_mono_ms();
	long long was = atomic_load(&s->down_until);

	/* Many calls see the same failure at once: the backoff doubles once
	 * per period, not once per call. Races between threads only make
	 * it a little longer or shorter. */
	if (was != 0 && now < atomic_load(&s->down_since) + backoff / 2)
		return;
	atomic_store(&s->down_since, now);
	atomic_store(&s->down_until, now + backoff);
	atomic_store(&s->backoff_ms, backoff * 2 > CLIENT_BACKOFF_MAX_MS
	        ? CLIENT_BACKOFF_MAX_MS
	        : backoff * 2);
	if (was == 0 && p->n > 1)
		aff_warn("client: server %s is down; calls go to the others, "
		         "and it is tried again after a backoff",
		    s->url);
}

/* s answered: it is up again, with its backoff reset. */
void
aff_client_pool_up(struct aff_client_pool *p, struct aff_client_srv *s)
{
	if (atomic_load(&s->down_until) == 0)
		return;
	if (atomic_exchange(&s->down_until, 0) != 0 && p->n > 1)
		aff_info("client: server %s answers again", s->url);
	atomic_store(&s->backoff_ms, CLIENT_BACKOFF_MIN_MS);
}

/* Whether s has an NNG connection up (always "maybe" in direct mode, where
 * each thread has its own). */
static int
client_connected(const struct aff_client_srv *s)
{
	if (s->direct)
		return (1);
	for (int i = 0; i < s->n_socks; i++)
		if (atomic_load(&s->socks[i].pipes) > 0)
			return (1);
	return (0);
}

/*
 * Whether this call may use s now: connected and not marked down. A down
 * server whose backoff has run out is given to one call (the one that
 * moves its down_until on by a backoff), the probe; the others keep
 * skipping it until the probe succeeds.
 */
static int
client_usable(struct aff_client_srv *s, int64_t now)
{
	long long until = atomic_load(&s->down_until);

	if (!client_connected(s))
		return (0);
	if (until == 0)
		return (1);
	if (now < until)
		return (0);
	return (atomic_compare_exchange_strong(&s->down_until, &until,
	    now + atomic_load(&s->backoff_ms)));
}

/*
 * The next server for this call, round-robin: one that is usable and not
 * tried yet, else (every usable one tried or none usable) one not tried
 * yet whatever its mark, so that a call is never refused while a server
 * it did not try might answer. -1 when all were tried.
 */
int
aff_client_pool_pick(struct aff_client_pool *p, uint32_t tried)
{
	unsigned start;
	int64_t now;

	if (p->n == 1)
		return ((tried & 1) ? -1 : 0);
	start = atomic_fetch_add(&p->next, 1);
	now = aff_mono_ms();
	for (int i = 0; i < p->n; i++) {
		int k = (int)((start + (unsigned)i) % (unsigned)p->n);
		if (!(tried & (1u << k)) && client_usable(&p->servers[k], now))
			return (k);
	}
	for (int i = 0; i < p->n; i++) {
		int k = (int)((start + (unsigned)i) % (unsigned)p->n);
		if (!(tried & (1u << k)))
			return (k);
	}
	return (-1);
}

/* The next socket of s, round-robin, that has a connection; NULL when
 * none. */
struct aff_client_sock *
aff_client_pool_sock(struct aff_client_srv *s)
{
	unsigned start = atomic_fetch_add(&s->next, 1);

	for (int i = 0; i < s->n_socks; i++) {
		struct aff_client_sock *cs =
		    &s->socks[(start + (unsigned)i) % (unsigned)s->n_socks];
		if (atomic_load(&cs->pipes) > 0)
			return (cs);
	}
	return (NULL);
}

/*
 * A dial completes a moment before its pipe is announced, and a bridge
 * starts before the server: give a missing connection a short grace instead
 * of failing the first calls.
 */
struct aff_client_sock *
aff_client_pool_wait_sock(struct aff_client_srv *s, int grace_ms)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	struct aff_client_sock *cs;

	for (int waited = 0; (cs = aff_client_pool_sock(s)) == NULL; waited += 2) {
		if (waited >= grace_ms)
			return (NULL);
		nanosleep(&ts, NULL);
	}
	return (cs);
}
