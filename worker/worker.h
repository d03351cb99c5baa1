/*
 * worker.h - affiliate-worker as a library: pull jobs from the server, run
 * the handler for each job's kind, push the result back. Stateless: it
 * never opens the database, so it runs on any host that reaches the
 * server's job and result addresses.
 */
#ifndef WORKER_H
#define WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct worker_config {
	char jobs_url[256];     /* --jobs, AFFILIATE_JOBS_URL */
	char results_url[256];  /* --results, AFFILIATE_RESULTS_URL */
	int concurrency;        /* --concurrency, AFFILIATE_WORKER_CONCURRENCY */
	int review_delay_ms;    /* --review-delay, AFFILIATE_REVIEW_DELAY_MS */
	int fail_percent;       /* --fail-percent, AFFILIATE_REVIEW_FAIL_PERCENT */
	int log_level;          /* --log-level, AFFILIATE_LOG_LEVEL */
	char secret[256];       /* AFFILIATE_WORKER_SECRET (the environment
	                           only: argv is visible to every user): signs
	                           each result (aff_jobauth.h); "" = none */
};

int worker_config_load(struct worker_config *cfg, int argc, char **argv,
    int *help);

/*
 * A job handler: reads the kind's payload, does the work, and on success
 * sets *out (malloc'd, caller frees) to the kind's packed result. Returns
 * AFF_OK, or an error with a sentence in err (the server retries).
 * Handlers must be idempotent: a job may be delivered more than once.
 */
struct worker_handler {
	const char *kind;
	int (*run)(const struct worker_config *cfg,
	    const ProtobufCBinaryData *payload, uint8_t **out, size_t *outlen,
	    char *err, size_t errlen);
};

/* The handlers, by kind. */
extern const struct worker_handler worker_handlers[];
extern const size_t worker_handler_count;

/*
 * Runs one job message (as received) and returns the packed JobResult
 * (naming this worker name) to
 * push (malloc'd, *len set), or NULL when the bytes are not a Job (logged,
 * dropped: there is no job id to answer).
 */
uint8_t *worker_run_job(const struct worker_config *cfg, const char *name,
    const void *msg, size_t len, size_t *outlen);

typedef struct worker worker;

/* Dials both addresses (and keeps redialling) and starts the threads. */
int worker_start(const struct worker_config *cfg, worker **wp);
void worker_stop(worker *w);

#endif /* WORKER_H */
