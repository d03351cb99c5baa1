/*
 * test_bridge.c - the REST bridge over real HTTP, in front of a real
 * affiliate-server (in-process, real NNG socket) and a real redis-server:
 * the status and body of every endpoint and of every error class, the
 * OpenAPI description against the routes served, and the server going
 * away and coming back with no bridge restart.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "aff_err.h"
#include "aff_log.h"
#include "bridge.h"
#include "routes.h"
#include "store.h"
#include "testutil.h"

/* The whole stack (see testutil.h); F is the one running. */
static struct tu_stack *F;

static int
setup(void **state)
{
	struct tu_stack *f;

	assert_non_null(f = tu_stack_new(16, 2000));
	*state = F = f;
	return (0);
}

static int
teardown(void **state)
{
	tu_stack_free(*state);
	return (0);
}

/* Makes a request and checks its status; the response is in r. */
static void
req(struct tu_http_response *r, const char *method, const char *target,
    const char *headers, const char *body, int want)
{
	assert_int_equal(tu_http(F->port, method, target, headers, body, r), 0);
	if (r->status != want)
		fprintf(stderr, "%s %s: %d %s\n", method, target, r->status, r->body);
	assert_int_equal(r->status, want);
}

/* Checks an error body: exact code and message, and the request id. */
static void
check_error(const char *method, const char *target, const char *body,
    int status, const char *code, const char *message)
{
	struct tu_http_response r;
	char want[1024], hdr[64];

	req(&r, method, target, "X-Request-Id: t-err-1\r\n", body, status);
	snprintf(want, sizeof(want),
	    "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"request_id\":"
	    "\"t-err-1\"}}",
	    code, message);
	assert_string_equal(r.body, want);
	assert_string_equal(
	    tu_http_header(&r, "Content-Type", hdr, sizeof(hdr)),
	    "application/json; charset=utf-8");
	assert_string_equal(
	    tu_http_header(&r, "X-Request-Id", hdr, sizeof(hdr)), "t-err-1");
	tu_http_response_fini(&r);
}

static json_t *
body_json(const struct tu_http_response *r)
{
	json_error_t e;
	json_t *j = json_loads(r->body, 0, &e);

	assert_non_null(j);
	return (j);
}

static void
test_root_answers_ok(void **state)
{
	struct tu_http_response r;
	char hdr[64];

	(void)state;
	req(&r, "GET", "/", NULL, NULL, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\"}");
	assert_int_equal(
	    strlen(tu_http_header(&r, "X-Request-Id", hdr, sizeof(hdr))), 32);
	tu_http_response_fini(&r);
}

static void
test_advertisers_for_an_editor_are_exactly_those_it_may_join(void **state)
{
	struct tu_http_response r;
	json_t *j;
	size_t k = 0;
	char hdr[128];

	(void)state;
	req(&r, "GET", "/advertisers?editor_id=1", NULL, NULL, 200);
	j = body_json(&r);
	assert_true(json_is_array(j));
	for (int a = 1; a <= STORE_SEED_ADVERTISERS; a++)
		if (store_seed_eligible(1, a))
			assert_int_equal(json_integer_value(json_object_get(
			                     json_array_get(j, k++), "id")),
			    a);
	assert_int_equal(json_array_size(j), k);
	assert_null(tu_http_header(&r, "Link", hdr, sizeof(hdr)));
	json_decref(j);
	tu_http_response_fini(&r);

	req(&r, "GET", "/advertisers", NULL, NULL, 200);
	j = body_json(&r);
	assert_int_equal(json_array_size(j), STORE_SEED_ADVERTISERS);
	json_decref(j);
	tu_http_response_fini(&r);
}

static void
test_advertiser_get_renders_every_field(void **state)
{
	struct tu_http_response r;

	(void)state;
	req(&r, "GET", "/advertisers/2?editor_id=1", NULL, NULL, 200);
	assert_string_equal(r.body,
	    "{\"id\":2,\"name\":\"Alpine Gear Co\",\"category\":\"outdoor\","
	    "\"currency\":\"CHF\",\"commission_rate_bps\":650,\"status\":"
	    "\"active\",\"website\":\"https://alpinegearco.example\","
	    "\"cookie_days\":30,\"created_at\":\"2026-01-01T00:00:00Z\","
	    "\"updated_at\":\"2026-01-01T00:00:00Z\"}");
	tu_http_response_fini(&r);
}

static void
test_lists_page_with_a_link_to_the_next_page(void **state)
{
	struct tu_http_response r;
	char target[256], link[256];
	int pages = 0;
	json_int_t expect = 1;

	(void)state;
	snprintf(target, sizeof(target), "/advertisers?limit=10");
	for (;;) {
		json_t *j;
		req(&r, "GET", target, NULL, NULL, 200);
		j = body_json(&r);
		for (size_t i = 0; i < json_array_size(j); i++)
			assert_int_equal(json_integer_value(json_object_get(
			                     json_array_get(j, i), "id")),
			    expect++);
		json_decref(j);
		pages++;
		if (tu_http_header(&r, "Link", link, sizeof(link)) == NULL) {
			tu_http_response_fini(&r);
			break;
		}
		if (pages == 1)
			assert_string_equal(
			    link, "</advertisers?limit=10&after=10>; rel=\"next\"");
		/* Follow it as a client would: <target>; rel="next" */
		assert_non_null(strstr(link, ">; rel=\"next\""));
		snprintf(target, sizeof(target), "%.*s",
		    (int)(strchr(link, '>') - link - 1), link + 1);
		tu_http_response_fini(&r);
	}
	assert_int_equal(pages, 3);
	assert_int_equal(expect - 1, STORE_SEED_ADVERTISERS);
}

static void
test_list_filters_that_match_nothing_give_an_empty_page(void **state)
{
	struct tu_http_response r;

	(void)state;
	/* The REST contract has no 404 for lists: nothing matches, []. */
	req(&r, "GET", "/applications?editor_id=99", NULL, NULL, 200);
	assert_string_equal(r.body, "[]");
	tu_http_response_fini(&r);
	req(&r, "GET", "/orders?editor_id=99&advertiser_id=98", NULL, NULL, 200);
	assert_string_equal(r.body, "[]");
	tu_http_response_fini(&r);
}

static void
test_a_long_query_keeps_its_link(void **state)
{
	struct tu_http_response r;
	char target[4096], link[4096];
	size_t n;

	(void)state;
	/* limit=00...05 percent-encoded: a legal 3 KB query for limit=5. */
	n = (size_t)snprintf(target, sizeof(target), "/advertisers?limit=");
	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(target + n, sizeof(target) - n, "%%30");
	snprintf(target + n, sizeof(target) - n, "%%35");
	req(&r, "GET", target, NULL, NULL, 200);
	assert_non_null(tu_http_header(&r, "Link", link, sizeof(link)));
	assert_non_null(strstr(link, "after=5>; rel=\"next\""));
	assert_true(strlen(link) > 3000);
	tu_http_response_fini(&r);
}

static void
test_every_error_class_is_a_json_error(void **state)
{
	(void)state;
	check_error("GET", "/advertisers/1?editor_id=1", NULL, 403,
	    "PERMISSION_DENIED", "editor 1 is not eligible for advertiser 1");
	check_error("GET", "/advertisers/999", NULL, 404, "NOT_FOUND",
	    "no advertiser with id 999");
	check_error("GET", "/advertisers?editor_id=99", NULL, 404, "NOT_FOUND",
	    "no editor with id 99");
	check_error("GET", "/advertisers/2?editor_id=99", NULL, 404,
	    "NOT_FOUND", "no editor with id 99");
	check_error("GET", "/advertisers/abc", NULL, 400, "INVALID_ARGUMENT",
	    "id must be an integer, not 'abc'");
	check_error("GET", "/advertisers/-1", NULL, 400, "INVALID_ARGUMENT",
	    "id must be a positive integer");
	check_error("GET", "/advertisers/0", NULL, 400, "INVALID_ARGUMENT",
	    "id must be a positive integer");
	check_error("GET", "/advertisers?editor_id=abc", NULL, 400,
	    "INVALID_ARGUMENT", "editor_id must be an integer, not 'abc'");
	check_error("GET", "/advertisers?editor_id=-1", NULL, 400,
	    "INVALID_ARGUMENT", "editor_id must be a positive integer");
	check_error("GET", "/advertisers?editor_id=1.5", NULL, 400,
	    "INVALID_ARGUMENT", "editor_id must be an integer, not '1.5'");
	check_error("GET", "/advertisers?editor_id=1&editor_id=2", NULL, 400,
	    "INVALID_ARGUMENT", "parameter 'editor_id' is given twice");
	check_error("GET", "/advertisers?colour=red", NULL, 400,
	    "INVALID_ARGUMENT", "unknown parameter 'colour'");
	check_error("GET", "/advertisers?limit=5000", NULL, 400,
	    "INVALID_ARGUMENT", "limit must be between 1 and 1000");
	check_error("GET", "/advertisers?limit=99999999999", NULL, 400,
	    "INVALID_ARGUMENT", "limit is out of range");
	check_error("GET", "/nowhere", NULL, 404, "NOT_FOUND",
	    "no route for GET /nowhere");
	check_error("GET", "/advertisers/", NULL, 404, "NOT_FOUND",
	    "no route for GET /advertisers/");
	check_error("DELETE", "/advertisers/2", NULL, 405, "UNIMPLEMENTED",
	    "DELETE is not allowed on /advertisers/2");
	check_error("POST", "/applications", "{\"advertiser_id\":1,", 400,
	    "INVALID_ARGUMENT",
	    "the body is not valid JSON: string or '}' expected near end of "
	    "file (line 1, column 19)");
	check_error("POST", "/applications", "", 400, "INVALID_ARGUMENT",
	    "a JSON object body is required");
	check_error("POST", "/applications", "[1,2]", 400, "INVALID_ARGUMENT",
	    "expected a JSON object");
	check_error("POST", "/applications",
	    "{\"advertiser_id\":\"2\",\"editor_id\":1}", 400, "INVALID_ARGUMENT",
	    "advertiser_id must be an integer");
	check_error("POST", "/applications",
	    "{\"advertiser_id\":2,\"advertiser_id\":3}", 400, "INVALID_ARGUMENT",
	    "the body is not valid JSON: duplicate object key near "
	    "'\\\"advertiser_id\\\"' (line 1, column 34)");
	check_error("POST", "/applications", "{\"advertiser\":2}", 400,
	    "INVALID_ARGUMENT", "unknown field 'advertiser'");
	check_error("POST", "/applications",
	    "{\"advertiser_id\":1,\"editor_id\":1}", 403, "PERMISSION_DENIED",
	    "editor 1 is not eligible for advertiser 1");
	check_error("POST", "/applications",
	    "{\"advertiser_id\":2,\"editor_id\":77}", 404, "NOT_FOUND",
	    "no editor with id 77");
	check_error("POST", "/applications",
	    "{\"advertiser_id\":0,\"editor_id\":1}", 400, "INVALID_ARGUMENT",
	    "advertiser_id must be a positive integer");
	check_error("GET", "/applications/999", NULL, 404, "NOT_FOUND",
	    "no application with id 999");
	check_error("GET", "/applications?editor_id=-1", NULL, 400,
	    "INVALID_ARGUMENT", "editor_id must be a positive integer");
	check_error("GET", "/orders?advertiser_id=-2", NULL, 400,
	    "INVALID_ARGUMENT", "advertiser_id must be a positive integer");
	check_error("GET", "/applications?status=maybe", NULL, 400,
	    "INVALID_ARGUMENT", "status must be pending, approved or rejected");
	check_error("POST", "/webhook/orders", "{\"order_id\":\"o-1\"}", 401,
	    "UNAUTHENTICATED", "the X-Partner-Signature header is missing");
	check_error("GET", "/orders?status=lost", NULL, 400, "INVALID_ARGUMENT",
	    "status must be pending, approved or declined");
}

static void
test_an_application_is_accepted_and_a_second_one_conflicts(void **state)
{
	struct tu_http_response r;
	json_t *j, *err;
	json_int_t id;

	(void)state;
	req(&r, "POST", "/applications", NULL,
	    "{\"advertiser_id\":3,\"editor_id\":1}", 202);
	j = body_json(&r);
	id = json_integer_value(json_object_get(j, "id"));
	assert_true(id > 0);
	assert_int_equal(json_integer_value(json_object_get(j, "editor_id")), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(j, "advertiser_id")), 3);
	/* No worker runs in this test: it stays pending. */
	assert_string_equal(
	    json_string_value(json_object_get(j, "status")), "pending");
	json_decref(j);
	tu_http_response_fini(&r);

	req(&r, "POST", "/applications", NULL,
	    "{\"advertiser_id\":3,\"editor_id\":1}", 409);
	j = body_json(&r);
	err = json_object_get(j, "error");
	assert_string_equal(json_string_value(json_object_get(err, "code")),
	    "ALREADY_EXISTS");
	/* The conflict carries the application in the way. */
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(err, "details"), "id")),
	    id);
	json_decref(j);
	tu_http_response_fini(&r);

	req(&r, "GET", "/applications?editor_id=1&status=pending", NULL, NULL,
	    200);
	j = body_json(&r);
	assert_int_equal(json_array_size(j), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(j, 0), "id")), id);
	json_decref(j);
	tu_http_response_fini(&r);
}

static void
test_a_wrong_method_lists_the_allowed_ones(void **state)
{
	struct tu_http_response r;
	char allow[64];

	(void)state;
	req(&r, "PUT", "/applications", NULL, "{}", 405);
	assert_string_equal(
	    tu_http_header(&r, "Allow", allow, sizeof(allow)),
	    "POST, GET, HEAD, OPTIONS");
	tu_http_response_fini(&r);
	req(&r, "POST", "/", NULL, "{}", 405);
	assert_string_equal(tu_http_header(&r, "Allow", allow, sizeof(allow)),
	    "GET, HEAD, OPTIONS");
	tu_http_response_fini(&r);
}

static void
test_a_body_over_the_cap_is_413_without_reading_it(void **state)
{
	struct tu_http_response r;
	char hdr[64];
	static const char big_head[] =
	    "POST /webhook/orders HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 2000000\r\n\r\n{\"order_id\":";
	size_t n = F->bcfg.max_body + 100;
	char *chunked, *p;

	(void)state;
	/* Declared too large: answered at once, though no body follows. */
	assert_int_equal(
	    tu_http_raw(F->port, big_head, sizeof(big_head) - 1, 5000, &r), 0);
	assert_int_equal(r.status, 413);
	assert_non_null(strstr(r.body, "\"code\":\"RESOURCE_EXHAUSTED\""));
	assert_non_null(strstr(r.body, "the body is larger than 1048576 bytes"));
	assert_string_equal(tu_http_header(&r, "Connection", hdr, sizeof(hdr)),
	    "close");
	tu_http_response_fini(&r);

	/* No length given (chunked): cut off once past the cap. */
	assert_non_null(chunked = malloc(n + 256));
	p = chunked + sprintf(chunked,
	                  "POST /webhook/orders HTTP/1.1\r\nHost: x\r\n"
	                  "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
	                  n);
	memset(p, 'a', n);
	p += n;
	p += sprintf(p, "\r\n0\r\n\r\n");
	assert_int_equal(
	    tu_http_raw(F->port, chunked, (size_t)(p - chunked), 5000, &r), 0);
	assert_int_equal(r.status, 413);
	tu_http_response_fini(&r);
	free(chunked);

	/* And the bridge serves on. */
	req(&r, "GET", "/", NULL, NULL, 200);
	tu_http_response_fini(&r);
}

static void
test_garbage_on_the_wire_gets_a_json_400(void **state)
{
	struct tu_http_response r;
	static const char garbage[] = "\x16\x03\x01 GARBAGE\r\n\r\n";
	char *big;

	(void)state;
	assert_int_equal(
	    tu_http_raw(F->port, garbage, sizeof(garbage) - 1, 5000, &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "\"code\":\"INVALID_ARGUMENT\""));
	tu_http_response_fini(&r);

	/* Headers beyond max_request_size. */
	assert_non_null(big = malloc(40000));
	int n = sprintf(big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(big + n, 'b', 30000);
	n += 30000;
	n += sprintf(big + n, "\r\n\r\n");
	assert_int_equal(tu_http_raw(F->port, big, (size_t)n, 5000, &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "\"error\":{"));
	tu_http_response_fini(&r);
	free(big);

	req(&r, "GET", "/", NULL, NULL, 200);
	tu_http_response_fini(&r);
}

static void
test_keep_alive_serves_several_requests_on_one_connection(void **state)
{
	struct tu_http_response r;
	static const char two[] =
	    "GET /advertisers/2 HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /advertisers/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	static const char one[] = "GET /advertisers/2 HTTP/1.1\r\nHost: x\r\n\r\n";
	char hdr[64];

	(void)state;
	assert_int_equal(tu_http_raw(F->port, one, sizeof(one) - 1, 5000, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(tu_http_header(&r, "Connection", hdr, sizeof(hdr)),
	    "keep-alive");
	tu_http_response_fini(&r);
	/* Pipelined: the second answer follows the first on the socket. */
	assert_int_equal(tu_http_raw(F->port, two, sizeof(two) - 1, 5000, &r), 0);
	assert_int_equal(r.status, 200);
	tu_http_response_fini(&r);
}

static void
test_the_openapi_description_lists_exactly_the_routes_served(void **state)
{
	struct tu_http_response r;
	const char *path, *method;
	json_t *doc, *item, *op;
	size_t listed = 0;

	(void)state;
	req(&r, "GET", "/openapi.json", NULL, NULL, 200);
	doc = body_json(&r);
	tu_http_response_fini(&r);
	assert_string_equal(
	    json_string_value(json_object_get(doc, "openapi")), "3.0.3");
	/* Every route of the table is described... */
	for (size_t i = 0; i < route_count; i++) {
		char m[8];
		size_t k;
		for (k = 0; route_table[i].method[k]; k++)
			m[k] = (char)(route_table[i].method[k] | 0x20);
		m[k] = '\0';
		assert_non_null(json_object_get(
		    json_object_get(json_object_get(doc, "paths"),
		        route_table[i].path),
		    m));
	}
	/* ...and everything described is served (not 404, not 405). */
	json_object_foreach(json_object_get(doc, "paths"), path, item)
	{
		json_object_foreach(item, method, op)
		{
			char target[128], upper[8];
			size_t k, t = 0;
			/* Every {parameter} becomes 1, also one followed by
			 * more path (/postback-endpoints/{id}/enable). */
			for (const char *c = path; *c != '\0' && t < 126; c++) {
				if (*c == '{') {
					target[t++] = '1';
					while (*c != '\0' && *c != '}')
						c++;
					if (*c == '\0')
						break;
				} else
					target[t++] = *c;
			}
			target[t] = '\0';
			for (k = 0; method[k] && k < 7; k++)
				upper[k] = (char)(method[k] & ~0x20);
			upper[k] = '\0';
			assert_int_equal(
			    tu_http(F->port, upper, target, NULL, "{}", &r), 0);
			assert_true(r.status != 404 || strstr(r.body, "no route") == NULL);
			assert_int_not_equal(r.status, 405);
			tu_http_response_fini(&r);
			listed++;
		}
	}
	assert_int_equal(listed, route_count + 1); /* + /openapi.json */
	json_decref(doc);
}

static void
test_server_down_is_503_and_recovers_without_a_bridge_restart(void **state)
{
	struct tu_http_response r;
	char hdr[16];

	(void)state;
	req(&r, "GET", "/advertisers/2", NULL, NULL, 200);
	tu_http_response_fini(&r);
	server_stop(F->ts.srv);
	F->ts.srv = NULL;

	req(&r, "GET", "/advertisers/2", NULL, NULL, 503);
	assert_string_equal(
	    tu_http_header(&r, "Retry-After", hdr, sizeof(hdr)), "1");
	assert_non_null(strstr(r.body, "\"code\":\"UNAVAILABLE\""));
	tu_http_response_fini(&r);
	req(&r, "GET", "/", NULL, NULL, 503);
	tu_http_response_fini(&r);

	/* The same server, on the same address and database, comes back. */
	assert_int_equal(server_start(&F->ts.cfg, &F->ts.srv), AFF_OK);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(tu_http(F->port, "GET", "/advertisers/2", NULL,
		                     NULL, &r),
		    0);
		if (r.status == 200)
			break;
		tu_http_response_fini(&r);
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(r.status, 200);
	tu_http_response_fini(&r);
}

#define N_THREADS 16
#define N_REQS 40

static void *
hammer(void *arg)
{
	long ok = 0;

	(void)arg;
	for (int i = 0; i < N_REQS; i++) {
		struct tu_http_response r;
		char target[64];
		snprintf(target, sizeof(target), "/advertisers/%d", 1 + i % 24);
		if (tu_http(F->port, "GET", target, NULL, NULL, &r) == 0 &&
		    r.status == 200)
			ok++;
		tu_http_response_fini(&r);
	}
	return ((void *)ok);
}

static void
test_many_requests_at_once_all_answer(void **state)
{
	pthread_t t[N_THREADS];
	long total = 0;
	void *ok;

	(void)state;
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(t[i], &ok);
		total += (long)ok;
	}
	assert_int_equal(total, N_THREADS * N_REQS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_answers_ok),
		cmocka_unit_test(
		    test_advertisers_for_an_editor_are_exactly_those_it_may_join),
		cmocka_unit_test(test_advertiser_get_renders_every_field),
		cmocka_unit_test(test_lists_page_with_a_link_to_the_next_page),
		cmocka_unit_test(test_every_error_class_is_a_json_error),
		cmocka_unit_test(test_a_long_query_keeps_its_link),
		cmocka_unit_test(
		    test_list_filters_that_match_nothing_give_an_empty_page),
		cmocka_unit_test(
		    test_an_application_is_accepted_and_a_second_one_conflicts),
		cmocka_unit_test(test_a_wrong_method_lists_the_allowed_ones),
		cmocka_unit_test(test_a_body_over_the_cap_is_413_without_reading_it),
		cmocka_unit_test(test_garbage_on_the_wire_gets_a_json_400),
		cmocka_unit_test(
		    test_keep_alive_serves_several_requests_on_one_connection),
		cmocka_unit_test(
		    test_the_openapi_description_lists_exactly_the_routes_served),
		cmocka_unit_test(test_many_requests_at_once_all_answer),
		cmocka_unit_test(
		    test_server_down_is_503_and_recovers_without_a_bridge_restart),
	};

	return (cmocka_run_group_tests_name("bridge", tests, setup, teardown));
}
