/*
 * test_readcache.c - the bridge's read cache (bridge/readcache.h, issue 15)
 * through the real stack: a real server, Redis and bridge on real sockets,
 * catalog changes made in the database as another server or an operator
 * would. And the module alone for its bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aff_arena.h"
#include "aff_err.h"
#include "aff_util.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "auth.h"
#include "bridge.h"
#include "bridge_priv.h"
#include "readcache.h"
#include "server.h"
#include "store.h"
#include "testutil.h"

static struct tu_stack *F;

static void
stats(struct readcache_stats *st)
{
	readcache_stats(F->b->rcache, st);
}

/* GET target with extra header lines; the status, the body into r. */
static int
get(const char *target, const char *headers, struct tu_http_response *r)
{
	assert_int_equal(tu_http(F->port, "GET", target, headers, NULL, r), 0);
	return (r->status);
}

/* The name advertiser 2 has in the bridge's answer, into buf. */
static const char *
name_of_2(char *buf, size_t cap)
{
	struct tu_http_response r;
	const char *p, *q;

	assert_int_equal(get("/advertisers/2?editor_id=1", NULL, &r), 200);
	assert_non_null(p = strstr(r.body, "\"name\":\""));
	p += 8;
	assert_non_null(q = strchr(p, '"'));
	snprintf(buf, cap, "%.*s", (int)(q - p), p);
	tu_http_response_fini(&r);
	return (buf);
}

/* Renames advertiser 2 in the database, and waits until the server
 * answers the new name: on PostgreSQL it learns of a change made by
 * another session from a notification, a moment after the commit. */
static void
rename_2(const char *name)
{
	Affiliate__V1__GetAdvertiserRequest rq =
	    AFFILIATE__V1__GET_ADVERTISER_REQUEST__INIT;
	char sql[200];
	int seen = 0;

	snprintf(sql, sizeof(sql),
	    "UPDATE advertisers SET name = '%s' WHERE id = 2", name);
	assert_int_equal(tu_sql_exec(F->db, sql), 0);
	rq.id = 2;
	for (int i = 0; i < 200 && !seen; i++) {
		Affiliate__V1__Advertiser *a = NULL;

		assert_int_equal(tu_call(&F->ts,
		                     &affiliate__v1__advertiser_service__descriptor,
		                     "GetAdvertiser", &rq.base,
		                     (ProtobufCMessage **)&a),
		    AFF_OK);
		seen = strcmp(a->name, name) == 0;
		protobuf_c_message_free_unpacked(&a->base, NULL);
		if (!seen)
			tu_sleep_ms(5);
	}
	assert_true(seen);
}

/* The bridge on the same port with these read cache settings, its cache
 * empty: restarted only when they differ (a stop takes civetweb 2 s). */
static void
bridge_restart(int on, int poll_ms, int max_age_ms)
{
	if (F->bcfg.read_cache == on && F->bcfg.read_cache_poll_ms == poll_ms &&
	    F->bcfg.read_cache_max_age_ms == max_age_ms) {
		readcache_invalidate(F->b->rcache);
		return;
	}
	bridge_stop(F->b);
	F->b = NULL;
	F->bcfg.read_cache = on;
	F->bcfg.read_cache_poll_ms = poll_ms;
	F->bcfg.read_cache_max_age_ms = max_age_ms;
	assert_int_equal(bridge_start(&F->bcfg, &F->b), AFF_OK);
}

static int
setup(void **state)
{
	unsetenv("AFFILIATE_RATE_LIMIT_ANON");
	F = tu_stack_new(8, 5000);
	*state = F;
	return (F != NULL ? 0 : -1);
}

static int
teardown(void **state)
{
	(void)state;
	tu_stack_free(F);
	F = NULL;
	return (0);
}

static void
test_a_hot_public_read_is_answered_by_the_bridge(void **state)
{
	struct tu_http_response a, b, c;
	struct readcache_stats s0, s1;
	char hdr[160];

	(void)state;
	/* A bound no loaded host reaches between two requests. */
	bridge_restart(1, 600000, 600000);
	stats(&s0);
	assert_int_equal(get("/advertisers?editor_id=1&limit=5",
	                     "X-Request-Id: first\r\n", &a),
	    200);
	assert_int_equal(get("/advertisers?limit=5&editor_id=1",
	                     "X-Request-Id: second\r\n", &b),
	    200);
	assert_int_equal(get("/advertisers?editor_id=1&limit=5", NULL, &c), 200);
	stats(&s1);
	/* One miss kept, then two hits: parameter order is one entry. */
	assert_int_equal(s1.stores - s0.stores, 1);
	assert_int_equal(s1.hits - s0.hits, 2);
	/* The same bytes, with each request's own id. */
	assert_string_equal(a.body, b.body);
	assert_string_equal(a.body, c.body);
	assert_string_equal(tu_http_header(&a, "X-Request-Id", hdr, sizeof(hdr)),
	    "first");
	assert_string_equal(tu_http_header(&b, "X-Request-Id", hdr, sizeof(hdr)),
	    "second");
	/* The kept Link is the page's. */
	assert_non_null(tu_http_header(&b, "Link", hdr, sizeof(hdr)));
	assert_non_null(strstr(hdr, "after="));
	tu_http_response_fini(&a);
	tu_http_response_fini(&b);
	tu_http_response_fini(&c);
}

static void
test_a_keyed_or_forwarded_caller_never_gets_a_kept_answer(void **state)
{
	struct tu_http_response r;
	struct readcache_stats s0, s1;
	char tok[AUTH_TOKEN_MAX], hdr[256];
	Affiliate__V1__ApiKey *k;
	aff_arena ar;
	store *s;

	(void)state;
	bridge_restart(1, 600000, 600000);
	/* Kept: editor 1 may join advertiser 2, the anonymous answer is 200. */
	assert_int_equal(get("/advertisers/2?editor_id=1", NULL, &r), 200);
	tu_http_response_fini(&r);
	assert_int_equal(get("/advertisers/2?editor_id=1", NULL, &r), 200);
	tu_http_response_fini(&r);
	stats(&s0);
	assert_true(s0.hits >= 1);

	/* A key for editor 2 asking as editor 1: the server says 403; a kept
	 * answer would have said 200. */
	aff_arena_init(&ar);
	assert_int_equal(store_open(F->db, &s), AFF_OK);
	assert_int_equal(auth_key_create(s, 2, &ar, &k, tok), AFF_OK);
	store_close(s);
	aff_arena_fini(&ar);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
	assert_int_equal(get("/advertisers/2?editor_id=1", hdr, &r), 403);
	tu_http_response_fini(&r);
	/* A bad key: 401 from the server. */
	assert_int_equal(get("/advertisers/2?editor_id=1",
	                     "Authorization: Bearer aff_1_nope\r\n", &r),
	    401);
	tu_http_response_fini(&r);
	/* Forwarded, cookies: to the server, and nothing kept from them. */
	/* (A request that came through a proxy is exposed: the server then
	 * requires a key.) */
	assert_int_equal(get("/advertisers/2?editor_id=1",
	                     "X-Forwarded-For: 198.51.100.7\r\n", &r),
	    401);
	tu_http_response_fini(&r);
	assert_int_equal(get("/advertisers/2?editor_id=1",
	                     "Cookie: session=1\r\n", &r),
	    200);
	tu_http_response_fini(&r);
	assert_int_equal(get("/advertisers/2?editor_id=1",
	                     "Forwarded: for=198.51.100.7\r\n", &r),
	    401);
	tu_http_response_fini(&r);
	stats(&s1);
	assert_int_equal(s1.hits, s0.hits);
	assert_int_equal(s1.misses, s0.misses);
	assert_int_equal(s1.stores, s0.stores);
}

/* Restarts the server in place (same address and database) with a
 * per-address limit ("" for none). */
static void
server_restart(const char *anon_limit)
{
	server_stop(F->ts.srv);
	F->ts.srv = NULL;
	snprintf(F->ts.cfg.rate_limit_anon, sizeof(F->ts.cfg.rate_limit_anon),
	    "%s", anon_limit);
	assert_int_equal(server_start(&F->ts.cfg, &F->ts.srv), AFF_OK);
}

/* A server that limits anonymous calls marks nothing reusable: what was
 * kept goes, every read reaches it and carries its RateLimit headers. */
static void
test_a_limited_caller_never_gets_a_kept_answer(void **state)
{
	struct tu_http_response r;
	struct readcache_stats s0, s1;
	char hdr[32], was[32];

	(void)state;
	bridge_restart(1, 0, 0);
	snprintf(was, sizeof(was), "%s", F->ts.cfg.rate_limit_anon);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(get("/advertisers/2?editor_id=1", NULL, &r), 200);
		assert_null(tu_http_header(&r, "RateLimit-Remaining", hdr,
		    sizeof(hdr)));
		tu_http_response_fini(&r);
	}
	stats(&s0);
	assert_int_equal(s0.entries, 1);
	server_restart("1000/1000");
	/* Within its bound the bridge may still serve what it kept. */
	tu_sleep_ms(READCACHE_MAX_AGE_MS + 100);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get("/advertisers/2?editor_id=1", NULL, &r), 200);
		assert_non_null(tu_http_header(&r, "RateLimit-Remaining", hdr,
		    sizeof(hdr)));
		assert_true(atoi(hdr) < 1000);
		tu_http_response_fini(&r);
	}
	stats(&s1);
	assert_int_equal(s1.entries, 0);
	assert_int_equal(s1.hits, s0.hits);
	assert_int_equal(s1.stores, s0.stores);
	server_restart(was);
}

/* A write through this bridge drops what is kept at once: with a poll
 * that never comes in the test, only the write can explain the change. */
static void
test_a_change_through_the_bridge_is_seen_by_the_next_read(void **state)
{
	struct tu_http_response r;
	char name[64];

	(void)state;
	bridge_restart(1, 600000, 600000);
	rename_2("Before");
	assert_string_equal(name_of_2(name, sizeof(name)), "Before");
	/* Changed behind the bridge's back: the kept answer still serves
	 * (this is what the bound is for). */
	rename_2("Behind");
	assert_string_equal(name_of_2(name, sizeof(name)), "Before");
	/* Changed with a write through the bridge (the catalog change
	 * rides along in the database; any answer invalidates). */
	rename_2("Through");
	assert_int_equal(tu_http(F->port, "POST", "/applications", NULL,
	                     "{\"advertiser_id\":2,\"editor_id\":1}", &r),
	    0);
	assert_true(r.status == 202 || r.status == 409);
	tu_http_response_fini(&r);
	assert_string_equal(name_of_2(name, sizeof(name)), "Through");
	/* A webhook never touches the catalog: it drops nothing. */
	rename_2("After webhook");
	assert_int_equal(tu_http(F->port, "POST", "/webhook/orders", NULL,
	                     "{}", &r),
	    0);
	assert_int_equal(r.status, 401);
	tu_http_response_fini(&r);
	assert_string_equal(name_of_2(name, sizeof(name)), "Through");
}

/* A change made elsewhere (here: in the database, as another server on
 * PostgreSQL or an operator would) is served within the bound. */
static void
test_a_change_made_elsewhere_is_seen_within_the_bound(void **state)
{
	char name[64];
	int64_t t, waited = -1;
	struct readcache_stats s0;

	(void)state;
	bridge_restart(1, 0, 0);
	rename_2("Old");
	for (int i = 0; i < 20; i++) /* kept, and hit */
		(void)name_of_2(name, sizeof(name));
	assert_string_equal(name, "Old");
	stats(&s0);
	assert_true(s0.hits >= 10);
	rename_2("New");
	t = aff_mono_ms();
	while (aff_mono_ms() - t < 3000) {
		if (strcmp(name_of_2(name, sizeof(name)), "New") == 0) {
			waited = aff_mono_ms() - t;
			break;
		}
		tu_sleep_ms(10);
	}
	printf("# change seen after %lld ms (bound %d ms)\n", (long long)waited,
	    READCACHE_MAX_AGE_MS);
	assert_true(waited >= 0);
	/* The bound, and a request's own time on a loaded host. */
	assert_true(waited <= READCACHE_MAX_AGE_MS + 200);
}

static void
test_with_the_cache_off_every_read_goes_to_the_server(void **state)
{
	char name[64];

	(void)state;
	bridge_restart(0, 0, 0);
	assert_null(F->b->rcache);
	rename_2("Off 1");
	assert_string_equal(name_of_2(name, sizeof(name)), "Off 1");
	rename_2("Off 2");
	assert_string_equal(name_of_2(name, sizeof(name)), "Off 2");
}

/* The module alone: entries and bytes stay within their bounds, least
 * recently used first out; older versions and puts from before an
 * invalidation are refused. */
static void
test_memory_is_bounded_and_old_answers_refused(void **state)
{
	struct readcache_opts o = { .max_entries = 8, .max_bytes = 4096,
		.poll_ms = -1, .max_age_ms = 60000 };
	struct readcache_answer ans = { 200, "[1,2,3]", 7, NULL }, got;
	struct readcache_stats s;
	char big[2000], key[32];
	readcache *rc;
	aff_arena a;
	int64_t now = aff_mono_ms();
	uint64_t ep;

	(void)state;
	aff_arena_init(&a);
	assert_int_equal(readcache_open(&o, NULL, &rc), AFF_OK);
	ep = readcache_epoch(rc);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "/advertisers/%d?", i);
		readcache_put(rc, key, strlen(key), "db:5", ep, now, &ans);
		/* Keep the first one in use: it must survive. */
		assert_int_equal(readcache_get(rc, "/advertisers/0?", 15, &a, &got),
		    1);
	}
	readcache_stats(rc, &s);
	assert_int_equal(s.entries, 8);
	assert_int_equal(s.evictions, 12);
	assert_true(s.bytes <= 4096);
	assert_int_equal(readcache_get(rc, "/advertisers/1?", 15, &a, &got), 0);
	assert_int_equal(readcache_get(rc, "/advertisers/19?", 16, &a, &got), 1);
	assert_int_equal(got.len, 7);
	assert_memory_equal(got.body, "[1,2,3]", 7);
	/* Big answers push out others by bytes; more than a quarter of the
	 * bound is never kept. */
	memset(big, 'x', sizeof(big));
	ans.body = big;
	ans.len = 900;
	readcache_put(rc, "big1", 4, "db:5", ep, now, &ans);
	readcache_put(rc, "big2", 4, "db:5", ep, now, &ans);
	readcache_put(rc, "big3", 4, "db:5", ep, now, &ans);
	readcache_stats(rc, &s);
	assert_true(s.bytes <= 4096);
	assert_int_equal(readcache_get(rc, "big3", 4, &a, &got), 1);
	ans.len = sizeof(big);
	readcache_put(rc, "huge", 4, "db:5", ep, now, &ans);
	assert_int_equal(readcache_get(rc, "huge", 4, &a, &got), 0);
	/* An answer of an older version is not kept; a newer one drops all. */
	ans.len = 7;
	readcache_put(rc, "old", 3, "db:4", ep, now, &ans);
	assert_int_equal(readcache_get(rc, "old", 3, &a, &got), 0);
	/* ...unless the newer one was not confirmed for longer than the
	 * bound (a database restored from a backup). */
	readcache_put(rc, "old", 3, "db:4", ep, now + 60001, &ans);
	readcache_stats(rc, &s);
	assert_int_equal(s.entries, 1);
	now += 60001;
	readcache_put(rc, "new", 3, "db:6", ep, now, &ans);
	readcache_stats(rc, &s);
	assert_int_equal(s.entries, 1);
	/* A put from a call that started before an invalidation. */
	readcache_invalidate(rc);
	readcache_put(rc, "late", 4, "db:6", ep, now, &ans);
	readcache_stats(rc, &s);
	assert_int_equal(s.entries, 0);
	/* An OK anonymous answer without the tag: nothing is served. */
	ep = readcache_epoch(rc);
	readcache_put(rc, "k", 1, "db:6", ep, now, &ans);
	assert_int_equal(readcache_get(rc, "k", 1, &a, &got), 1);
	readcache_seen(rc, NULL, ep, now);
	assert_int_equal(readcache_get(rc, "k", 1, &a, &got), 0);
	readcache_close(rc);
	aff_arena_fini(&a);
}

static void
test_the_key_sorts_the_query(void **state)
{
	aff_arena a;
	size_t n;

	(void)state;
	aff_arena_init(&a);
	assert_string_equal(readcache_key(&a, "/advertisers", "b=2&a=1&&c", &n),
	    "/advertisers?a=1&b=2&c");
	assert_int_equal(n, strlen("/advertisers?a=1&b=2&c"));
	assert_string_equal(readcache_key(&a, "/advertisers/2", NULL, &n),
	    "/advertisers/2?");
	aff_arena_fini(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_key_sorts_the_query),
		cmocka_unit_test(test_memory_is_bounded_and_old_answers_refused),
		/* In this order, the bridge restarts only twice. */
		cmocka_unit_test(test_a_change_made_elsewhere_is_seen_within_the_bound),
		cmocka_unit_test(test_a_limited_caller_never_gets_a_kept_answer),
		cmocka_unit_test(test_a_hot_public_read_is_answered_by_the_bridge),
		cmocka_unit_test(
		    test_a_keyed_or_forwarded_caller_never_gets_a_kept_answer),
		cmocka_unit_test(
		    test_a_change_through_the_bridge_is_seen_by_the_next_read),
		cmocka_unit_test(test_with_the_cache_off_every_read_goes_to_the_server),
	};

	return (cmocka_run_group_tests_name("readcache", tests, setup, teardown));
}
