/*
 * test_rpc_listen.c - the RPC server's own listener for tcp:// and ipc://
 * (rpc_sp_listen.c) over real sockets: NNG's REQ and the bridge's SP
 * client are answered; raw bytes as a hostile peer sends them (a bad
 * greeting, a message past the size cap, a backtrace cut short or with too
 * many hops, many requests never read) close the connection or are
 * dropped, as NNG's REP does, and the server goes on serving others;
 * deferred replies to a connection already gone are freed, not written.
 * The server here echoes each request; "defer" requests are answered by a
 * thread of the test later.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "aff_err.h"
#include "aff_sp.h"
#include "aff_util.h"
#include "rpc_server.h"
#include "testutil.h"

#define MAX_MSG 4096
#define SLOTS 8

static char peer_seen[64];
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;

/* Deferred requests, answered by answer_later(). */
static struct rpc_slot *deferred[64];
static nng_msg *deferred_msg[64];
static int n_deferred;

static nng_msg *
echo(void *state, nng_msg *req, struct rpc_slot *slot)
{
	nng_msg *rep;

	(void)state;
	pthread_mutex_lock(&seen_mu);
	rpc_server_peer(slot, peer_seen, sizeof(peer_seen));
	pthread_mutex_unlock(&seen_mu);
	if (nng_msg_alloc(&rep, 0) != 0 ||
	    nng_msg_append(rep, nng_msg_body(req), nng_msg_len(req)) != 0)
		return (NULL);
	if (nng_msg_len(req) == 5 && memcmp(nng_msg_body(req), "defer", 5) == 0) {
		pthread_mutex_lock(&seen_mu);
		deferred[n_deferred] = slot;
		deferred_msg[n_deferred++] = rep;
		pthread_mutex_unlock(&seen_mu);
		return (RPC_SERVER_DEFERRED);
	}
	return (rep);
}

static rpc_server *
start(const char *url)
{
	struct rpc_server_opts o = { 0 };
	rpc_server *s = NULL;

	o.url = url;
	o.n_contexts = SLOTS;
	o.n_threads = 2;
	o.max_msg = MAX_MSG;
	o.handle = echo;
	assert_int_equal(rpc_server_start(&o, &s), AFF_OK);
	return (s);
}

/* A raw TCP connection to port, greeted as a REQ peer unless hello is
 * given (8 bytes); the server's greeting is read and checked. */
static int
raw_open(int port, const uint8_t *hello)
{
	int fd = tu_sp_open(port, hello);

	assert_true(fd >= 0);
	return (fd);
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Sends one message: its length, the backtrace words, the body. */
static void
raw_send(int fd, const uint32_t *bt, int nbt, const void *body, size_t len)
{
	uint8_t buf[8 + 64 + MAX_MSG];
	size_t off = 8;

	for (int i = 0; i < nbt; i++, off += 4)
		put_be(buf + off, bt[i], 4);
	memcpy(buf + off, body, len);
	off += len;
	put_be(buf, off - 8, 8);
	assert_int_equal(send(fd, buf, off, MSG_NOSIGNAL), (ssize_t)off);
}

/* Reads one message (ms at most); its length, -1 when the connection
 * closed, -2 when nothing came. */
static long
raw_recv(int fd, uint8_t *out, size_t cap, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t hdr[8];
	uint64_t n = 0;
	ssize_t r;

	if (poll(&p, 1, ms) == 0)
		return (-2);
	if ((r = recv(fd, hdr, 8, MSG_WAITALL)) != 8)
		return (-1);
	for (int i = 0; i < 8; i++)
		n = (n << 8) | hdr[i];
	assert_true(n <= cap);
	assert_int_equal(recv(fd, out, (size_t)n, MSG_WAITALL), (ssize_t)n);
	return ((long)n);
}

static int
url_port(const char *url)
{
	return (atoi(strrchr(url, ':') + 1));
}

static void
test_nng_req_and_the_bridge_client_are_answered_on_tcp_and_ipc(void **state)
{
	char tcp[64], ipc[160];
	char *dir = tu_tmpdir();
	const char *urls[2] = { tcp, ipc };

	(void)state;
	snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", tu_free_port());
	snprintf(ipc, sizeof(ipc), "ipc://%s/rpc.sock", dir);
	for (int u = 0; u < 2; u++) {
		rpc_server *s = start(urls[u]);
		nng_socket req;
		nng_msg *m;
		aff_sp_conn *c;
		void *rep;
		size_t rlen;

		/* NNG's REQ socket. */
		assert_int_equal(nng_req0_open(&req), 0);
		assert_int_equal(nng_dial(req, urls[u], NULL, 0), 0);
		for (int i = 0; i < 3; i++) {
			char body[32];
			snprintf(body, sizeof(body), "hello %d", i);
			assert_int_equal(nng_send(req, body, strlen(body), 0), 0);
			assert_int_equal(nng_recvmsg(req, &m, 0), 0);
			assert_int_equal(nng_msg_len(m), strlen(body));
			assert_memory_equal(nng_msg_body(m), body, strlen(body));
			nng_msg_free(m);
		}
		nng_close(req);
		pthread_mutex_lock(&seen_mu);
		assert_string_equal(peer_seen, u == 0 ? "127.0.0.1" : "local");
		pthread_mutex_unlock(&seen_mu);
		/* The bridge's client. */
		assert_int_equal(aff_sp_dial(urls[u], aff_mono_ms() + 5000, &c),
		    AFF_OK);
		assert_int_equal(aff_sp_call(c, "abc", 3, aff_mono_ms() + 5000,
		                     MAX_MSG, &rep, &rlen),
		    AFF_OK);
		assert_int_equal(rlen, 3);
		assert_memory_equal(rep, "abc", 3);
		free(rep);
		aff_sp_close(c);
		rpc_server_free(s);
	}
	/* The socket file goes with the server. */
	assert_int_equal(access(ipc + 6, F_OK), -1);
	tu_rmtree(dir);
	free(dir);
}

static void
test_replies_carry_their_backtrace_and_pipelined_requests_all_answer(
    void **state)
{
	char url[64];
	rpc_server *s;
	uint8_t buf[MAX_MSG];
	int fd, got[3] = { 0 };
	static const uint32_t ids[3][2] = { { 0x80000001u }, { 0x80000002u },
		{ 0x00000007u, 0x80000003u } };

	(void)state;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tu_free_port());
	s = start(url);
	fd = raw_open(url_port(url), NULL);
	/* Three requests in one go, the last through one hop (a device). */
	raw_send(fd, ids[0], 1, "one", 3);
	raw_send(fd, ids[1], 1, "two", 3);
	raw_send(fd, ids[2], 2, "three", 5);
	for (int i = 0; i < 3; i++) {
		long n = raw_recv(fd, buf, sizeof(buf), 5000);
		uint32_t first = (uint32_t)buf[0] << 24 | buf[1] << 16 |
		    buf[2] << 8 | buf[3];
		assert_true(n >= 7);
		if (first == 0x80000001u) {
			assert_int_equal(n, 7);
			assert_memory_equal(buf + 4, "one", 3);
			got[0]++;
		} else if (first == 0x80000002u) {
			assert_int_equal(n, 7);
			assert_memory_equal(buf + 4, "two", 3);
			got[1]++;
		} else {
			/* The whole backtrace comes back, hop first. */
			assert_int_equal(first, 7);
			assert_int_equal(n, 13);
			assert_int_equal(buf[4], 0x80);
			assert_int_equal(buf[7], 3);
			assert_memory_equal(buf + 8, "three", 5);
			got[2]++;
		}
	}
	assert_int_equal(got[0] + got[1] + got[2], 3);
	assert_true(got[0] == 1 && got[1] == 1 && got[2] == 1);
	close(fd);
	rpc_server_free(s);
}

static void
test_hostile_bytes_close_the_connection_and_others_are_served(void **state)
{
	static const uint8_t rep_hello[8] = { 0, 'S', 'P', 0, 0, 0x31, 0, 0 };
	static const uint8_t junk[8] = { 'G', 'E', 'T', ' ', '/', ' ', 'H', 'T' };
	static const uint32_t id[1] = { 0x80000009u };
	uint32_t hops[10];
	char url[64];
	uint8_t buf[MAX_MSG + 64], big[16];
	rpc_server *s;
	int fd, port;

	(void)state;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tu_free_port());
	port = url_port(url);
	s = start(url);
	/* A greeting that is not a REQ peer's (a REP's, an HTTP client's). */
	fd = raw_open(port, rep_hello);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 5000), -1);
	close(fd);
	fd = raw_open(port, junk);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 5000), -1);
	close(fd);
	/* A message past the cap: closed before its bytes come. */
	fd = raw_open(port, NULL);
	put_be(big, (uint64_t)MAX_MSG + 1, 8);
	put_be(big + 8, 0x80000001u, 4);
	assert_int_equal(send(fd, big, 12, MSG_NOSIGNAL), 12);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 5000), -1);
	close(fd);
	/* A length of 2^64 - 1. */
	fd = raw_open(port, NULL);
	memset(big, 0xff, 8);
	assert_int_equal(send(fd, big, 8, MSG_NOSIGNAL), 8);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 5000), -1);
	close(fd);
	/* A backtrace cut short: two bytes, no request id. */
	fd = raw_open(port, NULL);
	put_be(big, 2, 8);
	big[8] = 0x80;
	big[9] = 1;
	assert_int_equal(send(fd, big, 10, MSG_NOSIGNAL), 10);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 5000), -1);
	close(fd);
	/* Seven hops and the id, NNG's ttl of 8 words: answered, the whole
	 * backtrace back. */
	fd = raw_open(port, NULL);
	for (int i = 0; i < 7; i++)
		hops[i] = (uint32_t)i + 1;
	hops[7] = 0x80000005u;
	raw_send(fd, hops, 8, "ttl", 3);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 5000), 32 + 3);
	assert_memory_equal(buf + 28, "\x80\x00\x00\x05ttl", 7);
	/* Eight hops and the id: past it, dropped. */
	for (int i = 0; i < 8; i++)
		hops[i] = (uint32_t)i + 1;
	hops[8] = 0x80000006u;
	raw_send(fd, hops, 9, "far", 3);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 300), -2);
	close(fd);
	/* Nine hops before the id: dropped, and the connection answers the
	 * next request. */
	fd = raw_open(port, NULL);
	for (int i = 0; i < 9; i++)
		hops[i] = (uint32_t)i + 1;
	hops[9] = 0x80000004u;
	raw_send(fd, hops, 10, "far", 3);
	raw_send(fd, id, 1, "near", 4);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 5000), 8);
	assert_memory_equal(buf, "\x80\x00\x00\x09near", 8);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 300), -2);
	close(fd);
	/* A peer that closes half way through a message. */
	fd = raw_open(port, NULL);
	put_be(big, 100, 8);
	assert_int_equal(send(fd, big, 12, MSG_NOSIGNAL), 12);
	close(fd);
	/* Served all along. */
	fd = raw_open(port, NULL);
	raw_send(fd, id, 1, "still", 5);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 5000), 9);
	close(fd);
	rpc_server_free(s);
}

static void
test_a_client_that_never_reads_holds_no_one_else_up(void **state)
{
	char url[64];
	uint8_t buf[MAX_MSG];
	rpc_server *s;
	int slow, fast, port, answered = 0, sent = 0;
	/* 12,000 were sometimes all read: the kernel's buffers (autotuned)
	 * and the listener's 4 MiB held all 12 MB of replies. */
	enum { N = 30000 };
	static uint8_t body[1000];

	(void)state;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tu_free_port());
	port = url_port(url);
	s = start(url);
	slow = raw_open(port, NULL);
	/* Requests whose replies (up to 30 MB) outgrow both sockets' buffers
	 * and the listener's 4 MiB for a connection, and more than the
	 * server's slots: it stops reading this connection and serves the
	 * other. */
	for (uint32_t i = 0; i < N; i++) {
		uint32_t id = 0x80000000u | i;
		struct pollfd p = { .fd = slow, .events = POLLOUT };
		if (poll(&p, 1, 200) == 0)
			break; /* the server stopped reading: our send buffer is full */
		raw_send(slow, &id, 1, body, sizeof(body));
		sent++;
	}
	fast = raw_open(port, NULL);
	for (uint32_t i = 0; i < 20; i++) {
		uint32_t id = 0x80000000u | i;
		raw_send(fast, &id, 1, "quick", 5);
		assert_int_equal(raw_recv(fast, buf, sizeof(buf), 5000), 9);
	}
	close(fast);
	/* The slow one reads at last: its replies all come. */
	while (raw_recv(slow, buf, sizeof(buf), 2000) == 1004)
		answered++;
	printf("listen: a client that sent %d requests and did not read got "
	       "%d replies once it did; another got 20 meanwhile\n",
	    sent, answered);
	assert_true(sent > 100 && sent < N);
	assert_int_equal(answered, sent);
	close(slow);
	rpc_server_free(s);
}

/* Answers the deferred requests, their connections closed by then. */
static void *
answer_later(void *arg)
{
	(void)arg;
	tu_sleep_ms(300);
	pthread_mutex_lock(&seen_mu);
	for (int i = 0; i < n_deferred; i++)
		rpc_server_reply(deferred[i], deferred_msg[i]);
	n_deferred = 0;
	pthread_mutex_unlock(&seen_mu);
	return (NULL);
}

/* Waits (1 s at most) until n requests are deferred; how many are. */
static int
wait_deferred(int n)
{
	int got = 0;

	for (int k = 0; k < 100; k++) {
		pthread_mutex_lock(&seen_mu);
		got = n_deferred;
		pthread_mutex_unlock(&seen_mu);
		if (got == n)
			break;
		tu_sleep_ms(10);
	}
	return (got);
}

static void
test_deferred_replies_to_a_gone_connection_are_dropped(void **state)
{
	static const uint32_t id[1] = { 0x80000001u };
	char url[64];
	uint8_t buf[64];
	rpc_server *s;
	pthread_t t;
	int fd, port, n;

	(void)state;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tu_free_port());
	port = url_port(url);
	s = start(url);
	for (int i = 0; i < 5; i++) {
		fd = raw_open(port, NULL);
		raw_send(fd, id, 1, "defer", 5);
		n = wait_deferred(i + 1);
		close(fd);
	}
	assert_int_equal(n, 5);
	assert_int_equal(pthread_create(&t, NULL, answer_later, NULL), 0);
	pthread_join(t, NULL);
	/* And one answered on a live connection. */
	fd = raw_open(port, NULL);
	raw_send(fd, id, 1, "defer", 5);
	assert_int_equal(wait_deferred(1), 1);
	assert_int_equal(pthread_create(&t, NULL, answer_later, NULL), 0);
	assert_int_equal(raw_recv(fd, buf, sizeof(buf), 5000), 9);
	assert_memory_equal(buf + 4, "defer", 5);
	pthread_join(t, NULL);
	close(fd);
	rpc_server_free(s);
}

/* Big answers for the deferred requests: 2 MiB each. */
static void *
answer_big(void *arg)
{
	static uint8_t big[2 << 20];

	(void)arg;
	pthread_mutex_lock(&seen_mu);
	for (int i = 0; i < n_deferred; i++) {
		assert_int_equal(nng_msg_append(deferred_msg[i], big, sizeof(big)), 0);
		rpc_server_reply(deferred[i], deferred_msg[i]);
	}
	n_deferred = 0;
	pthread_mutex_unlock(&seen_mu);
	return (NULL);
}

/*
 * A connection paused twice over: its requests fill the server's slots
 * (the rest wait in the listener's buffer), and their replies outgrow
 * what it may hold for a reader. Once the reader catches up, the
 * requests already read are answered too: its peer has nothing more to
 * send that would wake the listener.
 */
static void
test_requests_held_while_paused_are_answered_once_the_reader_catches_up(
    void **state)
{
	static const uint32_t id[1] = { 0x80000001u };
	uint8_t *buf = malloc(4u << 20);
	char url[64];
	rpc_server *s;
	pthread_t t;
	int fd, big = 0, small = 0;
	long n;

	(void)state;
	assert_non_null(buf);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tu_free_port());
	s = start(url);
	fd = raw_open(url_port(url), NULL);
	/* SLOTS deferred requests fill the slots; three more wait. */
	for (int i = 0; i < SLOTS; i++)
		raw_send(fd, id, 1, "defer", 5);
	for (int i = 0; i < 3; i++)
		raw_send(fd, id, 1, "small", 5);
	assert_int_equal(wait_deferred(SLOTS), SLOTS);
	/* 16 MiB of replies that this client does not read yet, all given
	 * before the listener looks: past its 4 MiB, the connection stays
	 * paused when the slots free. */
	assert_int_equal(pthread_create(&t, NULL, answer_big, NULL), 0);
	pthread_join(t, NULL);
	tu_sleep_ms(200);
	while ((n = raw_recv(fd, buf, 4u << 20, 3000)) > 0) {
		big += n == 4 + 5 + (2 << 20);
		small += n == 9;
	}
	printf("listen: %d replies of 2 MiB, then %d of the requests held "
	       "while paused\n",
	    big, small);
	assert_int_equal(big, SLOTS);
	assert_int_equal(small, 3);
	free(buf);
	close(fd);
	rpc_server_free(s);
}

static void
test_a_taken_address_is_unavailable_and_a_bad_url_invalid(void **state)
{
	struct rpc_server_opts o = { 0 };
	char url[64];
	rpc_server *s, *s2 = NULL;

	(void)state;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tu_free_port());
	s = start(url);
	o.url = url;
	o.max_msg = MAX_MSG;
	o.handle = echo;
	assert_int_equal(rpc_server_start(&o, &s2), AFF_UNAVAILABLE);
	assert_null(s2);
	o.url = "tcp://127.0.0.1";
	assert_int_equal(rpc_server_start(&o, &s2), AFF_INVALID_ARGUMENT);
	rpc_server_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_nng_req_and_the_bridge_client_are_answered_on_tcp_and_ipc),
		cmocka_unit_test(
		    test_replies_carry_their_backtrace_and_pipelined_requests_all_answer),
		cmocka_unit_test(
		    test_hostile_bytes_close_the_connection_and_others_are_served),
		cmocka_unit_test(
		    test_a_client_that_never_reads_holds_no_one_else_up),
		cmocka_unit_test(
		    test_deferred_replies_to_a_gone_connection_are_dropped),
		cmocka_unit_test(
		    test_requests_held_while_paused_are_answered_once_the_reader_catches_up),
		cmocka_unit_test(
		    test_a_taken_address_is_unavailable_and_a_bad_url_invalid),
	};

	return (cmocka_run_group_tests_name("rpc_listen", tests, NULL, NULL));
}
