/*
 * postback.c - see postback.h. One delivery is one POST:
 *   - the URL is parsed again and its host resolved here, at the time of
 *     sending, and refused when an address is loopback, private or
 *     link-local (unless --postback-allow-private): a name that pointed
 *     elsewhere when the endpoint was registered is caught now. The
 *     connection is pinned to the address checked (CURLOPT_RESOLVE), and
 *     the socket callback checks the address curl really dials, so a
 *     second lookup by curl cannot swap it (DNS rebinding);
 *   - no redirect is followed (a 3xx is a failure that is not retried),
 *     no proxy from the environment is used, only http and https;
 *   - connect and total timeouts bound the attempt (the job's lease is
 *     kept alive by the worker's heartbeats meanwhile); the answer's
 *     headers are read up to 64 KiB and its body not at all (the status
 *     is the answer);
 *   - the Standard Webhooks headers: webhook-id (the event's id, the same
 *     on every attempt: the receiver's idempotency key), webhook-timestamp
 *     (now, so that a retry hours later is within the receiver's
 *     tolerance) and webhook-signature (v1,<base64 HMAC-SHA256 of
 *     "id.timestamp.body"> under the endpoint's secret).
 * 2xx is success; 408, 429, 5xx and no answer are retried by the server
 * (after Retry-After when given); any other status is final.
 */
#include "postback.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_postback.h"
#include "aff_util.h"
#include "affiliate/v1/postback.pb-c.h"
#include "worker.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ready;

static void
curl_start(void)
{
	curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

int
worker_postback_retry_after(const char *v, int64_t now_s)
{
	char *end;
	long n;
	time_t t;

	while (*v == ' ')
		v++;
	if (*v >= '0' && *v <= '9') {
		n = strtol(v, &end, 10);
		return (n > 0 && n < 86400 * 30 ? (int)n : 0);
	}
	if ((t = curl_getdate(v, NULL)) <= 0 || (int64_t)t <= now_s)
		return (0);
	return ((int64_t)t - now_s < 86400 * 30 ? (int)((int64_t)t - now_s) : 0);
}

/* The most of an answer's headers read: the status and Retry-After are
 * all that is used, and a receiver may send headers without end. */
#define HEADERS_MAX (64 * 1024)

struct delivery {
	int allow_private;
	int retry_after_s;
	int refused;        /* the socket callback refused an address */
	char refused_ip[64];
	long status;        /* of the answer's last status line */
	int answered;       /* a final (non-1xx) answer's headers all read */
	size_t header_bytes;
	int headers_too_big;
};

/*
 * Reads the status and Retry-After from the answer's headers, and ends the
 * transfer when a final answer's headers are all in: its body is not
 * used, and a receiver that answers 200 and then sends a body without end
 * (or slowly) must not hold the slot until the timeout and have its
 * delivery counted as failed (it was delivered).
 */
static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct delivery *d = arg;
	size_t len = size * n;
	char line[128];

	if ((d->header_bytes += len) > HEADERS_MAX) {
		d->headers_too_big = 1;
		return (0);
	}
	if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
		const char *sp = memchr(buf, ' ', len);
		d->status = 0;
		if (sp != NULL && buf + len - sp > 3)
			d->status = strtol(sp + 1, NULL, 10);
		return (len);
	}
	if ((len == 2 && buf[0] == '\r' && buf[1] == '\n') ||
	    (len == 1 && buf[0] == '\n')) {
		if (d->status >= 200) {
			d->answered = 1;
			return (0); /* the answer is known: stop here */
		}
		return (len);
	}
	if (len > 12 && len < sizeof(line) &&
	    strncasecmp(buf, "retry-after:", 12) == 0) {
		memcpy(line, buf + 12, len - 12);
		line[len - 12] = '\0';
		line[strcspn(line, "\r\n")] = '\0';
		d->retry_after_s =
		    worker_postback_retry_after(line, aff_now_ms() / 1000);
	}
	return (len);
}

/* The receiver's body is not kept (its status is the answer). */
static size_t
on_body(char *buf, size_t size, size_t n, void *arg)
{
	(void)buf;
	(void)arg;
	return (size * n);
}

/* The address curl is about to dial, checked once more. */
static curl_socket_t
on_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct delivery *d = arg;

	(void)purpose;
	if (!d->allow_private && aff_postback_addr_private(&a->addr)) {
		d->refused = 1;
		if (getnameinfo(&a->addr, a->addrlen, d->refused_ip,
		        sizeof(d->refused_ip), NULL, 0, NI_NUMERICHOST) != 0)
			snprintf(d->refused_ip, sizeof(d->refused_ip), "?");
		return (CURL_SOCKET_BAD);
	}
	return (socket(a->family, a->socktype, a->protocol));
}

/* Packs the report; AFF_RESOURCE_EXHAUSTED when out of memory. */
static int
report(const Affiliate__V1__PostbackResult *r, uint8_t **out, size_t *outlen)
{
	*outlen = affiliate__v1__postback_result__get_packed_size(r);
	if ((*out = malloc(*outlen > 0 ? *outlen : 1)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__postback_result__pack(r, *out);
	return (AFF_OK);
}

/* Is host an IP literal (nothing to resolve or pin)? */
static int
ip_literal(const char *host)
{
	unsigned char buf[16];

	return (inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1);
}

int
worker_postback_run(const struct worker_config *cfg,
    const ProtobufCBinaryData *payload, uint8_t **out, size_t *outlen,
    char *err, size_t errlen)
{
	Affiliate__V1__PostbackResult res = AFFILIATE__V1__POSTBACK_RESULT__INIT;
	Affiliate__V1__PostbackJob *job;
	struct delivery d = { .allow_private = cfg->postback_allow_private };
	struct aff_postback_url u;
	struct curl_slist *hdrs = NULL, *pin = NULL;
	char h_id[160], h_ts[64], h_sig[32 + AFF_POSTBACK_SIG_MAX], ip[64];
	char sig[AFF_POSTBACK_SIG_MAX], pinned[384], why[256];
	int64_t ts, t0;
	long status = 0;
	CURLcode cc;
	CURL *c = NULL;
	int rv;

	*out = NULL;
	*outlen = 0;
	err[0] = '\0';
	job = affiliate__v1__postback_job__unpack(NULL, payload->len,
	    payload->data);
	if (job == NULL) {
		snprintf(err, errlen, "the payload is not a PostbackJob");
		return (AFF_INVALID_ARGUMENT);
	}
	if (job->url[0] == '\0' ||
	    aff_postback_url_parse(job->url, &u, why, sizeof(why)) != AFF_OK) {
		snprintf(err, errlen, "delivery %lld has no usable URL",
		    (long long)job->delivery_id);
		res.permanent = 1;
		rv = AFF_FAILED_PRECONDITION;
		goto report;
	}
	/* Resolved here and pinned: what is checked is what is dialled. */
	rv = aff_postback_resolve(&u, cfg->postback_allow_private, ip, why,
	    sizeof(why));
	if (rv != AFF_OK) {
		snprintf(err, errlen, "%s", why);
		/* A name that does not resolve may again; one that resolves
		 * to a private address is refused for good. */
		res.permanent = rv == AFF_PERMISSION_DENIED;
		goto report;
	}
	ts = aff_now_ms() / 1000;
	if ((rv = aff_postback_sign(job->secret, job->event_id, ts,
	         job->body.data, job->body.len, sig)) != AFF_OK) {
		snprintf(err, errlen, "the endpoint's secret is unusable");
		res.permanent = 1;
		goto report;
	}
	pthread_once(&curl_once, curl_start);
	if (!curl_ready || (c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "libcurl did not start");
		rv = AFF_INTERNAL;
		goto report;
	}
	snprintf(h_id, sizeof(h_id), "webhook-id: %s", job->event_id);
	snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %lld", (long long)ts);
	snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", sig);
	if ((hdrs = curl_slist_append(hdrs, "Content-Type: application/json")) ==
	        NULL ||
	    (hdrs = curl_slist_append(hdrs, h_id)) == NULL ||
	    (hdrs = curl_slist_append(hdrs, h_ts)) == NULL ||
	    (hdrs = curl_slist_append(hdrs, h_sig)) == NULL ||
	    (hdrs = curl_slist_append(hdrs, "Expect:")) == NULL) {
		snprintf(err, errlen, "out of memory");
		rv = AFF_RESOURCE_EXHAUSTED;
		goto report;
	}
	if (!ip_literal(u.host)) {
		snprintf(pinned, sizeof(pinned), "%s:%d:%s%s%s", u.host, u.port,
		    strchr(ip, ':') != NULL ? "[" : "", ip,
		    strchr(ip, ':') != NULL ? "]" : "");
		if ((pin = curl_slist_append(NULL, pinned)) == NULL) {
			snprintf(err, errlen, "out of memory");
			rv = AFF_RESOURCE_EXHAUSTED;
			goto report;
		}
		curl_easy_setopt(c, CURLOPT_RESOLVE, pin);
	}
	curl_easy_setopt(c, CURLOPT_URL, job->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)cfg->postback_connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->postback_timeout_ms);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)job->body.data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)job->body.len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "affiliate-postbacks/1");
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &d);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &d);
	t0 = aff_mono_ms();
	cc = curl_easy_perform(c);
	res.latency_ms = aff_mono_ms() - t0;
	/* Stopped by on_header once the answer was known: that is the
	 * answer. */
	if (cc == CURLE_WRITE_ERROR && d.answered)
		cc = CURLE_OK;
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	res.status_code = (int32_t)status;
	res.retry_after_s = d.retry_after_s;
	if (d.refused) {
		snprintf(err, errlen,
		    "refused to connect to %s, a loopback, private or link-local "
		    "address", d.refused_ip);
		res.permanent = 1;
		rv = AFF_PERMISSION_DENIED;
	} else if (d.headers_too_big) {
		snprintf(err, errlen,
		    "the answer's headers are larger than %d bytes", HEADERS_MAX);
		rv = AFF_UNAVAILABLE;
	} else if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s", cc == CURLE_OPERATION_TIMEDOUT
		        ? "timed out"
		        : curl_easy_strerror(cc));
		rv = AFF_UNAVAILABLE;
	} else if (status >= 200 && status < 300)
		rv = AFF_OK;
	else {
		snprintf(err, errlen, "the endpoint answered %ld", status);
		res.permanent = !(status == 408 || status == 429 || status >= 500);
		rv = AFF_UNAVAILABLE;
	}
	aff_debug("postbacks: delivery %lld to %s: %ld in %lld ms%s%s",
	    (long long)job->delivery_id, u.host, status,
	    (long long)res.latency_ms, err[0] != '\0' ? ": " : "", err);
report:
	res.error = err;
	if (report(&res, out, outlen) != AFF_OK && rv == AFF_OK)
		rv = AFF_RESOURCE_EXHAUSTED;
	curl_slist_free_all(hdrs);
	curl_slist_free_all(pin);
	if (c != NULL)
		curl_easy_cleanup(c);
	affiliate__v1__postback_job__free_unpacked(job, NULL);
	return (rv);
}
