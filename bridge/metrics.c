/*
 * metrics.c - see metrics.h: the bridge's counters and their exposition.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aff_metrics.h"
#include "edge.h"
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

void
metrics_write(struct aff_mbuf *b)
{
	static const char *const cut_reason[EDGE_CUT_REASONS] = {
		[EDGE_CUT_HEADER_DEADLINE] = "header_deadline",
		[EDGE_CUT_BODY_DEADLINE] = "body_deadline",
		[EDGE_CUT_ADDRESS_CAP] = "address_cap",
		[EDGE_CUT_TOTAL_CAP] = "total_cap",
	};
	struct edge_counts ec;
	size_t i, s, k, rows = route_count + M_EXTRA;
	const char *method, *route;

	if (rows > M_ROWS_MAX)
		rows = 0;
	aff_mbuf_printf(b, "# HELP affiliate_bridge_http_requests_total HTTP requests "
	    "answered by the bridge, by route template and status.\n"
	    "# TYPE affiliate_bridge_http_requests_total counter\n");
	for (i = 0; i < rows; i++) {
		m_labels(i, &method, &route);
		for (s = 0; s < M_STATUS_N; s++) {
			unsigned long long v = atomic_load_explicit(
			    &m_rows[i].status[s], memory_order_relaxed);
			if (v == 0)
				continue;
			aff_mbuf_printf(b, "affiliate_bridge_http_requests_total"
			    "{method=\"%s\",route=\"%s\",code=\"%zu\"} %llu\n",
			    method, route, s + M_STATUS_MIN, v);
		}
	}
	aff_mbuf_printf(b, "# HELP affiliate_bridge_http_request_duration_seconds "
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
				aff_mbuf_printf(b, "affiliate_bridge_http_request_duration_seconds_bucket"
				    "{method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
				    method, route, (double)m_bucket_ms[k] / 1000.0, cum);
			else
				aff_mbuf_printf(b, "affiliate_bridge_http_request_duration_seconds_bucket"
				    "{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
				    method, route, cum);
		}
		aff_mbuf_printf(b, "affiliate_bridge_http_request_duration_seconds_sum"
		    "{method=\"%s\",route=\"%s\"} %.3f\n", method, route,
		    (double)atomic_load_explicit(&m_rows[i].sum_ms,
		        memory_order_relaxed) / 1000.0);
		aff_mbuf_printf(b, "affiliate_bridge_http_request_duration_seconds_count"
		    "{method=\"%s\",route=\"%s\"} %llu\n", method, route, cum);
	}
	edge_counts_get(&ec);
	aff_metric_head(b, "affiliate_bridge_open_connections", "gauge",
	    "HTTP connections the bridge holds now (accepted, not yet closed).");
	aff_mbuf_printf(b, "affiliate_bridge_open_connections %lld\n", ec.open);
	aff_metric_head(b, "affiliate_bridge_slow_clients_cut_total", "counter",
	    "Connections cut by the edge: a request's headers or body past "
	    "its deadline (408), or over a cap on unfinished requests (429).");
	for (i = 0; i < EDGE_CUT_REASONS; i++)
		aff_mbuf_printf(b,
		    "affiliate_bridge_slow_clients_cut_total{reason=\"%s\"} %lld\n",
		    cut_reason[i], ec.cut[i]);
}
