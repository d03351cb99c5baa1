/*
 * test_orders.c - partner webhooks end to end over real HTTP: a bridge and
 * a server in-process on real sockets, a real redis-server and SQLite file.
 * The lifecycle, conflicts, unknown ids with nothing stored, one order_id
 * posted by 20 clients at once (one row), 10,000 distinct orders (10,000
 * rows, 10,000 listed), and Redis stopped mid-stream (nothing lost).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "aff_webhook.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "bridge.h"
#include "testutil.h"

#define SECRET "test-secret"

/* The whole stack (see testutil.h); F is the one running. */
static struct tu_stack *F;

static int
setup_with(void **state, int copy)
{
	struct tu_stack *f;

	setenv("AFFILIATE_WEBHOOK_SECRET", SECRET ",older-secret", 1);
	if (copy)
		setenv("AFFILIATE_ORDERS_COPY", "on", 1);
	else
		unsetenv("AFFILIATE_ORDERS_COPY");
	assert_non_null(f = tu_stack_new(32, 5000));
	*state = F = f;
	return (0);
}

/* The server as it starts by default: lists from the database. */
static int
setup(void **state)
{
	return (setup_with(state, 0));
}

/* With --orders-copy on: lists from the Redis copy when it is whole. */
static int
setup_copy(void **state)
{
	return (setup_with(state, 1));
}

static int
teardown(void **state)
{
	tu_stack_free(*state);
	return (0);
}

/* POSTs body signed with secret (timestamped when ts); returns the status
 * and leaves the response in r. */
static int
post_signed(const char *secret, int ts, const char *body,
    struct tu_http_response *r)
{
	char sig[128], hdr[200];

	aff_webhook_sign(secret, (const uint8_t *)body, strlen(body),
	    ts ? aff_now_ms() / 1000 : 0, sig);
	snprintf(hdr, sizeof(hdr), "X-Partner-Signature: %s\r\n", sig);
	assert_int_equal(tu_http(F->port, "POST", "/webhook/orders", hdr, body, r), 0);
	return (r->status);
}

static int
post(const char *body, const char *want_in_body)
{
	struct tu_http_response r;
	int st = post_signed(SECRET, 0, body, &r);

	if (want_in_body != NULL && strstr(r.body, want_in_body) == NULL) {
		fprintf(stderr, "'%s' not in %s\n", want_in_body, r.body);
		fail();
	}
	tu_http_response_fini(&r);
	return (st);
}

static long long
rows(const char *sql)
{
	return (tu_sql_int(F->db, sql));
}

static void
test_an_order_moves_forward_only_and_is_stored_once(void **state)
{
	static const char o1[] = "{\"order_id\":\"L-1\",\"advertiser_id\":2,"
	                         "\"user_id\":1,\"amount\":49.9,\"commission\":4.99}";
	static const char ok[] = "{\"order_id\":\"L-1\",\"advertiser_id\":2,"
	                         "\"user_id\":1,\"amount\":49.9,\"commission\":4.99,"
	                         "\"status\":\"approved\"}";
	static const char back[] = "{\"order_id\":\"L-1\",\"advertiser_id\":2,"
	                           "\"user_id\":1,\"amount\":49.9,"
	                           "\"commission\":4.99,\"status\":\"pending\"}";
	static const char other[] = "{\"order_id\":\"L-1\",\"advertiser_id\":2,"
	                            "\"user_id\":1,\"amount\":50,\"commission\":4.99}";
	struct tu_http_response r;

	(void)state;
	assert_int_equal(post_signed(SECRET, 1, o1, &r), 201);
	assert_non_null(strstr(r.body,
	    "{\"order_id\":\"L-1\",\"advertiser_id\":2,\"editor_id\":1,"
	    "\"amount\":49.90,\"commission\":4.99,\"currency\":\"CHF\","
	    "\"status\":\"pending\","));
	tu_http_response_fini(&r);
	/* The older secret still signs (rotation). */
	assert_int_equal(post_signed("older-secret", 0, o1, &r), 200);
	tu_http_response_fini(&r);
	assert_int_equal(post(ok, "\"status\":\"approved\""), 200);
	assert_int_equal(post(ok, "\"status\":\"approved\""), 200);
	assert_int_equal(post(back,
	                     "order L-1 is approved and cannot become pending"),
	    400);
	assert_int_equal(post(other, "\"code\":\"ALREADY_EXISTS\""), 409);
	assert_int_equal(rows("SELECT count(*) FROM orders"), 1);
	assert_int_equal(rows("SELECT amount_cents FROM orders"), 4990);
	assert_int_equal(rows("SELECT count(*) FROM order_events"), 2);
	assert_int_equal(rows("SELECT count(*) FROM order_events WHERE status ="
	                      " 'approved'"),
	    1);
}

static void
test_bad_webhooks_store_nothing(void **state)
{
	struct tu_http_response r;

	(void)state;
	assert_int_equal(post("{\"order_id\":\"B-1\",\"advertiser_id\":999,"
	                      "\"user_id\":1,\"amount\":1,\"commission\":0}",
	                     "no advertiser with id 999"),
	    404);
	assert_int_equal(post("{\"order_id\":\"B-2\",\"advertiser_id\":2,"
	                      "\"user_id\":999,\"amount\":1,\"commission\":0}",
	                     "no editor with id 999"),
	    404);
	assert_int_equal(post("{\"order_id\":\"B-3\",\"advertiser_id\":2,"
	                      "\"user_id\":1,\"amount\":1.001,\"commission\":0}",
	                     "amount must be a number of at least 0 with at most "
	                     "two decimals"),
	    400);
	assert_int_equal(post_signed("wrong", 0,
	                     "{\"order_id\":\"B-4\",\"advertiser_id\":2,"
	                     "\"user_id\":1,\"amount\":1,\"commission\":0}",
	                     &r),
	    401);
	assert_non_null(strstr(r.body, "the signature does not match the body"));
	tu_http_response_fini(&r);
	assert_int_equal(rows("SELECT count(*) FROM orders"), 0);
	assert_int_equal(rows("SELECT count(*) FROM order_events"), 0);
}

struct same_order {
	int status;
};

static void *
post_same(void *arg)
{
	struct same_order *so = arg;

	so->status = post("{\"order_id\":\"SAME-1\",\"advertiser_id\":3,"
	                  "\"editor_id\":2,\"amount\":10,\"commission\":1}",
	    NULL);
	return (NULL);
}

static void
test_one_order_id_posted_by_20_clients_at_once_is_one_row(void **state)
{
	struct same_order so[20];
	pthread_t t[20];
	int created = 0, dup = 0;

	(void)state;
	for (int i = 0; i < 20; i++)
		assert_int_equal(pthread_create(&t[i], NULL, post_same, &so[i]), 0);
	for (int i = 0; i < 20; i++) {
		pthread_join(t[i], NULL);
		created += so[i].status == 201;
		dup += so[i].status == 200;
	}
	assert_int_equal(created, 1);
	assert_int_equal(dup, 19);
	assert_int_equal(rows("SELECT count(*) FROM orders"), 1);
	assert_int_equal(rows("SELECT count(*) FROM order_events"), 1);
}

#define N_ORDERS 10000
#define N_POSTERS 16

struct poster {
	int from, to, created;
	int stop_redis_at; /* -1: never */
};

static void *
poster_main(void *arg)
{
	struct poster *p = arg;
	char body[256];

	for (int i = p->from; i < p->to; i++) {
		if (i == p->stop_redis_at)
			tu_redis_stop(&F->redis);
		snprintf(body, sizeof(body),
		    "{\"order_id\":\"ORD-%06d\",\"advertiser_id\":%d,"
		    "\"user_id\":%d,\"amount\":%d.%02d,\"commission\":%d.%02d}",
		    i, 1 + i % 24, 1 + i % 6, i % 500, i % 100, i % 50, i % 100);
		/* Retry what got no 2xx, as a partner does. */
		for (int attempt = 0; attempt < 5; attempt++) {
			int st = post(body, NULL);
			if (st == 201) {
				p->created++;
				break;
			}
			if (st == 200)
				break;
		}
	}
	return (NULL);
}

/* Counts every order through GET /orders, page by page. */
static long long
count_listed(void)
{
	char target[128] = "/orders?limit=1000", link[256];
	long long n = 0;

	for (int pages = 0; pages < 100; pages++) {
		struct tu_http_response r;
		json_t *j;
		assert_int_equal(tu_http(F->port, "GET", target, NULL, NULL, &r), 0);
		assert_int_equal(r.status, 200);
		assert_non_null(j = json_loads(r.body, 0, NULL));
		n += (long long)json_array_size(j);
		json_decref(j);
		if (tu_http_header(&r, "Link", link, sizeof(link)) == NULL) {
			tu_http_response_fini(&r);
			break;
		}
		snprintf(target, sizeof(target), "%.*s",
		    (int)(strchr(link, '>') - link - 1), link + 1);
		tu_http_response_fini(&r);
	}
	return (n);
}

static void
post_many(int stop_redis_at)
{
	struct poster p[N_POSTERS];
	pthread_t t[N_POSTERS];
	int created = 0;

	for (int i = 0; i < N_POSTERS; i++) {
		p[i] = (struct poster){ N_ORDERS * i / N_POSTERS,
			N_ORDERS * (i + 1) / N_POSTERS, 0, -1 };
		if (i == 0)
			p[i].stop_redis_at = stop_redis_at;
		assert_int_equal(pthread_create(&t[i], NULL, poster_main, &p[i]), 0);
	}
	for (int i = 0; i < N_POSTERS; i++) {
		pthread_join(t[i], NULL);
		created += p[i].created;
	}
	assert_int_equal(created, N_ORDERS);
	assert_int_equal(rows("SELECT count(*) FROM orders"), N_ORDERS);
	assert_int_equal(rows("SELECT count(DISTINCT order_id) FROM orders"),
	    N_ORDERS);
	/* To the cent: the sums of what was sent. */
	{
		long long amount = 0, commission = 0;
		for (int i = 0; i < N_ORDERS; i++) {
			amount += (i % 500) * 100 + i % 100;
			commission += (i % 50) * 100 + i % 100;
		}
		assert_int_equal(rows("SELECT sum(amount_cents) FROM orders"), amount);
		assert_int_equal(
		    rows("SELECT sum(commission_cents) FROM orders"), commission);
	}
	assert_int_equal(count_listed(), N_ORDERS);
}

static void
test_10000_distinct_orders_are_10000_rows_and_10000_listed(void **state)
{
	(void)state;
	post_many(-1);
}

static void
test_redis_stopped_mid_stream_loses_nothing(void **state)
{
	(void)state;
	post_many(N_ORDERS / N_POSTERS / 2);
	/* And back: the listing is still complete. */
	assert_int_equal(tu_redis_start(&F->redis), 0);
	assert_int_equal(count_listed(), N_ORDERS);
}

/* How many index keys of a Redis copy of the orders Redis holds. */
static long
copy_index_keys(void)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", F->redis.port,
	    tv);
	redisReply *r;
	long n;

	assert_true(c != NULL && c->err == 0);
	r = redisCommand(c, "KEYS aff:*:oi:*");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY);
	n = (long)r->elements;
	freeReplyObject(r);
	redisFree(c);
	return (n);
}

static void
test_orders_filter_and_page(void **state)
{
	struct tu_http_response r;
	long keys = 0;
	int copy;
	json_t *j;

	(void)state;
	for (int i = 0; i < 30; i++) {
		char body[256];
		snprintf(body, sizeof(body),
		    "{\"order_id\":\"F-%d\",\"advertiser_id\":%d,\"editor_id\":%d,"
		    "\"amount\":1,\"commission\":0.5%s}",
		    i, i % 2 ? 2 : 3, i % 3 ? 1 : 2,
		    i % 5 == 0 ? ",\"status\":\"approved\"" : "");
		assert_int_equal(post(body, NULL), 201);
	}
	assert_int_equal(tu_http(F->port, "GET",
	                     "/orders?advertiser_id=2&editor_id=1&limit=100", NULL,
	                     NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	j = json_loads(r.body, 0, NULL);
	/* i odd and i % 3 != 0: 1,5,7,11,13,17,19,23,25,29 */
	assert_int_equal(json_array_size(j), 10);
	json_decref(j);
	tu_http_response_fini(&r);
	assert_int_equal(tu_http(F->port, "GET", "/orders?status=approved", NULL,
	                     NULL, &r),
	    0);
	j = json_loads(r.body, 0, NULL);
	assert_int_equal(json_array_size(j), 6);
	json_decref(j);
	tu_http_response_fini(&r);
	assert_int_equal(tu_http(F->port, "GET", "/orders?after=oops", NULL,
	                     NULL, &r),
	    0);
	assert_int_equal(r.status, 400);
	/* By default (--orders-copy off) the orders are listed from the
	 * database and no copy of them is kept in Redis; with it on, the
	 * copy has index keys within a few of its 100 ms ticks. */
	copy = getenv("AFFILIATE_ORDERS_COPY") != NULL;
	for (int i = 0; i < 30; i++) {
		tu_sleep_ms(100);
		if ((keys = copy_index_keys()) > 0)
			break;
	}
	assert_int_equal(keys > 0, copy);
	tu_http_response_fini(&r);
}

/* GET /orders as one string (one page of up to 1000). */
static char *
list_body(const char *target)
{
	struct tu_http_response r;
	char *b;

	assert_int_equal(tu_http(F->port, "GET", target, NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	b = strdup(r.body);
	tu_http_response_fini(&r);
	return (b);
}

static void
test_the_list_comes_from_the_redis_copy_and_survives_its_loss(void **state)
{
	char *b;

	(void)state;
	for (int i = 0; i < 5; i++) {
		char body[200];
		snprintf(body, sizeof(body),
		    "{\"order_id\":\"R-%d\",\"advertiser_id\":2,\"editor_id\":1,"
		    "\"amount\":%d,\"commission\":1}",
		    i, 10 + i);
		assert_int_equal(post(body, NULL), 201);
	}
	/* The copy catches up right after the commit. */
	assert_int_equal(tu_sql_wait(F->db,
	                     "SELECT count(*) FROM orders WHERE cached_rev < rev",
	                     0, 5000),
	    0);
	assert_true(tu_redis_int(&F->redis, "DBSIZE") >= 5);
	/* Proof the list is read from Redis: change the copy of R-4 there. */
	{
		struct timeval tv = { 1, 0 };
		redisContext *c = redisConnectWithTimeout("127.0.0.1",
		    F->redis.port, tv);
		redisReply *keys, *r;
		Affiliate__V1__Order o = AFFILIATE__V1__ORDER__INIT;
		uint8_t buf[256];
		assert_non_null(c);
		keys = redisCommand(c, "KEYS aff:*:o:R-4");
		assert_int_equal(keys->elements, 1);
		o.order_id = "R-4";
		o.advertiser_id = 2;
		o.editor_id = 1;
		o.amount_cents = 999999;
		o.currency = "CHF";
		o.status = "pending";
		r = redisCommand(c, "SET %s %b", keys->element[0]->str, buf,
		    affiliate__v1__order__pack(&o, buf));
		freeReplyObject(r);
		freeReplyObject(keys);
		redisFree(c);
	}
	b = list_body("/orders?editor_id=1");
	assert_non_null(strstr(b, "\"order_id\":\"R-4\",\"advertiser_id\":2,"
	                          "\"editor_id\":1,\"amount\":9999.99"));
	free(b);
	/* Redis "back from an older snapshot": its generation goes back. The
	 * copy is no longer trusted (SQLite answers, with the true amount)
	 * and is rebuilt. */
	{
		struct timeval tv = { 1, 0 };
		redisContext *c = redisConnectWithTimeout("127.0.0.1",
		    F->redis.port, tv);
		redisReply *keys = redisCommand(c, "KEYS aff:*:o:meta"), *r;
		assert_int_equal(keys->elements, 1);
		r = redisCommand(c, "HINCRBY %s gen -1", keys->element[0]->str);
		freeReplyObject(r);
		freeReplyObject(keys);
		redisFree(c);
	}
	b = list_body("/orders?editor_id=1");
	assert_non_null(strstr(b, "\"order_id\":\"R-4\",\"advertiser_id\":2,"
	                          "\"editor_id\":1,\"amount\":14.00"));
	free(b);
	/* Redis lost: the list comes from SQLite, whole. */
	tu_redis_stop(&F->redis);
	b = list_body("/orders?editor_id=1&limit=3");
	assert_non_null(strstr(b, "\"order_id\":\"R-0\""));
	assert_non_null(strstr(b, "\"order_id\":\"R-2\""));
	assert_null(strstr(b, "\"order_id\":\"R-3\""));
	free(b);
	/* Back empty: the copy is rebuilt by itself. */
	assert_int_equal(tu_redis_start(&F->redis), 0);
	for (int i = 0; i < 100 && tu_redis_int(&F->redis, "DBSIZE") < 5; i++)
		tu_sleep_ms(50);
	assert_true(tu_redis_int(&F->redis, "DBSIZE") >= 5);
	assert_int_equal(tu_sql_wait(F->db,
	                     "SELECT count(*) FROM orders WHERE cached_rev < rev",
	                     0, 5000),
	    0);
	b = list_body("/orders");
	/* The rebuilt copy has the true amount again. */
	assert_non_null(strstr(b, "\"order_id\":\"R-4\",\"advertiser_id\":2,"
	                          "\"editor_id\":1,\"amount\":14.00"));
	for (int i = 0; i < 5; i++) {
		char want[32];
		snprintf(want, sizeof(want), "\"order_id\":\"R-%d\"", i);
		assert_non_null(strstr(b, want));
	}
	free(b);
}

/* The members of one of the copy's keys (ZRANGE, or HKEYS for the meta
 * hash), joined by spaces. */
static void
copy_members(const char *cmd_fmt, const char *key, char *out, size_t cap)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", F->redis.port,
	    tv);
	redisReply *keys, *r;
	size_t len = 0;

	assert_non_null(c);
	keys = redisCommand(c, "KEYS aff:*:o:meta");
	assert_int_equal(keys->elements, 1);
	/* The namespace: the meta key without ":o:meta". */
	{
		char ns[128];
		snprintf(ns, sizeof(ns), "%.*s", (int)(strlen(keys->element[0]->str) -
		    strlen(":o:meta")), keys->element[0]->str);
		r = redisCommand(c, cmd_fmt, ns, key);
	}
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	out[0] = '\0';
	for (size_t i = 0; i < r->elements; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
		    i ? " " : "", r->element[i]->str);
	freeReplyObject(r);
	freeReplyObject(keys);
	redisFree(c);
}

/* Order S-i (editor 1 or 2, advertiser 2 or 3), with status when given;
 * the HTTP status. */
static int
post_s(int i, const char *status)
{
	char body[200], st[40] = "";

	if (status != NULL)
		snprintf(st, sizeof(st), ",\"status\":\"%s\"", status);
	snprintf(body, sizeof(body),
	    "{\"order_id\":\"S-%d\",\"advertiser_id\":%d,\"editor_id\":%d,"
	    "\"amount\":10,\"commission\":1%s}",
	    i, i % 2 ? 2 : 3, i < 3 ? 1 : 2, st);
	return (post(body, NULL));
}

/* Waits until the Redis copy has every order as stored. */
static void
copy_caught_up(void)
{
	assert_int_equal(tu_sql_wait(F->db,
	                     "SELECT count(*) FROM orders WHERE cached_rev < rev",
	                     0, 5000),
	    0);
}

/* The copy's writes go a command per key for a whole batch (cache.c): an
 * order in every index it belongs to, in seq order, moved between the
 * status sets when its status changes, and every index named in meta. */
static void
test_the_copy_keeps_each_order_in_its_indexes_across_status_changes(
    void **state)
{
	char got[512], *b;

	(void)state;
	for (int i = 0; i < 6; i++)
		assert_int_equal(post_s(i, NULL), 201);
	copy_caught_up();
	for (int i = 0; i < 6; i += 2)
		assert_int_equal(post_s(i, "approved"), 200);
	copy_caught_up();
	{
		/* Each index of the copy and the orders it holds, by seq. */
		static const char *const sets[][2] = {
			{ "all", "S-0 S-1 S-2 S-3 S-4 S-5" },
			{ "e:1", "S-0 S-1 S-2" }, { "e:2", "S-3 S-4 S-5" },
			{ "a:2", "S-1 S-3 S-5" }, { "a:3", "S-0 S-2 S-4" },
			{ "s:pending", "S-1 S-3 S-5" },
			{ "s:approved", "S-0 S-2 S-4" },
		};
		for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
			copy_members("ZRANGE %s:oi:%s 0 -1", sets[i][0], got,
			    sizeof(got));
			if (strcmp(got, sets[i][1]) != 0)
				fail_msg("oi:%s holds \"%s\", not \"%s\"",
				    sets[i][0], got, sets[i][1]);
		}
	}
	copy_members("HKEYS %s:o:%s", "meta", got, sizeof(got));
	{
		static const char *const want[] = { "i:all", "i:e:1", "i:e:2",
			"i:a:2", "i:a:3", "i:s:pending", "i:s:approved", "gen" };
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			char w[40];
			snprintf(w, sizeof(w), " %s ", want[i]);
			char padded[520];
			snprintf(padded, sizeof(padded), " %s ", got);
			if (strstr(padded, w) == NULL)
				fail_msg("meta lacks %s: %s", want[i], got);
		}
	}
	/* The list reads those sets. */
	b = list_body("/orders?status=pending");
	assert_null(strstr(b, "\"order_id\":\"S-0\""));
	assert_non_null(strstr(b, "\"order_id\":\"S-1\""));
	assert_non_null(strstr(b, "\"order_id\":\"S-5\""));
	free(b);
	b = list_body("/orders?status=approved&editor_id=2");
	assert_null(strstr(b, "\"order_id\":\"S-3\""));
	assert_non_null(strstr(b, "\"order_id\":\"S-4\""));
	assert_null(strstr(b, "\"order_id\":\"S-2\""));
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_an_order_moves_forward_only_and_is_stored_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_webhooks_store_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_one_order_id_posted_by_20_clients_at_once_is_one_row,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_orders_filter_and_page, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_orders_filter_and_page,
		    setup_copy, teardown),
		cmocka_unit_test_setup_teardown(
		    test_the_list_comes_from_the_redis_copy_and_survives_its_loss,
		    setup_copy, teardown),
		cmocka_unit_test_setup_teardown(
		    test_the_copy_keeps_each_order_in_its_indexes_across_status_changes,
		    setup_copy, teardown),
		cmocka_unit_test_setup_teardown(
		    test_10000_distinct_orders_are_10000_rows_and_10000_listed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_redis_stopped_mid_stream_loses_nothing, setup_copy,
		    teardown),
	};

	return (cmocka_run_group_tests_name("orders", tests, NULL, NULL));
}
