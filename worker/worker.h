/*
 * worker.h - affiliate-worker as a library: ask the server for a job
 * whenever a slot is free, run the handler for its kind, push the result
 * back (proto/affiliate/v1/jobs.proto). While a job runs longer than a
 * third of its lease, heartbeats keep the lease alive. Stateless: it never
 * opens the database, so it runs on any host that reaches the server's
 * job and result addresses.
 */
#ifndef WORKER_H
#define WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "affiliate/v1/jobs.pb-c.h"

struct worker_config {
	/* --jobs, AFFILIATE_JOBS_URL and --results, AFFILIATE_RESULTS_URL:
	 * one URL each, or lists of the same length (up to
	 * AFF_CLIENT_MAX_URLS), comma-separated: the job address and the
	 * result address of each server, in the same order. */
	char jobs_url[4096];
	char results_url[4096];
	int concurrency;        /* --concurrency, AFFILIATE_WORKER_CONCURRENCY */
	int review_delay_ms;    /* --review-delay, AFFILIATE_REVIEW_DELAY_MS */
	int fail_percent;       /* --fail-percent, AFFILIATE_REVIEW_FAIL_PERCENT */
	int log_level;          /* --log-level, AFFILIATE_LOG_LEVEL */
	char data_dir[512];     /* --data-dir, AFFILIATE_DATA_DIR: where the
	                           server on this host keeps worker_secret */
	char secret_file[512];  /* --worker-secret-file, AFFILIATE_WORKER_SECRET_FILE */
	char tls_cert[512];     /* --tls-cert, AFFILIATE_TLS_CERT: client
	                           certificate for tls+tcp:// */
	char tls_key[512];      /* --tls-key, AFFILIATE_TLS_KEY */
	char tls_ca[512];       /* --tls-ca, AFFILIATE_TLS_CA: signs the server's */
	char metrics_listen[256]; /* --metrics-listen, AFFILIATE_WORKER_METRICS_LISTEN:
	                           ADDR:PORT for GET /metrics; "" = none */
	int postback_allow_private; /* --postback-allow-private,
	                           AFFILIATE_POSTBACK_ALLOW_PRIVATE */
	int postback_timeout_ms;   /* --postback-timeout,
	                           AFFILIATE_POSTBACK_TIMEOUT_MS: a delivery's
	                           whole time */
	int postback_connect_timeout_ms; /* --postback-connect-timeout,
	                           AFFILIATE_POSTBACK_CONNECT_TIMEOUT_MS */
	char secret[256];       /* AFFILIATE_WORKER_SECRET (the environment
	                           only: argv is visible to every user), else
	                           read from secret_file or data_dir: signs
	                           what the worker pushes (aff_jobauth.h) */
};

/* Reads options, the environment and the worker secret. AFF_OK, or an
 * error after saying why on stderr. */
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
 * Runs one job message (as received) and returns the packed JobReport
 * carrying its JobResult (naming this worker name), signed with the
 * secret, to push (malloc'd, *outlen set); NULL when the bytes are not a
 * Job (logged, dropped: there is no job to answer). started(arg, job),
 * when not NULL, is called before the handler runs and done(arg) after
 * (the worker's heartbeats for the job run in between).
 */
uint8_t *worker_run_job(const struct worker_config *cfg, const char *name,
    const void *msg, size_t len, size_t *outlen,
    void (*started)(void *arg, const Affiliate__V1__Job *job),
    void (*done)(void *arg), void *arg);

typedef struct worker worker;

/*
 * Dials every address (and keeps redialling) and starts the threads.
 * With several servers, slot i asks server i mod N (so every server
 * always has concurrency/N requests waiting, and never more than the
 * free slots in all), and pushes a job's result and heartbeats to the
 * server the job came from while it is connected, else to one that is.
 * AFF_INVALID_ARGUMENT (said on stderr) for lists that do not pair up or
 * more servers than slots.
 */
int worker_start(const struct worker_config *cfg, worker **wp);
void worker_stop(worker *w);

#endif /* WORKER_H */
