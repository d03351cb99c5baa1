/*
 * test_edge_http.c - the bridge's HTTP edge against hostile and unusual
 * requests, over real sockets against the real affiliate-bridge binary
 * (in front of a real affiliate-server, in-process on a real NNG socket):
 * deeply nested JSON bodies, HEAD and Expect: 100-continue. The parsers
 * that run on civetweb's threads are also run here on a thread with
 * civetweb's stack (fuzz/cw_stack.h). CORS, TLS and trusted proxies are
 * in test_edge_tls.c; the server and bridge both start in edge_util.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <civetweb.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "aff_arena.h"
#include "aff_err.h"
#include "aff_json.h"
#include "json_in.h"
#include "aff_util.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "fuzz/cw_stack.h"
#include "proxy.h"
#include "routes.h"
#include "testutil.h"
#include "edge_util.h"

/* The bridge process has not died, and still answers GET / with 200. */
static void
bridge_still_answers(void)
{
	struct tu_http_response r;

	assert_int_equal(waitpid(F->bridge, NULL, WNOHANG), 0);
	assert_int_equal(tu_http(F->port, "GET", "/", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\"}");
	tu_http_response_fini(&r);
}


/* civetweb's worker threads have the stack cw_stack.h assumes: a handler
 * in a real civetweb context reads its own thread's stack size. */
static size_t cw_seen_stack;

static int
stack_handler(struct mg_connection *conn, void *cbdata)
{
	pthread_attr_t attr;
	size_t size = 0;

	(void)cbdata;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstacksize(&attr, &size);
		pthread_attr_destroy(&attr);
	}
	cw_seen_stack = size;
	mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
	                "Connection: close\r\n\r\n");
	return (200);
}

static void
test_civetweb_threads_have_the_stack_the_tests_use(void **state)
{
	struct tu_http_response r;
	struct mg_context *ctx;
	char port[16];
	const char *opts[] = { "listening_ports", port, "num_threads", "1",
		NULL };

	(void)state;
	snprintf(port, sizeof(port), "127.0.0.1:%d", tu_free_port());
	assert_non_null(ctx = mg_start(NULL, NULL, opts));
	mg_set_request_handler(ctx, "/", stack_handler, NULL);
	assert_int_equal(
	    tu_http(atoi(strchr(port, ':') + 1), "GET", "/", NULL, NULL, &r), 0);
	tu_http_response_fini(&r);
	mg_stop(ctx);
	assert_int_equal(cw_seen_stack, CW_STACK_SIZE);
}

/* The deepest nesting of message types under d (1 for a message without
 * message fields); -1 when a type contains itself. */
static int
message_depth(const ProtobufCMessageDescriptor *d,
    const ProtobufCMessageDescriptor **path, int n)
{
	int deepest = 0;

	for (int i = 0; i < n; i++)
		if (path[i] == d)
			return (-1);
	path[n] = d;
	for (unsigned i = 0; i < d->n_fields; i++) {
		int k;
		if (d->fields[i].type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((k = message_depth(d->fields[i].descriptor, path, n + 1)) < 0)
			return (-1);
		if (k > deepest)
			deepest = k;
	}
	return (deepest + 1);
}

/*
 * json_in_to_message, aff_json_write_message, aff_json_from_message and
 * protobuf-c's unpacking recurse only into message-typed fields: their
 * depth is bounded by the message types the bridge's routes use, which
 * must not contain themselves and stay well under JSON_IN_MAX_DEPTH.
 */
static void
test_no_message_of_a_route_nests_itself_or_deeply(void **state)
{
	(void)state;
	for (size_t i = 0; i < route_count; i++) {
		const struct route *r = &route_table[i];
		const ProtobufCMethodDescriptor *md =
		    protobuf_c_service_descriptor_get_method_by_name(r->service,
		        r->rpc);
		const ProtobufCMessageDescriptor *path[64];
		int in, out;

		assert_non_null(md);
		in = message_depth(md->input, path, 0);
		out = message_depth(md->output, path, 0);
		assert_in_range(in, 1, 8);
		assert_in_range(out, 1, 8);
	}
}

/* The body parser, transcoder and writer on a civetweb-sized stack. */
static int
parse_on_small_stack(const uint8_t *data, size_t len)
{
	aff_arena a;
	ProtobufCMessage *m;
	struct aff_buf b;
	char err[256];
	json_t *j;
	int rv;

	aff_arena_init(&a);
	m = json_in_message_new(&affiliate__v1__apply_request__descriptor, &a);
	if ((rv = json_in_parse((const char *)data, len, &j, err,
	         sizeof(err))) == AFF_OK) {
		rv = json_in_to_message(j, m, &a, err, sizeof(err));
		json_decref(j);
		if (rv == AFF_OK) {
			aff_buf_init(&b);
			rv = aff_json_write_message(&b, m);
			aff_buf_fini(&b);
			json_decref(aff_json_from_message(m));
		}
	} else if (strstr(err, "nests deeper than 32 levels") != NULL)
		rv = -32;
	aff_arena_fini(&a);
	return (rv);
}

static int
stack_parse(const char *s)
{
	return (cw_stack_run(parse_on_small_stack, (const uint8_t *)s, strlen(s)));
}

static void
test_deep_json_is_refused_before_jansson_on_a_civetweb_stack(void **state)
{
	char *s;

	(void)state;
	/* 2,000 levels overflow a 100 KB stack in jansson (1,500 did in
	 * tests/fuzz/regressions/fuzz_json). */
	s = repeat("[", 2000, "", "");
	assert_int_equal(stack_parse(s), -32);
	free(s);
	s = repeat("{\"a\":", 2000, "1", "}");
	assert_int_equal(stack_parse(s), -32);
	free(s);
	/* Brackets in strings do not count; 32 levels are allowed (and then
	 * refused by the types: editor_id must be an integer). */
	s = repeat("[", 31, "\"[[[[{{{{\\\"[[[[\"", "]");
	assert_true(json_in_depth_ok(s, strlen(s), 32));
	free(s);
	s = repeat("[", 32, "", "]");
	assert_true(json_in_depth_ok(s, strlen(s), 32));
	assert_false(json_in_depth_ok(s, strlen(s), 31));
	free(s);
	s = repeat("{\"editor_id\":", 1, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "}");
	assert_int_equal(stack_parse(s), AFF_INVALID_ARGUMENT);
	free(s);
	assert_int_equal(stack_parse("{\"advertiser_id\":2,\"editor_id\":3}"),
	    AFF_OK);
}

/* Sends body to POST /applications and checks the 400 and its message. */
static void
check_deep_body_refused(const char *body)
{
	struct tu_http_response r;
	char want[256];

	req(&r, "POST", "/applications",
	    "Content-Type: application/json\r\nX-Request-Id: deep-1\r\n", body,
	    400);
	snprintf(want, sizeof(want),
	    "{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":\"the body "
	    "nests deeper than %d levels\",\"request_id\":\"deep-1\"}}",
	    JSON_IN_MAX_DEPTH);
	assert_string_equal(r.body, want);
	tu_http_response_fini(&r);
	bridge_still_answers();
}

/* A client that posts n bodies of 1,000 "[" and counts the 400s. */
struct deep_client {
	pthread_t t;
	int n, refused;
};

static void *
deep_client_main(void *arg)
{
	struct deep_client *c = arg;
	char *s = repeat("[", 1000, "", "");

	for (int i = 0; i < c->n; i++) {
		struct tu_http_response r;
		if (tu_http(F->port, "POST", "/applications", NULL, s, &r) == 0 &&
		    r.status == 400)
			c->refused++;
		tu_http_response_fini(&r);
	}
	free(s);
	return (NULL);
}

/* While 4 clients post 100 deep bodies each, GET / keeps being answered
 * quickly; prints the slowest. */
static void
check_normal_requests_under_deep_bodies(void)
{
	struct deep_client c[4];
	int64_t worst = 0;

	for (int i = 0; i < 4; i++) {
		c[i].n = 100;
		c[i].refused = 0;
		assert_int_equal(
		    pthread_create(&c[i].t, NULL, deep_client_main, &c[i]), 0);
	}
	for (int i = 0; i < 20; i++) {
		struct tu_http_response r;
		int64_t t0 = aff_mono_ms();
		assert_int_equal(tu_http(F->port, "GET", "/", NULL, NULL, &r), 0);
		assert_int_equal(r.status, 200);
		tu_http_response_fini(&r);
		if (aff_mono_ms() - t0 > worst)
			worst = aff_mono_ms() - t0;
		tu_sleep_ms(10);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(c[i].t, NULL);
		assert_int_equal(c[i].refused, 100);
	}
	printf("edge: 400 bodies of 1,000 '[' from 4 clients, all 400; GET / "
	       "meanwhile answered within %lld ms\n",
	    (long long)worst);
	assert_true(worst < 1000);
}

static void
test_deeply_nested_bodies_are_400_and_the_bridge_lives(void **state)
{
	char *s;

	(void)state;
	bridge_up(NULL);
	s = repeat("[", 1000, "", "");
	check_deep_body_refused(s);
	free(s);
	s = repeat("[", 1000, "", "]");
	check_deep_body_refused(s);
	free(s);
	s = repeat("{\"a\":", 1000, "1", "}");
	check_deep_body_refused(s);
	free(s);
	/* Inside a valid object's field. */
	s = repeat("{\"advertiser_id\":2,\"editor_id\":", 1, "", "");
	{
		char *deep = repeat("[", 1000, "1", "]"), *all;
		assert_true(asprintf(&all, "%s%s}", s, deep) > 0);
		check_deep_body_refused(all);
		free(all);
		free(deep);
	}
	free(s);
	/* The webhook body goes to the server untouched (its parser is flat);
	 * the bridge is still there after it too. */
	s = repeat("[", 1000, "", "");
	{
		struct tu_http_response r;
		req(&r, "POST", "/webhook/orders", "X-Partner-Signature: 00\r\n", s,
		    401);
		tu_http_response_fini(&r);
	}
	free(s);
	bridge_still_answers();
	check_normal_requests_under_deep_bodies();
	bridge_still_answers();
}

/* --- raw connections -------------------------------------------------- */

static void
conn_send(int fd, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads into buf (NUL-terminated) until it holds want, the peer closes,
 * or ms pass with nothing new. Returns the bytes held. */
static size_t
conn_read_until(int fd, char *buf, size_t cap, size_t have, const char *want,
    int ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t n;

	buf[have] = '\0';
	while ((want == NULL || strstr(buf, want) == NULL) && have + 1 < cap &&
	    poll(&pfd, 1, ms) > 0) {
		if ((n = recv(fd, buf + have, cap - 1 - have, 0)) <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
	}
	return (have);
}

/* --- HEAD ------------------------------------------------------------- */

/* The head's lines but Date, compared between GET and HEAD. */
static void
strip_date(char *head)
{
	char *d = strstr(head, "\r\nDate: ");

	if (d != NULL) {
		char *e = strstr(d + 2, "\r\n");
		memmove(d, e != NULL ? e : d + strlen(d),
		    strlen(e != NULL ? e : d + strlen(d)) + 1);
	}
}

static void
check_head_like_get(const char *target, int want)
{
	struct tu_http_response g, h;
	char cl[32];

	req(&g, "GET", target, "X-Request-Id: head-1\r\n", NULL, want);
	req(&h, "HEAD", target, "X-Request-Id: head-1\r\n", NULL, want);
	strip_date(g.head);
	strip_date(h.head);
	assert_string_equal(h.head, g.head);
	assert_int_equal(h.body_len, 0);
	assert_true(g.body_len > 0);
	snprintf(cl, sizeof(cl), "%zu", g.body_len);
	{
		char v[32];
		assert_string_equal(tu_http_header(&h, "Content-Length", v,
		                        sizeof(v)),
		    cl);
	}
	tu_http_response_fini(&g);
	tu_http_response_fini(&h);
}

static void
test_head_is_get_without_the_body(void **state)
{
	struct tu_http_response r;
	char v[64];

	(void)state;
	bridge_up(NULL);
	check_head_like_get("/", 200);
	check_head_like_get("/advertisers?limit=1", 200);
	check_head_like_get("/advertisers/2", 200);
	check_head_like_get("/advertisers/999999", 404);
	check_head_like_get("/advertisers/x", 400);
	check_head_like_get("/openapi.json", 200);
	/* No route: 404 too (its message names HEAD). */
	req(&r, "HEAD", "/nowhere", NULL, NULL, 404);
	assert_int_equal(r.body_len, 0);
	tu_http_response_fini(&r);
	/* Where there is no GET there is no HEAD. */
	req(&r, "HEAD", "/webhook/orders", NULL, NULL, 405);
	assert_string_equal(tu_http_header(&r, "Allow", v, sizeof(v)),
	    "POST, OPTIONS");
	assert_int_equal(r.body_len, 0);
	tu_http_response_fini(&r);
	bridge_still_answers();
}

/* --- Expect: 100-continue ----------------------------------------------- */

static void
test_expect_100_continue_is_answered_before_the_body(void **state)
{
	char buf[8192];
	size_t n;
	int fd;

	(void)state;
	bridge_up(NULL);
	/* Asked for: 100 first, then the body is read and answered. */
	fd = conn_open(F->port);
	conn_send(fd, "POST /applications HTTP/1.1\r\nHost: x\r\n"
	              "Content-Type: application/json\r\nContent-Length: 7\r\n"
	              "Expect: 100-continue\r\nConnection: close\r\n\r\n");
	n = conn_read_until(fd, buf, sizeof(buf), 0, "\r\n\r\n", 2000);
	assert_true(n > 0);
	assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
	conn_send(fd, "{\"x\":1}");
	n = conn_read_until(fd, buf, sizeof(buf), 0, "}}", 5000);
	assert_true(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);
	assert_non_null(strstr(buf, "unknown field 'x'"));
	assert_null(strstr(buf, "100 Continue")); /* only once */
	close(fd);

	/* Refused on its headers alone (no route, wrong method, too large):
	 * the final answer, no 100, and the connection is not kept. */
	{
		static const char *const refused[] = {
			"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
			"Expect: 100-continue\r\n\r\n",
			"PUT /applications HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
			"Expect: 100-continue\r\n\r\n",
			"POST /applications HTTP/1.1\r\nHost: x\r\n"
			"Content-Length: 5000000\r\nExpect: 100-continue\r\n\r\n",
		};
		static const char *const status[] = { "HTTP/1.1 404 ",
			"HTTP/1.1 405 ", "HTTP/1.1 413 " };
		for (size_t i = 0; i < 3; i++) {
			char v[32];
			struct tu_http_response r = { 0 };
			fd = conn_open(F->port);
			conn_send(fd, refused[i]);
			n = conn_read_until(fd, buf, sizeof(buf), 0, "}}", 5000);
			assert_true(n > 0);
			if (strncmp(buf, status[i], 13) != 0)
				fail_msg("%s -> %s", refused[i], buf);
			r.head = buf;
			assert_string_equal(
			    tu_http_header(&r, "Connection", v, sizeof(v)), "close");
			close(fd);
		}
	}

	/* An unsigned webhook is refused by the server whatever its body:
	 * its 401 comes at once, without the 100; a signed one is asked for
	 * its body first (and this signature is wrong: 401 after it). */
	fd = conn_open(F->port);
	conn_send(fd, "POST /webhook/orders HTTP/1.1\r\nHost: x\r\n"
	              "Content-Length: 20\r\nExpect: 100-continue\r\n\r\n");
	n = conn_read_until(fd, buf, sizeof(buf), 0, "}}", 5000);
	if (strncmp(buf, "HTTP/1.1 401 ", 13) != 0)
		fail_msg("unsigned webhook -> %s", buf);
	assert_non_null(strstr(buf, "X-Partner-Signature header is missing"));
	assert_non_null(strstr(buf, "\r\nConnection: close\r\n"));
	close(fd);
	fd = conn_open(F->port);
	conn_send(fd, "POST /webhook/orders HTTP/1.1\r\nHost: x\r\n"
	              "Content-Length: 2\r\nX-Partner-Signature: 00\r\n"
	              "Expect: 100-continue\r\nConnection: close\r\n\r\n");
	n = conn_read_until(fd, buf, sizeof(buf), 0, "\r\n\r\n", 2000);
	assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
	conn_send(fd, "{}");
	n = conn_read_until(fd, buf, sizeof(buf), 0, "}}", 5000);
	assert_true(n > 0 && strncmp(buf, "HTTP/1.1 401 ", 13) == 0);
	close(fd);

	/* Another expectation cannot be met: 417. */
	{
		struct tu_http_response r;
		req(&r, "POST", "/applications", "Expect: 200-ok\r\n", "{}", 417);
		assert_non_null(strstr(r.body, "\"code\":\"FAILED_PRECONDITION\""));
		tu_http_response_fini(&r);
	}
	bridge_still_answers();
}

/* --- A bridge starting ----------------------------------------------- */

/*
 * civetweb listens and reads requests from inside mg_start, before
 * bridge_start has done what follows it. A request that arrives then (a
 * client retrying against a bridge that is being restarted) must be
 * answered as any other: under the fault test's load, a partner's order
 * got civetweb's 404 Not Found that way, when the route was set after
 * mg_start. The shim (slow_start.c) holds mg_start's return 500 ms, so
 * the first request, sent the moment the port accepts, lands in that
 * window every time.
 */
static void
test_a_request_that_arrives_while_the_bridge_starts_gets_its_route(
    void **state)
{
	const char *args[] = { "--listen", NULL, "--server", F->ts.url,
		"--threads", "8", NULL };
	char listen[64], buf[4096];
	int fd = -1, port = tu_free_port();
	size_t n;
	char *log;

	(void)state;
	bridge_down();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	args[1] = listen;
	tu_preload_begin(SLOW_START_LIB);
	F->bridge = tu_spawn("affiliate-bridge", args, F->log);
	tu_preload_end();
	assert_true(F->bridge > 0);
	for (int i = 0; i < 5000 && fd < 0; i++) {
		if ((fd = tu_connect(port, 0, 0)) < 0)
			tu_sleep_ms(1);
		assert_int_equal(waitpid(F->bridge, NULL, WNOHANG), 0);
	}
	assert_true(fd >= 0);
	conn_send(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	n = conn_read_until(fd, buf, sizeof(buf), 0, "}", 5000);
	close(fd);
	assert_true(n > 0);
	assert_true(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
	assert_non_null(strstr(buf, "\r\n\r\n{\"status\":\"ok\"}"));
	/* The start was held back, so the request met the window. */
	log = tu_read_file(F->log);
	assert_non_null(log);
	assert_non_null(strstr(log, "slow_start: mg_start held 500 ms"));
	free(log);
	F->port = port;
	bridge_still_answers();
}

/* --- CORS ------------------------------------------------------------- */

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_civetweb_threads_have_the_stack_the_tests_use),
		cmocka_unit_test(test_no_message_of_a_route_nests_itself_or_deeply),
		cmocka_unit_test(
		    test_deep_json_is_refused_before_jansson_on_a_civetweb_stack),
		cmocka_unit_test_setup_teardown(
		    test_deeply_nested_bodies_are_400_and_the_bridge_lives, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_head_is_get_without_the_body, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_expect_100_continue_is_answered_before_the_body, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_request_that_arrives_while_the_bridge_starts_gets_its_route,
		    setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
