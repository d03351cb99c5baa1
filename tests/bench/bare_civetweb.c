/*
 * bare_civetweb.c - the HTTP "limit" for the benchmarks: civetweb with the
 * bridge's options and nothing behind it. Every request, whatever its
 * method or path, is answered 200 with the JSON body {"status":"ok"}, so
 * the bridge's figures can be read as a fraction of what civetweb alone
 * does on this machine.
 *
 * Usage: bench-bare-civetweb LISTENING_PORTS   (e.g. 127.0.0.1:18080)
 * Runs until SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <civetweb.h>

static const char body[] = "{\"status\":\"ok\"}";

/* Answers every request the same way. Returning the status tells civetweb
 * the request was handled (and lets it log the status). */
static int
bare_handle(struct mg_connection *conn, void *cbdata)
{
	(void) cbdata;
	if (mg_send_http_ok(conn, "application/json", sizeof(body) - 1) < 0)
		return (500);
	mg_write(conn, body, sizeof(body) - 1);
	return (200);
}

int
main(int argc, char **argv)
{
	struct mg_callbacks callbacks;
	struct mg_context *ctx;
	sigset_t stop;
	int sig;

	if (argc != 2) {
		fprintf(stderr, "usage: %s LISTENING_PORTS (e.g. 127.0.0.1:18080)\n",
		    argv[0]);
		return (2);
	}

	/* The same options as the bridge. No document_root: nothing is ever
	 * served from disk. */
	const char *options[] = {
		"listening_ports", argv[1],
		"num_threads", "64",
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "5000",
		"request_timeout_ms", "10000",
		NULL,
	};

	/* Block the stop signals before civetweb starts its threads, so they
	 * inherit the mask and only sigwait() below ever sees the signals. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	mg_init_library(0);
	memset(&callbacks, 0, sizeof(callbacks));
	ctx = mg_start(&callbacks, NULL, options);
	if (ctx == NULL) {
		fprintf(stderr, "bare-civetweb: cannot start on %s\n", argv[1]);
		mg_exit_library();
		return (1);
	}
	/* "**" matches every path, not only "/". */
	mg_set_request_handler(ctx, "**", bare_handle, NULL);
	fprintf(stderr, "bare-civetweb: listening on %s\n", argv[1]);

	while (sigwait(&stop, &sig) != 0)
		;
	mg_stop(ctx);
	mg_exit_library();
	return (0);
}
