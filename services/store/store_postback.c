/*
 * store_postback.c - what both store backends share about postbacks
 * (store.h): the retry policy and its backoff, the events' bodies, and the
 * job a delivery is handed out as.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "aff_err.h"
#include "aff_util.h"
#include "store.h"

static struct store_postback_policy policy = {
	.max_attempts = 8,
	.backoff_ms = 1000,
	.backoff_max_ms = 3600000,
	.disable_after = 100,
};

void
store_postback_configure(const struct store_postback_policy *p)
{
	policy = *p;
}

const struct store_postback_policy *
store_postback_policy_get(void)
{
	return (&policy);
}

int64_t
store_postback_backoff_ms(int attempts, int retry_after_s)
{
	int64_t wait = policy.backoff_ms, half;
	uint32_t r = 0;

	for (int i = 1; i < attempts && wait < policy.backoff_max_ms; i++)
		wait *= 2;
	if (wait > policy.backoff_max_ms)
		wait = policy.backoff_max_ms;
	half = wait / 2;
	if (half > 0) {
		if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
			r = (uint32_t)rand();
		wait = half + (int64_t)(r % (uint64_t)(half + 1));
	}
	if (retry_after_s > 0) {
		int64_t ra = (int64_t)retry_after_s * 1000;
		if (ra > policy.backoff_max_ms)
			ra = policy.backoff_max_ms;
		if (ra > wait)
			wait = ra;
	}
	return (wait);
}

/* Wraps data (taken) in the envelope and dumps it into the arena, keys in
 * a fixed order: the body is what is signed, and receivers may compare. */
static char *
event_body(const char *type, json_t *data, char event_id[40], aff_arena *a)
{
	unsigned char raw[16];
	char hex[33], ts[32], *text, *out = NULL;
	json_t *ev;

	if (data == NULL)
		return (NULL);
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		json_decref(data);
		return (NULL);
	}
	aff_hex_encode(raw, sizeof(raw), hex);
	snprintf(event_id, 40, "evt_%s", hex);
	aff_time_rfc3339(aff_now_ms() / 1000, ts);
	ev = json_pack("{s:s, s:s, s:s, s:o}", "id", event_id, "type", type,
	    "timestamp", ts, "data", data);
	if (ev == NULL)
		return (NULL);
	if ((text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER)) != NULL) {
		out = aff_arena_strdup(a, text);
		free(text);
	}
	json_decref(ev);
	return (out);
}

char *
store_postback_order_body(const char *type, const Affiliate__V1__Order *o,
    char event_id[40], aff_arena *a)
{
	return (event_body(type,
	    json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s}",
	        "order_id", o->order_id, "advertiser_id",
	        (json_int_t)o->advertiser_id, "editor_id",
	        (json_int_t)o->editor_id, "amount_cents",
	        (json_int_t)o->amount_cents, "commission_cents",
	        (json_int_t)o->commission_cents, "currency", o->currency,
	        "status", o->status, "created_at", o->created_at, "updated_at",
	        o->updated_at),
	    event_id, a));
}

char *
store_postback_application_body(const Affiliate__V1__Application *app,
    char event_id[40], aff_arena *a)
{
	return (event_body("application.decided",
	    json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:s}", "id",
	        (json_int_t)app->id, "editor_id", (json_int_t)app->editor_id,
	        "advertiser_id", (json_int_t)app->advertiser_id, "status",
	        app->status, "reason", app->reason, "created_at",
	        app->created_at, "updated_at", app->updated_at),
	    event_id, a));
}

int
store_postback_job_pack(int64_t delivery_id, const char *url,
    const char *secret, const char *event_id, const char *body,
    aff_arena *a, uint8_t **out, size_t *len)
{
	Affiliate__V1__PostbackJob job = AFFILIATE__V1__POSTBACK_JOB__INIT;

	job.delivery_id = delivery_id;
	job.url = (char *)url;
	job.secret = (char *)secret;
	job.event_id = (char *)event_id;
	job.body.data = (uint8_t *)body;
	job.body.len = strlen(body);
	*len = affiliate__v1__postback_job__get_packed_size(&job);
	if ((*out = aff_arena_alloc(a, *len > 0 ? *len : 1)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__postback_job__pack(&job, *out);
	return (AFF_OK);
}

int
store_postback_events_split(const char *csv, aff_arena *a, char ***out,
    size_t *n)
{
	size_t k = 1, i = 0;
	const char *p;

	for (p = csv; *p != '\0'; p++)
		k += *p == ',';
	if ((*out = aff_arena_alloc(a, sizeof(char *) * k)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	for (p = csv; *p != '\0';) {
		size_t l = strcspn(p, ",");
		if (l > 0 && ((*out)[i++] = aff_arena_strndup(a, p, l)) == NULL)
			return (AFF_RESOURCE_EXHAUSTED);
		p += l;
		if (*p == ',')
			p++;
	}
	*n = i;
	return (AFF_OK);
}
