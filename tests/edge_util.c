/*
 * edge_util.c - the server and bridge binary test_edge_http and
 * test_edge_tls start, and the requests both make (see edge_util.h).
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

struct edge *F;

/* Settings of the bridge and server the tests set themselves. */
static const char *const env_names[] = {
	"AFFILIATE_BRIDGE_LISTEN", "AFFILIATE_URL", "AFFILIATE_BRIDGE_THREADS",
	"AFFILIATE_MAX_BODY", "AFFILIATE_BRIDGE_CORS_ORIGINS",
	"AFFILIATE_BRIDGE_TLS_CERT", "AFFILIATE_BRIDGE_TLS_KEY",
	"AFFILIATE_BRIDGE_TRUSTED_PROXIES", "AFFILIATE_AUTH",
	"AFFILIATE_RATE_LIMIT", "AFFILIATE_RATE_LIMIT_ANON",
	"AFFILIATE_TRUSTED_BRIDGES",
};

int
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

void
bridge_down(void)
{
	if (F->bridge > 0)
		tu_kill(F->bridge, SIGTERM);
	F->bridge = 0;
}

int
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
void
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

void
bridge_up(const char *const *extra)
{
	bridge_up_args(extra, 0);
}


/* Makes a request and checks its status; the response is in r. */
void
req(struct tu_http_response *r, const char *method, const char *target,
    const char *headers, const char *body, int want)
{
	assert_int_equal(tu_http(F->port, method, target, headers, body, r), 0);
	if (r->status != want)
		fprintf(stderr, "%s %s: %d %s\n%s\n", method, target, r->status,
		    r->body, r->head);
	assert_int_equal(r->status, want);
}

char *
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

int
conn_open(int port)
{
	int fd = tu_connect(port, 0, 0);

	assert_true(fd >= 0);
	return (fd);
}
