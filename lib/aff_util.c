/* aff_util.c - see aff_util.h. */
#include "aff_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

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

void
aff_request_id_new(char buf[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[16];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(raw)) {
		n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n <= 0) {
			/* Ids need only be unique enough to follow a request. */
			uint64_t t = (uint64_t)aff_mono_ms() ^ (uint64_t)rand();
			for (; got < sizeof(raw); got++, t >>= 3)
				raw[got] = (unsigned char)t;
			break;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 15];
	}
	buf[32] = '\0';
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
