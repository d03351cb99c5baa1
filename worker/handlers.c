/*
 * handlers.c - the job handlers, by kind. review_application simulates an
 * advertiser's review: it waits --review-delay and approves (and, for
 * tests of the retry path, fails --fail-percent of the time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aff_err.h"
#include "aff_status.h"
#include "affiliate/v1/jobs.pb-c.h"
#include "postback.h"
#include "worker.h"

static int
review_application(const struct worker_config *cfg,
    const ProtobufCBinaryData *payload, uint8_t **out, size_t *outlen,
    char *err, size_t errlen)
{
	Affiliate__V1__ReviewApplicationJob *job;
	Affiliate__V1__ReviewApplicationResult res =
	    AFFILIATE__V1__REVIEW_APPLICATION_RESULT__INIT;
	struct timespec ts;

	job = affiliate__v1__review_application_job__unpack(
	    NULL, payload->len, payload->data);
	if (job == NULL) {
		snprintf(err, errlen, "the payload is not a ReviewApplicationJob");
		return (AFF_INVALID_ARGUMENT);
	}
	affiliate__v1__review_application_job__free_unpacked(job, NULL);
	if (cfg->review_delay_ms > 0) {
		ts.tv_sec = cfg->review_delay_ms / 1000;
		ts.tv_nsec = (long)(cfg->review_delay_ms % 1000) * 1000000L;
		nanosleep(&ts, NULL);
	}
	if (cfg->fail_percent > 0 && rand() % 100 < cfg->fail_percent) {
		snprintf(err, errlen, "the advertiser's review service failed");
		return (AFF_UNAVAILABLE);
	}
	/* The seed's review approves every application it is given. */
	res.decision = (char *)aff_status_word(AFF_REVIEW_DECISION,
	    AFFILIATE__V1__REVIEW_DECISION__REVIEW_DECISION_APPROVED);
	*outlen = affiliate__v1__review_application_result__get_packed_size(&res);
	if ((*out = malloc(*outlen > 0 ? *outlen : 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (AFF_RESOURCE_EXHAUSTED);
	}
	affiliate__v1__review_application_result__pack(&res, *out);
	return (AFF_OK);
}

const struct worker_handler worker_handlers[] = {
	{ .kind = "review_application", .run = review_application },
	{ .kind = "postback", .run = worker_postback_run },
};

const size_t worker_handler_count =
    sizeof(worker_handlers) / sizeof(worker_handlers[0]);
