/*
 * jobs.h - the job pipeline's server side: the outbox (the jobs table) is
 * handed to workers over NNG REQ/REP, and their results come back on an
 * NNG PULL socket and are applied to the store, once each
 * (proto/affiliate/v1/jobs.proto describes the exchange).
 *
 * Credit-based: a worker asks for a job (one request per free slot), the
 * request waits here until a job is due, and only then is a job claimed
 * and sent in answer. So a job goes only to a worker that starts it at
 * once; no job waits in a socket buffer while its lease runs, and time
 * queued is never an attempt. A claimed job holds a lease (the visibility
 * timeout) that the worker's heartbeats extend while it works; a job
 * whose lease lapses (its worker died or never answers) is delivered
 * again, and that counts as an attempt. At start, jobs left in flight by
 * a previous run are due at once.
 *
 * Results and heartbeats are applied only with the worker secret's MAC
 * over the bytes as received (aff_jobauth.h) and only for a delivery the
 * server made (its lease token). What fails either is dropped and
 * counted, with at most one warning a second.
 */
#ifndef JOBS_H
#define JOBS_H

#include "store.h"

struct jobs_config {
	const char *jobs_url;    /* REP, workers dial it with REQ */
	const char *results_url; /* PULL, workers dial it with PUSH */
	const char *db_path;
	struct store_job_policy policy;
	int batch;               /* most jobs claimed per round; 0 = 64 */
	int tick_ms;             /* how often due jobs are looked for; 0 = 50 */
	const char *secret;      /* the worker secret (aff_jobauth.h) */
	/* tls+tcp:// listeners: this server's certificate and key, and the
	 * CA that signs workers' client certificates (required). NULL or ""
	 * when the addresses are not tls+tcp://. */
	const char *tls_cert, *tls_key, *tls_ca;
};

typedef struct jobs jobs;

/* What the result applier refused since the start. */
struct jobs_stats {
	long long garbage;         /* not a JobReport, or a body that is not one */
	long long unauthenticated; /* no valid MAC */
	long long foreign;         /* a token of no delivery the server made */
	long long stale;           /* duplicates, heartbeats of past leases */
};

/* Binds both sockets and starts the dispatcher and the result applier,
 * each with its own store connection. AFF_OK, AFF_INVALID_ARGUMENT (bad
 * URL or TLS files), AFF_UNAVAILABLE (cannot bind or open the store). */
int jobs_start(const struct jobs_config *cfg, jobs **jp);

/* Stops both threads and closes the sockets; jobs in flight stay in the
 * table and resume at the next start. */
void jobs_stop(jobs *j);

/* Says new jobs are waiting: the dispatcher runs now, not at its tick. */
void jobs_notify(jobs *j);

void jobs_stats_get(jobs *j, struct jobs_stats *st);

struct aff_mbuf;

/* Appends the pipeline's families to b: jobs by state and the oldest due
 * job's age (from s, the caller's store connection: two cheap queries),
 * then, when j is not NULL, connected workers, deliveries, retries,
 * results and dropped reports (this server's, since its start). */
void jobs_metrics_write(jobs *j, store *s, struct aff_mbuf *b);

#endif /* JOBS_H */
