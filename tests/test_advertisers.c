/*
 * test_advertisers.c - AdvertiserService over a real NNG socket, with a
 * real redis-server on a free port: results, errors, the read-through
 * cache and its invalidation, then Redis killed (the server keeps serving
 * from SQLite) and restarted (the cache comes back by itself).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "aff_err.h"
#include "aff_util.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "store.h"
#include "testutil.h"

#define SVC (&affiliate__v1__advertiser_service__descriptor)

struct fixture {
	struct tu_redis redis;
	struct tu_server ts;
};

/* Redis alone (no in-memory cache): what is cached is visible in Redis. */
static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	setenv("AFFILIATE_LOCAL_CACHE", "0", 1);
	assert_int_equal(tu_redis_start(&f->redis), 0);
	assert_int_equal(tu_server_start(&f->ts, f->redis.port), 0);
	*state = f;
	return (0);
}

/* The default: the in-memory cache in front of Redis. */
static int
setup_memory(void **state)
{
	int rv = setup(state);

	tu_server_stop(&((struct fixture *)*state)->ts);
	setenv("AFFILIATE_LOCAL_CACHE", "4096", 1);
	assert_int_equal(tu_server_start(&((struct fixture *)*state)->ts,
	                     ((struct fixture *)*state)->redis.port),
	    0);
	return (rv);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	tu_server_stop(&f->ts);
	tu_redis_stop(&f->redis);
	free(f);
	return (0);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
list(struct fixture *f, int64_t editor, int limit, int64_t after,
    Affiliate__V1__ListAdvertisersResponse **out)
{
	Affiliate__V1__ListAdvertisersRequest req =
	    AFFILIATE__V1__LIST_ADVERTISERS_REQUEST__INIT;

	req.editor_id = editor;
	req.limit = limit;
	req.after = after;
	return (tu_call(&f->ts, SVC, "ListAdvertisers", &req.base,
	    (ProtobufCMessage **)out));
}

static int
get(struct fixture *f, int64_t id, int64_t editor,
    Affiliate__V1__Advertiser **out)
{
	Affiliate__V1__GetAdvertiserRequest req =
	    AFFILIATE__V1__GET_ADVERTISER_REQUEST__INIT;
	Affiliate__V1__Advertiser *tmp = NULL;
	int rv;

	req.id = id;
	req.editor_id = editor;
	rv = tu_call(&f->ts, SVC, "GetAdvertiser", &req.base,
	    (ProtobufCMessage **)(out != NULL ? out : &tmp));
	if (tmp != NULL)
		protobuf_c_message_free_unpacked(&tmp->base, NULL);
	return (rv);
}

/*
 * get() after a catalog change made behind the server's back: want is the
 * answer the change must bring (and want_name the name, when not NULL).
 * On SQLite the next read shows it. On PostgreSQL a server's cached reads
 * follow the catalog when its notification arrives (LISTEN/NOTIFY, see
 * README, PostgreSQL): milliseconds, so the read is tried again until it
 * shows, for up to 2 s; a version that never moves still fails.
 */
static int
get_after_change(struct fixture *f, int64_t id, int64_t editor, int want,
    const char *want_name, Affiliate__V1__Advertiser **out)
{
	int64_t until = aff_mono_ms() + 2000;
	Affiliate__V1__Advertiser *a;
	int rv;

	for (;;) {
		a = NULL;
		rv = get(f, id, editor, &a);
		if ((rv == want && (want_name == NULL ||
		        (a != NULL && strcmp(a->name, want_name) == 0))) ||
		    !tu_backend_pg() || aff_mono_ms() > until)
			break;
		if (a != NULL)
			protobuf_c_message_free_unpacked(&a->base, NULL);
		usleep(10 * 1000);
	}
	if (out != NULL)
		*out = a;
	else if (a != NULL)
		protobuf_c_message_free_unpacked(&a->base, NULL);
	return (rv);
}

static void
sql_exec(struct fixture *f, const char *sql)
{
	assert_int_equal(tu_sql_exec(f->ts.db, sql), 0);
}

/* Everything the service answers, checked against the seed. */
static void
check_all_answers(struct fixture *f)
{
	Affiliate__V1__ListAdvertisersResponse *l = NULL;
	Affiliate__V1__Advertiser *a = NULL;
	size_t k = 0;

	assert_int_equal(list(f, 0, 0, 0, &l), AFF_OK);
	assert_int_equal(l->n_advertisers, STORE_SEED_ADVERTISERS);
	for (size_t i = 0; i < l->n_advertisers; i++)
		assert_int_equal(l->advertisers[i]->id, (int64_t)i + 1);
	assert_int_equal(l->next_after, 0);
	protobuf_c_message_free_unpacked(&l->base, NULL);

	assert_int_equal(list(f, 1, 0, 0, &l), AFF_OK);
	for (int id = 1; id <= STORE_SEED_ADVERTISERS; id++)
		if (store_seed_eligible(1, id)) {
			assert_true(k < l->n_advertisers);
			assert_int_equal(l->advertisers[k++]->id, id);
		}
	assert_int_equal(k, l->n_advertisers);
	protobuf_c_message_free_unpacked(&l->base, NULL);

	assert_int_equal(get(f, 2, 0, &a), AFF_OK);
	assert_int_equal(a->id, 2);
	assert_string_equal(a->name, "Alpine Gear Co");
	assert_string_equal(a->currency, "CHF");
	assert_int_equal(a->commission_rate_bps, 650);
	protobuf_c_message_free_unpacked(&a->base, NULL);

	assert_int_equal(get(f, 2, 1, NULL), AFF_OK);
	assert_int_equal(get(f, 1, 1, NULL), AFF_PERMISSION_DENIED);
	assert_int_equal(get(f, 999, 0, NULL), AFF_NOT_FOUND);
	assert_int_equal(get(f, 2, 99, NULL), AFF_NOT_FOUND);
	assert_int_equal(get(f, 0, 0, NULL), AFF_INVALID_ARGUMENT);
	assert_int_equal(get(f, -4, 0, NULL), AFF_INVALID_ARGUMENT);
	assert_int_equal(get(f, 2, -1, NULL), AFF_INVALID_ARGUMENT);
	assert_int_equal(list(f, 99, 0, 0, &l), AFF_NOT_FOUND);
	assert_int_equal(list(f, -1, 0, 0, &l), AFF_INVALID_ARGUMENT);
	assert_int_equal(list(f, 0, 1001, 0, &l), AFF_INVALID_ARGUMENT);
	assert_int_equal(list(f, 0, -1, 0, &l), AFF_INVALID_ARGUMENT);
	assert_int_equal(list(f, 0, 0, -1, &l), AFF_INVALID_ARGUMENT);
}

static void
test_advertisers_answer_as_the_contract_says(void **state)
{
	check_all_answers(*state);
	/* The second round is served from the cache, with the same answers. */
	check_all_answers(*state);
}

static void
test_errors_carry_a_clear_message(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__GetAdvertiserRequest req =
	    AFFILIATE__V1__GET_ADVERTISER_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct aff_call_result res;

	req.id = 1;
	req.editor_id = 1;
	assert_int_equal(aff_client_call(f->ts.client, SVC, "GetAdvertiser",
	                     &req.base, NULL, &resp, &res),
	    AFF_PERMISSION_DENIED);
	assert_string_equal(
	    res.message, "editor 1 is not eligible for advertiser 1");
	aff_call_result_fini(&res);
	req.id = 999;
	req.editor_id = 0;
	assert_int_equal(aff_client_call(f->ts.client, SVC, "GetAdvertiser",
	                     &req.base, NULL, &resp, &res),
	    AFF_NOT_FOUND);
	assert_string_equal(res.message, "no advertiser with id 999");
	aff_call_result_fini(&res);
}

static void
test_list_pages_with_limit_and_after(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__ListAdvertisersResponse *l = NULL;
	int64_t after = 0, expect = 1;
	int pages = 0;

	do {
		assert_int_equal(list(f, 0, 7, after, &l), AFF_OK);
		for (size_t i = 0; i < l->n_advertisers; i++)
			assert_int_equal(l->advertisers[i]->id, expect++);
		after = l->next_after;
		if (after != 0) {
			assert_int_equal(l->n_advertisers, 7);
			assert_int_equal(after, expect - 1);
		}
		protobuf_c_message_free_unpacked(&l->base, NULL);
		pages++;
	} while (after != 0);
	assert_int_equal(expect - 1, STORE_SEED_ADVERTISERS);
	assert_int_equal(pages, 4);
}

/* Replaces every cached GetAdvertiser reply in Redis with a forged one. */
static int
forge_cached_gets(struct fixture *f, const char *name)
{
	Affiliate__V1__Advertiser adv = AFFILIATE__V1__ADVERTISER__INIT;
	Affiliate__V1__ReplyEnvelope rep = AFFILIATE__V1__REPLY_ENVELOPE__INIT;
	uint8_t pbuf[256], rbuf[512];
	struct timeval tv = { 1, 0 };
	redisContext *c;
	redisReply *keys;
	int forged = 0;

	adv.id = 2;
	adv.name = (char *)name;
	rep.payload.data = pbuf;
	rep.payload.len = affiliate__v1__advertiser__pack(&adv, pbuf);
	size_t rlen = affiliate__v1__reply_envelope__pack(&rep, rbuf);
	c = redisConnectWithTimeout("127.0.0.1", f->redis.port, tv);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	keys = redisCommand(c, "KEYS aff:rc:*GetAdvertiser*");
	assert_non_null(keys);
	for (size_t i = 0; i < keys->elements; i++) {
		/* Entries expire on their own (the default TTL is 300 s). */
		redisReply *r = redisCommand(c, "TTL %b", keys->element[i]->str,
		    keys->element[i]->len);
		assert_int_equal(r->type, REDIS_REPLY_INTEGER);
		assert_true(r->integer > 0 && r->integer <= 300);
		freeReplyObject(r);
		r = redisCommand(c, "SET %b %b",
		    keys->element[i]->str, keys->element[i]->len, rbuf, rlen);
		freeReplyObject(r);
		forged++;
	}
	freeReplyObject(keys);
	redisFree(c);
	return (forged);
}

static void
test_reads_are_cached_in_redis(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__Advertiser *a = NULL;

	assert_int_equal(tu_redis_int(&f->redis, "DBSIZE"), 0);
	assert_int_equal(get(f, 2, 0, NULL), AFF_OK);
	assert_int_equal(tu_redis_int(&f->redis, "DBSIZE"), 1);
	/* Proof that the next read comes from Redis: forge the entry. */
	assert_int_equal(forge_cached_gets(f, "From The Cache"), 1);
	assert_int_equal(get(f, 2, 0, &a), AFF_OK);
	assert_string_equal(a->name, "From The Cache");
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void
test_the_memory_cache_answers_before_redis(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__Advertiser *a = NULL;

	assert_int_equal(get(f, 2, 0, NULL), AFF_OK);
	assert_int_equal(tu_redis_int(&f->redis, "DBSIZE"), 1);
	/* Redis is written through, but the next read does not go there. */
	assert_int_equal(forge_cached_gets(f, "From Redis"), 1);
	assert_int_equal(get(f, 2, 0, &a), AFF_OK);
	assert_string_equal(a->name, "Alpine Gear Co");
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void
test_a_catalog_change_retires_cached_reads(void **state)
{
	struct fixture *f = *state;
	Affiliate__V1__Advertiser *a = NULL;

	assert_int_equal(get(f, 2, 0, NULL), AFF_OK);
	assert_int_equal(get(f, 2, 1, NULL), AFF_OK);
	/* Changed behind the server's back, with the SQL an operator's
	 * sqlite3 or psql shell would send. */
	sql_exec(f, "UPDATE advertisers SET name = 'Alpine Gear AG' WHERE id = 2");
	assert_int_equal(get_after_change(f, 2, 0, AFF_OK, "Alpine Gear AG", &a),
	    AFF_OK);
	assert_string_equal(a->name, "Alpine Gear AG");
	protobuf_c_message_free_unpacked(&a->base, NULL);
	/* A link removed: the editor may no longer see it. */
	sql_exec(f, "DELETE FROM eligibility WHERE editor_id = 1"
	            " AND advertiser_id = 2");
	assert_int_equal(
	    get_after_change(f, 2, 1, AFF_PERMISSION_DENIED, NULL, NULL),
	    AFF_PERMISSION_DENIED);
	sql_exec(f, "INSERT INTO eligibility (editor_id, advertiser_id)"
	            " VALUES (1, 2)");
	assert_int_equal(get_after_change(f, 2, 1, AFF_OK, NULL, NULL), AFF_OK);
}

static int
health_cache(struct fixture *f)
{
	Affiliate__V1__HealthCheckRequest req =
	    AFFILIATE__V1__HEALTH_CHECK_REQUEST__INIT;
	Affiliate__V1__HealthCheckResponse *h = NULL;
	int cache;

	assert_int_equal(tu_call(&f->ts, &affiliate__v1__health_service__descriptor,
	                     "Check", &req.base, (ProtobufCMessage **)&h),
	    AFF_OK);
	assert_int_equal(h->status,
	    AFFILIATE__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	cache = h->cache;
	protobuf_c_message_free_unpacked(&h->base, NULL);
	return (cache);
}

static void
test_redis_down_then_back(void **state)
{
	struct fixture *f = *state;
	int64_t t0;

	check_all_answers(f);
	assert_true(tu_redis_int(&f->redis, "DBSIZE") > 0);
	tu_redis_stop(&f->redis);

	/* Down: every answer is the same, from SQLite, and quick. */
	t0 = aff_mono_ms();
	check_all_answers(f);
	check_all_answers(f);
	assert_true(aff_mono_ms() - t0 < 5000);
	assert_int_equal(health_cache(f),
	    AFFILIATE__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);

	/* Back (empty, on the same port): the server reconnects by itself
	 * within its backoff and fills the cache again. */
	assert_int_equal(tu_redis_start(&f->redis), 0);
	t0 = aff_mono_ms();
	while (tu_redis_int(&f->redis, "DBSIZE") == 0 &&
	    aff_mono_ms() - t0 < 15000) {
		check_all_answers(f);
		sleep_ms(100);
	}
	assert_true(tu_redis_int(&f->redis, "DBSIZE") > 0);
	check_all_answers(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_advertisers_answer_as_the_contract_says, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_errors_carry_a_clear_message, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_list_pages_with_limit_and_after, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reads_are_cached_in_redis, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_catalog_change_retires_cached_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_the_memory_cache_answers_before_redis, setup_memory,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_catalog_change_retires_cached_reads, setup_memory,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_advertisers_answer_as_the_contract_says, setup_memory,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_redis_down_then_back, setup, teardown),
	};

	return (cmocka_run_group_tests_name("advertisers", tests, NULL, NULL));
}
