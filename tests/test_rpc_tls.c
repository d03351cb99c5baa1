/*
 * test_rpc_tls.c - the RPC address on tls+tcp://: a real affiliate-server
 * listening there with client certificates required answers the CLI,
 * aff_client and affiliate-bridge when they show a certificate from its
 * CA, and nobody else (no certificate, one from another CA, plain TCP to
 * the TLS port). Certificates are made with the openssl CLI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "aff_err.h"
#include "aff_tls.h"
#include "aff_util.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "testutil.h"

#define HEALTH (&affiliate__v1__health_service__descriptor)
#define ADVERTISERS (&affiliate__v1__advertiser_service__descriptor)

struct fx {
	char *dir;
	char url[64];   /* tls+tcp://127.0.0.1:P */
	char plain[64]; /* tcp://127.0.0.1:P: the same port without TLS */
	char log[700];
	char db[600];   /* the server's database (testutil_db.h) */
	pid_t server;
	pid_t second; /* a second server, while a test runs one */
};

/* dir/name */
static const char *
path(const struct fx *f, const char *name)
{
	static char buf[4][700];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->dir, name);
	return (buf[i]);
}

/* Certificate files: "client" (signed by the CA), "stranger" (another
 * CA's), with the CA's own. */
static struct aff_tls_files
files(const struct fx *f, const char *who)
{
	char crt[64], key[64];

	snprintf(crt, sizeof(crt), "%s.crt", who);
	snprintf(key, sizeof(key), "%s.key", who);
	return ((struct aff_tls_files){ path(f, crt), path(f, key),
	    path(f, "ca.crt") });
}

/* Opens a client on url with tls (NULL: none), dialling in the
 * background; AFF_OK or the open's error. */
static int
client_open(const char *url, const struct aff_tls_files *tls, int timeout_ms,
    aff_client **c)
{
	struct aff_client_opts co = { 0 };

	co.url = url;
	co.tls = tls;
	co.timeout_ms = timeout_ms;
	*c = NULL;
	return (aff_client_open(c, &co));
}

/* One health check on c: its status; *ms how long it took. */
static int
health(aff_client *c, int64_t *ms)
{
	Affiliate__V1__HealthCheckRequest req =
	    AFFILIATE__V1__HEALTH_CHECK_REQUEST__INIT;
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	int64_t t0 = aff_mono_ms();
	int rv;

	rv = aff_client_call(c, HEALTH, "Check", (ProtobufCMessage *)&req, NULL,
	    &resp, &res);
	if (ms != NULL)
		*ms = aff_mono_ms() - t0;
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	aff_call_result_fini(&res);
	return (rv);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct aff_tls_files tls;
	char cmd[4096], port[16];
	aff_client *c = NULL;
	const char *args[] = { "--listen", f->url, "--data-dir", NULL, "--redis",
		"off", "--jobs", NULL, "--results", NULL, "--log-level", "info",
		"--tls-cert", NULL, "--tls-key", NULL, "--tls-ca", NULL, "--db",
		NULL, NULL };
	char jobs[700], results[700];

	assert_non_null(f);
	assert_non_null(f->dir = tu_tmpdir());
	snprintf(port, sizeof(port), "%d", tu_free_port());
	snprintf(f->url, sizeof(f->url), "tls+tcp://127.0.0.1:%s", port);
	snprintf(f->plain, sizeof(f->plain), "tcp://127.0.0.1:%s", port);
	snprintf(f->log, sizeof(f->log), "%s/server.log", f->dir);
	/* A CA and another CA; the server's certificate (for 127.0.0.1), a
	 * client's from the CA and a stranger's from the other: EC keys
	 * (fast), one day. The commands are the README's (Security). */
	snprintf(cmd, sizeof(cmd),
	    "cd %s && exec >openssl.log 2>&1 && for n in ca other; do openssl req"
	    " -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
	    " -keyout $n.key -out $n.crt -subj /CN=test-$n -days 1; done &&"
	    " for n in server client stranger; do openssl req -newkey ec"
	    " -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key"
	    " -out $n.csr -subj /CN=$n; done &&"
	    " printf 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\\n' >san &&"
	    " openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key"
	    " -CAcreateserial -out server.crt -days 1 -extfile san &&"
	    " openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key"
	    " -CAcreateserial -out client.crt -days 1 &&"
	    " openssl x509 -req -in stranger.csr -CA other.crt -CAkey other.key"
	    " -CAcreateserial -out stranger.crt -days 1",
	    f->dir);
	assert_int_equal(system(cmd), 0);
	snprintf(jobs, sizeof(jobs), "ipc://%s/jobs.sock", f->dir);
	snprintf(results, sizeof(results), "ipc://%s/results.sock", f->dir);
	args[3] = f->dir;
	args[7] = jobs;
	args[9] = results;
	args[13] = path(f, "server.crt");
	args[15] = path(f, "server.key");
	args[17] = path(f, "ca.crt");
	assert_int_equal(tu_db_new(f->dir, f->db, sizeof(f->db)), 0);
	args[19] = f->db;
	f->server = tu_spawn("affiliate-server", args, f->log);
	assert_true(f->server > 0);
	/* It binds once its database is ready. */
	tls = files(f, "client");
	for (int i = 0; i < 100; i++) {
		struct aff_client_opts co = { .url = f->url, .tls = &tls,
			.wait_connected = 1, .timeout_ms = 2000 };
		if (aff_client_open(&c, &co) == AFF_OK)
			break;
		c = NULL;
		assert_int_equal(waitpid(f->server, NULL, WNOHANG), 0);
		tu_sleep_ms(100);
	}
	assert_non_null(c);
	aff_client_close(c);
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tu_kill(f->server, SIGTERM);
	if (f->second > 0)
		tu_kill(f->second, SIGKILL);
	tu_db_free(f->db);
	if (getenv("AFFILIATE_TEST_KEEP") == NULL)
		tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return (0);
}

static void
test_a_client_with_a_certificate_from_the_ca_is_answered_over_tls_tcp(
    void **state)
{
	struct fx *f = *state;
	struct aff_tls_files tls = files(f, "client");
	Affiliate__V1__ListAdvertisersRequest req =
	    AFFILIATE__V1__LIST_ADVERTISERS_REQUEST__INIT;
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	struct aff_client_opts co = { .url = f->url, .tls = &tls,
		.wait_connected = 1, .timeout_ms = 5000 };
	aff_client *c = NULL;

	/* Waits for the handshake: a call finds no connection after 100 ms
	 * and fails fast (UNAVAILABLE), and under ASan on a loaded host the
	 * TLS handshake took longer than that. */
	assert_int_equal(aff_client_open(&c, &co), AFF_OK);
	assert_int_equal(health(c, NULL), AFF_OK);
	/* A client certificate is not an API key: tls+tcp:// is an address
	 * other hosts reach, so protected mode requires keys there. */
	assert_int_equal(aff_client_call(c, ADVERTISERS, "ListAdvertisers",
	                     (ProtobufCMessage *)&req, NULL, &resp, &res),
	    AFF_UNAUTHENTICATED);
	assert_null(resp);
	aff_call_result_fini(&res);
	aff_client_close(c);
}

/* Runs the CLI with the environment prefix env; its exit status, its
 * stdout in out. */
static int
cli(const struct fx *f, const char *env, const char *url, char *out,
    size_t cap)
{
	char cmd[4096];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "%s %s/affiliate --url %s --timeout 2000 health"
	                           " 2>>%s/cli.err",
	    env, getenv("AFFILIATE_BIN_DIR"), url, f->dir);
	assert_non_null(p = popen(cmd, "r"));
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void
test_the_cli_with_affiliate_tls_files_is_answered_over_tls_tcp(void **state)
{
	struct fx *f = *state;
	char env[2400], out[4096];
	int64_t t0;

	snprintf(env, sizeof(env),
	    "AFFILIATE_TLS_CERT=%s AFFILIATE_TLS_KEY=%s AFFILIATE_TLS_CA=%s",
	    path(f, "client.crt"), path(f, "client.key"), path(f, "ca.crt"));
	assert_int_equal(cli(f, env, f->url, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"status\": \"SERVING\""));
	assert_non_null(strstr(out, "\"store\": \"SERVING\""));
	/* The stranger's certificate: refused, within the timeout. */
	snprintf(env, sizeof(env),
	    "AFFILIATE_TLS_CERT=%s AFFILIATE_TLS_KEY=%s AFFILIATE_TLS_CA=%s",
	    path(f, "stranger.crt"), path(f, "stranger.key"), path(f, "ca.crt"));
	t0 = aff_mono_ms();
	assert_int_equal(cli(f, env, f->url, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "\"code\": \"UNAVAILABLE\""));
	assert_true(aff_mono_ms() - t0 < 5000);
	/* No files at all: a usage problem said before anything is sent. */
	assert_int_equal(cli(f, "", f->url, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "\"code\": \"INVALID_ARGUMENT\""));
}

static void
test_a_certificate_from_another_ca_or_plain_tcp_gets_no_answer(void **state)
{
	struct fx *f = *state;
	struct aff_tls_files stranger = files(f, "stranger");
	struct aff_client_opts co = { 0 };
	int64_t ms;
	aff_client *c;
	int rv;

	/* Dialled in the background: the calls find no connection. */
	assert_int_equal(client_open(f->url, &stranger, 1000, &c), AFF_OK);
	tu_sleep_ms(300); /* time for a handshake, had it succeeded */
	rv = health(c, &ms);
	assert_true(rv == AFF_UNAVAILABLE || rv == AFF_DEADLINE_EXCEEDED);
	assert_true(ms < 3000);
	aff_client_close(c);
	/* Waiting for the connection: the dial itself fails. */
	co.url = f->url;
	co.tls = &stranger;
	co.wait_connected = 1;
	assert_int_equal(aff_client_open(&c, &co), AFF_UNAVAILABLE);
	/* Plain SP over TCP to the TLS port. */
	assert_int_equal(client_open(f->plain, NULL, 1000, &c), AFF_OK);
	tu_sleep_ms(300);
	rv = health(c, &ms);
	assert_true(rv == AFF_UNAVAILABLE || rv == AFF_DEADLINE_EXCEEDED);
	assert_true(ms < 3000);
	aff_client_close(c);
	/* TLS files with a plain URL: refused before dialling. */
	{
		struct aff_tls_files mine = files(f, "client");
		assert_int_equal(client_open(f->plain, &mine, 1000, &c),
		    AFF_INVALID_ARGUMENT);
	}
}

/* Whether a health request sent on a REQ socket dialled to url with cfg
 * comes back within ms. */
static int
raw_answered(const char *url, nng_tls_config *cfg, int ms)
{
	Affiliate__V1__RequestEnvelope env = AFFILIATE__V1__REQUEST_ENVELOPE__INIT;
	uint8_t buf[256];
	nng_socket req;
	nng_dialer d;
	nng_msg *m;
	size_t len;
	int rv;

	env.service = (char *)HEALTH->name;
	env.method = "Check";
	env.request_id = "raw-tls-1";
	env.timeout_ms = ms;
	len = affiliate__v1__request_envelope__get_packed_size(&env);
	assert_true(len < sizeof(buf));
	affiliate__v1__request_envelope__pack(&env, buf);
	assert_int_equal(nng_req0_open(&req), 0);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, ms);
	nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, ms);
	assert_int_equal(nng_dialer_create(&d, req, url), 0);
	assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg), 0);
	assert_int_equal(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
	rv = nng_send(req, buf, len, 0);
	if (rv == 0 && (rv = nng_recvmsg(req, &m, 0)) == 0)
		nng_msg_free(m);
	nng_close(req);
	return (rv == 0);
}

/* A client TLS configuration trusting the CA, with who's certificate (or
 * none when who is NULL). */
static nng_tls_config *
raw_config(const struct fx *f, const char *who)
{
	nng_tls_config *c;

	assert_int_equal(nng_tls_config_alloc(&c, NNG_TLS_MODE_CLIENT), 0);
	assert_int_equal(nng_tls_config_ca_file(c, path(f, "ca.crt")), 0);
	assert_int_equal(nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED),
	    0);
	if (who != NULL) {
		char crt[64], *pem[2];
		for (int i = 0; i < 2; i++) {
			FILE *fp;
			size_t n;
			snprintf(crt, sizeof(crt), "%s.%s", who, i ? "key" : "crt");
			assert_non_null(fp = fopen(path(f, crt), "r"));
			assert_non_null(pem[i] = calloc(1, 8192));
			n = fread(pem[i], 1, 8191, fp);
			fclose(fp);
			assert_true(n > 0);
		}
		assert_int_equal(nng_tls_config_own_cert(c, pem[0], pem[1], NULL), 0);
		free(pem[0]);
		free(pem[1]);
	}
	return (c);
}

static void
test_a_tls_client_without_a_certificate_gets_no_answer(void **state)
{
	struct fx *f = *state;
	nng_tls_config *c;

	/* The same request with the CA's client certificate is answered:
	 * what fails below is the missing certificate, not the request. */
	c = raw_config(f, "client");
	assert_true(raw_answered(f->url, c, 3000));
	nng_tls_config_free(c);
	c = raw_config(f, NULL);
	assert_false(raw_answered(f->url, c, 1000));
	nng_tls_config_free(c);
}

/* Starts affiliate-bridge in front of the server with extra arguments;
 * its pid and HTTP port. */
static pid_t
bridge_spawn(const struct fx *f, const char *who, int *port, char *log,
    size_t cap)
{
	char listen[64];
	const char *args[] = { "--listen", listen, "--server", f->url,
		"--threads", "4", "--timeout", "1000", "--server-tls-cert", NULL,
		"--server-tls-key", NULL, "--server-tls-ca", NULL, NULL };
	struct aff_tls_files tls = files(f, who);

	*port = tu_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", *port);
	args[9] = tls.cert;
	args[11] = tls.key;
	args[13] = tls.ca;
	snprintf(log, cap, "%s/bridge-%s.log", f->dir, who);
	return (tu_spawn("affiliate-bridge", args, log));
}

/* GET / up to tries times, 50 ms apart, until it answers want; the last
 * status (0: no answer). 503 comes while the bridge is still connecting. */
static int
bridge_get_root(int port, int want, int tries)
{
	struct tu_http_response r;
	int status = 0;

	for (int i = 0; i < tries && status != want; i++) {
		if (i > 0)
			tu_sleep_ms(50);
		memset(&r, 0, sizeof(r));
		if (tu_http(port, "GET", "/", NULL, NULL, &r) != 0)
			continue;
		status = r.status;
		if (status == 200)
			assert_string_equal(r.body, "{\"status\":\"ok\"}");
		tu_http_response_fini(&r);
	}
	return (status);
}

static void
test_a_bridge_with_its_client_certificate_answers_over_tls_tcp(void **state)
{
	struct fx *f = *state;
	char log[700];
	pid_t b;
	int port;

	assert_true((b = bridge_spawn(f, "client", &port, log, sizeof(log))) > 0);
	assert_int_equal(bridge_get_root(port, 200, 200), 200);
	assert_int_equal(waitpid(b, NULL, WNOHANG), 0);
	tu_kill(b, SIGTERM);
	/* The stranger's bridge runs, but the server never answers it. */
	assert_true((b = bridge_spawn(f, "stranger", &port, log, sizeof(log))) > 0);
	/* Answering at all (503) means it is up; then 8 more tries (each
	 * waits for a connection that never comes) never get a 200. */
	assert_int_equal(bridge_get_root(port, 503, 200), 503);
	assert_int_equal(bridge_get_root(port, 200, 8), 503);
	assert_int_equal(waitpid(b, NULL, WNOHANG), 0);
	tu_kill(b, SIGTERM);
}

/* How many HealthService/Check calls the log at path shows. */
static int
checks_logged(const char *path)
{
	char *text = tu_read_file(path), *p;
	int n = 0;

	if (text == NULL) /* not made yet: a server just spawned */
		return (0);
	for (p = text; (p = strstr(p, "HealthService/Check")) != NULL; p++)
		n++;
	free(text);
	return (n);
}

/*
 * Several servers (README, Several servers): one client, the same TLS
 * files for both tls+tcp:// URLs; calls alternate between the servers
 * and go on from one after the other is killed.
 */
static void
test_a_client_of_two_tls_servers_uses_both_and_outlives_one(void **state)
{
	struct fx *f = *state;
	struct aff_tls_files tls;
	char url2[64], list[160], dir2[700], jobs[700], results[700], log2[700];
	char crt[700], key[700], ca[700];
	const char *args[] = { "--listen", url2, "--data-dir", dir2, "--redis",
		"off", "--jobs", jobs, "--results", results, "--log-level", "info",
		"--tls-cert", NULL, "--tls-key", NULL, "--tls-ca", NULL, NULL, NULL,
		NULL };
	struct aff_client_opts co = { .tls = &tls, .timeout_ms = 2000 };
	aff_client *c = NULL;
	int a0, b0;

	snprintf(url2, sizeof(url2), "tls+tcp://127.0.0.1:%d", tu_free_port());
	snprintf(dir2, sizeof(dir2), "%s", path(f, "second"));
	snprintf(jobs, sizeof(jobs), "ipc://%s/jobs2.sock", f->dir);
	snprintf(results, sizeof(results), "ipc://%s/results2.sock", f->dir);
	snprintf(log2, sizeof(log2), "%s", path(f, "server2.log"));
	/* path() keeps four answers: copies, so files() below does not
	 * overwrite them. */
	snprintf(crt, sizeof(crt), "%s", path(f, "server.crt"));
	snprintf(key, sizeof(key), "%s", path(f, "server.key"));
	snprintf(ca, sizeof(ca), "%s", path(f, "ca.crt"));
	args[13] = crt;
	args[15] = key;
	args[17] = ca;
	/* On PostgreSQL both serve the one database, as servers of a
	 * cluster do; on SQLite each has its own file (in its folder). */
	if (tu_backend_pg()) {
		args[18] = "--db";
		args[19] = f->db;
	}
	f->second = tu_spawn("affiliate-server", args, log2);
	tls = files(f, "client");
	assert_true(f->second > 0);
	snprintf(list, sizeof(list), "%s,%s", f->url, url2);
	co.url = list;
	assert_int_equal(aff_client_open(&c, &co), AFF_OK);
	/* Both connected (the second binds once its database is ready). */
	for (int i = 0; i < 200 && checks_logged(log2) == 0; i++) {
		(void)health(c, NULL);
		tu_sleep_ms(50);
	}
	assert_true(checks_logged(log2) > 0);
	tu_sleep_ms(200);
	a0 = checks_logged(f->log);
	b0 = checks_logged(log2);
	for (int i = 0; i < 20; i++)
		assert_int_equal(health(c, NULL), AFF_OK);
	tu_sleep_ms(100); /* the log lines are written */
	assert_int_equal(checks_logged(f->log) - a0, 10);
	assert_int_equal(checks_logged(log2) - b0, 10);
	tu_kill(f->second, SIGKILL);
	f->second = 0;
	tu_sleep_ms(100); /* NNG sees the connection drop */
	for (int i = 0; i < 10; i++) {
		int64_t ms;
		assert_int_equal(health(c, &ms), AFF_OK);
		assert_true(ms < 1000);
	}
	aff_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_a_client_with_a_certificate_from_the_ca_is_answered_over_tls_tcp),
		cmocka_unit_test(
		    test_the_cli_with_affiliate_tls_files_is_answered_over_tls_tcp),
		cmocka_unit_test(
		    test_a_certificate_from_another_ca_or_plain_tcp_gets_no_answer),
		cmocka_unit_test(test_a_tls_client_without_a_certificate_gets_no_answer),
		cmocka_unit_test(
		    test_a_client_of_two_tls_servers_uses_both_and_outlives_one),
		cmocka_unit_test(
		    test_a_bridge_with_its_client_certificate_answers_over_tls_tcp),
	};

	return (cmocka_run_group_tests(tests, setup, teardown));
}
