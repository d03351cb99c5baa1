/*
 * worker_metrics.h - a worker's own Prometheus metrics: jobs handled by
 * kind and outcome, their handling time, the jobs running now, served on
 * an optional --metrics-listen ADDR:PORT (AFFILIATE_WORKER_METRICS_LISTEN)
 * as GET /metrics in the text exposition format.
 *
 * The server is a plain socket and one thread: a scrape every few seconds
 * needs no HTTP library, and each request is read under a 2 s deadline
 * and answered with Connection: close, so a silent client holds it at
 * most that long. Counting is relaxed atomics on fixed arrays (kinds from
 * the handler table, the rest as "other").
 */
#ifndef WORKER_METRICS_H
#define WORKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* A job is starting: the in-progress gauge counts it until its done. */
void worker_metrics_job_begin(void);
/* A job handled: kind its handler's index in worker_handlers (-1: no
 * handler), ok its outcome, us its handling time. */
void worker_metrics_job_done(int kind, int ok, int64_t us);

typedef struct worker_metrics worker_metrics;

/* Listens on addr ("host:port", "[v6]:port") and serves GET /metrics.
 * concurrency is shown as the worker's slots. AFF_OK, AFF_INVALID_ARGUMENT
 * (a bad address), AFF_UNAVAILABLE (cannot bind), AFF_RESOURCE_EXHAUSTED. */
int worker_metrics_start(const char *addr, int concurrency,
    worker_metrics **mp);
void worker_metrics_stop(worker_metrics *m);

/* The exposition text (caller frees with free()); 0 or -1 (no memory). */
int worker_metrics_render(int concurrency, char **text, size_t *len);

#endif /* WORKER_METRICS_H */
