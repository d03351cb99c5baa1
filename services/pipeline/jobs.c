/* jobs.c - see jobs.h. */
#include "jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "aff_err.h"
#include "aff_jobauth.h"
#include "aff_log.h"
#include "aff_util.h"
#include "affiliate/v1/jobs.pb-c.h"

struct jobs {
	struct jobs_config cfg;
	nng_socket push, pull;
	store *dispatch_store, *result_store;
	pthread_t dispatcher, applier;
	int started_dispatcher, started_applier;
	atomic_int workers;

	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int stopping;
	int notified;
};

static void
push_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	jobs *j = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_fetch_add(&j->workers, 1);
		jobs_notify(j); /* queued jobs can go now */
	} else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&j->workers, 1);
}

void
jobs_notify(jobs *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mtx);
	j->notified = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mtx);
}

/* Waits for a notification or the tick; returns 0 when stopping. */
static int
dispatcher_wait(jobs *j)
{
	struct timespec ts;
	int run;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)j->cfg.tick_ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&j->mtx);
	while (!j->stopping && !j->notified)
		if (pthread_cond_timedwait(&j->cv, &j->mtx, &ts) == ETIMEDOUT)
			break;
	j->notified = 0;
	run = !j->stopping;
	pthread_mutex_unlock(&j->mtx);
	return (run);
}

/* Pushes one claimed job; AFF_OK, or AFF_UNAVAILABLE when no worker can
 * take it now. */
static int
push_job(jobs *j, const struct store_job *sj)
{
	Affiliate__V1__Job job = AFFILIATE__V1__JOB__INIT;
	nng_msg *m;
	int rv;

	job.id = sj->id;
	job.kind = (char *)sj->kind;
	job.attempt = sj->attempt;
	job.payload.data = (uint8_t *)sj->payload;
	job.payload.len = sj->payload_len;
	if (nng_msg_alloc(&m, affiliate__v1__job__get_packed_size(&job)) != 0)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__job__pack(&job, nng_msg_body(m));
	if ((rv = nng_sendmsg(j->push, m, NNG_FLAG_NONBLOCK)) != 0) {
		nng_msg_free(m);
		return (AFF_UNAVAILABLE);
	}
	return (AFF_OK);
}

/* One round: claim due jobs and push them. Returns how many went out, or
 * -1 when the round stopped short (no worker took one, a store error). */
static int
dispatch_round(jobs *j)
{
	struct store_job *v;
	size_t n, i;
	aff_arena a;
	int64_t now = aff_now_ms(), inflight, room;
	int sent = 0, rv;

	/*
	 * No more in flight than the workers can finish within the
	 * visibility timeout: a flood would sit in their socket buffers,
	 * time out there and spend attempts for nothing.
	 */
	if (j->dispatch_store->ops->jobs_inflight(j->dispatch_store, now,
	        &inflight) != AFF_OK)
		return (-1);
	room = (int64_t)atomic_load(&j->workers) * j->cfg.policy.window -
	    inflight;
	if (room <= 0)
		return (0);
	aff_arena_init(&a);
	rv = j->dispatch_store->ops->jobs_claim(j->dispatch_store, now,
	    &j->cfg.policy, room < j->cfg.batch ? (int)room : j->cfg.batch, &a,
	    &v, &n);
	if (rv != AFF_OK) {
		aff_arena_fini(&a);
		return (-1);
	}
	for (i = 0; i < n; i++) {
		if (push_job(j, &v[i]) != AFF_OK)
			break;
		aff_debug("jobs: pushed job %lld (%s, attempt %d)",
		    (long long)v[i].id, v[i].kind, v[i].attempt);
		sent++;
	}
	/* What could not be pushed goes back, due now, its attempt uncounted
	 * (one transaction: one fsync, not one per job). */
	if (i < n &&
	    (rv = j->dispatch_store->ops->jobs_unclaim(j->dispatch_store, v + i,
	         n - i)) != AFF_OK)
		/* They stay in flight with an attempt counted, and come back
		 * after the visibility timeout: late, not lost. */
		aff_warn("jobs: %zu unsent jobs could not be given back: %s",
		    n - i, aff_strerror(rv));
	aff_arena_fini(&a);
	return (sent < (int)n ? -1 : sent);
}

static void *
dispatcher_main(void *arg)
{
	jobs *j = arg;
	int sent;

	while (dispatcher_wait(j)) {
		if (atomic_load(&j->workers) == 0)
			continue;
		/* Full batches mean more may be due: go on at once. */
		do
			sent = dispatch_round(j);
		while (sent == j->cfg.batch);
	}
	return (NULL);
}

static void *
applier_main(void *arg)
{
	jobs *j = arg;
	Affiliate__V1__JobResult *r;
	nng_msg *m;
	int rv;

	for (;;) {
		if ((rv = nng_recvmsg(j->pull, &m, 0)) != 0) {
			if (rv == NNG_ECLOSED)
				break;
			continue; /* NNG_ETIMEDOUT: look at the stop flag */
		}
		r = affiliate__v1__job_result__unpack(
		    NULL, nng_msg_len(m), nng_msg_body(m));
		if (r == NULL) {
			aff_warn("jobs: %zu bytes on the results socket are not a "
			         "JobResult; dropped",
			    nng_msg_len(m));
			nng_msg_free(m);
			continue;
		}
		nng_msg_free(m);
		/* With a worker secret, only a result its MAC vouches for is
		 * applied: the results address may be reachable by others. */
		if (j->cfg.secret != NULL && j->cfg.secret[0] != '\0' &&
		    aff_job_result_verify(j->cfg.secret, r) != AFF_OK) {
			aff_warn("jobs: result for job %lld without a valid MAC "
			         "(AFFILIATE_WORKER_SECRET); dropped",
			    (long long)r->job_id);
			affiliate__v1__job_result__free_unpacked(r, NULL);
			continue;
		}
		rv = j->result_store->ops->job_finish(
		    j->result_store, r, aff_now_ms(), &j->cfg.policy);
		if (rv == AFF_OK)
			aff_debug("jobs: job %lld %s (attempt %d, %s)",
			    (long long)r->job_id, r->ok ? "done" : "failed",
			    r->attempt, r->worker);
		else if (rv == AFF_ALREADY_EXISTS)
			aff_info("jobs: duplicate result for job %lld (attempt %d, "
			         "%s) ignored",
			    (long long)r->job_id, r->attempt, r->worker);
		else
			aff_warn("jobs: result for job %lld from %s not applied: %s",
			    (long long)r->job_id, r->worker, aff_strerror(rv));
		jobs_notify(j); /* room for another job, or a retry due soon */
		affiliate__v1__job_result__free_unpacked(r, NULL);
	}
	return (NULL);
}

static int
listen_on(nng_socket s, const char *url)
{
	int rv = nng_listen(s, url, NULL, 0);

	if (rv != 0)
		aff_error("jobs: cannot listen on %s: %s", url, nng_strerror(rv));
	if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL)
		return (AFF_INVALID_ARGUMENT);
	return (rv == 0 ? AFF_OK : AFF_UNAVAILABLE);
}

int
jobs_start(const struct jobs_config *cfg, jobs **jp)
{
	jobs *j;
	int rv, n;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	j->cfg = *cfg;
	if (j->cfg.batch <= 0)
		j->cfg.batch = 64;
	if (j->cfg.tick_ms <= 0)
		j->cfg.tick_ms = 50;
	if (j->cfg.policy.window <= 0)
		j->cfg.policy.window = 16;
	atomic_init(&j->workers, 0);
	pthread_mutex_init(&j->mtx, NULL);
	pthread_cond_init(&j->cv, NULL);
	if ((rv = store_open(cfg->db_path, &j->dispatch_store)) != AFF_OK ||
	    (rv = store_open(cfg->db_path, &j->result_store)) != AFF_OK)
		goto failed;
	if (nng_push0_open(&j->push) != 0 || nng_pull0_open(&j->pull) != 0) {
		rv = AFF_INTERNAL;
		goto failed;
	}
	nng_socket_set_size(j->pull, NNG_OPT_RECVMAXSZ, 1 << 20);
	/* No send buffer: NNG 1.5.2 leaks a message still buffered at close
	 * (seen under LeakSanitizer), and a buffered job is one no worker has
	 * yet. A non-blocking send then fails once each worker's connection
	 * has a message in flight; the rest of the round goes back in one
	 * transaction (jobs_unclaim), not one per job. */
	nng_socket_set_ms(j->pull, NNG_OPT_RECVTIMEO, 200);
	nng_pipe_notify(j->push, NNG_PIPE_EV_ADD_POST, push_pipe_cb, j);
	nng_pipe_notify(j->push, NNG_PIPE_EV_REM_POST, push_pipe_cb, j);
	if ((rv = listen_on(j->push, cfg->jobs_url)) != AFF_OK ||
	    (rv = listen_on(j->pull, cfg->results_url)) != AFF_OK)
		goto failed;
	if ((rv = j->dispatch_store->ops->jobs_resume(
	         j->dispatch_store, aff_now_ms(), &n)) != AFF_OK)
		goto failed;
	if (n > 0)
		aff_info("jobs: %d jobs in flight at the last stop are due again", n);
	if (pthread_create(&j->applier, NULL, applier_main, j) != 0) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
	pthread_setname_np(j->applier, "aff:jobs-apply");
	j->started_applier = 1;
	if (pthread_create(&j->dispatcher, NULL, dispatcher_main, j) != 0) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
	pthread_setname_np(j->dispatcher, "aff:jobs-push");
	j->started_dispatcher = 1;
	aff_info("jobs: pushing on %s, results on %s (visibility %lld ms, %d "
	         "attempts)",
	    cfg->jobs_url, cfg->results_url, (long long)cfg->policy.visibility_ms,
	    cfg->policy.max_attempts);
	*jp = j;
	return (AFF_OK);
failed:
	jobs_stop(j);
	return (rv);
}

void
jobs_stop(jobs *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mtx);
	j->stopping = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mtx);
	if (j->started_dispatcher)
		pthread_join(j->dispatcher, NULL);
	/* Closing PULL ends the applier's receive with NNG_ECLOSED. */
	nng_close(j->push);
	nng_close(j->pull);
	if (j->started_applier)
		pthread_join(j->applier, NULL);
	store_close(j->dispatch_store);
	store_close(j->result_store);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mtx);
	free(j);
}
