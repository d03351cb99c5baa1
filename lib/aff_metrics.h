/*
 * aff_metrics.h - what the bridge, the server and the worker share to
 * count and to write Prometheus' text exposition format (version 0.0.4):
 * a growing text buffer, counters and histograms of relaxed atomics on
 * fixed arrays (no lock, no allocation on the counting path), and the
 * HELP/TYPE head each metric family has once.
 *
 * Values are kept as integers in a unit the writer scales (microseconds
 * for a latency, items for a batch size), so observing is a few atomic
 * adds; only the exposition divides.
 */
#ifndef AFF_METRICS_H
#define AFF_METRICS_H

#include <stdatomic.h>
#include <stddef.h>

/* The exposition text as it grows. oom once an allocation failed: every
 * later write is dropped and aff_mbuf_take reports it. */
struct aff_mbuf {
	char *p;
	size_t len, cap;
	int oom;
};

void aff_mbuf_init(struct aff_mbuf *b);
void aff_mbuf_printf(struct aff_mbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void aff_mbuf_append(struct aff_mbuf *b, const char *s, size_t n);
/* Hands the text (NUL-terminated, caller frees with free()) and its
 * length over: 0, or -1 when out of memory (nothing to free then). */
int aff_mbuf_take(struct aff_mbuf *b, char **out, size_t *len);
void aff_mbuf_fini(struct aff_mbuf *b);

/* "# HELP name help\n# TYPE name type\n". */
void aff_metric_head(struct aff_mbuf *b, const char *name, const char *type,
    const char *help);

#define AFF_HIST_MAX 16

/* Bucket upper bounds in the stored unit, ascending; scale turns the unit
 * into the exposed one (1e6: microseconds exposed as seconds). */
struct aff_hist_spec {
	const long long *bounds;
	size_t n; /* <= AFF_HIST_MAX */
	double scale;
};

/* One histogram: per-bucket (not cumulative) counts, the last +Inf. */
struct aff_hist {
	_Atomic unsigned long long bucket[AFF_HIST_MAX + 1];
	_Atomic unsigned long long sum;
};

/* Counts v (in the stored unit; a negative v counts as 0). Lock-free. */
void aff_hist_observe(struct aff_hist *h, const struct aff_hist_spec *sp,
    long long v);

/* Writes name_bucket/_sum/_count lines; labels is "" or `a="x",b="y"`
 * (without braces). Nothing when the histogram is empty and skip_empty. */
void aff_hist_write(struct aff_mbuf *b, const char *name, const char *labels,
    const struct aff_hist_spec *sp, const struct aff_hist *h, int skip_empty);

/* Relaxed add and load: counters need no ordering with anything. */
#define AFF_COUNT(c, n) \
	atomic_fetch_add_explicit(&(c), (n), memory_order_relaxed)
#define AFF_LOAD(c) atomic_load_explicit(&(c), memory_order_relaxed)

/* The latency buckets the server and the worker share: 100 us to 10 s,
 * kept in microseconds. */
extern const struct aff_hist_spec aff_hist_latency_us;

#endif /* AFF_METRICS_H */
