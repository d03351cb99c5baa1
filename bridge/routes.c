/* routes.c - see routes.h. */
#include "routes.h"

#include <stdio.h>
#include <string.h>

#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "affiliate/v1/postback.pb-c.h"
#include "affiliate/v1/report.pb-c.h"

#define ADV (&affiliate__v1__advertiser_service__descriptor)
#define APP (&affiliate__v1__application_service__descriptor)
#define ORD (&affiliate__v1__order_service__descriptor)
#define HEALTH (&affiliate__v1__health_service__descriptor)
#define JOBS (&affiliate__v1__job_admin_service__descriptor)
#define CATALOG (&affiliate__v1__catalog_service__descriptor)
#define PB (&affiliate__v1__postback_service__descriptor)
#define REPORT (&affiliate__v1__report_service__descriptor)

const struct route route_table[] = {
	{ "GET", "/", HEALTH, "Check", 200, ROUTE_BODY_NONE,
	    ROUTE_RENDER_HEALTH, NULL, NULL,
	    "Liveness: ok when the server answers and its store serves" },
	{ "GET", "/advertisers", ADV, "ListAdvertisers", 200, ROUTE_BODY_NONE,
	    ROUTE_RENDER_LIST, "advertisers", "next_after",
	    "List advertisers, or those editor_id may join" },
	{ "GET", "/advertisers/{id}", ADV, "GetAdvertiser", 200,
	    ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Get an advertiser (403 when editor_id may not join it)" },
	{ "POST", "/advertisers", CATALOG, "CreateAdvertiser", 201,
	    ROUTE_BODY_JSON, ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Create an advertiser (admin)" },
	{ "PATCH", "/advertisers/{id}", CATALOG, "UpdateAdvertiser", 200,
	    ROUTE_BODY_PATCH, ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Change an advertiser's fields given in the body (admin)" },
	{ "POST", "/editors", CATALOG, "CreateEditor", 201, ROUTE_BODY_JSON,
	    ROUTE_RENDER_MESSAGE, NULL, NULL, "Create an editor (admin)" },
	{ "PATCH", "/editors/{id}", CATALOG, "UpdateEditor", 200,
	    ROUTE_BODY_PATCH, ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Change an editor's fields given in the body (admin)" },
	{ "PUT", "/editors/{editor_id}/advertisers/{advertiser_id}", CATALOG,
	    "GrantEligibility", 200, ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE,
	    NULL, NULL, "Let an editor join an advertiser's programme (admin)" },
	{ "DELETE", "/editors/{editor_id}/advertisers/{advertiser_id}", CATALOG,
	    "RevokeEligibility", 200, ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE,
	    NULL, NULL,
	    "No longer let an editor join an advertiser's programme (admin)" },
	{ "POST", "/applications", APP, "Apply", 202, ROUTE_BODY_JSON,
	    ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Apply to an advertiser's programme; reviewed in the background" },
	{ "GET", "/applications", APP, "ListApplications", 200,
	    ROUTE_BODY_NONE, ROUTE_RENDER_LIST, "applications", "next_after",
	    "List applications" },
	{ "GET", "/applications/{id}", APP, "GetApplication", 200,
	    ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Get an application with its history" },
	{ "POST", "/webhook/orders", ORD, "ReceiveWebhook", 201,
	    ROUTE_BODY_WEBHOOK, ROUTE_RENDER_WEBHOOK, NULL, NULL,
	    "A partner reports an order (signed with X-Partner-Signature, "
	    "Stripe-Signature or Standard Webhooks)" },
	{ "GET", "/orders", ORD, "ListOrders", 200, ROUTE_BODY_NONE,
	    ROUTE_RENDER_LIST, "orders", "next_after", "List orders" },
	/* The job outbox, for admin keys (the server refuses others). The
	 * retries answer 202: the job is queued, a worker decides later. */
	{ "GET", "/jobs", JOBS, "ListJobs", 200, ROUTE_BODY_NONE,
	    ROUTE_RENDER_LIST, "jobs", "next_after",
	    "List jobs with their last error, by state=dead|queued|inflight "
	    "(admin)" },
	{ "POST", "/jobs/{id}/retry", JOBS, "RetryJob", 202, ROUTE_BODY_NONE,
	    ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Queue a dead job again; its application goes back to pending "
	    "(admin)" },
	{ "POST", "/jobs/retry-dead", JOBS, "RetryDeadJobs", 202,
	    ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Queue every dead job again (admin)" },
	{ "GET", "/reports/earnings", REPORT, "GetEarnings", 200,
	    ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Earnings per advertiser, day or status, per currency, each "
	    "status apart (from and to required; an editor key: its own)" },
	{ "GET", "/orders/{order_id}", ORD, "GetOrder", 200, ROUTE_BODY_NONE,
	    ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Get an order with its status history" },
	{ "POST", "/postback-endpoints", PB, "CreatePostbackEndpoint", 201,
	    ROUTE_BODY_JSON, ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Register a postback endpoint; its whsec_ secret is shown once" },
	{ "GET", "/postback-endpoints", PB, "ListPostbackEndpoints", 200,
	    ROUTE_BODY_NONE, ROUTE_RENDER_LIST, "endpoints", "next_after",
	    "List postback endpoints (an editor key: its own)" },
	{ "DELETE", "/postback-endpoints/{id}", PB, "DeletePostbackEndpoint",
	    200, ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE, NULL, NULL,
	    "Delete a postback endpoint; its pending deliveries are dropped" },
	{ "POST", "/postback-endpoints/{id}/rotate-secret", PB,
	    "RotatePostbackSecret", 200, ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE,
	    NULL, NULL, "A new signing secret, shown once; the old one stops" },
	{ "POST", "/postback-endpoints/{id}/enable", PB,
	    "EnablePostbackEndpoint", 200, ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE,
	    NULL, NULL, "Turn a disabled endpoint back on" },
	{ "GET", "/postback-endpoints/{endpoint_id}/attempts", PB,
	    "ListPostbackAttempts", 200, ROUTE_BODY_NONE, ROUTE_RENDER_LIST,
	    "attempts", "next_after",
	    "An endpoint's delivery log, newest first" },
	{ "POST", "/postback-deliveries/{delivery_id}/redeliver", PB,
	    "RedeliverPostback", 202, ROUTE_BODY_NONE, ROUTE_RENDER_MESSAGE,
	    NULL, NULL, "Send a delivered or dead delivery again" },
};

const size_t route_count = sizeof(route_table) / sizeof(route_table[0]);

/* The value of hex digit c, or -1. */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return ((c | 0x20) - 'a' + 10);
	return (-1);
}

/*
 * Percent-decodes one path segment src[0..n) into dst (cap bytes with
 * its NUL); a '%' not followed by two hex digits stays as it is (as
 * civetweb's mg_url_decode leaves it). The length, or -1 when it does not
 * fit.
 */
static int
segment_decode(const char *src, size_t n, char *dst, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		char c = src[i];

		if (c == '%' && i + 2 < n && (hi = hex_value(src[i + 1])) >= 0 &&
		    (lo = hex_value(src[i + 2])) >= 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= cap)
			return (-1);
		dst[o++] = c;
	}
	dst[o] = '\0';
	return ((int)o);
}

/*
 * Matches path (as received: percent-encoded) against one template,
 * segment by segment, each segment decoded on its own: so "%2F" inside a
 * parameter is a '/' of its value (an order_id "INV/7" is
 * /orders/INV%2F7), never a separator. Fills the parameters. Returns 1 on
 * a match, 0 when not, -1 when a parameter would not fit.
 */
static int
path_match(const char *tmpl, const char *path, struct route_match *m)
{
	const char *t = tmpl, *p = path;
	char seg[sizeof(m->params[0].value)];

	m->n_params = 0;
	while (*t == '/' && *p == '/') {
		size_t tl = strcspn(++t, "/"), pl = strcspn(++p, "/");

		if (tl > 1 && t[0] == '{' && t[tl - 1] == '}') {
			size_t nlen = tl - 2;
			if (pl == 0)
				return (0);
			if (m->n_params == ROUTE_MAX_PARAMS ||
			    nlen >= sizeof(m->params[0].name) ||
			    segment_decode(p, pl, m->params[m->n_params].value,
			        sizeof(m->params[0].value)) < 0)
				return (-1);
			memcpy(m->params[m->n_params].name, t + 1, nlen);
			m->params[m->n_params].name[nlen] = '\0';
			m->n_params++;
		} else if (segment_decode(p, pl, seg, sizeof(seg)) != (int)tl ||
		    memcmp(seg, t, tl) != 0)
			return (0);
		t += tl;
		p += pl;
	}
	return (*t == '\0' && *p == '\0');
}

int
route_match(const char *method, const char *path, struct route_match *m)
{
	int path_found = 0, too_long = 0;
	struct route_match tmp;

	memset(m, 0, sizeof(*m));
	/* HEAD is GET without the body (the bridge leaves it out). */
	if (strcmp(method, "HEAD") == 0)
		method = "GET";
	for (size_t i = 0; i < route_count; i++) {
		const struct route *r = &route_table[i];
		int rv = path_match(r->path, path, &tmp);

		if (rv < 0)
			too_long = 1;
		if (rv <= 0)
			continue;
		if (strcmp(r->method, method) == 0) {
			*m = tmp;
			m->route = r;
			return (200);
		}
		/* Collect what this path allows, for the 405's Allow. */
		if (strstr(m->allow, r->method) == NULL) {
			size_t n = strlen(m->allow);
			snprintf(m->allow + n, sizeof(m->allow) - n, "%s%s%s",
			    n > 0 ? ", " : "", r->method,
			    strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
		}
		path_found = 1;
	}
	if (path_found) {
		/* The bridge answers OPTIONS on every path it serves. */
		size_t n = strlen(m->allow);
		snprintf(m->allow + n, sizeof(m->allow) - n, ", OPTIONS");
		return (405);
	}
	return (too_long ? 414 : 404);
}
