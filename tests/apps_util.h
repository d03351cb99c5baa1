/*
 * apps_util.h - shared by test_applications and test_job_results: a real
 * server in-process over real NNG sockets and a real SQLite file, real
 * affiliate-worker processes, and applications made over RPC.
 */
#ifndef APPS_UTIL_H
#define APPS_UTIL_H

#include <stdint.h>
#include <sys/types.h>

#include "affiliate/v1/affiliate.pb-c.h"
#include "testutil.h"

#define APP_SVC (&affiliate__v1__application_service__descriptor)
#define MAX_WORKERS 4

struct fixture {
	struct tu_server ts;
	char db[600];
	pid_t workers[MAX_WORKERS];
	int n_workers;
};

/* Extra editors 100..149, each eligible for every active advertiser, so
 * that there are more than 1,000 distinct pairs to apply for. */
#define EXTRA_EDITORS 50

int setup(void **state);
int setup_short_visibility(void **state);
void stop_workers(struct fixture *f);
int teardown(void **state);
pid_t start_worker(struct fixture *f, const char *delay, const char *flag,
    const char *value);
void worker_secret_of(struct fixture *f, char *out, size_t len);
int apply(struct fixture *f, int64_t editor, int64_t adv,
    Affiliate__V1__Application **out);
void pair(int k, int64_t *editor, int64_t *adv);
int apply_many(struct fixture *f, int n);
void check_all_approved_once(struct fixture *f, long long n, int timeout_ms);

#endif
