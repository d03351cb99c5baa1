/*
 * test_cache_limit.c - the rate-limit buckets in Redis (cache_limit.h)
 * against a real redis-server on a free port: the burst, the refill on
 * Redis's clock, the expiry of an idle bucket, the script loaded again
 * after SCRIPT FLUSH (EVALSHA then EVAL), Redis down and off; and the
 * rate settings that take fractions (auth_limit_parse). The two servers
 * sharing one bucket are test_ratelimit_shared's (real processes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aff_err.h"
#include "auth.h"
#include "cache.h"
#include "cache_limit.h"
#include "testutil.h"

struct fx {
	struct tu_redis redis;
	cache *c;
};

static void
nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct cache_opts co = { "127.0.0.1", 0, 200, 300 };

	if (f == NULL || tu_redis_start(&f->redis) != 0) {
		free(f);
		return (-1);
	}
	co.port = f->redis.port;
	if (cache_open(&co, &f->c) != AFF_OK) {
		tu_redis_stop(&f->redis);
		free(f);
		return (-1);
	}
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	cache_close(f->c);
	tu_redis_stop(&f->redis);
	free(f);
	return (0);
}

static void
test_a_bucket_gives_its_burst_then_says_how_long_to_wait(void **state)
{
	struct fx *f = *state;
	struct cache_limit_state st;
	int tried;

	for (int i = 0; i < 3; i++) {
		assert_int_equal(cache_limit_take(f->c, "t:burst", 0.5, 3, &st,
		                     &tried), AFF_OK);
		assert_int_equal(tried, 1);
		assert_int_equal(st.allowed, 1);
		assert_int_equal(st.remaining, 2 - i);
		assert_int_equal(st.retry_ms, 0);
	}
	assert_int_equal(cache_limit_take(f->c, "t:burst", 0.5, 3, &st, &tried),
	    AFF_OK);
	assert_int_equal(st.allowed, 0);
	assert_int_equal(st.remaining, 0);
	/* One token every 2 s: a little less than 2000 ms has to pass. */
	assert_in_range(st.retry_ms, 1500, 2000);
	assert_in_range(st.reset_ms, 5500, 6000);
}

static void
test_the_bucket_refills_on_redis_time(void **state)
{
	struct fx *f = *state;
	struct cache_limit_state st;
	int tried;

	assert_int_equal(cache_limit_take(f->c, "t:refill", 4, 1, &st, &tried),
	    AFF_OK);
	assert_int_equal(st.allowed, 1);
	assert_int_equal(cache_limit_take(f->c, "t:refill", 4, 1, &st, &tried),
	    AFF_OK);
	assert_int_equal(st.allowed, 0);
	assert_in_range(st.retry_ms, 1, 250);
	nap_ms(300);
	assert_int_equal(cache_limit_take(f->c, "t:refill", 4, 1, &st, &tried),
	    AFF_OK);
	assert_int_equal(st.allowed, 1);
}

static void
test_an_idle_bucket_expires_once_it_would_be_full(void **state)
{
	struct fx *f = *state;
	struct cache_limit_state st;
	long long pttl;
	int tried;

	for (int i = 0; i < 4; i++)
		assert_int_equal(cache_limit_take(f->c, "t:ttl", 2, 10, &st,
		                     &tried), AFF_OK);
	/* 4 of 10 tokens taken at 2 a second: full after 2 s, kept 1 s
	 * more. */
	pttl = tu_redis_int(&f->redis, "PTTL t:ttl");
	assert_in_range(pttl, 2500, 3000);
}

static void
test_the_script_is_sent_again_after_script_flush(void **state)
{
	struct fx *f = *state;
	struct cache_limit_state st;
	int tried;

	assert_int_equal(cache_limit_take(f->c, "t:flush", 1, 5, &st, &tried),
	    AFF_OK);
	assert_int_equal(st.remaining, 4);
	assert_int_equal(tu_redis_int(&f->redis, "SCRIPT FLUSH"), 0);
	/* NOSCRIPT, then EVAL: the same bucket, counting on. */
	assert_int_equal(cache_limit_take(f->c, "t:flush", 1, 5, &st, &tried),
	    AFF_OK);
	assert_int_equal(st.remaining, 3);
	assert_int_equal(cache_limit_take(f->c, "t:flush", 1, 5, &st, &tried),
	    AFF_OK);
	assert_int_equal(st.remaining, 2);
}

static void
test_redis_down_fails_once_then_waits_out_the_backoff(void **state)
{
	struct fx *f = *state;
	struct cache_limit_state st;
	int tried;

	assert_int_equal(cache_limit_take(f->c, "t:down", 1, 5, &st, &tried),
	    AFF_OK);
	tu_redis_stop(&f->redis);
	assert_int_equal(cache_limit_take(f->c, "t:down", 1, 5, &st, &tried),
	    AFF_UNAVAILABLE);
	assert_int_equal(tried, 1);
	/* Within the 100 ms backoff: not even asked. */
	assert_int_equal(cache_limit_take(f->c, "t:down", 1, 5, &st, &tried),
	    AFF_UNAVAILABLE);
	assert_int_equal(tried, 0);
}

static void
test_redis_off_is_never_asked(void **state)
{
	struct cache_opts co = { NULL, 0, 200, 300 };
	struct cache_limit_state st;
	cache *c;
	int tried = -1;

	(void)state;
	assert_int_equal(cache_open(&co, &c), AFF_OK);
	assert_int_equal(cache_limit_take(c, "t:off", 1, 5, &st, &tried),
	    AFF_UNAVAILABLE);
	assert_int_equal(tried, 0);
	cache_close(c);
}

static void
test_rates_take_fractions_and_nothing_odd(void **state)
{
	struct auth_limit l;
	static const char *bad[] = { "0", "0.0001", "1e3", "-1", ".", "1..2",
		"inf", "nan", "0x10", "2000000", "1/0", "1/x", " 1", "" };

	(void)state;
	assert_int_equal(auth_limit_parse("0.5/3", &l), 0);
	assert_int_equal(l.mode, AUTH_MODE_ON);
	assert_true(l.rule.rate == 0.5);
	assert_int_equal(l.rule.burst, 3);
	assert_int_equal(auth_limit_parse("0.01", &l), 0);
	assert_int_equal(l.rule.burst, 1); /* 2 * rate, at least 1 */
	assert_int_equal(auth_limit_parse("1.5", &l), 0);
	assert_int_equal(l.rule.burst, 3);
	assert_int_equal(auth_limit_parse("50", &l), 0);
	assert_true(l.rule.rate == 50.0);
	assert_int_equal(l.rule.burst, 100);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (auth_limit_parse(bad[i], &l) != -1)
			fail_msg("'%s' was taken as a rate", bad[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_a_bucket_gives_its_burst_then_says_how_long_to_wait,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_the_bucket_refills_on_redis_time, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_an_idle_bucket_expires_once_it_would_be_full, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_the_script_is_sent_again_after_script_flush, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_redis_down_fails_once_then_waits_out_the_backoff, setup,
		    teardown),
		cmocka_unit_test(test_redis_off_is_never_asked),
		cmocka_unit_test(test_rates_take_fractions_and_nothing_odd),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
