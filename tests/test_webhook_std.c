/*
 * test_webhook_std.c - the Standard Webhooks form (webhook-id,
 * webhook-timestamp, webhook-signature) and whsec_ secrets: the
 * reference vector of the Standard Webhooks specification, vectors made
 * with Python's hmac and base64 (not our signer), rotation, every
 * malformed header with its message, and one whsec_ secret serving the
 * two X-Partner-Signature forms too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aff_err.h"
#include "aff_webhook.h"

#define NOW 1795500000LL
/* The specification's own example secret and message id. */
#define WHSEC "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
static const char body[] = "{\"order_id\":\"A-1\",\"advertiser_id\":2,"
                           "\"user_id\":1,\"amount\":49.9,\"commission\":4.99}";

/* Verifies with the comma-separated secrets; the reason, when expected,
 * must be why exactly. */
static int
verify(const char *secrets, const char *id, const char *ts, const char *sig,
    const char *b, int64_t now, const char *why)
{
	struct aff_webhook_secrets ws;
	char got[256] = "";
	int rv;

	assert_int_equal(aff_webhook_secrets_parse(&ws, secrets), AFF_OK);
	rv = aff_webhook_verify_standard(&ws, id, ts, sig, (const uint8_t *)b,
	    strlen(b), now, got, sizeof(got));
	if (why != NULL)
		assert_string_equal(got, why);
	aff_webhook_secrets_fini(&ws);
	return (rv);
}

static void
test_the_specification_vector_verifies(void **state)
{
	(void)state;
	/* standard-webhooks spec: secret, id, timestamp, payload and the
	 * signature its libraries produce for them. */
	assert_int_equal(verify(WHSEC, MSG_ID, "1614265330",
	                     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	                     "{\"test\": 2432232314}", 1614265330, NULL),
	    AFF_OK);
}

static void
test_python_vectors_verify_and_our_signer_agrees(void **state)
{
	char sig[128];

	(void)state;
	/* python3: base64.b64encode(hmac.new(base64.b64decode(
	 * "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), b"<id>.<t>." + body,
	 * hashlib.sha256).digest()) */
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500000",
	                     "v1,9kkcHF5bZup0xnEBvghOBkUB/HKYANXXb3ZzuNfrlAM=",
	                     body, NOW, NULL),
	    AFF_OK);
	aff_webhook_sign_standard(WHSEC, MSG_ID, NOW, (const uint8_t *)body,
	    strlen(body), sig);
	assert_string_equal(sig, "v1,9kkcHF5bZup0xnEBvghOBkUB/HKYANXXb3ZzuNfrlAM=");
	/* Any other secret is its own bytes: "s3cret" configured as is, or
	 * as whsec_ + base64("s3cret"), is the same key. */
	assert_int_equal(verify("s3cret", MSG_ID, "1795500000",
	                     "v1,Vfa3CPt4TtKJ10QKfktaeDNtNVXcGDa8A5SnUV5UHUs=",
	                     body, NOW, NULL),
	    AFF_OK);
	assert_int_equal(verify("whsec_czNjcmV0", MSG_ID, "1795500000",
	                     "v1,Vfa3CPt4TtKJ10QKfktaeDNtNVXcGDa8A5SnUV5UHUs=",
	                     body, NOW, NULL),
	    AFF_OK);
	/* Padding may be left out. */
	assert_int_equal(verify("s3cret", MSG_ID, "1795500000",
	                     "v1,Vfa3CPt4TtKJ10QKfktaeDNtNVXcGDa8A5SnUV5UHUs",
	                     body, NOW, NULL),
	    AFF_OK);
}

static void
test_a_whsec_secret_serves_the_other_forms(void **state)
{
	struct aff_webhook_secrets ws;
	char why[256];

	(void)state;
	assert_int_equal(aff_webhook_secrets_parse(&ws, WHSEC), AFF_OK);
	/* python3: hmac.new(key, b"1795500000." + body, sha256).hexdigest() */
	assert_int_equal(aff_webhook_verify(&ws,
	                     "t=1795500000,v1=73d8eadfd5fe099d2c359786c4fb4fb1"
	                     "845e864ecfcc7c50a16a057a3ca7d33a",
	                     (const uint8_t *)body, strlen(body), NOW, why,
	                     sizeof(why)),
	    AFF_OK);
	aff_webhook_secrets_fini(&ws);
}

static void
test_several_signatures_and_rotated_secrets_are_accepted(void **state)
{
	const char *good = "v1,9kkcHF5bZup0xnEBvghOBkUB/HKYANXXb3ZzuNfrlAM=";
	const char *other = "v1,Vfa3CPt4TtKJ10QKfktaeDNtNVXcGDa8A5SnUV5UHUs=";
	char sig[256];

	(void)state;
	/* The old and the new secret both configured: either signs. */
	assert_int_equal(verify("s3cret," WHSEC, MSG_ID, "1795500000", good,
	                     body, NOW, NULL),
	    AFF_OK);
	assert_int_equal(verify("s3cret," WHSEC, MSG_ID, "1795500000", other,
	                     body, NOW, NULL),
	    AFF_OK);
	/* A sender signing with both: any entry may match, in any order,
	 * with other versions (v1a: asymmetric) skipped. */
	snprintf(sig, sizeof(sig), "%s  v1a,AAAA %s", other, good);
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500000", sig, body, NOW,
	                     NULL),
	    AFF_OK);
	/* Only the old secret's entry, the new secret alone configured. */
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500000", other, body, NOW,
	                     "the signature does not match the body"),
	    AFF_UNAUTHENTICATED);
}

static void
test_wrong_tampered_and_stale_are_refused(void **state)
{
	const char *good = "v1,9kkcHF5bZup0xnEBvghOBkUB/HKYANXXb3ZzuNfrlAM=";

	(void)state;
	assert_int_equal(verify("not-it", MSG_ID, "1795500000", good, body, NOW,
	                     "the signature does not match the body"),
	    AFF_UNAUTHENTICATED);
	/* The id and the time are signed: another id or time fails. */
	assert_int_equal(verify(WHSEC, "msg_other", "1795500000", good, body,
	                     NOW, "the signature does not match the body"),
	    AFF_UNAUTHENTICATED);
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500001", good, body, NOW,
	                     "the signature does not match the body"),
	    AFF_UNAUTHENTICATED);
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500000", good,
	                     "{\"order_id\":\"A-2\"}", NOW,
	                     "the signature does not match the body"),
	    AFF_UNAUTHENTICATED);
	/* 300 s either way, inclusive. */
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500000", good, body,
	                     NOW + 300, NULL),
	    AFF_OK);
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500000", good, body,
	                     NOW + 301,
	                     "the webhook-timestamp is more than 300 s old"),
	    AFF_UNAUTHENTICATED);
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500000", good, body,
	                     NOW - 301,
	                     "the webhook-timestamp is more than 300 s ahead"),
	    AFF_UNAUTHENTICATED);
}

static void
test_malformed_headers_each_have_their_message(void **state)
{
	static const struct {
		const char *id, *ts, *sig, *why;
	} cases[] = {
		{ NULL, "1795500000", "v1,AAAA", "the webhook-id header is missing" },
		{ "", "1795500000", "v1,AAAA", "the webhook-id header is missing" },
		{ "a b", "1795500000", "v1,AAAA",
		    "the webhook-id header is malformed (1-256 printable ASCII "
		    "characters, no space)" },
		{ "caf\xc3\xa9", "1795500000", "v1,AAAA",
		    "the webhook-id header is malformed (1-256 printable ASCII "
		    "characters, no space)" },
		{ MSG_ID, NULL, "v1,AAAA", "the webhook-timestamp header is missing" },
		{ MSG_ID, "-1795500000", "v1,AAAA",
		    "the webhook-timestamp header is malformed (Unix seconds)" },
		{ MSG_ID, "01795500000", "v1,AAAA",
		    "the webhook-timestamp header is malformed (Unix seconds)" },
		{ MSG_ID, "1795500000.5", "v1,AAAA",
		    "the webhook-timestamp header is malformed (Unix seconds)" },
		{ MSG_ID, "99999999999999999999", "v1,AAAA",
		    "the webhook-timestamp header is malformed (Unix seconds)" },
		{ MSG_ID, "1795500000", NULL, "the webhook-signature header is missing" },
		{ MSG_ID, "1795500000", "v1",
		    "the webhook-signature header is malformed (v1,<base64> "
		    "entries separated by spaces)" },
		{ MSG_ID, "1795500000", ",AAAA",
		    "the webhook-signature header is malformed (v1,<base64> "
		    "entries separated by spaces)" },
		/* Not 32 bytes, not base64, base64url. */
		{ MSG_ID, "1795500000", "v1,AAAA",
		    "the webhook-signature header is malformed (v1,<base64> "
		    "entries separated by spaces)" },
		{ MSG_ID, "1795500000",
		    "v1,9kkcHF5bZup0xnEBvghOBkUB_HKYANXXb3ZzuNfrlAM=",
		    "the webhook-signature header is malformed (v1,<base64> "
		    "entries separated by spaces)" },
		{ MSG_ID, "1795500000",
		    "v1,9kkcHF5bZup0xnEBvghOBkUB/HKYANXXb3ZzuNfrlAM===",
		    "the webhook-signature header is malformed (v1,<base64> "
		    "entries separated by spaces)" },
		{ MSG_ID, "1795500000", "v1a,AAAA v2,BBBB",
		    "the webhook-signature header has no v1 signature" },
		{ MSG_ID, "1795500000", "   ",
		    "the webhook-signature header has no v1 signature" },
	};
	char id[300];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(verify(WHSEC, cases[i].id, cases[i].ts,
		                     cases[i].sig, body, NOW, cases[i].why),
		    AFF_UNAUTHENTICATED);
	/* 256 characters are an id, 257 are not. */
	memset(id, 'x', 257);
	id[257] = '\0';
	assert_false(aff_webhook_id_valid(id));
	id[256] = '\0';
	assert_true(aff_webhook_id_valid(id));
	assert_false(aff_webhook_id_valid(""));
	assert_false(aff_webhook_id_valid(NULL));
}

static void
test_headers_that_would_cost_many_macs_are_refused(void **state)
{
	char sig[1100] = "";

	(void)state;
	/* Nine v1 entries: over the bound, refused before any MAC. */
	for (int i = 0; i < 9; i++)
		strcat(sig, "v1,9kkcHF5bZup0xnEBvghOBkUB/HKYANXXb3ZzuNfrlAM= ");
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500000", sig, body, NOW,
	                     "the webhook-signature header has more than 8 v1 "
	                     "signatures"),
	    AFF_UNAUTHENTICATED);
	memset(sig, ' ', 1030);
	sig[1030] = '\0';
	assert_int_equal(verify(WHSEC, MSG_ID, "1795500000", sig, body, NOW,
	                     "the webhook-signature header is longer than 1024 "
	                     "bytes"),
	    AFF_UNAUTHENTICATED);
}

static void
test_a_whsec_secret_that_does_not_decode_is_refused(void **state)
{
	struct aff_webhook_secrets ws;

	(void)state;
	assert_int_equal(aff_webhook_secrets_parse(&ws, "whsec_not*base64"),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_webhook_secrets_parse(&ws, "ok,whsec_"),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_webhook_secrets_parse(&ws, "ok,whsec_A"),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_webhook_secrets_parse(&ws, "ok," WHSEC), AFF_OK);
	aff_webhook_secrets_fini(&ws);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_specification_vector_verifies),
		cmocka_unit_test(test_python_vectors_verify_and_our_signer_agrees),
		cmocka_unit_test(test_a_whsec_secret_serves_the_other_forms),
		cmocka_unit_test(
		    test_several_signatures_and_rotated_secrets_are_accepted),
		cmocka_unit_test(test_wrong_tampered_and_stale_are_refused),
		cmocka_unit_test(test_malformed_headers_each_have_their_message),
		cmocka_unit_test(test_headers_that_would_cost_many_macs_are_refused),
		cmocka_unit_test(
		    test_a_whsec_secret_that_does_not_decode_is_refused),
	};

	return (cmocka_run_group_tests_name("webhook_std", tests, NULL, NULL));
}
