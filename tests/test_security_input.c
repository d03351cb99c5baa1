/*
 * test_security_input.c - rate limits, hostile input and protected mode,
 * over REST (real HTTP through an in-process bridge) and over RPC (a real
 * NNG client), against a real server, SQLite file and redis-server:
 * 429s per key, per address and per IPv6 /64, an envelope of countless
 * tiny fields, injection strings, NUL bytes, invalid UTF-8 and 10 kB
 * strings in every text field. Keys, scoping and secrets are in
 * test_security.c; the shared stack and calls in security_util.c.
 *
 * The protected-mode group needs addresses that are not loopback: the
 * test runs itself again inside a network namespace of its own (unshare
 * -rn) where 192.0.2.1 (TEST-NET-1) sits on that namespace's lo, so no
 * packet leaves it. Where namespaces cannot be made, that group is
 * skipped and says so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "aff_webhook.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "auth.h"
#include "store.h"
#include "testutil.h"
#include "security_util.h"

#define NETNS_ADDR "192.0.2.1"
#define NETNS_SETUP "ip link set lo up && ip addr add " NETNS_ADDR "/32 dev lo"

/* ---- rate limits ---- */

static void
test_over_the_key_limit_is_429_with_ratelimit_headers(void **state)
{
	Affiliate__V1__ListOrdersRequest lo = AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	struct tu_http_response r;
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	char t1[AUTH_TOKEN_MAX], t2[AUTH_TOKEN_MAX], h[64];
	int st = 0, n;

	(void)state;
	editor_key(1, t1);
	editor_key(2, t2);
	/* A bucket starts full: 3 pass, whatever the timing. */
	for (n = 0; n < 3; n++) {
		assert_int_equal(http_as(t1, "GET", "/orders", NULL, &r), 200);
		assert_string_equal(tu_http_header(&r, "RateLimit-Limit", h,
		                        sizeof(h)),
		    "3");
		assert_non_null(tu_http_header(&r, "RateLimit-Remaining", h,
		    sizeof(h)));
		assert_non_null(tu_http_header(&r, "RateLimit-Reset", h, sizeof(h)));
		tu_http_response_fini(&r);
	}
	/* One a second refills: a few quick calls more meet the limit. */
	for (n = 0; n < 20 && st != 429; n++) {
		st = http_as(t1, "GET", "/orders", NULL, &r);
		if (st == 429) {
			assert_non_null(strstr(r.body, "RESOURCE_EXHAUSTED"));
			assert_true(atoi(tu_http_header(&r, "Retry-After", h,
			                sizeof(h))) >= 1);
			assert_string_equal(tu_http_header(&r, "RateLimit-Remaining",
			                        h, sizeof(h)),
			    "0");
		}
		tu_http_response_fini(&r);
	}
	assert_int_equal(st, 429);
	/* The same key over RPC: RESOURCE_EXHAUSTED with the metadata. */
	assert_int_equal(rpc_as(t1, ORD, "ListOrders", &lo.base, &resp, &res),
	    AFF_RESOURCE_EXHAUSTED);
	assert_non_null(aff_call_result_metadata(&res, "retry-after"));
	assert_string_equal(aff_call_result_metadata(&res, "ratelimit-limit"),
	    "3");
	aff_call_result_fini(&res);
	/* Another key has its own bucket. */
	assert_int_equal(rpc_code(t2, ORD, "ListOrders", &lo.base), AFF_OK);
	assert_int_equal(http_code(t2, "GET", "/orders", NULL), 200);
}

static void
test_over_the_address_limit_is_429_for_calls_without_a_key(void **state)
{
	char id[32];
	int st = 0, n;

	(void)state;
	/* Webhooks and health count per address (all 127.0.0.1 here). */
	for (n = 0; n < 24 && st != 429; n++) {
		snprintf(id, sizeof(id), "RL-%d", n);
		st = post_order(SECRET, id, 2, 1);
		assert_true(st == 201 || st == 429);
	}
	assert_int_equal(st, 429);
	assert_int_equal(rows("SELECT count(*) FROM orders WHERE order_id LIKE "
	                      "'RL-%'"),
	    n - 1);
	/* A call without a key is also refused by its address, before the
	 * 401, so keys cannot be guessed at full speed. */
	assert_int_equal(http_code("aff_1_bad", "GET", "/orders", NULL), 429);
}

/* A call without a key, as a bridge forwarding a client at fwd. */
static int
rpc_from(const char *fwd)
{
	Affiliate__V1__ListOrdersRequest lo = AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	struct aff_metadata md = { "x-forwarded-for", fwd };
	struct aff_call_opts o = { .metadata = &md, .n_metadata = 1 };
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	int rv;

	rv = aff_client_call(F->ts.client, ORD, "ListOrders", &lo.base, &o, &resp,
	    &res);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	aff_call_result_fini(&res);
	return (rv);
}

static void
test_ipv6_clients_are_limited_by_their_64_prefix(void **state)
{
	char fwd[64];
	int rv = AFF_UNAUTHENTICATED, n;

	(void)state;
	/* A new address of its /64 for every call is still one client
	 * (the test's loopback connection is a trusted bridge). */
	for (n = 0; n < 20 && rv == AFF_UNAUTHENTICATED; n++) {
		snprintf(fwd, sizeof(fwd), "2001:db8:0:7::%x", n + 1);
		rv = rpc_from(fwd);
	}
	assert_int_equal(rv, AFF_RESOURCE_EXHAUSTED);
	assert_true(n >= 4); /* 3 at once, and one a second */
	/* Another /64 is another client; IPv4 addresses stay apart. */
	assert_int_equal(rpc_from("2001:db8:0:8::1"), AFF_UNAUTHENTICATED);
	assert_int_equal(rpc_from("198.51.100.7"), AFF_UNAUTHENTICATED);
	assert_int_equal(rpc_from("198.51.100.8"), AFF_UNAUTHENTICATED);
}

/* ---- huge envelopes ---- */

/* The peak resident size of this process (server and bridge run in it),
 * in MiB. */
static long
peak_rss_mib(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return (kb / 1024);
}

static void
test_an_envelope_of_countless_tiny_fields_is_refused_unread(void **state)
{
	static const char head[] = "\x0a\x1a" "affiliate.v1.HealthService"
	                           "\x12\x05" "Check";
	size_t n = 500000, len = sizeof(head) - 1 + 2 * n, outlen;
	Affiliate__V1__ReplyEnvelope *rep;
	uint8_t *buf = malloc(len), *out;
	long before = peak_rss_mib();

	(void)state;
	/* 500,000 empty metadata entries in 1 MB: each would cost protobuf-c
	 * ~50 bytes unpacked, so one call ~25 MiB per handler thread. */
	assert_non_null(buf);
	memcpy(buf, head, sizeof(head) - 1);
	for (size_t i = 0; i < n; i++)
		memcpy(buf + sizeof(head) - 1 + 2 * i, "\x32\x00", 2);
	out = tu_raw_call(F->ts.url, buf, len, 10000, &outlen);
	free(buf);
	fprintf(stderr, "test_security_input: peak RSS %ld -> %ld MiB around the "
	                "1 MB envelope of 500,000 metadata entries\n",
	    before, peak_rss_mib());
	assert_non_null(out);
	rep = affiliate__v1__reply_envelope__unpack(NULL, outlen, out);
	assert_non_null(rep);
	assert_int_equal(rep->code, AFF_INVALID_ARGUMENT);
	assert_non_null(strstr(rep->message, "too many fields"));
	affiliate__v1__reply_envelope__free_unpacked(rep, NULL);
	free(out);
	/* A normal call still works. */
	assert_int_equal(http_code(NULL, "GET", "/", NULL), 200);
}

/* ---- hygiene: hostile text in every text field of every endpoint ---- */

/* A fingerprint of every table the API writes. */
static void
db_state(char *out, size_t cap)
{
	snprintf(out, cap, "%lld/%lld/%lld/%lld/%lld/%lld/%lld",
	    rows("SELECT count(*) FROM applications"),
	    rows("SELECT count(*) FROM application_events"),
	    rows("SELECT count(*) FROM orders WHERE order_id NOT IN ("
	         "''' OR 1=1 --', '1; DROP TABLE orders; --')"),
	    rows("SELECT count(*) FROM api_keys"),
	    rows("SELECT count(*) FROM webhook_secrets"),
	    rows("SELECT count(*) + sum(length(name)) FROM advertisers"),
	    rows("SELECT version FROM catalog_version"));
}

/* Hostile values, as raw bytes: n of them. */
static const char *const hostile[] = {
	"' OR 1=1 --",
	"1; DROP TABLE orders; --",
	"\") OR (\"1\"=\"1",
	"nul\0byte",
	"bad \xff\xfe utf-8",
	"\xc0\xaf overlong",
	"\xed\xa0\x80 surrogate",
};
#define N_HOSTILE (sizeof(hostile) / sizeof(hostile[0]))
#define BIG_LEN 10240

/* hostile[i]'s length (NUL bytes included). */
static size_t
hostile_len(size_t i)
{
	return (i == 3 ? 9 : strlen(hostile[i]));
}

/* Percent-encodes n bytes of s into out. */
static void
pct(const char *s, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		out += sprintf(out, "%%%02X", (unsigned char)s[i]);
	*out = '\0';
}

/* Checks a 4xx JSON error: its code and a message, nothing crashed. */
static void
check_clear_error(const struct tu_http_response *r, const char *what)
{
	json_error_t e;
	json_t *j;

	if (r->status < 400 || r->status > 431)
		fprintf(stderr, "%s: %d %s\n", what, r->status, r->body);
	assert_true(r->status >= 400 && r->status <= 431);
	j = json_loads(r->body, 0, &e);
	assert_non_null(j);
	assert_true(json_is_string(json_object_get(json_object_get(j, "error"),
	    "code")));
	assert_true(strlen(json_string_value(json_object_get(
	                json_object_get(j, "error"), "message"))) > 0);
	json_decref(j);
}

static void
test_hostile_text_in_every_rest_field_is_a_clear_error(void **state)
{
	static const char *const query[] = {
		"/advertisers?editor_id=%s", "/advertisers?limit=%s",
		"/advertisers?after=%s", "/advertisers/%s",
		"/advertisers/2?editor_id=%s", "/applications?editor_id=%s",
		"/applications?status=%s", "/applications?limit=%s",
		"/applications?after=%s", "/applications/%s",
		"/orders?editor_id=%s", "/orders?advertiser_id=%s",
		"/orders?status=%s", "/orders?limit=%s", "/orders?after=%s",
	};
	static const char *const json_body[] = {
		"{\"advertiser_id\":\"%s\",\"editor_id\":1}",
		"{\"advertiser_id\":2,\"editor_id\":\"%s\"}",
		"{\"advertiser_id\":2,\"editor_id\":1,\"%s\":1}",
	};
	static const char *const webhook[] = {
		"{\"order_id\":\"H-1\",\"advertiser_id\":\"%s\",\"editor_id\":1,"
		"\"amount\":1,\"commission\":0}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"user_id\":\"%s\","
		"\"amount\":1,\"commission\":0}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":\"%s\",\"commission\":0}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":1,\"commission\":\"%s\"}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":1,\"commission\":0,\"currency\":\"%s\"}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":1,\"commission\":0,\"status\":\"%s\"}",
		"{\"order_id\":\"%s\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":1,\"commission\":0}",
	};
	char before[256], after[256], *val, *enc, *target, *body, *hdr;
	char sig[128];
	struct tu_http_response r;
	long long orders_before;

	(void)state;
	val = malloc(BIG_LEN + 1);
	enc = malloc(3 * BIG_LEN + 1);
	target = malloc(3 * BIG_LEN + 256);
	body = malloc(BIG_LEN + 512);
	hdr = malloc(BIG_LEN + 256);
	assert_true(val && enc && target && body && hdr);
	db_state(before, sizeof(before));
	orders_before = rows("SELECT count(*) FROM orders");
	for (size_t i = 0; i <= N_HOSTILE; i++) {
		/* The last round: a 10 kB string. */
		size_t n = i < N_HOSTILE ? hostile_len(i) : BIG_LEN;
		if (i < N_HOSTILE)
			memcpy(val, hostile[i], n);
		else
			memset(val, 'x', n);
		val[n] = '\0';
		/* Query and path parameters, percent-encoded. */
		pct(val, n, enc);
		for (size_t q = 0; q < sizeof(query) / sizeof(query[0]); q++) {
			snprintf(target, 3 * BIG_LEN + 256, query[q], enc);
			(void)http_as(admin_tok, "GET", target, NULL, &r);
			check_clear_error(&r, target);
			tu_http_response_fini(&r);
		}
		/* JSON bodies: the value as raw bytes in a JSON string. */
		for (size_t b = 0; b < sizeof(json_body) / sizeof(json_body[0]);
		     b++) {
			size_t len;
			snprintf(body, BIG_LEN + 512, json_body[b], "");
			len = strlen(body);
			/* Splice the raw bytes (NUL included) into the "" hole. */
			snprintf(body, BIG_LEN + 512, json_body[b], "\x01");
			{
				char *hole = memchr(body, 1, len + 1);
				memmove(hole + n, hole + 1, strlen(hole + 1) + 1);
				memcpy(hole, val, n);
				len += n;
			}
			snprintf(hdr, BIG_LEN + 256,
			    "Authorization: Bearer %s\r\nContent-Type: "
			    "application/json\r\n",
			    admin_tok);
			{
				char *req = malloc(len + 1024);
				int k = snprintf(req, 1024,
				    "POST /applications HTTP/1.1\r\nHost: x\r\n"
				    "Connection: close\r\n%sContent-Length: %zu\r\n\r\n",
				    hdr, len);
				memcpy(req + k, body, len);
				assert_int_equal(tu_http_raw(F->port, req, (size_t)k + len,
				                     10000, &r),
				    0);
				free(req);
			}
			check_clear_error(&r, body);
			tu_http_response_fini(&r);
		}
		/* Webhook bodies, correctly signed over the raw bytes. */
		for (size_t w = 0; w < sizeof(webhook) / sizeof(webhook[0]); w++) {
			size_t len;
			char *req, *hole;
			int k;
			snprintf(body, BIG_LEN + 512, webhook[w], "\x01");
			len = strlen(body);
			hole = memchr(body, 1, len);
			memmove(hole + n, hole + 1, strlen(hole + 1) + 1);
			memcpy(hole, val, n);
			len += n - 1;
			aff_webhook_sign(SECRET, (const uint8_t *)body, len, 0, sig);
			req = malloc(len + 1024);
			k = snprintf(req, 1024,
			    "POST /webhook/orders HTTP/1.1\r\nHost: x\r\n"
			    "Connection: close\r\nX-Partner-Signature: %s\r\n"
			    "Content-Length: %zu\r\n\r\n",
			    sig, len);
			memcpy(req + k, body, len);
			assert_int_equal(
			    tu_http_raw(F->port, req, (size_t)k + len, 10000, &r), 0);
			free(req);
			/* An order_id of plain text that is only SQL-looking is
			 * a valid id: stored as it is, nothing else touched. */
			if (w == sizeof(webhook) / sizeof(webhook[0]) - 1 && i < 2) {
				if (r.status != 201)
					fprintf(stderr, "%s\n", r.body);
				assert_int_equal(r.status, 201);
			}
			else
				check_clear_error(&r, body);
			tu_http_response_fini(&r);
		}
		/* Headers: the key and the signature (printable values only:
		 * a header cannot hold NUL or line breaks). */
		if (i < 3 || i == N_HOSTILE) {
			snprintf(hdr, BIG_LEN + 256, "Authorization: Bearer %s\r\n",
			    val);
			assert_int_equal(tu_http(F->port, "GET", "/orders", hdr, NULL,
			                     &r),
			    0);
			check_clear_error(&r, "authorization");
			assert_null(strstr(r.body, val));
			tu_http_response_fini(&r);
			snprintf(hdr, BIG_LEN + 256, "X-Partner-Signature: %s\r\n",
			    val);
			assert_int_equal(tu_http(F->port, "POST", "/webhook/orders", hdr,
			                     "{\"order_id\":\"H-2\",\"advertiser_id\":2,"
			                     "\"editor_id\":1,\"amount\":1,"
			                     "\"commission\":0}",
			                     &r),
			    0);
			assert_int_equal(r.status, 401);
			check_clear_error(&r, "signature");
			tu_http_response_fini(&r);
		}
	}
	/* Nothing else written; the two ids stored exactly as sent. */
	db_state(after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(rows("SELECT count(*) FROM orders WHERE order_id IN "
	                      "(''' OR 1=1 --', '1; DROP TABLE orders; --')"),
	    2);
	assert_int_equal(rows("SELECT count(*) FROM orders"), orders_before + 2);
	free(val);
	free(enc);
	free(target);
	free(body);
	free(hdr);
}

/* Sets string field f of m to s[0..n) (arena-free: s must outlive m). */
static void
set_string(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, char *s)
{
	*(char **)(void *)((char *)m + f->offset) = s;
}

static void
test_hostile_text_in_every_rpc_string_field_is_refused(void **state)
{
	static const ProtobufCServiceDescriptor *const svcs[] = { ADV, APP, ORD,
		KEYS, WHS, &affiliate__v1__health_service__descriptor };
	char before[256], after[256], *val;
	size_t n_checked = 0;

	(void)state;
	val = malloc(BIG_LEN + 1);
	assert_non_null(val);
	db_state(before, sizeof(before));
	for (size_t sv = 0; sv < sizeof(svcs) / sizeof(svcs[0]); sv++)
		for (unsigned m = 0; m < svcs[sv]->n_methods; m++) {
			const ProtobufCMethodDescriptor *md = &svcs[sv]->methods[m];
			for (unsigned fi = 0; fi < md->input->n_fields; fi++) {
				const ProtobufCFieldDescriptor *f = &md->input->fields[fi];
				if (f->type != PROTOBUF_C_TYPE_STRING)
					continue;
				for (size_t i = 0; i <= N_HOSTILE; i++) {
					ProtobufCMessage *req = calloc(1, md->input->sizeof_message);
					struct aff_call_result res;
					ProtobufCMessage *resp = NULL;
					uint8_t *buf;
					size_t len;
					int rv;

					size_t n = i < N_HOSTILE ? hostile_len(i) : BIG_LEN;
					if (i < N_HOSTILE)
						memcpy(val, hostile[i], n);
					else
						memset(val, 'x', n);
					val[n] = '\0';
					md->input->message_init(req);
					set_string(req, f, val);
					/* Packed by hand: protobuf-c stops a string at a NUL,
					 * a client in another language would not. */
					len = protobuf_c_message_get_packed_size(req);
					buf = malloc(len + n + 16);
					protobuf_c_message_pack(req, buf);
					if (i == 3) { /* rewrite as the 9 raw bytes */
						size_t h = 0;
						buf[h++] = (uint8_t)(f->id << 3 | 2);
						buf[h++] = (uint8_t)n;
						memcpy(buf + h, val, n);
						len = h + n;
					}
					{
						char bearer[160];
						struct aff_metadata mdt = { "authorization", bearer };
						struct aff_call_opts o = { 0 };
						snprintf(bearer, sizeof(bearer), "Bearer %s",
						    admin_tok);
						o.metadata = &mdt;
						o.n_metadata = 1;
						rv = aff_client_invoke(F->ts.client, svcs[sv]->name,
						    md->name, buf, len, &o, &res);
					}
					/* GetOrder finds the two order_ids stored above,
					 * as sent: a read of what is there. */
					if (rv == AFF_OK && strcmp(md->name, "GetOrder") == 0 &&
					    i < 2) {
						aff_call_result_fini(&res);
						free(buf);
						free(req);
						n_checked++;
						continue;
					}
					if (rv == AFF_OK)
						fprintf(stderr, "%s/%s %s #%zu accepted\n",
						    svcs[sv]->name, md->name, f->name, i);
					assert_true(rv == AFF_INVALID_ARGUMENT ||
					    rv == AFF_UNAUTHENTICATED || rv == AFF_NOT_FOUND);
					assert_true(strlen(res.message) > 0);
					if (i >= 3 && i < N_HOSTILE)
						assert_non_null(strstr(res.message, "UTF-8"));
					aff_call_result_fini(&res);
					(void)resp;
					free(buf);
					free(req);
					n_checked++;
				}
			}
		}
	/* ListApplications.status, ListOrders.status and .after,
	 * ReceiveWebhook.signature, .webhook_id, .webhook_timestamp and
	 * .webhook_signature, GetOrder.order_id, HealthCheck.service. */
	assert_int_equal(n_checked, 9 * (N_HOSTILE + 1));
	/* The envelope's own text: metadata and the request id. */
	for (size_t i = 3; i < N_HOSTILE; i++) {
		Affiliate__V1__ListOrdersRequest lo =
		    AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
		char bearer[200];
		struct aff_metadata mdt = { "authorization", bearer };
		struct aff_call_opts o = { 0 };
		struct aff_call_result res;
		ProtobufCMessage *resp = NULL;
		snprintf(bearer, sizeof(bearer), "Bearer %s%s", admin_tok,
		    hostile[i]);
		o.metadata = &mdt;
		o.n_metadata = 1;
		assert_int_equal(aff_client_call(F->ts.client, ORD, "ListOrders",
		                     &lo.base, &o, &resp, &res),
		    i == 3 ? AFF_UNAUTHENTICATED : AFF_INVALID_ARGUMENT);
		aff_call_result_fini(&res);
	}
	db_state(after, sizeof(after));
	assert_string_equal(before, after);
	free(val);
}

/* ---- protected mode (inside a network namespace) ---- */

static int in_netns;

/* A server on listen_url and a bridge on bridge_listen in front of it,
 * both made here (testutil's listen on loopback only). */
struct pm {
	struct server_config cfg;
	server *srv;
	struct bridge_config bcfg;
	bridge *b;
	aff_client *client;
	char *dir;
	int port;
};

static void
pm_start(struct pm *p, const char *host, const char *bridge_host,
    const char *auth, const char *addr_limit)
{
	struct aff_client_opts co = { 0 };
	int help;

	memset(p, 0, sizeof(*p));
	env_set(auth, "off", addr_limit);
	unsetenv("AFFILIATE_LISTEN");
	unsetenv("AFFILIATE_URL");
	unsetenv("AFFILIATE_BRIDGE_LISTEN");
	assert_int_equal(server_config_load(&p->cfg, 0, NULL, &help), AFF_OK);
	assert_int_equal(bridge_config_load(&p->bcfg, 0, NULL, &help), AFF_OK);
	env_clear();
	assert_non_null(p->dir = tu_tmpdir());
	snprintf(p->cfg.listen_url, sizeof(p->cfg.listen_url), "tcp://%s:%d",
	    host, tu_free_port());
	snprintf(p->cfg.data_dir, sizeof(p->cfg.data_dir), "%s", p->dir);
	snprintf(p->cfg.jobs_url, sizeof(p->cfg.jobs_url), "ipc://%s/j", p->dir);
	snprintf(p->cfg.results_url, sizeof(p->cfg.results_url), "ipc://%s/r",
	    p->dir);
	p->cfg.redis_host[0] = '\0';
	p->cfg.threads = 2;
	p->cfg.log_level = AFF_LOG_ERROR;
	assert_int_equal(server_start(&p->cfg, &p->srv), AFF_OK);
	co.url = p->cfg.listen_url;
	co.wait_connected = 1;
	assert_int_equal(aff_client_open(&p->client, &co), AFF_OK);
	p->port = tu_free_port();
	snprintf(p->bcfg.listen, sizeof(p->bcfg.listen), "%s:%d", bridge_host,
	    p->port);
	snprintf(p->bcfg.server_url, sizeof(p->bcfg.server_url), "%s",
	    p->cfg.listen_url);
	p->bcfg.threads = 4;
	p->bcfg.log_level = AFF_LOG_ERROR;
	assert_int_equal(bridge_start(&p->bcfg, &p->b), AFF_OK);
}

static void
pm_stop(struct pm *p)
{
	bridge_stop(p->b);
	aff_client_close(p->client);
	server_stop(p->srv);
	tu_rmtree(p->dir);
	free(p->dir);
}

/* GET target from the bridge at host:port; the status. */
static int
pm_get(const char *host, int port, const char *target)
{
	struct sockaddr_in sa = { 0 };
	char req[256], buf[64];
	int fd, n, st = -1;

	snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	if ((n = (int)read(fd, buf, sizeof(buf) - 1)) > 12) {
		buf[n] = '\0';
		st = atoi(buf + 9);
	}
	close(fd);
	return (st);
}

static int
pm_rpc(struct pm *p, const char *fwd)
{
	Affiliate__V1__ListOrdersRequest lo = AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	struct aff_metadata md = { "x-forwarded-for", fwd };
	struct aff_call_opts o = { 0 };
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	int rv;

	if (fwd != NULL) {
		o.metadata = &md;
		o.n_metadata = 1;
	}
	rv = aff_client_call(p->client, ORD, "ListOrders", &lo.base, &o, &resp,
	    &res);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	aff_call_result_fini(&res);
	return (rv);
}

static void
test_keys_are_required_on_a_non_loopback_rpc_listener(void **state)
{
	struct pm p;

	(void)state;
	if (!in_netns)
		skip();
	pm_start(&p, NETNS_ADDR, "127.0.0.1", "auto", "off");
	assert_int_equal(pm_rpc(&p, NULL), AFF_UNAUTHENTICATED);
	/* Even through a loopback bridge: the server is exposed anyway. */
	assert_int_equal(pm_get("127.0.0.1", p.port, "/orders"), 401);
	assert_int_equal(pm_get("127.0.0.1", p.port, "/"), 200);
	pm_stop(&p);
	/* An explicit off is obeyed (and warned about). */
	pm_start(&p, NETNS_ADDR, "127.0.0.1", "off", "off");
	assert_int_equal(pm_rpc(&p, NULL), AFF_OK);
	pm_stop(&p);
}

static void
test_a_non_loopback_bridge_makes_the_server_require_keys(void **state)
{
	struct pm p;

	(void)state;
	if (!in_netns)
		skip();
	/* The server on loopback: open to local RPC clients... */
	pm_start(&p, "127.0.0.1", NETNS_ADDR, "auto", "off");
	assert_int_equal(pm_rpc(&p, NULL), AFF_OK);
	/* ...but not through a bridge other hosts can reach. */
	assert_int_equal(pm_get(NETNS_ADDR, p.port, "/orders"), 401);
	assert_int_equal(pm_get(NETNS_ADDR, p.port, "/applications"), 401);
	assert_int_equal(pm_get(NETNS_ADDR, p.port, "/"), 200);
	pm_stop(&p);
	/* Every interface ("0.0.0.0") counts as exposed too. */
	pm_start(&p, "127.0.0.1", "0.0.0.0", "auto", "off");
	assert_int_equal(pm_get("127.0.0.1", p.port, "/orders"), 401);
	pm_stop(&p);
	/* A loopback bridge in front of a loopback server: open. */
	pm_start(&p, "127.0.0.1", "127.0.0.1", "auto", "off");
	assert_int_equal(pm_get("127.0.0.1", p.port, "/orders"), 200);
	pm_stop(&p);
}

static void
test_a_binary_client_cannot_spoof_its_address(void **state)
{
	char fwd[32];
	int rv = AFF_OK, n;
	struct pm p;

	(void)state;
	if (!in_netns)
		skip();
	/* Auth off, so calls need no key and count per address: a client
	 * on 192.0.2.1 is not a trusted bridge, its x-forwarded-for is
	 * ignored and every call lands in its own one bucket. */
	pm_start(&p, NETNS_ADDR, "127.0.0.1", "off", "1/3");
	for (n = 0; n < 20 && rv == AFF_OK; n++) {
		snprintf(fwd, sizeof(fwd), "10.0.0.%d", n);
		rv = pm_rpc(&p, fwd);
	}
	assert_int_equal(rv, AFF_RESOURCE_EXHAUSTED);
	assert_true(n >= 4);
	pm_stop(&p);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest auth[] = {
		cmocka_unit_test(
		    test_an_envelope_of_countless_tiny_fields_is_refused_unread),
		cmocka_unit_test(
		    test_hostile_text_in_every_rest_field_is_a_clear_error),
		cmocka_unit_test(
		    test_hostile_text_in_every_rpc_string_field_is_refused),
	};
	const struct CMUnitTest limits[] = {
		cmocka_unit_test(
		    test_over_the_key_limit_is_429_with_ratelimit_headers),
		cmocka_unit_test(
		    test_over_the_address_limit_is_429_for_calls_without_a_key),
		cmocka_unit_test(test_ipv6_clients_are_limited_by_their_64_prefix),
	};
	const struct CMUnitTest protected[] = {
		cmocka_unit_test(
		    test_keys_are_required_on_a_non_loopback_rpc_listener),
		cmocka_unit_test(
		    test_a_non_loopback_bridge_makes_the_server_require_keys),
		cmocka_unit_test(test_a_binary_client_cannot_spoof_its_address),
	};
	int failed = 0, pg_split, netns;
	pid_t child;

	(void)argc;
	/*
	 * On PostgreSQL the auth and limits groups run here, outside the
	 * namespace: its user namespace maps only root, as which PostgreSQL
	 * will not run, and the unprivileged user it runs as instead is not
	 * mapped there. Only the protected group (whose servers keep their
	 * SQLite file: the listener's address is what it tests) runs again
	 * inside, in a child. On SQLite the whole test runs inside.
	 */
	in_netns = getenv("AFF_TEST_NETNS") != NULL;
	pg_split = tu_backend_pg() && !in_netns;
	if (pg_split) {
		failed += cmocka_run_group_tests_name("auth", auth, setup_auth_on,
		    teardown);
		failed += cmocka_run_group_tests_name("limits", limits,
		    setup_limits, teardown);
		fflush(NULL);
	}
	netns = !in_netns &&
	    system("unshare -rn sh -c '" NETNS_SETUP "' >/dev/null 2>&1") == 0;
	if (netns && pg_split && (child = fork()) > 0) {
		int status;

		waitpid(child, &status, 0);
		return (failed + !(WIFEXITED(status) && WEXITSTATUS(status) == 0));
	}
	if (netns) {
		if (pg_split)
			setenv("AFF_TEST_NETNS_ONLY_PROTECTED", "1", 1);
		execlp("unshare", "unshare", "-rn", "sh", "-c",
		    NETNS_SETUP " && AFF_TEST_NETNS=1 exec \"$0\"", argv[0],
		    (char *)NULL);
		perror("unshare");
		if (pg_split)
			_exit(127);
	}
	if (!in_netns)
		fprintf(stderr, "test_security_input: no network namespace here: the "
		                "protected-mode tests are skipped\n");
	if (!pg_split && getenv("AFF_TEST_NETNS_ONLY_PROTECTED") == NULL) {
		failed += cmocka_run_group_tests_name("auth", auth,
		    setup_auth_on, teardown);
		failed += cmocka_run_group_tests_name("limits", limits,
		    setup_limits, teardown);
	}
	failed += cmocka_run_group_tests_name("protected", protected, NULL, NULL);
	return (failed);
}
