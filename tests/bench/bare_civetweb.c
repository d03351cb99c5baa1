/*
 * bare_civetweb.c - the HTTP "limit" for the benchmarks: civetweb with the
 * bridge's options and nothing behind it. Every request, whatever its
 * method or path, is answered 200 with the JSON body {"status":"ok"}, so
 * the bridge's figures can be read as a fraction of what civetweb alone
 * does on this machine.
 *
 * Usage: bench-bare-civetweb LISTENING_PORTS [oneshot|api]
 *   (e.g. 127.0.0.1:18080). Runs until SIGINT or SIGTERM.
 *
 * How the answer is written matters more than anything else here, so there
 * are two modes:
 *   oneshot (the default, the limit): the status line, the headers and the
 *     body go out in one mg_write(), one send() and one TCP segment.
 *   api: civetweb's mg_send_http_ok() then mg_write() of the body.
 *     civetweb 1.15 sends every header line with its own send() (about ten
 *     per answer). Without the tcp_nodelay option, which the bridge's
 *     options do not set, Nagle's algorithm holds the later segments until
 *     the client's delayed ACK (about 40 ms on Linux), so each keep-alive
 *     connection answers some 25 requests a second. This mode is here to
 *     show that cost; see bench.sh.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <civetweb.h>

#define BODY "{\"status\":\"ok\"}"

/* The whole answer, but for the Connection header and the body. */
#define HEAD_START                                                     \
	"HTTP/1.1 200 OK\r\n"                                          \
	"Content-Type: application/json\r\n"                           \
	"Content-Length: 15\r\n"

_Static_assert(sizeof(BODY) - 1 == 15, "Content-Length must match BODY");

static const char resp_keep[] = HEAD_START "Connection: keep-alive\r\n\r\n" BODY;
static const char resp_close[] = HEAD_START "Connection: close\r\n\r\n" BODY;

/* Whether civetweb keeps the connection open after this request, by its
 * own rule (should_keep_alive() in civetweb.c; enable_keep_alive is "yes"
 * here): the client's Connection header when it sent one, else HTTP/1.1's
 * default. civetweb may still close on an error of its own; the client
 * then sees the close, as it would from any server. */
static int
bare_keep_alive(const struct mg_connection *conn)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *c = mg_get_header(conn, "Connection");

	if (c != NULL)
		return (strcasestr(c, "keep-alive") != NULL);
	return (ri->http_version != NULL && strcmp(ri->http_version, "1.1") == 0);
}

/* Answers every request the same way. Returning the status tells civetweb
 * the request was handled (and lets it log the status). */
static int
bare_handle_oneshot(struct mg_connection *conn, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *resp = bare_keep_alive(conn) ? resp_keep : resp_close;
	size_t len = resp == resp_keep ? sizeof(resp_keep) - 1 : sizeof(resp_close) - 1;
	char sink[4096];

	(void) cbdata;
	/* A request body is read and dropped, as a real handler reads it, so
	 * the next request on the connection starts where it should. */
	while (mg_read(conn, sink, sizeof(sink)) > 0)
		;
	if (strcmp(ri->request_method, "HEAD") == 0)
		len -= sizeof(BODY) - 1;
	mg_write(conn, resp, len);
	return (200);
}

static int
bare_handle_api(struct mg_connection *conn, void *cbdata)
{
	char sink[4096];

	(void) cbdata;
	while (mg_read(conn, sink, sizeof(sink)) > 0)
		;
	if (mg_send_http_ok(conn, "application/json", sizeof(BODY) - 1) < 0)
		return (500);
	mg_write(conn, BODY, sizeof(BODY) - 1);
	return (200);
}

int
main(int argc, char **argv)
{
	struct mg_callbacks callbacks;
	struct mg_context *ctx;
	mg_request_handler handler = bare_handle_oneshot;
	sigset_t stop;
	int sig;

	if (argc < 2 || argc > 3 ||
	    (argc == 3 && strcmp(argv[2], "oneshot") != 0 &&
	        strcmp(argv[2], "api") != 0)) {
		fprintf(stderr,
		    "usage: %s LISTENING_PORTS [oneshot|api] (e.g. 127.0.0.1:18080)\n",
		    argv[0]);
		return (2);
	}
	if (argc == 3 && strcmp(argv[2], "api") == 0)
		handler = bare_handle_api;

	/* The same options as the bridge. No document_root: nothing is ever
	 * served from disk. */
	const char *options[] = {
		"listening_ports", argv[1],
		"num_threads", "64",
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "5000",
		"request_timeout_ms", "10000",
		"max_request_size", "16384",
		"tcp_nodelay", "1",
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
	mg_set_request_handler(ctx, "**", handler, NULL);
	fprintf(stderr, "bare-civetweb: listening on %s (%s)\n", argv[1],
	    handler == bare_handle_api ? "api" : "oneshot");

	while (sigwait(&stop, &sig) != 0)
		;
	mg_stop(ctx);
	mg_exit_library();
	return (0);
}
