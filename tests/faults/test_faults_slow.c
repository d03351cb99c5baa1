/*
 * test_faults_slow.c - slow clients do not starve the others: with 100
 * connections to the bridge that send nothing and 100 that trickle a
 * request one byte at a time and never finish it, normal requests on new
 * connections are still answered, each within a second.
 *
 * civetweb gives each connection a worker thread of its own until the
 * connection closes or times out, so this holds only while the bridge has
 * more threads than slow connections (its shipped --threads default is
 * what runs here); the request timeout bounds how long a slow connection
 * holds one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "aff_util.h"
#include "faults.h"

#define N_IDLE 100
#define N_TRICKLE 100
#define TRICKLE_MS 100
#define N_PROBES 10
#define PROBE_EVERY_MS 200
#define ANSWER_WITHIN_MS 1000

/* A request that never ends: a header line that keeps growing. */
static const char trickle_text[] = "GET /advertisers HTTP/1.1\r\nX-Slow: ";

struct trickle {
	int fds[N_TRICKLE];
	atomic_int stop;
};

static int
connect_port(int port)
{
	/* The 2 s send timeout bounds connect too, should the listen queue
	 * be full. */
	int fd = tu_connect(port, 0, 2000);

	assert_true(fd >= 0);
	return (fd);
}

static void *
trickle_main(void *arg)
{
	struct trickle *t = arg;

	for (size_t pos = 0; !atomic_load(&t->stop); pos++) {
		char b = pos < sizeof(trickle_text) - 1 ? trickle_text[pos] : 'a';
		for (int i = 0; i < N_TRICKLE; i++)
			(void)send(t->fds[i], &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		tu_sleep_ms(TRICKLE_MS);
	}
	return (NULL);
}

/* One request on a new connection; its status, and its time in *ms. */
static int
probe(const struct fs_stack *s, const char *method, const char *target,
    const char *hdr, const char *body, int64_t *ms)
{
	struct http_conn c;
	struct http_answer a;
	int64_t t0 = aff_mono_ms();
	int status = -1;

	fs_conn_init(&c, s->port, 5000);
	if (fs_request(&c, method, target, hdr, body, &a) == 0)
		status = a.status;
	*ms = aff_mono_ms() - t0;
	fs_conn_fini(&c);
	return (status);
}

static void
test_200_slow_clients_do_not_stop_a_normal_request(void **state)
{
	struct fs_stack s = { 0 };
	struct trickle t = { 0 };
	int idle[N_IDLE];
	pthread_t th;
	int64_t ms, slowest = 0, total = 0;
	char body[256], hdr[200];

	(void)state;
	assert_int_equal(fs_stack_start(&s, 0, 0), 0);
	for (int i = 0; i < N_IDLE; i++)
		idle[i] = connect_port(s.port);
	for (int i = 0; i < N_TRICKLE; i++)
		t.fds[i] = connect_port(s.port);
	assert_int_equal(pthread_create(&th, NULL, trickle_main, &t), 0);
	/* Let the bridge take them all on before the first normal request. */
	tu_sleep_ms(300);
	for (int i = 0; i < N_PROBES; i++) {
		assert_int_equal(probe(&s, "GET", "/advertisers?editor_id=1", NULL,
		                     NULL, &ms),
		    200);
		slowest = ms > slowest ? ms : slowest;
		total += ms;
		fs_order_body(i, body, sizeof(body), hdr, sizeof(hdr));
		assert_int_equal(probe(&s, "POST", "/webhook/orders", hdr, body, &ms),
		    201);
		slowest = ms > slowest ? ms : slowest;
		total += ms;
		tu_sleep_ms(PROBE_EVERY_MS);
	}
	atomic_store(&t.stop, 1);
	pthread_join(th, NULL);
	printf("faults slow clients: %d idle and %d trickling connections open; "
	       "%d normal requests answered, mean %.1f ms, slowest %lld ms "
	       "(limit %d)\n",
	    N_IDLE, N_TRICKLE, 2 * N_PROBES, (double)total / (2 * N_PROBES),
	    (long long)slowest, ANSWER_WITHIN_MS);
	fflush(stdout);
	assert_true(slowest < ANSWER_WITHIN_MS);
	for (int i = 0; i < N_IDLE; i++)
		close(idle[i]);
	for (int i = 0; i < N_TRICKLE; i++)
		close(t.fds[i]);
	fs_stack_stop(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_200_slow_clients_do_not_stop_a_normal_request),
	};

	return (cmocka_run_group_tests_name("faults_slow", tests, NULL, NULL));
}
