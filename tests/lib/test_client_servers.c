/*
 * test_client_servers.c - the RPC client (aff_client) with several server
 * URLs, in both of its modes (the bridge's per-thread SP connections and
 * NNG REQ sockets), against real NNG REP sockets over TCP that answer as
 * a server does and can be told to fail as one does: calls spread
 * round-robin, a server that says it is stopping is skipped and its calls
 * go on, a server gone is skipped at once, a call cut off after it was
 * sent goes on only when it is safe to run twice, and the URL list's
 * rules. (The same through the real binaries: tests/multiurl_test.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "aff_client.h"
#include "aff_err.h"
#include "aff_util.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "testutil.h"

enum srv_mode {
	SRV_ANSWER,   /* OK, the message its name */
	SRV_STOPPING, /* UNAVAILABLE, as a server that is stopping */
	SRV_CUT,      /* closes the connection the request came on */
};

/* A REP socket answering ReplyEnvelopes from a thread, counting the
 * calls it receives per method. */
struct srv {
	nng_socket sock;
	pthread_t tid;
	char url[64];
	char name[8];
	atomic_int mode;
	atomic_int calls, applies;
};

static void
srv_reply(struct srv *s, nng_msg *m, int code, const char *message,
    const char *rid)
{
	Affiliate__V1__ReplyEnvelope rep = AFFILIATE__V1__REPLY_ENVELOPE__INIT;
	size_t len;

	rep.code = code;
	rep.message = (char *)message;
	rep.request_id = (char *)rid;
	len = affiliate__v1__reply_envelope__get_packed_size(&rep);
	nng_msg_clear(m);
	nng_msg_realloc(m, len);
	affiliate__v1__reply_envelope__pack(&rep, nng_msg_body(m));
	if (nng_sendmsg(s->sock, m, 0) != 0)
		nng_msg_free(m);
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	nng_msg *m;

	while (nng_recvmsg(s->sock, &m, 0) == 0) {
		Affiliate__V1__RequestEnvelope *req =
		    affiliate__v1__request_envelope__unpack(
		        NULL, nng_msg_len(m), nng_msg_body(m));
		char rid[80];

		assert_non_null(req);
		atomic_fetch_add(&s->calls, 1);
		if (strcmp(req->method, "Apply") == 0)
			atomic_fetch_add(&s->applies, 1);
		snprintf(rid, sizeof(rid), "%s", req->request_id);
		affiliate__v1__request_envelope__free_unpacked(req, NULL);
		switch (atomic_load(&s->mode)) {
		case SRV_STOPPING:
			srv_reply(s, m, AFF_UNAVAILABLE,
			    "affiliate-server is stopping; the call was not run "
			    "(send it again, to this server once it is back or to "
			    "another)",
			    rid);
			break;
		case SRV_CUT:
			nng_pipe_close(nng_msg_get_pipe(m));
			nng_msg_free(m);
			break;
		default:
			srv_reply(s, m, AFF_OK, s->name, rid);
		}
	}
	return (NULL);
}

static void
srv_start(struct srv *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%d", tu_free_port());
	assert_int_equal(nng_rep0_open(&s->sock), 0);
	assert_int_equal(nng_listen(s->sock, s->url, NULL, 0), 0);
	assert_int_equal(pthread_create(&s->tid, NULL, srv_main, s), 0);
}

static void
srv_stop(struct srv *s)
{
	nng_close(s->sock);
	pthread_join(s->tid, NULL);
}

struct fixture {
	struct srv a, b;
	aff_client *c;
};

/* Two servers and a client of both, direct or over NNG sockets. */
static struct fixture *
fixture_new(int direct)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct aff_client_opts co = { 0 };
	char urls[160];

	assert_non_null(f);
	srv_start(&f->a, "A");
	srv_start(&f->b, "B");
	snprintf(urls, sizeof(urls), "%s,%s", f->a.url, f->b.url);
	co.url = urls;
	co.timeout_ms = 2000;
	co.direct = direct;
	assert_int_equal(aff_client_open(&f->c, &co), AFF_OK);
	return (f);
}

static void
fixture_free(struct fixture *f)
{
	aff_client_close(f->c);
	srv_stop(&f->a);
	srv_stop(&f->b);
	free(f);
}

/* One call; returns its status, the answering server's name in who. */
static int
call(struct fixture *f, const char *method, int idempotent, char *who,
    size_t n)
{
	struct aff_call_opts opts = { 0 };
	struct aff_call_result res;
	int rv;

	opts.idempotent = idempotent;
	rv = aff_client_invoke(
	    f->c, "affiliate.v1.AnyService", method, NULL, 0, &opts, &res);
	snprintf(who, n, "%s", rv == AFF_OK ? res.message : "");
	aff_call_result_fini(&res);
	return (rv);
}

/* Waits until both servers have a connection from the client (NNG mode
 * dials in the background). */
static void
warm_up(struct fixture *f)
{
	char who[8];

	for (int i = 0; i < 200 &&
	     (atomic_load(&f->a.calls) == 0 || atomic_load(&f->b.calls) == 0);
	     i++) {
		(void)call(f, "GetWarm", 0, who, sizeof(who));
		tu_sleep_ms(5);
	}
	assert_true(atomic_load(&f->a.calls) > 0);
	assert_true(atomic_load(&f->b.calls) > 0);
}

static void
calls_alternate_between_the_servers(int direct)
{
	struct fixture *f = fixture_new(direct);
	char who[8];
	int a0, b0;

	warm_up(f);
	a0 = atomic_load(&f->a.calls);
	b0 = atomic_load(&f->b.calls);
	for (int i = 0; i < 20; i++)
		assert_int_equal(call(f, "ListThings", 0, who, sizeof(who)), AFF_OK);
	assert_int_equal(atomic_load(&f->a.calls) - a0, 10);
	assert_int_equal(atomic_load(&f->b.calls) - b0, 10);
	fixture_free(f);
}

static void
test_calls_alternate_between_the_servers_direct(void **state)
{
	(void)state;
	calls_alternate_between_the_servers(1);
}

static void
test_calls_alternate_between_the_servers_nng(void **state)
{
	(void)state;
	calls_alternate_between_the_servers(0);
}

static void
a_stopping_server_is_skipped(int direct)
{
	struct fixture *f = fixture_new(direct);
	char who[8];
	int a0;

	warm_up(f);
	atomic_store(&f->a.mode, SRV_STOPPING);
	a0 = atomic_load(&f->a.calls);
	/* Any call: the server says it did not run it. */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(call(f, "Apply", 0, who, sizeof(who)), AFF_OK);
		assert_string_equal(who, "B");
	}
	/* Refused once, then skipped for its backoff. */
	assert_int_equal(atomic_load(&f->a.calls) - a0, 1);
	assert_int_equal(atomic_load(&f->b.applies), 10);
	/* Back: it answers again once its backoff has run out. */
	atomic_store(&f->a.mode, SRV_ANSWER);
	tu_sleep_ms(250);
	for (int i = 0; i < 4; i++)
		assert_int_equal(call(f, "GetThing", 0, who, sizeof(who)), AFF_OK);
	assert_true(atomic_load(&f->a.calls) - a0 >= 2);
	fixture_free(f);
}

static void
test_a_stopping_server_is_skipped_direct(void **state)
{
	(void)state;
	a_stopping_server_is_skipped(1);
}

static void
test_a_stopping_server_is_skipped_nng(void **state)
{
	(void)state;
	a_stopping_server_is_skipped(0);
}

static void
a_server_gone_is_skipped_at_once(int direct)
{
	struct fixture *f = fixture_new(direct);
	char who[8];
	int64_t t0;

	warm_up(f);
	srv_stop(&f->a);
	tu_sleep_ms(50); /* NNG sees its connections drop */
	t0 = aff_mono_ms();
	for (int i = 0; i < 20; i++) {
		assert_int_equal(call(f, "GetThing", 0, who, sizeof(who)), AFF_OK);
		assert_string_equal(who, "B");
	}
	/* No call waited for it (a wait would be 100 ms at least). */
	assert_true(aff_mono_ms() - t0 < 500);
	/* Both gone: UNAVAILABLE. */
	srv_stop(&f->b);
	assert_int_equal(call(f, "GetThing", 0, who, sizeof(who)),
	    AFF_UNAVAILABLE);
	/* fixture_free stops them again: give it sockets to close. */
	srv_start(&f->a, "A");
	srv_start(&f->b, "B");
	fixture_free(f);
}

static void
test_a_server_gone_is_skipped_at_once_direct(void **state)
{
	(void)state;
	a_server_gone_is_skipped_at_once(1);
}

static void
test_a_server_gone_is_skipped_at_once_nng(void **state)
{
	(void)state;
	a_server_gone_is_skipped_at_once(0);
}

/*
 * A cuts every connection a request arrives on, after reading it: a read
 * goes on to B, an Apply does not (A might have run it) unless the caller
 * says a second run is harmless. Direct mode: over NNG sockets the REQ
 * socket keeps such a request for A's next connection (README, Several
 * servers), so it ends at its deadline.
 */
static void
test_a_call_cut_off_after_sending_goes_on_only_when_safe(void **state)
{
	struct fixture *f = fixture_new(1);
	char who[8];

	(void)state;
	atomic_store(&f->a.mode, SRV_CUT);
	/* A fresh client's round-robin starts at A; each choice of a server
	 * moves it on by one. */
	assert_int_equal(call(f, "Apply", 0, who, sizeof(who)), AFF_UNAVAILABLE);
	assert_int_equal(atomic_load(&f->a.applies), 1);
	assert_int_equal(atomic_load(&f->b.applies), 0);
	/* The next goes to B; A's backoff (100 ms) runs out meanwhile. */
	assert_int_equal(call(f, "GetThing", 0, who, sizeof(who)), AFF_OK);
	assert_string_equal(who, "B");
	tu_sleep_ms(150);
	/* Said harmless to run twice: after A cuts it, B runs it. */
	assert_int_equal(call(f, "Apply", 1, who, sizeof(who)), AFF_OK);
	assert_string_equal(who, "B");
	assert_int_equal(atomic_load(&f->a.applies), 2);
	assert_int_equal(atomic_load(&f->b.applies), 1);
	/* A read cut off at A (its backoff, now 200 ms, run out) goes on. */
	tu_sleep_ms(250);
	atomic_store(&f->a.calls, 0);
	assert_int_equal(call(f, "GetThing", 0, who, sizeof(who)), AFF_OK);
	assert_string_equal(who, "B");
	assert_int_equal(atomic_load(&f->a.calls), 1);
	fixture_free(f);
}

static void
test_the_url_list_is_checked(void **state)
{
	char urls[AFF_CLIENT_MAX_URLS][AFF_CLIENT_URL_MAX], err[512];
	char list[AFF_CLIENT_MAX_URLS * 32 + 64], longurl[300];
	int n;

	(void)state;
	assert_int_equal(aff_client_url_list("tcp://h:1", urls, &n, err,
	                     sizeof(err)),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(aff_client_url_list("tcp://h:1,ipc:///tmp/x,tls+tcp://"
	                                     "h:2",
	                     urls, &n, err, sizeof(err)),
	    AFF_OK);
	assert_int_equal(n, 3);
	assert_string_equal(urls[1], "ipc:///tmp/x");
	assert_string_equal(urls[2], "tls+tcp://h:2");
	assert_int_equal(aff_client_url_list("tcp://h:1,,tcp://h:2", urls, &n,
	                     err, sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_string_equal(err,
	    "an empty URL in the list \"tcp://h:1,,tcp://h:2\" (element 2)");
	assert_int_equal(aff_client_url_list(",tcp://h:1", urls, &n, err,
	                     sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_client_url_list("tcp://h:1,", urls, &n, err,
	                     sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_client_url_list("", urls, &n, err, sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_string_equal(err, "no server URL");
	assert_int_equal(aff_client_url_list("tcp://h:1,bogus", urls, &n, err,
	                     sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_non_null(strstr(err, "\"bogus\" (URL 2 of the list) is not an "
	                            "address"));
	assert_int_equal(aff_client_url_list("tcp://h:1, tcp://h:2", urls, &n,
	                     err, sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_client_url_list("://h", urls, &n, err,
	                     sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	/* 16 is the cap; 17 is refused. */
	list[0] = '\0';
	for (int i = 0; i < AFF_CLIENT_MAX_URLS; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
		    "%stcp://h:%d", i > 0 ? "," : "", 1000 + i);
	assert_int_equal(aff_client_url_list(list, urls, &n, err, sizeof(err)),
	    AFF_OK);
	assert_int_equal(n, AFF_CLIENT_MAX_URLS);
	strcat(list, ",tcp://h:9");
	assert_int_equal(aff_client_url_list(list, urls, &n, err, sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_string_equal(err, "more than 16 URLs in the list");
	memset(longurl, 'x', sizeof(longurl) - 1);
	memcpy(longurl, "tcp://", 6);
	longurl[sizeof(longurl) - 1] = '\0';
	assert_int_equal(aff_client_url_list(longurl, urls, &n, err,
	                     sizeof(err)),
	    AFF_INVALID_ARGUMENT);
	assert_string_equal(err, "URL 1 of the list is longer than 255 bytes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_url_list_is_checked),
		cmocka_unit_test(test_calls_alternate_between_the_servers_direct),
		cmocka_unit_test(test_calls_alternate_between_the_servers_nng),
		cmocka_unit_test(test_a_stopping_server_is_skipped_direct),
		cmocka_unit_test(test_a_stopping_server_is_skipped_nng),
		cmocka_unit_test(test_a_server_gone_is_skipped_at_once_direct),
		cmocka_unit_test(test_a_server_gone_is_skipped_at_once_nng),
		cmocka_unit_test(
		    test_a_call_cut_off_after_sending_goes_on_only_when_safe),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
