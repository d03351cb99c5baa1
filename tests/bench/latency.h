/*
 * latency.h - what the load clients share: a monotonic clock, latencies
 * recorded per thread (no locks on the hot path) and merged at the end
 * into percentiles.
 */
#ifndef BENCH_LATENCY_H
#define BENCH_LATENCY_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lat {
	uint32_t *us; /* one per answer, microseconds */
	size_t n, cap;
};

static inline uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec);
}

/* Records one latency; 0 or -1 out of memory. */
static inline int
lat_push(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint32_t *p = realloc(l->us, cap * sizeof(*p));
		if (p == NULL)
			return (-1);
		l->us = p;
		l->cap = cap;
	}
	uint64_t us = ns / 1000;
	l->us[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t) us;
	return (0);
}

/* Appends in's records to out; 0 or -1 out of memory. */
static inline int
lat_merge(struct lat *out, const struct lat *in)
{
	for (size_t i = 0; i < in->n; i++)
		if (lat_push(out, (uint64_t) in->us[i] * 1000) != 0)
			return (-1);
	return (0);
}

static inline int
lat_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return (x < y ? -1 : x > y);
}

/* The p-th percentile (0..100) of l, sorting it first; 0 when empty. */
static inline uint32_t
lat_percentile(struct lat *l, int p)
{
	if (l->n == 0)
		return (0);
	qsort(l->us, l->n, sizeof(*l->us), lat_cmp);
	return (l->us[(l->n - 1) * (size_t) p / 100]);
}

static inline void
lat_free(struct lat *l)
{
	free(l->us);
	memset(l, 0, sizeof(*l));
}

#endif /* BENCH_LATENCY_H */
