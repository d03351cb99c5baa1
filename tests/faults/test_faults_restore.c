/*
 * test_faults_restore.c - a database restored from an older file under a
 * running Redis, over real processes (redis-server, affiliate-server,
 * affiliate-bridge): the Redis copy of the orders still holds the orders
 * of the history the database lost, and must never be shown. Orders A are
 * stored, the database file is copied (server stopped), orders B follow,
 * the old file is put back and the server started against the same Redis:
 * GET /orders and RPC ListOrders show exactly A, then A and the new orders
 * C (whose places in the list B had held), never B; the rebuilt Redis
 * copy holds exactly A and C. A lost index key is not read as an empty
 * page, and the copy is rebuilt. On PostgreSQL the backup is a database
 * made with the server's as template and the restore drops the server's
 * and makes it again from the backup (tu_db_backup, tu_db_restore): the
 * same older history under the same name.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "aff_client.h"
#include "aff_err.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "faults.h"

#define N_A 30
#define N_B 30
#define N_C 12
#define N_ALL (N_A + N_B + N_C)

/* Posts orders F-<from> .. F-<to - 1>, each answered 201. */
static void
post_orders(struct fs_stack *s, long from, long to)
{
	struct http_conn c;
	struct http_answer a;
	char body[512], hdr[200];

	fs_conn_init(&c, s->port, 5000);
	for (long i = from; i < to; i++) {
		fs_order_body(i, body, sizeof(body), hdr, sizeof(hdr));
		assert_int_equal(
		    fs_request(&c, "POST", "/webhook/orders", hdr, body, &a), 0);
		assert_int_equal(a.status, 201);
	}
	fs_conn_fini(&c);
}

/* Waits until the Redis copy has caught up with every order. */
static void
wait_synced(const struct fs_stack *s)
{
	assert_int_equal(tu_sql_wait(s->db,
	                     "SELECT count(*) FROM orders WHERE cached_rev < rev",
	                     0, 10000),
	    0);
}

/* Stops the server as an operator does (SIGTERM) and waits for it. */
static void
server_sigterm(struct fs_stack *s)
{
	tu_kill(s->server, SIGTERM);
	s->server = 0;
}

/* Asserts that GET /orders lists each order of [0, N_ALL) exactly
 * want(i) times (0 or 1). */
static void
assert_listed(const struct fs_stack *s, int (*want)(long))
{
	int listed[N_ALL] = { 0 };
	long total = fs_orders_listed(s->port, N_ALL, listed), n = 0;

	for (long i = 0; i < N_ALL; i++) {
		if (listed[i] != want(i))
			fprintf(stderr, "F-%ld listed %d times, want %d\n", i,
			    listed[i], want(i));
		assert_int_equal(listed[i], want(i));
		n += want(i);
	}
	assert_int_equal(total, n);
}

/* The same through RPC ListOrders, straight to the server. */
static void
assert_listed_rpc(const struct fs_stack *s, int (*want)(long))
{
	struct aff_client_opts co = { .url = s->rpc_url, .wait_connected = 1 };
	Affiliate__V1__ListOrdersRequest req =
	    AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	Affiliate__V1__ListOrdersResponse *resp = NULL;
	struct aff_call_result res;
	int listed[N_ALL] = { 0 };
	long n = 0;
	aff_client *c;

	assert_int_equal(aff_client_open(&c, &co), AFF_OK);
	req.limit = 1000;
	assert_int_equal(aff_client_call(c,
	                     &affiliate__v1__order_service__descriptor,
	                     "ListOrders", &req.base, NULL,
	                     (ProtobufCMessage **)&resp, &res),
	    AFF_OK);
	for (size_t i = 0; i < resp->n_orders; i++) {
		long k = atol(resp->orders[i]->order_id + 2);
		assert_true(k >= 0 && k < N_ALL);
		listed[k]++;
	}
	for (long i = 0; i < N_ALL; i++) {
		assert_int_equal(listed[i], want(i));
		n += want(i);
	}
	assert_int_equal((long)resp->n_orders, n);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	aff_call_result_fini(&res);
	aff_client_close(c);
}

static int
want_a(long i)
{
	return (i < N_A);
}

static int
want_a_and_c(long i)
{
	return (i < N_A || i >= N_A + N_B);
}

static void
ns_value(void *arg, const char *value)
{
	snprintf(arg, 200, "%s", value != NULL ? value : "");
}

/* The namespace of the copy the database names now (cache.h). */
static void
copy_ns(const char *db, char *ns, size_t cap)
{
	char v[200] = "";

	assert_int_equal(tu_sql_each(db,
	                     "SELECT (SELECT value FROM meta WHERE key = 'db_id')"
	                     " || ':' || (SELECT value FROM meta"
	                     " WHERE key = 'orders_copy')",
	                     ns_value, v),
	    1);
	snprintf(ns, cap, "aff:%s", v);
}

static redisContext *
redis(const struct fs_stack *s)
{
	struct timeval tv = { 2, 0 };
	redisContext *r = redisConnectWithTimeout("127.0.0.1", s->redis.port, tv);

	assert_non_null(r);
	assert_int_equal(r->err, 0);
	return (r);
}

/* The copy under ns holds exactly the orders want says, in its "all"
 * index and as keys. */
static void
assert_copy(const struct fs_stack *s, const char *ns, int (*want)(long))
{
	redisContext *r = redis(s);
	redisReply *ids = redisCommand(r, "ZRANGE %s:oi:all 0 -1", ns);
	int listed[N_ALL] = { 0 };
	long n = 0;

	assert_non_null(ids);
	assert_int_equal(ids->type, REDIS_REPLY_ARRAY);
	for (size_t i = 0; i < ids->elements; i++) {
		long k = atol(ids->element[i]->str + 2);
		redisReply *e = redisCommand(r, "EXISTS %s:o:%s", ns,
		    ids->element[i]->str);
		assert_true(k >= 0 && k < N_ALL);
		assert_int_equal(e->integer, 1);
		freeReplyObject(e);
		listed[k]++;
	}
	for (long i = 0; i < N_ALL; i++) {
		assert_int_equal(listed[i], want(i));
		n += want(i);
	}
	assert_int_equal((long)ids->elements, n);
	freeReplyObject(ids);
	redisFree(r);
}

static void
test_a_restored_database_never_shows_the_lost_orders(void **state)
{
	struct fs_stack s = { 0 };
	char backup[700], wal[700], ns[220], ns2[220];
	struct tu_http_response r;

	(void)state;
	/* The Redis copy of the orders is what is under test (off by
	 * default); the spawned server reads it from its environment. */
	setenv("AFFILIATE_ORDERS_COPY", "on", 1);
	assert_int_equal(fs_stack_start(&s, 1, 0), 0);
	post_orders(&s, 0, N_A);
	wait_synced(&s);

	/* The backup, taken with the server stopped. */
	server_sigterm(&s);
	snprintf(wal, sizeof(wal), "%s-wal", s.db);
	if (!tu_backend_pg()) /* the file alone is the database */
		assert_int_equal(access(wal, F_OK), -1); /* checkpointed at close */
	/* SQLite: a copy of the file; PostgreSQL: a database from it as
	 * template (tu_db_backup). */
	assert_int_equal(tu_db_backup(s.db, backup, sizeof(backup)), 0);
	assert_int_equal(fs_server_start(&s), 0);
	assert_int_equal(fs_wait_healthy(&s, 20000), 0);

	/* History B, copied to Redis, then lost with the restore. */
	post_orders(&s, N_A, N_A + N_B);
	wait_synced(&s);
	server_sigterm(&s);
	assert_int_equal(tu_db_restore(s.db, backup), 0);
	assert_int_equal(fs_server_start(&s), 0);
	assert_int_equal(fs_wait_healthy(&s, 20000), 0);
	assert_listed(&s, want_a);
	assert_listed_rpc(&s, want_a);

	/* New orders C take the places B had in the list, and the copy's
	 * generation counts up past B's: neither may bring B back. */
	post_orders(&s, N_A + N_B, N_ALL);
	wait_synced(&s);
	assert_listed(&s, want_a_and_c);
	assert_listed_rpc(&s, want_a_and_c);
	copy_ns(s.db, ns, sizeof(ns));
	assert_copy(&s, ns, want_a_and_c);
	/* That copy is the one readers trust now: its generation is the
	 * one the database recorded. */
	{
		redisContext *rc = redis(&s);
		redisReply *g = redisCommand(rc, "HGET %s:o:meta gen", ns);
		assert_int_equal(g->type, REDIS_REPLY_STRING);
		assert_int_equal(atoll(g->str),
		    tu_sql_int(s.db, "SELECT CAST(value AS INTEGER) FROM meta"
		                     " WHERE key = 'orders_gen'"));
		freeReplyObject(g);
		redisFree(rc);
	}

	/* An index key lost (evicted, deleted): editor 1's orders are not an
	 * empty page, and the copy is rebuilt under a new name. */
	{
		redisContext *rc = redis(&s);
		redisReply *d = redisCommand(rc, "DEL %s:oi:e:1", ns);
		assert_int_equal(d->integer, 1);
		freeReplyObject(d);
		redisFree(rc);
	}
	assert_int_equal(tu_http(s.port, "GET", "/orders?editor_id=1&limit=1000",
	                     NULL, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	/* Editor 1 has orders F-0..F-23 of A (and none of C's 60..71). */
	for (long i = 0; i < 24; i++) {
		char want[32];
		snprintf(want, sizeof(want), "\"order_id\":\"F-%ld\"", i);
		assert_non_null(strstr(r.body, want));
	}
	tu_http_response_fini(&r);
	for (int i = 0; i < 200; i++) {
		copy_ns(s.db, ns2, sizeof(ns2));
		if (strcmp(ns, ns2) != 0 &&
		    tu_sql_int(s.db, "SELECT count(*) FROM orders"
		                     " WHERE cached_rev < rev") == 0)
			break;
		tu_sleep_ms(50);
	}
	assert_string_not_equal(ns, ns2);
	wait_synced(&s);
	assert_copy(&s, ns2, want_a_and_c);
	assert_listed(&s, want_a_and_c);
	assert_null(fs_stack_dead(&s));
	fs_stack_stop(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_restored_database_never_shows_the_lost_orders),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
