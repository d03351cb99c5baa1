/*
 * test_edge_tls.c - the bridge's edge settings, over real sockets against
 * the real affiliate-bridge binary (in front of a real affiliate-server,
 * in-process on a real NNG socket): CORS, bad settings, TLS made with a
 * certificate the test makes, and forwarded client addresses behind
 * trusted proxies (the chain as a function, then rate-limit buckets).
 * Nesting, HEAD and 100-continue are in test_edge_http.c; the server and
 * bridge both start in edge_util.c.
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
	    "GET, HEAD, PATCH, OPTIONS"); /* PATCH: admins */
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
		cmocka_unit_test(test_the_client_is_the_right_most_untrusted_address),
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
