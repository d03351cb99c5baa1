/*
 * rpc_load.c - a closed-loop load client for NNG REQ/REP servers. THREADS
 * threads share one REQ socket; each has its own context and aio and makes
 * synchronous calls, one after another, for SECONDS seconds, every request
 * carrying the bytes of PAYLOAD_FILE. Each call's latency is recorded, and
 * the totals are printed as "key value" lines for scripts:
 *
 *   calls 123456          answered calls
 *   errors 0              failed sends or receives (timeouts, closed pipes)
 *   seconds 10.000        measured time
 *   calls_per_s 12345.6
 *   p50_us 250            latency percentiles, microseconds
 *   p99_us 900
 *
 * The replies are not decoded: checking them is the caller's business.
 * Usage: bench-rpc-load URL PAYLOAD_FILE THREADS SECONDS
 * Exits 0 when at least one call was answered and none failed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "latency.h"

/* A call that takes longer than this is counted as an error, so a server
 * that stops answering cannot hang the benchmark. */
#define CALL_TIMEOUT_MS 10000

struct load_thread {
	pthread_t tid;
	nng_socket sock;
	const void *payload;
	size_t payload_len;
	uint64_t deadline_ns;
	struct lat lat;      /* the thread's latencies; it owns them */
	uint64_t errors;
	int started;
	int failed;       /* could not even set up: out of memory, no ctx */
};

/* One call: send the payload, wait for the reply, free it. Returns 0 or an
 * NNG error. */
static int
load_call(struct load_thread *t, nng_ctx ctx, nng_aio *aio)
{
	nng_msg *msg;
	int rv;

	if ((rv = nng_msg_alloc(&msg, 0)) != 0)
		return (rv);
	if ((rv = nng_msg_append(msg, t->payload, t->payload_len)) != 0) {
		nng_msg_free(msg);
		return (rv);
	}
	nng_aio_set_msg(aio, msg);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		/* A failed send leaves the message with us. */
		nng_msg_free(nng_aio_get_msg(aio));
		return (rv);
	}
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		return (rv);
	nng_msg_free(nng_aio_get_msg(aio));
	return (0);
}

static void *
load_thread_main(void *arg)
{
	struct load_thread *t = arg;
	nng_ctx ctx;
	nng_aio *aio;
	uint64_t t0, t1;

	if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
		t->failed = 1;
		return (NULL);
	}
	if (nng_ctx_open(&ctx, t->sock) != 0) {
		nng_aio_free(aio);
		t->failed = 1;
		return (NULL);
	}
	/* Resending would count one slow call twice; the aio's timeout ends
	 * a call that is never answered. */
	nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_aio_set_timeout(aio, CALL_TIMEOUT_MS);

	while ((t0 = now_ns()) < t->deadline_ns) {
		if (load_call(t, ctx, aio) != 0) {
			t->errors++;
			continue;
		}
		t1 = now_ns();
		if (lat_push(&t->lat, t1 - t0) != 0) {
			t->failed = 1;
			break;
		}
	}
	nng_ctx_close(ctx);
	nng_aio_free(aio);
	return (NULL);
}

/* Reads the whole of PATH; caller frees *buf. */
static int
read_file(const char *path, void **buf, size_t *len)
{
	FILE *f;
	char *p = NULL;
	size_t n = 0, cap = 0, got;

	if ((f = fopen(path, "rb")) == NULL)
		return (-1);
	do {
		if (n == cap) {
			char *q;
			cap = cap ? cap * 2 : 4096;
			if ((q = realloc(p, cap)) == NULL) {
				free(p);
				fclose(f);
				return (-1);
			}
			p = q;
		}
		got = fread(p + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		free(p);
		fclose(f);
		return (-1);
	}
	fclose(f);
	*buf = p;
	*len = n;
	return (0);
}

int
main(int argc, char **argv)
{
	struct load_thread *threads;
	nng_socket sock;
	void *payload;
	size_t payload_len, total = 0;
	uint64_t errors = 0, start, elapsed;
	struct lat all = { 0 };
	double seconds;
	char *end;
	int n_threads, failed = 0, rv, i;

	if (argc != 5) {
		fprintf(stderr,
		    "usage: %s URL PAYLOAD_FILE THREADS SECONDS\n", argv[0]);
		return (2);
	}
	n_threads = (int) strtol(argv[3], &end, 10);
	if (*end != '\0' || n_threads < 1 || n_threads > 4096) {
		fprintf(stderr, "rpc_load: THREADS must be 1..4096\n");
		return (2);
	}
	seconds = strtod(argv[4], &end);
	if (*end != '\0' || !(seconds > 0 && seconds <= 3600)) {
		fprintf(stderr, "rpc_load: SECONDS must be > 0 and <= 3600\n");
		return (2);
	}
	if (read_file(argv[2], &payload, &payload_len) != 0) {
		fprintf(stderr, "rpc_load: %s: %s\n", argv[2], strerror(errno));
		return (2);
	}

	if ((rv = nng_req0_open(&sock)) != 0) {
		fprintf(stderr, "rpc_load: req0 open: %s\n", nng_strerror(rv));
		goto failed_socket;
	}
	/* Set on the socket too, so no context ever starts with the default
	 * 60 s resend. */
	nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	/* A blocking dial: an address nobody listens on is an error now, not
	 * a run of timed-out calls. */
	if ((rv = nng_dial(sock, argv[1], NULL, 0)) != 0) {
		fprintf(stderr, "rpc_load: dial %s: %s\n", argv[1],
		    nng_strerror(rv));
		goto failed_dial;
	}
	if ((threads = calloc((size_t) n_threads, sizeof(*threads))) == NULL) {
		rv = NNG_ENOMEM;
		fprintf(stderr, "rpc_load: out of memory\n");
		goto failed_dial;
	}

	start = now_ns();
	for (i = 0; i < n_threads; i++) {
		threads[i].sock = sock;
		threads[i].payload = payload;
		threads[i].payload_len = payload_len;
		threads[i].deadline_ns = start + (uint64_t) (seconds * 1e9);
		if (pthread_create(&threads[i].tid, NULL, load_thread_main,
		        &threads[i]) != 0) {
			fprintf(stderr, "rpc_load: cannot start thread %d\n", i);
			threads[i].failed = 1;
			continue;
		}
		threads[i].started = 1;
	}
	for (i = 0; i < n_threads; i++) {
		if (threads[i].started)
			pthread_join(threads[i].tid, NULL);
		total += threads[i].lat.n;
		errors += threads[i].errors;
		failed |= threads[i].failed;
	}
	elapsed = now_ns() - start;

	/* Percentiles over every call of every thread. */
	rv = 0;
	for (i = 0; i < n_threads && rv == 0; i++)
		if (lat_merge(&all, &threads[i].lat) != 0) {
			fprintf(stderr, "rpc_load: out of memory\n");
			rv = NNG_ENOMEM;
		}
	if (rv == 0) {
		printf("calls %zu\n", total);
		printf("errors %llu\n", (unsigned long long) errors);
		printf("seconds %.3f\n", (double) elapsed / 1e9);
		printf("calls_per_s %.1f\n",
		    (double) total / ((double) elapsed / 1e9));
		printf("p50_us %u\n", lat_percentile(&all, 50));
		printf("p99_us %u\n", lat_percentile(&all, 99));
	}
	lat_free(&all);
	if (failed)
		fprintf(stderr, "rpc_load: some threads could not run\n");
	for (i = 0; i < n_threads; i++)
		lat_free(&threads[i].lat);
	free(threads);
	nng_close(sock);
	free(payload);
	return (rv == 0 && !failed && errors == 0 && total > 0 ? 0 : 1);

failed_dial:
	nng_close(sock);
failed_socket:
	free(payload);
	return (1);
}
