/*
 * jobs.h - the job pipeline's server side: the outbox (the jobs table) is
 * pushed to workers over NNG PUSH, and their results come back on an NNG
 * PULL socket and are applied to the store, once each.
 *
 * Delivery is at least once. A job is claimed (in flight until a
 * visibility timeout) before it is pushed; a job whose result has not come
 * back by then is claimed and pushed again. Nothing is pushed while no
 * worker is connected, so jobs wait in the table, not in a socket buffer
 * that a crash would lose. At start, jobs left in flight by a previous run
 * are due at once.
 */
#ifndef JOBS_H
#define JOBS_H

#include "store.h"

struct jobs_config {
	const char *jobs_url;    /* PUSH, workers dial it */
	const char *results_url; /* PULL, workers dial it */
	const char *db_path;
	struct store_job_policy policy;
	int batch;               /* jobs claimed per round; 0 = 64 */
	int tick_ms;             /* how often due jobs are looked for; 0 = 50 */
	const char *secret;      /* AFFILIATE_WORKER_SECRET: results must carry
	                            its MAC (aff_jobauth.h); NULL or "" when
	                            none is set (loopback or ipc only, see
	                            server.c) */
};

typedef struct jobs jobs;

/* Binds both sockets and starts the dispatcher and the result applier,
 * each with its own store connection. AFF_OK, AFF_INVALID_ARGUMENT (bad
 * URL), AFF_UNAVAILABLE (cannot bind or open the store). */
int jobs_start(const struct jobs_config *cfg, jobs **jp);

/* Stops both threads and closes the sockets; jobs in flight stay in the
 * table and resume at the next start. */
void jobs_stop(jobs *j);

/* Says new jobs are waiting: the dispatcher runs now, not at its tick. */
void jobs_notify(jobs *j);

#endif /* JOBS_H */
