/* worker.c - see worker.h. */
#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "aff_config.h"
#include "aff_err.h"
#include "aff_jobauth.h"
#include "aff_log.h"
#include "affiliate/v1/jobs.pb-c.h"

struct worker {
	struct worker_config cfg;
	nng_socket pull, push;
	pthread_t *threads;
	int n_started;
	atomic_int stopping;
	char name[96];
};

int
worker_config_load(struct worker_config *cfg, int argc, char **argv, int *help)
{
	const struct aff_option opts[] = {
		{ "jobs", "AFFILIATE_JOBS_URL", AFF_OPT_STRING, cfg->jobs_url,
		    sizeof(cfg->jobs_url), 0, 0, NULL, "URL",
		    "the server's job address (tcp://127.0.0.1:5556)" },
		{ "results", "AFFILIATE_RESULTS_URL", AFF_OPT_STRING,
		    cfg->results_url, sizeof(cfg->results_url), 0, 0, NULL, "URL",
		    "the server's result address (tcp://127.0.0.1:5557)" },
		{ "concurrency", "AFFILIATE_WORKER_CONCURRENCY", AFF_OPT_INT,
		    &cfg->concurrency, 0, 1, 256, NULL, "N",
		    "jobs run at once (4)" },
		{ "review-delay", "AFFILIATE_REVIEW_DELAY_MS", AFF_OPT_INT,
		    &cfg->review_delay_ms, 0, 0, 600000, NULL, "MS",
		    "simulated review time (50)" },
		{ "fail-percent", "AFFILIATE_REVIEW_FAIL_PERCENT", AFF_OPT_INT,
		    &cfg->fail_percent, 0, 0, 100, NULL, "P",
		    "reviews that fail, for testing retries (0)" },
		{ "log-level", "AFFILIATE_LOG_LEVEL", AFF_OPT_LEVEL,
		    &cfg->log_level, 0, 0, 0, NULL, "LEVEL",
		    "debug, info, warn or error (info)" },
		/* Environment only, read below: a secret is never a flag. */
		{ NULL, "AFFILIATE_WORKER_SECRET", AFF_OPT_STRING, NULL, 0, 0, 0,
		    NULL, NULL,
		    "shared with the server (16+ characters): each result is "
		    "signed with it (none)" },
	};
	const char *secret;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->jobs_url, sizeof(cfg->jobs_url), "tcp://127.0.0.1:5556");
	snprintf(cfg->results_url, sizeof(cfg->results_url),
	    "tcp://127.0.0.1:5557");
	cfg->concurrency = 4;
	cfg->review_delay_ms = 50;
	cfg->log_level = AFF_LOG_INFO;
	secret = getenv("AFFILIATE_WORKER_SECRET");
	if (secret != NULL && *secret != '\0' &&
	    (strlen(secret) < AFF_WORKER_SECRET_MIN ||
	        strlen(secret) >= sizeof(cfg->secret))) {
		fprintf(stderr, "affiliate-worker: AFFILIATE_WORKER_SECRET must "
		                "be %d to %zu characters\n",
		    AFF_WORKER_SECRET_MIN, sizeof(cfg->secret) - 1);
		return (AFF_INVALID_ARGUMENT);
	}
	snprintf(cfg->secret, sizeof(cfg->secret), "%s",
	    secret != NULL ? secret : "");
	return (aff_config_load("affiliate-worker", opts,
	    sizeof(opts) / sizeof(opts[0]), argc, argv, help));
}

uint8_t *
worker_run_job(const struct worker_config *cfg, const char *name,
    const void *msg, size_t len, size_t *outlen)
{
	Affiliate__V1__JobResult res = AFFILIATE__V1__JOB_RESULT__INIT;
	Affiliate__V1__Job *job;
	const struct worker_handler *h = NULL;
	uint8_t *payload = NULL, *out;
	size_t plen = 0;
	char err[256] = "", mac[65];
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
	if (h == NULL) {
		snprintf(err, sizeof(err), "no handler for job kind '%.64s'",
		    job->kind);
		rv = AFF_UNIMPLEMENTED;
	} else
		rv = h->run(cfg, &job->payload, &payload, &plen, err, sizeof(err));
	res.job_id = job->id;
	res.attempt = job->attempt;
	res.ok = rv == AFF_OK;
	res.error = err;
	res.worker = (char *)name;
	res.payload.data = payload;
	res.payload.len = plen;
	if (cfg->secret[0] != '\0' &&
	    aff_job_result_sign(cfg->secret, &res, mac) != AFF_OK) {
		aff_error("worker: cannot sign the result of job %lld",
		    (long long)job->id);
		free(payload);
		affiliate__v1__job__free_unpacked(job, NULL);
		return (NULL);
	}
	*outlen = affiliate__v1__job_result__get_packed_size(&res);
	if ((out = malloc(*outlen > 0 ? *outlen : 1)) != NULL)
		affiliate__v1__job_result__pack(&res, out);
	if (rv != AFF_OK)
		aff_warn("worker: job %lld (%s, attempt %d) failed: %s",
		    (long long)job->id, job->kind, job->attempt, err);
	else
		aff_debug("worker: job %lld (%s, attempt %d) done",
		    (long long)job->id, job->kind, job->attempt);
	free(payload);
	affiliate__v1__job__free_unpacked(job, NULL);
	return (out);
}

static void *
worker_main(void *arg)
{
	worker *w = arg;
	nng_msg *m;
	uint8_t *out;
	size_t outlen;
	int rv;

	while (!atomic_load(&w->stopping)) {
		if ((rv = nng_recvmsg(w->pull, &m, 0)) != 0) {
			if (rv == NNG_ECLOSED)
				break;
			continue; /* timed out: look at the stop flag */
		}
		out = worker_run_job(&w->cfg, w->name, nng_msg_body(m),
		    nng_msg_len(m), &outlen);
		nng_msg_free(m);
		if (out == NULL)
			continue;
		/* A result that cannot be sent is not lost: the server pushes
		 * the job again after its visibility timeout. */
		if ((rv = nng_send(w->push, out, outlen, 0)) != 0)
			aff_warn("worker: cannot send a result: %s", nng_strerror(rv));
		free(out);
	}
	return (NULL);
}

static int
dial(nng_socket s, const char *url)
{
	int rv = nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK);

	if (rv != 0)
		aff_error("worker: cannot use %s: %s", url, nng_strerror(rv));
	return (rv == 0 ? AFF_OK : AFF_INVALID_ARGUMENT);
}

int
worker_start(const struct worker_config *cfg, worker **wp)
{
	char host[64] = "?";
	worker *w;
	int rv;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	w->cfg = *cfg;
	atomic_init(&w->stopping, 0);
	gethostname(host, sizeof(host) - 1);
	snprintf(w->name, sizeof(w->name), "%s:%d", host, (int)getpid());
	if (nng_pull0_open(&w->pull) != 0 || nng_push0_open(&w->push) != 0) {
		rv = AFF_INTERNAL;
		goto failed;
	}
	nng_socket_set_size(w->pull, NNG_OPT_RECVMAXSZ, 1 << 20);
	nng_socket_set_ms(w->pull, NNG_OPT_RECVTIMEO, 200);
	nng_socket_set_ms(w->push, NNG_OPT_SENDTIMEO, 5000);
	nng_socket_set_ms(w->pull, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(w->pull, NNG_OPT_RECONNMAXT, 1000);
	nng_socket_set_ms(w->push, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(w->push, NNG_OPT_RECONNMAXT, 1000);
	if ((rv = dial(w->push, cfg->results_url)) != AFF_OK ||
	    (rv = dial(w->pull, cfg->jobs_url)) != AFF_OK)
		goto failed;
	if ((w->threads = calloc((size_t)cfg->concurrency, sizeof(pthread_t))) ==
	    NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
	for (; w->n_started < cfg->concurrency; w->n_started++)
		if (pthread_create(&w->threads[w->n_started], NULL, worker_main,
		        w) != 0) {
			rv = AFF_RESOURCE_EXHAUSTED;
			goto failed;
		}
	aff_info("worker: %s pulling %s, pushing %s (%d at once, review "
	         "delay %d ms)",
	    w->name, cfg->jobs_url, cfg->results_url, cfg->concurrency,
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
	for (int i = 0; i < w->n_started; i++)
		pthread_join(w->threads[i], NULL);
	nng_close(w->pull);
	nng_close(w->push);
	free(w->threads);
	free(w);
}
