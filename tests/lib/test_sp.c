/*
 * test_sp.c - the blocking SP REQ connection (aff_sp) against real NNG
 * REP sockets over TCP and IPC, and the client's direct mode that the
 * bridge uses: replies, request ids, deadlines, oversize replies, peers
 * that are not REP, servers that are gone or come back, and a request
 * written once never sent again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <nng/protocol/pair0/pair.h>
#include <nng/protocol/reqrep0/rep.h>

#include "aff_client.h"
#include "aff_err.h"
#include "aff_sp.h"
#include "aff_util.h"
#include "testutil.h"

/*
 * A REP socket answering from a thread: "sleep:N" waits N ms and answers
 * "late"; "big:N" answers N bytes of 'x'; anything else comes back as it
 * is.
 */
struct responder {
	nng_socket sock;
	pthread_t tid;
	char url[256];
};

static void *
responder_main(void *arg)
{
	struct responder *r = arg;
	nng_msg *m;

	while (nng_recvmsg(r->sock, &m, 0) == 0) {
		const char *b = nng_msg_body(m);
		size_t n = nng_msg_len(m);
		char text[64];

		snprintf(text, sizeof(text), "%.*s", (int)(n < 63 ? n : 63), b);
		if (strncmp(text, "sleep:", 6) == 0) {
			nng_msleep(atoi(text + 6));
			nng_msg_clear(m);
			nng_msg_append(m, "late", 4);
		} else if (strncmp(text, "big:", 4) == 0) {
			size_t sz = (size_t)atol(text + 4);
			nng_msg_clear(m);
			nng_msg_realloc(m, sz);
			memset(nng_msg_body(m), 'x', sz);
		}
		if (nng_sendmsg(r->sock, m, 0) != 0)
			nng_msg_free(m);
	}
	return (NULL);
}

static void
responder_start(struct responder *r, const char *url)
{
	snprintf(r->url, sizeof(r->url), "%s", url);
	assert_int_equal(nng_rep0_open(&r->sock), 0);
	assert_int_equal(nng_listen(r->sock, url, NULL, 0), 0);
	assert_int_equal(pthread_create(&r->tid, NULL, responder_main, r), 0);
}

static void
responder_stop(struct responder *r)
{
	nng_close(r->sock);
	pthread_join(r->tid, NULL);
}

static void
tcp_url(char *buf, size_t n)
{
	snprintf(buf, n, "tcp://127.0.0.1:%d", tu_free_port());
}

/* One call; returns the status and, on success, the reply as a string. */
static int
call(aff_sp_conn *c, const char *req, int timeout_ms, size_t max,
    char **out)
{
	void *rep = NULL;
	size_t len = 0;
	int rv = aff_sp_call(c, req, strlen(req), aff_mono_ms() + timeout_ms,
	    max, &rep, &len);

	*out = NULL;
	if (rv == AFF_OK) {
		*out = malloc(len + 1);
		memcpy(*out, rep, len);
		(*out)[len] = '\0';
	}
	free(rep);
	return (rv);
}

static void
check_calls(const char *url)
{
	struct responder r;
	aff_sp_conn *c;
	char req[32], *out;

	responder_start(&r, url);
	assert_int_equal(aff_sp_dial(url, aff_mono_ms() + 2000, &c), AFF_OK);
	/* Many calls on one connection, each matched to its own reply. */
	for (int i = 0; i < 200; i++) {
		snprintf(req, sizeof(req), "hello %d", i);
		assert_int_equal(call(c, req, 2000, 1 << 20, &out), AFF_OK);
		assert_string_equal(out, req);
		free(out);
	}
	/* An empty request and a reply larger than one read. */
	assert_int_equal(call(c, "", 2000, 1 << 20, &out), AFF_OK);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(call(c, "big:300000", 2000, 1 << 20, &out), AFF_OK);
	assert_int_equal(strlen(out), 300000);
	assert_int_equal(strspn(out, "x"), 300000);
	free(out);
	aff_sp_close(c);
	responder_stop(&r);
}

static void
test_calls_over_tcp_get_their_replies(void **state)
{
	char url[64];

	(void)state;
	tcp_url(url, sizeof(url));
	check_calls(url);
}

static void
test_calls_over_ipc_get_their_replies(void **state)
{
	char url[600], *dir = tu_tmpdir();

	(void)state;
	snprintf(url, sizeof(url), "ipc://%s/rpc.sock", dir);
	check_calls(url);
	tu_rmtree(dir);
	free(dir);
}

static void
test_urls_it_cannot_dial_are_invalid(void **state)
{
	const char *bad[] = { "ws://127.0.0.1:1/", "tcp://127.0.0.1",
		"tcp://:5555", "tcp://127.0.0.1:", "ipc://", "inproc://x",
		"tcp://no-such-host.invalid:5555", "" };
	aff_sp_conn *c = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(aff_sp_dial(bad[i], aff_mono_ms() + 1000, &c),
		    AFF_INVALID_ARGUMENT);
	assert_false(aff_sp_supported("ws://127.0.0.1:1/"));
	assert_true(aff_sp_supported("tcp://127.0.0.1:1"));
	assert_true(aff_sp_supported("ipc:///tmp/x"));
}

static void
test_nobody_listening_is_unavailable(void **state)
{
	char url[64];
	aff_sp_conn *c = NULL;
	int64_t t0 = aff_mono_ms();

	(void)state;
	tcp_url(url, sizeof(url));
	assert_int_equal(aff_sp_dial(url, aff_mono_ms() + 2000, &c),
	    AFF_UNAVAILABLE);
	assert_true(aff_mono_ms() - t0 < 1000);
	assert_int_equal(
	    aff_sp_dial("ipc:///nonexistent/affiliate.sock", aff_mono_ms() + 2000,
	        &c),
	    AFF_UNAVAILABLE);
}

/* A responder on a free loopback TCP port (its URL in url), and a
 * connection to it. */
static aff_sp_conn *
tcp_responder(struct responder *r, char *url, size_t cap)
{
	aff_sp_conn *c;

	tcp_url(url, cap);
	responder_start(r, url);
	assert_int_equal(aff_sp_dial(url, aff_mono_ms() + 2000, &c), AFF_OK);
	return (c);
}

static void
test_a_late_reply_is_deadline_exceeded(void **state)
{
	struct responder r;
	aff_sp_conn *c;
	char url[64], *out;

	(void)state;
	c = tcp_responder(&r, url, sizeof(url));
	assert_int_equal(call(c, "sleep:400", 100, 1 << 20, &out),
	    AFF_DEADLINE_EXCEEDED);
	assert_null(out);
	aff_sp_close(c);
	/* A new connection is not confused by the late reply. */
	assert_int_equal(aff_sp_dial(url, aff_mono_ms() + 2000, &c), AFF_OK);
	assert_int_equal(call(c, "after", 2000, 1 << 20, &out), AFF_OK);
	assert_string_equal(out, "after");
	free(out);
	aff_sp_close(c);
	responder_stop(&r);
}

static void
test_a_reply_over_the_limit_is_refused(void **state)
{
	struct responder r;
	aff_sp_conn *c;
	char url[64], *out;

	(void)state;
	c = tcp_responder(&r, url, sizeof(url));
	assert_int_equal(call(c, "big:5000", 2000, 4096, &out),
	    AFF_RESOURCE_EXHAUSTED);
	aff_sp_close(c);
	responder_stop(&r);
}

static void
test_a_peer_that_is_not_rep_is_refused(void **state)
{
	nng_socket pair;
	aff_sp_conn *c = NULL;
	char url[64];

	(void)state;
	tcp_url(url, sizeof(url));
	assert_int_equal(nng_pair0_open(&pair), 0);
	assert_int_equal(nng_listen(pair, url, NULL, 0), 0);
	assert_int_equal(aff_sp_dial(url, aff_mono_ms() + 2000, &c),
	    AFF_UNAVAILABLE);
	/* NNG 1.5.2 leaks the pipe it is still refusing (a REQ peer on a
	 * PAIR socket) when the socket closes meanwhile (seen under make
	 * asan in about 1 run in 10): let the refusal finish first. */
	nng_msleep(200);
	nng_close(pair);
}

/* A plain TCP listener that answers anything with garbage. */
static void *
garbage_main(void *arg)
{
	int lfd = *(int *)arg, fd;
	const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";

	if ((fd = accept(lfd, NULL, NULL)) >= 0) {
		(void)!write(fd, junk, sizeof(junk) - 1);
		nng_msleep(200);
		close(fd);
	}
	return (NULL);
}

static void
test_a_peer_that_speaks_no_sp_is_refused(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	aff_sp_conn *c = NULL;
	pthread_t tid;
	char url[64];
	int lfd;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
	pthread_create(&tid, NULL, garbage_main, &lfd);
	assert_int_equal(aff_sp_dial(url, aff_mono_ms() + 2000, &c),
	    AFF_UNAVAILABLE);
	pthread_join(tid, NULL);
	close(lfd);
}

/* The client's direct mode: a server that restarts between two calls is
 * reached again on the second call without an error, and a server that is
 * gone answers UNAVAILABLE within the grace, not the deadline. */
static void
test_direct_client_survives_a_server_restart(void **state)
{
	struct aff_client_opts co = { 0 };
	struct aff_call_result res;
	struct responder r;
	aff_client *c;
	char url[64];
	int64_t t0;

	(void)state;
	tcp_url(url, sizeof(url));
	co.url = url;
	co.direct = 1;
	co.timeout_ms = 3000;
	assert_int_equal(aff_client_open(&c, &co), AFF_OK);
	responder_start(&r, url);
	/* The responder echoes the envelope: not a ReplyEnvelope with
	 * code 0, but a parsed reply of some code all the same. */
	assert_int_not_equal(aff_client_invoke(c, "s", "m", NULL, 0, NULL, &res),
	    AFF_UNAVAILABLE);
	aff_call_result_fini(&res);
	responder_stop(&r);
	t0 = aff_mono_ms();
	assert_int_equal(aff_client_invoke(c, "s", "m", NULL, 0, NULL, &res),
	    AFF_UNAVAILABLE);
	assert_true(aff_mono_ms() - t0 < 1000);
	aff_call_result_fini(&res);
	responder_start(&r, url);
	assert_int_not_equal(aff_client_invoke(c, "s", "m", NULL, 0, NULL, &res),
	    AFF_UNAVAILABLE);
	aff_call_result_fini(&res);
	/* Restarted between two calls: the kept connection is dead, the
	 * request goes again on a new one. */
	responder_stop(&r);
	responder_start(&r, url);
	assert_int_not_equal(aff_client_invoke(c, "s", "m", NULL, 0, NULL, &res),
	    AFF_UNAVAILABLE);
	aff_call_result_fini(&res);
	responder_stop(&r);
	aff_client_close(c);
	co.url = "ws://127.0.0.1:1/";
	assert_int_equal(aff_client_open(&c, &co), AFF_INVALID_ARGUMENT);
}

/*
 * A REP socket that reads each request, counts it, and closes the
 * connection it came on without answering: a server that broke (or
 * stopped) after the request was written.
 */
struct closer {
	nng_socket sock;
	pthread_t tid;
	atomic_int got;
};

static void *
closer_main(void *arg)
{
	struct closer *k = arg;
	nng_msg *m;

	while (nng_recvmsg(k->sock, &m, 0) == 0) {
		nng_pipe p = nng_msg_get_pipe(m);
		int answer = memmem(nng_msg_body(m), nng_msg_len(m), "close-me",
		    8) == NULL;

		if (answer) {
			if (nng_sendmsg(k->sock, m, 0) != 0)
				nng_msg_free(m);
			continue;
		}
		atomic_fetch_add(&k->got, 1);
		nng_msg_free(m);
		nng_pipe_close(p);
	}
	return (NULL);
}

/* The SP client never sends a request twice once it was written: the
 * server read it and then the connection broke, so it may have applied
 * it. The call fails UNAVAILABLE, and the server saw it once. */
static void
test_a_request_written_is_not_sent_again_when_the_connection_breaks(
    void **state)
{
	struct aff_client_opts co = { 0 };
	struct aff_call_result res;
	struct closer k;
	aff_client *c;
	char url[64];

	(void)state;
	tcp_url(url, sizeof(url));
	atomic_init(&k.got, 0);
	assert_int_equal(nng_rep0_open(&k.sock), 0);
	assert_int_equal(nng_listen(k.sock, url, NULL, 0), 0);
	assert_int_equal(pthread_create(&k.tid, NULL, closer_main, &k), 0);
	co.url = url;
	co.direct = 1;
	co.timeout_ms = 3000;
	assert_int_equal(aff_client_open(&c, &co), AFF_OK);
	/* A first call makes the connection that the second one reuses. */
	assert_int_not_equal(aff_client_invoke(c, "s", "m", NULL, 0, NULL, &res),
	    AFF_UNAVAILABLE);
	aff_call_result_fini(&res);
	assert_int_equal(
	    aff_client_invoke(c, "s", "close-me", NULL, 0, NULL, &res),
	    AFF_UNAVAILABLE);
	aff_call_result_fini(&res);
	tu_sleep_ms(300); /* a resend would have arrived by now */
	assert_int_equal(atomic_load(&k.got), 1);
	/* The next call goes on a new connection, once. */
	assert_int_equal(
	    aff_client_invoke(c, "s", "close-me", NULL, 0, NULL, &res),
	    AFF_UNAVAILABLE);
	aff_call_result_fini(&res);
	tu_sleep_ms(300);
	assert_int_equal(atomic_load(&k.got), 2);
	aff_client_close(c);
	nng_close(k.sock);
	pthread_join(k.tid, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_calls_over_tcp_get_their_replies),
		cmocka_unit_test(test_calls_over_ipc_get_their_replies),
		cmocka_unit_test(test_urls_it_cannot_dial_are_invalid),
		cmocka_unit_test(test_nobody_listening_is_unavailable),
		cmocka_unit_test(test_a_late_reply_is_deadline_exceeded),
		cmocka_unit_test(test_a_reply_over_the_limit_is_refused),
		cmocka_unit_test(test_a_peer_that_is_not_rep_is_refused),
		cmocka_unit_test(test_a_peer_that_speaks_no_sp_is_refused),
		cmocka_unit_test(test_direct_client_survives_a_server_restart),
		cmocka_unit_test(
		    test_a_request_written_is_not_sent_again_when_the_connection_breaks),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
