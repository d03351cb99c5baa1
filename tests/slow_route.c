/*
 * slow_route.c - an LD_PRELOAD shim for test_edge_http: it holds every
 * mg_set_request_handler call for SLOW_ROUTE_MS before making it, so that
 * a real affiliate-bridge listens and reads requests (mg_start) for that
 * long before its route exists. It says so on stderr, which the test
 * reads to know the window was there.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

#include <civetweb.h>

#define SLOW_ROUTE_MS 500

void
mg_set_request_handler(struct mg_context *ctx, const char *uri,
    mg_request_handler handler, void *cbdata)
{
	void (*real)(struct mg_context *, const char *, mg_request_handler,
	    void *);
	struct timespec ts = { SLOW_ROUTE_MS / 1000,
		(SLOW_ROUTE_MS % 1000) * 1000000L };

	*(void **)&real = dlsym(RTLD_NEXT, "mg_set_request_handler");
	fprintf(stderr, "slow_route: %s held %d ms\n", uri, SLOW_ROUTE_MS);
	fflush(stderr);
	nanosleep(&ts, NULL);
	real(ctx, uri, handler, cbdata);
}
