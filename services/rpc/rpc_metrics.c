/*
 * rpc_metrics.c - see rpc_metrics.h.
 */
#include "rpc_metrics.h"

#include <stdio.h>

#include "aff_err.h"
#include "aff_metrics.h"

#define CODES 17 /* gRPC's 0..16 */
#define OTHER RPC_METRICS_ROWS

struct rpc_row {
	_Atomic unsigned long long code[CODES];
	struct aff_hist latency;
};

static struct rpc_row rows[RPC_METRICS_ROWS + 1];
static _Atomic unsigned long long cache_looks[2][2]; /* [which][hit] */

void
rpc_metrics_call(int row, int code, int64_t us)
{
	struct rpc_row *r;

	r = &rows[row >= 0 && row < RPC_METRICS_ROWS ? row : OTHER];
	if (code < 0 || code >= CODES)
		code = AFF_UNKNOWN;
	AFF_COUNT(r->code[code], 1);
	if (us >= 0)
		aff_hist_observe(&r->latency, &aff_hist_latency_us, us);
}

void
rpc_metrics_cache(int which, int hit)
{
	AFF_COUNT(cache_looks[which != RPC_CACHE_MEMORY][hit != 0], 1);
}

/* The names of row i: its service and method, or "other". */
static int
row_names(const rpc_registry *r, size_t i, const char **svc, const char **m)
{
	if (i == OTHER) {
		*svc = "other";
		*m = "other";
		return (1);
	}
	return (rpc_registry_method_at(r, i, svc, m));
}

void
rpc_metrics_write(const rpc_registry *r, struct aff_mbuf *b)
{
	const char *svc, *m;
	char labels[256];

	aff_metric_head(b, "affiliate_server_rpc_requests_total", "counter",
	    "RPC calls answered by the server, by service, method and status "
	    "code (gRPC's names).");
	for (size_t i = 0; i <= OTHER; i++) {
		if (!row_names(r, i, &svc, &m))
			continue;
		for (int c = 0; c < CODES; c++) {
			unsigned long long v = AFF_LOAD(rows[i].code[c]);
			if (v != 0)
				aff_mbuf_printf(b,
				    "affiliate_server_rpc_requests_total{service=\"%s\","
				    "method=\"%s\",code=\"%s\"} %llu\n",
				    svc, m, aff_code_name(c), v);
		}
	}
	aff_metric_head(b, "affiliate_server_rpc_duration_seconds", "histogram",
	    "Time from a call's dispatch to its reply (a deferred call's "
	    "includes its group commit), by service and method.");
	for (size_t i = 0; i <= OTHER; i++) {
		if (!row_names(r, i, &svc, &m))
			continue;
		snprintf(labels, sizeof(labels), "service=\"%s\",method=\"%s\"", svc,
		    m);
		aff_hist_write(b, "affiliate_server_rpc_duration_seconds", labels,
		    &aff_hist_latency_us, &rows[i].latency, 1);
	}
	aff_metric_head(b, "affiliate_server_cache_requests_total", "counter",
	    "Looks into the reply cache of cacheable reads: the server's memory "
	    "first, then Redis on a miss.");
	for (int w = 0; w < 2; w++)
		for (int h = 1; h >= 0; h--)
			aff_mbuf_printf(b,
			    "affiliate_server_cache_requests_total{cache=\"%s\","
			    "result=\"%s\"} %llu\n",
			    w == RPC_CACHE_MEMORY ? "memory" : "redis",
			    h ? "hit" : "miss", AFF_LOAD(cache_looks[w][h]));
}
