/*
 * test_webhook.c - X-Partner-Signature in both forms (valid, wrong,
 * missing, tampered, stale, future, malformed, rotated secrets) and the
 * webhook body: every validation rule, and money read exactly to the cent.
 * Then over real HTTP through a real bridge and server: the plain form
 * (no timestamp, so replayable) refused when turned off for the whole
 * server or for one advertiser, accepted otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aff_err.h"
#include "aff_util.h"
#include "aff_webhook.h"
#include "affiliate/v1/admin.pb-c.h"
#include "auth.h"
#include "store.h"
#include "testutil.h"
#include "webhook_body.h"

#define NOW 1795500000LL
static const char body[] = "{\"order_id\":\"A-1\",\"advertiser_id\":2,"
                           "\"user_id\":1,\"amount\":49.9,\"commission\":4.99}";

static int
verify(const char *secrets, const char *header, const char *b, const char *why)
{
	struct aff_webhook_secrets ws;
	char got[256] = "";
	int rv;

	assert_int_equal(aff_webhook_secrets_parse(&ws, secrets), AFF_OK);
	rv = aff_webhook_verify(&ws, header, (const uint8_t *)b, strlen(b), NOW,
	    got, sizeof(got));
	if (why != NULL)
		assert_string_equal(got, why);
	aff_webhook_secrets_fini(&ws);
	return (rv);
}

static void
sign(const char *secret, const char *b, int64_t t, char out[128])
{
	aff_webhook_sign(secret, (const uint8_t *)b, strlen(b), t, out);
}

static void
test_both_signature_forms_are_accepted(void **state)
{
	char sig[128];

	(void)state;
	sign("s3cret", body, 0, sig);
	assert_int_equal(strlen(sig), 64);
	assert_int_equal(verify("s3cret", sig, body, NULL), AFF_OK);
	/* Hex in capitals is the same signature. */
	for (char *p = sig; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 32);
	assert_int_equal(verify("s3cret", sig, body, NULL), AFF_OK);
	sign("s3cret", body, NOW - 10, sig);
	assert_int_equal(strncmp(sig, "t=1795499990,v1=", 16), 0);
	assert_int_equal(verify("s3cret", sig, body, NULL), AFF_OK);
}

static void
test_a_known_vector_matches(void **state)
{
	char sig[128];

	(void)state;
	/* HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"),
	 * the RFC 4231-style vector published on Wikipedia. */
	sign("key", "The quick brown fox jumps over the lazy dog", 0, sig);
	assert_string_equal(sig,
	    "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
}

static void
test_wrong_missing_and_tampered_signatures_are_refused(void **state)
{
	char sig[128], tampered[sizeof(body)];

	(void)state;
	sign("other", body, 0, sig);
	assert_int_equal(verify("s3cret", sig, body,
	                     "the signature does not match the body"),
	    AFF_UNAUTHENTICATED);
	assert_int_equal(verify("s3cret", NULL, body,
	                     "the X-Partner-Signature header is missing"),
	    AFF_UNAUTHENTICATED);
	assert_int_equal(verify("s3cret", "", body,
	                     "the X-Partner-Signature header is missing"),
	    AFF_UNAUTHENTICATED);
	sign("s3cret", body, 0, sig);
	memcpy(tampered, body, sizeof(body));
	tampered[strlen(body) - 3] = '8'; /* commission 4.99 -> 4.89 */
	assert_int_equal(verify("s3cret", sig, tampered,
	                     "the signature does not match the body"),
	    AFF_UNAUTHENTICATED);
	sign("s3cret", body, NOW, sig);
	assert_int_equal(verify("s3cret", sig, tampered,
	                     "the signature does not match the body"),
	    AFF_UNAUTHENTICATED);
}

static void
test_stale_and_future_timestamps_are_refused(void **state)
{
	char sig[128];

	(void)state;
	sign("s3cret", body, NOW - 301, sig);
	assert_int_equal(verify("s3cret", sig, body,
	                     "the signature's timestamp is more than 300 s old"),
	    AFF_UNAUTHENTICATED);
	sign("s3cret", body, NOW + 301, sig);
	assert_int_equal(verify("s3cret", sig, body,
	                     "the signature's timestamp is more than 300 s ahead"),
	    AFF_UNAUTHENTICATED);
	sign("s3cret", body, NOW - 300, sig);
	assert_int_equal(verify("s3cret", sig, body, NULL), AFF_OK);
	sign("s3cret", body, NOW + 300, sig);
	assert_int_equal(verify("s3cret", sig, body, NULL), AFF_OK);
}

static void
test_malformed_headers_are_refused(void **state)
{
	static const char *const bad[] = {
		"abc",
		"sha256=00",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
		"t=,v1=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"t=abc,v1=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"t=1795500000",
		"t=1795500000,v1=zz",
		"t=1795500000,v2=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"t=1795500000,,v1=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"t=+1795500000,v1=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rv = verify("s3cret", bad[i], body, NULL);
		assert_int_equal(rv, AFF_UNAUTHENTICATED);
	}
	assert_int_equal(verify("s3cret", "t=abc,v1=00", body,
	                     "the signature's timestamp is malformed"),
	    AFF_UNAUTHENTICATED);
	(void)why;
}

static void
test_headers_that_would_cost_many_macs_are_refused_unhashed(void **state)
{
	char sig[128], hdr[2048];
	size_t n;

	(void)state;
	sign("s3cret", body, NOW, sig);
	/* Eight v1= are fine; a ninth is refused. */
	n = (size_t)snprintf(hdr, sizeof(hdr), "%s", sig);
	for (int i = 0; i < 7; i++)
		n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, ",v1=%064d", 0);
	assert_int_equal(verify("s3cret", hdr, body, NULL), AFF_OK);
	snprintf(hdr + n, sizeof(hdr) - n, ",v1=%064d", 0);
	assert_int_equal(verify("s3cret", hdr, body,
	                     "the X-Partner-Signature header is malformed"),
	    AFF_UNAUTHENTICATED);
	/* Over 1 KiB, whatever it holds. */
	memset(hdr, 'a', 1100);
	hdr[1100] = '\0';
	assert_int_equal(verify("s3cret", hdr, body,
	                     "the X-Partner-Signature header is malformed"),
	    AFF_UNAUTHENTICATED);
}

static void
test_rotated_secrets_and_several_v1_are_accepted(void **state)
{
	char sig[128], two[300], good[128];

	(void)state;
	sign("old", body, 0, sig);
	assert_int_equal(verify("new,old", sig, body, NULL), AFF_OK);
	assert_int_equal(verify("new", sig, body, NULL), AFF_UNAUTHENTICATED);
	/* The timestamped form may carry a v1 per secret. */
	sign("new", body, NOW, good);
	sign("old", body, NOW, sig);
	snprintf(two, sizeof(two), "%s,v1=%s", sig, strchr(good, 'v') + 3);
	assert_int_equal(verify("new", two, body, NULL), AFF_OK);
	assert_int_equal(verify("old", two, body, NULL), AFF_OK);
	assert_int_equal(verify("third", two, body, NULL), AFF_UNAUTHENTICATED);
}

static void
test_secret_lists_parse(void **state)
{
	struct aff_webhook_secrets ws;

	(void)state;
	assert_int_equal(aff_webhook_secrets_parse(&ws, "a,,b,"), AFF_OK);
	assert_int_equal(ws.n, 2);
	assert_string_equal(ws.secret[1], "b");
	aff_webhook_secrets_fini(&ws);
	assert_int_equal(aff_webhook_secrets_parse(&ws, ",,"), AFF_INVALID_ARGUMENT);
	assert_int_equal(
	    aff_webhook_secrets_parse(&ws, "1,2,3,4,5,6,7,8,9"), AFF_INVALID_ARGUMENT);
}

/* Parses s; on error checks the message. */
static int
parse(const char *s, struct webhook_order *o, const char *want_err)
{
	char err[256] = "";
	int rv = webhook_body_parse((const uint8_t *)s, strlen(s), o, err,
	    sizeof(err));

	if (want_err != NULL) {
		assert_int_equal(rv, AFF_INVALID_ARGUMENT);
		assert_string_equal(err, want_err);
	}
	return (rv);
}

static void
test_a_good_body_is_read_exactly(void **state)
{
	struct webhook_order o;

	(void)state;
	assert_int_equal(parse(body, &o, NULL), AFF_OK);
	assert_string_equal(o.order_id, "A-1");
	assert_int_equal(o.advertiser_id, 2);
	assert_int_equal(o.editor_id, 1);
	assert_int_equal(o.amount_cents, 4990);
	assert_int_equal(o.commission_cents, 499);
	assert_string_equal(o.currency, "");
	assert_string_equal(o.status, "");
	assert_int_equal(parse(" { \"order_id\" : \"caf\\u00e9-\\ud83d\\ude00\","
	                       " \"advertiser_id\":3, \"editor_id\":2,"
	                       " \"amount\":0.1, \"commission\":0,"
	                       " \"currency\":\"GBP\", \"status\":\"approved\" } ",
	                     &o, NULL),
	    AFF_OK);
	assert_string_equal(o.order_id, "caf\xc3\xa9-\xf0\x9f\x98\x80");
	assert_int_equal(o.amount_cents, 10);
	assert_int_equal(o.commission_cents, 0);
	assert_string_equal(o.currency, "GBP");
	assert_string_equal(o.status, "approved");
	/* Values where a double would round: exact here. */
	assert_int_equal(parse("{\"order_id\":\"x\",\"advertiser_id\":1,"
	                       "\"editor_id\":1,\"amount\":1234567890.29,"
	                       "\"commission\":0.07}",
	                     &o, NULL),
	    AFF_OK);
	assert_int_equal(o.amount_cents, 123456789029LL);
	assert_int_equal(o.commission_cents, 7);
}

static void
test_every_validation_rule_has_its_message(void **state)
{
	struct webhook_order o;
#define ORD "\"order_id\":\"A\",\"advertiser_id\":1,\"editor_id\":1,"
	static const char *const cases[][2] = {
		{ "", "the body must be a JSON object" },
		{ "[1]", "the body must be a JSON object" },
		{ "{", "the body is not valid JSON: a key was expected at byte 1" },
		{ "{}", "order_id is required" },
		{ "{" ORD "\"amount\":1,\"commission\":0} x",
		    "the body is not valid JSON: bytes follow the object" },
		{ "{" ORD "\"amount\":1}", "commission is required" },
		{ "{" ORD "\"commission\":1}", "amount is required" },
		{ "{\"order_id\":\"A\",\"editor_id\":1,\"amount\":1,\"commission\":0}",
		    "advertiser_id is required" },
		{ "{\"order_id\":\"A\",\"advertiser_id\":1,\"amount\":1,"
		  "\"commission\":0}",
		    "editor_id (or user_id) is required" },
		{ "{" ORD "\"user_id\":2,\"amount\":1,\"commission\":0}",
		    "editor_id and user_id disagree" },
		{ "{\"order_id\":\"\",\"advertiser_id\":1,\"editor_id\":1}",
		    "order_id must be 1 to 64 characters" },
		{ "{\"order_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaa\"}",
		    "order_id must be 1 to 64 characters" },
		{ "{\"order_id\":7}", "order_id must be a string" },
		{ "{\"order_id\":\"A\\u0000B\"}", "order_id contains NUL" },
		{ "{\"order_id\":\"\xff\"}", "order_id is not valid UTF-8" },
		{ "{\"order_id\":\"\\ud800\"}", "order_id has a lone surrogate" },
		{ "{\"advertiser_id\":\"1\"}", "advertiser_id must be a number" },
		{ "{\"advertiser_id\":0}", "advertiser_id must be a positive integer" },
		{ "{\"advertiser_id\":-4}",
		    "advertiser_id must be a positive integer" },
		{ "{\"advertiser_id\":1.5}",
		    "advertiser_id must be a positive integer" },
		{ "{\"amount\":-1}",
		    "amount must be a number of at least 0 with at most two "
		    "decimals" },
		{ "{\"amount\":1.234}",
		    "amount must be a number of at least 0 with at most two "
		    "decimals" },
		{ "{\"amount\":1e2}",
		    "amount must be a number of at least 0 with at most two "
		    "decimals" },
		{ "{\"amount\":01}",
		    "amount must be a number of at least 0 with at most two "
		    "decimals" },
		{ "{\"amount\":\"4.99\"}", "amount must be a number" },
		{ "{\"amount\":1.}",
		    "amount must be a number of at least 0 with at most two "
		    "decimals" },
		{ "{\"commission\":null}", "commission must be a number" },
		{ "{" ORD "\"amount\":1,\"commission\":1.01}",
		    "commission must not be more than amount" },
		{ "{\"currency\":\"eur\"}",
		    "currency must be an ISO 4217 code such as EUR" },
		{ "{\"status\":\"paid\"}",
		    "status must be pending, approved or declined" },
		{ "{\"order_id\":\"A\",\"order_id\":\"B\"}", "order_id is given twice" },
		{ "{\"coupon\":\"X\"}", "unknown field 'coupon'" },
		{ "{\"order_id\":{\"a\":1}}", "order_id must be a string" },
		{ "{\"order_id\":\"A\" \"x\":1}",
		    "the body is not valid JSON: ',' or '}' expected at byte 16" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse(cases[i][0], &o, cases[i][1]);
}

static void
test_the_plain_form_is_told_apart(void **state)
{
	(void)state;
	assert_true(aff_webhook_is_plain(
	    "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"));
	assert_true(aff_webhook_is_plain("garbage"));
	assert_false(aff_webhook_is_plain("t=1795500000,v1=00"));
	assert_false(aff_webhook_is_plain(""));
	assert_false(aff_webhook_is_plain(NULL));
}

/* ---- over REST, through the real bridge and server ---- */

#define STACK_SECRET "stack-webhook-secret-0123456789"

/* Starts the stack with the server's --webhook-require-timestamp set to
 * require (through its variable, as an operator would). */
static struct tu_stack *
stack_start(const char *require)
{
	struct tu_stack *st;

	setenv("AFFILIATE_WEBHOOK_SECRET", STACK_SECRET, 1);
	if (require != NULL)
		setenv("AFFILIATE_WEBHOOK_REQUIRE_TIMESTAMP", require, 1);
	assert_non_null(st = tu_stack_new(8, 5000));
	unsetenv("AFFILIATE_WEBHOOK_SECRET");
	unsetenv("AFFILIATE_WEBHOOK_REQUIRE_TIMESTAMP");
	return (st);
}

/* POSTs order order_id for advertiser adv, signed plain or timestamped
 * (now); returns the status, the response in r (caller finis). */
static int
post_order(struct tu_stack *st, int plain, int64_t adv, const char *order_id,
    struct tu_http_response *r)
{
	char b[256], sig[128], hdr[200];

	snprintf(b, sizeof(b),
	    "{\"order_id\":\"%s\",\"advertiser_id\":%lld,\"user_id\":1,"
	    "\"amount\":10,\"commission\":1}",
	    order_id, (long long)adv);
	sign(STACK_SECRET, b, plain ? 0 : aff_now_ms() / 1000, sig);
	snprintf(hdr, sizeof(hdr), "X-Partner-Signature: %s\r\n", sig);
	assert_int_equal(tu_http(st->port, "POST", "/webhook/orders", hdr, b, r),
	    0);
	return (r->status);
}

/* The status of a POST, its response dropped. */
static int
post_status(struct tu_stack *st, int plain, int64_t adv, const char *order_id)
{
	struct tu_http_response r;
	int status = post_order(st, plain, adv, order_id, &r);

	tu_http_response_fini(&r);
	return (status);
}

static long long
orders_named(struct tu_stack *st, const char *order_id)
{
	char sql[160];

	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM orders WHERE order_id = '%s'", order_id);
	return (tu_sql_int(st->db, sql));
}

/* SetWebhookPolicy with an admin key (tok; NULL: none). */
static int
set_policy(struct tu_stack *st, const char *tok, int64_t adv, int on,
    Affiliate__V1__WebhookPolicy **out)
{
	Affiliate__V1__SetWebhookPolicyRequest req =
	    AFFILIATE__V1__SET_WEBHOOK_POLICY_REQUEST__INIT;
	char bearer[160];
	struct aff_metadata md = { "authorization", bearer };
	struct aff_call_opts o = { 0 };
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	int rv;

	if (tok != NULL) {
		snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
		o.metadata = &md;
		o.n_metadata = 1;
	}
	req.advertiser_id = adv;
	req.require_timestamp = on;
	rv = aff_client_call(st->ts.client,
	    &affiliate__v1__webhook_secret_service__descriptor,
	    "SetWebhookPolicy", &req.base, &o, &resp, &res);
	aff_call_result_fini(&res);
	if (out != NULL)
		*out = (Affiliate__V1__WebhookPolicy *)resp;
	else if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return (rv);
}

static void
test_plain_signatures_can_be_turned_off_per_advertiser(void **state)
{
	struct tu_stack *st = stack_start(NULL);
	Affiliate__V1__WebhookPolicy *pol = NULL;
	Affiliate__V1__ApiKey *k;
	struct tu_http_response r;
	char tok[AUTH_TOKEN_MAX];
	aff_arena a;
	store *s;

	(void)state;
	/* An admin key, made in the database as --create-admin-key does. */
	aff_arena_init(&a);
	assert_int_equal(store_open(st->db, &s), AFF_OK);
	assert_int_equal(auth_key_create(s, 0, &a, &k, tok), AFF_OK);
	store_close(s);
	aff_arena_fini(&a);

	/* By default both forms are taken. */
	assert_int_equal(post_status(st, 1, 2, "P-1"), 201);
	assert_int_equal(post_status(st, 0, 2, "T-1"), 201);

	/* Admin only, and only for an advertiser that exists. */
	assert_int_equal(set_policy(st, NULL, 2, 1, NULL), AFF_UNAUTHENTICATED);
	assert_int_equal(set_policy(st, tok, 999, 1, NULL), AFF_NOT_FOUND);
	assert_int_equal(set_policy(st, tok, 0, 1, NULL), AFF_INVALID_ARGUMENT);
	assert_int_equal(tu_sql_int(st->db,
	                     "SELECT count(*) FROM webhook_policies"),
	    0);

	/* Turned off for advertiser 2: its plain signatures are 401 with a
	 * clear message and store nothing, even though they verify. */
	assert_int_equal(set_policy(st, tok, 2, 1, &pol), AFF_OK);
	assert_non_null(pol);
	assert_int_equal(pol->advertiser_id, 2);
	assert_true(pol->require_timestamp);
	protobuf_c_message_free_unpacked(&pol->base, NULL);
	assert_int_equal(tu_sql_int(st->db, "SELECT require_timestamp FROM "
	                                    "webhook_policies WHERE "
	                                    "advertiser_id = 2"),
	    1);
	assert_int_equal(post_order(st, 1, 2, "P-2", &r), 401);
	assert_non_null(strstr(r.body,
	    "\"code\":\"UNAUTHENTICATED\",\"message\":\"the plain "
	    "X-Partner-Signature (no timestamp) is turned off for advertiser "
	    "2: sign as t=<unix seconds>,v1=<hex>\""));
	tu_http_response_fini(&r);
	assert_int_equal(orders_named(st, "P-2"), 0);
	/* The same order already stored is refused too (no 200 echo). */
	assert_int_equal(post_status(st, 1, 2, "P-1"), 401);
	/* The timestamped form still works for it... */
	assert_int_equal(post_status(st, 0, 2, "T-2"), 201);
	assert_int_equal(orders_named(st, "T-2"), 1);
	/* ...and the other advertisers keep both forms. */
	assert_int_equal(post_status(st, 1, 3, "P-3"), 201);

	/* Turned on again: accepted again. */
	assert_int_equal(set_policy(st, tok, 2, 0, NULL), AFF_OK);
	assert_int_equal(post_status(st, 1, 2, "P-2"), 201);
	assert_int_equal(orders_named(st, "P-2"), 1);
	tu_stack_free(st);
}

static void
test_plain_signatures_can_be_turned_off_for_the_whole_server(void **state)
{
	struct tu_stack *st = stack_start("1");
	struct tu_http_response r;

	(void)state;
	assert_int_equal(post_order(st, 1, 2, "P-1", &r), 401);
	assert_non_null(strstr(r.body,
	    "\"message\":\"the plain X-Partner-Signature (no timestamp) is "
	    "turned off on this server: sign as t=<unix seconds>,v1=<hex>\""));
	tu_http_response_fini(&r);
	assert_int_equal(post_status(st, 1, 3, "P-3"), 401);
	assert_int_equal(orders_named(st, "P-1") + orders_named(st, "P-3"), 0);
	assert_int_equal(post_status(st, 0, 2, "T-1"), 201);
	assert_int_equal(orders_named(st, "T-1"), 1);
	tu_stack_free(st);

	/* "off" is the default's spelling; garbage is refused at start. */
	st = stack_start("off");
	assert_int_equal(post_status(st, 1, 2, "P-1"), 201);
	tu_stack_free(st);
}

static void
test_a_bad_require_timestamp_setting_is_refused(void **state)
{
	struct server_config cfg;
	int help;

	(void)state;
	setenv("AFFILIATE_WEBHOOK_REQUIRE_TIMESTAMP", "sometimes", 1);
	assert_int_equal(server_config_load(&cfg, 0, NULL, &help),
	    AFF_INVALID_ARGUMENT);
	setenv("AFFILIATE_WEBHOOK_REQUIRE_TIMESTAMP", "on", 1);
	assert_int_equal(server_config_load(&cfg, 0, NULL, &help), AFF_OK);
	assert_int_equal(cfg.webhook_require_timestamp, 1);
	unsetenv("AFFILIATE_WEBHOOK_REQUIRE_TIMESTAMP");
	assert_int_equal(server_config_load(&cfg, 0, NULL, &help), AFF_OK);
	assert_int_equal(cfg.webhook_require_timestamp, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_signature_forms_are_accepted),
		cmocka_unit_test(test_a_known_vector_matches),
		cmocka_unit_test(
		    test_wrong_missing_and_tampered_signatures_are_refused),
		cmocka_unit_test(test_stale_and_future_timestamps_are_refused),
		cmocka_unit_test(test_malformed_headers_are_refused),
		cmocka_unit_test(test_rotated_secrets_and_several_v1_are_accepted),
		cmocka_unit_test(
		    test_headers_that_would_cost_many_macs_are_refused_unhashed),
		cmocka_unit_test(test_secret_lists_parse),
		cmocka_unit_test(test_a_good_body_is_read_exactly),
		cmocka_unit_test(test_every_validation_rule_has_its_message),
		cmocka_unit_test(test_the_plain_form_is_told_apart),
		cmocka_unit_test(
		    test_plain_signatures_can_be_turned_off_per_advertiser),
		cmocka_unit_test(
		    test_plain_signatures_can_be_turned_off_for_the_whole_server),
		cmocka_unit_test(test_a_bad_require_timestamp_setting_is_refused),
	};

	return (cmocka_run_group_tests_name("webhook", tests, NULL, NULL));
}
