/* aff_util.c - see aff_util.h. */
#include "aff_util.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "aff_err.h"

int64_t
aff_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int64_t
aff_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int64_t
aff_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

int
aff_cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rv;

	if ((rv = pthread_condattr_init(&ca)) != 0)
		return (rv);
	if ((rv = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		rv = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return (rv);
}

void
aff_mono_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int
aff_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return (AFF_INVALID_ARGUMENT);
	/* strtoll accepts leading blanks and '+'; an id or a count must not. */
	if (!(*s == '-' || (*s >= '0' && *s <= '9')))
		return (AFF_INVALID_ARGUMENT);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < min || v > max)
		return (AFF_INVALID_ARGUMENT);
	*out = (int64_t)v;
	return (AFF_OK);
}

const char *
aff_env(const char *name, const char *def)
{
	const char *v = getenv(name);

	return ((v != NULL && *v != '\0') ? v : def);
}

/*
 * Random bytes for request ids, drawn from getrandom(2) 16 ids at a time:
 * the bridge makes an id for every request, and a system call each cost a
 * measurable share of a webhook's path on a virtualised host. Per thread,
 * so no lock; a forked child drops what it inherited (it would repeat the
 * parent's ids otherwise).
 */
#define RID_POOL 256
static _Thread_local unsigned char rid_pool[RID_POOL];
static _Thread_local size_t rid_left;
static pthread_once_t rid_once = PTHREAD_ONCE_INIT;

static void
rid_forked(void)
{
	rid_left = 0;
}

static void
rid_init(void)
{
	pthread_atfork(NULL, NULL, rid_forked);
}

void
aff_request_id_new(char buf[33])
{
	unsigned char raw[16];
	size_t got = 0;
	ssize_t n;

	pthread_once(&rid_once, rid_init);
	if (rid_left < sizeof(raw)) {
		while (got < sizeof(rid_pool)) {
			n = getrandom(rid_pool + got, sizeof(rid_pool) - got, 0);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		rid_left = got - got % sizeof(raw);
	}
	if (rid_left < sizeof(raw)) {
		/* Ids need only be unique enough to follow a request. */
		uint64_t t = (uint64_t)aff_mono_ms() ^ (uint64_t)rand();
		for (got = 0; got < sizeof(raw); got++, t >>= 3)
			raw[got] = (unsigned char)t;
	} else {
		rid_left -= sizeof(raw);
		memcpy(raw, rid_pool + rid_left, sizeof(raw));
	}
	aff_hex_encode(raw, sizeof(raw), buf);
}

void
aff_time_rfc3339(int64_t unix_s, char buf[32])
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

uint64_t
aff_fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n-- > 0)
		h = (h ^ *b++) * 0x100000001b3ull;
	return (h);
}

void
aff_hex_encode(const void *raw, size_t n, char *out)
{
	/* OpenSSL writes uppercase; it fails only on a short out, a bug. */
	if (OPENSSL_buf2hexstr_ex(out, 2 * n + 1, NULL, raw, n, '\0') != 1) {
		out[0] = '\0';
		return;
	}
	for (size_t i = 0; i < 2 * n; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
}

int
aff_hex_decode(const char *s, size_t len, unsigned char *out, size_t n)
{
	char text[2 * AFF_HEX_DECODE_MAX + 1];
	size_t got = 0;
	int ok;

	if (n > AFF_HEX_DECODE_MAX || len != 2 * n)
		return (AFF_INVALID_ARGUMENT);
	/* OpenSSL reads up to a NUL: a NUL inside s ends the text early and
	 * got comes out short. */
	memcpy(text, s, len);
	text[len] = '\0';
	/* Bad input is the caller's answer, not an error for whoever next
	 * reads this thread's OpenSSL queue. */
	ERR_set_mark();
	ok = OPENSSL_hexstr2buf_ex(out, n, &got, text, '\0') == 1 && got == n;
	ERR_pop_to_mark();
	OPENSSL_cleanse(text, sizeof(text));
	return (ok ? AFF_OK : AFF_INVALID_ARGUMENT);
}
