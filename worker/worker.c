/* worker.c - see worker.h. */
#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/req.h>

#include "aff_client.h"
#include "aff_config.h"
#include "aff_err.h"
#include "aff_postback.h"
#include "aff_jobauth.h"
#include "aff_log.h"
#include "aff_tls.h"
#include "aff_util.h"
#include "affiliate/v1/jobs.pb-c.h"
#include "worker_metrics.h"

/* One worker thread: its REQ context on its server's socket, and the job
 * it runs (for the heartbeats; under worker.mtx). */
struct wslot {
	worker *w;
	pthread_t thread;
	int server;      /* index into worker.servers: where it asks */
	nng_ctx ctx;
	nng_aio *aio;
	int busy;
	int64_t job_id;
	char token[64];
	int64_t lease_ms, last_beat;
};

/* How long a worker waits for the server to make its data folder's
 * worker_secret. */
#define SECRET_WAIT_MS 30000

/* One server: the REQ socket the slots ask for jobs on, and the PUSH
 * socket its results and heartbeats go to. */
struct wserver {
	char jobs[AFF_CLIENT_URL_MAX], results[AFF_CLIENT_URL_MAX];
	nng_socket req, push;
	int req_open, push_open;
	atomic_int push_pipes; /* connections up on push */
};

struct worker {
	struct worker_config cfg;
	struct wserver servers[AFF_CLIENT_MAX_URLS];
	int n_servers;
	struct wslot *slots;
	int n_slots, n_started;
	atomic_int stopping;
	char name[96];

	pthread_mutex_t mtx; /* the slots' jobs, beat_stop */
	pthread_cond_t cv;   /* on CLOCK_MONOTONIC */
	pthread_t beat;
	int beat_started, beat_stop;
	worker_metrics *metrics; /* --metrics-listen; NULL: none */
};

int
worker_config_load(struct worker_config *cfg, int argc, char **argv, int *help)
{
	const struct aff_option opts[] = {
		{ "jobs", "AFFILIATE_JOBS_URL", AFF_OPT_STRING, cfg->jobs_url,
		    sizeof(cfg->jobs_url), 0, 0, NULL, "URLS",
		    "the server's job address, or several servers' "
		    "comma-separated (tcp://127.0.0.1:5556)" },
		{ "results", "AFFILIATE_RESULTS_URL", AFF_OPT_STRING,
		    cfg->results_url, sizeof(cfg->results_url), 0, 0, NULL, "URLS",
		    "the server's result address, or several in the order of "
		    "--jobs (tcp://127.0.0.1:5557)" },
		{ "concurrency", "AFFILIATE_WORKER_CONCURRENCY", AFF_OPT_INT,
		    &cfg->concurrency, 0, 1, 256, NULL, "N",
		    "jobs run at once: one request for a job per free slot (4)" },
		{ "data-dir", "AFFILIATE_DATA_DIR", AFF_OPT_STRING, cfg->data_dir,
		    sizeof(cfg->data_dir), 0, 0, NULL, "DIR",
		    "the server's data folder on this host, for its worker_secret "
		    "(data)" },
		{ "worker-secret-file", "AFFILIATE_WORKER_SECRET_FILE",
		    AFF_OPT_STRING, cfg->secret_file, sizeof(cfg->secret_file), 0,
		    0, NULL, "FILE",
		    "a copy of the server's worker_secret, on other hosts (none)" },
		{ "tls-cert", "AFFILIATE_TLS_CERT", AFF_OPT_STRING, cfg->tls_cert,
		    sizeof(cfg->tls_cert), 0, 0, NULL, "FILE",
		    "PEM client certificate for tls+tcp:// addresses (none)" },
		{ "tls-key", "AFFILIATE_TLS_KEY", AFF_OPT_STRING, cfg->tls_key,
		    sizeof(cfg->tls_key), 0, 0, NULL, "FILE",
		    "its PEM private key (none)" },
		{ "tls-ca", "AFFILIATE_TLS_CA", AFF_OPT_STRING, cfg->tls_ca,
		    sizeof(cfg->tls_ca), 0, 0, NULL, "FILE",
		    "PEM CA that signs the server's certificate (none)" },
		{ "review-delay", "AFFILIATE_REVIEW_DELAY_MS", AFF_OPT_INT,
		    &cfg->review_delay_ms, 0, 0, 600000, NULL, "MS",
		    "simulated review time (50)" },
		{ "fail-percent", "AFFILIATE_REVIEW_FAIL_PERCENT", AFF_OPT_INT,
		    &cfg->fail_percent, 0, 0, 100, NULL, "P",
		    "reviews that fail, for testing retries (0)" },
		{ "metrics-listen", "AFFILIATE_WORKER_METRICS_LISTEN",
		    AFF_OPT_STRING, cfg->metrics_listen,
		    sizeof(cfg->metrics_listen), 0, 0, NULL, "ADDR:PORT",
		    "serve GET /metrics (Prometheus' text format) here "
		    "(none)" },
		{ "log-level", "AFFILIATE_LOG_LEVEL", AFF_OPT_LEVEL,
		    &cfg->log_level, 0, 0, 0, NULL, "LEVEL",
		    "debug, info, warn or error (info)" },
		{ "log-format", "AFFILIATE_LOG_FORMAT", AFF_OPT_CUSTOM, NULL, 0,
		    0, 0, aff_log_format_option, "FORMAT",
		    "text, or json: one JSON object a line (text)" },
		{ "postback-allow-private", "AFFILIATE_POSTBACK_ALLOW_PRIVATE",
		    AFF_OPT_CUSTOM, &cfg->postback_allow_private, 0, 0, 0,
		    aff_postback_allow_private_option, "on|off", "deliver postbacks to loopback, private and link-local "
		    "addresses too (tests, one host) (0)" },
		{ "postback-timeout", "AFFILIATE_POSTBACK_TIMEOUT_MS", AFF_OPT_INT,
		    &cfg->postback_timeout_ms, 0, 100, 600000, NULL, "MS",
		    "a postback's whole time, connect to last byte (10000)" },
		{ "postback-connect-timeout",
		    "AFFILIATE_POSTBACK_CONNECT_TIMEOUT_MS", AFF_OPT_INT,
		    &cfg->postback_connect_timeout_ms, 0, 100, 600000, NULL, "MS",
		    "a postback's connection time (3000)" },
		/* Environment only, read below: a secret is never a flag. */
		{ NULL, "AFFILIATE_WORKER_SECRET", AFF_OPT_STRING, NULL, 0, 0, 0,
		    NULL, NULL,
		    "shared with the server (16+ characters): each result is "
		    "signed with it (none)" },
	};
	int made, rv;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->jobs_url, sizeof(cfg->jobs_url), "tcp://127.0.0.1:5556");
	snprintf(cfg->results_url, sizeof(cfg->results_url),
	    "tcp://127.0.0.1:5557");
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "data");
	cfg->concurrency = 4;
	cfg->review_delay_ms = 50;
	cfg->postback_timeout_ms = 10000;
	cfg->postback_connect_timeout_ms = 3000;
	cfg->log_level = AFF_LOG_INFO;
	if ((rv = aff_config_load("affiliate-worker", opts,
	         sizeof(opts) / sizeof(opts[0]), argc, argv, help)) != AFF_OK ||
	    *help)
		return (rv);
	/*
	 * Always a secret: the server applies nothing unsigned. A worker
	 * started with the server (make run) may look before the server's
	 * first start has made DATA_DIR/worker_secret (or even the folder):
	 * it waits for it a while. A --worker-secret-file must be there.
	 */
	for (int waited = 0;; waited += 100) {
		rv = aff_worker_secret_load(getenv("AFFILIATE_WORKER_SECRET"),
		    cfg->secret_file, cfg->data_dir, 0, cfg->secret,
		    sizeof(cfg->secret), &made);
		if (rv != AFF_NOT_FOUND || cfg->secret_file[0] != '\0' ||
		    waited >= SECRET_WAIT_MS)
			break;
		if (waited == 0)
			aff_info("worker: waiting for %s/worker_secret (the server "
			         "makes it at its first start)",
			    cfg->data_dir);
		usleep(100 * 1000);
	}
	if (rv == AFF_NOT_FOUND)
		aff_error("worker: no worker secret: set AFFILIATE_WORKER_SECRET, "
		          "--worker-secret-file, or --data-dir to the server's "
		          "data folder (%s/worker_secret does not exist)",
		    cfg->data_dir);
	return (rv);
}

uint8_t *
worker_run_job(const struct worker_config *cfg, const char *name,
    const void *msg, size_t len, size_t *outlen,
    void (*started)(void *arg, const Affiliate__V1__Job *job),
    void (*done)(void *arg), void *arg)
{
	Affiliate__V1__JobResult res = AFFILIATE__V1__JOB_RESULT__INIT;
	Affiliate__V1__Job *job;
	const struct worker_handler *h = NULL;
	uint8_t *payload = NULL, *packed, *out = NULL;
	size_t plen = 0, rlen;
	char err[256] = "";
	int64_t t0;
	int rv;

	if ((job = affiliate__v1__job__unpack(NULL, len, msg)) == NULL) {
		aff_warn("worker: %zu bytes on the job socket are not a Job; "
		         "dropped",
		    len);
		return (NULL);
	}
	for (size_t i = 0; i < worker_handler_count; i++)
		if (strcmp(worker_handlers[i].kind, job->kind) == 0)
			h = &worker_handlers[i];
	if (started != NULL)
		started(arg, job);
	worker_metrics_job_begin();
	t0 = aff_mono_us();
	if (h == NULL) {
		snprintf(err, sizeof(err), "no handler for job kind '%.64s'",
		    job->kind);
		rv = AFF_UNIMPLEMENTED;
	} else
		rv = h->run(cfg, &job->payload, &payload, &plen, err, sizeof(err));
	worker_metrics_job_done(h != NULL ? (int)(h - worker_handlers) : -1,
	    rv == AFF_OK, aff_mono_us() - t0);
	if (done != NULL)
		done(arg);
	res.job_id = job->id;
	res.attempt = job->attempt;
	res.ok = rv == AFF_OK;
	res.error = err;
	res.worker = (char *)name;
	res.payload.data = payload;
	res.payload.len = plen;
	res.token = job->token;
	rlen = affiliate__v1__job_result__get_packed_size(&res);
	if ((packed = malloc(rlen > 0 ? rlen : 1)) != NULL) {
		affiliate__v1__job_result__pack(&res, packed);
		/* The MAC covers these very bytes (aff_jobauth.h). */
		if (aff_job_report_pack(cfg->secret, AFF_JOB_REPORT_RESULT, packed,
		        rlen, &out, outlen) != AFF_OK)
			out = NULL;
		free(packed);
	}
	if (out == NULL)
		aff_error("worker: cannot make the result of job %lld",
		    (long long)job->id);
	else if (rv != AFF_OK)
		aff_warn("worker: job %lld (%s, attempt %d) failed: %s",
		    (long long)job->id, job->kind, job->attempt, err);
	else
		aff_debug("worker: job %lld (%s, attempt %d) done",
		    (long long)job->id, job->kind, job->attempt);
	free(payload);
	affiliate__v1__job__free_unpacked(job, NULL);
	return (out);
}

static void
slot_started(void *arg, const Affiliate__V1__Job *job)
{
	struct wslot *sl = arg;

	pthread_mutex_lock(&sl->w->mtx);
	sl->busy = 1;
	sl->job_id = job->id;
	snprintf(sl->token, sizeof(sl->token), "%s", job->token);
	sl->lease_ms = job->lease_ms;
	sl->last_beat = aff_mono_ms();
	pthread_mutex_unlock(&sl->w->mtx);
}

static void
slot_done(void *arg)
{
	struct wslot *sl = arg;

	pthread_mutex_lock(&sl->w->mtx);
	sl->busy = 0;
	pthread_mutex_unlock(&sl->w->mtx);
}

/*
 * The PUSH socket for what belongs to server s: its own while it is
 * connected (with separate databases only it knows the job), else one
 * that is (servers sharing a database apply it wherever it lands), else
 * its own again (the send waits there, up to its timeout).
 */
static nng_socket
push_for(worker *w, int s)
{
	if (atomic_load(&w->servers[s].push_pipes) > 0)
		return (w->servers[s].push);
	for (int i = 1; i < w->n_servers; i++) {
		int k = (s + i) % w->n_servers;
		if (atomic_load(&w->servers[k].push_pipes) > 0)
			return (w->servers[k].push);
	}
	return (w->servers[s].push);
}

/* Sends one heartbeat for job_id's lease token (a job of server s). */
static void
beat_send(worker *w, int s, int64_t job_id, const char *token)
{
	Affiliate__V1__JobHeartbeat hb = AFFILIATE__V1__JOB_HEARTBEAT__INIT;
	uint8_t body[128], *out;
	size_t len, outlen;
	int rv;

	hb.job_id = job_id;
	hb.token = (char *)token;
	if ((len = affiliate__v1__job_heartbeat__get_packed_size(&hb)) >
	    sizeof(body))
		return;
	affiliate__v1__job_heartbeat__pack(&hb, body);
	if (aff_job_report_pack(w->cfg.secret, AFF_JOB_REPORT_HEARTBEAT, body,
	        len, &out, &outlen) != AFF_OK)
		return;
	/* Blocking (up to the send timeout): with no send buffer, a
	 * non-blocking send fails while the previous message is going. */
	if ((rv = nng_send(push_for(w, s), out, outlen, 0)) != 0)
		aff_warn("worker: cannot send a heartbeat for job %lld: %s",
		    (long long)job_id, nng_strerror(rv));
	free(out);
}

/*
 * The heartbeat thread: every job that has run for a third of its lease
 * since its last heartbeat gets another, so that a slow review keeps its
 * lease while a dead worker's lapses. Times are monotonic.
 */
static void *
beat_main(void *arg)
{
	worker *w = arg;
	struct timespec ts;
	struct {
		int64_t id;
		int server;
		char token[64];
	} due[64];
	int n;

	pthread_mutex_lock(&w->mtx);
	while (!w->beat_stop) {
		int64_t now = aff_mono_ms(), wait = 100;
		n = 0;
		for (int i = 0; i < w->n_slots; i++) {
			struct wslot *sl = &w->slots[i];
			int64_t every = sl->lease_ms / 3 > 10 ? sl->lease_ms / 3 : 10;
			if (!sl->busy || sl->lease_ms <= 0)
				continue;
			if (now - sl->last_beat >= every && n < 64) {
				due[n].id = sl->job_id;
				due[n].server = sl->server;
				memcpy(due[n].token, sl->token, sizeof(due[n].token));
				n++;
				sl->last_beat = now;
			}
			if (every / 2 < wait)
				wait = every / 2 > 5 ? every / 2 : 5;
		}
		if (n > 0) {
			pthread_mutex_unlock(&w->mtx);
			for (int i = 0; i < n; i++)
				beat_send(w, due[i].server, due[i].id, due[i].token);
			pthread_mutex_lock(&w->mtx);
			continue;
		}
		aff_mono_deadline(&ts, wait);
		pthread_cond_timedwait(&w->cv, &w->mtx, &ts);
	}
	pthread_mutex_unlock(&w->mtx);
	return (NULL);
}

/* Asks for one job on sl's context and waits for it. AFF_OK with *m set,
 * AFF_UNAVAILABLE (ask again: the connection was lost), AFF_ABORTED (the
 * worker is stopping). */
static int
ask_for_job(struct wslot *sl, nng_msg **m)
{
	Affiliate__V1__JobRequest rq = AFFILIATE__V1__JOB_REQUEST__INIT;
	nng_msg *req;
	int rv;

	rq.worker = sl->w->name;
	if (nng_msg_alloc(&req, affiliate__v1__job_request__get_packed_size(&rq)) !=
	    0)
		return (AFF_UNAVAILABLE);
	affiliate__v1__job_request__pack(&rq, nng_msg_body(req));
	nng_aio_set_msg(sl->aio, req);
	nng_ctx_send(sl->ctx, sl->aio);
	nng_aio_wait(sl->aio);
	if ((rv = nng_aio_result(sl->aio)) != 0) {
		nng_msg_free(nng_aio_get_msg(sl->aio));
		return (rv == NNG_ECLOSED ? AFF_ABORTED : AFF_UNAVAILABLE);
	}
	/* No timeout: the request waits at the server until a job is due.
	 * A lost connection ends it (NNG_ECONNRESET: no resend, see
	 * worker_start), and the request is made again. */
	nng_ctx_recv(sl->ctx, sl->aio);
	nng_aio_wait(sl->aio);
	if ((rv = nng_aio_result(sl->aio)) != 0)
		return (rv == NNG_ECLOSED ? AFF_ABORTED : AFF_UNAVAILABLE);
	*m = nng_aio_get_msg(sl->aio);
	return (AFF_OK);
}

static void *
worker_main(void *arg)
{
	struct wslot *sl = arg;
	worker *w = sl->w;
	nng_msg *m;
	uint8_t *out;
	size_t outlen;
	int rv;

	while (!atomic_load(&w->stopping)) {
		if ((rv = ask_for_job(sl, &m)) == AFF_ABORTED)
			break;
		if (rv != AFF_OK) {
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL); /* no busy loop while reconnecting */
			continue;
		}
		out = worker_run_job(&w->cfg, w->name, nng_msg_body(m),
		    nng_msg_len(m), &outlen, slot_started, slot_done, sl);
		nng_msg_free(m);
		if (out == NULL)
			continue;
		/* A result that cannot be sent is not lost: the server delivers
		 * the job again after its lease. */
		if ((rv = nng_send(push_for(w, sl->server), out, outlen, 0)) != 0)
			aff_warn("worker: cannot send a result: %s", nng_strerror(rv));
		free(out);
	}
	return (NULL);
}

static void
push_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	atomic_int *pipes = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(pipes, 1);
}

/* The servers of cfg's lists, paired by position. AFF_OK, or
 * AFF_INVALID_ARGUMENT after saying why. */
static int
worker_servers(worker *w, const struct worker_config *cfg)
{
	char jobs[AFF_CLIENT_MAX_URLS][AFF_CLIENT_URL_MAX];
	char results[AFF_CLIENT_MAX_URLS][AFF_CLIENT_URL_MAX];
	char err[512];
	int nj, nr;

	if (aff_client_url_list(cfg->jobs_url, jobs, &nj, err, sizeof(err)) !=
	    AFF_OK) {
		aff_error("worker: --jobs (AFFILIATE_JOBS_URL): %s", err);
		return (AFF_INVALID_ARGUMENT);
	}
	if (aff_client_url_list(cfg->results_url, results, &nr, err,
	        sizeof(err)) != AFF_OK) {
		aff_error("worker: --results (AFFILIATE_RESULTS_URL): %s", err);
		return (AFF_INVALID_ARGUMENT);
	}
	if (nj != nr) {
		aff_error("worker: %d --jobs URLs but %d --results URLs: give "
		          "each server's result address in the order of its job "
		          "address",
		    nj, nr);
		return (AFF_INVALID_ARGUMENT);
	}
	/* A slot waits at one server: with fewer slots than servers, some
	 * server would never be asked. */
	if (cfg->concurrency < nj) {
		aff_error("worker: --concurrency %d is less than the %d servers: "
		          "each server needs a slot asking it for jobs",
		    cfg->concurrency, nj);
		return (AFF_INVALID_ARGUMENT);
	}
	for (int i = 0; i < nj; i++) {
		memcpy(w->servers[i].jobs, jobs[i], sizeof(jobs[i]));
		memcpy(w->servers[i].results, results[i], sizeof(results[i]));
		atomic_init(&w->servers[i].push_pipes, 0);
	}
	w->n_servers = nj;
	return (AFF_OK);
}

/* Opens and dials server sv's two sockets. */
static int
worker_server_open(struct wserver *sv, const struct aff_tls_files *tls)
{
	int rv;

	if (nng_req0_open(&sv->req) != 0)
		return (AFF_INTERNAL);
	sv->req_open = 1;
	if (nng_push0_open(&sv->push) != 0)
		return (AFF_INTERNAL);
	sv->push_open = 1;
	nng_socket_set_size(sv->req, NNG_OPT_RECVMAXSZ, 1 << 20);
	/* Never resend a request: one that waits at the server is credit
	 * for one job, and a second copy would be answered with a job this
	 * worker drops. A lost connection fails it instead; it is made again. */
	nng_socket_set_ms(sv->req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(sv->push, NNG_OPT_SENDTIMEO, 5000);
	nng_socket_set_ms(sv->req, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(sv->req, NNG_OPT_RECONNMAXT, 1000);
	nng_socket_set_ms(sv->push, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(sv->push, NNG_OPT_RECONNMAXT, 1000);
	nng_pipe_notify(sv->push, NNG_PIPE_EV_ADD_POST, push_pipe_cb,
	    &sv->push_pipes);
	nng_pipe_notify(sv->push, NNG_PIPE_EV_REM_POST, push_pipe_cb,
	    &sv->push_pipes);
	if ((rv = aff_tls_dial(sv->push, sv->results, tls, "worker")) != AFF_OK ||
	    (rv = aff_tls_dial(sv->req, sv->jobs, tls, "worker")) != AFF_OK)
		return (rv);
	return (AFF_OK);
}

int
worker_start(const struct worker_config *cfg, worker **wp)
{
	struct aff_tls_files tls = { cfg->tls_cert, cfg->tls_key, cfg->tls_ca };
	char host[64] = "?";
	worker *w;
	int rv;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	w->cfg = *cfg;
	atomic_init(&w->stopping, 0);
	pthread_mutex_init(&w->mtx, NULL);
	aff_cond_init_monotonic(&w->cv);
	gethostname(host, sizeof(host) - 1);
	snprintf(w->name, sizeof(w->name), "%s:%d", host, (int)getpid());
	if ((rv = worker_servers(w, cfg)) != AFF_OK)
		goto failed;
	if (cfg->metrics_listen[0] != '\0' &&
	    (rv = worker_metrics_start(cfg->metrics_listen, cfg->concurrency,
	         &w->metrics)) != AFF_OK)
		goto failed;
	for (int i = 0; i < w->n_servers; i++)
		if ((rv = worker_server_open(&w->servers[i], &tls)) != AFF_OK) {
			if (w->n_servers > 1)
				aff_error("worker: cannot use server %s / %s: %s",
				    w->servers[i].jobs, w->servers[i].results,
				    aff_strerror(rv));
			goto failed;
		}
	if ((w->slots = calloc((size_t)cfg->concurrency, sizeof(*w->slots))) ==
	    NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
	for (; w->n_slots < cfg->concurrency; w->n_slots++) {
		struct wslot *sl = &w->slots[w->n_slots];
		sl->w = w;
		sl->server = w->n_slots % w->n_servers;
		if (nng_ctx_open(&sl->ctx, w->servers[sl->server].req) != 0 ||
		    nng_aio_alloc(&sl->aio, NULL, NULL) != 0) {
			rv = AFF_RESOURCE_EXHAUSTED;
			goto failed;
		}
	}
	if (pthread_create(&w->beat, NULL, beat_main, w) != 0) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
	w->beat_started = 1;
	for (; w->n_started < cfg->concurrency; w->n_started++)
		if (pthread_create(&w->slots[w->n_started].thread, NULL,
		        worker_main, &w->slots[w->n_started]) != 0) {
			rv = AFF_RESOURCE_EXHAUSTED;
			goto failed;
		}
	aff_info("worker: %s asking %s, pushing %s (%d at once%s, review "
	         "delay %d ms)",
	    w->name, cfg->jobs_url, cfg->results_url, cfg->concurrency,
	    w->n_servers > 1 ? ", spread over the servers" : "",
	    cfg->review_delay_ms);
	*wp = w;
	return (AFF_OK);
failed:
	worker_stop(w);
	return (rv);
}

void
worker_stop(worker *w)
{
	if (w == NULL)
		return;
	atomic_store(&w->stopping, 1);
	/* Closing REQ ends every wait for a job (NNG_ECLOSED); threads with
	 * a job in hand finish it and push its result first. */
	for (int i = 0; i < w->n_servers; i++)
		if (w->servers[i].req_open)
			nng_close(w->servers[i].req);
	for (int i = 0; i < w->n_started; i++)
		pthread_join(w->slots[i].thread, NULL);
	pthread_mutex_lock(&w->mtx);
	w->beat_stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
	if (w->beat_started)
		pthread_join(w->beat, NULL);
	for (int i = 0; i < w->n_servers; i++)
		if (w->servers[i].push_open)
			nng_close(w->servers[i].push);
	for (int i = 0; i < w->n_slots; i++)
		nng_aio_free(w->slots[i].aio);
	free(w->slots);
	worker_metrics_stop(w->metrics);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mtx);
	free(w);
}
