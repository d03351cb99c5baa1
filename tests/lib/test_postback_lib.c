/*
 * test_postback_lib.c - the pieces of postbacks that need no process: the
 * outbound signer against vectors computed elsewhere (the Standard
 * Webhooks specification's own example, and Python's hmac), the endpoint
 * URL rule, which addresses count as private (SSRF), the retry wait and
 * the worker's reading of Retry-After.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "aff_err.h"
#include "aff_postback.h"
#include "aff_util.h"
#include "postback.h"
#include "store.h"

static void
test_the_signature_matches_the_standard_webhooks_example(void **state)
{
	/* The specification's example (github.com/standard-webhooks), its
	 * signature checked with Python's hmac as well. */
	const char *body = "{\"test\": 2432232314}";
	char sig[AFF_POSTBACK_SIG_MAX];

	(void)state;
	assert_int_equal(aff_postback_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
	                     strlen(body), sig),
	    AFF_OK);
	assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void
test_a_secret_without_whsec_is_its_raw_bytes(void **state)
{
	/* python3: base64(hmac(b"plain-secret-of-an-endpoint",
	 * b"evt_1.1700000000.{}", sha256)) */
	char sig[AFF_POSTBACK_SIG_MAX];

	(void)state;
	assert_int_equal(aff_postback_sign("plain-secret-of-an-endpoint", "evt_1",
	                     1700000000, "{}", 2, sig),
	    AFF_OK);
	assert_string_equal(sig, "v1,t+wm0zoahz786yCm606O8y7sqFnxrldkdN547rIxBp0=");
}

static void
test_a_whsec_secret_that_is_not_base64_is_refused(void **state)
{
	char sig[AFF_POSTBACK_SIG_MAX];

	(void)state;
	assert_int_equal(aff_postback_sign("whsec_abc", "evt_1", 1, "{}", 2, sig),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_postback_sign("whsec_", "evt_1", 1, "{}", 2, sig),
	    AFF_INVALID_ARGUMENT);
}

static void
test_a_new_secret_is_whsec_and_32_bytes(void **state)
{
	char a[AFF_POSTBACK_SECRET_MAX], b[AFF_POSTBACK_SECRET_MAX];

	(void)state;
	assert_int_equal(aff_postback_secret_new(a), AFF_OK);
	assert_int_equal(aff_postback_secret_new(b), AFF_OK);
	assert_int_equal(strncmp(a, "whsec_", 6), 0);
	assert_int_equal(strlen(a), 6 + 44); /* base64 of 32 bytes */
	assert_string_not_equal(a, b);
}

static void
test_endpoint_urls_follow_the_rule(void **state)
{
	struct aff_postback_url u;
	char err[256];
	static const char *const bad[] = {
		"ftp://example.com/", "example.com/x", "http://", "http:///x",
		"http://u:p@example.com/", "http://example.com/#frag",
		"http://example.com:0/", "http://example.com:65536/",
		"http://example.com:80x/", "http://exa mple.com/",
		"http://[::1/", "http://ex%41mple.com/", "javascript:alert(1)",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(aff_postback_url_parse(bad[i], &u, err, sizeof(err)),
		    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_postback_url_parse("https://Hooks.Example.com/p?q=1",
	                     &u, err, sizeof(err)),
	    AFF_OK);
	assert_true(u.https);
	assert_string_equal(u.host, "Hooks.Example.com");
	assert_int_equal(u.port, 443);
	assert_int_equal(aff_postback_url_parse("http://[2001:db8::1]:8080/x", &u,
	                     err, sizeof(err)),
	    AFF_OK);
	assert_string_equal(u.host, "2001:db8::1");
	assert_int_equal(u.port, 8080);
	assert_false(u.https);
}

static int
private4(const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return (aff_postback_addr_private((struct sockaddr *)&a));
}

static int
private6(const char *ip)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6 };

	assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return (aff_postback_addr_private((struct sockaddr *)&a));
}

static void
test_private_addresses_are_told_apart(void **state)
{
	static const char *const v4_private[] = { "127.0.0.1", "127.255.0.9",
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0",
		"224.0.0.1", "255.255.255.255", "192.0.0.8", "198.18.0.1" };
	static const char *const v4_public[] = { "8.8.8.8", "172.32.0.1",
		"172.15.255.255", "100.128.0.1", "192.0.2.1", "1.1.1.1",
		"169.253.0.1" };
	static const char *const v6_private[] = { "::1", "::", "fe80::1",
		"fc00::1", "fd12:3456::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
		"ff02::1", "64:ff9b::a00:1" };
	static const char *const v6_public[] = { "2001:4860:4860::8888",
		"2a00:1450::1", "::ffff:8.8.8.8" };

	(void)state;
	for (size_t i = 0; i < sizeof(v4_private) / sizeof(v4_private[0]); i++)
		assert_true(private4(v4_private[i]));
	for (size_t i = 0; i < sizeof(v4_public) / sizeof(v4_public[0]); i++)
		assert_false(private4(v4_public[i]));
	for (size_t i = 0; i < sizeof(v6_private) / sizeof(v6_private[0]); i++)
		assert_true(private6(v6_private[i]));
	for (size_t i = 0; i < sizeof(v6_public) / sizeof(v6_public[0]); i++)
		assert_false(private6(v6_public[i]));
}

static void
test_the_retry_wait_doubles_with_jitter_and_honours_retry_after(void **state)
{
	struct store_postback_policy p = { .max_attempts = 8, .backoff_ms = 1000,
		.backoff_max_ms = 10000, .disable_after = 100 };

	(void)state;
	store_postback_configure(&p);
	for (int i = 0; i < 200; i++) {
		int64_t w1 = store_postback_backoff_ms(1, 0);
		int64_t w3 = store_postback_backoff_ms(3, 0);
		int64_t w9 = store_postback_backoff_ms(9, 0);
		assert_in_range(w1, 500, 1000);  /* half of 1 s random */
		assert_in_range(w3, 2000, 4000); /* 4 s */
		assert_in_range(w9, 5000, 10000); /* capped at the max */
		assert_int_equal(store_postback_backoff_ms(1, 7), 7000);
		assert_int_equal(store_postback_backoff_ms(1, 3600), 10000);
	}
}

static void
test_retry_after_is_read_as_seconds_or_a_date(void **state)
{
	(void)state;
	assert_int_equal(worker_postback_retry_after("2", 0), 2);
	assert_int_equal(worker_postback_retry_after(" 120", 0), 120);
	assert_int_equal(worker_postback_retry_after("soon", 0), 0);
	assert_int_equal(worker_postback_retry_after("", 0), 0);
	/* 1994-11-06T08:49:37Z is 784111777. */
	assert_int_equal(worker_postback_retry_after(
	                     "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30),
	    30);
	assert_int_equal(worker_postback_retry_after(
	                     "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 5),
	    0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_signature_matches_the_standard_webhooks_example),
		cmocka_unit_test(test_a_secret_without_whsec_is_its_raw_bytes),
		cmocka_unit_test(test_a_whsec_secret_that_is_not_base64_is_refused),
		cmocka_unit_test(test_a_new_secret_is_whsec_and_32_bytes),
		cmocka_unit_test(test_endpoint_urls_follow_the_rule),
		cmocka_unit_test(test_private_addresses_are_told_apart),
		cmocka_unit_test(test_the_retry_wait_doubles_with_jitter_and_honours_retry_after),
		cmocka_unit_test(test_retry_after_is_read_as_seconds_or_a_date),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
