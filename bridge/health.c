/* health.c - see health.h. */
#include "health.h"

#include <string.h>

#include "affiliate/v1/health.pb-c.h"
#include "aff_client.h"
#include "aff_err.h"
#include "bridge_priv.h"

#define ST(x) AFFILIATE__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

/* A readiness probe must answer before the orchestrator's own timeout
 * (Kubernetes' default is 1 s): a server that takes longer is not ready. */
#define HEALTH_READY_TIMEOUT_MS 900

int
health_probe_path(const char *path)
{
	return (strcmp(path, "/livez") == 0 || strcmp(path, "/readyz") == 0);
}

static int
health_answer(struct http_call *hc, int status, const char *reason)
{
	json_t *j = reason == NULL
	    ? json_pack("{s:s}", "status", "ok")
	    : json_pack("{s:s,s:s}", "status", "not ready", "reason", reason);

	if (status == 503)
		hc->retry_after = 1;
	call_send_json(hc, status, j);
	return (status);
}

/* Asks the server's HealthService.Check; returns NULL when all serve,
 * else the reason. */
static const char *
health_ready_reason(struct http_call *hc)
{
	Affiliate__V1__HealthCheckRequest req =
	    AFFILIATE__V1__HEALTH_CHECK_REQUEST__INIT;
	Affiliate__V1__HealthCheckResponse *h;
	struct aff_call_opts opts = { 0 };
	struct aff_call_result res;
	const char *why = NULL;
	uint8_t buf[16];
	size_t len;
	int st;

	len = affiliate__v1__health_check_request__pack(&req, buf);
	opts.request_id = hc->request_id;
	opts.timeout_ms = hc->b->cfg.timeout_ms > 0 &&
	        hc->b->cfg.timeout_ms < HEALTH_READY_TIMEOUT_MS
	    ? hc->b->cfg.timeout_ms
	    : HEALTH_READY_TIMEOUT_MS;
	st = aff_client_invoke(hc->b->client,
	    affiliate__v1__health_service__descriptor.name, "Check", buf, len,
	    &opts, &res);
	if (st != AFF_OK) {
		why = st == AFF_UNAVAILABLE || st == AFF_DEADLINE_EXCEEDED
		    ? "server unreachable"
		    : "server error";
		aff_call_result_fini(&res);
		return (why);
	}
	h = affiliate__v1__health_check_response__unpack(NULL,
	    res.payload_len, res.payload);
	if (h == NULL)
		why = "server sent a reply that does not unpack";
	else if (h->store != ST(SERVING) || h->status != ST(SERVING))
		why = "store not serving";
	else if (h->cache == ST(NOT_SERVING))
		why = "redis not serving"; /* UNKNOWN: no Redis configured */
	if (h != NULL)
		affiliate__v1__health_check_response__free_unpacked(h, NULL);
	aff_call_result_fini(&res);
	return (why);
}

int
health_probe(struct http_call *hc, const char *path)
{
	const char *why;

	if (!call_get_only(hc, path))
		return (hc->status);
	if (strcmp(path, "/livez") == 0)
		return (health_answer(hc, 200, NULL));
	why = health_ready_reason(hc);
	return (health_answer(hc, why == NULL ? 200 : 503, why));
}
