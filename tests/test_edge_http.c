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
	int fd = tu_connect(port, 0, 0);

	if (fd < 0)
		return (0);
	close(fd);
	return (1);
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

static int
conn_open(int port)
{
	int fd = tu_connect(port, 0, 0);

	assert_true(fd >= 0);
	return (fd);
}

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

/* --- CORS ------------------------------------------------------------- */

static void
assert_no_cors(const struct tu_http_response *r)
{
	if (strcasestr(r->head, "\r\nAccess-Control-") != NULL)
		fail_msg("CORS headers where none belong:\n%s", r->head);
}

static void
test_cors_is_off_unless_origins_are_configured(void **state)
{
	struct tu_http_response r;
	char v[128];

	(void)state;
	bridge_up(NULL);
	req(&r, "GET", "/advertisers", "Origin: https://app.example\r\n", NULL,
	    200);
	assert_no_cors(&r);
	tu_http_response_fini(&r);
	/* A preflight: civetweb answered it with "*" itself; now the
	 * bridge answers 204 with what the path allows, and no CORS. */
	req(&r, "OPTIONS", "/applications",
	    "Origin: https://app.example\r\n"
	    "Access-Control-Request-Method: POST\r\n"
	    "Access-Control-Request-Headers: authorization\r\n",
	    NULL, 204);
	assert_no_cors(&r);
	assert_string_equal(tu_http_header(&r, "Allow", v, sizeof(v)),
	    "POST, GET, HEAD, OPTIONS");
	assert_null(tu_http_header(&r, "Content-Length", v, sizeof(v)));
	assert_int_equal(r.body_len, 0);
	tu_http_response_fini(&r);
}

static void
check_allowed_answer(const struct tu_http_response *r, const char *origin)
{
	char v[256];

	assert_string_equal(tu_http_header(r, "Access-Control-Allow-Origin", v,
	                        sizeof(v)),
	    origin);
	assert_string_equal(tu_http_header(r, "Vary", v, sizeof(v)), "Origin");
	assert_string_equal(tu_http_header(r, "Access-Control-Expose-Headers", v,
	                        sizeof(v)),
	    "Link, X-Request-Id, Retry-After, RateLimit-Limit, "
	    "RateLimit-Remaining, RateLimit-Reset, WWW-Authenticate");
	assert_null(
	    tu_http_header(r, "Access-Control-Allow-Credentials", v, sizeof(v)));
}

static void
test_cors_allows_exactly_the_configured_origins(void **state)
{
	static const char *const args[] = { "--cors-origins",
		"https://app.example, http://localhost:3000", NULL };
	struct tu_http_response r;
	char v[256];

	(void)state;
	bridge_up(args);
	/* Preflight from an allowed origin. */
	req(&r, "OPTIONS", "/applications",
	    "Origin: http://localhost:3000\r\n"
	    "Access-Control-Request-Method: POST\r\n"
	    "Access-Control-Request-Headers: authorization, content-type\r\n",
	    NULL, 204);
	assert_string_equal(tu_http_header(&r, "Access-Control-Allow-Origin", v,
	                        sizeof(v)),
	    "http://localhost:3000");
	assert_string_equal(tu_http_header(&r, "Access-Control-Allow-Methods", v,
	                        sizeof(v)),
	    "POST, GET, HEAD, OPTIONS");
	assert_string_equal(tu_http_header(&r, "Access-Control-Allow-Headers", v,
	                        sizeof(v)),
	    "Authorization, Content-Type, X-Request-Id, X-Partner-Signature");
	assert_string_equal(
	    tu_http_header(&r, "Access-Control-Max-Age", v, sizeof(v)), "600");
	assert_string_equal(tu_http_header(&r, "Vary", v, sizeof(v)), "Origin");
	assert_int_equal(r.body_len, 0);
	tu_http_response_fini(&r);
	req(&r, "OPTIONS", "/advertisers/7",
	    "Origin: https://app.example\r\nAccess-Control-Request-Method: GET\r\n",
	    NULL, 204);
	assert_string_equal(tu_http_header(&r, "Access-Control-Allow-Methods", v,
	                        sizeof(v)),
	    "GET, HEAD, OPTIONS");
	tu_http_response_fini(&r);

	/* Preflight from another origin (or a look-alike): no CORS. */
	req(&r, "OPTIONS", "/applications",
	    "Origin: https://evil.example\r\n"
	    "Access-Control-Request-Method: POST\r\n",
	    NULL, 204);
	assert_no_cors(&r);
	tu_http_response_fini(&r);
	req(&r, "OPTIONS", "/applications",
	    "Origin: https://app.example.evil\r\n"
	    "Access-Control-Request-Method: POST\r\n",
	    NULL, 204);
	assert_no_cors(&r);
	tu_http_response_fini(&r);

	/* Real answers, success and errors, to an allowed origin. */
	req(&r, "GET", "/advertisers", "Origin: https://app.example\r\n", NULL,
	    200);
	check_allowed_answer(&r, "https://app.example");
	tu_http_response_fini(&r);
	req(&r, "GET", "/advertisers/x", "Origin: https://app.example\r\n", NULL,
	    400);
	check_allowed_answer(&r, "https://app.example");
	tu_http_response_fini(&r);
	req(&r, "DELETE", "/advertisers/1", "Origin: https://app.example\r\n",
	    NULL, 405);
	check_allowed_answer(&r, "https://app.example");
	tu_http_response_fini(&r);
	req(&r, "POST", "/applications", "Origin: https://app.example\r\n",
	    "[[", 400);
	check_allowed_answer(&r, "https://app.example");
	tu_http_response_fini(&r);
	/* ...and nothing to another, or without an Origin. */
	req(&r, "GET", "/advertisers", "Origin: https://evil.example\r\n", NULL,
	    200);
	assert_no_cors(&r);
	tu_http_response_fini(&r);
	req(&r, "GET", "/advertisers", NULL, NULL, 200);
	assert_no_cors(&r);
	tu_http_response_fini(&r);
	bridge_down();

	/* "*" (here from the environment): every origin, echoed. */
	setenv("AFFILIATE_BRIDGE_CORS_ORIGINS", "*", 1);
	bridge_up(NULL);
	unsetenv("AFFILIATE_BRIDGE_CORS_ORIGINS");
	req(&r, "GET", "/", "Origin: https://any.example\r\n", NULL, 200);
	check_allowed_answer(&r, "https://any.example");
	tu_http_response_fini(&r);
}

/* A setting that does not parse stops the bridge at start (status 1). */
static void
check_bad_setting(const char *name, const char *value)
{
	const char *args[] = { "--listen", "127.0.0.1:1", "--server", F->ts.url,
		name, value, NULL };
	int status = 0;
	pid_t pid = tu_spawn("affiliate-bridge", args, F->log);

	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

static void
test_bad_edge_settings_stop_the_bridge_at_start(void **state)
{
	(void)state;
	check_bad_setting("--cors-origins", "https://app.example/path");
	check_bad_setting("--cors-origins", "app.example");
	check_bad_setting("--trusted-proxies", "10.0.0.0/33");
	check_bad_setting("--trusted-proxies", "proxy.example");
	check_bad_setting("--tls-key", "/nonexistent.pem");
	check_bad_setting("--tls-cert", "/nonexistent.pem");
}

/* --- the proxy chain, as a function ------------------------------------- */

/* proxy_client_address on a request from peer with the header lines
 * given as "Name", "value" pairs (NULL-terminated); the client in out. */
static int
chain(const struct proxy_list *l, const char *peer, const char *const *hdrs,
    char *out, size_t cap)
{
	struct mg_request_info ri;

	memset(&ri, 0, sizeof(ri));
	snprintf(ri.remote_addr, sizeof(ri.remote_addr), "%s", peer);
	for (; hdrs != NULL && hdrs[0] != NULL; hdrs += 2) {
		ri.http_headers[ri.num_headers].name = hdrs[0];
		ri.http_headers[ri.num_headers].value = hdrs[1];
		ri.num_headers++;
	}
	return (proxy_client_address(l, &ri, out, cap));
}

static void
check_chain(const struct proxy_list *l, const char *peer,
    const char *const *hdrs, int proxied, const char *want)
{
	char out[64];

	assert_int_equal(chain(l, peer, hdrs, out, sizeof(out)), proxied);
	assert_string_equal(out, want);
}

static void
test_the_client_is_the_right_most_untrusted_address(void **state)
{
	struct proxy_list l, none;
	char err[128];

	(void)state;
	assert_int_equal(proxy_list_parse(" 127.0.0.1 ,10.0.0.0/8, fd00::/8,",
	                     &l, err, sizeof(err)),
	    AFF_OK);
	assert_int_equal(l.n, 3);
	assert_int_equal(proxy_list_parse("", &none, err, sizeof(err)), AFF_OK);
	assert_int_equal(none.n, 0);
	assert_int_equal(proxy_list_parse("10.0.0.0/", &none, err, sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(proxy_list_parse("::1/129", &none, err, sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_true(proxy_list_contains(&l, "10.255.0.1"));
	assert_true(proxy_list_contains(&l, "::ffff:127.0.0.1")); /* v4-mapped */
	assert_true(proxy_list_contains(&l, "fd12::1"));
	assert_false(proxy_list_contains(&l, "11.0.0.1"));
	assert_false(proxy_list_contains(&l, "fe80::1"));

	/* No header: the peer, not proxied. */
	check_chain(&l, "127.0.0.1", NULL, 0, "127.0.0.1");
	{
		const char *h[] = { "X-Forwarded-For", "198.51.100.1", NULL };
		/* From an untrusted peer: proxied, header ignored. */
		check_chain(&l, "192.0.2.7", h, 1, "192.0.2.7");
		check_chain(&none, "127.0.0.1", h, 1, "127.0.0.1");
		check_chain(&l, "127.0.0.1", h, 1, "198.51.100.1");
	}
	{
		/* Left of the first untrusted hop is the client's own text. */
		const char *h[] = { "X-Forwarded-For",
			"6.6.6.6, 198.51.100.1 , 10.0.0.2", "X-Forwarded-For",
			"10.0.0.3", NULL };
		check_chain(&l, "127.0.0.1", h, 1, "198.51.100.1");
	}
	{
		/* Only trusted hops: the left-most of them. */
		const char *h[] = { "x-forwarded-for", "10.0.0.9,10.0.0.8", NULL };
		check_chain(&l, "127.0.0.1", h, 1, "10.0.0.9");
	}
	{
		/* A hop that is no address stops at the proxy that wrote it. */
		const char *h[] = { "X-Forwarded-For", "198.51.100.1, unknown",
			NULL };
		check_chain(&l, "127.0.0.1", h, 1, "127.0.0.1");
		const char *h2[] = { "X-Forwarded-For", "", NULL };
		check_chain(&l, "127.0.0.1", h2, 1, "127.0.0.1");
		const char *h3[] = { "X-Forwarded-For", "1.2.3.4\r\nX: y", NULL };
		check_chain(&l, "127.0.0.1", h3, 1, "127.0.0.1");
	}
	{
		/* Ports and brackets as proxies write them. */
		const char *h[] = { "X-Forwarded-For", "198.51.100.1:5555", NULL };
		check_chain(&l, "127.0.0.1", h, 1, "198.51.100.1");
		const char *h2[] = { "X-Forwarded-For", "[2001:db8::1]:443", NULL };
		check_chain(&l, "127.0.0.1", h2, 1, "2001:db8::1");
	}
	{
		/* Forwarded (RFC 7239), read only when there is no XFF. */
		const char *h[] = { "Forwarded",
			"for=192.0.2.60;proto=http;by=203.0.113.43, "
			"For=\"[2001:db8:cafe::17]:4711\"",
			NULL };
		check_chain(&l, "127.0.0.1", h, 1, "2001:db8:cafe::17");
		const char *h2[] = { "Forwarded", "for=_hidden", NULL };
		check_chain(&l, "127.0.0.1", h2, 1, "127.0.0.1");
		const char *h3[] = { "Forwarded", "for=192.0.2.60",
			"X-Forwarded-For", "198.51.100.9", NULL };
		check_chain(&l, "127.0.0.1", h3, 1, "198.51.100.9");
		const char *h4[] = { "Forwarded", "proto=https", NULL };
		check_chain(&l, "127.0.0.1", h4, 1, "127.0.0.1");
	}
	{
		/* X-Real-IP makes a request proxied but names nobody. */
		const char *h[] = { "X-Real-IP", "198.51.100.1", NULL };
		check_chain(&l, "127.0.0.1", h, 1, "127.0.0.1");
	}
	{
		/* A chain longer than the bridge reads: its right end counts. */
		char *many = repeat("6.6.6.6,", 200, "198.51.100.2", "");
		const char *h[] = { "X-Forwarded-For", many, NULL };
		check_chain(&l, "127.0.0.1", h, 1, "198.51.100.2");
		free(many);
	}
}

/* --- exposed: TLS and proxies ------------------------------------------ */

/* Writes a new P-256 key and a self-signed certificate for 127.0.0.1 (as
 * an IP subjectAltName) to key and cert, as PEM. */
static void
make_certificate(const char *cert, const char *key)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	FILE *f;

	assert_non_null(pkey);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"127.0.0.1", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
	    "IP:127.0.0.1");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	assert_non_null(f = fopen(key, "w"));
	assert_int_equal(
	    PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	assert_non_null(f = fopen(cert, "w"));
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

/*
 * One HTTPS request to 127.0.0.1:port, the server's certificate checked
 * against cafile and the address; max_version caps the client's TLS
 * version (0: none). Returns the HTTP status, or -1 when the handshake
 * failed; the negotiated version in *version.
 */
static int
tls_request(int port, const char *cafile, const char *request,
    int max_version, int *version)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	SSL *s;
	char buf[8192];
	size_t got = 0;
	int fd, n, status = -1;

	assert_non_null(c);
	assert_int_equal(SSL_CTX_load_verify_locations(c, cafile, NULL), 1);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	if (max_version != 0) {
		SSL_CTX_set_security_level(c, 0); /* let it try TLS 1.1 */
		SSL_CTX_set_min_proto_version(c, 0);
		SSL_CTX_set_max_proto_version(c, max_version);
	}
	assert_non_null(s = SSL_new(c));
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), "127.0.0.1");
	fd = conn_open(port);
	SSL_set_fd(s, fd);
	if (SSL_connect(s) == 1) {
		*version = SSL_version(s);
		assert_int_equal(SSL_write(s, request, (int)strlen(request)),
		    (int)strlen(request));
		while (got + 1 < sizeof(buf) &&
		    (n = SSL_read(s, buf + got, (int)(sizeof(buf) - 1 - got))) > 0)
			got += (size_t)n;
		buf[got] = '\0';
		if (strncmp(buf, "HTTP/1.1 ", 9) == 0)
			status = atoi(buf + 9);
	}
	SSL_free(s);
	SSL_CTX_free(c);
	close(fd);
	return (status);
}

static void
test_tls_in_the_bridge_counts_as_exposed(void **state)
{
	char cert[700], key[700];
	const char *args[] = { "--tls-cert", cert, "--tls-key", key, NULL };
	struct tu_http_response r;
	int version = 0;

	(void)state;
	snprintf(cert, sizeof(cert), "%s/cert.pem", F->ts.dir);
	snprintf(key, sizeof(key), "%s/key.pem", F->ts.dir);
	make_certificate(cert, key);
	bridge_up_args(args, 1);

	assert_int_equal(tls_request(F->port, cert,
	                     "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                     0, &version),
	    200);
	assert_true(version >= TLS1_2_VERSION);
	/* Exposed: the server (auth auto, on loopback) wants a key. */
	assert_int_equal(tls_request(F->port, cert,
	                     "GET /advertisers HTTP/1.1\r\nHost: x\r\n"
	                     "Connection: close\r\n\r\n",
	                     0, &version),
	    401);
	/* TLS 1.1 is refused, and plain HTTP gets no HTTP answer. */
	assert_int_equal(tls_request(F->port, cert,
	                     "GET / HTTP/1.1\r\nHost: x\r\n\r\n", TLS1_1_VERSION,
	                     &version),
	    -1);
	assert_int_equal(tu_http(F->port, "GET", "/", NULL, NULL, &r), -1);
	tu_http_response_fini(&r);
	assert_int_equal(waitpid(F->bridge, NULL, WNOHANG), 0);
}

static void
test_a_proxied_request_counts_as_exposed(void **state)
{
	static const char *const forwarded[] = {
		"X-Forwarded-For: 203.0.113.7\r\n",
		"Forwarded: for=203.0.113.7;proto=https\r\n",
		"X-Real-IP: 203.0.113.7\r\n",
	};
	struct tu_http_response r;

	(void)state;
	bridge_up(NULL);
	/* Loopback, no proxy: open (auth auto). */
	req(&r, "GET", "/advertisers", NULL, NULL, 200);
	tu_http_response_fini(&r);
	/* Through a proxy (trusted or not): the server wants a key. */
	for (size_t i = 0; i < 3; i++) {
		req(&r, "GET", "/advertisers", forwarded[i], NULL, 401);
		tu_http_response_fini(&r);
	}
	/* Health stays open. */
	req(&r, "GET", "/", forwarded[0], NULL, 200);
	tu_http_response_fini(&r);
}

/* Restarts the server with keys off and a per-address limit of 1 call a
 * second, bursts of 2. */
static void
server_with_low_limits(void)
{
	tu_server_stop(&F->ts);
	setenv("AFFILIATE_AUTH", "off", 1);
	setenv("AFFILIATE_RATE_LIMIT_ANON", "1/2", 1);
	assert_int_equal(tu_server_start(&F->ts, 0), 0);
	unsetenv("AFFILIATE_AUTH");
	unsetenv("AFFILIATE_RATE_LIMIT_ANON");
	snprintf(F->log, sizeof(F->log), "%s/bridge.log", F->ts.dir);
}

/* Three calls with the header: the first two pass, the third is 429. */
static void
check_one_bucket(const char *const hdr[3])
{
	struct tu_http_response r;
	char v[16];

	for (int i = 0; i < 3; i++) {
		req(&r, "GET", "/advertisers?limit=1", hdr[i], NULL,
		    i < 2 ? 200 : 429);
		if (i == 2)
			assert_non_null(
			    tu_http_header(&r, "Retry-After", v, sizeof(v)));
		tu_http_response_fini(&r);
	}
}

static void
test_trusted_proxies_give_each_client_its_own_bucket(void **state)
{
	static const char *const args[] = { "--trusted-proxies",
		"127.0.0.1, 10.0.0.0/8", NULL };
	struct tu_http_response r;

	(void)state;
	server_with_low_limits();
	bridge_up(args);
	{
		const char *a[3] = { "X-Forwarded-For: 198.51.100.1\r\n",
			"X-Forwarded-For: 198.51.100.1\r\n",
			"X-Forwarded-For: 198.51.100.1\r\n" };
		check_one_bucket(a);
	}
	/* Another client behind the same proxy has its own bucket. */
	req(&r, "GET", "/advertisers?limit=1",
	    "X-Forwarded-For: 198.51.100.2\r\n", NULL, 200);
	tu_http_response_fini(&r);
	/* What the client wrote left of the proxy's entry is not believed;
	 * trusted hops (10.0.0.0/8, a second proxy) are skipped. */
	{
		const char *a[3] = {
			"X-Forwarded-For: 6.6.6.6, 198.51.100.3\r\n",
			"X-Forwarded-For: 7.7.7.7\r\nX-Forwarded-For: 198.51.100.3\r\n",
			"X-Forwarded-For: 8.8.8.8, 198.51.100.3, 10.1.2.3\r\n",
		};
		check_one_bucket(a);
	}
	/* RFC 7239 Forwarded, IPv6 with a port; the server counts IPv6 by
	 * its /64. */
	{
		const char *a[3] = {
			"Forwarded: for=\"[2001:db8::1]:4711\";proto=https\r\n",
			"Forwarded: for=192.0.2.9, for=\"[2001:db8::2]\"\r\n",
			"Forwarded: for=\"[2001:db8::3]\"\r\n",
		};
		check_one_bucket(a);
	}
	req(&r, "GET", "/advertisers?limit=1",
	    "Forwarded: for=198.51.100.4\r\n", NULL, 200);
	tu_http_response_fini(&r);
	bridge_down();

	/* With no trusted proxies the headers are ignored: one bucket, the
	 * peer's (refilled first: bridge_up's own calls took from it). */
	bridge_up(NULL);
	tu_sleep_ms(2100);
	{
		const char *a[3] = { "X-Forwarded-For: 198.51.100.5\r\n",
			"X-Forwarded-For: 198.51.100.6\r\n",
			"Forwarded: for=198.51.100.7\r\n" };
		check_one_bucket(a);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_civetweb_threads_have_the_stack_the_tests_use),
		cmocka_unit_test(test_no_message_of_a_route_nests_itself_or_deeply),
		cmocka_unit_test(
		    test_deep_json_is_refused_before_jansson_on_a_civetweb_stack),
		cmocka_unit_test(test_the_client_is_the_right_most_untrusted_address),
		cmocka_unit_test_setup_teardown(
		    test_deeply_nested_bodies_are_400_and_the_bridge_lives, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_head_is_get_without_the_body, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_expect_100_continue_is_answered_before_the_body, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_cors_is_off_unless_origins_are_configured, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cors_allows_exactly_the_configured_origins, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_edge_settings_stop_the_bridge_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_tls_in_the_bridge_counts_as_exposed, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_proxied_request_counts_as_exposed, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_trusted_proxies_give_each_client_its_own_bucket, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
