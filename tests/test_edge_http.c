/*
 * test_edge_http.c - the bridge's HTTP edge against hostile and unusual
 * requests, over real sockets against the real affiliate-bridge binary
 * (in front of a real affiliate-server, in-process on a real NNG socket):
 * deeply nested JSON bodies, HEAD, Expect: 100-continue, CORS, TLS made
 * with a certificate the test makes, and forwarded client addresses
 * behind trusted proxies. The parsers that run on civetweb's threads are
 * also run here on a thread with civetweb's stack (fuzz/cw_stack.h).
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <civetweb.h>
#include <jansson.h>

#include "aff_arena.h"
#include "aff_err.h"
#include "aff_json.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "fuzz/cw_stack.h"
#include "routes.h"
#include "testutil.h"

/* The server (in-process) and the bridge binary in front of it. */
struct edge {
	struct tu_server ts;
	pid_t bridge;
	int port;
	char log[600];
};

static struct edge *F;

/* Settings of the bridge and server the tests set themselves. */
static const char *const env_names[] = {
	"AFFILIATE_BRIDGE_LISTEN", "AFFILIATE_URL", "AFFILIATE_BRIDGE_THREADS",
	"AFFILIATE_MAX_BODY", "AFFILIATE_BRIDGE_CORS_ORIGINS",
	"AFFILIATE_BRIDGE_TLS_CERT", "AFFILIATE_BRIDGE_TLS_KEY",
	"AFFILIATE_BRIDGE_TRUSTED_PROXIES", "AFFILIATE_AUTH",
	"AFFILIATE_RATE_LIMIT", "AFFILIATE_RATE_LIMIT_ANON",
	"AFFILIATE_TRUSTED_BRIDGES",
};

static int
setup(void **state)
{
	struct edge *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
	assert_int_equal(tu_server_start(&f->ts, 0), 0);
	snprintf(f->log, sizeof(f->log), "%s/bridge.log", f->ts.dir);
	*state = F = f;
	return (0);
}

static void
bridge_down(void)
{
	if (F->bridge > 0)
		tu_kill(F->bridge, SIGTERM);
	F->bridge = 0;
}

static int
teardown(void **state)
{
	bridge_down();
	tu_server_stop(&F->ts);
	free(*state);
	F = NULL;
	return (0);
}

/* Whether something accepts TCP connections on 127.0.0.1:port. */
static int
port_accepts(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	if (fd < 0)
		return (0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return (ok);
}

/*
 * Starts build/bin/affiliate-bridge on a free loopback port in front of
 * the test's server, with extra arguments (NULL-terminated, or NULL), and
 * waits until it answers: over HTTP, or when tls is set only until the
 * port accepts connections.
 */
static void
bridge_up_args(const char *const *extra, int tls)
{
	const char *args[32];
	char listen[64];
	size_t n = 0;

	F->port = tu_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", F->port);
	args[n++] = "--listen";
	args[n++] = listen;
	args[n++] = "--server";
	args[n++] = F->ts.url;
	args[n++] = "--threads";
	args[n++] = "8";
	for (; extra != NULL && *extra != NULL && n < 31; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	F->bridge = tu_spawn("affiliate-bridge", args, F->log);
	assert_true(F->bridge > 0);
	for (int i = 0; i < 200; i++) {
		struct tu_http_response r;
		int up;
		if (tls) {
			/* Plain HTTP does not answer there: listening is enough. */
			memset(&r, 0, sizeof(r));
			up = port_accepts(F->port);
		} else
			up = tu_http(F->port, "GET", "/", NULL, NULL, &r) == 0 &&
			    r.status == 200;
		tu_http_response_fini(&r);
		if (up)
			return;
		assert_int_equal(waitpid(F->bridge, NULL, WNOHANG), 0);
		tu_sleep_ms(25);
	}
	fail_msg("affiliate-bridge did not come up (see %s)", F->log);
}

static void
bridge_up(const char *const *extra)
{
	bridge_up_args(extra, 0);
}

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

/* Makes a request and checks its status; the response is in r. */
static void
req(struct tu_http_response *r, const char *method, const char *target,
    const char *headers, const char *body, int want)
{
	assert_int_equal(tu_http(F->port, method, target, headers, body, r), 0);
	if (r->status != want)
		fprintf(stderr, "%s %s: %d %s\n%s\n", method, target, r->status,
		    r->body, r->head);
	assert_int_equal(r->status, want);
}

static char *
repeat(const char *open, int n, const char *mid, const char *close)
{
	size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
	char *s = malloc(lo * (size_t)n + lm + lc * (size_t)n + 1), *p = s;

	assert_non_null(s);
	for (int i = 0; i < n; i++, p += lo)
		memcpy(p, open, lo);
	memcpy(p, mid, lm);
	p += lm;
	for (int i = 0; i < n; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	return (s);
}

/* --- JSON nesting ------------------------------------------------------ */

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
 * aff_json_to_message, aff_json_write_message, aff_json_from_message and
 * protobuf-c's unpacking recurse only into message-typed fields: their
 * depth is bounded by the message types the bridge's routes use, which
 * must not contain themselves and stay well under AFF_JSON_MAX_DEPTH.
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
	m = aff_message_new(&affiliate__v1__apply_request__descriptor, &a);
	if ((rv = aff_json_parse((const char *)data, len, &j, err,
	         sizeof(err))) == AFF_OK) {
		rv = aff_json_to_message(j, m, &a, err, sizeof(err));
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
	assert_true(aff_json_depth_ok(s, strlen(s), 32));
	free(s);
	s = repeat("[", 32, "", "]");
	assert_true(aff_json_depth_ok(s, strlen(s), 32));
	assert_false(aff_json_depth_ok(s, strlen(s), 31));
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
	    AFF_JSON_MAX_DEPTH);
	assert_string_equal(r.body, want);
	tu_http_response_fini(&r);
	bridge_still_answers();
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
}

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
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
