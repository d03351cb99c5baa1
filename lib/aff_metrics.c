/*
 * aff_metrics.c - see aff_metrics.h.
 */
#include "aff_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const long long latency_us[] = { 100, 250, 500, 1000, 2500, 5000,
	10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
	10000000 };

const struct aff_hist_spec aff_hist_latency_us = { latency_us,
	sizeof(latency_us) / sizeof(latency_us[0]), 1e6 };

void
aff_mbuf_init(struct aff_mbuf *b)
{
	memset(b, 0, sizeof(*b));
}

static int
mbuf_reserve(struct aff_mbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->oom)
		return (-1);
	if (b->len + more < b->cap)
		return (0);
	cap = b->cap * 2 + more + 4096;
	if ((p = realloc(b->p, cap)) == NULL) {
		b->oom = 1;
		return (-1);
	}
	b->p = p;
	b->cap = cap;
	return (0);
}

void
aff_mbuf_printf(struct aff_mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (mbuf_reserve(b, 256) != 0)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		if (mbuf_reserve(b, (size_t)n + 1) != 0)
			return;
	}
}

void
aff_mbuf_append(struct aff_mbuf *b, const char *s, size_t n)
{
	if (mbuf_reserve(b, n + 1) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

int
aff_mbuf_take(struct aff_mbuf *b, char **out, size_t *len)
{
	if (mbuf_reserve(b, 1) != 0) {
		aff_mbuf_fini(b);
		return (-1);
	}
	b->p[b->len] = '\0';
	*out = b->p;
	*len = b->len;
	memset(b, 0, sizeof(*b));
	return (0);
}

void
aff_mbuf_fini(struct aff_mbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
aff_metric_head(struct aff_mbuf *b, const char *name, const char *type,
    const char *help)
{
	aff_mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

void
aff_hist_observe(struct aff_hist *h, const struct aff_hist_spec *sp,
    long long v)
{
	size_t i;

	if (v < 0)
		v = 0;
	for (i = 0; i < sp->n && v > sp->bounds[i]; i++)
		;
	AFF_COUNT(h->bucket[i], 1);
	AFF_COUNT(h->sum, (unsigned long long)v);
}

void
aff_hist_write(struct aff_mbuf *b, const char *name, const char *labels,
    const struct aff_hist_spec *sp, const struct aff_hist *h, int skip_empty)
{
	unsigned long long cum = 0, v[AFF_HIST_MAX + 1];
	const char *sep = labels[0] != '\0' ? "," : "";
	size_t i;

	/* One read of each bucket, so _count is the +Inf bucket even while
	 * others count. */
	for (i = 0; i <= sp->n; i++) {
		v[i] = AFF_LOAD(h->bucket[i]);
		cum += v[i];
	}
	if (cum == 0 && skip_empty)
		return;
	cum = 0;
	for (i = 0; i <= sp->n; i++) {
		cum += v[i];
		if (i < sp->n)
			aff_mbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name,
			    labels, sep, (double)sp->bounds[i] / sp->scale, cum);
		else
			aff_mbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name,
			    labels, sep, cum);
	}
	if (labels[0] != '\0') {
		aff_mbuf_printf(b, "%s_sum{%s} %.6f\n", name, labels,
		    (double)AFF_LOAD(h->sum) / sp->scale);
		aff_mbuf_printf(b, "%s_count{%s} %llu\n", name, labels, cum);
	} else {
		aff_mbuf_printf(b, "%s_sum %.6f\n", name,
		    (double)AFF_LOAD(h->sum) / sp->scale);
		aff_mbuf_printf(b, "%s_count %llu\n", name, cum);
	}
}
