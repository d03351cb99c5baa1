/*
 * metrics.c - see metrics.h: the bridge's counters and their exposition.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"

/* Rows beyond the route table: /openapi.json, /metrics, and every path
 * no route has (one series, so a scan of random paths cannot grow the
 * label set). */
#define M_ROWS_MAX 32
#define M_OPENAPI 0
#define M_METRICS 1
#define M_OTHER 2
#define M_EXTRA 3

#define M_STATUS_MIN 100
#define M_STATUS_N 500

/* Latency buckets, in milliseconds (exposed in seconds). */
static const long long m_bucket_ms[] = { 1, 5, 10, 25, 50, 100, 250, 500,
	1000, 2500, 5000, 10000 };
#define M_BUCKETS (sizeof(m_bucket_ms) / sizeof(m_bucket_ms[0]))

struct m_row {
	_Atomic unsigned long long status[M_STATUS_N];
	_Atomic unsigned long long bucket[M_BUCKETS + 1]; /* last: +Inf */
	_Atomic unsigned long long sum_ms;
};

static struct m_row m_rows[M_ROWS_MAX];

static size_t
m_row_index(const struct route *route, const char *path)
{
	size_t n = route_count + M_EXTRA;

	if (route != NULL && n <= M_ROWS_MAX)
		return ((size_t)(route - route_table));
	if (path != NULL && strcmp(path, "/openapi.json") == 0)
		return (route_count + M_OPENAPI);
	if (path != NULL && strcmp(path, "/metrics") == 0)
		return (route_count + M_METRICS);
	return (route_count + M_OTHER);
}

void
metrics_request(const struct route *route, const char *path, int status,
    long long ms)
{
	struct m_row *r;
	size_t i, b;

	if (route_count + M_EXTRA > M_ROWS_MAX)
		return; /* the table outgrew the array: count nothing */
	i = m_row_index(route, path);
	r = &m_rows[i];
	if (status < M_STATUS_MIN || status >= M_STATUS_MIN + M_STATUS_N)
		status = 500;
	if (ms < 0)
		ms = 0;
	atomic_fetch_add_explicit(&r->status[status - M_STATUS_MIN], 1,
	    memory_order_relaxed);
	for (b = 0; b < M_BUCKETS && ms > m_bucket_ms[b]; b++)
		;
	atomic_fetch_add_explicit(&r->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->sum_ms, (unsigned long long)ms,
	    memory_order_relaxed);
}

struct m_buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void
m_printf(struct m_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
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
		size_t cap = b->cap * 2 + (size_t)n;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void
m_labels(size_t i, const char **method, const char **route)
{
	if (i < route_count) {
		*method = route_table[i].method;
		*route = route_table[i].path;
		return;
	}
	*method = "";
	switch (i - route_count) {
	case M_OPENAPI: *route = "/openapi.json"; break;
	case M_METRICS: *route = "/metrics"; break;
	default: *route = "other"; break;
	}
}

int
metrics_render(char **out, size_t *len)
{
	struct m_buf b = { NULL, 0, 0, 0 };
	size_t i, s, k, rows = route_count + M_EXTRA;
	const char *method, *route;

	if ((b.p = malloc(8192)) == NULL)
		return (-1);
	b.cap = 8192;
	b.p[0] = '\0';
	if (rows > M_ROWS_MAX)
		rows = 0;
	m_printf(&b, "# HELP affiliate_bridge_http_requests_total HTTP requests "
	    "answered by the bridge, by route template and status.\n"
	    "# TYPE affiliate_bridge_http_requests_total counter\n");
	for (i = 0; i < rows; i++) {
		m_labels(i, &method, &route);
		for (s = 0; s < M_STATUS_N; s++) {
			unsigned long long v = atomic_load_explicit(
			    &m_rows[i].status[s], memory_order_relaxed);
			if (v == 0)
				continue;
			m_printf(&b, "affiliate_bridge_http_requests_total"
			    "{method=\"%s\",route=\"%s\",code=\"%zu\"} %llu\n",
			    method, route, s + M_STATUS_MIN, v);
		}
	}
	m_printf(&b, "# HELP affiliate_bridge_http_request_duration_seconds "
	    "Time from a request's head to its answer, by route template.\n"
	    "# TYPE affiliate_bridge_http_request_duration_seconds histogram\n");
	for (i = 0; i < rows; i++) {
		unsigned long long cum = 0;

		m_labels(i, &method, &route);
		for (k = 0; k <= M_BUCKETS; k++)
			cum += atomic_load_explicit(&m_rows[i].bucket[k],
			    memory_order_relaxed);
		if (cum == 0)
			continue;
		cum = 0;
		for (k = 0; k <= M_BUCKETS; k++) {
			cum += atomic_load_explicit(&m_rows[i].bucket[k],
			    memory_order_relaxed);
			if (k < M_BUCKETS)
				m_printf(&b, "affiliate_bridge_http_request_duration_seconds_bucket"
				    "{method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
				    method, route, (double)m_bucket_ms[k] / 1000.0, cum);
			else
				m_printf(&b, "affiliate_bridge_http_request_duration_seconds_bucket"
				    "{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
				    method, route, cum);
		}
		m_printf(&b, "affiliate_bridge_http_request_duration_seconds_sum"
		    "{method=\"%s\",route=\"%s\"} %.3f\n", method, route,
		    (double)atomic_load_explicit(&m_rows[i].sum_ms,
		        memory_order_relaxed) / 1000.0);
		m_printf(&b, "affiliate_bridge_http_request_duration_seconds_count"
		    "{method=\"%s\",route=\"%s\"} %llu\n", method, route, cum);
	}
	if (b.oom) {
		free(b.p);
		return (-1);
	}
	*out = b.p;
	*len = b.len;
	return (0);
}
