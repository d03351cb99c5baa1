/*
 * bare_nng_echo.c - the RPC "limit" for the benchmarks: an NNG REP server
 * that sends every request straight back, with no decoding and no work.
 * It is built like NNG's demo/async server (rep0, N contexts, each driven
 * by its own aio callback), the way affiliate-server receives requests, so
 * the server's figures can be read as a fraction of what NNG alone does.
 *
 * Usage: bench-bare-nng-echo URL [CONTEXTS]   (CONTEXTS defaults to 128)
 * Runs until SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

enum echo_state { ECHO_INIT, ECHO_RECV, ECHO_SEND };

/* One context and its aio: one request at a time moves through it. */
struct echo_work {
	enum echo_state state;
	nng_aio *aio;
	nng_ctx ctx;
};

/* NNG's callback for one context. It runs on NNG's threads and does not
 * block: a received message is handed back to send as it is (the send
 * takes ownership of it), and a finished send re-arms the receive. */
static void
echo_cb(void *arg)
{
	struct echo_work *w = arg;
	int rv;

	switch (w->state) {
	case ECHO_INIT:
		w->state = ECHO_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		break;
	case ECHO_RECV:
		if ((rv = nng_aio_result(w->aio)) != 0) {
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				return;
			nng_ctx_recv(w->ctx, w->aio);
			return;
		}
		w->state = ECHO_SEND;
		nng_aio_set_msg(w->aio, nng_aio_get_msg(w->aio));
		nng_ctx_send(w->ctx, w->aio);
		break;
	case ECHO_SEND:
		if ((rv = nng_aio_result(w->aio)) != 0) {
			/* A failed send leaves the message with us. */
			nng_msg_free(nng_aio_get_msg(w->aio));
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				return;
		}
		w->state = ECHO_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		break;
	}
}

int
main(int argc, char **argv)
{
	nng_socket sock;
	struct echo_work *works;
	sigset_t stop;
	int n = 128, opened = 0, sig, rv, i;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s URL [CONTEXTS]\n", argv[0]);
		return (2);
	}
	if (argc == 3 && ((n = atoi(argv[2])) < 1 || n > 100000)) {
		fprintf(stderr, "bare-nng-echo: CONTEXTS must be 1..100000\n");
		return (2);
	}

	/* Block the stop signals before NNG starts its threads, so they
	 * inherit the mask and only sigwait() below ever sees the signals. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	if ((works = calloc((size_t) n, sizeof(*works))) == NULL) {
		fprintf(stderr, "bare-nng-echo: out of memory\n");
		return (1);
	}
	if ((rv = nng_rep0_open(&sock)) != 0) {
		fprintf(stderr, "bare-nng-echo: rep0 open: %s\n", nng_strerror(rv));
		goto failed_socket;
	}
	for (opened = 0; opened < n; opened++) {
		struct echo_work *w = &works[opened];
		if ((rv = nng_aio_alloc(&w->aio, echo_cb, w)) != 0)
			goto failed_contexts;
		if ((rv = nng_ctx_open(&w->ctx, sock)) != 0) {
			nng_aio_free(w->aio);
			goto failed_contexts;
		}
		w->state = ECHO_INIT;
	}
	if ((rv = nng_listen(sock, argv[1], NULL, 0)) != 0) {
		fprintf(stderr, "bare-nng-echo: listen %s: %s\n", argv[1],
		    nng_strerror(rv));
		goto failed_listen;
	}
	for (i = 0; i < n; i++)
		echo_cb(&works[i]);
	fprintf(stderr, "bare-nng-echo: listening on %s with %d contexts\n",
	    argv[1], n);

	while (sigwait(&stop, &sig) != 0)
		;
	rv = 0;
	goto stop;

failed_contexts:
	fprintf(stderr, "bare-nng-echo: contexts: %s\n", nng_strerror(rv));
failed_listen:
stop:
	/* Closing the socket fails every pending aio with NNG_ECLOSED; the
	 * stops then wait for the callbacks to be done with the works. */
	nng_close(sock);
	for (i = 0; i < opened; i++) {
		nng_aio_stop(works[i].aio);
		nng_aio_free(works[i].aio);
	}
failed_socket:
	free(works);
	return (rv == 0 ? 0 : 1);
}
