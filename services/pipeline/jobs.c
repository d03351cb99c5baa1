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
#include <nng/protocol/reqrep0/rep.h>

#include "aff_err.h"
#include "aff_jobauth.h"
#include "aff_log.h"
#include "aff_metrics.h"
#include "aff_tls.h"
#include "aff_util.h"
#include "affiliate/v1/jobs.pb-c.h"

/* Requests held at once. Past it, workers' further requests wait in NNG
 * (read from a connection only when a context is free), so a peer that
 * floods requests cannot make this grow without bound. */
#define MAX_SLOTS 4096

/* Requests one connection may have waiting: a worker asks once per slot,
 * and has at most 256 (--concurrency). A peer asking for more is not a
 * worker: its connection is closed, which also takes its requests back,
 * so that one connection cannot take every job there is. */
#define MAX_PARKED_PER_PIPE 256

/*
 * One REP context: it receives a worker's request, then holds it (parked)
 * until the dispatcher answers it with a job, then receives again.
 */
struct slot {
	jobs *j;
	nng_ctx ctx;
	nng_aio *aio;
	enum { SLOT_RECV, SLOT_PARKED, SLOT_SEND } state;
	uint32_t pipe;         /* parked: whose request it is */
	struct slot *next;     /* parked: the next one (oldest first) */
	struct slot *all_next; /* every slot, to free them */
};

struct jobs {
	struct jobs_config cfg;
	nng_socket rep, pull;
	store *dispatch_store, *result_store;
	pthread_t dispatcher, applier;
	int started_dispatcher, started_applier;

	pthread_mutex_t mtx; /* everything below */
	pthread_cond_t cv;   /* on CLOCK_MONOTONIC */
	int stopping;
	int notified;
	int closing;         /* no new slots */
	struct slot *all;
	int n_slots, n_receiving, n_parked;
	struct slot *parked_head, *parked_tail;

	atomic_llong garbage, unauthenticated, foreign, stale, flooders;

	/* For /metrics (jobs_metrics_write). */
	atomic_llong workers;                  /* connections on the REP socket */
	_Atomic unsigned long long deliveries;  /* jobs sent, every attempt */
	_Atomic unsigned long long redeliveries; /* of those, attempts after the first */
	_Atomic unsigned long long results[2]; /* applied: [0] failed, [1] done */
};

static void slot_cb(void *arg);

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

void
jobs_stats_get(jobs *j, struct jobs_stats *st)
{
	st->garbage = atomic_load(&j->garbage);
	st->unauthenticated = atomic_load(&j->unauthenticated);
	st->foreign = atomic_load(&j->foreign);
	st->stale = atomic_load(&j->stale);
}

/* Starts one more receiving context (with j->mtx held); 0 or -1. */
static int
slot_add_locked(jobs *j)
{
	struct slot *sl;

	if (j->closing || j->n_slots >= MAX_SLOTS ||
	    (sl = calloc(1, sizeof(*sl))) == NULL)
		return (-1);
	sl->j = j;
	if (nng_ctx_open(&sl->ctx, j->rep) != 0) {
		free(sl);
		return (-1);
	}
	if (nng_aio_alloc(&sl->aio, slot_cb, sl) != 0) {
		nng_ctx_close(sl->ctx);
		free(sl);
		return (-1);
	}
	sl->state = SLOT_RECV;
	sl->all_next = j->all;
	j->all = sl;
	j->n_slots++;
	j->n_receiving++;
	nng_ctx_recv(sl->ctx, sl->aio);
	return (0);
}

/* Rate-limited warnings about what peers send: a flood of garbage writes
 * one line a second, not one per message. */
static struct aff_log_limit warn_garbage, warn_unauth, warn_foreign, warn_flood;

#define WARN_LIMITED(lim, counter, fmt, ...)                                   \
	do {                                                                   \
		int sup_;                                                      \
		long long n_ = atomic_fetch_add(counter, 1) + 1;               \
		if (aff_log_limit_pass(lim, &sup_))                            \
			aff_warn(fmt " (%lld since start, %d not logged)",     \
			    __VA_ARGS__, n_, sup_);                            \
	} while (0)

/* How many requests of pipe id are parked (with j->mtx held). */
static int
parked_from(jobs *j, uint32_t id)
{
	int n = 0;

	for (struct slot *sl = j->parked_head; sl != NULL; sl = sl->next)
		n += sl->pipe == id;
	return (n);
}

/* The oldest parked request, taken out of the list; NULL when none. */
static struct slot *
parked_pop(jobs *j)
{
	struct slot *sl;

	pthread_mutex_lock(&j->mtx);
	if ((sl = j->parked_head) != NULL) {
		j->parked_head = sl->next;
		if (j->parked_head == NULL)
			j->parked_tail = NULL;
		j->n_parked--;
		sl->state = SLOT_SEND;
	}
	pthread_mutex_unlock(&j->mtx);
	return (sl);
}

static void
slot_cb(void *arg)
{
	struct slot *sl = arg;
	jobs *j = sl->j;
	nng_msg *m;
	int rv = nng_aio_result(sl->aio);

	if (sl->state == SLOT_SEND) {
		/* A reply that could not go (its connection is gone) leaves
		 * its job to the lease, as a worker dying with it would. */
		if (rv != 0 && (m = nng_aio_get_msg(sl->aio)) != NULL)
			nng_msg_free(m);
		if (rv == NNG_ECLOSED)
			return;
		pthread_mutex_lock(&j->mtx);
		sl->state = SLOT_RECV;
		j->n_receiving++;
		pthread_mutex_unlock(&j->mtx);
		nng_ctx_recv(sl->ctx, sl->aio);
		return;
	}
	if (rv != 0) {
		pthread_mutex_lock(&j->mtx);
		j->n_receiving--;
		pthread_mutex_unlock(&j->mtx);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		pthread_mutex_lock(&j->mtx); /* NNG_ENOMEM and such: again */
		j->n_receiving++;
		pthread_mutex_unlock(&j->mtx);
		nng_ctx_recv(sl->ctx, sl->aio);
		return;
	}
	/* A request: its body (a JobRequest) only names the worker, and a
	 * request is a request whatever it says. */
	m = nng_aio_get_msg(sl->aio);
	pthread_mutex_lock(&j->mtx);
	sl->pipe = nng_pipe_id(nng_msg_get_pipe(m));
	if (parked_from(j, sl->pipe) >= MAX_PARKED_PER_PIPE) {
		nng_pipe p = nng_msg_get_pipe(m);
		pthread_mutex_unlock(&j->mtx);
		nng_msg_free(m);
		WARN_LIMITED(&warn_flood, &j->flooders, "%s",
		    "jobs: a connection asked for more jobs at once than a "
		    "worker can run; closed");
		nng_pipe_close(p); /* rep_pipe_cb takes its requests back */
		nng_ctx_recv(sl->ctx, sl->aio);
		return;
	}
	sl->state = SLOT_PARKED;
	sl->next = NULL;
	if (j->parked_tail != NULL)
		j->parked_tail->next = sl;
	else
		j->parked_head = sl;
	j->parked_tail = sl;
	j->n_parked++;
	j->n_receiving--;
	/* Always one context receiving, so the next request is read. */
	if (j->n_receiving == 0)
		(void)slot_add_locked(j);
	j->notified = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mtx);
	nng_msg_free(m);
}

/* A worker's connection is gone: its parked requests will never take a
 * job, so their contexts go back to receiving. */
static void
rep_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	jobs *j = arg;
	struct slot *sl, **pp, *freed = NULL;
	uint32_t id = nng_pipe_id(p);

	/* NNG runs REM_POST for every pipe that saw ADD_PRE, even one
	 * closed before ADD_POST: counting those two keeps the gauge exact. */
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		atomic_fetch_add(&j->workers, 1);
		return;
	}
	atomic_fetch_sub(&j->workers, 1);
	pthread_mutex_lock(&j->mtx);
	j->parked_tail = NULL;
	for (pp = &j->parked_head; (sl = *pp) != NULL;) {
		if (sl->pipe == id) {
			*pp = sl->next;
			sl->state = SLOT_RECV;
			sl->next = freed;
			freed = sl;
			j->n_parked--;
			j->n_receiving++;
		} else {
			j->parked_tail = sl;
			pp = &sl->next;
		}
	}
	pthread_mutex_unlock(&j->mtx);
	for (; freed != NULL; freed = sl) {
		sl = freed->next;
		nng_ctx_recv(freed->ctx, freed->aio);
	}
}

/*
 * Waits for a notification or the tick; returns 0 when stopping. The
 * deadline is on CLOCK_MONOTONIC (the condition variable is made so in
 * jobs_start): a wall-clock step back must not stall the dispatcher, nor
 * one forward make it spin.
 */
static int
dispatcher_wait(jobs *j)
{
	struct timespec ts;
	int run;

	aff_mono_deadline(&ts, j->cfg.tick_ms);
	pthread_mutex_lock(&j->mtx);
	while (!j->stopping && !j->notified)
		if (pthread_cond_timedwait(&j->cv, &j->mtx, &ts) == ETIMEDOUT)
			break;
	j->notified = 0;
	run = !j->stopping;
	pthread_mutex_unlock(&j->mtx);
	return (run);
}

/* Answers the parked request sl with job sj; takes sl. AFF_OK or
 * AFF_RESOURCE_EXHAUSTED (sl is then back to receiving). */
static int
send_job(jobs *j, struct slot *sl, const struct store_job *sj)
{
	Affiliate__V1__Job job = AFFILIATE__V1__JOB__INIT;
	nng_msg *m;

	job.id = sj->id;
	job.kind = (char *)sj->kind;
	job.attempt = sj->attempt;
	job.payload.data = (uint8_t *)sj->payload;
	job.payload.len = sj->payload_len;
	job.token = (char *)sj->token;
	job.lease_ms = j->cfg.policy.visibility_ms;
	if (nng_msg_alloc(&m, affiliate__v1__job__get_packed_size(&job)) != 0) {
		pthread_mutex_lock(&j->mtx);
		sl->state = SLOT_RECV;
		j->n_receiving++;
		pthread_mutex_unlock(&j->mtx);
		nng_ctx_recv(sl->ctx, sl->aio);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	affiliate__v1__job__pack(&job, nng_msg_body(m));
	nng_aio_set_msg(sl->aio, m);
	nng_ctx_send(sl->ctx, sl->aio);
	return (AFF_OK);
}

/* One round: as many due jobs as there are requests waiting, claimed and
 * sent. Returns how many went out, or -1 when the round stopped short. */
static int
dispatch_round(jobs *j)
{
	struct store_job *v;
	struct slot *sl;
	size_t n, i;
	aff_arena a;
	int credit, sent = 0, rv;

	pthread_mutex_lock(&j->mtx);
	credit = j->n_parked;
	pthread_mutex_unlock(&j->mtx);
	if (credit == 0)
		return (0);
	aff_arena_init(&a);
	rv = j->dispatch_store->ops->jobs_claim(j->dispatch_store, aff_mono_ms(),
	    &j->cfg.policy, credit < j->cfg.batch ? credit : j->cfg.batch, &a, &v,
	    &n);
	if (rv != AFF_OK) {
		aff_arena_fini(&a);
		return (-1);
	}
	for (i = 0; i < n; i++) {
		/* Only this thread takes parked requests, but a closed
		 * connection may have taken some back meanwhile. */
		if ((sl = parked_pop(j)) == NULL || send_job(j, sl, &v[i]) != AFF_OK)
			break;
		aff_debug("jobs: sent job %lld (%s, attempt %d)",
		    (long long)v[i].id, v[i].kind, v[i].attempt);
		AFF_COUNT(j->deliveries, 1);
		if (v[i].attempt > 1)
			AFF_COUNT(j->redeliveries, 1);
		sent++;
	}
	/* What could not be sent goes back, due now, its attempt uncounted
	 * (one transaction: one fsync, not one per job). */
	if (i < n &&
	    (rv = j->dispatch_store->ops->jobs_unclaim(j->dispatch_store, v + i,
	         n - i)) != AFF_OK)
		/* They stay in flight with an attempt counted, and come back
		 * after the lease: late, not lost. */
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
		/* Full batches mean more may be due: go on at once. */
		do
			sent = dispatch_round(j);
		while (sent == j->cfg.batch);
	}
	return (NULL);
}

static void
apply_heartbeat(jobs *j, const ProtobufCBinaryData *body)
{
	Affiliate__V1__JobHeartbeat *hb;

	hb = affiliate__v1__job_heartbeat__unpack(NULL, body->len, body->data);
	if (hb == NULL) {
		WARN_LIMITED(&warn_garbage, &j->garbage, "%s",
		    "jobs: a heartbeat that is not a JobHeartbeat; dropped");
		return;
	}
	if (j->result_store->ops->job_extend(j->result_store, hb->job_id,
	        hb->token, aff_mono_ms(), &j->cfg.policy) == AFF_OK)
		aff_debug("jobs: lease of job %lld extended", (long long)hb->job_id);
	else {
		atomic_fetch_add(&j->stale, 1);
		aff_debug("jobs: heartbeat for job %lld of no current lease",
		    (long long)hb->job_id);
	}
	affiliate__v1__job_heartbeat__free_unpacked(hb, NULL);
}

static void
apply_result(jobs *j, const ProtobufCBinaryData *body)
{
	Affiliate__V1__JobResult *r;
	int rv;

	r = affiliate__v1__job_result__unpack(NULL, body->len, body->data);
	if (r == NULL) {
		WARN_LIMITED(&warn_garbage, &j->garbage, "%s",
		    "jobs: a result that is not a JobResult; dropped");
		return;
	}
	rv = j->result_store->ops->job_finish(
	    j->result_store, r, aff_mono_ms(), &j->cfg.policy);
	if (rv == AFF_OK)
		AFF_COUNT(j->results[r->ok != 0], 1);
	if (rv == AFF_OK)
		aff_debug("jobs: job %lld %s (attempt %d, %s)",
		    (long long)r->job_id, r->ok ? "done" : "failed", r->attempt,
		    r->worker);
	else if (rv == AFF_ALREADY_EXISTS) {
		atomic_fetch_add(&j->stale, 1);
		aff_info("jobs: duplicate result for job %lld (attempt %d, %s) "
		         "ignored",
		    (long long)r->job_id, r->attempt, r->worker);
	} else if (rv == AFF_PERMISSION_DENIED || rv == AFF_NOT_FOUND)
		WARN_LIMITED(&warn_foreign, &j->foreign,
		    "jobs: result for job %lld from %s answers no delivery this "
		    "server made; ignored",
		    (long long)r->job_id, r->worker);
	else
		aff_warn("jobs: result for job %lld from %s not applied: %s",
		    (long long)r->job_id, r->worker, aff_strerror(rv));
	affiliate__v1__job_result__free_unpacked(r, NULL);
}

static void *
applier_main(void *arg)
{
	jobs *j = arg;
	Affiliate__V1__JobReport *r;
	nng_msg *m;
	int rv;

	for (;;) {
		if ((rv = nng_recvmsg(j->pull, &m, 0)) != 0) {
			if (rv == NNG_ECLOSED)
				break; /* jobs_stop */
			continue;
		}
		r = affiliate__v1__job_report__unpack(
		    NULL, nng_msg_len(m), nng_msg_body(m));
		if (r == NULL) {
			WARN_LIMITED(&warn_garbage, &j->garbage,
			    "jobs: %zu bytes on the results socket are not a "
			    "JobReport; dropped",
			    nng_msg_len(m));
			nng_msg_free(m);
			continue;
		}
		nng_msg_free(m);
		/* Only what the worker secret's MAC vouches for, over the
		 * bytes as they came: the results address may be reachable
		 * by others. */
		if (aff_job_report_verify(j->cfg.secret, r) != AFF_OK)
			WARN_LIMITED(&warn_unauth, &j->unauthenticated, "%s",
			    "jobs: a report without a valid MAC (worker secret); "
			    "dropped");
		else if (r->body_case == AFFILIATE__V1__JOB_REPORT__BODY_RESULT) {
			apply_result(j, &r->result);
			jobs_notify(j); /* a retry may be due soon */
		} else
			apply_heartbeat(j, &r->heartbeat);
		affiliate__v1__job_report__free_unpacked(r, NULL);
	}
	return (NULL);
}

int
jobs_start(const struct jobs_config *cfg, jobs **jp)
{
	struct aff_tls_files tls = { cfg->tls_cert, cfg->tls_key, cfg->tls_ca };
	jobs *j;
	int rv, n;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	j->cfg = *cfg;
	if (j->cfg.batch <= 0)
		j->cfg.batch = 64;
	if (j->cfg.tick_ms <= 0)
		j->cfg.tick_ms = 50;
	pthread_mutex_init(&j->mtx, NULL);
	aff_cond_init_monotonic(&j->cv);
	if (cfg->secret == NULL ||
	    strlen(cfg->secret) < AFF_WORKER_SECRET_MIN) {
		rv = AFF_INVALID_ARGUMENT; /* a bug in the caller */
		goto failed;
	}
	if ((rv = store_open(cfg->db_path, &j->dispatch_store)) != AFF_OK ||
	    (rv = store_open(cfg->db_path, &j->result_store)) != AFF_OK)
		goto failed;
	if (nng_rep0_open(&j->rep) != 0 || nng_pull0_open(&j->pull) != 0) {
		rv = AFF_INTERNAL;
		goto failed;
	}
	nng_socket_set_size(j->rep, NNG_OPT_RECVMAXSZ, 4096);
	nng_socket_set_size(j->pull, NNG_OPT_RECVMAXSZ, 1 << 20);
	/* No NNG_OPT_RECVTIMEO: the applier's receive waits until a report
	 * comes or jobs_stop closes the socket (it looked at no flag on a
	 * timeout). With a 200 ms timeout NNG's expiry thread cancelled that
	 * receive five times a second, and a close meeting a cancellation
	 * is the one race of this kind our NNG use had: CI saw NNG 1.5.2
	 * panic twice as a server stopped, "pthread_mutex_unlock: Invalid
	 * argument" from a cancel function its expiry thread ran. */
	nng_pipe_notify(j->rep, NNG_PIPE_EV_ADD_PRE, rep_pipe_cb, j);
	nng_pipe_notify(j->rep, NNG_PIPE_EV_REM_POST, rep_pipe_cb, j);
	if ((rv = aff_tls_listen(j->rep, cfg->jobs_url, &tls, "jobs")) != AFF_OK ||
	    (rv = aff_tls_listen(j->pull, cfg->results_url, &tls, "jobs")) !=
	        AFF_OK)
		goto failed;
	if ((rv = j->dispatch_store->ops->jobs_resume(
	         j->dispatch_store, aff_mono_ms(), &n)) != AFF_OK)
		goto failed;
	if (n > 0)
		aff_info("jobs: %d jobs in flight at the last stop are due again", n);
	pthread_mutex_lock(&j->mtx);
	rv = slot_add_locked(j);
	pthread_mutex_unlock(&j->mtx);
	if (rv != 0) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
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
	pthread_setname_np(j->dispatcher, "aff:jobs-send");
	j->started_dispatcher = 1;
	aff_info("jobs: workers ask on %s, results on %s (lease %lld ms, %d "
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
	struct slot *sl;

	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mtx);
	j->stopping = 1;
	j->closing = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mtx);
	if (j->started_dispatcher)
		pthread_join(j->dispatcher, NULL);
	/* Closing ends every context's operation (NNG_ECLOSED) and the
	 * applier's receive. Parked requests get no answer; their workers
	 * ask again when this server is back. */
	nng_close(j->rep);
	nng_close(j->pull);
	if (j->started_applier)
		pthread_join(j->applier, NULL);
	if (atomic_load(&j->garbage) + atomic_load(&j->unauthenticated) +
	        atomic_load(&j->foreign) >
	    0)
		aff_info("jobs: refused since start: %lld not a report, %lld "
		         "without a valid MAC, %lld for no delivery made",
		    (long long)atomic_load(&j->garbage),
		    (long long)atomic_load(&j->unauthenticated),
		    (long long)atomic_load(&j->foreign));
	while ((sl = j->all) != NULL) {
		j->all = sl->all_next;
		nng_aio_free(sl->aio); /* waits for its callback */
		free(sl);
	}
	store_close(j->dispatch_store);
	store_close(j->result_store);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mtx);
	free(j);
}

void
jobs_metrics_write(jobs *j, store *s, struct aff_mbuf *b)
{
	struct store_jobs_stats st;
	int parked;

	if (s->ops->jobs_stats(s, aff_mono_ms(), &st) == AFF_OK) {
		aff_metric_head(b, "affiliate_jobs", "gauge",
		    "Jobs in the outbox by state (done jobs are not counted).");
		aff_mbuf_printf(b, "affiliate_jobs{state=\"queued\"} %lld\n",
		    (long long)st.queued);
		aff_mbuf_printf(b, "affiliate_jobs{state=\"inflight\"} %lld\n",
		    (long long)st.inflight);
		aff_mbuf_printf(b, "affiliate_jobs{state=\"dead\"} %lld\n",
		    (long long)st.dead);
		aff_metric_head(b, "affiliate_jobs_oldest_due_age_seconds", "gauge",
		    "How long the oldest queued job has been due and not taken "
		    "(0: none is waiting).");
		aff_mbuf_printf(b, "affiliate_jobs_oldest_due_age_seconds %.3f\n",
		    (double)st.oldest_due_ms / 1000.0);
	}
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mtx);
	parked = j->n_parked;
	pthread_mutex_unlock(&j->mtx);
	aff_metric_head(b, "affiliate_jobs_connected_workers", "gauge",
	    "Worker connections on this server's jobs address.");
	aff_mbuf_printf(b, "affiliate_jobs_connected_workers %lld\n",
	    (long long)atomic_load(&j->workers));
	aff_metric_head(b, "affiliate_jobs_idle_worker_slots", "gauge",
	    "Workers' requests waiting for a job: free handling slots.");
	aff_mbuf_printf(b, "affiliate_jobs_idle_worker_slots %d\n", parked);
	aff_metric_head(b, "affiliate_jobs_deliveries_total", "counter",
	    "Jobs sent to workers, every attempt counted.");
	aff_mbuf_printf(b, "affiliate_jobs_deliveries_total %llu\n",
	    AFF_LOAD(j->deliveries));
	aff_metric_head(b, "affiliate_jobs_retries_total", "counter",
	    "Deliveries after a job's first: after a failure's backoff or a "
	    "lapsed lease.");
	aff_mbuf_printf(b, "affiliate_jobs_retries_total %llu\n",
	    AFF_LOAD(j->redeliveries));
	aff_metric_head(b, "affiliate_jobs_results_total", "counter",
	    "Workers' results applied, by outcome (a failure is retried or, "
	    "out of attempts, makes the job dead).");
	aff_mbuf_printf(b, "affiliate_jobs_results_total{outcome=\"done\"} "
	    "%llu\n", AFF_LOAD(j->results[1]));
	aff_mbuf_printf(b, "affiliate_jobs_results_total{outcome=\"failed\"} "
	    "%llu\n", AFF_LOAD(j->results[0]));
	aff_metric_head(b, "affiliate_jobs_reports_dropped_total", "counter",
	    "Workers' reports dropped: not a report, no valid MAC, for no "
	    "delivery made, or stale.");
	aff_mbuf_printf(b, "affiliate_jobs_reports_dropped_total{reason="
	    "\"garbage\"} %lld\n", (long long)atomic_load(&j->garbage));
	aff_mbuf_printf(b, "affiliate_jobs_reports_dropped_total{reason="
	    "\"unauthenticated\"} %lld\n",
	    (long long)atomic_load(&j->unauthenticated));
	aff_mbuf_printf(b, "affiliate_jobs_reports_dropped_total{reason="
	    "\"foreign\"} %lld\n", (long long)atomic_load(&j->foreign));
	aff_mbuf_printf(b, "affiliate_jobs_reports_dropped_total{reason="
	    "\"stale\"} %lld\n", (long long)atomic_load(&j->stale));
}
